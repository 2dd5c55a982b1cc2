"""Job steps (srun inside an allocation): layout, credentials, task ends, accounting.

A step is recorded inside its job (``job["steps"]``, next to the ``batch``
step) so it is journaled with the job and shows in ``sacct`` as
``JOBID.STEPID``. The controller lays the tasks out over the job's nodes,
signs a step credential the node daemons can check, pushes ``launch_step``
to every node of the step, and folds the ``task_ended`` reports into the
step's state; srun polls the step until it is final.
"""

import os

from .. import hostlist
from ..errors import Conflict, InvalidRequest, NotFound
from ..credential import sign_step
from ..model import FINAL_STATES
from ..sched.placement import spread_tasks

MPI_TYPES = ("none", "pmi1", "pmi2")

STEP_FIELDS = {
    "num_tasks": (int, type(None)), "num_nodes": (int, type(None)), "ntasks_per_node": (int, type(None)),
    "cpus_per_task": (int, type(None)), "argv": (list,), "environment": (dict,), "cwd": (str,),
    "name": (str,), "mpi": (str,), "io_address": (str,), "io_key": (str,), "pmi_address": (str, type(None)),
    "label": (bool,), "overlap": (bool,), "exclusive": (bool,), "stdin_mode": (str,), "stdout": (str,),
    "stderr": (str,), "submit_line": (str,), "nodelist_req": (str,), "exclude": (str,),
}


