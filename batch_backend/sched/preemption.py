"""Preemption: which running jobs a pending job may stop, and how (Slurm's preempt/* plugins).

Pure functions of a :class:`PreemptionState` snapshot, like the rest of
``sched/``: :func:`decide` returns :class:`Preempt` decisions and the
controller (``controller/preemption.py``) journals and applies them.

Who may preempt whom is one question, :func:`can_preempt`, answered by the
configured ``PreemptType``:

* ``preempt/partition_prio``: a job in a partition of higher ``PriorityTier``
  preempts jobs in partitions of lower tier (on the nodes the partitions share);
* ``preempt/qos``: a job preempts jobs whose QOS is in its own QOS's ``Preempt``
  list. The QOS table is ``{name: {"priority": int, "preempt": [names],
  "preempt_mode": str, "grace_time": int}}`` (the accounting side supplies it;
  empty by default, then nothing is preemptable).

How a preempted job is stopped is its ``PreemptMode``: the partition's (or, for
preempt/qos, its QOS's) override, else the cluster's. ``CANCEL`` ends it as
PREEMPTED, ``REQUEUE`` puts it back in the queue, ``SUSPEND`` stops its
processes and frees its CPUs (not its memory or GPUs, as in Slurm) until the
preemptor is gone. ``OFF`` makes a job unpreemptable. ``GANG`` (a flag next to
the mode) turns on time-slicing, see :mod:`.gang`.

Choosing victims follows Slurm's select plugin: candidates are tried lowest
partition tier first, then lowest priority, then most recently started
(``PreemptParameters=youngest_first``: most recent first outright); they are
added one by one until the pending job fits, then every victim the job can do
without is put back, so the set is minimal (no victim can be spared).
"""

from dataclasses import dataclass, field

from .placement import NodeView, place

MODES = ("OFF", "CANCEL", "REQUEUE", "SUSPEND")
TYPES = ("preempt/none", "preempt/partition_prio", "preempt/qos")


class PreemptConfigError(ValueError):
    """A PreemptType/PreemptMode value Slurm would refuse."""


def parse_preempt_mode(text, *, where="PreemptMode"):
    """``'SUSPEND,GANG'`` -> ``('SUSPEND', True)``; ``'GANG'`` -> ``('OFF', True)``; '' -> ``('OFF', False)``."""
    mode, gang = "OFF", False
    for item in filter(None, (p.strip().upper() for p in str(text or "").split(","))):
        if item == "GANG":
            gang = True
        elif item in MODES:
            mode = item
        elif item == "WITHIN":  # Slurm 23 QOS flag: accepted, no effect here
            continue
        else:
            raise PreemptConfigError(f"{where}: invalid preempt mode '{item}'")
    return mode, gang


def duration_seconds(text):
    """A Slurm time value in seconds: ``M``, ``M:S``, ``H:M:S``, ``D-H[:M[:S]]`` (a bare number is minutes)."""
    text = text.strip()
    days, _, rest = text.rpartition("-") if "-" in text else ("", "", text)
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3 or (days and not days.isdigit()):
        raise ValueError(f"bad time '{text}'")
    nums = [int(p) for p in parts]
    if days:
        h, m, s = (nums + [0, 0])[:3]
        return ((int(days) * 24 + h) * 60 + m) * 60 + s
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    return (nums[0] * 60 + nums[1]) * 60 + nums[2]


@dataclass(frozen=True)
class PreemptConfig:
    """The preemption settings of a cluster (slurm.conf plus the QOS table)."""

    preempt_type: str = "preempt/none"
    mode: str = "OFF"            # the cluster's PreemptMode (without GANG)
    gang: bool = False           # PreemptMode has GANG: time-slice OverSubscribe=FORCE partitions
    exempt_time: float = 0.0     # PreemptExemptTime, seconds of run time before a job may be preempted
    youngest_first: bool = False  # PreemptParameters=youngest_first
    partitions: dict = field(default_factory=dict)  # name -> {"priority_tier", "preempt_mode", "grace_time"}
    qos: dict = field(default_factory=dict)         # name -> {"priority", "preempt", "preempt_mode", "grace_time"}

    @property
    def enabled(self):
        return self.preempt_type != "preempt/none"


