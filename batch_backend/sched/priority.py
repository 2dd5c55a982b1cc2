"""Slurm's multifactor job priority (priority/multifactor), as pure functions.

A job's priority is the weighted sum of normalised factors, each in [0, 1]::

    priority = PriorityWeightAge       * age
             + PriorityWeightFairshare * fairshare
             + PriorityWeightJobSize   * job_size
             + PriorityWeightPartition * partition
             + PriorityWeightQOS       * qos
             + sum(PriorityWeightTRES[t] * tres[t])
             - nice

truncated to an integer and at least 1 (0 is reserved for held jobs), as
slurmctld computes it. The factors:

* age = min(now - eligible_time, PriorityMaxAge) / PriorityMaxAge (a held job
  does not age; ``eligible_time`` restarts when it is released);
* job_size = (nodes/cluster nodes + cpus/cluster cpus) / 2, or one minus each
  fraction with PriorityFavorSmall=YES;
* partition = the partition's PriorityJobFactor / the largest PriorityJobFactor;
* qos = the QOS's Priority / the largest QOS Priority (0 when all are 0);
* tres[t] = requested t / the cluster's total t;
* fairshare: see below.

Why factors are normalised: admins reason about weights ("fairshare counts
ten times age") only if every factor spans the same range, which is also what
``sprio`` shows. Nothing here reads a clock; ``now`` is passed in, so the
controller and the simulator compute the same numbers.

Fairshare is Slurm's **classic** algorithm (PriorityFlags=NO_FAIR_TREE, not
Fair Tree), see :func:`fairshare_table`:

* NormShares ``S`` = product of ``shares / sum of siblings' shares`` from the
  root down to the association (:func:`normalized_shares`);
* RawUsage = decayed CPU-seconds (usage is charged in CPU-seconds: BatchHub's
  TRES billing is ``cpu``, i.e. TRESBillingWeights=CPU=1.0) of the association,
  an account's being the sum of its subtree; decayed with
  PriorityDecayHalfLife and cleared every PriorityUsageResetPeriod
  (:class:`UsageTracker`);
* NormUsage ``U`` = RawUsage / the root's RawUsage;
* EffectvUsage ``UE``: ``U`` for children of root, else
  ``U + (UE_parent - U) * shares / siblings' shares`` (an association inherits
  part of its parent account's over- or under-use), 1.0 for root;
* FairShare ``F = 2**(-UE/S)``: 1 with no usage, 0.5 at exactly one's share,
  towards 0 above it.
"""

import time as _time
from dataclasses import dataclass, field

from ..timespec import parse_time_limit
from .limits import requested_tres

_RESET_PERIODS = ("NONE", "NOW", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")


PRIORITY_TYPES = ("priority/basic", "priority/multifactor")
_WEIGHT_KEYS = ("PriorityWeightAge", "PriorityWeightFairshare", "PriorityWeightJobSize",
                "PriorityWeightPartition", "PriorityWeightQOS", "PriorityWeightTRES", "PriorityWeightAssoc")


def parse_duration(text):
    """Seconds of a slurm.conf duration: ``M``, ``M:S``, ``H:M:S``, ``D-H[:M[:S]]`` (no rounding).

    Slurm reads PriorityMaxAge and PriorityDecayHalfLife this way (a bare number
    is minutes), so ``0:30`` is thirty seconds. Raises ValueError on anything else.
    """
    t = str(text).strip()
    days = 0
    if "-" in t:
        d, _, t = t.partition("-")
        days = int(d)
        parts = [int(x) for x in t.split(":")]
        if not 1 <= len(parts) <= 3:
            raise ValueError(text)
        parts += [0] * (3 - len(parts))
        h, m, sec = parts
    else:
        parts = [int(x) for x in t.split(":")]
        if len(parts) == 1:
            h, m, sec = 0, parts[0], 0
        elif len(parts) == 2:
            h, (m, sec) = 0, parts
        elif len(parts) == 3:
            h, m, sec = parts
        else:
            raise ValueError(text)
    if min(days, h, m, sec) < 0:
        raise ValueError(text)
    return float(((days * 24 + h) * 60 + m) * 60 + sec)


def _seconds(get, key, default):
    text = get(key, None)
    if text is None or str(text).strip() == "":
        return default
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"Bad {key} value '{text}'") from None


