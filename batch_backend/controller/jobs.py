"""From a submission to a job record: validation and defaults.

Everything a client sends is checked here, field by field, so that a bad
request becomes one readable :class:`InvalidRequest` (HTTP 400) and never a
half-made job. The submission format is what ``cli.sbatch_options`` builds.
"""

import os
import sys

from .. import hostlist
from ..errors import InvalidRequest, PermissionDenied
from ..sched.placement import NodeView, gpu_count, place
from .identity import group_name, lookup_user, user_name

# field -> accepted JSON types (None allowed where listed)
SUBMISSION_FIELDS = {
    "script": (str,), "script_args": (list,), "name": (str,), "partition": (str,),
    "account": (str,), "qos": (str,), "reservation": (str,),
    "time_limit": (int, type(None)), "time_min": (int, type(None)),
    "num_nodes": (int, type(None)), "num_tasks": (int, type(None)),
    "ntasks_per_node": (int, type(None)), "cpus_per_task": (int, type(None)),
    "mem_per_node": (int, type(None)), "mem_per_cpu": (int, type(None)),
    "gres": (str,), "features": (str,), "nodelist_req": (str,), "exclude": (str,),
    "dependency": (str,), "workdir": (str,), "submit_dir": (str,), "stdout": (str,),
    "stderr": (str,), "stdin": (str,), "environment": (dict,), "export": (str,),
    "get_user_env": (bool,), "hold": (bool,), "array": (str, type(None)), "command": (str,),
    "submit_line": (str,), "submit_host": (str,), "open_mode": (str,),
    "requeue": (bool, type(None)), "signal": (str,), "comment": (str,),
    "begin_time": (int, float, type(None)), "nice": (int,), "exclusive": (bool,),
    "priority": (int, type(None)), "wait": (bool,), "submit_token": (str,), "user": (str,),
    "test_only": (bool,), "interactive": (bool,), "uid": (str, int, type(None)), "gid": (str, int, type(None)),
}

MAX_SCRIPT_BYTES = 4 * 1024 * 1024
#: Largest time limit in minutes (~4000 years): start + limit must stay a printable date.
MAX_TIME_LIMIT = 2**31 - 1
#: Latest begin time (epoch): 9999-12-31, the last date every formatter can print.
MAX_EPOCH = 253402300799
#: Slurm's nice range (NICE_OFFSET - 3) and priority ceiling (uint32 minus NO_VAL/INFINITE).
MAX_NICE = 2147483645
MAX_PRIORITY = 2**32 - 3
#: Counts and sizes (tasks, nodes, CPUs, MB) beyond any real cluster.
MAX_COUNT = 10**9

# scontrol update job: field -> accepted JSON types
UPDATE_FIELDS = {
    "time_limit": (int, type(None)), "partition": (str,), "name": (str,), "comment": (str,),
    "nice": (int,), "num_nodes": (int,), "num_tasks": (int,), "mem_per_node": (int,),
    "dependency": (str, type(None)), "features": (str, type(None)), "exclude": (str, type(None)),
    "begin_time": (int, float, type(None)), "priority": (int,), "requeue": (bool,),
    "account": (str,), "qos": (str,),
}


def _check_types(fields, table, unsupported):
    for key, value in fields.items():
        types = table.get(key)
        if types is None:
            raise InvalidRequest(unsupported.format(key=key))
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise InvalidRequest(f"field {key!r} must be {types[0].__name__}")


def _check_begin_time(value):
    if value is not None and not (0 <= value <= MAX_EPOCH):  # also refuses NaN
        raise InvalidRequest("Invalid time specification: begin time out of range")


def _check_time_limit(value):
    if value is not None and value != -1 and not (0 < value <= MAX_TIME_LIMIT):
        raise InvalidRequest("Invalid time limit specification")


def _check_nice(value):
    if not -MAX_NICE <= value <= MAX_NICE:
        raise InvalidRequest(f"Invalid nice value, must be between -{MAX_NICE} and {MAX_NICE}")


