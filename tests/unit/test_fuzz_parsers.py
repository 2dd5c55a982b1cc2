"""Hostile input for the pure parsers (hypothesis): only their documented errors, never a crash.

Every parser the CLI and controller run on user text - time and memory specs,
dates, hostlists, slurm.conf, ``#SBATCH`` directives and sbatch's command line -
must either return a value of the documented shape or raise its one documented
exception type (``ValueError``, ``ConfError``, ``UsageError``). Anything else
(``IndexError``, ``OverflowError``, ``KeyError``...) would surface as a traceback
or an "internal error" and is a bug. Where a parser has an inverse (formatters,
``compress``), the round trip is checked too.
"""

import math
import os
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_backend import hostlist, timespec
from batch_backend.cli.sbatch_options import UsageError, build_submission, expand_array_spec
from batch_backend.cli.sbatch_script import parse_directives
from batch_backend.conf import ConfError, parse_conf

#: BATCHHUB_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite quick
FUZZ = settings(max_examples=int(os.environ.get("BATCHHUB_FUZZ_EXAMPLES", 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text that looks like the syntax under test, so hypothesis reaches deep branches,
# mixed with arbitrary unicode (other scripts' digits, NUL, newlines, surrogates)
ODD_CHARS = "0123456789:-+/.,[]%@=#\"'\\ \t\n\r\x00é١२ＫﾟKMGTBkmgtbsSnowdayhourweekTx_"
spec_text = st.one_of(st.text(alphabet=ODD_CHARS, max_size=30), st.text(max_size=30))


def _is_plain_digits(text):
    return text.isascii() and text.isdigit()


# -- time limits -------------------------------------------------------------------------
@FUZZ
@given(spec_text)
def test_time_limit_parses_or_raises_value_error(text):
    try:
        minutes = timespec.parse_time_limit(text)
    except ValueError as e:
        assert str(e) == "Invalid time limit specification"
        return
    assert minutes is None or (isinstance(minutes, int) and minutes >= 0)


@FUZZ
@given(st.integers(min_value=0, max_value=10**7))
def test_time_limit_round_trips_through_its_formats(minutes):
    assert timespec.parse_time_limit(timespec.format_limit(minutes)) == minutes
    assert timespec.parse_time_limit(timespec.format_hms(minutes * 60)) == minutes


@FUZZ
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=23),
       st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=59))
def test_time_limit_day_form_is_exact(days, hours, minutes, seconds):
    text = f"{days}-{hours}:{minutes:02d}:{seconds:02d}"
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    assert timespec.parse_time_limit(text) == math.ceil(total / 60)


# -- memory ------------------------------------------------------------------------------
@FUZZ
@given(spec_text)
def test_memory_parses_or_raises_value_error(text):
    try:
        mb = timespec.parse_mem(text)
    except ValueError as e:
        assert "memory size" in str(e)
        return
    assert isinstance(mb, int) and mb >= 0


@FUZZ
@given(st.integers(min_value=0, max_value=2**50))
def test_memory_round_trips_through_format(mb):
    assert timespec.parse_mem(timespec.format_mem(mb)) == mb