def credential_key(state_dir):
    """The cluster's step-credential key (created once, readable by the daemons' account only)."""
    path = os.path.join(state_dir, "cred.key")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def _check(body):
    for key, value in body.items():
        types = STEP_FIELDS.get(key)
        if types is None:
            raise InvalidRequest(f"unknown field {key!r}")
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise InvalidRequest(f"field {key!r} must be {types[0].__name__}")
    if not body.get("argv") or not all(isinstance(a, str) for a in body["argv"]):
        raise InvalidRequest("field 'argv' must be a non-empty list of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in body.get("environment", {}).items()):
        raise InvalidRequest("field 'environment' must map names to strings")
    if body.get("mpi", "none") not in MPI_TYPES:
        raise InvalidRequest(f"invalid MPI type '{body['mpi']}', --mpi=list for acceptable types"
                             f" ({', '.join(MPI_TYPES)})")
    for key in ("num_tasks", "num_nodes", "ntasks_per_node", "cpus_per_task"):
        if body.get(key) is not None and not 1 <= body[key] <= 100000:
            raise InvalidRequest(f"invalid value for {key}: {body[key]}")
    if body.get("stdin_mode", "0") not in ("none", "0", "all"):
        raise InvalidRequest("field 'stdin_mode' must be none, 0 or all")
    for key in ("nodelist_req", "exclude"):
        if body.get(key):
            try:
                hostlist.expand(body[key])
            except ValueError as e:
                raise InvalidRequest(f"Invalid node name specified: {e}") from None


def layout_step(job, body):
    """(nodes, {node: [ranks]}) for a step inside ``job``'s allocation, or InvalidRequest."""
    job_nodes = list(job["nodes"])
    if body.get("nodelist_req"):
        wanted = hostlist.expand(body["nodelist_req"])
        if any(n not in job_nodes for n in wanted):
            raise InvalidRequest("Requested node configuration is not available",
                                 detail_lines=[f"nodes {body['nodelist_req']} are not in the job's allocation"])
        job_nodes = [n for n in job_nodes if n in wanted] + [n for n in job_nodes if n not in wanted]
    if body.get("exclude"):
        excluded = set(hostlist.expand(body["exclude"]))
        job_nodes = [n for n in job_nodes if n not in excluded]
    c = body.get("cpus_per_task") or 1
    ntpn = body.get("ntasks_per_node")
    want_nodes = body.get("num_nodes")
    n = body.get("num_tasks")
    if n is None:
        n = (want_nodes or len(job_nodes)) * ntpn if ntpn else (
            job["num_tasks"] if not want_nodes else max(want_nodes, min(job["num_tasks"], want_nodes)))
    if want_nodes is None:
        want_nodes = min(len(job_nodes), n)
    if want_nodes > len(job_nodes) or want_nodes > n or want_nodes < 1:
        raise InvalidRequest("Requested node configuration is not available",
                             detail_lines=[f"the step asks for {want_nodes} nodes, the job has {len(job['nodes'])}"])
    nodes = job_nodes[:want_nodes]
    capacity = {name: max(1, job["cpus_per_node"].get(name, 1) // c) for name in nodes}
    if ntpn:
        capacity = {name: ntpn for name in nodes}
    if sum(capacity.values()) < n and not body.get("overlap"):
        raise InvalidRequest("Requested node configuration is not available",
                             detail_lines=[f"the step needs {n * c} CPUs on {want_nodes} nodes, "
                                           f"the allocation has {sum(job['cpus_per_node'].get(x, 0) for x in nodes)}"])
    counts = spread_tasks([(name, capacity[name]) for name in nodes], n)
    left = n - sum(counts.values())
    i = 0
    while left > 0:  # --overlap beyond the allocation: round robin
        counts[nodes[i % len(nodes)]] += 1
        left -= 1
        i += 1
    ranks, r = {}, 0
    for name in nodes:
        ranks[name] = list(range(r, r + counts[name]))
        r += counts[name]
    return nodes, ranks, n


class StepManager:
    """Step creation and bookkeeping for a :class:`Cluster`."""

    def __init__(self, cluster, key):
        self.cluster = cluster
        self.key = key

    def _job(self, job_id, caller):
        jobs = self.cluster.find(str(job_id))
        if not jobs:
            raise NotFound("Invalid job id specified")
        job = jobs[0]
        if not caller.admin and (job["uid"] != caller.uid or job["user"] != caller.user):
            from ..errors import PermissionDenied
            raise PermissionDenied("Access/permission denied")
        return job

    def create(self, job_id, body, caller):
        _check(body)
        job = self._job(job_id, caller)
        if job["state"] != "RUNNING":
            raise Conflict(f"Job {job['job_id']} is {job['state'].lower()}, not running: cannot create a step")
        nodes, ranks, n = layout_step(job, body)
        step_id = job.get("next_step_id", 0)
        job["next_step_id"] = step_id + 1
        now = self.cluster.now()
        nodelist = hostlist.compress(nodes)
        left = None
        if job.get("time_limit") is not None:
            end = job.get("end_time") or job["start_time"] + job["time_limit"] * 60  # moved on by suspensions
            left = max(0.0, end - now)
        expires = now + (left if left is not None else 7 * 86400) + 300
        credential = sign_step(self.key, job["job_id"], step_id, job["uid"], nodelist, expires)
        c = body.get("cpus_per_task") or 1
        step = {
            "step_id": step_id, "name": body.get("name") or os.path.basename(body["argv"][0]),
            "state": "RUNNING", "exit_code": 0, "exit_signal": 0, "start_time": now, "end_time": None,
            "nodes": nodes, "nodelist": nodelist, "num_tasks": n, "num_cpus": n * c,
            "ranks": ranks, "tasks": {}, "submit_line": body.get("submit_line", ""),
            "mpi": body.get("mpi", "none"),
        }
        job.setdefault("steps", []).append(step)
        counts = [len(ranks[x]) for x in nodes]
        from .cluster import _compact_counts
        for index, name in enumerate(nodes):
            self.cluster.nodes[name].push({"type": "launch_step", "job_id": job["job_id"], "step_id": step_id, "step": {
                "argv": body["argv"], "environment": body.get("environment", {}), "cwd": body.get("cwd") or job["workdir"],
                "uid": job["uid"], "gid": job["gid"], "user": job["user"], "ranks": ranks[name],
                "node_index": index, "nodes": nodes, "nodelist": nodelist, "num_tasks": n,
                "tasks_per_node_str": _compact_counts(counts), "cpus_per_task": c,
                "cpu_slots": len(ranks[name]) * c, "io_address": body.get("io_address", ""),
                "io_key": body.get("io_key", ""), "pmi_address": body.get("pmi_address"),
                "mpi": body.get("mpi", "none"), "stdin_mode": body.get("stdin_mode", "0"),
                "stdout": body.get("stdout", ""), "stderr": body.get("stderr", ""), "label": bool(body.get("label")),
                "job_nodelist": job["nodelist"], "credential": credential, "time_left_seconds": left,
                "array_job_id": job.get("array_job_id"), "array_task_id": job.get("array_task_id"),
                "job_name": job["name"],
            }})
        self.cluster._save(job)
        return {"job_id": job["job_id"], "step_id": step_id, "nodes": nodes, "nodelist": nodelist,
                "num_tasks": n, "tasks": ranks, "credential": credential}

    def get(self, job_id, step_id, caller):
        job = self._job(job_id, caller)
        step = self._step(job, step_id)
        return {"job_id": job["job_id"], "job_state": job["state"], "step": step}

    @staticmethod
    def _step(job, step_id):
        for step in job.get("steps", []):
            if str(step["step_id"]) == str(step_id):
                return step
        raise NotFound(f"Invalid job id specified: step {job['job_id']}.{step_id} does not exist")

    def cancel(self, job_id, step_id, caller, signal=None):
        job = self._job(job_id, caller)
        step = self._step(job, step_id)
        if step["state"] == "RUNNING":
            self.kill(job, step, signal)
        return step

    def kill(self, job, step, signal=None):
        for name in step["nodes"]:
            self.cluster.nodes[name].push({"type": "kill_step", "job_id": job["job_id"],
                                           "step_id": step["step_id"], "signal": signal})
        if signal is None:
            step["cancel_requested"] = True

    def kill_all(self, job):
        """The job ended: every step still running ends with it."""
        now = self.cluster.now()
        for step in job.get("steps", []):
            if step.get("step_id") != "batch" and step["state"] == "RUNNING":
                self.kill(job, step)
                step["state"] = "CANCELLED"
                step["end_time"] = now

    def task_ended(self, node, event):
        job = self.cluster.jobs.get(event.get("job_id"))
        if job is None:
            return
        try:
            step = self._step(job, event.get("step_id"))
        except NotFound:
            return
        rank = str(event.get("rank"))
        step["tasks"][rank] = {"exit_code": int(event.get("exit_code") or 0),
                               "exit_signal": int(event.get("exit_signal") or 0), "node": node}
        if len(step["tasks"]) >= step["num_tasks"] and step["state"] == "RUNNING" or (
                len(step["tasks"]) >= step["num_tasks"] and step["state"] in FINAL_STATES and not step.get("end_reported")):
            worst = max(step["tasks"].values(), key=lambda t: (t["exit_code"], t["exit_signal"]))
            signalled = [t for t in step["tasks"].values() if t["exit_signal"]]
            step["exit_code"] = worst["exit_code"]
            step["exit_signal"] = signalled[0]["exit_signal"] if signalled and not worst["exit_code"] else 0
            if step["state"] == "RUNNING":
                if step.get("cancel_requested"):
                    step["state"] = "CANCELLED"
                elif step["exit_code"] or step["exit_signal"]:
                    step["state"] = "FAILED"
                else:
                    step["state"] = "COMPLETED"
                step["end_time"] = event.get("time") or self.cluster.now()
            step["end_reported"] = True
        self.cluster._save(job)
