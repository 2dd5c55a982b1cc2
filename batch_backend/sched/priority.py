"""Slurm's multifactor job priority (priority/multifactor), as pure functions.

A job's priority is the weighted sum of normalised factors, each in [0, 1]::

    priority = PriorityWeightAge       * age
             + PriorityWeightFairshare * fairshare
             + PriorityWeightJobSize   * job_size
             + PriorityWeightPartition * partition
             + PriorityWeightQOS       * qos
             + sum(PriorityWeightTRES[t] * tres[t])
             - nice

Why factors are normalised: admins reason about weights ("fairshare counts
ten times age") only if every factor spans the same range, which is also what
``sprio`` shows. Nothing here reads a clock; ``now`` is passed in, so the
controller and the simulator compute the same numbers.

Fairshare is Slurm's **classic** algorithm (not Fair Tree): ``F = 2**(-U/S)``
with ``U`` the association's decayed usage divided by the whole cluster's
decayed usage and ``S`` its normalised shares (the product of
``shares / sibling shares`` down the account tree, see
:func:`normalized_shares`). Usage is CPU-seconds decayed with
PriorityDecayHalfLife and optionally cleared every PriorityUsageResetPeriod. The
parent-account "effective usage" propagation of Slurm's classic mode is not
applied: an association's factor depends on its own usage only, which is what
users can check with ``sshare`` and what one-level account trees get anyway.
"""

import time as _time
from dataclasses import dataclass, field

from ..timespec import parse_time_limit
from .placement import gpu_count

