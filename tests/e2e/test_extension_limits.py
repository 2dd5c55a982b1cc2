"""Walltime extension (issue #6) respects reservations and QOS/association MaxWall.

``extension_check`` is what the JupyterHub "Extend" button asks before raising a
running job's limit; it must refuse an extension that would run into someone
else's reservation on the job's nodes, past the end of the job's own
reservation, or beyond its QOS's (else its association's) MaxWall - saying why.
"""

from batch_backend.client import Client

CONF = ("ClusterName=ext\nSlurmdParameters=config_overrides\nAccountingStorageEnforce=associations,qos,limits\n"
        "NodeName=x[1-3] CPUs=2 RealMemory=200\n"
        "PartitionName=p Nodes=x[1-3] Default=YES MaxTime=120 State=UP\n")


def ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_extension_refuses_reservations_on_its_nodes_and_maxwall(make_cluster):
    c = make_cluster(CONF)
    client = Client(c.socket)
    ok(c.run("sacctmgr", "-i", "add", "qos", "capped", "MaxWall=20"))
    ok(c.run("sacctmgr", "-i", "add", "account", "lab", "MaxWall=40"))
    ok(c.run("sacctmgr", "-i", "add", "user", "root", "account=lab", "qos=normal,capped"))

    capped = c.sbatch("-A", "lab", "--qos=capped", "-w", "x1", "-t", "10", "-o", "/dev/null", "--wrap=sleep 300")
    by_account = c.sbatch("-A", "lab", "-w", "x2", "-t", "10", "-o", "/dev/null", "--wrap=sleep 300")
    c.wait_state(capped, "RUNNING")
    c.wait_state(by_account, "RUNNING")
    assert client.extension_check(capped, 10)["ok"] is True            # 20 min: exactly the QOS MaxWall
    refused = client.extension_check(capped, 11)
    assert refused["ok"] is False and refused["reason"] == "QOS capped allows at most 20 minutes per job"
    assert client.extension_check(by_account, 30)["ok"] is True        # no QOS MaxWall: the account's 40
    refused = client.extension_check(by_account, 31)
    assert refused["reason"] == "account lab allows at most 40 minutes per job"

    # someone else's reservation on x2 from 25 minutes on: 10 + 14 fits, 10 + 16 does not
    ok(c.run("scontrol", "create", "reservation", "ReservationName=later", "StartTime=now+25minutes",
             "Duration=60", "Nodes=x2", "Users=nobody"))
    assert client.extension_check(by_account, 14)["ok"] is True
    refused = client.extension_check(by_account, 16)
    assert refused["ok"] is False
    assert refused["reason"].startswith("node x2 is reserved for later from "), refused
    # nothing changed: the job keeps its limit
    assert c.job(by_account)["TimeLimit"] == "00:10:00"

    # a job in its own reservation may not outlive it (ResvOverRun=0)
    ok(c.run("scontrol", "create", "reservation", "ReservationName=mine", "StartTime=now", "Duration=15",
             "Nodes=x3", "Users=root"))
    inside = c.sbatch("-A", "lab", "--reservation=mine", "-t", "10", "-o", "/dev/null", "--wrap=sleep 300")
    c.wait_state(inside, "RUNNING")
    assert client.extension_check(inside, 4)["ok"] is True
    refused = client.extension_check(inside, 6)
    assert refused["ok"] is False and refused["reason"].startswith("it runs in reservation mine, which ends at ")
    c.run("scancel", str(capped), str(by_account), str(inside))
