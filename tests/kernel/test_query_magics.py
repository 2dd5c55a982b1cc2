"""%squeue, %sinfo, %sacct, %scancel, %scontrol: tables in the notebook, same options as the CLI."""

import pytest

from kernel_ext.tables import Table, TextOutput
from magic_helpers import held_job, run_magic


def test_squeue_table_lists_the_job_in_html_and_text(ip, backend_name, cancel_after):
    job_id = held_job(ip, name="queued-one")
    cancel_after.append(job_id)
    table = ip.run_line_magic("squeue", f"-j {job_id}")
    assert isinstance(table, Table)
    assert table.dicts() == [{
        "JOBID": str(job_id), "PARTITION": "debug", "NAME": "queued-one", "USER": table.rows[0][3],
        "STATE": "PENDING", "TIME": "0:00", "TIME_LIMIT": "1:00:00", "NODES": "1", "CPUS": "1",
        "NODELIST(REASON)": "(JobHeldUser)"}]
    html = table._repr_html_()
    assert html.startswith("<table") and f"<td>{job_id}</td>" in html and "<td>queued-one</td>" in html
    text = repr(table)
    assert text.splitlines()[0].split() == table.columns
    assert "queued-one" in text.splitlines()[1]
    assert table.records[0]["job_id"] == job_id


def test_squeue_filters_are_the_cli_options(ip, backend_name, cancel_after):
    job_id = held_job(ip, name="filter-me")
    cancel_after.append(job_id)
    user = ip.run_line_magic("squeue", f"-j {job_id}").rows[0][3]
    pending = ip.run_line_magic("squeue", f"-u {user} -t PD -n filter-me")
    assert pending.column("JOBID") == [str(job_id)]
    running = ip.run_line_magic("squeue", "-t R -n filter-me")
    assert running.rows == []
    assert "No jobs." in repr(running) and "No jobs." in running._repr_html_()


def test_squeue_custom_format_shows_squeue_columns(ip, backend_name, cancel_after):
    job_id = held_job(ip, name="fmt")
    cancel_after.append(job_id)
    table = ip.run_line_magic("squeue", f"-j {job_id} -o '%i %T %j'")
    assert table.columns == ["JOBID", "STATE", "NAME"]
    assert table.rows == [[str(job_id), "PENDING", "fmt"]]


def test_squeue_dataframe_or_a_one_line_note_without_pandas(ip, backend_name, cancel_after):
    job_id = held_job(ip, name="frame")
    cancel_after.append(job_id)
    try:
        import pandas  # noqa: F401
    except ImportError:
        result, captured = run_magic(ip, f"squeue -j {job_id} -o df")
        assert isinstance(result.result, Table) and result.result.column("NAME") == ["frame"]
        assert captured.stderr.strip().splitlines() == [
            "squeue: error: -o df needs pandas, which is not installed; showing the table"]
    else:
        frame = ip.run_line_magic("squeue", f"-j {job_id} -o df")
        assert list(frame["JOBID"]) == [str(job_id)] and list(frame["NAME"]) == ["frame"]


def test_scancel_effect_is_visible_in_sacct(ip, cluster, backend_name):
    job_id = held_job(ip, name="to-cancel")
    result, captured = run_magic(ip, f"scancel {job_id}")
    assert result.result is None and captured.stderr == ""
    cluster.wait_state(job_id, "CANCELLED")
    table = ip.run_line_magic("sacct", f"-j {job_id} -X -o JobID,JobName,State")
    assert table.columns == ["JobID", "JobName", "State"]
    assert table.rows[0][:2] == [str(job_id), "to-cancel"]
    assert table.rows[0][2].startswith("CANCELLED")
    assert ip.run_line_magic("squeue", f"-j {job_id}").rows == []


def test_scancel_all_mine_cancels_my_matching_jobs(ip, cluster, backend_name):
    first, second = held_job(ip, name="mine-all"), held_job(ip, name="mine-all")
    ip.run_line_magic("scancel", "--all-mine -n mine-all")
    for job_id in (first, second):
        assert cluster.wait_state(job_id, "CANCELLED").startswith("CANCELLED")


def test_sacct_default_columns_include_steps(ip, cluster, backend_name):
    job_id = ip.run_cell_magic("sbatch", "-J acct-me", "true\n")
    cluster.wait_state(job_id, "COMPLETED")
    table = ip.run_line_magic("sacct", f"-j {job_id}")
    assert table.columns == ["JobID", "JobName", "Partition", "Account", "AllocCPUS", "State", "ExitCode"]
    rows = {row[0]: row for row in table.rows}
    assert rows[str(job_id)][1] == "acct-me" and rows[str(job_id)][5] == "COMPLETED"
    assert rows[f"{job_id}.batch"][5] == "COMPLETED"


def test_sinfo_table_shows_the_partitions(ip, backend_name):
    table = ip.run_line_magic("sinfo", "")
    assert table.columns == ["PARTITION", "AVAIL", "TIMELIMIT", "NODES", "STATE", "NODELIST"]
    partitions = {row[0]: row for row in table.rows}
    assert {"debug*", "short", "gpu"} <= set(partitions)
    assert partitions["short"][2] == "5:00" and partitions["gpu"][2] == "infinite"
    assert ip.run_line_magic("sinfo", "-p gpu").column("PARTITION") == ["gpu"]


def test_sinfo_node_mode_has_one_row_per_node_and_partition(ip, backend_name):
    table = ip.run_line_magic("sinfo", "-N -p debug")
    assert table.columns[:4] == ["NODELIST", "NODES", "PARTITION", "STATE"]
    assert sorted(table.column("NODELIST")) == ["n1", "n2", "n3", "n4"]


def test_scontrol_show_job_is_a_key_value_table(ip, backend_name, cancel_after):
    job_id = held_job(ip, name="shown")
    cancel_after.append(job_id)
    table = ip.run_line_magic("scontrol", f"show job {job_id}")
    assert table.columns == ["Key", "Value"]
    fields = dict(table.rows)
    assert (fields["JobId"], fields["JobName"], fields["JobState"], fields["Reason"]) == (
        str(job_id), "shown", "PENDING", "JobHeldUser")


def test_scontrol_release_lets_a_held_job_run(ip, cluster, backend_name):
    job_id = ip.run_cell_magic("sbatch", "--hold", "true\n")
    result, captured = run_magic(ip, f"scontrol release {job_id}")
    assert result.error_in_exec is None and captured.stderr == ""
    assert cluster.wait_state(job_id, "COMPLETED") == "COMPLETED"


@pytest.mark.parametrize("line", ["squeue --help", "sinfo --usage"])
def test_help_options_show_the_command_text(ip, backend_name, line):
    output = ip.run_line_magic(*line.split(" ", 1))
    assert isinstance(output, TextOutput) and output.text.strip()
    assert output._repr_html_().startswith("<pre>")