def config_from_options(options, partitions, qos=None):
    """Build a :class:`PreemptConfig` from slurm.conf options and partition dicts.

    ``partitions`` are the parsed partition dicts (``priority_tier``, and the
    optional ``preempt_mode``/``grace_time``). Raises :class:`PreemptConfigError`.
    """
    lower = {str(k).lower(): v for k, v in (options or {}).items()}
    ptype = str(lower.get("preempttype") or "preempt/none").strip().lower()
    if ptype not in TYPES:
        raise PreemptConfigError(f"PreemptType: unsupported value '{ptype}' (use one of {', '.join(TYPES)})")
    mode, gang = parse_preempt_mode(lower.get("preemptmode"))
    exempt = lower.get("preemptexempttime")
    exempt_s = 0.0
    if exempt not in (None, "", "-1"):
        try:
            exempt_s = float(duration_seconds(str(exempt)))
        except ValueError:
            raise PreemptConfigError(f"PreemptExemptTime: bad time '{exempt}'") from None
    params = str(lower.get("preemptparameters") or "").lower().split(",")
    parts = {}
    for p in partitions:
        pmode = mode
        if p.get("preempt_mode"):
            pmode, _ = parse_preempt_mode(p["preempt_mode"], where=f"partition {p['name']} PreemptMode")
        parts[p["name"]] = {"priority_tier": int(p.get("priority_tier", 1)), "preempt_mode": pmode,
                            "grace_time": int(p.get("grace_time") or 0)}
    return PreemptConfig(ptype, mode, gang, exempt_s, "youngest_first" in params, parts, dict(qos or {}))


# -- who may preempt whom ------------------------------------------------------------------

def tier(job, config):
    part = config.partitions.get(job.get("partition"))
    return part["priority_tier"] if part else 1


def _qos(job, config):
    return config.qos.get(job.get("qos") or "") or {}


def candidate_mode(candidate, config):
    """How ``candidate`` is stopped if preempted: OFF, CANCEL, REQUEUE or SUSPEND."""
    if config.preempt_type == "preempt/qos":
        qmode = str(_qos(candidate, config).get("preempt_mode") or "").upper()
        if qmode and qmode != "CLUSTER":
            return parse_preempt_mode(qmode)[0]
    part = config.partitions.get(candidate.get("partition"))
    return part["preempt_mode"] if part else config.mode


def grace_time(candidate, config):
    """Seconds between the SIGTERM that announces a CANCEL/REQUEUE preemption and the kill."""
    if config.preempt_type == "preempt/qos" and _qos(candidate, config).get("grace_time"):
        return int(_qos(candidate, config)["grace_time"])
    part = config.partitions.get(candidate.get("partition"))
    return part["grace_time"] if part else 0


def can_preempt(preemptor, candidate, config):
    """May ``preemptor`` (a pending job) preempt ``candidate`` (a running one)? Job dicts."""
    if not config.enabled or preemptor.get("job_id") == candidate.get("job_id"):
        return False
    if candidate_mode(candidate, config) == "OFF":
        return False
    if config.preempt_type == "preempt/partition_prio":
        return tier(preemptor, config) > tier(candidate, config)
    if config.preempt_type == "preempt/qos":
        allowed = _qos(preemptor, config).get("preempt") or []
        return bool(candidate.get("qos")) and candidate["qos"] in allowed
    return False


def run_seconds(job, now):
    """Seconds ``job`` has run, suspended time excluded."""
    if job.get("start_time") is None:
        return 0.0
    end = job.get("suspend_time") if job.get("state") == "SUSPENDED" and job.get("suspend_time") else now
    return max(0.0, end - job["start_time"] - float(job.get("suspended_seconds") or 0))


def exempt(candidate, config, now):
    """Still inside PreemptExemptTime (a job gets that long before it may be preempted)."""
    return config.exempt_time > 0 and run_seconds(candidate, now) < config.exempt_time


def victim_order(candidates, config):
    """Slurm's preemptee order: lower tier, lower priority, more recently started first."""
    if config.youngest_first:
        return sorted(candidates, key=lambda j: (-(j.get("start_time") or 0), j["job_id"]))
    return sorted(candidates, key=lambda j: (tier(j, config), _qos(j, config).get("priority", 0),
                                             j.get("priority", 0), -(j.get("start_time") or 0), -j["job_id"]))


# -- choosing victims ----------------------------------------------------------------------------

@dataclass
class Preempt:
    """Preempt ``job_id`` in ``mode`` so that ``preemptor_id`` can run; ``grace_time`` seconds
    of warning (SIGTERM first) for CANCEL/REQUEUE."""

    job_id: int
    mode: str
    preemptor_id: int
    grace_time: int = 0