@FUZZ
@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["", "K", "M", "G", "T", "KB", "mb", "g"]))
def test_memory_units(number, unit):
    u = unit[:1].upper()
    expected = -(-number // 1024) if u == "K" else number * {"": 1, "M": 1, "G": 1024, "T": 1024 ** 2}[u]
    assert timespec.parse_mem(f"{number}{unit}") == expected


# -- dates (--begin, sacct -S/-E) -----------------------------------------------------------
date_text = st.one_of(
    spec_text,
    st.builds(lambda sign, n, unit: f"now{sign}{n}{unit}", st.sampled_from("+-"),
              st.integers(min_value=0, max_value=10**30),
              st.sampled_from(["", "s", "seconds", "minute", "hours", "days", "weeks", "fortnight"])),
    st.builds(lambda y, m, d: f"{y}-{m}-{d}", st.integers(0, 99999), st.integers(0, 13), st.integers(0, 32)),
    st.builds(lambda h, m: f"{h}:{m}", st.integers(0, 99), st.integers(0, 99)),
)


@FUZZ
@given(date_text)
def test_datetime_parses_to_a_printable_time_or_raises_value_error(text):
    now = 1_780_000_000.0
    try:
        epoch = timespec.parse_datetime(text, now=now)
    except ValueError as e:
        assert str(e).startswith("Invalid time specification")
        return
    assert isinstance(epoch, float) and math.isfinite(epoch)
    # whatever was accepted must be printable by squeue/scontrol/sacct
    assert timespec.format_datetime(epoch)


# -- hostlists ---------------------------------------------------------------------------
host_text = st.text(alphabet="ab-n0123[]],, \t09x.é١", max_size=25)


@FUZZ
@given(st.one_of(host_text, st.text(max_size=25)))
def test_hostlist_expands_or_raises_value_error(expr):
    try:
        names = hostlist.expand(expr)
    except ValueError:
        return
    assert names and all(isinstance(n, str) and n for n in names)


host_name = st.builds(lambda p, n, w: p + (str(n).zfill(w) if n is not None else ""),
                      st.sampled_from(["n", "node", "gpu", "a-b", "x.y"]),
                      st.one_of(st.none(), st.integers(0, 2000)), st.integers(0, 4))


@FUZZ
@given(st.lists(host_name, min_size=1, max_size=30))
def test_hostlist_compress_expand_round_trip(names):
    compressed = hostlist.compress(names)
    expanded = hostlist.expand(compressed)
    assert sorted(set(expanded)) == sorted(set(names))
    assert hostlist.compress(expanded) == compressed


# -- --array ---------------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.text(alphabet="0123456789-:,%", max_size=20), st.text(max_size=15)))
def test_array_spec_parses_or_raises_value_error(spec):
    try:
        indices, throttle = expand_array_spec(spec)
    except ValueError as e:
        assert str(e) == "Invalid job array specification"
        return
    assert indices == sorted(set(indices)) and all(0 <= i <= 4_000_000 for i in indices)
    assert throttle is None or throttle > 0


# -- slurm.conf ------------------------------------------------------------------------------
conf_key = st.sampled_from(["NodeName", "PartitionName", "Nodes", "CPUs", "RealMemory", "Gres", "Feature",
                            "State", "MaxTime", "DefaultTime", "MaxNodes", "Default", "Port", "NodeAddr",
                            "DownNodes", "Include", "SlurmdTimeout", "KillWait", "Weight", "Sockets",
                            "CoresPerSocket", "Bogus", "PriorityTier", "AllowGroups", "Reason", ""])
conf_value = st.one_of(st.sampled_from(["n[1-3]", "n[1-", "ALL", "DEFAULT", "4", "0", "-1", "YES", "maybe",
                                        "UNLIMITED", "1-00:00:00", "gpu:2", "UP", "DRAIN", "", '"a b"',
                                        "[1-2]", "n[1-3]x[1-2]", "9" * 30, "IDLE+DRAIN", "١"]),
                       st.text(alphabet=ODD_CHARS, max_size=12))
conf_token = st.one_of(st.builds(lambda k, v: f"{k}={v}", conf_key, conf_value), st.text(max_size=10))
conf_line = st.one_of(st.lists(conf_token, min_size=1, max_size=5).map(" ".join),
                      st.sampled_from(["# comment", "", "\\", "NodeName=n[1-2] CPUs=2 \\", "Include",
                                       "Include /nonexistent", "PartitionName=p Nodes=n1"]),
                      st.text(max_size=40))


@FUZZ
@given(st.lists(conf_line, min_size=1, max_size=8))
def test_conf_parses_or_raises_conf_error_with_location(lines):
    text = "\n".join(lines)
    try:
        conf = parse_conf(text, path="fuzz.conf")
    except ConfError as e:
        assert str(e).startswith("fuzz.conf")
        return
    names = [n["name"] for n in conf["nodes"]]
    assert len(names) == len(set(names))
    for node in conf["nodes"]:
        assert isinstance(node["cpus"], int) and node["cpus"] >= 0
    for part in conf["partitions"]:
        assert set(part["nodes"]) <= set(names)


# -- #SBATCH directives and sbatch's command line ----------------------------------------------
OPTIONS = ["-J", "-p", "-N", "-n", "-c", "-t", "-o", "-e", "-D", "-a", "-w", "-x", "-d", "-b", "-G", "-C",
           "--mem", "--mem-per-cpu", "--time", "--array", "--nodes", "--ntasks", "--gres", "--gpus",
           "--signal", "--open-mode", "--begin", "--nice", "--priority", "--export", "--get-user-env",
           "--exclusive", "--hold", "--requeue", "--wrap", "--nodelist", "--exclude", "--cpus-per-task",
           "--ntasks-per-node", "--time-min", "--comment", "--job-name", "--output", "--chdir", "--dep",
           "--parsable", "--test-only", "--bogus", "--n", "-H", "-Z", "--", "-"]
VALUES = ["1", "0", "-1", "2-4", "4G", "1.5g", "-5M", "10:00", "1-00:00:00", "UNLIMITED", "0-3%2", "1-0",
          "n[1-3]", "n[1-", "gpu:2", "gpu:0", "USR1@60", "B:TERM@x", "append", "x", "now+1hour", "noon",
          "2030-02-30", "ALL,X=1", "NONE", "=x", "", " ", "+5", "-2147483647", "99999999999999999999",
          "../../etc/x", "/root/evil.out", "a b", "é", "x\ny", "%j.%N.out", "afterok:1"]
word = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES),
                 st.builds(lambda o, v: f"{o}={v}", st.sampled_from([o for o in OPTIONS if o.startswith("--")]),
                           st.sampled_from(VALUES)),
                 st.text(max_size=12))


