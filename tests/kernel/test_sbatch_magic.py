"""%sbatch and %%sbatch: submit from a notebook cell, through BatchHub's client and the Slurm CLI."""

import sys

from magic_helpers import capture_output, run_magic


def test_cell_submission_prints_and_returns_the_job_id(ip, cluster, backend_name):
    with capture_output() as captured:
        job_id = ip.run_cell_magic("sbatch", "", "echo hello from the cell\n")
    assert isinstance(job_id, int)
    assert captured.stdout == f"Submitted batch job {job_id}\n"
    assert cluster.wait_state(job_id, "COMPLETED") == "COMPLETED"


def test_cell_result_lands_in_underscore_and_out_variable(ip, backend_name):
    result, captured = run_magic(ip, "sbatch --out my_job", "true\n")
    assert result.error_in_exec is None, captured.stderr
    job_id = ip.user_ns["my_job"]
    assert result.result == job_id == ip.user_ns["_"]
    assert f"Submitted batch job {job_id}" in captured.stdout


def test_sbatch_directives_in_the_cell_are_honoured(ip, cluster, backend_name):
    cell = "#SBATCH -J from-directive\n#SBATCH --partition=short\n#SBATCH -t 3\nhostname\n"
    job_id = ip.run_cell_magic("sbatch", "--hold", cell)
    try:
        job = cluster.job(job_id)
        assert (job["JobName"], job["Partition"], job["TimeLimit"]) == ("from-directive", "short", "00:03:00")
    finally:
        cluster.run("scancel", str(job_id))


def test_magic_line_options_override_directives(ip, cluster, backend_name):
    job_id = ip.run_cell_magic("sbatch", "--hold -J from-line", "#SBATCH -J from-directive\ntrue\n")
    try:
        assert cluster.job(job_id)["JobName"] == "from-line"
    finally:
        cluster.run("scancel", str(job_id))


def test_cell_without_shebang_runs_under_bash(ip, cluster, backend_name, kernel_env):
    job_id = ip.run_cell_magic("sbatch", "-o bash.out", 'echo "bash=${BASH_VERSION:+yes}"\n')
    cluster.wait_state(job_id, "COMPLETED")
    assert (kernel_env / "bash.out").read_text() == "bash=yes\n"


def test_python_cell_runs_with_the_kernel_interpreter(ip, cluster, backend_name, kernel_env):
    cell = ("#SBATCH -J pycell\n#SBATCH -o py.out\n"
            "import sys\nprint(sys.executable)\nprint(sum(range(10)))\n")
    job_id = ip.run_cell_magic("sbatch", "--python", cell)
    assert cluster.wait_state(job_id, "COMPLETED") == "COMPLETED"
    assert (kernel_env / "py.out").read_text() == f"{sys.executable}\n45\n"
    assert cluster.job(job_id)["JobName"] == "pycell"


def test_wait_blocks_until_the_end_and_prints_the_output_tail(ip, cluster, backend_name, magics):
    magics.watch_widget = "never"
    magics.tail_lines = 2
    result, captured = run_magic(ip, "sbatch --wait", "for i in 1 2 3; do echo line $i; done\n")
    job_id = result.result
    assert isinstance(job_id, int), captured.stderr
    # the magic returned only once the job had ended
    assert cluster.state(job_id) == "COMPLETED"
    out = captured.stdout
    assert out.startswith(f"Submitted batch job {job_id}\n")
    assert f"Job {job_id} COMPLETED" in out
    assert out.split("<==\n", 1)[1].startswith("line 2\nline 3\n")
    assert "line 1" not in out
    assert f"slurm-{job_id}.out <==" in out


def test_wait_reports_a_failed_job_with_its_exit_code(ip, backend_name, magics):
    magics.watch_widget = "never"
    result, captured = run_magic(ip, "sbatch --wait", "echo about to fail\nexit 3\n")
    job_id = result.result
    assert f"Job {job_id} FAILED (exit code 3:0)" in captured.stdout
    assert "about to fail" in captured.stdout


def test_wait_with_the_widget_leaves_a_completed_watch(ip, backend_name, magics):
    magics.watch_widget = "always"
    result, captured = run_magic(ip, "sbatch --wait", "echo widget tail\n")
    watch = magics.last_watch
    assert watch is not None and watch.job_id == str(result.result)
    assert watch.state_label.value == "COMPLETED"
    assert watch.timeline.value.endswith("COMPLETED")
    assert watch.progress.bar_style == "success"
    assert watch.tail.value == "widget tail"
    assert not watch.polling
    assert "widget tail" in captured.stdout


def test_line_magic_submits_a_script_file_with_arguments(ip, cluster, backend_name, kernel_env):
    script = kernel_env / "job.sh"
    script.write_text("#!/bin/sh\n#SBATCH -J filejob\n#SBATCH -o file.out\necho args: \"$@\"\n")
    job_id = ip.run_line_magic("sbatch", f"--out file_job {script.name} one two")
    assert ip.user_ns["file_job"] == job_id
    assert cluster.wait_state(job_id, "COMPLETED") == "COMPLETED"
    assert (kernel_env / "file.out").read_text() == "args: one two\n"
    assert cluster.job(job_id)["JobName"] == "filejob"


def test_words_after_the_script_are_its_arguments_not_magic_options(ip, cluster, backend_name, kernel_env):
    (kernel_env / "echo.sh").write_text("#!/bin/sh\n#SBATCH -o echo.out\necho \"$@\"\n")
    job_id = ip.run_line_magic("sbatch", "echo.sh --wait --out x")
    cluster.wait_state(job_id, "COMPLETED")
    assert (kernel_env / "echo.out").read_text() == "--wait --out x\n"
    assert "x" not in ip.user_ns


def test_python_variables_expand_in_the_magic_line(ip, cluster, backend_name):
    ip.user_ns["job_name"] = "expanded-name"
    job_id = ip.run_cell_magic("sbatch", "--hold -J $job_name", "true\n")
    try:
        assert cluster.job(job_id)["JobName"] == "expanded-name"
    finally:
        cluster.run("scancel", str(job_id))


def test_help_prints_sbatch_usage_and_submits_nothing(ip, backend_name):
    result, captured = run_magic(ip, "sbatch --help")
    assert result.result is None
    assert "Usage: sbatch" in captured.stdout
