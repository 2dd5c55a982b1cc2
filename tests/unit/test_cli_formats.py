"""The CLI formatters print SLURM_DIALECT's examples byte for byte.

Every job/node/partition here is a hand-built dict of ``batch_backend.model``;
times are fixed epochs rendered in UTC (the ``utc`` fixture sets TZ).
"""

import calendar
import time

import pytest

from batch_backend.cli import formats as f

T0 = calendar.timegm((2026, 11, 22, 16, 0, 48))  # 2026-11-22T16:00:48 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def job(**kw):
    j = dict(
        job_id=1, array_job_id=None, array_task_id=None, array_spec=None, display_id="1", name="x",
        user="root", uid=0, gid=0, group="root", account="", qos="normal", partition="debug",
        state="PENDING", reason="None", exit_code=0, exit_signal=0, cancelled_by=None, priority=1,
        nice=0, submit_time=T0, eligible_time=T0, start_time=None, start_estimated=False,
        end_time=None, time_limit=60, num_nodes=1, num_tasks=1, ntasks_per_node=None,
        cpus_per_task=1, num_cpus=1, mem_per_node=None, mem_per_cpu=None, gres="", features="",
        nodelist_req="", exclude="", dependency="", nodes=[], nodelist="", batch_host="",
        workdir="/root", stdout="slurm-%j.out", stderr="", stdin="/dev/null", stdout_path="",
        stderr_path="", command="", submit_line="", submit_host="login1", requeue=False,
        restarts=0, comment="", steps=[],
    )
    j.update(kw)
    return j


def running(job_id, started, node="n1", **kw):
    return job(job_id=job_id, display_id=str(job_id), state="RUNNING", start_time=started,
               end_time=started + 600, nodes=[node], nodelist=node, batch_host=node, **kw)


def step(step_id, state, nodelist="n1", **kw):
    s = dict(step_id=step_id, name=None, state=state, exit_code=0, exit_signal=0,
             start_time=T0 + 1, end_time=None, nodelist=nodelist, num_tasks=1, num_cpus=1,
             max_rss_mb=None)
    s.update(kw)
    return s


def squeue(jobs, fmt, header=False, now=T0 + 3, long=False):
    parse = f.parse_squeue_long_format if long else f.parse_squeue_format
    columns, invalid = parse(fmt)
    assert not invalid
    return f.format_squeue(jobs, columns, header=header, now=now)


# -- squeue -------------------------------------------------------------------

HELD = job(job_id=4038, display_id="4038", name="wrap", reason="JobHeldUser")
RUNNING = running(4034, T0, name="envdump")
ARRAY_PENDING = job(job_id=4039, array_job_id=4039, array_spec="2-3%2", display_id="4039_[2-3%2]",
                    name="arrjob", reason="JobArrayTaskLimit")
TASK0 = dict(running(4040, T0 + 1, name="arrjob"), array_job_id=4039, array_task_id=0, display_id="4039_0")
TASK1 = dict(running(4041, T0 + 1, name="arrjob"), array_job_id=4039, array_task_id=1, display_id="4039_1")


def test_squeue_state_and_batch_host_of_held_running_completing_jobs():
    assert squeue([HELD], "%T %B") == "PENDING n/a\n"
    assert squeue([RUNNING], "%T %B") == "RUNNING n1\n"
    assert squeue([dict(RUNNING, state="COMPLETING")], "%T %B") == "COMPLETING n1\n"


def test_squeue_array_rows_sorted_pending_range_first():
    jobs = f.sort_jobs([TASK1, TASK0, ARRAY_PENDING], now=T0 + 3)
    assert squeue(jobs, "%T %B") == "PENDING n/a\nRUNNING n1\nRUNNING n1\n"
    assert [j["display_id"] for j in jobs] == ["4039_[2-3%2]", "4039_0", "4039_1"]


def test_squeue_literal_separators():
    assert squeue([HELD], "%i|%u|%T") == "4038|root|PENDING\n"