def priority_type(get):
    """PriorityType from slurm.conf: explicit, else multifactor when any PriorityWeight* is set.

    Slurm 22.05 defaults to priority/basic; an admin who sets weights means
    multifactor (later Slurm releases made multifactor the default). Without
    weights the queue stays plain submit order, which is what priority/basic is.
    """
    value = get("PriorityType", None)
    if value:
        value = str(value).strip().lower()
        if value not in PRIORITY_TYPES:
            raise ValueError(f"Bad PriorityType '{value}' (priority/basic or priority/multifactor)")
        return value
    for key in _WEIGHT_KEYS:
        v = get(key, None)
        if v not in (None, "", "0"):
            return "priority/multifactor"
    return "priority/basic"


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
    calc_period: float = 300.0                # PriorityCalcPeriod, seconds: how often priorities are recomputed

    @classmethod
    def from_conf(cls, get):
        """Weights from slurm.conf; ``get(key, default)`` is e.g. ``lambda k, d: conf.get_option(conf, k, d)``.

        Raises ValueError naming the bad key.
        """
        def integer(key):
            value = get(key, 0) or 0
            try:
                n = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"Bad {key} value '{value}'") from None
            if n < 0:
                raise ValueError(f"Bad {key} value '{value}'")
            return n
        tres = {}
        for item in filter(None, (get("PriorityWeightTRES", "") or "").split(",")):
            name, _, weight = item.partition("=")
            try:
                tres[name.strip().lower()] = int(float(weight or 0))
            except ValueError:
                raise ValueError(f"Bad PriorityWeightTRES value '{item}'") from None
        period = (get("PriorityUsageResetPeriod", "NONE") or "NONE").upper()
        if period not in _RESET_PERIODS:
            raise ValueError(f"Bad PriorityUsageResetPeriod '{period}'")
        return cls(age=integer("PriorityWeightAge"), fairshare=integer("PriorityWeightFairshare"),
                   job_size=integer("PriorityWeightJobSize"), partition=integer("PriorityWeightPartition"),
                   qos=integer("PriorityWeightQOS"), tres=tres,
                   max_age=_seconds(get, "PriorityMaxAge", 7 * 86400.0),
                   favor_small=str(get("PriorityFavorSmall", "NO")).upper() in ("YES", "1", "TRUE"),
                   decay_half_life=_seconds(get, "PriorityDecayHalfLife", 7 * 86400.0),
                   usage_reset_period=period,
                   calc_period=max(1.0, _seconds(get, "PriorityCalcPeriod", 300.0)))


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


job_tres = requested_tres  # the TRES a pending job asks for (the limits' own count)


def _ratio(value, maximum):
    return _clip(value / maximum) if maximum else 0.0


