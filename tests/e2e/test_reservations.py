"""Advance reservations end to end: scontrol, sbatch, squeue and sinfo against real daemons."""

import datetime
import os
import subprocess
import time
import uuid

import pytest

from cluster_support import REPO, TEST_CONF, USER_PYTHON, parse_scontrol, shared_cluster



@pytest.fixture(scope="module")
def cluster():
    """One cluster for this module, in a directory other users can reach."""
    yield from shared_cluster(TEST_CONF, "batchhub-resv-")


@pytest.fixture(autouse=True)
def clean(cluster):
    """Every test starts with no reservations and no jobs."""
    yield
    cluster.run("scancel", "-u", "root")
    # cancelled jobs leave their nodes only once their processes are gone: the next test's
    # reservation must not find them still there ("Requested nodes are busy" on a loaded host)
    wait_for(lambda: cluster.run("squeue", "-h").stdout.strip() == "", timeout=30, what="an empty queue")
    for name in reservation_names(cluster):
        for _ in range(50):
            if cluster.run("scontrol", "delete", f"ReservationName={name}").returncode == 0:
                break
            time.sleep(0.2)


def reservation_names(cluster):
    r = cluster.run("scontrol", "-o", "show", "reservation")
    return [line.split()[0].split("=", 1)[1] for line in r.stdout.splitlines() if line.startswith("ReservationName=")]


def show(cluster, name):
    r = cluster.run("scontrol", "show", "reservation", name)
    assert r.returncode == 0, r.stdout + r.stderr
    return parse_scontrol(r.stdout)


def create(cluster, *args):
    r = cluster.run("scontrol", "create", "reservation", *args)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("Reservation created: ")
    return r.stdout.split(": ", 1)[1].strip()


def squeue(cluster, job_id, fmt):
    r = cluster.run("squeue", "-h", "-j", str(job_id), "-o", fmt)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- scontrol create / show / update / delete ------------------------------------------------------

def test_create_show_update_delete(cluster):
    name = create(cluster, "StartTime=now+1hour", "Duration=2:00:00", "Nodes=n[1-2]", "Users=root")
    assert name.startswith("root_")  # Slurm's automatic name: first user, "_", a counter
    rec = show(cluster, name)
    assert rec["Nodes"] == "n[1-2]" and rec["NodeCnt"] == "2" and rec["CoreCnt"] == "8"
    assert rec["Duration"] == "02:00:00" and rec["State"] == "INACTIVE" and rec["Users"] == "root"
    assert rec["Flags"] == "SPEC_NODES" and rec["TRES"] == "cpu=8" and rec["Groups"] == "(null)"

    r = cluster.run("scontrol", "update", f"ReservationName={name}", "Duration+=30", "Users+=nobody")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Reservation updated.\n", "")
    rec = show(cluster, name)
    assert rec["Duration"] == "02:30:00" and rec["Users"] == "root,nobody"

    r = cluster.run("scontrol", "delete", f"ReservationName={name}")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = cluster.run("scontrol", "show", "reservation")
    assert (r.returncode, r.stdout) == (0, "No reservations in the system\n")
    r = cluster.run("scontrol", "delete", f"ReservationName={name}")
    assert r.returncode == 1
    assert r.stderr == f"delete_reservation ReservationName={name}: Requested reservation is invalid\n"


def test_reservations_are_in_the_api(cluster):
    name = create(cluster, "ReservationName=apiview", "StartTime=now+2hours", "Duration=10", "NodeCnt=1",
                  "Accounts=physics")
    from batch_backend.client import Client
    with Client(cluster.socket) as client:
        resvs = {r["name"]: r for r in client.reservations()}
        assert resvs[name]["node_cnt"] == 1 and resvs[name]["accounts"] == ["physics"]
        assert resvs[name]["partition"] == "debug"   # NodeCnt picks from the default partition
        assert client.reservation(name)["state"] == "INACTIVE"
        doc = client.request("GET", "/openapi.json")
    assert "/v1/reservations" in doc["paths"] and "Reservation" in doc["components"]["schemas"]


# -- bad input changes nothing -----------------------------------------------------------------------

