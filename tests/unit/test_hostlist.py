"""Hostlist expressions as Slurm prints and parses them (SLURM_JOB_NODELIST, NodeName=)."""

import pytest

from batch_backend.hostlist import compress, expand


@pytest.mark.parametrize("expr, names", [
    ("n1", ["n1"]),
    ("n[1-3,5]", ["n1", "n2", "n3", "n5"]),
    ("node[01-04]", ["node01", "node02", "node03", "node04"]),
    ("a[1-2]b[3-4]", ["a1b3", "a1b4", "a2b3", "a2b4"]),
    ("n1,n[3-4],gpu01", ["n1", "n3", "n4", "gpu01"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
    ("login", ["login"]),
    ("n1 n2", ["n1", "n2"]),
    ("n[2,1,2]", ["n2", "n1", "n2"]),
])
def test_expand_examples(expr, names):
    assert expand(expr) == names


@pytest.mark.parametrize("expr, message", [
    ("", "empty hostlist expression"),
    ("   ", "empty hostlist expression"),
    ("n[1-3", "unbalanced '[' in hostlist 'n[1-3'"),
    ("n1]", "unbalanced ']' in hostlist 'n1]'"),
    ("n[3-1]", "invalid range '3-1' in hostlist 'n[3-1]': 1 < 3"),
    ("n[a-b]", "invalid range 'a-b' in hostlist 'n[a-b]'"),
    ("n[1-]", "invalid range '1-' in hostlist 'n[1-]'"),
    ("n[]", "empty brackets in hostlist 'n[]'"),
    ("n[1-[2]]", "nested '[' in hostlist 'n[1-[2]]'"),
    ("n1,,n2", "empty host name in hostlist 'n1,,n2'"),
    ("n1,", "empty host name in hostlist 'n1,'"),
    ("n[1 -2]", "whitespace inside brackets in hostlist 'n[1 -2]'"),
])
def test_expand_rejects_malformed_input_with_precise_message(expr, message):
    with pytest.raises(ValueError) as info:
        expand(expr)
    assert str(info.value) == message


def test_expand_refuses_absurd_ranges():
    with pytest.raises(ValueError, match="too many hosts"):
        expand("n[0-99999999]")


@pytest.mark.parametrize("names, expr", [
    (["n1", "n2", "n3", "n5"], "n[1-3,5]"),
    (["n1"], "n1"),
    (["node01", "node02", "node03", "node04"], "node[01-04]"),
    (["n3", "n1", "n2"], "n[1-3]"),
    (["n1", "n1", "n2"], "n[1-2]"),
    (["gpu01", "n1", "n2", "gpu02"], "gpu[01-02],n[1-2]"),
    (["n2", "gpu01", "n1"], "n[1-2],gpu01"),
    (["login", "n1", "n2"], "login,n[1-2]"),
    (["n9", "n10", "n11"], "n[9-11]"),
    (["n09", "n10"], "n[09-10]"),
    (["n1", "n01"], "n1,n01"),
    ([], ""),
])
def test_compress_examples(names, expr):
    assert compress(names) == expr


@pytest.mark.parametrize("expr", [
    "n[1-3,5]", "node[001-010,100]", "gpu[01-02],n[1-4,7],login", "a1b[3-4],a2b[3-4]",
])
def test_compress_inverts_expand(expr):
    assert compress(expand(expr)) == expr


def test_compress_rejects_empty_name():
    with pytest.raises(ValueError, match="empty host name"):
        compress(["n1", ""])
