"""The wire model: what a job, node and partition look like in the API.

Every tool (CLI, spawner, magics, dashboards) receives these plain dicts from
``batch_backend.client`` and formats them; the controller produces them from its
in-memory records. Keeping the field list here, in one stdlib-only module, is
what lets the OpenAPI document, the controller and the formatters agree.

Times are UNIX epoch seconds (float) or ``None`` for "Unknown"; time limits are
minutes (int) or ``None`` for UNLIMITED; memory is MB (int).
"""

# Long state name -> compact code (squeue %t), as in Slurm.
JOB_STATE_CODES = {
    "PENDING": "PD",
    "CONFIGURING": "CF",
    "RUNNING": "R",
    "COMPLETING": "CG",
    "SUSPENDED": "S",
    "COMPLETED": "CD",
    "CANCELLED": "CA",
    "FAILED": "F",
    "TIMEOUT": "TO",
    "OUT_OF_MEMORY": "OOM",
    "NODE_FAIL": "NF",
    "PREEMPTED": "PR",
    "BOOT_FAIL": "BF",
    "DEADLINE": "DL",
    "REQUEUED": "RQ",
}

#: States in which a job still occupies or waits for resources.
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"})
#: Final states: the job will never run again (unless requeued by an admin).
FINAL_STATES = frozenset(JOB_STATE_CODES) - ACTIVE_STATES - {"REQUEUED"}

# field name -> (JSON type, description). The job dict sent by the API.
JOB_FIELDS = {
    "job_id": ("integer", "raw job id (%j, SLURM_JOB_ID)"),
    "array_job_id": ("integer|null", "array master id (%A) for array tasks, else null"),
    "array_task_id": ("integer|null", "array index (%a), else null"),
    "array_spec": ("string|null", "the unstarted tasks of an array as Slurm prints them, e.g. '2-3%2', on the master record"),
    "display_id": ("string", "id as squeue shows it: 'N', 'A_i' or 'A_[x-y%p]'"),
    "name": ("string", "job name (%x)"),
    "user": ("string", "owner's user name"),
    "uid": ("integer", "owner's uid"),
    "gid": ("integer", "owner's primary gid"),
    "group": ("string", "owner's primary group name"),
    "account": ("string", "account charged"),
    "qos": ("string", "quality of service"),
    "partition": ("string", "partition"),
    "state": ("string", "long state name, see JOB_STATE_CODES"),
    "reason": ("string", "Slurm reason: 'None' when running, 'Priority', 'Resources', 'JobHeldUser', ... when pending"),
    "exit_code": ("integer", "exit status of the batch script (0 while unknown)"),
    "exit_signal": ("integer", "signal that ended the batch script, 0 if none"),
    "cancelled_by": ("integer|null", "uid that cancelled the job"),
    "priority": ("integer", "scheduling priority (higher runs first)"),
    "nice": ("integer", "nice value"),
    "priority_set": ("integer|null", "priority pinned by an administrator (scontrol update priority=N, top), else null"),
    "submit_time": ("number", "epoch seconds"),
    "eligible_time": ("number|null", "when the job became eligible; null while held"),
    "start_time": ("number|null", "actual start, or the planner's estimate while pending (see start_estimated)"),
    "start_estimated": ("boolean", "true while start_time is a planner estimate"),
    "end_time": ("number|null", "actual end, or start+limit while running"),
    "time_limit": ("integer|null", "minutes; null = UNLIMITED"),
    "num_nodes": ("integer", "nodes requested (min) or allocated"),
    "num_tasks": ("integer", "--ntasks"),
    "ntasks_per_node": ("integer|null", "--ntasks-per-node"),
    "cpus_per_task": ("integer", "--cpus-per-task"),
    "num_cpus": ("integer", "total CPUs requested or allocated"),
    "mem_per_node": ("integer|null", "--mem in MB"),
    "mem_per_cpu": ("integer|null", "--mem-per-cpu in MB"),
    "gres": ("string", "requested generic resources per node, e.g. 'gpu:2' or ''"),
    "features": ("string", "--constraint expression or ''"),
    "nodelist_req": ("string", "--nodelist or ''"),
    "exclude": ("string", "--exclude or ''"),
    "dependency": ("string", "--dependency or ''"),
    "nodes": ("list[string]", "allocated node names, in order"),
    "nodelist": ("string", "allocated nodes as a hostlist expression, '' while pending"),
    "batch_host": ("string", "node running the batch script, '' while pending"),
    "cpus_per_node": ("dict[string,integer]", "allocated CPUs per node"),
    "tasks_per_node": ("dict[string,integer]", "tasks placed per node"),
    "gpus_per_node": ("dict[string,list[int]]", "GPU indices allocated per node"),
    "workdir": ("string", "working directory"),
    "stdout": ("string", "stdout path pattern, as given or defaulted (not expanded)"),
    "stderr": ("string", "stderr path pattern ('' = joined with stdout)"),
    "stdin": ("string", "stdin path, '/dev/null' by default"),
    "stdout_path": ("string", "stdout path with patterns expanded (once the node is known)"),
    "stderr_path": ("string", "stderr path with patterns expanded"),
    "command": ("string", "script path given to sbatch, or '' for stdin/--wrap"),
    "submit_line": ("string", "sbatch argv joined by single spaces"),
    "submit_host": ("string", "host sbatch ran on"),
    "open_mode": ("string", "'truncate' or 'append'"),
    "requeue": ("boolean", "--requeue"),
    "restarts": ("integer", "times the job was requeued"),
    "signal": ("string", "--signal spec, e.g. 'B:USR2@90', or ''"),
    "comment": ("string", "--comment"),
    "held": ("string", "'' or 'user' or 'admin'"),
    "reservation": ("string", "advance reservation the job runs in (--reservation), or ''"),
    "steps": ("list[dict]", "steps: {step_id, name, state, exit_code, exit_signal, start_time, end_time, nodelist, num_tasks}"),
    "suspend_kind": ("string", "while SUSPENDED: admin (scontrol suspend), preempt (SUSPEND preemption), gang (time slice)"),
    "suspend_time": ("number|null", "when the job was last suspended (null while running)"),
    "suspended_seconds": ("number", "total suspended time of this run (not counted against the time limit)"),
    "pre_suspend_seconds": ("integer", "run time before the last suspension (SecsPreSuspend)"),
    "preempt": ("dict|null", "a preemption under way or done: {mode, by (preemptor job id), time, deadline}"),
    "prior_runs": ("list[dict]", "earlier runs of a requeued job (sacct rows): {state: REQUEUED|PREEMPTED|NODE_FAIL|<final>, start_time, end_time, nodelist, steps, ...}"),
}