_RESET_PERIODS = ("NONE", "NOW", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")


def _seconds(text, default):
    """A slurm.conf duration ('7-0', '14-0', '0' ...) in seconds."""
    if text is None:
        return default
    minutes = parse_time_limit(text)
    return 0.0 if minutes is None else minutes * 60.0


@dataclass(frozen=True)
class PriorityWeights:
    """The slurm.conf priority knobs (Slurm's defaults: weights 0, 7-day age and half-life)."""

    age: int = 0
    fairshare: int = 0
    job_size: int = 0
    partition: int = 0
    qos: int = 0
    tres: dict = field(default_factory=dict)  # lower-cased TRES name ('cpu', 'mem', 'gres/gpu', 'node') -> weight
    max_age: float = 7 * 86400.0              # PriorityMaxAge, seconds: age factor reaches 1 here
    favor_small: bool = False                 # PriorityFavorSmall
    decay_half_life: float = 7 * 86400.0      # PriorityDecayHalfLife, seconds (0 = no decay)
    usage_reset_period: str = "NONE"          # PriorityUsageResetPeriod

    @classmethod
    def from_conf(cls, get):
        """Weights from slurm.conf; ``get(key, default)`` is e.g. ``lambda k, d: conf.get_option(conf, k, d)``."""
        def integer(key):
            return int(get(key, 0) or 0)
        tres = {}
        for item in filter(None, (get("PriorityWeightTRES", "") or "").split(",")):
            name, _, weight = item.partition("=")
            tres[name.strip().lower()] = int(weight or 0)
        period = (get("PriorityUsageResetPeriod", "NONE") or "NONE").upper()
        if period not in _RESET_PERIODS:
            raise ValueError(f"Bad PriorityUsageResetPeriod '{period}'")
        return cls(age=integer("PriorityWeightAge"), fairshare=integer("PriorityWeightFairshare"),
                   job_size=integer("PriorityWeightJobSize"), partition=integer("PriorityWeightPartition"),
                   qos=integer("PriorityWeightQOS"), tres=tres,
                   max_age=_seconds(get("PriorityMaxAge", None), 7 * 86400.0),
                   favor_small=str(get("PriorityFavorSmall", "NO")).upper() in ("YES", "1", "TRUE"),
                   decay_half_life=_seconds(get("PriorityDecayHalfLife", None), 7 * 86400.0),
                   usage_reset_period=period)


@dataclass
class FactorInputs:
    """What a job's factors are normalised against: the cluster, partitions, QOS, fairshare."""

    total_nodes: int = 1
    total_cpus: int = 1
    total_tres: dict = field(default_factory=dict)             # {'cpu': 64, 'mem': 256000, 'gres/gpu': 8, 'node': 16}
    partition_job_factors: dict = field(default_factory=dict)  # partition -> PriorityJobFactor
    qos_priorities: dict = field(default_factory=dict)         # qos name -> Priority
    fairshare: object = None  # callable(job) -> factor in [0, 1]; None: everyone 1.0 (no usage yet)


def _clip(x):
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


def age_factor(job, now, max_age):
    """Time eligible (not held, begin time passed), relative to PriorityMaxAge."""
    eligible = job.get("eligible_time")
    if eligible is None or max_age <= 0:
        return 0.0
    return _clip((now - eligible) / max_age)


def job_size_factor(job, total_nodes, total_cpus, favor_small):
    """Slurm's default size factor: the mean of the node and CPU fractions (reversed to favour small)."""
    nodes = job.get("num_nodes_req") or 1
    cpus = job.get("num_tasks", 1) * job.get("cpus_per_task", 1)
    if favor_small:
        f = ((total_nodes - nodes) / total_nodes + (total_cpus - cpus) / total_cpus) / 2
    else:
        f = (nodes / total_nodes + cpus / total_cpus) / 2
    return _clip(f)


def job_tres(job):
    """The TRES a pending job asks for: cpu, mem (MB), node, gres/gpu."""
    nodes = job.get("num_nodes_req") or 1
    cpus = job.get("num_tasks", 1) * job.get("cpus_per_task", 1)
    if job.get("mem_per_cpu"):
        mem = job["mem_per_cpu"] * cpus
    else:
        mem = (job.get("mem_per_node") or 0) * nodes
    return {"cpu": cpus, "mem": mem, "node": nodes, "gres/gpu": gpu_count(job.get("gres")) * nodes}


def _ratio(value, maximum):
    return _clip(value / maximum) if maximum else 0.0


def job_priority(job, now, *, weights, factors_inputs):
    """``(priority, factors)`` for a pending job; ``factors`` are the normalised values sprio shows.

    The priority is at least 1: Slurm reserves 0 for held jobs.
    """
    fi = factors_inputs
    part_max = max(fi.partition_job_factors.values(), default=0)
    qos_max = max(fi.qos_priorities.values(), default=0)
    factors = {
        "age": age_factor(job, now, weights.max_age),
        "fairshare": _clip(fi.fairshare(job)) if fi.fairshare is not None else 1.0,
        "jobsize": job_size_factor(job, max(fi.total_nodes, 1), max(fi.total_cpus, 1), weights.favor_small),
        "partition": _ratio(fi.partition_job_factors.get(job.get("partition"), 0), part_max),
        "qos": _ratio(fi.qos_priorities.get(job.get("qos"), 0), qos_max),
        "tres": {},
        "nice": job.get("nice") or 0,
    }
    if weights.tres:
        asked = job_tres(job)
        factors["tres"] = {name: _ratio(asked.get(name, 0), fi.total_tres.get(name, 0)) for name in weights.tres}
    contributions = weighted_factors(factors, weights)
    total = sum(v for k, v in contributions.items() if k != "tres") + sum(contributions["tres"].values())
    return max(1, int(round(total))), factors


def weighted_factors(factors, weights):
    """Each factor times its weight (sprio's columns); nice is subtracted as is."""
    return {
        "age": weights.age * factors["age"],
        "fairshare": weights.fairshare * factors["fairshare"],
        "jobsize": weights.job_size * factors["jobsize"],
        "partition": weights.partition * factors["partition"],
        "qos": weights.qos * factors["qos"],
        "tres": {name: weights.tres.get(name, 0) * f for name, f in factors["tres"].items()},
        "nice": -factors["nice"],
    }


# -- fairshare ----------------------------------------------------------------------------

def decay_usage(usage, elapsed, half_life):
    """``usage`` after ``elapsed`` seconds of exponential decay (no decay without a half-life)."""
    if not half_life or elapsed <= 0:
        return usage
    return usage * 2.0 ** (-elapsed / half_life)


def normalized_shares(path):
    """Classic normalised shares: product of ``raw / sum of siblings' raw`` from the root down.

    ``path`` lists ``(raw_shares, siblings_total_raw)`` for each level, e.g.
    account 'physics' (40 of 100) then user 'ana' (1 of 4) -> 0.1.
    """
    s = 1.0
    for raw, siblings in path:
        s *= raw / siblings if siblings else 0.0
    return s


def fairshare_factor(usage_norm, shares_norm):
    """Classic ``2**(-U/S)``: 1 with no usage, 0.5 at exactly one's share, -> 0 above it."""
    if shares_norm <= 0:
        return 0.0
    return 2.0 ** (-usage_norm / shares_norm)


def period_start(now, period):
    """Start (epoch, local time as Slurm uses) of the PriorityUsageResetPeriod containing ``now``."""
    period = period.upper()
    if period in ("NONE", "NOW"):  # NOW is a one-off reset the caller performs at start-up
        return None
    t = _time.localtime(now)
    if period == "DAILY":
        fields = (t.tm_year, t.tm_mon, t.tm_mday)
    elif period == "WEEKLY":  # Sunday 00:00; mktime normalises a day-of-month <= 0
        fields = (t.tm_year, t.tm_mon, t.tm_mday - (t.tm_wday + 1) % 7)
    elif period == "MONTHLY":
        fields = (t.tm_year, t.tm_mon, 1)
    elif period == "QUARTERLY":
        fields = (t.tm_year, 3 * ((t.tm_mon - 1) // 3) + 1, 1)
    elif period == "YEARLY":
        fields = (t.tm_year, 1, 1)
    else:
        raise ValueError(f"Bad PriorityUsageResetPeriod '{period}'")
    return _time.mktime(fields + (0, 0, 0, 0, 0, -1))


class UsageTracker:
    """Decayed usage (CPU-seconds) per association ``(account, user)``, for classic fairshare.

    Values are kept scaled to a base time so decay costs nothing per update:
    the stored number is ``usage * 2**((t - base)/half_life)``; reading divides
    the decay back out. The base moves forward now and then to stay in float
    range. Charge running jobs as they run (e.g. every PriorityCalcPeriod) for
    usage to decay the way Slurm's does; charging at the end is coarser.

    >>> u = UsageTracker(half_life=3600)
    >>> u.charge("phys", "ana", 3600, now=0)
    >>> round(u.usage("phys", "ana", now=3600))
    1800
    """

    def __init__(self, half_life=7 * 86400.0, reset_period="NONE"):
        self.half_life = float(half_life or 0)
        self.reset_period = (reset_period or "NONE").upper()
        self.base = None
        self.scaled = {}      # (account, user) -> scaled usage
        self.scaled_total = 0.0
        self.period = None    # start of the reset period the values belong to

    def _scale(self, now):
        if self.base is None:
            self.base = now
        if not self.half_life:
            return 1.0
        x = (now - self.base) / self.half_life
        if x > 64:  # rebase: keep numbers finite, nothing is lost but rounding
            factor = 2.0 ** -x
            self.scaled = {k: v * factor for k, v in self.scaled.items()}
            self.scaled_total *= factor
            self.base, x = now, 0.0
        return 2.0 ** x

    def _maybe_reset(self, now):
        start = period_start(now, self.reset_period)
        if start is not None and start != self.period:
            if self.period is not None:
                self.scaled.clear()
                self.scaled_total = 0.0
            self.period = start

    def charge(self, account, user, cpu_seconds, now):
        """Add ``cpu_seconds`` of use at time ``now``."""
        self._maybe_reset(now)
        amount = cpu_seconds * self._scale(now)
        key = (account, user)
        self.scaled[key] = self.scaled.get(key, 0.0) + amount
        self.scaled_total += amount

    def usage(self, account, user, now):
        """Decayed CPU-seconds of one association (sshare RawUsage)."""
        self._maybe_reset(now)
        scale = self._scale(now)  # first: it may rebase the stored values
        return self.scaled.get((account, user), 0.0) / scale

    def account_usage(self, account, now):
        self._maybe_reset(now)
        scale = self._scale(now)
        return sum(v for (a, _), v in self.scaled.items() if a == account) / scale

    def total_usage(self, now):
        self._maybe_reset(now)
        scale = self._scale(now)
        return self.scaled_total / scale

    def normalized_usage(self, account, user, now):
        """Share of the cluster's decayed usage (sshare NormUsage), in [0, 1]."""
        self._maybe_reset(now)
        self._scale(now)
        total = self.scaled_total
        return self.scaled.get((account, user), 0.0) / total if total > 0 else 0.0

    def fairshare(self, account, user, shares_norm, now):
        """Classic fairshare factor of one association (sshare FairShare)."""
        return fairshare_factor(self.normalized_usage(account, user, now), shares_norm)

    def rows(self, now):
        """``(account, user, raw_usage, norm_usage)`` for every association with usage (for sshare)."""
        self._maybe_reset(now)
        scale, total = self._scale(now), self.scaled_total
        return [(a, u, v / scale, v / total if total > 0 else 0.0) for (a, u), v in sorted(self.scaled.items())]
