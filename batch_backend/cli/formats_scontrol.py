"""``scontrol show job|node|partition|config`` records (SLURM_DIALECT section 7).

Each record is a first line and indented ``Key=Value`` lines, or one line
with ``-o`` (``oneliner``).
"""

import time as _time

from .. import model, timespec
from .formats_common import NULL, _exit, _or_null, job_std_path, job_tres, time_used

def _record(lines, oneliner):
    if oneliner:
        return " ".join(line.strip() for line in lines if line.strip()) + "\n"
    return lines[0] + "\n" + "".join("   " + line + "\n" for line in lines[1:]) + "\n"


def _array_throttle(job):
    if job.get("array_max_running"):
        return int(job["array_max_running"])
    spec = job.get("array_spec") or ""
    if "%" in spec:
        return int(spec.rsplit("%", 1)[1] or 0)
    return 0


def format_job(job, now=None, oneliner=False):
    """One ``scontrol show job`` record (SLURM_DIALECT section 7)."""
    now = _time.time() if now is None else now
    state = job.get("state", "")
    pending = state == "PENDING"
    started = bool(job.get("start_time")) and not job.get("start_estimated") and not pending
    if job.get("array_job_id") is not None and (job.get("array_task_id") is not None or job.get("array_spec")):
        task = job.get("array_spec") or job.get("array_task_id")
        first = (f"JobId={job['job_id']} ArrayJobId={job['array_job_id']} ArrayTaskId={task} "
                 f"ArrayTaskThrottle={_array_throttle(job)} JobName={job.get('name', '')}")
    else:
        first = f"JobId={job['job_id']} JobName={job.get('name', '')}"
    limit = job.get("time_limit")
    limit_text = timespec.format_hms(None if limit is None else limit * 60)
    start = job.get("start_time")
    if pending and not job.get("start_estimated"):
        start = None
    end = job.get("end_time")
    if pending:
        end = (start + limit * 60) if (start and limit is not None) else None
    eligible = job.get("eligible_time")
    mem_line = (f"MinMemoryCPU={timespec.format_mem(job['mem_per_cpu'])}" if job.get("mem_per_cpu")
                else f"MinMemoryNode={timespec.format_mem(job.get('mem_per_node') or 0)}")
    lines = [
        first,
        f"UserId={job.get('user', '')}({job.get('uid', '')}) GroupId={job.get('group', '')}({job.get('gid', '')}) MCS_label=N/A",
        f"Priority={job.get('priority', 0)} Nice={job.get('nice', 0)} Account={_or_null(job.get('account'))} QOS={_or_null(job.get('qos'))}",
        f"JobState={state} Reason={job.get('reason') or 'None'} Dependency={_or_null(job.get('dependency'))}",
        f"Requeue={1 if job.get('requeue') else 0} Restarts={job.get('restarts', 0)} BatchFlag=1 Reboot=0 ExitCode={_exit(job)}",
        f"RunTime={timespec.format_hms(time_used(job, now))} TimeLimit={limit_text} TimeMin=N/A",
        f"SubmitTime={timespec.format_datetime(job.get('submit_time'))} EligibleTime={timespec.format_datetime(eligible)}",
        f"AccrueTime={timespec.format_datetime(eligible)}",
        f"StartTime={timespec.format_datetime(start)} EndTime={timespec.format_datetime(end)} Deadline=N/A",
        f"SuspendTime={timespec.format_datetime(job['suspend_changed']) if job.get('suspend_changed') else 'None'} "
        f"SecsPreSuspend={int(job.get('pre_suspend_seconds') or 0)} LastSchedEval={timespec.format_datetime(job.get('start_time') if started else job.get('submit_time'))} Scheduler=Main",
        f"Partition={job.get('partition', '')} AllocNode:Sid={job.get('submit_host') or 'localhost'}:{job.get('alloc_sid', 0)}",
        f"ReqNodeList={_or_null(job.get('nodelist_req'))} ExcNodeList={_or_null(job.get('exclude'))}",
        f"NodeList={'' if pending else job.get('nodelist') or ''}",
    ]
    if not pending and job.get("batch_host"):
        lines.append(f"BatchHost={job['batch_host']}")
    lines += [
        f"NumNodes={job.get('num_nodes', 1)} NumCPUs={job.get('num_cpus', 1)} NumTasks={job.get('num_tasks', 1)} "
        f"CPUs/Task={job.get('cpus_per_task', 1)} ReqB:S:C:T=0:0:*:*",
        f"ReqTRES={job_tres(job)}",
        f"AllocTRES={job_tres(job, alloc=True) if (not pending and job.get('nodes')) else NULL}",
        f"Socks/Node=* NtasksPerN:B:S:C={job.get('ntasks_per_node') or 0}:0:*:* CoreSpec=*",
        f"MinCPUsNode={(job.get('cpus_per_task') or 1) * (job.get('ntasks_per_node') or 1)} {mem_line} MinTmpDiskNode=0",
        f"Features={_or_null(job.get('features'))} DelayBoot=00:00:00",
    ]
    if job.get("reservation"):
        lines.append(f"Reservation={job['reservation']}")
    lines += [
        f"OverSubscribe={'NO' if job.get('exclusive') else 'OK'} Contiguous=0 Licenses=(null) Network=(null)",
        f"Command={_or_null(job.get('command'))}",
        f"WorkDir={job.get('workdir', '')}",
    ]
    if job.get("comment"):
        lines.append(f"Comment={job['comment']}")
    lines += [
        f"StdErr={job_std_path(job, 'stderr')}",
        f"StdIn={job.get('stdin') or '/dev/null'}",
        f"StdOut={job_std_path(job, 'stdout')}",
        "Power=",
    ]
    if job.get("gres"):
        lines.append(f"TresPerNode=gres:{job['gres']}")
    return _record(lines, oneliner)


