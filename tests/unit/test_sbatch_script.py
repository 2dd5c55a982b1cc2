"""Script-content rules of sbatch: directive tokenising and Slurm's script checks."""

import pytest

from batch_backend.cli import sbatch_options, sbatch_script
from batch_backend.cli.sbatch_script import (
    NOSHEBANG_LINES, WRAP_TEMPLATE, UsageError, check_script, parse_directives,
)


def directives(line):
    return parse_directives("#!/bin/sh\n#SBATCH " + line + "\n")


@pytest.mark.parametrize("line, words", [
    ("-n 2", ["-n", "2"]),
    ("-n 2  # two tasks", ["-n", "2"]),
    ("--output=a#b", ["--output=a"]),            # unquoted '#' starts a comment, as in Slurm
    ("--output='a#b'", ["--output=a#b"]),
    ("--output=a\\#b", ["--output=a#b"]),
    ("--comment=\"it's fine\"", ["--comment=it's fine"]),
    ("--comment='unterminated value", ["--comment=unterminated value"]),
    ("--comment=''", ["--comment="]),
    ("-J ''", ["-J", ""]),
    ("\t-n\t3 ", ["-n", "3"]),
    ("# only a comment", []),
])
def test_directive_tokenising(line, words):
    assert directives(line) == words


def test_tab_after_SBATCH_is_a_directive_and_other_prefixes_are_not():
    script = "#!/bin/sh\n#SBATCH\t-n 2\n#SBATCHX -n 3\n#sbatch -n 4\n"
    assert parse_directives(script) == ["-n", "2"]


def test_shebang_line_itself_is_not_scanned_as_directive():
    assert parse_directives("#!/bin/sh #SBATCH -n 9\n") == []


def test_check_script_accepts_a_normal_script():
    check_script("#!/bin/bash\necho ok\n")


@pytest.mark.parametrize("script, first_line", [
    ("", "Batch script is empty!"),
    ("\n\n", "Batch script contains only whitespace!"),
    ("echo hi\n", NOSHEBANG_LINES[0]),
    ("#!/bin/sh\necho \0\n", "The Slurm controller does not allow scripts that"),
    ("#!/bin/sh\r\n", "Batch script contains DOS line breaks (\\r\\n)"),
])
def test_check_script_errors_in_slurm_order(script, first_line):
    with pytest.raises(UsageError) as info:
        check_script(script)
    assert info.value.lines[0] == first_line


def test_wrap_template_passes_the_script_checks():
    script = WRAP_TEMPLATE.format("hostname")
    check_script(script)
    assert script.splitlines() == ["#!/bin/sh", "# This script was created by sbatch --wrap.",
                                   "", "hostname"]


def test_usage_error_accepts_a_string_or_lines():
    assert UsageError("one").lines == ["one"]
    assert str(UsageError(["a", "b"])) == "a\nb"


def test_sbatch_options_re_exports_the_same_objects():
    assert sbatch_options.UsageError is sbatch_script.UsageError
    assert sbatch_options.parse_directives is sbatch_script.parse_directives
