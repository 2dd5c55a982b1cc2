"""Priority under PriorityType=priority/basic (the test cluster's): what users see and can change."""


def priority(cluster, job_id):
    return int(cluster.job(job_id)["Priority"])


def later(cluster, *args):
    """A job that stays pending (begin time an hour away) without being held."""
    return cluster.sbatch("--begin=now+1hour", "-o", "/dev/null", "--wrap=true", *args)


def test_sprio_needs_multifactor_and_sshare_still_answers(cluster):
    r = cluster.run("sprio")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("You are not running a supported priority plugin\n(priority/basic).\n"
                        "Only 'priority/multifactor' is supported.\n")
    r = cluster.run("sshare")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines()[0].split() == ["Account", "User", "RawShares", "NormShares", "RawUsage",
                                                "EffectvUsage", "FairShare"]
    assert r.stdout.splitlines()[2].startswith("root ")


def test_basic_priority_is_submit_order_minus_nice(cluster):
    first, second = later(cluster), later(cluster, "--nice=10")
    try:
        assert priority(cluster, first) == 10**8 - first
        assert priority(cluster, second) == 10**8 - second - 10
        cluster.run("scontrol", "update", f"JobId={first}", "Nice=50")
        assert priority(cluster, first) == 10**8 - first - 50
    finally:
        cluster.run("scancel", str(first), str(second))


def test_held_jobs_have_priority_zero_until_released(cluster):
    job_id = cluster.sbatch("--hold", "-o", "/dev/null", "--begin=now+1hour", "--wrap=true")
    try:
        assert priority(cluster, job_id) == 0
        assert cluster.run("scontrol", "release", str(job_id)).returncode == 0
        assert priority(cluster, job_id) == 10**8 - job_id
    finally:
        cluster.run("scancel", str(job_id))


def test_admin_priority_is_pinned_and_zero_holds(cluster):
    job_id = later(cluster)
    try:
        r = cluster.run("scontrol", "update", f"JobId={job_id}", "Priority=5")
        assert r.returncode == 0 and r.stderr == ""
        assert priority(cluster, job_id) == 5
        cluster.run("scontrol", "update", f"JobId={job_id}", "Nice=3")
        assert priority(cluster, job_id) == 5  # an admin-set priority is not computed any more
        cluster.run("scontrol", "update", f"JobId={job_id}", "Priority=0")
        info = cluster.job(job_id)
        assert info["Priority"] == "0" and info["Reason"] == "JobHeldAdmin"
    finally:
        cluster.run("scancel", str(job_id))


def test_top_puts_a_job_first_among_the_users_jobs(cluster):
    first, second = later(cluster), later(cluster)
    try:
        assert priority(cluster, first) > priority(cluster, second)
        assert cluster.run("scontrol", "top", str(second)).returncode == 0
        assert priority(cluster, second) > priority(cluster, first)
        lines = cluster.run("squeue", "-h", "-j", f"{first},{second}", "-o", "%i", "-S", "-p").stdout.split()
        assert lines == [str(second), str(first)]
    finally:
        cluster.run("scancel", str(first), str(second))


def test_scontrol_show_config_reports_the_priority_plugin(cluster):
    lines = cluster.run("scontrol", "show", "config").stdout.splitlines()[1:]
    conf = dict((k.strip(), v.strip()) for k, _, v in (line.partition(" = ") for line in lines))
    assert conf["PriorityType"] == "priority/basic"
    assert conf["PriorityCalcPeriod"] == "300 sec"


def test_priority_and_shares_api(cluster):
    from batch_backend.client import Client, InvalidRequest
    client = Client(cluster.socket)
    job_id = later(cluster)
    try:
        answer = client.priority_factors(ids=[str(job_id)])
        assert answer["priority_type"] == "priority/basic" and answer["weights"]["age"] == 0
        assert answer["jobs"] == []  # not eligible before its begin time: sprio lists it neither
        shares = client.shares()
        assert shares["rows"][0]["account"] == "root" and shares["rows"][0]["user"] is None
        try:
            client.priority_factors(ids=["nonsense"])
            raise AssertionError("a bad id must be refused")
        except InvalidRequest as e:
            assert "Invalid job id" in e.message
        doc = client.request("GET", "/openapi.json")  # /v1/openapi.json
        assert {"/v1/priority", "/v1/shares"} <= set(doc["paths"])
        assert {"PriorityFactors", "Share"} <= set(doc["components"]["schemas"])
    finally:
        cluster.run("scancel", str(job_id))


def test_bad_sprio_and_sshare_arguments_get_one_line_errors(cluster):
    r = cluster.run("sprio", "-j", "12x")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "sprio: error: Invalid job id: 12x\n")
    r = cluster.run("sprio", "-l", "-o", "%i")
    assert r.returncode == 1 and r.stdout == "" and "mutually exclusive" in r.stderr
    r = cluster.run("sshare", "-o", "Account,Bogus")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", 'sshare: error: Invalid field requested: "Bogus"\n')
    r = cluster.run("sshare", "--bogus")
    assert r.returncode == 1 and r.stdout == "" and "unrecognized option '--bogus'" in r.stderr
