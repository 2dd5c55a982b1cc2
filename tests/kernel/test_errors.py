"""Every failure of a magic is one line in the cell output, never a traceback."""

import pytest

from magic_helpers import assert_one_error_line, run_magic


@pytest.mark.parametrize("line, prog", [
    ("squeue --bogus", "squeue"),
    ("sinfo --bogus", "sinfo"),
    ("sacct --bogus", "sacct"),
    ("scancel --bogus 1", "scancel"),
    ("scontrol frobnicate", "scontrol"),
    ("squeue -t NOSUCHSTATE", "squeue"),
])
def test_bad_option_is_one_line(ip, backend_name, line, prog):
    assert_one_error_line(*run_magic(ip, line), prog)


def test_bad_sbatch_option_in_a_cell_is_one_line(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch --no-such-option", "true\n"), "sbatch")
    assert "no-such-option" in line


def test_invalid_partition_is_one_line_with_both_reasons(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch -p nosuch", "true\n"), "sbatch")
    assert line == ("sbatch: error: invalid partition specified: nosuch; "
                    "Batch job submission failed: Invalid partition name specified")


def test_missing_script_file_is_one_line(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch does-not-exist.sh"), "sbatch")
    assert line == "sbatch: error: Unable to open file does-not-exist.sh"


def test_script_file_without_shebang_is_one_line(ip, backend_name, kernel_env):
    (kernel_env / "plain.sh").write_text("echo no shebang\n")
    line = assert_one_error_line(*run_magic(ip, "sbatch plain.sh"), "sbatch")
    assert line.startswith("sbatch: error: This does not look like a batch script.  The first line must")


def test_unknown_job_is_one_line(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "scontrol show job 987654"), "scontrol")
    assert line == "scontrol: error: Invalid job id specified"
    assert_one_error_line(*run_magic(ip, "squeue -j 987654"), "squeue")


def test_sprio_on_basic_priority_is_slurms_one_line_and_sshare_shows_usage(ip, backend_name):
    """The test cluster runs priority/basic: sprio refuses as Slurm does, sshare still answers."""
    line = assert_one_error_line(*run_magic(ip, "sprio"), "sprio")
    assert "You are not running a supported priority plugin" in line
    result, captured = run_magic(ip, "sshare -a")
    assert result.error_in_exec is None and "Traceback" not in captured.stdout + captured.stderr
    assert "RawShares" in captured.stdout + str(result.result) and "root" in captured.stdout + str(result.result)


@pytest.mark.parametrize("line, cell, prog", [
    ("squeue", None, "squeue"),
    ("sinfo", None, "sinfo"),
    ("sacct", None, "sacct"),
    ("scancel 12", None, "scancel"),
    ("scontrol show job 12", None, "scontrol"),
    ("sbatch", "true\n", "sbatch"),
])
def test_queue_down_is_one_line(ip, backend_name, queue_down, line, cell, prog):
    message = assert_one_error_line(*run_magic(ip, line, cell), prog)
    assert "Unable to contact" in message


def test_unbalanced_quote_is_one_line(ip, backend_name):
    assert_one_error_line(*run_magic(ip, "squeue -n 'oops"), "squeue")


def test_cell_magic_refuses_a_script_path(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch job.sh", "true\n"), "sbatch")
    assert "the cell is the script" in line


def test_line_magic_without_script_explains_usage(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch -p debug"), "sbatch")
    assert "usage: %sbatch" in line


def test_out_needs_a_python_name(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "sbatch --out 1x", "true\n"), "sbatch")
    assert "not a valid Python variable name" in line


def test_iterate_is_refused_instead_of_hanging(ip, backend_name):
    line = assert_one_error_line(*run_magic(ip, "squeue -i 5"), "squeue")
    assert "--iterate" in line