def test_squeue_dialect_custom_format_example():
    out = squeue([HELD, RUNNING, ARRAY_PENDING, TASK0], "%.18i %.9P %j %.20u %.2t %.15M %.6D %R")
    assert out == (
        "              4038     debug wrap                 root PD            0:00      1 (JobHeldUser)\n"
        "              4034     debug envdump                 root  R            0:03      1 n1\n"
        "      4039_[2-3%2]     debug arrjob                 root PD            0:00      1 (JobArrayTaskLimit)\n"
        "            4039_0     debug arrjob                 root  R            0:02      1 n1\n"
    )


def test_squeue_default_format_with_header():
    rq = job(job_id=4044, display_id="4044", name="rq.sh", reason="BeginTime")
    assert squeue([rq], f.SQUEUE_DEFAULT, header=True) == (
        "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)\n"
        "              4044     debug    rq.sh     root PD       0:00      1 (BeginTime)\n"
    )


def test_squeue_width_cuts_left_justified_and_keeps_right_justified_prefix():
    j = job(name="averyveryverylongname")
    assert squeue([j], "%5j|%.5j|") == "avery|avery|\n"
    assert squeue([job(name="ab")], "%5j|%.5j|") == "ab   |   ab|\n"


def test_squeue_time_used_formats():
    assert squeue([running(1, T0)], "%M", now=T0 + 59) == "0:59\n"
    assert squeue([running(1, T0)], "%M", now=T0 + 3723) == "1:02:03\n"
    assert squeue([running(1, T0)], "%M", now=T0 + 2 * 86400 + 3723) == "2-01:02:03\n"


def test_squeue_time_limit_and_left_never_cut():
    j = running(1, T0, time_limit=2 * 1440)
    assert squeue([j], "%.3l|%.3L", now=T0 + 60) == "2-00:00:00|1-23:59:00\n"
    assert squeue([job(time_limit=None)], "%l %L") == "UNLIMITED UNLIMITED\n"


def test_squeue_reason_list_pending_vs_nodes():
    assert squeue([HELD], "%R") == "(JobHeldUser)\n"
    assert squeue([dict(RUNNING, nodes=["n1", "n2"], nodelist="n[1-2]")], "%.3R") == "n[1-2]\n"
    assert squeue([HELD], "%.5R") == "(JobH\n"


def test_squeue_array_ids_and_raw_ids():
    assert squeue([TASK0], "%i %A %F %K") == "4039_0 4040 4039 0\n"
    assert squeue([ARRAY_PENDING], "%i %A %F %K") == "4039_[2-3%2] 4039 4039 2-3%2\n"
    assert squeue([HELD], "%F %K") == "4038 N/A\n"


def test_squeue_start_format_header():
    est = dict(HELD, start_time=T0 + 600, start_estimated=True, reason="Resources")
    columns, _ = f.parse_squeue_format(f.SQUEUE_START)
    out = f.format_squeue([est], columns, now=T0)
    assert out == (
        "             JOBID PARTITION     NAME     USER ST          START_TIME  NODES SCHEDNODES           NODELIST(REASON)\n"
        "              4038     debug     wrap     root PD 2026-11-22T16:10:48      1 (null)               (Resources)\n"
    )


def test_squeue_long_format_header():
    columns, _ = f.parse_squeue_format(f.SQUEUE_LONG)
    out = f.format_squeue([RUNNING], columns, now=T0 + 3)
    assert out.splitlines() == [
        "             JOBID PARTITION     NAME     USER    STATE       TIME TIME_LIMI  NODES NODELIST(REASON)",
        "              4034     debug  envdump     root  RUNNING       0:03   1:00:00      1 n1",
    ]


def test_squeue_Format_fields_default_20_wide_and_width_variants():
    out = squeue([HELD], "JobID,State:.10,name:5|,UserName:4 ", header=True, long=True)
    assert out == (
        "JOBID                    STATENAME |USER \n"
        "4038                   PENDINGwrap |root \n"
    )


def test_squeue_Format_names_are_case_insensitive_and_unknown_reported():
    columns, invalid = f.parse_squeue_long_format("JOBARRAYID:6,Nosuch,statecompact:3")
    assert invalid == ["Nosuch"]
    assert f.format_squeue([TASK0], columns, header=False, now=T0) == "4039_0R  \n"


