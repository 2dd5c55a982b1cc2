"""Hostile command lines through the real CLI (hypothesis, bounded): a clean error or a sane job.

Each example is a real process (``sbatch``, ``scontrol``, ``squeue``, ``sacct``,
``scancel``, ``sinfo``) against the shared live cluster, so the example counts
are small. Properties:

* exit status 0, or non-zero with an error line first (``<prog>: error: ...`` or
  Slurm's own ``slurm_...`` prefix), and never a traceback or "internal error";
* an accepted ``sbatch`` (always run with ``--hold`` here, then cancelled) gives a
  job that ``scontrol show job`` and ``squeue`` print;
* job names and output file names with spaces, unicode, quotes, ``%`` codes and
  ``..`` run for real: the job completes and its output lands exactly where the
  pattern says, inside the working directory.
"""

import os
import re
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("BATCHHUB_FUZZ_CLI_EXAMPLES", 25))
CLI = settings(max_examples=EXAMPLES, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ODD = ["", " ", "a b", "é", "١", "日本", "x" * 300, "a\nb", "'", '"', "\\", "$HOME", "`id`", "%j", "%", "%%x",
       "../../etc/x", "/root/evil.out", "-", "--", "=", "n[1-", "n[1-2]", "0", "-1", "1e9", "4G", "99999999999",
       "UNLIMITED", "now+1hour", "2099-13-01", "afterok:999999", "gpu:9", "debug", "nosuch", "B:USR1@5",
       "²", "%²i", "١", "gpu:²"]
SBATCH_OPTS = ["-J", "-p", "-N", "-n", "-c", "-t", "-o", "-e", "-D", "-a", "-w", "-x", "-d", "-b", "-C", "-G",
               "--mem", "--mem-per-cpu", "--gres", "--signal", "--nice", "--priority", "--export", "--begin",
               "--open-mode", "--comment", "--time-min", "--exclusive", "--requeue", "--ntasks-per-node",
               "--get-user-env", "--array", "--uid", "--bogus", "-Z"]
odd_text = st.one_of(st.sampled_from(ODD), st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                                           blacklist_characters="\x00"),
                                                   max_size=15))


def assert_clean(prog, r):
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    if r.returncode != 0:
        lines = r.stderr.splitlines()
        assert lines, f"{prog} exited {r.returncode} without a message"
        # the error line comes first, in Slurm's shape ("prog: error: ...", getopt's "prog: invalid
        # option"); what follows may be Slurm's usage text or a user value echoed with its newline
        # (sprio/sshare under priority/basic answer with Slurm's own "You are not running a supported ...";
        # sacctmgr's own messages start with a space, " Unknown entity: ...", as Slurm's do)
        shapes = rf"{prog}: |slurm_\w+ error: |Invalid |scontrol: |You are not running a supported "
        if prog == "sacctmgr":
            shapes += r"| \S"
        assert re.match(rf"^({shapes})", lines[0]), r.stderr


@CLI
@given(args=st.lists(st.one_of(st.sampled_from(SBATCH_OPTS), odd_text,
                               st.builds(lambda o, v: f"{o}={v}", st.sampled_from(SBATCH_OPTS), odd_text)),
                     max_size=6))
def test_sbatch_with_hostile_options(cluster, args):
    r = cluster.run("sbatch", "--parsable", "--hold", *args, "--wrap", "true")
    assert_clean("sbatch", r)
    if r.returncode == 0:
        job_id = r.stdout.strip().split(";")[0]
        assert job_id.isdigit(), r.stdout
        try:
            show = cluster.run("scontrol", "show", "job", job_id)
            assert_clean("scontrol", show)
            assert show.returncode == 0 and f"JobId={job_id}" in show.stdout
            q = cluster.run("squeue", "-h", "-j", job_id, "-o", "%i %j %T %l %R")
            assert_clean("squeue", q)
            assert q.returncode == 0
        finally:
            cluster.run("scancel", job_id)


@CLI
@given(directives=st.lists(st.one_of(st.sampled_from(SBATCH_OPTS), odd_text,
                                     st.builds(lambda o, v: f"{o}={v}", st.sampled_from(SBATCH_OPTS), odd_text)),
                           max_size=5))
