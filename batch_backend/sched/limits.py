"""Association and QOS limits (Slurm's accounting policy), as a pure running tally.

Why here, in ``sched/``: a limit that stops a job from starting is a scheduling
decision, so the controller and the simulator must apply the same one. A
:class:`Limits` object is built from plain data (association records, QOS
records, the jobs holding resources) and asked, job by job in priority order,
``reason(job)``: ``None`` when the job may start, else the pending reason with
Slurm's exact name (``AssocMaxJobsLimit``, ``QOSMaxJobsPerUserLimit``,
``AssocGrpCpuLimit``, ...). Each start is added with :meth:`charge`, so a
pass never starts two jobs that only fit the limit one at a time. A job over a
limit never blocks anyone behind it (the policies treat a limit reason like a
hold).

Association records (``assocs``), keyed ``(account, user, partition)`` with
``''`` for "none" (an account's own row has user ``''``)::

    {"parent": (account, "", "") or None,   # the enclosing account row
     "max_jobs": int|None, "max_submit": int|None, "max_wall": minutes|None,
     "max_tres_per_job": {tres: n}, "grp_tres": {tres: n},
     "grp_jobs": int|None, "grp_submit": int|None}

``max_*`` limits are inherited from the nearest ancestor that sets one and
apply to each user association on its own; ``grp_*`` limits apply to the sum
of every job below the row that sets them (Slurm's rules). As in Slurm's
hierarchy, a ``Max`` limit the job's QOS sets replaces the association's limit
of the same kind (QOS MaxWall over association MaxWall, MaxJobsPerUser over
MaxJobs, MaxTRES over MaxTRES, TRES by TRES); ``Grp`` limits all apply.

QOS records (``qos``), keyed by name::

    {"max_jobs_pu": int|None, "max_submit_pu": int|None, "max_wall": minutes|None,
     "max_tres_pu": {tres: n}, "max_tres_per_job": {tres: n},
     "grp_tres": {tres: n}, "grp_jobs": int|None, "flags": [...]}

TRES names are Slurm's: ``cpu``, ``mem`` (MB), ``node``, ``gres/gpu``.
"""

from .placement import gpu_count

TRES_NAMES = ("cpu", "mem", "node", "gres/gpu")

# TRES -> reason suffixes, as Slurm spells them (they are irregular).
_ASSOC_GRP = {"cpu": "AssocGrpCpuLimit", "mem": "AssocGrpMemLimit", "node": "AssocGrpNodeLimit",
              "gres/gpu": "AssocGrpGRES"}
_ASSOC_PER_JOB = {"cpu": "AssocMaxCpuPerJobLimit", "mem": "AssocMaxMemPerJob",
                  "node": "AssocMaxNodePerJobLimit", "gres/gpu": "AssocMaxGRESPerJob"}
_QOS_GRP = {"cpu": "QOSGrpCpuLimit", "mem": "QOSGrpMemLimit", "node": "QOSGrpNodeLimit",
            "gres/gpu": "QOSGrpGRES"}
_QOS_PER_JOB = {"cpu": "QOSMaxCpuPerJobLimit", "mem": "QOSMaxMemoryPerJob",
                "node": "QOSMaxNodePerJobLimit", "gres/gpu": "QOSMaxGRESPerJob"}
_QOS_PER_USER = {"cpu": "QOSMaxCpuPerUserLimit", "mem": "QOSMaxMemoryPerUser",
                 "node": "QOSMaxNodePerUserLimit", "gres/gpu": "QOSMaxGRESPerUser"}


def requested_tres(job):
    """TRES a pending job asks for (cpu, mem MB, node, gres/gpu)."""
    nodes = job.get("num_nodes_req") or job.get("num_nodes") or 1
    cpus = job.get("num_tasks", 1) * job.get("cpus_per_task", 1)
    if job.get("mem_per_cpu"):
        mem = job["mem_per_cpu"] * cpus
    else:
        mem = (job.get("mem_per_node") or 0) * nodes
    return {"cpu": cpus, "mem": mem, "node": nodes, "gres/gpu": gpu_count(job.get("gres")) * nodes}


def allocated_tres(job, alloc=None):
    """TRES a running job holds (from its allocation), falling back to its request."""
    if alloc is not None:
        nodes, cpus = alloc.nodes, alloc.cpus_per_node
        mem, gpus = alloc.memory_per_node, alloc.gpus_per_node
    else:
        nodes = job.get("nodes") or []
        cpus, mem, gpus = job.get("cpus_per_node") or {}, job.get("mem_alloc_per_node") or {}, \
            job.get("gpus_per_node") or {}
    if not nodes:
        return requested_tres(job)
    return {"cpu": sum(cpus.get(n, 0) for n in nodes), "mem": sum(mem.get(n, 0) for n in nodes),
            "node": len(nodes), "gres/gpu": sum(len(gpus.get(n, ())) for n in nodes)}


def assoc_key_of(job, assocs):
    """The association a job runs under: (account, user, partition), else (account, user, '')."""
    account, user = job.get("account") or "", job.get("user") or ""
    key = (account, user, job.get("partition") or "")
    if key in assocs:
        return key
    key = (account, user, "")
    return key if key in assocs else None