def node_state_long(node):
    """``scontrol show node`` State: ``IDLE``, ``MIXED+DRAIN``, ``DOWN+NOT_RESPONDING``..."""
    base = node.get("state", "UNKNOWN")
    flags = list(node.get("state_flags") or [])
    if base == "DRAINED":
        base = "IDLE"
        flags.insert(0, "DRAIN") if "DRAIN" not in flags else None
    elif base == "DRAINING":
        base = "ALLOCATED" if node.get("alloc_cpus", 0) >= node.get("cpus", 1) else "MIXED"
        flags.insert(0, "DRAIN") if "DRAIN" not in flags else None
    order = {"DRAIN": 0, "NOT_RESPONDING": 1}
    flags.sort(key=lambda f: order.get(f, 2))
    return "+".join([base] + flags)


def _node_cfg_tres(node):
    items = [f"cpu={node.get('cpus', 0)}", f"mem={timespec.format_mem(node.get('real_memory') or 0)}",
             f"billing={node.get('cpus', 0)}"]
    gpus = model.gpu_count(node.get("gres"))
    if gpus:
        items.append(f"gres/gpu={gpus}")
    return ",".join(items)


def _node_alloc_tres(node):
    items = []
    if node.get("alloc_cpus"):
        items.append(f"cpu={node['alloc_cpus']}")
    if node.get("alloc_memory"):
        items.append(f"mem={timespec.format_mem(node['alloc_memory'])}")
    if node.get("alloc_gpus"):
        items.append(f"gres/gpu={node['alloc_gpus']}")
    return ",".join(items)


def format_node(node, oneliner=False):
    """One ``scontrol show node`` record (Slurm 22.05 layout; trailing spaces as Slurm prints)."""
    cpus = node.get("cpus", 0)
    features = ",".join(node.get("features") or []) or NULL
    load = node.get("cpu_load")
    free = node.get("free_memory")
    lines = [
        f"NodeName={node['name']} Arch={node.get('arch') or NULL} CoresPerSocket={node.get('cores_per_socket', 1)} ",
        f"CPUAlloc={node.get('alloc_cpus', 0)} CPUEfctv={cpus} CPUTot={cpus} "
        f"CPULoad={'N/A' if load is None else '%.2f' % load}",
        f"AvailableFeatures={features}",
        f"ActiveFeatures={features}",
        f"Gres={node.get('gres') or NULL}",
        f"NodeAddr={node.get('address') or node['name']} NodeHostName={node.get('hostname') or node['name']} "
        f"Version={node.get('version') or '22.05.11'}",
    ]
    if node.get("os"):
        lines.append(f"OS={node['os']} ")
    lines += [
        f"RealMemory={node.get('real_memory', 0)} AllocMem={node.get('alloc_memory', 0)} "
        f"FreeMem={'N/A' if free is None else free} Sockets={node.get('sockets', cpus)} Boards=1",
        f"State={node_state_long(node)} ThreadsPerCore={node.get('threads_per_core', 1)} TmpDisk=0 "
        f"Weight={node.get('weight', 1)} Owner=N/A MCS_label=N/A",
        f"Partitions={','.join(node.get('partitions') or [])} ",
        f"BootTime={timespec.format_datetime(node.get('boot_time')) if node.get('boot_time') else 'None'} "
        f"SlurmdStartTime={timespec.format_datetime(node.get('boot_time')) if node.get('boot_time') else 'None'}",
        f"LastBusyTime={timespec.format_datetime(node.get('last_busy'))}",
        f"CfgTRES={_node_cfg_tres(node)}",
        f"AllocTRES={_node_alloc_tres(node)}",
        "CapWatts=n/a",
        "CurrentWatts=0 AveWatts=0",
        "ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
    ]
    if node.get("reason"):
        who = node.get("reason_user") or "slurm"
        when = timespec.format_datetime(node.get("reason_time"))
        lines.append(f"Reason={node['reason']} [{who}@{when}]")
    return _record(lines, oneliner)