NODE_FIELDS = {
    "name": ("string", "node name"),
    "state": ("string", "IDLE, MIXED, ALLOCATED, DOWN, DRAINING, DRAINED, UNKNOWN (+ '*' suffix flags in state_flags)"),
    "state_flags": ("list[string]", "extra flags: NOT_RESPONDING, DRAIN"),
    "reason": ("string", "admin or system reason for DOWN/DRAIN"),
    "reason_time": ("number|null", "when the reason was set"),
    "reason_user": ("string", "who set it"),
    "cpus": ("integer", "configured CPUs"),
    "alloc_cpus": ("integer", "CPUs allocated to jobs"),
    "real_memory": ("integer", "configured memory MB"),
    "alloc_memory": ("integer", "MB allocated to jobs"),
    "gres": ("string", "configured generic resources, e.g. 'gpu:2'"),
    "alloc_gpus": ("integer", "GPUs allocated"),
    "features": ("list[string]", "node features"),
    "partitions": ("list[string]", "partitions containing the node"),
    "address": ("string", "NodeAddr: address the node is reachable at"),
    "hostname": ("string", "NodeHostname"),
    "boot_time": ("number|null", "when the node daemon registered"),
    "last_busy": ("number|null", "last time the node had jobs"),
    "jobs": ("list[integer]", "running job ids"),
}

PARTITION_FIELDS = {
    "name": ("string", "partition name"),
    "default": ("boolean", "Default=YES"),
    "state": ("string", "UP, DOWN, DRAIN, INACTIVE"),
    "max_time": ("integer|null", "minutes; null = UNLIMITED"),
    "default_time": ("integer|null", "minutes; null = max_time"),
    "max_nodes": ("integer|null", "null = UNLIMITED"),
    "min_nodes": ("integer", "MinNodes"),
    "nodes": ("list[string]", "member node names"),
    "nodelist": ("string", "member nodes as a hostlist"),
    "allow_groups": ("string", "'ALL' or comma list"),
    "allow_accounts": ("string", "'ALL' or comma list"),
    "deny_accounts": ("string", "'' or comma list (DenyAccounts)"),
    "allow_qos": ("string", "'ALL' or comma list (AllowQos)"),
    "deny_qos": ("string", "'' or comma list (DenyQos)"),
    "root_only": ("boolean", "RootOnly=YES"),
    "hidden": ("boolean", "Hidden=YES"),
    "priority_tier": ("integer", "PriorityTier"),
    "preempt_mode": ("string|null", "the partition's own PreemptMode (null: the cluster's)"),
    "preempt_mode_text": ("string", "effective PreemptMode as scontrol prints it (GANG,SUSPEND, REQUEUE, ...)"),
    "grace_time": ("integer", "GraceTime: seconds between the SIGTERM of a CANCEL/REQUEUE preemption and the kill"),
    "over_subscribe": ("string", "OverSubscribe: NO, EXCLUSIVE, YES[:N], FORCE[:N] (FORCE:N: N jobs per CPU, time-sliced with GANG)"),
    "total_cpus": ("integer", "sum of member node CPUs"),
}


