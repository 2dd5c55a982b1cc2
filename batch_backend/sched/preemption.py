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

import dataclasses
from dataclasses import dataclass, field

from .placement import place

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


def _copy_views(nodes):
    return {n: dataclasses.replace(v, alloc_gpu_ids=set(v.alloc_gpu_ids)) for n, v in nodes.items()}


def _free(views, job, mode):
    """Give ``job``'s resources back in ``views`` (SUSPEND frees CPUs only)."""
    for name in job.get("nodes") or []:
        v = views.get(name)
        if v is None:
            continue
        if not job.get("cpus_released"):
            v.alloc_cpus -= (job.get("cpus_per_node") or {}).get(name, 0)
        if mode != "SUSPEND":
            v.alloc_memory -= (job.get("mem_alloc_per_node") or {}).get(name, 0)
            v.alloc_gpu_ids.difference_update((job.get("gpus_per_node") or {}).get(name, ()))
        v.busy_jobs = max(0, v.busy_jobs - 1)


def _fits(job, views, part_nodes, expand_hostlist):
    return place(job, [views[n] for n in part_nodes if n in views], expand_hostlist=expand_hostlist)


def choose_victims(job, candidates, views, part_nodes, config, expand_hostlist=None, freed=()):
    """The minimal set of ``candidates`` whose preemption lets ``job`` fit, or None.

    ``views`` are not changed. ``freed``: jobs already on their way out for
    ``job`` (their resources count as free). Returns ``(victims, allocation)``;
    victims are in :func:`victim_order`.
    """
    base = _copy_views(views)
    for j in freed:
        _free(base, j, j["preempt"]["mode"])
    alloc = _fits(job, base, part_nodes, expand_hostlist)
    if alloc is not None:
        return [], alloc
    part = set(part_nodes)
    ordered = [c for c in victim_order(candidates, config) if part.intersection(c.get("nodes") or ())]
    chosen, trial = [], _copy_views(base)
    # placement is tried only once enough CPUs could be free: a cheap bound that keeps a
    # pass over many small victims from costing one full placement per victim
    need = (job.get("num_tasks") or 1) * (job.get("cpus_per_task") or 1)
    free = sum(max(0, trial[n].free_cpus) for n in part if n in trial and trial[n].usable)
    for c in ordered:
        _free(trial, c, candidate_mode(c, config))
        if not c.get("cpus_released"):
            free += sum(cpus for n, cpus in (c.get("cpus_per_node") or {}).items() if n in part)
        chosen.append(c)
        if free < need:
            continue
        alloc = _fits(job, trial, part_nodes, expand_hostlist)
        if alloc is not None:
            break
    else:
        return None
    # put back every victim the job can do without, the most valuable (last added) first
    for c in list(reversed(chosen)):
        rest = [x for x in chosen if x is not c]
        trial = _copy_views(base)
        for x in rest:
            _free(trial, x, candidate_mode(x, config))
        fit = _fits(job, trial, part_nodes, expand_hostlist)
        if fit is not None:
            chosen, alloc = rest, fit
    return [c for c in ordered if any(c is x for x in chosen)], alloc


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
    for job in state.pending:
        if examined >= state.max_preemptors:
            break
        part = state.partitions.get(job.get("partition"))
        if part is None:
            continue
        examined += 1
        candidates = [c for c in state.running
                      if c["job_id"] not in taken and not c.get("preempt")
                      and (c["state"] == "RUNNING" or (c["state"] == "SUSPENDED" and c.get("suspend_kind") == "gang"))
                      and can_preempt(job, c, config) and not exempt(c, config, now)]
        freed = in_progress.get(job["job_id"], [])
        if not candidates and not freed:
            continue
        found = choose_victims(job, candidates, views, part["nodes"], config, state.expand_hostlist, freed=freed)
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