@dataclass
class PreemptionState:
    """What a preemption pass reads.

    ``nodes``: name -> :class:`~.placement.NodeView` with what is allocated now
    (copied, never mutated). ``pending``: eligible jobs that did not start in
    this pass, in scheduling order. ``running``: jobs holding resources
    (RUNNING, COMPLETING, SUSPENDED); a job already being preempted carries
    ``preempt = {"mode", "by", ...}`` and its resources count as its
    preemptor's. Suspended jobs with ``cpus_released`` hold no CPUs.
    """

    nodes: dict
    partitions: dict
    pending: list
    running: list
    config: PreemptConfig
    expand_hostlist: object = None
    max_preemptors: int = 20  # pending jobs examined per pass (bounds the cost on long queues)


def _copy_view(v):
    return NodeView(v.name, v.cpus, v.real_memory, v.gpus, v.features, v.alloc_cpus, v.alloc_memory,
                    set(v.alloc_gpu_ids), v.usable, v.busy_jobs)


class _Scratch(dict):
    """Node views over ``base``, each copied on its first change: a trial on a thousand
    nodes touches a handful, so copying them all per trial would dominate the pass."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __missing__(self, name):
        return self.base[name]

    def __contains__(self, name):
        return dict.__contains__(self, name) or name in self.base

    def writable(self, name):
        v = dict.get(self, name)
        if v is None:
            if name not in self.base:
                return None
            v = self[name] = _copy_view(self.base[name])
        return v


def _copy_views(nodes, names=None):
    return {n: _copy_view(nodes[n]) for n in (nodes if names is None else names)}


def _free(views, job, mode):
    """Give ``job``'s resources back in ``views`` (SUSPEND frees CPUs only)."""
    for name in job.get("nodes") or []:
        v = views.writable(name) if isinstance(views, _Scratch) else views.get(name)
        if v is None:
            continue
        if not job.get("cpus_released"):
            v.alloc_cpus -= (job.get("cpus_per_node") or {}).get(name, 0)
        if mode != "SUSPEND":
            v.alloc_memory -= (job.get("mem_alloc_per_node") or {}).get(name, 0)
            v.alloc_gpu_ids.difference_update((job.get("gpus_per_node") or {}).get(name, ()))
        v.busy_jobs = max(0, v.busy_jobs - 1)


def choose_victims(job, candidates, views, part_nodes, config, expand_hostlist=None, freed=(), presorted=False):
    """The minimal set of ``candidates`` whose preemption lets ``job`` fit, or None.

    ``views`` are not changed. ``freed``: jobs already on their way out for
    ``job`` (their resources count as free). ``presorted``: ``candidates`` are
    in :func:`victim_order` already, each on a node of the partition. Returns
    ``(victims, allocation)``.

    Victims are added in order until the job fits (placement is tried only
    once enough CPUs could be free); then victims off the allocation's nodes
    are dropped (the allocation stands without them), and every remaining one
    the job can do without is put back, the most valuable first, each check
    looking only at the allocation's few nodes. So the cost stays near one
    placement per victim examined, even on thousands of nodes.
    """
    names = [n for n in part_nodes if n in views]
    part = set(names)
    base = _Scratch(views)
    for j in freed:
        _free(base, j, j["preempt"]["mode"])

    def fits(vs, order):
        return place(job, [vs[n] for n in order], expand_hostlist=expand_hostlist)
    cpt = job.get("cpus_per_task") or 1
    # only nodes with a free CPU can take a task (on a full cluster: those victims free)
    opened = {n for n in names if base[n].usable and base[n].free_cpus >= cpt}
    pinned = bool(job.get("nodelist_req"))  # -w: placement must see the named nodes
    alloc = fits(base, names if pinned else [n for n in names if n in opened])
    if alloc is not None:
        return [], alloc
    ordered = candidates if presorted else [c for c in victim_order(candidates, config)
                                            if part.intersection(c.get("nodes") or ())]
    chosen, trial = [], _Scratch(base)
    need = (job.get("num_tasks") or 1) * (job.get("cpus_per_task") or 1)
    free = sum(max(0, base[n].free_cpus) for n in names if base[n].usable)  # an upper bound, never less
    for c in ordered:
        _free(trial, c, candidate_mode(c, config))
        if not c.get("cpus_released"):
            free += sum(cpus for n, cpus in (c.get("cpus_per_node") or {}).items() if n in part)
        chosen.append(c)
        opened.update(n for n in c.get("nodes") or () if n in part)
        if free < need:
            continue
        alloc = fits(trial, names if pinned else [n for n in names if n in opened])
        if alloc is not None:
            break
    else:
        return None
    on = list(alloc.nodes)
    chosen = [c for c in chosen if set(on).intersection(c.get("nodes") or ())]
    for c in list(reversed(chosen)):
        rest = [x for x in chosen if x is not c]
        sub = _Scratch(base)
        for x in rest:
            _free(sub, x, candidate_mode(x, config))
        fit = fits(sub, on)
        if fit is not None:
            chosen, alloc = rest, fit
    return chosen, alloc


