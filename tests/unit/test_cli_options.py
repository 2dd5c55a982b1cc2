"""Option parsing and error mapping shared by the CLI commands (cli.common)."""

import pytest

from batch_backend.cli import common
from batch_backend.cli.common import COUNT, FLAG, LIST, VALUE, CommandError

TABLE = common.options(
    ("h", "noheader", "noheader", FLAG),
    ("o", "format", "format", VALUE),
    ("j", "jobs", "jobs", LIST),
    ("v", "verbose", "verbose", COUNT),
    ("t", "states", "states", LIST),
    (None, "start", "start", FLAG),
    (None, "sort", "sort", VALUE),
)


def parse(*argv):
    return common.parse_options("squeue", list(argv), TABLE)


def test_defaults_for_every_kind():
    opts, args = parse()
    assert opts == {"noheader": False, "format": None, "jobs": [], "verbose": 0, "states": [],
                    "start": False, "sort": None}
    assert args == []


def test_value_forms_equal_sign_separate_attached():
    assert parse("--format=%i %T")[0]["format"] == "%i %T"
    assert parse("--format", "%i")[0]["format"] == "%i"
    assert parse("-o", "%i")[0]["format"] == "%i"
    assert parse("-o%i")[0]["format"] == "%i"
    assert parse("-j4034")[0]["jobs"] == ["4034"]


def test_repeatable_options_accumulate_in_order():
    assert parse("-j", "1", "--jobs=2,3", "-j4")[0]["jobs"] == ["1", "2,3", "4"]
    assert parse("-vvv", "-v")[0]["verbose"] == 4


def test_clustered_short_flags_and_value_at_the_end():
    opts, _ = parse("-hvo%i")
    assert opts["noheader"] and opts["verbose"] == 1 and opts["format"] == "%i"


def test_options_after_positionals_and_double_dash():
    opts, args = parse("42", "--format", "%i", "43")
    assert args == ["42", "43"] and opts["format"] == "%i"
    opts, args = parse("--", "-h", "x")
    assert args == ["-h", "x"] and not opts["noheader"]


def test_value_may_start_with_dash():
    assert parse("-o", "-x")[0]["format"] == "-x"


def test_unambiguous_long_prefix_is_accepted():
    assert parse("--job", "4034")[0]["jobs"] == ["4034"]
    assert parse("--nohead")[0]["noheader"]


def _error(*argv):
    with pytest.raises(CommandError) as info:
        parse(*argv)
    assert info.value.raw and info.value.rc == 1
    return info.value.message


def test_unknown_long_option_like_slurm():
    assert _error("--foo") == "squeue: unrecognized option '--foo'\nTry \"squeue --help\" for more information"
    assert _error("--foo=1").startswith("squeue: unrecognized option '--foo=1'\n")


def test_unknown_short_option():
    assert _error("-x").startswith("squeue: invalid option -- 'x'\n")


def test_missing_argument_messages():
    assert _error("--format").startswith("squeue: option '--format' requires an argument\n")
    assert _error("-o").startswith("squeue: option requires an argument -- 'o'\n")


def test_ambiguous_prefix_lists_candidates():
    assert _error("--s").startswith("squeue: option '--s' is ambiguous; possibilities: '--sort' '--start' '--states'")


def test_flag_with_argument_is_rejected():
    assert _error("--noheader=1").startswith("squeue: option '--noheader' doesn't allow an argument\n")


def test_split_list_flattens_commas():
    assert common.split_list(["1,2", "3", ",4,"]) == ["1", "2", "3", "4"]
    assert common.split_list("a,b") == ["a", "b"]
    assert common.split_list(None) == []


# -- run_command ------------------------------------------------------------------------

def run(body, capsys, **kw):
    with pytest.raises(SystemExit) as info:
        common.run_command("squeue", body, [], **kw)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_success_exits_with_body_rc(capsys):
    def body(argv):
        common.write_out("hello\n")
        return 0
    assert run(body, capsys) == (0, "hello\n", "")


def test_command_error_prefixed_or_raw(capsys):
    def usage(argv):
        raise common.UsageError("bad thing")
    assert run(usage, capsys) == (1, "", "squeue: error: bad thing\n")

    def raw(argv):
        raise CommandError("slurm_load_jobs error: Invalid job id specified", raw=True)
    assert run(raw, capsys) == (1, "", "slurm_load_jobs error: Invalid job id specified\n")


def test_unexpected_exception_is_one_line_without_traceback(capsys):
    def boom(argv):
        raise RuntimeError("oops")
    rc, out, err = run(boom, capsys)
    assert rc == 1 and out == "" and err == "squeue: error: internal error: RuntimeError('oops')\n"


def test_keyboard_interrupt_is_130(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt
    assert run(interrupted, capsys)[0] == 130


def test_controller_unreachable_and_api_error_texts(capsys):
    from batch_backend import client

    def unreachable(argv):
        raise client.ControllerUnreachable("connect failure (No such file or directory)")
    assert run(unreachable, capsys, unreachable="slurm_load_jobs error: {reason}") == (
        1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n")

    def timeout(argv):
        raise client.ControllerUnreachable("Socket timed out on send/recv operation")
    assert run(timeout, capsys, unreachable="slurm_load_jobs error: {reason}")[2] == \
        "slurm_load_jobs error: Socket timed out on send/recv operation\n"

    def api(argv):
        raise client.PermissionDenied(403, "Access/permission denied")
    assert run(api, capsys) == (1, "", "squeue: error: Access/permission denied\n")