@FUZZ
@given(st.lists(word, max_size=8), st.lists(word, max_size=6))
def test_sbatch_options_build_a_submission_or_raise_usage_error(argv, directive_words):
    script = "#!/bin/sh\n#SBATCH " + " ".join(directive_words) + "\necho hi\n"
    files = {"/work/job.sh": script.encode()}

    def read_file(path):
        if path in files:
            return files[path]
        raise FileNotFoundError(path)

    try:
        sub, flags = build_submission(argv, stdin_text=script, env={"HOME": "/home/u"}, cwd="/work",
                                      read_file=read_file)
    except UsageError as e:
        assert e.lines and all(isinstance(line, str) and line for line in e.lines)
        return
    if not sub:
        assert flags["help"] or flags["usage"] or flags["version"]
        return
    assert sub["script"].startswith("#!")
    for key in ("num_nodes", "num_tasks", "cpus_per_task", "ntasks_per_node"):
        assert sub[key] is None or sub[key] >= 1
    for key in ("mem_per_node", "mem_per_cpu"):
        assert sub[key] is None or sub[key] >= 0
    assert sub["time_limit"] is None or sub["time_limit"] == -1 or sub["time_limit"] > 0
    assert sub["begin_time"] is None or math.isfinite(sub["begin_time"])
    assert sub["workdir"].startswith("/")


@FUZZ
@given(st.text(alphabet=string.printable + "é١\x00", max_size=200))
def test_directive_scan_returns_words_or_raises_usage_error(body):
    script = "#!/bin/sh\n" + body
    words = parse_directives(script)
    assert all(isinstance(w, str) for w in words)


# -- regressions found by the fuzzers above ---------------------------------------------------
def test_memory_in_petabytes_parses_back():
    """format_mem prints 'P' for whole PB; scontrol's ReqMem must parse back."""
    assert timespec.format_mem(1024 ** 3) == "1P"
    assert timespec.parse_mem("1P") == 1024 ** 3
    assert timespec.parse_mem("2PB") == 2 * 1024 ** 3


def test_begin_time_beyond_any_calendar_is_a_time_error():
    """'now+10**30' once became an epoch that squeue/sacct could not print (OverflowError)."""
    for text in ("now+1000000000000000000000000000000", "now-99999999999999999weeks"):
        try:
            timespec.parse_datetime(text, now=1_780_000_000.0)
        except ValueError as e:
            assert str(e) == f"Invalid time specification: {text}"
        else:
            raise AssertionError(f"{text} was accepted")


# -- a parseable slurm.conf starts a controller or is refused in one line --------------------------
OPTION_NAMES = ["KillWait", "MinJobAge", "SlurmdTimeout", "FirstJobId", "SchedulerType", "SchedulerParameters",
                "JournalSync", "ClusterName", "MaxJobCount", "AuthAltParameters", "BatchHubAdmins",
                "PriorityWeightAge", "PriorityType", "PriorityMaxAge", "MessageTimeout"]