def test_squeue_unknown_code_is_printed_and_reported():
    columns, invalid = f.parse_squeue_format("%i %!")
    assert invalid == ["!"]
    assert f.format_squeue([HELD], columns, header=False, now=T0) == "4038 %!\n"


def test_squeue_prefix_text_and_percent_all():
    assert squeue([HELD], "id=%i") == "id=4038\n"
    columns, invalid = f.parse_squeue_format("%all")
    assert not invalid
    line = f.format_squeue([HELD], columns, header=True, now=T0).splitlines()[0]
    assert line.startswith("ACCOUNT|TRES_PER_NODE|MIN_CPUS|MIN_TMP_DISK|END_TIME|")  # a..z, then A..Z


def test_squeue_misc_codes():
    j = running(7, T0, user="alice", uid=1000, gid=100, group="users", account="acct01",
                qos="high", priority=100, nice=5, gres="gpu:2", features="fast", mem_per_node=4096,
                cpus_per_task=2, num_cpus=4, comment="hello", command="/bin/job.sh",
                workdir="/home/alice", dependency="afterok:3")
    assert squeue([j], "%u %U %g %G %a %q %Q %y %b %f %m %c %C %k %o %Z %E") == (
        "alice 1000 users 100 acct01 high 100 5 gres:gpu:2 fast 4G 2 4 hello /bin/job.sh /home/alice afterok:3\n")
    assert squeue([HELD], "%a|%b|%f|%k|%o|%E|%v") == "(null)|N/A|(null)|(null)|(null)||(null)\n"
    assert squeue([j], "%S %V %e") == "2026-11-22T16:00:48 2026-11-22T16:00:48 2026-11-22T16:10:48\n"
    assert squeue([HELD], "%S %e") == "N/A N/A\n"


def test_squeue_array_expansion_for_dash_r():
    rows = f.expand_array_rows([ARRAY_PENDING, TASK0])
    assert [r["display_id"] for r in rows] == ["4039_2", "4039_3", "4039_0"]
    assert f.expand_array_spec("3,5-8%2") == [3, 5, 6, 7, 8]
    assert f.expand_array_spec("0-6:2") == [0, 2, 4, 6]


def test_squeue_default_sort_partition_state_priority():
    a = job(job_id=1, display_id="1", priority=5)
    b = job(job_id=2, display_id="2", priority=9)
    c = running(3, T0)
    d = job(job_id=4, display_id="4", partition="alpha")
    assert [j["job_id"] for j in f.sort_jobs([c, a, b, d], now=T0)] == [4, 2, 1, 3]
    assert [j["job_id"] for j in f.sort_jobs([c, a, b, d], "i", now=T0)] == [1, 2, 3, 4]
    assert [j["job_id"] for j in f.sort_jobs([c, a, b, d], "-i", now=T0)] == [4, 3, 2, 1]
    with pytest.raises(ValueError):
        f.sort_jobs([a], "!", now=T0)


# -- sacct ----------------------------------------------------------------------

def acct(jobs, fields, parsable="P", header=True, x=False, now=T0 + 100):
    return f.format_sacct(f.sacct_rows(jobs, allocations_only=x), f.parse_sacct_fields(fields),
                          header=header, parsable=parsable, now=now)


ACCT_JOBS = [
    dict(running(4034, T0 + 1), steps=[step(0, "COMPLETED", end_time=T0 + 5), step("batch", "RUNNING")]),
    dict(running(4036, T0, node="n2"), state="COMPLETED", end_time=T0 + 1,
         steps=[step("batch", "COMPLETED", "n2", end_time=T0 + 1)]),
    dict(HELD),
]


def test_sacct_parsable2_job_and_steps():
    assert acct(ACCT_JOBS, "JobID,State,NodeList") == (
        "JobID|State|NodeList\n"
        "4034|RUNNING|n1\n"
        "4034.batch|RUNNING|n1\n"
        "4034.0|COMPLETED|n1\n"
        "4036|COMPLETED|n2\n"
        "4036.batch|COMPLETED|n2\n"
        "4038|PENDING|None assigned\n"
    )


