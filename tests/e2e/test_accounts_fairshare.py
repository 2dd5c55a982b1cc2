"""sacctmgr's account tree is what fairshare uses: shares set with sacctmgr show up in sshare."""

from cluster_support import TEST_CONF, LiveCluster

CONF = TEST_CONF + "PriorityType=priority/multifactor\nPriorityWeightFairshare=10000\n"


def _rows(text):
    return [line.split("|") for line in text.strip().splitlines()]


def test_sacctmgr_shares_drive_sshare_and_sprio(tmp_path):
    c = LiveCluster(tmp_path, CONF).up()
    try:
        for cmd in (["add", "account", "physics", "fairshare=3"], ["add", "account", "chem", "fairshare=1"],
                    ["add", "user", "root", "account=physics"]):
            r = c.run("sacctmgr", "-i", *cmd)
            assert r.returncode == 0, r.stderr
        r = c.run("sshare", "-a", "-P", "-o", "Account,User,RawShares,NormShares")
        assert r.returncode == 0, r.stderr
        rows = {(a.strip(), u): (raw, norm) for a, u, raw, norm in _rows(r.stdout)[1:]}
        # siblings under root: physics 3, chem 1 and root's own user association 1 (as in Slurm)
        assert rows[("physics", "")] == ("3", "0.600000")
        assert rows[("chem", "")] == ("1", "0.200000")
        assert ("physics", "root") in rows
        blocker = c.sbatch("-N", "4", "-n", "16", "--wrap", "sleep 60")  # the whole cluster
        job = c.sbatch("-A", "physics", "--wrap", "true")
        r = c.run("sprio", "-h", "-j", str(job), "-o", "%i %o %F")
        assert r.returncode == 0, r.stderr
        job_id, account, fairshare = r.stdout.split()
        assert (job_id, account) == (str(job), "physics") and int(fairshare) > 0
        c.run("scancel", str(job), str(blocker))
    finally:
        c.down()