def job_priority(job, now, *, weights, factors_inputs):
    """``(priority, factors)`` for a pending job; ``factors`` are the normalised values sprio shows.

    The weighted sum is truncated like slurmctld's ``(uint32_t) priority`` and
    is at least 1: Slurm reserves 0 for held jobs.
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
    return max(1, int(total)), factors


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

    def charge_many(self, charges, now):
        """Add several ``(account, user, cpu_seconds)`` at time ``now`` (one decay lookup)."""
        self._maybe_reset(now)
        scale = self._scale(now)
        for account, user, cpu_seconds in charges:
            if cpu_seconds <= 0:
                continue
            amount = cpu_seconds * scale
            key = (account, user)
            self.scaled[key] = self.scaled.get(key, 0.0) + amount
            self.scaled_total += amount

    def snapshot(self, now):
        """A JSON-able picture of the usage as of ``now`` (what the controller journals)."""
        self._maybe_reset(now)
        scale = self._scale(now)
        return {"time": now, "period": self.period,
                "usage": [[a, u, v / scale] for (a, u), v in sorted(self.scaled.items())]}

    def restore(self, snap):
        """Load a :meth:`snapshot`; decay since then applies from its ``time`` on."""
        self.base = float(snap["time"])
        self.period = snap.get("period")
        self.scaled = {(a, u): float(v) for a, u, v in snap.get("usage", [])}
        self.scaled_total = sum(self.scaled.values())

    def keys(self):
        return list(self.scaled)

    def rows(self, now):
        """``(account, user, raw_usage, norm_usage)`` for every association with usage (for sshare)."""
        self._maybe_reset(now)
        scale, total = self._scale(now), self.scaled_total
        return [(a, u, v / scale, v / total if total > 0 else 0.0) for (a, u), v in sorted(self.scaled.items())]

# -- the association tree and classic fairshare --------------------------------------------

def fairshare_table(associations, tracker, now):
    """Classic fairshare of every association: the numbers ``sshare`` shows.

    ``associations`` are dicts ``{"account", "parent", "user", "shares"}``:
    account rows have ``user`` None (``parent`` None for root), user rows name
    the account they belong to in ``account``. Returns rows in sshare order
    (an account, its users by name, then its sub-accounts by name, depth
    first), each a dict with ``account``, ``user``, ``parent``, ``depth``,
    ``raw_shares`` (None for root, ``"parent"`` for Fairshare=parent, which
    takes its parent account's shares and effective usage), ``norm_shares``, ``raw_usage``,
    ``norm_usage``, ``effective_usage`` and ``fairshare`` (None for root).
    """
    accounts, users_of, subs_of = {}, {}, {}
    for a in associations:
        if a.get("user"):
            users_of.setdefault(a["account"], {})[a["user"]] = a
        else:
            accounts[a["account"]] = a
    root = next((name for name, a in accounts.items() if a.get("parent") is None), None)
    if root is None:
        root = "root"
        accounts[root] = {"account": root, "parent": None, "user": None, "shares": 1}
    for name, a in accounts.items():
        if name != root:
            parent = a.get("parent") if a.get("parent") in accounts else root
            subs_of.setdefault(parent, []).append(name)
    for account in users_of:  # users of an account nobody declared hang under root
        if account not in accounts:
            accounts[account] = {"account": account, "parent": root, "user": None, "shares": 1}
            subs_of.setdefault(root, []).append(account)

    user_usage = {}
    for (account, user), scaled in tracker.scaled.items():
        user_usage[(account, user)] = scaled
    tracker._maybe_reset(now)
    scale = tracker._scale(now)

    def subtree_usage(account, seen=()):
        total = sum(user_usage.get((account, u), 0.0) for u in users_of.get(account, {}))
        for sub in subs_of.get(account, []):
            if sub not in seen:
                total += subtree_usage(sub, seen + (account,))
        return total

    root_raw = subtree_usage(root) / scale
    rows = []

    def visit(account, depth, norm_shares, ue, seen):
        children = [("user", u, users_of[account][u]) for u in sorted(users_of.get(account, {}))] + \
                   [("account", s, accounts[s]) for s in sorted(subs_of.get(account, []))]
        level = sum(_shares(c[2]) or 0 for c in children)
        for kind, name, a in children:
            if kind == "account" and name in seen:
                continue  # a cycle in bad input: show each account once
            shares = _shares(a)
            raw = (user_usage.get((account, name), 0.0) if kind == "user" else subtree_usage(name)) / scale
            u = min(1.0, raw / root_raw) if root_raw > 0 else 0.0
            if shares is None:  # Fairshare=parent: the parent account's shares and effective usage
                s, e = norm_shares, ue
            else:
                s = norm_shares * shares / level if level else 0.0
                if depth == 0:
                    e = u
                elif not level:
                    e = ue
                else:
                    e = u + (ue - u) * shares / level
            row = {"account": account if kind == "user" else name, "user": name if kind == "user" else None,
                   "parent": account, "depth": depth + 1, "raw_shares": "parent" if shares is None else shares,
                   "norm_shares": s,
                   "raw_usage": raw, "norm_usage": u, "effective_usage": e,
                   "fairshare": fairshare_factor(e, s)}
            rows.append(row)
            if kind == "account":
                visit(name, depth + 1, s, e, seen + (name,))

    rows.append({"account": root, "user": None, "parent": None, "depth": 0, "raw_shares": None,
                 "norm_shares": 1.0, "raw_usage": root_raw,
                 "norm_usage": 1.0 if root_raw > 0 else 0.0, "effective_usage": 1.0, "fairshare": None})
    visit(root, 0, 1.0, 1.0, (root,))
    return rows


def _shares(association):
    """An association's raw shares; None for ``Fairshare=parent`` (it uses its parent's)."""
    value = association.get("shares")
    if isinstance(value, str) and value.strip().lower() == "parent":
        return None
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def default_associations(users):
    """The tree when no associations are configured: every user under root with one share.

    It makes fairshare work out of the box on a single host: users who
    computed more recently wait behind those who did not.
    """
    rows = [{"account": "root", "parent": None, "user": None, "shares": 1, "partition": None}]
    rows += [{"account": "root", "parent": "root", "user": u, "shares": 1, "partition": None} for u in sorted(set(users))]
    return rows


def resolve_association(job, known):
    """The ``(account, user)`` a job's usage and fairshare belong to.

    ``known`` maps user -> list of that user's accounts in tree order (the
    first is the default, as sacctmgr's DefaultAccount usually is). A job's
    own account wins when the user has an association there; else the user's
    default; else ``root``.
    """
    user = job.get("user")
    accounts = known.get(user) or []
    account = job.get("account") or None
    if account in accounts:
        return account, user
    if accounts:
        return accounts[0], user
    return account or "root", user