def test_sacct_array_tasks_and_pending_range():
    steps = [step("batch", "RUNNING"), step(0, "COMPLETED", end_time=T0 + 5)]
    jobs = [dict(TASK0, steps=steps), dict(TASK1, steps=steps), ARRAY_PENDING]
    assert acct(jobs, "JobID,State,NodeList") == (
        "JobID|State|NodeList\n"
        "4039_0|RUNNING|n1\n"
        "4039_0.batch|RUNNING|n1\n"
        "4039_0.0|COMPLETED|n1\n"
        "4039_1|RUNNING|n1\n"
        "4039_1.batch|RUNNING|n1\n"
        "4039_1.0|COMPLETED|n1\n"
        "4039_[2-3%2]|PENDING|None assigned\n"
    )
    assert acct(jobs, "JobID,JobIDRaw,State", header=False, x=True) == (
        "4039_0|4040|RUNNING\n4039_1|4041|RUNNING\n4039_[2-3%2]|4039|PENDING\n")


def test_sacct_step_raw_ids():
    jobs = [dict(TASK0, steps=[step("batch", "RUNNING")])]
    assert acct(jobs, "JobIDRaw", header=False) == "4040\n4040.batch\n"


def test_sacct_allocations_with_dates_and_elapsed():
    done = dict(ACCT_JOBS[1], name="wrap")
    assert acct([done], "JobID,Partition,JobName,User,State,Submit,Elapsed,NNodes,ExitCode",
                header=False, x=True) == "4036|debug|wrap|root|COMPLETED|2026-11-22T16:00:48|00:00:01|1|0:0\n"


def test_sacct_submit_line_with_width():
    j = job(job_id=4035, display_id="4035", submit_line="sbatch --parsable --wrap=sleep 30 -o /dev/null")
    assert acct([j], "SubmitLine%512", header=False, x=True) == "sbatch --parsable --wrap=sleep 30 -o /dev/null\n"


def test_sacct_default_fixed_width_table_trailing_space():
    j = dict(running(1001, T0, name="hostname", account="acct01", num_cpus=4), state="COMPLETED", end_time=T0 + 1)
    out = acct([j], f.SACCT_DEFAULT, parsable=None, x=True)
    assert out == (
        "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode \n"
        "------------ ---------- ---------- ---------- ---------- ---------- -------- \n"
        "1001           hostname      debug     acct01          4  COMPLETED      0:0 \n"
    )


def test_sacct_cancelled_by_uid_and_cut_with_plus():
    j = dict(running(1, T0), state="CANCELLED", cancelled_by=0, end_time=T0 + 5)
    assert acct([j], "State", header=False, x=True) == "CANCELLED by 0\n"
    assert acct([j], "State", parsable=None, header=False, x=True) == "CANCELLED+ \n"


def test_sacct_parsable_has_trailing_delimiter():
    assert acct([HELD], "JobID,State", parsable="p", x=True) == "JobID|State|\n4038|PENDING|\n"


def test_sacct_never_shows_configuring():
    j = dict(running(1, T0), state="CONFIGURING", steps=[step("batch", "CONFIGURING")])
    assert acct([j], "State", header=False) == "PENDING\nPENDING\n"


def test_sacct_exit_codes_and_derived():
    j = dict(running(1, T0), state="FAILED", exit_code=0, exit_signal=9, end_time=T0 + 5,
             steps=[step("batch", "CANCELLED", exit_code=0, exit_signal=9), step(0, "FAILED", exit_code=3)])
    assert acct([j], "JobID,State,ExitCode,DerivedExitCode", header=False) == (
        "1|FAILED|0:9|3:0\n1.batch|CANCELLED|0:9|\n1.0|FAILED|3:0|\n")


def test_sacct_field_names_case_insensitive_and_abbreviated():
    fields = f.parse_sacct_fields("jobid,STATE,nodel,submitline%30")
    assert [(x.name, x.width) for x in fields] == [("JobID", -12), ("State", 10), ("NodeList", 15),
                                                    ("SubmitLine", 30)]
    with pytest.raises(ValueError, match='Invalid field requested: "Nosuch"'):
        f.parse_sacct_fields("JobID,Nosuch")