def format_partition(part, oneliner=False):
    """One ``scontrol show partition`` record (Slurm 22.05 layout)."""
    max_time = part.get("max_time")
    default_time = part.get("default_time")
    nodes = part.get("nodes") or []
    total_cpus = part.get("total_cpus", 0)
    lines = [
        f"PartitionName={part['name']}",
        f"AllowGroups={part.get('allow_groups') or 'ALL'} "
        + (f"DenyAccounts={part['deny_accounts']}" if part.get("deny_accounts")
           else f"AllowAccounts={part.get('allow_accounts') or 'ALL'}")
        + (f" DenyQos={part['deny_qos']}" if part.get("deny_qos") else f" AllowQos={part.get('allow_qos') or 'ALL'}"),
        f"AllocNodes=ALL Default={'YES' if part.get('default') else 'NO'} QoS=N/A",
        f"DefaultTime={'NONE' if default_time is None else timespec.format_hms(default_time * 60)} "
        f"DisableRootJobs=NO ExclusiveUser=NO GraceTime={part.get('grace_time') or 0} Hidden={'YES' if part.get('hidden') else 'NO'}",
        f"MaxNodes={'UNLIMITED' if part.get('max_nodes') is None else part['max_nodes']} "
        f"MaxTime={timespec.format_hms(None if max_time is None else max_time * 60)} "
        f"MinNodes={part.get('min_nodes', 0)} LLN=NO MaxCPUsPerNode=UNLIMITED",
        f"Nodes={part.get('nodelist') or NULL}",
        f"PriorityJobFactor=1 PriorityTier={part.get('priority_tier', 1)} "
        f"RootOnly={'YES' if part.get('root_only') else 'NO'} ReqResv=NO "
        f"OverSubscribe={part.get('over_subscribe') or 'NO'}",
        f"OverTimeLimit=NONE PreemptMode={part.get('preempt_mode_text') or 'OFF'}",
        f"State={part.get('state', 'UP')} TotalCPUs={total_cpus} TotalNodes={len(nodes)} SelectTypeParameters=NONE",
        "JobDefaults=(null)",
        "DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
        f"TRES=cpu={total_cpus},node={len(nodes)},billing={total_cpus}",
    ]
    return _record(lines, oneliner)


def format_reservation(resv, oneliner=False, now=None):
    """One ``scontrol show reservation`` record (Slurm 22.05's slurm_sprint_reservation_info)."""
    now = _time.time() if now is None else now
    start, end = resv.get("start_time"), resv.get("end_time")
    duration = timespec.format_hms(end - start) if end is not None and start is not None and end >= start else "N/A"
    state = "ACTIVE" if start is not None and start <= now <= end else "INACTIVE"

    def names(key):
        return ",".join(resv.get(key) or []) or NULL
    lines = [
        f"ReservationName={resv['name']} StartTime={timespec.format_datetime(start)} "
        f"EndTime={timespec.format_datetime(end)} Duration={duration}",
        f"Nodes={resv.get('nodelist') or NULL} NodeCnt={resv.get('node_cnt', 0)} CoreCnt={resv.get('core_cnt', 0)} "
        f"Features={_or_null(resv.get('features'))} PartitionName={_or_null(resv.get('partition'))} "
        f"Flags={resv.get('flags_text') or ''}",
        f"TRES={resv.get('tres') or NULL}",
        f"Users={names('users')} Groups={names('groups')} Accounts={names('accounts')} "
        f"Licenses={_or_null(resv.get('licenses'))} State={state} BurstBuffer={NULL} Watts=n/a",
        f"MaxStartDelay={NULL}",
    ]
    if resv.get("comment"):
        lines.append(f"Comment={resv['comment']}")
    if oneliner:
        return " ".join(lines) + "\n"
    return lines[0] + "\n" + "".join("   " + line + "\n" for line in lines[1:]) + "\n"


def format_config(config, now=None):
    """``scontrol show config``: a dated header, then ``Key = Value`` lines."""
    now = _time.time() if now is None else now
    lines = [f"Configuration data as of {timespec.format_datetime(now)}"]
    for key in sorted(config, key=str.lower):
        value = config[key]
        lines.append(f"{key:<23} = {NULL if value in (None, '') else value}")
    return "\n".join(lines) + "\n"