def test_sbatch_with_hostile_directives(cluster, directives):
    lines = "".join(f"#SBATCH {d}\n" for d in directives if "\n" not in d)
    script = f"#!/bin/sh\n#SBATCH --hold\n{lines}true\n"
    r = cluster.run("sbatch", "--parsable", input=script)
    assert_clean("sbatch", r)
    if r.returncode == 0:
        cluster.run("scancel", r.stdout.strip().split(";")[0])


@CLI
@given(prog=st.sampled_from(["squeue", "sacct", "sinfo", "scancel", "scontrol", "sprio", "sshare", "sacctmgr"]),
       args=st.lists(st.one_of(st.sampled_from(["-j", "-u", "-p", "-t", "-o", "-O", "-n", "-S", "-E", "-N", "-l",
                                                "--format", "--states", "--name", "-h", "show", "job", "node",
                                                "partition", "update", "hold", "release", "JobId=1",
                                                "TimeLimit=", "NodeName=n[1-", "State=DRAIN", "%.9999i", "%",
                                                "%Z", "JobID%-5000", "--signal", "-s", "-b"]), odd_text),
                     max_size=5))
def test_query_commands_with_hostile_arguments(cluster, prog, args):
    if prog == "scancel" and not any(a.startswith("-") for a in args):
        args = ["--name", "no-such-job-" + uuid.uuid4().hex, *args]  # never cancel someone's real job by id
    if prog == "scancel":
        args = [a for a in args if not a.strip().isdigit()]
    if prog == "scontrol" and any(a in ("update", "create", "delete") for a in args):
        return  # covered by the API fuzz (it would legitimately drain nodes or reserve them)
    if prog == "sacctmgr":
        args = ["-i", "show", *args]  # read-only: root may change every association
    r = cluster.run(prog, *args, timeout=60)
    assert_clean(prog, r)


# no '%' or '\\' (a backslash turns pattern expansion off, as in Slurm: patterns have their own tests)
safe_name = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00%\\"),
                    min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))


@settings(max_examples=max(3, EXAMPLES // 5), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=safe_name, out_name=safe_name)
def test_odd_job_names_and_output_paths_run_for_real(cluster, name, out_name):
    workdir = cluster.path(f"odd-{uuid.uuid4().hex[:8]}")
    os.makedirs(os.path.join(workdir, "sub"))
    # "sub/../<name>" on purpose: '..' inside the job's own tree is an ordinary path
    job_id = cluster.sbatch("-J", name, "-D", workdir, "-o", f"sub/../{out_name}.%j",
                            "--wrap", 'printf "%s" "$SLURM_JOB_NAME"')
    cluster.wait_state(job_id, "COMPLETED")
    out = os.path.join(workdir, f"{out_name}.{job_id}")
    with open(out, encoding="utf-8", errors="surrogateescape") as f:
        assert f.read() == name
    q = cluster.run("squeue", "-h", "-j", str(job_id), "-t", "all", "-o", "%j")
    assert q.returncode == 0, q.stderr
    a = cluster.run("sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "JobName")
    assert a.returncode == 0 and a.stdout.rstrip("\n") == name, a.stdout


UPDATE_KEYS = ["TimeLimit", "Partition", "JobName", "Name", "Comment", "Nice", "NumNodes", "ReqNodes", "NumTasks",
               "ReqProcs", "MinMemoryNode", "Dependency", "Features", "ExcNodeList", "StartTime", "Priority",
               "State", "Bogus", "JobId"]


@CLI
@given(pairs=st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(UPDATE_KEYS), odd_text), max_size=4),
       extra=st.lists(odd_text, max_size=1))
def test_scontrol_update_job_with_hostile_values(cluster, pairs, extra):
    """A clean answer either way, and the held job is still a held pending job afterwards."""
    job_id = cluster.sbatch("--hold", "-J", "upd", "--wrap", "true")
    try:
        r = cluster.run("scontrol", "update", f"JobId={job_id}", *pairs, *extra)
        assert_clean("scontrol", r)
        shown = cluster.job(job_id)
        assert shown["JobState"] == "PENDING", shown
    finally:
        cluster.run("scancel", str(job_id))


def test_other_scripts_digits_in_cli_arguments_are_clean(cluster):
    """'²' passes str.isdigit() but not int(): each of these once ended in an internal error."""
    for argv in (("squeue", "-o", "%²i"), ("scancel", "-s", "²", "999999"), ("sacct", "-u", "²"),
                 ("sacct", "-o", "JobID%²")):
        r = cluster.run(*argv)
        assert_clean(argv[0], r)