def test_sacct_unknown_dates_and_running_end():
    assert acct([HELD], "Start,End,Elapsed,Timelimit", header=False, x=True) == "Unknown|Unknown|00:00:00|01:00:00\n"
    r = running(1, T0)
    assert acct([r], "Start,End,Elapsed", header=False, x=True, now=T0 + 90061) == (
        "2026-11-22T16:00:48|Unknown|1-01:01:01\n")
    assert acct([job(time_limit=None)], "Timelimit,TimelimitRaw", header=False, x=True) == "UNLIMITED|UNLIMITED\n"


def test_sacct_jls_fields_all_resolve():
    jls = ("JobID,JobIDRaw,JobName,User,Partition,Account,AllocCPUS,State,ExitCode,DerivedExitCode,"
           "Submit,Start,End,Elapsed,Timelimit,QOS,NodeList,NNodes,NTasks,ReqMem,WorkDir,StdOut,StdErr,"
           "SubmitLine,AllocTRES,ReqTRES,MaxRSS,TotalCPU,UserCPU,SystemCPU,AveDiskRead,AveDiskWrite")
    j = dict(running(5, T0, mem_per_node=2048, gres="gpu:1"), stdout_path="/root/slurm-5.out",
             steps=[step("batch", "RUNNING", max_rss_mb=12, total_cpu=1.5)])
    out = acct([j], jls).splitlines()
    assert out[0] == jls.replace(",", "|")
    job_row = out[1].split("|")
    assert job_row[0] == "5" and job_row[19] == "2G" and job_row[21] == "/root/slurm-5.out"
    assert job_row[24] == "billing=1,cpu=1,gres/gpu=1,mem=2G,node=1"
    step_row = out[2].split("|")
    assert step_row[0] == "5.batch" and step_row[26] == "12288K" and step_row[27] == "00:01.500"


def test_sacct_long_and_brief_formats_parse():
    assert [x.name for x in f.parse_sacct_fields(f.SACCT_BRIEF)] == ["JobID", "State", "ExitCode"]
    assert len(f.parse_sacct_fields(f.SACCT_LONG)) == 54


def test_sacct_step_filter_shows_only_that_step():
    rows = list(f.sacct_rows(ACCT_JOBS[:1], step_filter={("4034", "batch")}))
    assert [r[0]["step_id"] for r in rows] == ["batch"]


# -- scontrol show ------------------------------------------------------------------

SHOW_RUNNING = running(4034, T0 + 1, name="envdump", user="alice", uid=1000, gid=1000, group="alice",
                       account="acct01", priority=10318, num_tasks=3, num_cpus=3, time_limit=10,
                       command="/home/alice/job_env.sh", workdir="/home/alice",
                       stdout="/home/alice/envdump-%j.out", alloc_sid=3224)


def test_scontrol_show_job_running_contains_dialect_lines_in_order():
    text = f.format_job(SHOW_RUNNING, now=T0 + 12)
    expected = [
        "JobId=4034 JobName=envdump",
        "   UserId=alice(1000) GroupId=alice(1000) MCS_label=N/A",
        "   Priority=10318 Nice=0 Account=acct01 QOS=normal",
        "   JobState=RUNNING Reason=None Dependency=(null)",
        "   RunTime=00:00:11 TimeLimit=00:10:00 TimeMin=N/A",
        "   SubmitTime=2026-11-22T16:00:48 EligibleTime=2026-11-22T16:00:48",
        "   StartTime=2026-11-22T16:00:49 EndTime=2026-11-22T16:10:49 Deadline=N/A",
        "   Partition=debug AllocNode:Sid=login1:3224",
        "   NodeList=n1",
        "   BatchHost=n1",
        "   NumNodes=1 NumCPUs=3 NumTasks=3 CPUs/Task=1 ReqB:S:C:T=0:0:*:*",
        "   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0",
        "   Command=/home/alice/job_env.sh",
        "   WorkDir=/home/alice",
        "   StdErr=/home/alice/envdump-4034.out",
        "   StdIn=/dev/null",
        "   StdOut=/home/alice/envdump-4034.out",
    ]
    lines = text.split("\n")
    positions = [lines.index(line) for line in expected]
    assert positions == sorted(positions)
    assert text.endswith("\n\n")
    assert all(line.startswith("   ") for line in lines[1:-2])


