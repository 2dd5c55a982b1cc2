"""preempt/qos with QOS made by sacctmgr: a job in a QOS that may preempt ``normal`` cancels one."""

from cluster_support import LiveCluster

CONF = """\
ClusterName=qospreempt
SlurmdParameters=config_overrides
SlurmdTimeout=30
KillWait=1
PreemptType=preempt/qos
PreemptMode=CANCEL
NodeName=q1 CPUs=2 RealMemory=1000
PartitionName=debug Nodes=q1 Default=YES MaxTime=10 State=UP
"""


def test_sacctmgr_qos_preempt_cancels_a_normal_job(tmp_path):
    c = LiveCluster(tmp_path, CONF).up()
    try:
        r = c.run("sacctmgr", "-i", "add", "qos", "urgent", "priority=100", "preempt=normal", "preemptmode=cancel")
        assert r.returncode == 0, r.stderr
        r = c.run("sacctmgr", "-i", "modify", "user", "root", "set", "qos+=urgent")
        assert r.returncode == 0, r.stderr
        low = c.sbatch("-n", "2", "--wrap", "sleep 60")
        c.wait_state(low, "RUNNING")
        high = c.sbatch("-n", "2", "--qos=urgent", "--wrap", "true")
        assert c.wait_state(low, "PREEMPTED", timeout=30) == "PREEMPTED"
        c.wait_state(high, "COMPLETED", timeout=30)
        r = c.run("sacct", "-X", "-n", "-P", "-j", f"{low},{high}", "-o", "JobID,QOS,State")
        assert r.stdout.split() == [f"{low}|normal|PREEMPTED", f"{high}|urgent|COMPLETED"]
    finally:
        c.down()