def _check_priority(value):
    if value is not None and not 0 <= value <= MAX_PRIORITY:
        raise InvalidRequest(f"Invalid priority value: {value}")


def _check_text(key, value):
    if isinstance(value, str) and "\0" in value:
        raise InvalidRequest(f"field {key!r} may not contain NUL bytes")


def check_job_update(fields):
    """Type- and range-check a ``scontrol update job`` request before anything changes.

    Checking every field first is what makes an update all-or-nothing: a bad
    value in the last field must not leave the first ones applied.
    """
    if not fields:
        raise InvalidRequest("No changes specified")
    _check_types(fields, UPDATE_FIELDS, "Update of {key} is not supported")
    for key, value in fields.items():
        _check_text(key, value)
    if fields.get("time_limit") == -1:
        raise InvalidRequest("Invalid time limit specification")
    _check_time_limit(fields.get("time_limit"))
    if "nice" in fields:
        _check_nice(fields["nice"])
    _check_priority(fields.get("priority"))
    _check_begin_time(fields.get("begin_time"))
    for key in ("num_nodes", "num_tasks"):
        if key in fields and not 1 <= fields[key] <= MAX_COUNT:
            raise InvalidRequest(f"invalid value for {key}: {fields[key]}")
    if "mem_per_node" in fields and not 0 <= fields["mem_per_node"] <= MAX_COUNT:
        raise InvalidRequest(f"invalid value for mem_per_node: {fields['mem_per_node']}")
    if fields.get("exclude"):
        try:
            hostlist.expand(fields["exclude"])
        except ValueError as e:
            raise InvalidRequest(f"Invalid node name specified: {e}") from None