def test_scontrol_show_job_held_wrap_job():
    held = dict(SHOW_RUNNING, job_id=4038, name="wrap", state="PENDING", reason="JobHeldUser",
                eligible_time=None, start_time=None, end_time=None, nodes=[], nodelist="",
                batch_host="", command="")
    lines = f.format_job(held, now=T0 + 12).split("\n")
    assert "   JobState=PENDING Reason=JobHeldUser Dependency=(null)" in lines
    assert "   SubmitTime=2026-11-22T16:00:48 EligibleTime=Unknown" in lines
    assert "   StartTime=Unknown EndTime=Unknown Deadline=N/A" in lines
    assert "   NodeList=" in lines
    assert not any(line.startswith("   BatchHost") for line in lines)
    assert "   Command=(null)" in lines
    assert "   AllocTRES=(null)" in lines


def test_scontrol_show_job_pending_estimate_and_tres():
    est = dict(SHOW_RUNNING, state="PENDING", reason="Resources", start_time=T0 + 600,
               start_estimated=True, end_time=None, nodes=[], nodelist="", batch_host="",
               mem_per_cpu=1024, gres="gpu:2")
    lines = f.format_job(est, now=T0).split("\n")
    assert "   StartTime=2026-11-22T16:10:48 EndTime=2026-11-22T16:20:48 Deadline=N/A" in lines
    assert "   MinCPUsNode=1 MinMemoryCPU=1G MinTmpDiskNode=0" in lines
    assert "   ReqTRES=cpu=3,mem=3G,node=1,billing=3,gres/gpu=2" in lines
    assert lines[-3] == "   TresPerNode=gres:gpu:2"


def test_scontrol_show_job_array_task_first_line():
    task = dict(SHOW_RUNNING, job_id=4042, array_job_id=4039, array_task_id=2, array_max_running=2,
                name="arrjob", display_id="4039_2")
    assert f.format_job(task, now=T0).split("\n")[0] == \
        "JobId=4042 ArrayJobId=4039 ArrayTaskId=2 ArrayTaskThrottle=2 JobName=arrjob"
    master = dict(ARRAY_PENDING)
    assert f.format_job(master, now=T0).split("\n")[0] == \
        "JobId=4039 ArrayJobId=4039 ArrayTaskId=2-3%2 ArrayTaskThrottle=2 JobName=arrjob"


def test_scontrol_show_job_is_jls_parsable():
    import re
    pairs = {}
    for line in f.format_job(SHOW_RUNNING, now=T0 + 12).splitlines():
        for key, value in re.findall(r"([\w:]+)=(.*?)(?=\s+[\w:]+=|$)", line.strip()):
            pairs[key] = value
    assert pairs["JobState"] == "RUNNING" and pairs["NodeList"] == "n1" and pairs["AllocNode:Sid"] == "login1:3224"
    assert pairs["StdOut"] == "/home/alice/envdump-4034.out" and pairs["ReqTRES"] == "cpu=3,node=1,billing=3"


def test_scontrol_oneliner_is_one_line_per_record():
    text = f.format_job(SHOW_RUNNING, now=T0, oneliner=True)
    assert text.count("\n") == 1 and text.startswith("JobId=4034 JobName=envdump UserId=alice(1000) ")


def test_scontrol_stdout_relative_and_stderr_join():
    j = dict(SHOW_RUNNING, stdout="out-%x-%j.log", stderr="")
    lines = f.format_job(j, now=T0).split("\n")
    assert "   StdOut=/home/alice/out-envdump-4034.log" in lines
    assert "   StdErr=/home/alice/out-envdump-4034.log" in lines


def node(name, state="IDLE", flags=(), **kw):
    n = dict(name=name, state=state, state_flags=list(flags), reason="", reason_time=None,
             reason_user="", cpus=4, alloc_cpus=0, real_memory=8000, alloc_memory=0, gres="",
             alloc_gpus=0, features=[], partitions=["debug"], address=name, hostname=name,
             boot_time=None, last_busy=None, jobs=[])
    n.update(kw)
    return n


