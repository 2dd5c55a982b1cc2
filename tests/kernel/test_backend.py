"""The backend adapter: selection, and the same answers through BatchHub's client and the Slurm CLI."""

import time

import pytest

from kernel_ext.backend import (BatchHubBackend, ControllerDown, JobNotFound, QueueError, SlurmCLIBackend,
                                is_final, select_backend)


def test_load_ext_registers_every_magic(kernel_env):
    from IPython.core.interactiveshell import InteractiveShell
    import kernel_ext
    shell = InteractiveShell.instance()
    kernel_ext.load_ipython_extension(shell)
    magics = shell.magics_manager.magics
    assert {"sbatch", "squeue", "sinfo", "sacct", "scancel", "scontrol", "sprio", "sshare"} <= set(magics["line"])
    assert "sbatch" in magics["cell"]


def test_auto_selection_prefers_a_reachable_batchhub(kernel_env):
    assert isinstance(select_backend(), BatchHubBackend)


def test_auto_selection_falls_back_to_the_cli_when_no_controller_answers(queue_down):
    assert isinstance(select_backend(), SlurmCLIBackend)


@pytest.mark.parametrize("value, cls", [("cli", SlurmCLIBackend), ("batchhub", BatchHubBackend),
                                        ("CLI", SlurmCLIBackend)])
def test_environment_variable_forces_a_backend(kernel_env, monkeypatch, value, cls):
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", value)
    assert isinstance(select_backend(), cls)


def test_unknown_backend_name_is_a_queue_error(kernel_env, monkeypatch):
    monkeypatch.setenv("BATCHHUB_MAGICS_BACKEND", "pbs")
    with pytest.raises(QueueError, match="expected 'batchhub', 'cli' or 'auto'"):
        select_backend()


def _pick(record, keys):
    return {k: record[k] for k in keys}


def _both():
    return BatchHubBackend(), SlurmCLIBackend()


def test_both_backends_describe_a_held_job_alike(cluster, kernel_env):
    api, cli = _both()
    job_id = api.submit(["--hold", "-J", "twin", "-t", "7"], "#!/bin/sh\ntrue\n")
    try:
        keys = ("job_id", "display_id", "name", "partition", "state", "reason", "time_limit", "num_nodes",
                "num_cpus", "nodelist", "workdir", "user")
        queued = [_pick(b.queue(["-j", str(job_id)])[0], keys) for b in (api, cli)]
        assert queued[0] == queued[1]
        assert queued[0]["state"] == "PENDING" and queued[0]["time_limit"] == 7
        shown = [_pick(b.show_job(job_id), keys + ("stdout_file",)) for b in (api, cli)]
        assert shown[0] == shown[1]
        assert shown[0]["stdout_file"] == str(kernel_env / f"slurm-{job_id}.out")
    finally:
        cluster.run("scancel", str(job_id))


def test_both_backends_list_nodes_and_partitions_alike(kernel_env):
    api, cli = _both()
    node_keys = ("name", "cpus", "real_memory", "gres", "partitions")
    nodes = [sorted(tuple(n[k] if not isinstance(n[k], list) else tuple(n[k]) for k in node_keys)
                    for n in b.nodes()) for b in (api, cli)]
    assert nodes[0] == nodes[1]
    assert [n[0] for n in nodes[0]] == ["n1", "n2", "n3", "n4"]
    part_keys = ("name", "default", "max_time", "nodes", "total_cpus")
    parts = [[tuple(p[k] for k in part_keys) for p in b.partitions()] for b in (api, cli)]
    assert parts[0] == parts[1]
    assert ("short", False, 5, ["n1", "n2"], 8) in parts[0]


def test_array_job_records_cover_every_task(kernel_env):
    api, cli = _both()
    job_id = cli.submit(["--array=0-2", "-o", "/dev/null"], "#!/bin/sh\ntrue\n")
    deadline = time.monotonic() + 30
    while not all(is_final(r) for r in api.job_records(job_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for backend in (api, cli):
        records = backend.job_records(job_id)
        assert sorted(r["display_id"] for r in records) == [f"{job_id}_{i}" for i in range(3)]
        assert {r["state"] for r in records} == {"COMPLETED"}


@pytest.mark.parametrize("backend", _both(), ids=["batchhub", "cli"])
def test_unknown_job_raises_job_not_found(kernel_env, backend):
    with pytest.raises(JobNotFound):
        backend.job_records(987654)


@pytest.mark.parametrize("backend", _both(), ids=["batchhub", "cli"])
def test_unreachable_controller_raises_controller_down(queue_down, backend):
    with pytest.raises(ControllerDown, match="Unable to contact"):
        backend.queue()


def test_cli_backend_reports_a_missing_command(kernel_env):
    backend = SlurmCLIBackend(path="/nonexistent")
    with pytest.raises(QueueError, match="strigger is not available"):
        backend.command("strigger", [])