def check_submission(sub):
    """Type-check a submission dict; raise InvalidRequest naming the bad field."""
    if not isinstance(sub, dict):
        raise InvalidRequest("request body must be a JSON object")
    _check_types(sub, SUBMISSION_FIELDS, "unknown field {key!r}")
    if sub.get("interactive"):
        sub.setdefault("script", "#!/bin/sh\n# allocation for srun/salloc: no batch script\n")
    if not isinstance(sub.get("script"), str) or not sub["script"]:
        raise InvalidRequest("field 'script' is required")
    if len(sub["script"]) > MAX_SCRIPT_BYTES:
        raise InvalidRequest("batch script is larger than 4 MB")
    if not sub["script"].startswith("#!"):
        raise InvalidRequest("This does not look like a batch script: the first line must start with #!")
    env = sub.get("environment", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise InvalidRequest("field 'environment' must map names to strings")
    for k, v in env.items():
        # what execve() cannot pass: the job would fail at launch for a reason nobody sees
        if not k or "=" in k or "\0" in k or "\0" in v:
            raise InvalidRequest(f"Invalid environment variable name or value: {k[:60]!r}")
    if not all(isinstance(a, str) for a in sub.get("script_args", [])):
        raise InvalidRequest("field 'script_args' must be a list of strings")
    for key, value in sub.items():
        if key != "script" and isinstance(value, str):
            _check_text(key, value)
    for arg in sub.get("script_args", []):
        _check_text("script_args", arg)
    if "\0" in sub["script"]:
        raise InvalidRequest("The Slurm controller does not allow scripts that contain a NULL character '\\0'.")
    for key in ("num_nodes", "num_tasks", "ntasks_per_node", "cpus_per_task", "mem_per_node", "mem_per_cpu"):
        v = sub.get(key)
        if v is not None and (v < (0 if key.startswith("mem") else 1) or v > MAX_COUNT):
            raise InvalidRequest(f"invalid value for {key}: {v}")
    _check_time_limit(sub.get("time_limit"))
    if sub.get("time_min") is not None and not -1 <= sub["time_min"] <= MAX_TIME_LIMIT:
        raise InvalidRequest("Invalid time limit specification")
    _check_begin_time(sub.get("begin_time"))
    _check_nice(sub.get("nice", 0))
    _check_priority(sub.get("priority"))
    if sub.get("open_mode", "") not in ("", "append", "truncate"):
        raise InvalidRequest("--open-mode must be append or truncate")
    if "\0" in sub.get("workdir", "") or "\0" in sub.get("stdout", "") or "\0" in sub.get("stderr", ""):
        raise InvalidRequest("paths may not contain NUL bytes")


def parse_array(spec):
    """'0-3%2' -> ([0, 1, 2, 3], 2). Raise InvalidRequest on bad syntax."""
    try:
        from ..cli.sbatch_options import expand_array_spec
        indices, max_running = expand_array_spec(spec)
    except (ValueError, ImportError) as e:
        raise InvalidRequest(f"Invalid job array specification: {spec}") from e
    if not indices or len(indices) > 100000 or min(indices) < 0:
        raise InvalidRequest(f"Invalid job array specification: {spec}")
    return indices, max_running


def format_array_pending(indices, max_running):
    """Indices -> Slurm's compact range text ('2-3%2', '3,5-8')."""
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    text = ",".join(parts)
    return f"{text}%{max_running}" if max_running else text


def resolve_owner(sub, caller):
    """The job's user: the caller, or (admins only) the ``user`` field."""
    wanted = sub.get("user") or (str(sub["uid"]) if sub.get("uid") not in (None, "") else None)
    if not wanted or wanted == caller.user:
        return caller.uid, caller.gid, caller.user
    if not caller.admin:
        raise PermissionDenied(f"Access/permission denied: only admins may submit as {wanted}")
    try:
        uid, gid = lookup_user(wanted)
    except KeyError:
        if os.getuid() != 0:
            # Single-account mode: users are names, the jobs all run as the service account.
            return caller.uid, caller.gid, wanted
        raise InvalidRequest(f"Invalid user id: {wanted}") from None
    return uid, gid, user_name(uid)


def build_job(sub, *, job_id, caller, partitions, default_partition, nodes, now, cluster_name):
    """Turn a checked submission into (job dict, payload dict) or raise InvalidRequest."""
    pname = sub.get("partition") or default_partition
    if not pname:
        raise InvalidRequest("No partition specified or system default partition",
                             detail_lines=["no partition specified and no default partition"])
    if "," in pname:
        pname = pname.split(",")[0]  # Slurm picks the first usable; we take the first
    partition = partitions.get(pname)
    if partition is None:
        raise InvalidRequest("Invalid partition name specified",
                             detail_lines=[f"invalid partition specified: {pname}"])
    if partition.get("state") in ("DRAIN", "INACTIVE"):
        raise InvalidRequest("Required partition not available (inactive or drain)")
    uid, gid, user = resolve_owner(sub, caller)
    if partition.get("root_only") and uid != 0:
        raise PermissionDenied("Access/permission denied",
                               detail_lines=[f"partition {pname} is RootOnly"])
    _check_allow_groups(partition, uid, gid, user)
    num_nodes = sub.get("num_nodes")
    ntpn = sub.get("ntasks_per_node")
    cpus_per_task = sub.get("cpus_per_task") or 1
    num_tasks = sub.get("num_tasks")
    if num_tasks is None:
        num_tasks = (num_nodes or 1) * ntpn if ntpn else (num_nodes or 1)
    if num_nodes and num_nodes > num_tasks:
        raise InvalidRequest("Requested node configuration is not available",
                             detail_lines=[f"more nodes ({num_nodes}) than tasks ({num_tasks}) requested"])
    for key in ("nodelist_req", "exclude"):
        if sub.get(key):
            try:
                names = hostlist.expand(sub[key])
            except ValueError as e:
                raise InvalidRequest(f"Invalid node name specified: {e}") from None
            unknown = [n for n in names if n not in nodes]
            if unknown:
                raise InvalidRequest("Invalid node name specified",
                                     detail_lines=[f"invalid node name {unknown[0]}"])
    if sub.get("mem_per_node") and sub.get("mem_per_cpu"):
        raise InvalidRequest("--mem and --mem-per-cpu are mutually exclusive")
    gres = sub.get("gres", "")
    for item in filter(None, gres.split(",")):
        parts = item.split(":")  # gpu[:type][:count]
        if parts[0] != "gpu" or len(parts) > 3 or not all(p and p.isascii() and p.replace("_", "").replace(
                "-", "").replace(".", "").isalnum() for p in parts[1:]) or (len(parts) == 3 and not parts[2].isdigit()):
            raise InvalidRequest(f"Invalid generic resource (gres) specification: {item}")
    time_limit = sub.get("time_limit")  # -1: explicitly UNLIMITED; None: not given
    if time_limit == -1:
        time_limit = None
    elif time_limit is None:
        time_limit = partition.get("default_time") if partition.get("default_time") is not None \
            else partition.get("max_time")
    workdir = sub.get("workdir") or sub.get("submit_dir") or "/"
    if not os.path.isabs(workdir):
        raise InvalidRequest(f"working directory must be an absolute path: {workdir}")
    array_indices, array_max = ([], None)
    if sub.get("array"):
        array_indices, array_max = parse_array(sub["array"])
    name = sub.get("name") or "sbatch"
    job = {
        "job_id": job_id,
        "array_job_id": job_id if array_indices else None,
        "array_task_id": None,
        "array_spec": format_array_pending(array_indices, array_max) if array_indices else None,
        "array_pending": array_indices if array_indices else None,
        "array_max_running": array_max,
        "array_task_count": len(array_indices) if array_indices else None,
        "array_task_min": min(array_indices) if array_indices else None,
        "array_task_max": max(array_indices) if array_indices else None,
        "array_task_step": _array_step(array_indices),
        "display_id": f"{job_id}_[{format_array_pending(array_indices, array_max)}]" if array_indices else str(job_id),
        "name": name,
        "user": user, "uid": uid, "gid": gid, "group": group_name(gid),
        "account": sub.get("account") or "",
        "qos": sub.get("qos") or "normal",
        "reservation": sub.get("reservation") or "",
        "partition": pname,
        "state": "PENDING",
        "reason": "None",
        "exit_code": 0, "exit_signal": 0, "cancelled_by": None,
        "priority": sub.get("priority") if (sub.get("priority") is not None and caller.admin) else 0,
        "nice": sub.get("nice", 0),
        "submit_time": now,
        "eligible_time": None if sub.get("hold") else max(now, sub.get("begin_time") or 0),
        "begin_time": sub.get("begin_time"),
        "start_time": None, "start_estimated": False, "end_time": None,
        "time_limit": time_limit,
        "num_nodes": num_nodes or 1,
        "num_nodes_req": num_nodes,
        "num_tasks": num_tasks,
        "ntasks_per_node": ntpn,
        "cpus_per_task": cpus_per_task,
        "num_cpus": num_tasks * cpus_per_task,
        "mem_per_node": sub.get("mem_per_node"),
        "mem_per_cpu": sub.get("mem_per_cpu"),
        "gres": gres,
        "features": sub.get("features", ""),
        "nodelist_req": sub.get("nodelist_req", ""),
        "exclude": sub.get("exclude", ""),
        "exclusive": bool(sub.get("exclusive")),
        "dependency": sub.get("dependency", ""),
        "nodes": [], "nodelist": "", "batch_host": "",
        "cpus_per_node": {}, "tasks_per_node": {}, "gpus_per_node": {}, "mem_alloc_per_node": {},
        "workdir": workdir,
        "submit_dir": sub.get("submit_dir") or workdir,
        "stdout": sub.get("stdout") or ("slurm-%A_%a.out" if array_indices else "slurm-%j.out"),
        "stderr": sub.get("stderr", ""),
        "stdin": sub.get("stdin") or "/dev/null",
        "stdout_path": "", "stderr_path": "",
        "command": sub.get("command", ""),
        "submit_line": sub.get("submit_line", ""),
        "submit_host": sub.get("submit_host", ""),
        "open_mode": sub.get("open_mode") or "truncate",
        "requeue": bool(sub.get("requeue")),
        "restarts": 0,
        "signal": sub.get("signal", ""),
        "comment": sub.get("comment", ""),
        "held": "user" if sub.get("hold") else "",
        "export": sub.get("export") or "ALL",
        "get_user_env": bool(sub.get("get_user_env")),
        "cluster_name": cluster_name,
        "interactive": bool(sub.get("interactive")),
        "steps": [],
    }
    if array_indices and len(array_indices) > 1 and array_max is None:
        job["array_max_running"] = None
    _check_ever_runnable(job, partition, nodes)
    share_strings(job)
    payload = {
        "script": sub["script"],
        "script_args": sub.get("script_args", []),
        "environment": sub.get("environment", {}),
    }
    return job, payload


def _check_allow_groups(partition, uid, gid, user):
    """AllowGroups: only members (by primary or supplementary group) may submit; root always."""
    allowed = partition.get("allow_groups") or "ALL"
    if allowed.upper() == "ALL" or uid == 0:
        return
    wanted = {g.strip() for g in allowed.split(",") if g.strip()}
    try:
        gids = os.getgrouplist(user, gid)
    except OSError:
        gids = [gid]
    if not wanted & {group_name(g) for g in gids}:
        raise PermissionDenied("User's group not permitted to use this partition",
                               detail_lines=[f"partition {partition['name']} allows groups {allowed}"])


def _array_step(indices):
    if len(indices or []) < 2:
        return 1 if indices else None
    steps = {b - a for a, b in zip(indices, indices[1:])}
    return steps.pop() if len(steps) == 1 else 1


def _check_ever_runnable(job, partition, nodes):
    """Refuse requests no node of the partition could satisfy even when idle."""
    views = [nodes[n].empty_copy() for n in partition["nodes"] if n in nodes]
    if place(job, views, expand_hostlist=hostlist.expand) is None:
        most_cpus = max((v.cpus for v in views), default=0)
        most_gpus = max((v.gpus for v in views), default=0)
        if job["cpus_per_task"] > most_cpus:
            why = f"requested {job['cpus_per_task']} CPUs per task but the largest node in {partition['name']} has {most_cpus}"
        elif gpu_count(job["gres"]) > most_gpus:
            why = f"requested {gpu_count(job['gres'])} GPUs per node but nodes in {partition['name']} have at most {most_gpus}"
        elif job.get("num_nodes_req") and job["num_nodes_req"] > len(views):
            why = f"requested {job['num_nodes_req']} nodes but partition {partition['name']} has {len(views)}"
        else:
            why = f"no node set in partition {partition['name']} satisfies the request"
        raise InvalidRequest("Requested node configuration is not available", detail_lines=[why])


#: Job fields whose values repeat across most jobs (owner, partition, directories, states).
SHARED_TEXT_FIELDS = (
    "user", "group", "account", "qos", "partition", "state", "reason", "name", "workdir", "submit_dir",
    "submit_host", "stdout", "stderr", "stdin", "open_mode", "export", "cluster_name", "command",
    "submit_line", "held", "dependency", "features", "gres", "comment", "signal", "reservation",
    "nodelist_req", "exclude", "batch_host", "nodelist",
)


def share_strings(job):
    """Make equal field values one string object (``sys.intern``), in place; returns ``job``.

    Why: a queue of 100,000 jobs from a few users holds the same user, partition,
    directory and state names 100,000 times over; sharing them keeps the
    controller's memory per job near the size of the dict itself.
    """
    intern = sys.intern
    for key in SHARED_TEXT_FIELDS:
        value = job.get(key)
        if type(value) is str:
            job[key] = intern(value)
    return job