@pytest.mark.parametrize("args,stderr", [
    (["StartTime=soonish", "Duration=10", "Nodes=n1", "Users=root"],
     "scontrol: error: Invalid start time StartTime=soonish.  No reservation created.\n"),
    (["StartTime=now", "Duration=10", "Nodes=n9", "Users=root"],
     "Error creating the reservation: Invalid node name specified\n"),
    (["StartTime=now", "Duration=10", "Nodes=n1", "Users=root", "Flags=MAINT,SOMETIMES"],
     "Error creating the reservation: Error parsing flags MAINT,SOMETIMES.\n"),
    (["StartTime=now", "Duration=10", "Nodes=n1"],
     "Error creating the reservation: Either Users/Groups and/or Accounts must be specified.  "
     "No reservation created.\n"),
    (["StartTime=now", "Nodes=n1", "Users=root"],
     "Error creating the reservation: An end time or duration must be given.  No reservation created.\n"),
    (["StartTime=now", "Duration=10", "Nodes=n1", "Users=nosuchuser_x"],
     "Error creating the reservation: Invalid user id\n"),
    (["StartTime=now", "Duration=10", "Nodes=n1", "Groups=nosuchgroup_x"],
     "Error creating the reservation: Invalid group id\n"),
    (["StartTime=now", "Duration=10", "NodeCnt=9", "Users=root"],
     "Error creating the reservation: Requested node configuration is not available\n"
     "Note, unless nodes are directly requested a reservation must exist in a single partition.\n"
     "If no partition is requested the default partition is assumed.\n"),
])
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(cluster, args, stderr):
    before = cluster.run("scontrol", "show", "reservation").stdout
    r = cluster.run("scontrol", "create", "reservation", *args)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == stderr
    assert cluster.run("scontrol", "show", "reservation").stdout == before


def test_overlap_is_refused_unless_flagged(cluster):
    create(cluster, "ReservationName=first", "StartTime=now+1hour", "Duration=60", "Nodes=n[1-2]", "Users=root")
    r = cluster.run("scontrol", "create", "reservation", "ReservationName=second", "StartTime=now+90minutes",
                    "Duration=60", "Nodes=n2", "Users=root")
    assert r.returncode == 1
    assert r.stderr == "Error creating the reservation: Requested reservation overlaps with another reservation\n"
    assert reservation_names(cluster) == ["first"]
    create(cluster, "ReservationName=second", "StartTime=now+90minutes", "Duration=60", "Nodes=n2", "Users=root",
           "Flags=OVERLAP")
    r = cluster.run("scontrol", "create", "reservation", "ReservationName=first", "StartTime=now+5hours",
                    "Duration=60", "Nodes=n3", "Users=root")
    assert r.returncode == 1 and r.stderr == "Error creating the reservation: Duplicate reservation name\n"


def test_busy_nodes_are_refused_unless_ignore_jobs(cluster):
    job = cluster.sbatch("-w", "n3", "-t", "30", "--wrap=sleep 300")
    cluster.wait_state(job, "RUNNING")
    r = cluster.run("scontrol", "create", "reservation", "StartTime=now+5minutes", "Duration=30", "Nodes=n3",
                    "Users=root")
    assert r.returncode == 1
    assert r.stderr.startswith("Error creating the reservation: Requested nodes are busy\n")
    assert reservation_names(cluster) == []
    create(cluster, "StartTime=now+5minutes", "Duration=30", "Nodes=n3", "Users=root", "Flags=IGNORE_JOBS")


# -- scheduling ----------------------------------------------------------------------------------

def test_a_reservation_blocks_long_jobs_and_lets_short_ones_run(cluster):
    create(cluster, "ReservationName=soon", "StartTime=now+10minutes", "Duration=60", "Nodes=n[1-3]",
           "Users=root")
    short_job = cluster.sbatch("-p", "short", "-t", "5", "--wrap=sleep 1")   # ends before the start: runs
    cluster.wait_state(short_job, "COMPLETED")
    blocked = cluster.sbatch("-w", "n1", "-t", "30", "--wrap=sleep 1")      # would still run at the start
    time.sleep(2.5)  # a few scheduling passes, backfill included
    assert squeue(cluster, blocked, "%t %R") == "PD (Resources)"
    wait_for(lambda: squeue(cluster, blocked, "%S") not in ("N/A", ""), what="an estimate")
    # squeue --start: once the reservation is over (to the planner's bf_resolution, 60 s)
    start = datetime.datetime.fromisoformat(squeue(cluster, blocked, "%S")).timestamp()
    end = datetime.datetime.fromisoformat(show(cluster, "soon")["EndTime"]).timestamp()
    assert end <= start <= end + 60
    outside = cluster.sbatch("-t", "30", "--wrap=sleep 1")                  # n4 is not reserved
    assert cluster.wait_state(outside, "COMPLETED")
    assert cluster.acct(outside, "JobID,NodeList")[0] == [str(outside), "n4"]