OPTION_VALUES = ["UNLIMITED", "INFINITE", "0", "30", "99999999999999999999", "sched/builtin", "bogus",
                 "bf_window=abc,bf_interval=x,bf_resolution=-1,bf_max_job_test=0", "FULL", "é",
                 "max_token_lifespan=0", "disable_token_creation", "1-00:00:00", ""]


@settings(max_examples=int(os.environ.get("BATCHHUB_FUZZ_EXAMPLES", 100)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(OPTION_NAMES), st.sampled_from(OPTION_VALUES), max_size=5))
def test_any_parseable_conf_builds_a_controller_or_is_a_conf_error(options):
    import shutil
    import tempfile

    from batch_backend.auth.authority import AuthConfigError
    from batch_backend.controller.daemon import Controller
    text = "".join(f"{k}={v}\n" for k, v in options.items())
    text += "NodeName=n[1-2] CPUs=2 RealMemory=1000\nPartitionName=p Nodes=ALL Default=YES\n"
    try:
        conf = parse_conf(text, path="fuzz.conf")
    except ConfError:
        return
    state = tempfile.mkdtemp(prefix="bh-conf-fuzz-")
    try:
        controller = Controller(conf, "fuzz.conf", os.path.join(state, "sock"), state)
        controller.cluster.recover()
        assert controller.config_dict()["ClusterName"]
    except (ConfError, AuthConfigError) as e:
        assert str(e) and "\n" not in str(e)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_seconds_options_refuse_unlimited_at_parse_time():
    """KillWait=UNLIMITED once parsed, then crashed the controller's start with a float() traceback."""
    try:
        parse_conf("ClusterName=c\nKillWait=UNLIMITED\n", path="s.conf")
    except ConfError as e:
        assert str(e) == "s.conf:2: bad number 'UNLIMITED' for KillWait"
    else:
        raise AssertionError("KillWait=UNLIMITED accepted")
    assert parse_conf("MaxJobCount=UNLIMITED\n")["options"]["MaxJobCount"] == "UNLIMITED"


def test_empty_cluster_name_means_the_default():
    import tempfile

    from batch_backend.controller.cluster import Cluster
    from batch_backend.controller.journal import Journal
    with tempfile.TemporaryDirectory() as d:
        conf = parse_conf("ClusterName=\nNodeName=n1 CPUs=1\nPartitionName=p Nodes=n1\n")
        assert Cluster(conf, Journal(os.path.join(d, "j.sqlite"))).cluster_name == "batchhub"


# -- srun / salloc options ---------------------------------------------------------------------------
SRUN_OPTS = ["-n", "-N", "-c", "-t", "-p", "-w", "-x", "-C", "--mem", "--mem-per-cpu", "--ntasks-per-node",
             "--mpi", "--export", "--gres", "--exclusive", "--pty", "--label", "-l", "--bogus", "--"]


srun_value = st.one_of(st.sampled_from(VALUES + ["²", "１", "1-²"]), st.text(max_size=8))


@FUZZ
@given(st.lists(st.one_of(st.tuples(st.sampled_from(SRUN_OPTS), srun_value),  # option then its value
                          st.tuples(st.builds(lambda o, v: f"{o}={v}",
                                              st.sampled_from([o for o in SRUN_OPTS if o[:2] == "--"]), srun_value)),
                          st.tuples(st.text(max_size=8))), max_size=6).map(lambda ws: [w for t in ws for w in t]))
def test_srun_options_build_requests_or_raise_srun_error(argv):
    from batch_backend.cli.srun import SrunError, allocation_submission, build_request, parse_args
    try:
        opts, command = parse_args(argv)
        sub = allocation_submission(opts, "srun", {"PATH": "/usr/bin:/bin"}, "/work", "name", "srun")
        request = build_request(opts, command or ["true"], {"PATH": "/usr/bin:/bin"}, "/work")
    except SrunError as e:
        assert str(e)
        return
    assert sub["interactive"] is True and request["argv"]


def test_srun_node_count_in_other_scripts_digits_is_a_usage_error():
    """'-N ²' passed str.isdigit() and then crashed int(): now srun's own error."""
    from batch_backend.cli.srun import SrunError, allocation_submission, parse_args
    for value in ("²", "1-²", "١"):
        opts, _ = parse_args(["-N", value, "true"])
        try:
            allocation_submission(opts, "srun", {}, "/work", "n", "srun")
        except SrunError as e:
            assert str(e) == f"invalid node count `{value}'"
        else:
            raise AssertionError(value)