def part(**kw):
    p = dict(name="debug", default=True, state="UP", max_time=60, default_time=None, max_nodes=None,
             min_nodes=0, nodes=["n1", "n2", "n3", "n4"], nodelist="n[1-4]", allow_groups="ALL",
             allow_accounts="ALL", root_only=False, hidden=False, priority_tier=1, total_cpus=16)
    p.update(kw)
    return p


def test_scontrol_show_node_layout_and_reason():
    n = node("n3", "DRAINED", ["DRAIN"], reason="maintenance", reason_user="root", reason_time=T0,
             cpu_load=0.5, free_memory=7000, boot_time=T0 - 3600, features=["gpu", "fast"], gres="gpu:2")
    text = f.format_node(n)
    lines = text.split("\n")
    assert lines[0] == "NodeName=n3 Arch=(null) CoresPerSocket=1 "
    assert "   CPUAlloc=0 CPUEfctv=4 CPUTot=4 CPULoad=0.50" in lines
    assert "   AvailableFeatures=gpu,fast" in lines
    assert "   Gres=gpu:2" in lines
    assert "   RealMemory=8000 AllocMem=0 FreeMem=7000 Sockets=4 Boards=1" in lines
    assert "   State=IDLE+DRAIN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A" in lines
    assert "   Partitions=debug " in lines
    assert "   CfgTRES=cpu=4,mem=8000M,billing=4,gres/gpu=2" in lines
    assert lines[-3] == "   Reason=maintenance [root@2026-11-22T16:00:48]"
    assert text.endswith("\n\n")


def test_scontrol_node_state_strings():
    assert f.node_state_long(node("n", "MIXED")) == "MIXED"
    assert f.node_state_long(node("n", "DRAINING", ["DRAIN"], alloc_cpus=2)) == "MIXED+DRAIN"
    assert f.node_state_long(node("n", "DOWN", ["NOT_RESPONDING"])) == "DOWN+NOT_RESPONDING"


def test_scontrol_show_partition_layout():
    lines = f.format_partition(part()).split("\n")
    assert lines[0] == "PartitionName=debug"
    assert lines[1] == "   AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL"
    assert lines[2] == "   AllocNodes=ALL Default=YES QoS=N/A"
    assert "   MaxNodes=UNLIMITED MaxTime=01:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED" in lines
    assert "   Nodes=n[1-4]" in lines
    assert "   State=UP TotalCPUs=16 TotalNodes=4 SelectTypeParameters=NONE" in lines
    unlimited = f.format_partition(part(max_time=None, default_time=30, default=False)).split("\n")
    assert "   AllocNodes=ALL Default=NO QoS=N/A" in unlimited
    assert any("MaxTime=UNLIMITED" in line for line in unlimited)
    assert any(line.startswith("   DefaultTime=00:30:00 ") for line in unlimited)


def test_scontrol_show_config():
    text = f.format_config({"ClusterName": "hpc", "AccountingStorageBackupHost": None}, now=T0)
    assert text == ("Configuration data as of 2026-11-22T16:00:48\n"
                    "AccountingStorageBackupHost = (null)\n"
                    "ClusterName             = hpc\n")


# -- sinfo -----------------------------------------------------------------------------

def sinfo(parts, nodes, fmt, auto=True, node_mode=False, summarize=False, header=True):
    columns, invalid = f.parse_sinfo_format(fmt)
    assert not invalid
    groups = f.sinfo_groups(parts, nodes, columns, node_mode=node_mode, summarize=summarize)
    return f.format_sinfo(groups, columns, header=header, auto_width=auto, node_mode=node_mode)


NODES = [node(f"n{i}") for i in range(1, 5)]
MIXED_NODES = [node("n1", "MIXED", alloc_cpus=2), node("n2", "ALLOCATED", alloc_cpus=4),
               node("n3", "DRAINED", ["DRAIN"], reason="maint", reason_user="root", reason_time=T0),
               node("n4", "IDLE", ["NOT_RESPONDING"])]