def test_reservation_jobs_run_inside_and_only_there(cluster):
    name = create(cluster, "StartTime=now", "Duration=30", "Nodes=n2", "Users=root")
    ids = [cluster.sbatch(f"--reservation={name}", "-n", "4", "--wrap=sleep 3") for _ in range(2)]
    cluster.wait_state(ids[0], "RUNNING")
    assert cluster.job(ids[0])["NodeList"] == "n2"
    assert cluster.job(ids[0])["Reservation"] == name
    assert squeue(cluster, ids[1], "%t %v %R") == f"PD {name} (Resources)"  # n2 is full; n1, n3 are free
    r = cluster.run("squeue", "-h", "-R", name, "-o", "%i")
    assert sorted(int(x) for x in r.stdout.split()) == ids
    cluster.wait_state(ids[1], "COMPLETED", timeout=40)
    assert cluster.acct(ids[1], "JobID,NodeList")[0] == [str(ids[1]), "n2"]
    r = cluster.run("sinfo", "-h", "-N", "-p", "debug", "-o", "%N %t")
    assert "n2 resv" in r.stdout.splitlines()


def test_reservation_job_waits_with_reason_reservation_until_the_start(cluster):
    name = create(cluster, "StartTime=now+1hour", "Duration=30", "Nodes=n1", "Users=root")
    job = cluster.sbatch(f"--reservation={name}", "--wrap=true")
    wait_for(lambda: squeue(cluster, job, "%t %R") == "PD (Reservation)", what="reason Reservation")
    assert squeue(cluster, job, "%S %Y") == f"{show(cluster, name)['StartTime']} n1"
    cluster.run("scontrol", "delete", f"ReservationName={name}")
    wait_for(lambda: squeue(cluster, job, "%t %R") == "PD (ReservationDeleted)", what="reason ReservationDeleted")


def test_reservation_job_starts_when_its_reservation_begins(cluster):
    name = create(cluster, "StartTime=now+4", "Duration=5", "Nodes=n2", "Users=root")
    job = cluster.sbatch(f"--reservation={name}", "-t", "1", "--wrap=true")
    assert squeue(cluster, job, "%t %R") == "PD (Reservation)"
    cluster.wait_state(job, "COMPLETED", timeout=30)
    assert cluster.acct(job, "JobID,NodeList")[0] == [str(job), "n2"]


def test_a_job_without_partition_gets_its_reservations_partition(cluster):
    name = create(cluster, "StartTime=now", "Duration=5", "PartitionName=gpu", "NodeCnt=1", "Users=root")
    assert show(cluster, name)["Nodes"] == "n4"
    job = cluster.sbatch(f"--reservation={name}", "--wrap=true")
    cluster.wait_state(job, "COMPLETED")
    assert cluster.acct(job, "JobID,Partition,NodeList")[0] == [str(job), "gpu", "n4"]


def test_srun_runs_in_a_reservation(cluster):
    name = create(cluster, "StartTime=now", "Duration=5", "Nodes=n3", "Users=root")
    r = cluster.run("srun", f"--reservation={name}", "printenv", "SLURMD_NODENAME")
    assert (r.returncode, r.stdout) == (0, "n3\n"), r.stderr
    r = cluster.run("srun", "--reservation=nosuch", "true")
    assert r.returncode == 1
    assert r.stderr == "srun: error: Unable to allocate resources: Requested reservation is invalid\n"


def test_unknown_reservation_is_refused_at_submit(cluster):
    r = cluster.run("sbatch", "--reservation=nosuch", "--wrap=true")
    assert r.returncode == 1
    assert r.stderr == "sbatch: error: Batch job submission failed: Requested reservation is invalid\n"


def test_maint_reservation_shows_maint_and_slurms_reason(cluster):
    create(cluster, "ReservationName=fixit", "StartTime=now", "Duration=30", "Nodes=n4", "Users=root",
           "Flags=MAINT,IGNORE_JOBS")
    r = cluster.run("sinfo", "-h", "-p", "gpu", "-o", "%t %N")
    assert r.stdout == "maint n4\n"
    job = cluster.sbatch("-p", "gpu", "-t", "10", "--wrap=true")
    wait_for(lambda: squeue(cluster, job, "%R") == "(ReqNodeNotAvail, Reserved for maintenance)",
             what="the maintenance reason")


def test_jobs_still_running_when_the_reservation_ends_are_ended(cluster):
    """Slurm (ResvOverRun=0): a job running in a reservation is killed at its end, state TIMEOUT."""
    name = create(cluster, "StartTime=now", "EndTime=now+6", "Nodes=n3", "Users=root")
    job = cluster.sbatch(f"--reservation={name}", "-t", "30", "--wrap=sleep 120")
    cluster.wait_state(job, "RUNNING")
    assert cluster.wait_state(job, "TIMEOUT", timeout=30) == "TIMEOUT"
    wait_for(lambda: name not in reservation_names(cluster), what="the ended reservation to go away")