def _add(total, tres, sign=1):
    for name, value in tres.items():
        total[name] = total.get(name, 0) + sign * value


def _over(used, asked, limits):
    """First TRES for which used + asked exceeds the limit, or None."""
    for name in TRES_NAMES:
        limit = limits.get(name)
        if limit is not None and used.get(name, 0) + asked.get(name, 0) > limit:
            return name
    return None


class Limits:
    """The running tally of association and QOS usage one scheduling pass checks against."""

    def __init__(self, assocs, qos, running=()):
        self.assocs = assocs
        self.qos = qos
        self.assoc_jobs = {}   # assoc key -> running jobs at or below it
        self.assoc_tres = {}   # assoc key -> TRES in use at or below it
        self.qos_user_jobs = {}  # (qos, user) -> running jobs
        self.qos_user_tres = {}  # (qos, user) -> TRES
        self.qos_jobs = {}     # qos -> running jobs
        self.qos_tres = {}     # qos -> TRES
        for job in running:
            self.charge(job)

    # -- inheritance ---------------------------------------------------------------
    def chain(self, key):
        """The association and its ancestors, nearest first."""
        out, seen = [], set()
        while key is not None and key in self.assocs and key not in seen:
            seen.add(key)
            out.append(key)
            key = self.assocs[key].get("parent")
        return out

    def effective(self, key, name):
        """A ``max_*`` limit of an association: its own, or the nearest ancestor's."""
        for k in self.chain(key):
            value = self.assocs[k].get(name)
            if value not in (None, {}):
                return value
        return None

    def effective_tres(self, key, name):
        """Per-TRES inheritance of a TRES limit dict (each TRES from the nearest row setting it)."""
        out = {}
        for k in reversed(self.chain(key)):
            out.update(self.assocs[k].get(name) or {})
        return out

    # -- the tally -------------------------------------------------------------------
    def charge(self, job, alloc=None, sign=1):
        """Count a job that starts (or, with ``sign=-1``, ends) against its limits."""
        tres = allocated_tres(job, alloc)
        key = assoc_key_of(job, self.assocs)
        for k in self.chain(key):
            self.assoc_jobs[k] = self.assoc_jobs.get(k, 0) + sign
            _add(self.assoc_tres.setdefault(k, {}), tres, sign)
        q, user = job.get("qos") or "", job.get("user") or ""
        if q in self.qos:
            self.qos_user_jobs[(q, user)] = self.qos_user_jobs.get((q, user), 0) + sign
            _add(self.qos_user_tres.setdefault((q, user), {}), tres, sign)
            self.qos_jobs[q] = self.qos_jobs.get(q, 0) + sign
            _add(self.qos_tres.setdefault(q, {}), tres, sign)

    def reason(self, job):
        """Why ``job`` may not start under its QOS and association limits now, or None."""
        asked = requested_tres(job)
        limit = job.get("time_limit")
        q = self.qos.get(job.get("qos") or "")
        user = job.get("user") or ""
        if q is not None:
            wall = q.get("max_wall")
            if wall is not None and (limit is None or limit > wall):
                return "QOSMaxWallDurationPerJobLimit"
            if q.get("grp_jobs") is not None and self.qos_jobs.get(job["qos"], 0) >= q["grp_jobs"]:
                return "QOSGrpJobsLimit"
            if q.get("max_jobs_pu") is not None and \
                    self.qos_user_jobs.get((job["qos"], user), 0) >= q["max_jobs_pu"]:
                return "QOSMaxJobsPerUserLimit"
        q = q or {}
        key = assoc_key_of(job, self.assocs)
        if key is not None:
            wall = self.effective(key, "max_wall") if q.get("max_wall") is None else None
            if wall is not None and (limit is None or limit > wall):
                return "AssocMaxWallDurationPerJobLimit"
            for k in self.chain(key):
                grp = self.assocs[k].get("grp_jobs")
                if grp is not None and self.assoc_jobs.get(k, 0) >= grp:
                    return "AssocGrpJobsLimit"
            max_jobs = self.effective(key, "max_jobs") if q.get("max_jobs_pu") is None else None
            if max_jobs is not None and self.assoc_jobs.get(key, 0) >= max_jobs:
                return "AssocMaxJobsLimit"
        if q:
            over = _over({}, asked, q.get("max_tres_per_job") or {})
            if over:
                return _QOS_PER_JOB[over]
            over = _over(self.qos_user_tres.get((job["qos"], user), {}), asked, q.get("max_tres_pu") or {})
            if over:
                return _QOS_PER_USER[over]
            over = _over(self.qos_tres.get(job["qos"], {}), asked, q.get("grp_tres") or {})
            if over:
                return _QOS_GRP[over]
        if key is not None:
            per_job = {t: v for t, v in self.effective_tres(key, "max_tres_per_job").items()
                       if (q.get("max_tres_per_job") or {}).get(t) is None}
            over = _over({}, asked, per_job)
            if over:
                return _ASSOC_PER_JOB[over]
            for k in self.chain(key):
                over = _over(self.assoc_tres.get(k, {}), asked, self.assocs[k].get("grp_tres") or {})
                if over:
                    return _ASSOC_GRP[over]
        return None