# The reservation dict sent by the API (GET /v1/reservations). Create and update
# requests use the same names for what they set (see controller/reservations.py).
RESERVATION_FIELDS = {
    "name": ("string", "ReservationName"),
    "start_time": ("number", "start of the current (or next) window, epoch seconds"),
    "end_time": ("number", "end of that window, epoch seconds"),
    "state": ("string", "ACTIVE while start_time <= now <= end_time, else INACTIVE"),
    "nodes": ("list[string]", "reserved node names (whole nodes)"),
    "nodelist": ("string", "reserved nodes as a hostlist"),
    "node_cnt": ("integer", "NodeCnt"),
    "core_cnt": ("integer", "CoreCnt: CPUs of the reserved nodes"),
    "features": ("string", "Features the nodes were chosen by, or ''"),
    "partition": ("string", "PartitionName, or ''"),
    "flags": ("list[string]", "MAINT, FLEX, OVERLAP, IGNORE_JOBS, DAILY, WEEKDAY, WEEKEND, WEEKLY, "
                              "SPEC_NODES, ALL_NODES, PART_NODES, PURGE_COMP"),
    "flags_text": ("string", "Flags= as scontrol prints them"),
    "purge_comp_time": ("integer|null", "PURGE_COMP=<time> in seconds (null: the default 5 minutes)"),
    "users": ("list[string]", "Users= (a leading '-' excludes)"),
    "groups": ("list[string]", "Groups= (Unix groups; a leading '-' excludes)"),
    "accounts": ("list[string]", "Accounts= (a leading '-' excludes)"),
    "licenses": ("string", "Licenses="),
    "comment": ("string", "Comment="),
    "tres": ("string", "TRES= (cpu=N)"),
}


def state_code(state):
    """Compact code for a long job state ('RUNNING' -> 'R')."""
    return JOB_STATE_CODES.get(state, state[:2])


def gpu_count(gres):
    """GPUs per node in a gres string: 'gpu:2' / 'gpu:tesla:2' / 'gpu' -> 2 / 2 / 1; others -> 0."""
    total = 0
    for item in filter(None, (gres or "").split(",")):
        parts = item.split(":")
        if parts[0] != "gpu":
            continue
        total += int(parts[-1]) if len(parts) > 1 and (parts[-1].isascii() and parts[-1].isdigit()) else 1
    return total

# One pending job's priority as sprio shows it (GET /v1/priority).
PRIORITY_FACTOR_FIELDS = {
    "job_id": ("integer", "raw job id"),
    "display_id": ("string", "id as squeue shows it"),
    "user": ("string", "owner"),
    "account": ("string", "account ('' = the user's default)"),
    "qos": ("string", "QOS name"),
    "partition": ("string", "partition"),
    "nice": ("integer", "nice value (subtracted)"),
    "direct": ("boolean", "priority set by an administrator: no factors apply"),
    "priority": ("integer", "the priority now: truncated weighted sum minus nice, at least 1"),
    "factors": ("dict[string,number]", "normalised factors in [0,1]: age, fairshare, jobsize, partition, qos, and tres (a dict)"),
    "weighted": ("dict[string,number]", "each factor times its PriorityWeight*"),
}

# One association as sshare shows it (GET /v1/shares), in tree order.
SHARE_FIELDS = {
    "account": ("string", "account (for a user row: the account it belongs to)"),
    "user": ("string|null", "user, null on account rows"),
    "parent": ("string|null", "parent account, null for root"),
    "depth": ("integer", "0 for root, +1 per level (sshare indents by it)"),
    "raw_shares": ("integer|string|null", "Fairshare= of the association; 'parent' (uses its account's); null for root"),
    "norm_shares": ("number", "share of the whole cluster (product down the tree)"),
    "raw_usage": ("number", "decayed CPU-seconds"),
    "norm_usage": ("number", "raw usage / the cluster's raw usage"),
    "effective_usage": ("number", "classic effective usage (parent's usage blended in)"),
    "fairshare": ("number|null", "classic factor 2**(-effective_usage/norm_shares); null for root"),
}