def test_extending_the_reservation_lets_its_jobs_run_on(cluster):
    name = create(cluster, "StartTime=now", "EndTime=now+5", "Nodes=n3", "Users=root")
    job = cluster.sbatch(f"--reservation={name}", "-t", "30", "--wrap=sleep 9")
    cluster.wait_state(job, "RUNNING")
    r = cluster.run("scontrol", "update", f"ReservationName={name}", "Duration+=1")
    assert r.returncode == 0, r.stderr
    assert cluster.wait_state(job, {"COMPLETED", "TIMEOUT"}, timeout=30) == "COMPLETED"


def test_reservations_survive_kill_9_of_the_controller(cluster):
    first = create(cluster, "StartTime=now+1hour", "Duration=45", "Nodes=n1", "Users=root", "Flags=DAILY")
    before = show(cluster, first)
    cluster.kill_controller()
    cluster.start_controller()
    assert show(cluster, first) == before
    second = create(cluster, "StartTime=now+1hour", "Duration=45", "Nodes=n2", "Users=root")
    assert int(second.split("_")[1]) > int(first.split("_")[1])   # the name counter is durable too


# -- who may use and manage reservations ---------------------------------------------------------------

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to create throwaway users and groups")


@pytest.fixture(scope="module")
def classroom():
    """A Unix group with one student, and one user outside it."""
    suffix = uuid.uuid4().hex[:5]
    group, student, outsider = f"cls{suffix}", f"stu{suffix}", f"out{suffix}"
    subprocess.run(["groupadd", group], check=True)
    for user in (student, outsider):
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", user], check=True)
    subprocess.run(["usermod", "-aG", group, student], check=True)
    yield group, student, outsider
    for user in (student, outsider):
        subprocess.run(["userdel", user], check=False)
    subprocess.run(["groupdel", group], check=False)


def as_user(cluster, user, command, *args):
    code = f"import sys; sys.path.insert(0, {REPO!r}); from batch_backend.cli.{command} import main; sys.exit(main())"
    return cluster.run(USER_PYTHON, "-c", code, *args, user=user)


@needs_root
def test_a_class_slot_for_a_group_is_one_command(cluster, classroom):
    group, student, outsider = classroom
    create(cluster, f"ReservationName={group}", "StartTime=now", "Duration=2:00:00", "Nodes=n[1-2]",
           f"Groups={group}", "Flags=WEEKLY")
    rec = show(cluster, group)
    assert rec["Groups"] == group and rec["Flags"] == "WEEKLY,SPEC_NODES" and rec["State"] == "ACTIVE"
    r = as_user(cluster, student, "sbatch", "--parsable", f"--reservation={group}", "-D", cluster.workdir,
                "-o", "/dev/null", "--wrap=true")
    assert r.returncode == 0, r.stderr
    cluster.wait_state(int(r.stdout), "COMPLETED")
    assert cluster.acct(int(r.stdout), "JobID,NodeList")[0][1] in ("n1", "n2")
    r = as_user(cluster, outsider, "sbatch", f"--reservation={group}", "-D", cluster.workdir, "--wrap=true")
    assert r.returncode == 1
    assert r.stderr == "sbatch: error: Batch job submission failed: Access denied to requested reservation\n"


@needs_root
def test_only_admins_create_update_or_delete(cluster, classroom):
    _, student, _ = classroom
    r = as_user(cluster, student, "scontrol", "create", "reservation", "StartTime=now+1hour", "Duration=10",
                "Nodes=n1", f"Users={student}")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "Error creating the reservation: Access/permission denied\n"
    name = create(cluster, "StartTime=now+1hour", "Duration=10", "Nodes=n1", "Users=root")
    r = as_user(cluster, student, "scontrol", "update", f"ReservationName={name}", "Duration=20")
    assert r.returncode == 1 and r.stderr == "Error updating the reservation: Access/permission denied\n"
    r = as_user(cluster, student, "scontrol", "delete", f"ReservationName={name}")
    assert r.returncode == 1
    assert r.stderr == f"delete_reservation ReservationName={name}: Access/permission denied\n"
    assert show(cluster, name)["Duration"] == "00:10:00"
    r = as_user(cluster, student, "scontrol", "show", "reservation", name)   # anyone may look
    assert r.returncode == 0 and r.stdout.startswith(f"ReservationName={name} ")