def decide(state, now):
    """One preemption pass: :class:`Preempt` decisions for pending jobs that cannot start.

    Pending jobs are examined in order; each one that some victims would let
    fit claims those victims' resources (and its own allocation) in a working
    copy of the nodes, so two preemptors never count on the same resources and
    a job whose victims are already on their way out just waits for them.
    """
    config = state.config
    if not config.enabled:
        return []
    views = _copy_views(state.nodes)
    in_progress = {}  # preemptor id -> victims on their way out
    taken = set()
    for j in state.running:
        if j.get("preempt") and j["state"] in ("RUNNING", "COMPLETING"):
            in_progress.setdefault(j["preempt"].get("by"), []).append(j)
            taken.add(j["job_id"])
    decisions = []
    examined = 0
    # who could be a victim at all, once per pass (a pass looks at up to max_preemptors jobs)
    preemptable = [c for c in state.running
                   if not c.get("preempt") and candidate_mode(c, config) != "OFF"
                   and (c["state"] == "RUNNING" or (c["state"] == "SUSPENDED" and c.get("suspend_kind") == "gang"))
                   and not exempt(c, config, now)]
    preemptable = victim_order(preemptable, config)
    verdicts, pools = {}, {}

    def allowed(job, c):
        """:func:`can_preempt`, which reads only partitions and QOS: asked once per pair of those."""
        key = (job.get("partition"), job.get("qos"), c.get("partition"), c.get("qos"))
        v = verdicts.get(key)
        if v is None:
            v = verdicts[key] = can_preempt(dict(job, job_id=None), c, config)
        return v
    lowest_tier = min((tier(c, config) for c in preemptable), default=None)
    for job in state.pending:
        if examined >= state.max_preemptors:
            break
        part = state.partitions.get(job.get("partition"))
        freed = in_progress.get(job["job_id"], [])
        if part is None or (not freed and (lowest_tier is None or (
                config.preempt_type == "preempt/partition_prio" and tier(job, config) <= lowest_tier))):
            continue
        examined += 1
        key = (job.get("partition"), job.get("qos"))
        pool = pools.get(key)
        if pool is None:  # victims this kind of job may take, in order, on its partition's nodes
            nodes = set(part["nodes"])
            pool = pools[key] = [c for c in preemptable
                                 if allowed(job, c) and nodes.intersection(c.get("nodes") or ())]
        candidates = [c for c in pool if c["job_id"] not in taken]
        if not candidates and not freed:
            continue
        found = choose_victims(job, candidates, views, part["nodes"], config, state.expand_hostlist, freed=freed,
                               presorted=True)
        if found is None:
            continue
        victims, alloc = found
        for j in freed:
            _free(views, j, j["preempt"]["mode"])
        for v in victims:
            mode = candidate_mode(v, config)
            _free(views, v, mode)
            taken.add(v["job_id"])
            decisions.append(Preempt(v["job_id"], mode, job["job_id"],
                                     grace_time(v, config) if mode in ("CANCEL", "REQUEUE") else 0))
        alloc.apply(views)  # the preemptor's share is spoken for
    return decisions


# -- resuming what SUSPEND preempted -----------------------------------------------------------

def resumable(suspended, nodes, is_gone, config):
    """Jobs suspended by preemption that may run again, in the order to resume them.

    A job resumes once its preemptor is gone (``is_gone(job_id)``: ended or never
    to start) and its CPUs are free again; higher tiers and priorities first.
    ``nodes`` (NodeViews) are not changed.
    """
    views = _copy_views(nodes)
    out = []
    for job in sorted(suspended, key=lambda j: (-tier(j, config), -(j.get("priority") or 0),
                                                j.get("suspend_time") or 0, j["job_id"])):
        by = (job.get("preempt") or {}).get("by")
        if by is not None and not is_gone(by):
            continue
        cpus = job.get("cpus_per_node") or {}
        if all(n in views and views[n].free_cpus >= cpus.get(n, 0) for n in job.get("nodes") or []):
            for n in job.get("nodes") or []:
                views[n].alloc_cpus += cpus.get(n, 0)
            out.append(job["job_id"])
    return out