def test_sinfo_default_dialect_example():
    assert sinfo([part()], NODES, f.SINFO_DEFAULT) == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "debug*       up    1:00:00      4   idle n[1-4]\n"
    )


def test_sinfo_groups_by_state_in_slurm_order():
    out = sinfo([part()], MIXED_NODES + [node("n5"), node("n6")], f.SINFO_DEFAULT)
    assert out.splitlines()[1:] == [
        "debug*       up    1:00:00      1  idle* n4",
        "debug*       up    1:00:00      1  drain n3",
        "debug*       up    1:00:00      1    mix n1",
        "debug*       up    1:00:00      1  alloc n2",
    ]
    p = part(nodes=["n1", "n2", "n3", "n4", "n5", "n6"])
    assert sinfo([p], MIXED_NODES + [node("n5"), node("n6")], f.SINFO_DEFAULT).splitlines()[-1] == \
        "debug*       up    1:00:00      2   idle n[5-6]"


def test_sinfo_partition_column_widens_for_long_names_and_infinite_limit():
    out = sinfo([part(), part(name="verylongpartition", default=False, max_time=None)], NODES, f.SINFO_DEFAULT)
    assert out.splitlines() == [
        "PARTITION         AVAIL  TIMELIMIT  NODES  STATE NODELIST",
        "debug*               up    1:00:00      4   idle n[1-4]",
        "verylongpartition    up   infinite      4   idle n[1-4]",
    ]


def test_sinfo_node_oriented():
    assert sinfo([part()], MIXED_NODES, f.SINFO_NODES, node_mode=True) == (
        "NODELIST   NODES PARTITION STATE \n"
        "n1             1    debug* mix   \n"
        "n2             1    debug* alloc \n"
        "n3             1    debug* drain \n"
        "n4             1    debug* idle* \n"
    )


def test_sinfo_cpu_and_node_counters_and_custom_format():
    out = sinfo([part()], MIXED_NODES, "%R %C %F %c %m %G %f", auto=False)
    assert out == ("PARTITION CPUS(A/I/O/T) NODES(A/I/O/T) CPUS MEMORY GRES AVAIL_FEATURES\n"
                   "debug 6/2/8/16 2/0/2/4 4 8000 (null) (null)\n")


def test_sinfo_summarize_and_long():
    assert sinfo([part()], MIXED_NODES, f.SINFO_SUMMARIZE, summarize=True) == (
        "PARTITION AVAIL  TIMELIMIT   NODES(A/I/O/T)  NODELIST\n"
        "debug*       up    1:00:00          2/0/2/4  n[1-4]\n"
    )
    assert sinfo([part()], NODES, f.SINFO_LONG).splitlines() == [
        "PARTITION AVAIL  TIMELIMIT   JOB_SIZE ROOT OVERSUBS     GROUPS  NODES       STATE NODELIST",
        "debug*       up    1:00:00 1-infinite   no       NO        all      4        idle n[1-4]",
    ]


def test_sinfo_state_names():
    assert f.node_state_compact(node("n", "DRAINING", ["DRAIN"])) == "drng"
    assert f.node_state_compact(node("n", "MIXED", ["DRAIN"])) == "drng"
    assert f.node_state_compact(node("n", "IDLE", ["DRAIN", "NOT_RESPONDING"])) == "drain*"
    assert f.node_state_compact(node("n", "DOWN", ["NOT_RESPONDING"])) == "down*"
    assert f.node_state_name(node("n", "ALLOCATED")) == "allocated"


def test_pad_matches_slurm_print_str():
    assert f.pad("abc", 5) == "abc  "
    assert f.pad("abc", 5, right=True) == "  abc"
    assert f.pad("abcdef", 3) == "abc"
    assert f.pad("abcdef", 3, right=True) == "abc"
    assert f.pad("abcdef", 3, right=True, cut=False) == "abcdef"
    assert f.pad("abcdef", 0) == "abcdef"


def test_date_line_is_ctime():
    assert f.date_line(T0) == "Sun Nov 22 16:00:48 2026\n"
