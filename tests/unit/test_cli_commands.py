"""The read/act commands (squeue, scancel, sacct, scontrol, sinfo) against a fake client.

A ``FakeClient`` replaces ``batch_backend.client.Client`` and records every
call, so these tests pin down what each command asks the controller and how
it turns the answer (or an error) into stdout, stderr and the exit code.
Unreachable-controller tests use the real client on a socket that does not exist.
"""

import calendar
import os
import re
import time

import pytest

from batch_backend import client as client_module
from batch_backend.cli import formats, sacct, scancel, scontrol, sinfo, squeue

T0 = calendar.timegm((2026, 11, 22, 16, 0, 48))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("BATCHHUB_TOKEN", raising=False)
    monkeypatch.delenv("SQUEUE_FORMAT", raising=False)
    monkeypatch.delenv("SQUEUE_FORMAT2", raising=False)
    monkeypatch.delenv("SACCT_FORMAT", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def job(job_id, state="PENDING", **kw):
    j = dict(job_id=job_id, array_job_id=None, array_task_id=None, array_spec=None,
             display_id=str(job_id), name="job", user="root", uid=0, gid=0, group="root",
             account="", qos="normal", partition="debug", state=state, reason="Priority",
             exit_code=0, exit_signal=0, cancelled_by=None, priority=1, nice=0, submit_time=T0,
             eligible_time=T0, start_time=None, start_estimated=False, end_time=None,
             time_limit=60, num_nodes=1, num_tasks=1, cpus_per_task=1, num_cpus=1, nodes=[],
             nodelist="", batch_host="", workdir="/root", stdout="slurm-%j.out", stderr="",
             stdin="/dev/null", command="", steps=[])
    if state in ("RUNNING", "COMPLETING", "COMPLETED"):
        j.update(start_time=T0, end_time=T0 + 3600, nodes=["n1"], nodelist="n1", batch_host="n1", reason="None")
    j.update(kw)
    return j


class FakeClient:
    """In-memory stand-in for the controller API; ``calls`` records (method, args, kwargs)."""

    def __init__(self, jobs=(), nodes=(), partitions=(), config=None, cancel_result=None, purged=()):
        self.all_jobs = list(jobs)
        self.purged = set(purged)
        self.node_list = list(nodes)
        self.partition_list = list(partitions)
        self.config_dict = config or {"ClusterName": "test"}
        self.cancel_result = cancel_result or {"cancelled": [], "signalled": [], "not_found": [], "denied": []}
        self.calls = []

    def _match(self, j, wanted):
        base = wanted.split("_")[0]
        return (str(j["job_id"]) == wanted or j["display_id"] == wanted
                or (j.get("array_job_id") is not None and str(j["array_job_id"]) == base))

    def jobs(self, ids=None, users=None, partitions=None, states=None, names=None, include_finished=False, fields=None,
             hide_hidden=False):
        self.calls.append(("jobs", dict(ids=ids, users=users, partitions=partitions, states=states,
                                        names=names, include_finished=include_finished, fields=fields)))
        out = []
        for j in self.all_jobs:
            if j["job_id"] in self.purged:
                continue
            if not include_finished and j["state"] not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"):
                continue
            if ids and not any(self._match(j, i) for i in ids):
                continue
            if states and j["state"] not in states:
                continue
            if users and j["user"] not in users:
                continue
            out.append(j)
        if fields:  # as the controller does: only those keys, None for unknown ones
            out = [{k: j.get(k) for k in fields} for j in out]
        return out

    def job(self, job_id):
        self.calls.append(("job", job_id))
        return self._find(job_id)

    def _find(self, job_id):
        for j in self.all_jobs:
            if j["job_id"] not in self.purged and (str(j["job_id"]) == str(job_id) or j["display_id"] == str(job_id)):
                return j
        raise client_module.NotFound(404, "Invalid job id specified")

    def cancel(self, ids=None, **kw):
        self.calls.append(("cancel", list(ids or []), kw))
        return self.cancel_result

    def update_job(self, job_id, **fields):
        self.calls.append(("update_job", job_id, fields))
        self._find(job_id)
        return {}

    def job_action(self, job_id, action):
        self.calls.append(("job_action", job_id, action))
        self._find(job_id)
        return {}

    def accounting(self, **kw):
        self.calls.append(("accounting", kw))
        ids = kw.get("ids")
        return [j for j in self.all_jobs if not ids or any(self._match(j, i) for i in ids)]

    def nodes(self, names=None):
        self.calls.append(("nodes", names))
        return [n for n in self.node_list if not names or n["name"] in names]

    def update_node(self, names, state=None, reason=None):
        self.calls.append(("update_node", names, state, reason))
        return {}

    def partitions(self):
        self.calls.append(("partitions",))
        return self.partition_list

    def config(self):
        return self.config_dict

    def ping(self):
        return {"user": "root", "uid": 0, "cluster_name": "test", "host": "head"}


@pytest.fixture
def fake(monkeypatch):
    holder = {}

    def install(**kw):
        holder["client"] = FakeClient(**kw)
        monkeypatch.setattr(client_module, "Client", lambda *a, **k: holder["client"])
        return holder["client"]
    return install


@pytest.fixture
def no_controller(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHHUB_SOCKET", str(tmp_path / "missing.sock"))


def run(command, argv, capsys):
    with pytest.raises(SystemExit) as info:
        command.main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


# -- squeue -------------------------------------------------------------------------------

def test_squeue_running_job_state_and_host(fake, capsys):
    fake(jobs=[job(4034, "RUNNING")])
    assert run(squeue, ["-h", "-j", "4034", "-o", "%T %B"], capsys) == (0, "RUNNING n1\n", "")


def test_squeue_finished_job_vanishes_even_with_j(fake, capsys):
    c = fake(jobs=[job(4036, "COMPLETED")])
    assert run(squeue, ["-h", "-j", "4036", "-o", "%T %B"], capsys) == (0, "", "")
    assert c.calls[0][1]["include_finished"] is False
    rc, out, err = run(squeue, ["-j4036"], capsys)
    assert rc == 0 and err == "" and out.startswith("             JOBID PARTITION") and out.count("\n") == 1


def test_squeue_never_existing_id_is_rc1_with_slurm_text(fake, capsys):
    fake(jobs=[job(4034, "RUNNING")])
    assert run(squeue, ["-h", "-j", "999999", "-o", "%T %B"], capsys) == (
        1, "", "slurm_load_jobs error: Invalid job id specified\n")


def test_squeue_purged_job_is_an_invalid_id(fake, capsys):
    fake(jobs=[job(4036, "COMPLETED")], purged={4036})
    assert run(squeue, ["-h", "--job", "4036"], capsys)[0] == 1


def test_squeue_several_ids_never_fail(fake, capsys):
    c = fake(jobs=[job(4034, "RUNNING")])
    assert run(squeue, ["-h", "-j", "4034,999999", "-o", "%i"], capsys) == (0, "4034\n", "")
    assert not any(call[0] == "job" for call in c.calls)


def test_squeue_all_states_show_finished(fake, capsys):
    c = fake(jobs=[job(4036, "COMPLETED")])
    assert run(squeue, ["-h", "-t", "all", "-o", "%i %T"], capsys) == (0, "4036 COMPLETED\n", "")
    assert c.calls[0][1]["include_finished"] is True and c.calls[0][1]["states"] is None


def test_squeue_states_compact_and_long_are_normalised(fake, capsys):
    c = fake(jobs=[])
    run(squeue, ["-h", "-t", "pd,Running", "--states=CG"], capsys)
    assert c.calls[0][1]["states"] == ["PENDING", "RUNNING", "COMPLETING"]
    assert c.calls[0][1]["include_finished"] is False
    assert run(squeue, ["-t", "bogus"], capsys)[2].startswith("squeue: error: Invalid job state specified: bogus\n")


def test_squeue_array_rows(fake, capsys):
    fake(jobs=[job(4039, array_job_id=4039, array_spec="2-3%2", display_id="4039_[2-3%2]", reason="JobArrayTaskLimit"),
               job(4040, "RUNNING", array_job_id=4039, array_task_id=0, display_id="4039_0"),
               job(4041, "RUNNING", array_job_id=4039, array_task_id=1, display_id="4039_1")])
    assert run(squeue, ["-h", "-j", "4039", "-o", "%T %B"], capsys)[1] == "PENDING n/a\nRUNNING n1\nRUNNING n1\n"
    assert run(squeue, ["-h", "-r", "-o", "%i"], capsys)[1] == "4039_2\n4039_3\n4039_0\n4039_1\n"


def test_squeue_single_array_task_id_found_in_pending_range(fake, capsys):
    c = fake(jobs=[job(4039, array_job_id=4039, array_spec="2-3", display_id="4039_[2-3]")])
    assert run(squeue, ["-h", "-j", "4039_3", "-o", "%i"], capsys) == (0, "4039_[2-3]\n", "")
    assert not any(call[0] == "job" for call in c.calls)


def test_squeue_users_me_and_filters(fake, capsys, monkeypatch):
    c = fake(jobs=[])
    monkeypatch.setattr("batch_backend.cli.common.current_user", lambda: "alice")
    run(squeue, ["--me", "-p", "debug,gpu", "-n", "a", "--name=b"], capsys)
    call = c.calls[0][1]
    assert call["users"] == ["alice"] and call["partitions"] == ["debug", "gpu"] and call["names"] == ["a", "b"]


def test_squeue_long_prints_date_line(fake, capsys):
    fake(jobs=[job(1)])
    out = run(squeue, ["-l"], capsys)[1].splitlines()
    assert len(out[0].split()) == 5 and out[1].split()[4] == "STATE"


def test_squeue_rejects_positionals_and_bad_ids(fake, capsys):
    fake(jobs=[])
    rc, out, err = run(squeue, ["4034"], capsys)
    assert rc == 1 and out == "" and err.startswith("squeue: error: Unrecognized option: 4034\n")
    assert run(squeue, ["-j", "abc"], capsys) == (1, "", "squeue: error: Invalid job id: abc\n")
    assert run(squeue, ["--bogus"], capsys) == (
        1, "", "squeue: unrecognized option '--bogus'\nTry \"squeue --help\" for more information\n")
    assert run(squeue, ["-o", "%i", "-l"], capsys)[0] == 1


def test_squeue_Format_option(fake, capsys):
    fake(jobs=[job(7)])
    assert run(squeue, ["-h", "-O", "JobID:5,State:.8"], capsys)[1] == "7     PENDING\n"


def test_squeue_asks_only_for_the_fields_it_shows(fake, capsys):
    c = fake(jobs=[job(4034, "RUNNING")])
    run(squeue, ["-h", "-j", "4034", "-o", "%T %B"], capsys)
    assert c.calls[0][1]["fields"] == sorted(set(formats.SQUEUE_BASE_FIELDS) | {"batch_host"})
    run(squeue, ["-h", "-O", "JobID,stdout"], capsys)
    assert c.calls[-1][1]["fields"] is None  # a field without a known key list: everything


def test_squeue_default_and_long_outputs_survive_field_projection(fake, capsys):
    fake(jobs=[job(4034, "RUNNING", name="envdump", start_time=time.time() - 3),
               job(4038, name="wrap", reason="JobHeldUser")])
    lines = run(squeue, [], capsys)[1].splitlines()
    assert lines[1] == "              4038     debug     wrap     root PD       0:00      1 (JobHeldUser)"
    assert re.fullmatch(r"              4034     debug  envdump     root  R       0:0[34]      1 n1", lines[2])
    out = run(squeue, ["-h", "-o", "%all"], capsys)[1]
    assert "|envdump|" in out and "|JobHeldUser|" in out


def test_squeue_controller_unreachable_text(no_controller, capsys):
    assert run(squeue, ["-h", "-j", "4034", "-o", "%T %B"], capsys) == (
        1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n")


# -- scancel --------------------------------------------------------------------------

def test_scancel_signal_after_positional_by_name(fake, capsys):
    c = fake()
    assert run(scancel, ["42", "--signal", "USR2"], capsys) == (0, "", "")
    assert c.calls == [("cancel", ["42"], dict(signal=12, batch_only=False, full=False, users=None,
                                                 names=None, partitions=None, states=None))]


def test_scancel_numeric_and_sig_prefixed_signals(fake, capsys):
    c = fake()
    run(scancel, ["-s", "10", "4039_[2-3%2]"], capsys)
    run(scancel, ["-sSIGTERM", "-b", "4034.0"], capsys)
    run(scancel, ["--full", "-s", "kill", "7"], capsys)
    assert [(x[1], x[2]["signal"], x[2]["batch_only"], x[2]["full"]) for x in c.calls] == [
        (["4039_[2-3%2]"], 10, False, False), (["4034.0"], 15, True, False), (["7"], 9, False, True)]
    assert run(scancel, ["-s", "NOPE", "1"], capsys) == (1, "", "scancel: error: Invalid job signal: NOPE\n")


def test_scancel_unknown_or_finished_is_silent_rc0(fake, capsys):
    fake(cancel_result={"cancelled": [], "signalled": [], "not_found": ["999999"], "denied": []})
    assert run(scancel, ["999999"], capsys) == (0, "", "")
    rc, out, err = run(scancel, ["-v", "999999"], capsys)
    assert rc == 0 and out == "" and "Kill job error on job id 999999: Invalid job id specified" in err


def test_scancel_other_users_job_is_denied(fake, capsys):
    fake(cancel_result={"cancelled": [], "signalled": [], "not_found": [], "denied": ["4043"]})
    assert run(scancel, ["4043"], capsys) == (
        1, "", "scancel: error: Kill job error on job id 4043: Access/permission denied\n")


def test_scancel_needs_some_job_identification(fake, capsys):
    c = fake()
    assert run(scancel, [], capsys) == (1, "", "scancel: error: No job identification provided\n")
    assert run(scancel, ["-u", "alice", "-t", "pd"], capsys)[0] == 0
    assert c.calls[-1][2]["users"] == ["alice"] and c.calls[-1][2]["states"] == ["PENDING"]
    assert run(scancel, ["12x"], capsys) == (1, "", "scancel: error: Invalid job id 12x\n")


def test_scancel_controller_unreachable(no_controller, capsys):
    rc, out, err = run(scancel, ["4057"], capsys)
    assert rc == 8 and out == ""
    assert err == "scancel: error: Kill job error on job id 4057: Unable to contact slurm controller (connect failure)\n"


# -- sacct -----------------------------------------------------------------------------

def test_sacct_unknown_id_prints_header_only(fake, capsys):
    fake(jobs=[])
    assert run(sacct, ["-o", "JobID,State,NodeList", "--parsable2", "-j", "999999"], capsys) == (
        0, "JobID|State|NodeList\n", "")


def test_sacct_repeated_j_and_all_time_window(fake, capsys):
    c = fake(jobs=[job(4034, "RUNNING", steps=[{"step_id": "batch", "state": "RUNNING", "nodelist": "n1"}]),
                   job(4036, "COMPLETED")])
    rc, out, err = run(sacct, ["-o", "JobID,State,NodeList", "--parsable2", "-j", "4034", "-j", "4036"], capsys)
    assert (rc, err) == (0, "")
    assert out == "JobID|State|NodeList\n4034|RUNNING|n1\n4034.batch|RUNNING|n1\n4036|COMPLETED|n1\n"
    call = c.calls[-1][1]
    assert call["ids"] == ["4034", "4036"] and call["start"] is None and call["users"] is None


def test_sacct_default_window_is_since_midnight(fake, capsys, monkeypatch):
    c = fake(jobs=[])
    monkeypatch.setattr(os, "getuid", lambda: 0)
    run(sacct, ["-n", "-X"], capsys)
    from batch_backend import timespec
    assert c.calls[-1][1]["start"] == int(timespec.parse_datetime("today"))
    run(sacct, ["-S", "now-30days", "-E", "2026-12-01T10:00"], capsys)
    call = c.calls[-1][1]
    assert abs(call["start"] - (time.time() - 30 * 86400)) < 5
    assert call["end"] == calendar.timegm((2026, 12, 1, 10, 0, 0))


def test_sacct_non_root_sees_own_jobs_by_default(fake, capsys, monkeypatch):
    c = fake(jobs=[])
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr("batch_backend.cli.common.current_user", lambda: "alice")
    run(sacct, ["-X"], capsys)
    assert c.calls[-1][1]["users"] == ["alice"]
    run(sacct, ["-X", "-a"], capsys)
    assert c.calls[-1][1]["users"] is None


def test_sacct_unknown_user_is_rc1(fake, capsys):
    fake(jobs=[])
    assert run(sacct, ["-u", "nosuchuser_xyz"], capsys) == (1, "", "sacct: error: Invalid user id: nosuchuser_xyz\n")
    c = fake(jobs=[])
    assert run(sacct, ["-u", "root", "-n"], capsys)[0] == 0
    assert c.calls[-1][1]["users"] == ["root"]


def test_sacct_invalid_field_and_bad_time(fake, capsys):
    fake(jobs=[])
    assert run(sacct, ["-o", "JobID,Bogus"], capsys) == (1, "", 'sacct: error: Invalid field requested: "Bogus"\n')
    assert run(sacct, ["-S", "yesterdayish"], capsys) == (
        1, "", "sacct: error: Invalid time specification: yesterdayish\n")


def test_sacct_brief_and_state_filter(fake, capsys):
    c = fake(jobs=[job(5, "COMPLETED")])
    assert run(sacct, ["-b", "-P", "-j", "5", "-s", "cd,F"], capsys)[1] == "JobID|State|ExitCode\n5|COMPLETED|0:0\n"
    assert c.calls[-1][1]["states"] == ["COMPLETED", "FAILED"]


def test_sacct_controller_unreachable(no_controller, capsys):
    assert run(sacct, ["-j", "1"], capsys) == (
        1, "", "sacct: error: Unable to contact slurm controller (connect failure)\n")


# -- scontrol ----------------------------------------------------------------------------

def test_scontrol_show_job_unknown_id(fake, capsys):
    fake(jobs=[])
    assert run(scontrol, ["show", "job", "999999"], capsys) == (
        1, "", "slurm_load_jobs error: Invalid job id specified\n")


def test_scontrol_show_job_record(fake, capsys):
    fake(jobs=[job(4034, "RUNNING", name="envdump")])
    rc, out, err = run(scontrol, ["show", "job", "4034"], capsys)
    assert (rc, err) == (0, "")
    assert out.startswith("JobId=4034 JobName=envdump\n   UserId=root(0) GroupId=root(0) MCS_label=N/A\n")
    assert out.endswith("\n\n")
    rc, out, _ = run(scontrol, ["-o", "show", "job", "4034"], capsys)
    assert out.count("\n") == 1


def test_scontrol_show_recently_finished_job(fake, capsys):
    fake(jobs=[job(4036, "COMPLETED")])
    assert "JobState=COMPLETED" in run(scontrol, ["show", "job", "4036"], capsys)[1]


def test_scontrol_show_node_and_partition_not_found(fake, capsys):
    fake(nodes=[], partitions=[])
    assert run(scontrol, ["show", "node", "nosuch"], capsys) == (1, "", "Node nosuch not found\n")
    assert run(scontrol, ["show", "partition", "nosuch"], capsys) == (1, "", "Partition nosuch not found\n")


def test_scontrol_hostnames_and_hostlist_need_no_controller(no_controller, capsys, monkeypatch):
    assert run(scontrol, ["show", "hostnames", "n[1-3],gpu01"], capsys) == (0, "n1\nn2\nn3\ngpu01\n", "")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[4-5]")
    assert run(scontrol, ["show", "hostnames"], capsys)[1] == "n4\nn5\n"
    assert run(scontrol, ["show", "hostlist", "n3,n1,n2"], capsys)[1] == "n[1-3]\n"


def test_scontrol_update_job_fields(fake, capsys):
    c = fake(jobs=[job(5, time_limit=60)])
    rc = run(scontrol, ["update", "JobId=5", "TimeLimit=1:30:00", "Partition=gpu", "Name=new",
                        "MinMemoryNode=2G", "StartTime=2026-12-01T10:00:00", "NumNodes=2-4"], capsys)[0]
    assert rc == 0
    assert c.calls[0] == ("update_job", "5", dict(time_limit=90, partition="gpu", name="new",
                                                  mem_per_node=2048,
                                                  begin_time=calendar.timegm((2026, 12, 1, 10, 0, 0)),
                                                  num_nodes=2))
    run(scontrol, ["update", "jobid=5", "timelimit=+30"], capsys)
    assert c.calls[-1] == ("update_job", "5", {"time_limit": 90})


def test_scontrol_update_errors(fake, capsys):
    fake(jobs=[])
    assert run(scontrol, ["update", "JobId=5", "Foo=1"], capsys) == (
        1, "", "scontrol: error: Update of this parameter is not supported: Foo=1\nscontrol: error: Request aborted\n")
    assert run(scontrol, ["update", "JobId=999", "Nice=5"], capsys) == (
        1, "", "slurm_update error: Invalid job id specified\n")


def test_scontrol_update_node_with_split_reason(fake, capsys):
    c = fake()
    assert run(scontrol, ["update", "NodeName=n[1-2]", "State=DRAIN", 'Reason="disk', 'full"'], capsys)[0] == 0
    assert c.calls == [("update_node", ["n1", "n2"], "DRAIN", "disk full")]
    assert run(scontrol, ["update", "NodeName=n1", "State=drain"], capsys) == (
        1, "", "scontrol: error: You must specify a reason when DOWNING or DRAINING a node. Request denied\n")


def test_scontrol_job_actions_take_several_ids(fake, capsys):
    c = fake(jobs=[job(1), job(2), job(3)])
    assert run(scontrol, ["hold", "1,2", "3"], capsys) == (0, "", "")
    assert [x[1:] for x in c.calls] == [("1", "hold"), ("2", "hold"), ("3", "hold")]
    rc, out, err = run(scontrol, ["requeue", "99"], capsys)
    assert rc == 1 and "Invalid job id specified" in err


def test_scontrol_version_ping_config(fake, capsys):
    fake()
    assert run(scontrol, ["version"], capsys) == (0, "slurm 22.05.11\n", "")
    assert run(scontrol, ["-V"], capsys) == (0, "slurm 22.05.11\n", "")
    assert run(scontrol, ["ping"], capsys) == (0, "Slurmctld(primary) at head is UP\n", "")
    rc, out, err = run(scontrol, ["show", "config"], capsys)
    assert rc == 0 and out.startswith("Configuration data as of ") and "ClusterName             = test\n" in out


def test_scontrol_unknown_command(fake, capsys):
    fake()
    assert run(scontrol, ["frobnicate"], capsys) == (1, "", "scontrol: error: Invalid command: frobnicate\n")


def test_scontrol_unreachable_texts(no_controller, capsys):
    assert run(scontrol, ["show", "job", "1"], capsys)[2] == \
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    rc, out, err = run(scontrol, ["ping"], capsys)
    assert rc == 1 and out.endswith("is DOWN\n")


# -- sinfo -------------------------------------------------------------------------------

def node(name, state="IDLE", flags=()):
    return dict(name=name, state=state, state_flags=list(flags), reason="", cpus=4, alloc_cpus=0,
                real_memory=8000, alloc_memory=0, gres="", features=[], partitions=["debug"])


PART = dict(name="debug", default=True, state="UP", max_time=60, default_time=None, max_nodes=None,
            min_nodes=0, nodes=["n1", "n2", "n3", "n4"], nodelist="n[1-4]", hidden=False, total_cpus=16)


def test_sinfo_default_table(fake, capsys):
    fake(nodes=[node(f"n{i}") for i in range(1, 5)], partitions=[PART])
    assert run(sinfo, [], capsys) == (0, "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
                                         "debug*       up    1:00:00      4   idle n[1-4]\n", "")


def test_sinfo_filters_and_node_mode(fake, capsys):
    fake(nodes=[node("n1", "ALLOCATED"), node("n2"), node("n3"), node("n4", "DRAINED", ["DRAIN"])],
         partitions=[PART, dict(PART, name="other", default=False)])
    assert run(sinfo, ["-h", "-p", "debug", "-t", "idle"], capsys)[1] == "debug*       up    1:00:00      2   idle n[2-3]\n"
    out = run(sinfo, ["-N", "-h", "-n", "n1"], capsys)[1]
    assert out == "n1             1    debug* alloc \nn1             1     other alloc \n"
    assert run(sinfo, ["-t", "nonsense"], capsys)[0] == 1


def test_sinfo_controller_unreachable(no_controller, capsys):
    assert run(sinfo, [], capsys) == (
        1, "", "slurm_load_partitions: Unable to contact slurm controller (connect failure)\n")
