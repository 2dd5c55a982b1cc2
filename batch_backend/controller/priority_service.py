"""The controller's side of job priority: PriorityType, usage accounting, fairshare.

The formulas are pure and live in :mod:`batch_backend.sched.priority` (the
simulator runs them too); this module owns what the live controller adds:
reading slurm.conf, charging running and ended jobs' CPU-seconds to their
association, journaling that usage, and keeping every pending job's
``priority`` current.

When priorities change (cheap first):

* on submit, release, requeue and nice/priority updates only that job is
  computed (one call of :func:`~batch_backend.sched.priority.job_priority`,
  with the fairshare table cached);
* every PriorityCalcPeriod (default 5 minutes) all pending jobs are recomputed
  (age grows, usage moved) and the queue is re-sorted once, as slurmctld's
  decay thread does. Recomputed priorities are derived data: they are not
  journaled (a restart recomputes them), only the admin-set ones are.

Usage (sshare's RawUsage) is decayed CPU-seconds: every second the controller
charges running jobs for the time since their last charge, a job's end charges
its remainder, and the usage is journaled (one small row) at most once a
second when it changed. A ``kill -9`` therefore loses at most the last second
of usage of jobs that ended in it; running jobs lose nothing, because after a
restart they are charged from the journaled usage's timestamp on.

Priorities follow Slurm's rules: 0 while held; an admin-set priority
(``sbatch --priority``, ``scontrol update priority=N``, ``scontrol top``) is
kept as set (``priority_set`` on the job) instead of being computed;
``priority/basic`` is submit order (``10**8 - job_id``) minus nice.
"""

import json

from ..conf import ConfError, get_option
from ..sched.priority import (FactorInputs, PriorityWeights, UsageTracker, default_associations, fairshare_table,
                              job_priority, priority_type, resolve_association, weighted_factors)

USAGE_META_KEY = "priority_usage"
BASIC_TOP = 10**8  # priority/basic: job N gets 10**8 - N, so earlier submits come first


class PriorityService:
    """Priority and fairshare state of one controller (see the module docstring)."""

    def __init__(self, cluster):
        self.cluster = cluster
        get = lambda key, default: get_option(cluster.conf, key, default)  # noqa: E731
        try:
            self.type = priority_type(get)
            self.weights = PriorityWeights.from_conf(get)
        except ValueError as e:
            raise ConfError(str(e)) from None
        self.multifactor = self.type == "priority/multifactor"
        self.usage = UsageTracker(self.weights.decay_half_life, self.weights.usage_reset_period)
        self.charged_until = {}  # running job_id -> time its usage is charged up to
        self.users = set()       # users of the default association tree
        self.last_calc = None
        self.usage_dirty = False
        self._generation = 0     # bumps when usage or the tree may have changed
        self._table = None       # (generation, rows, by_key, accounts_of_user)
        self._inputs = None      # FactorInputs cache
        self._fairshare_memo = {}  # (user, account) -> factor, for the current table

    # -- lifecycle -------------------------------------------------------------------
    def recover(self, now):
        """Load the journaled usage; running jobs are charged from its timestamp on."""
        text = self.cluster.journal.get_meta(USAGE_META_KEY)
        since = now
        if text and self.weights.usage_reset_period == "NOW":
            text = None  # PriorityUsageResetPeriod=NOW: usage starts from zero at this start
            self.usage_dirty = True
        if text:
            snap = json.loads(text)
            self.usage.restore(snap)
            since = float(snap["time"])
            self.users.update(u for _, u in self.usage.keys())
        for job in self.cluster.jobs.values():
            self.users.add(job["user"])
            if job["state"] in ("RUNNING", "COMPLETING", "SUSPENDED") and job.get("start_time"):
                self.charged_until[job["job_id"]] = max(job["start_time"], since)
        self._generation += 1
        self.recompute_all(now)

    def tick(self, now):
        """Once a second: charge running jobs, journal changed usage, recompute when due."""
        if self.multifactor:
            self.charge_running(now)
            if self.usage_dirty:
                self.save_usage(now)
        if self.last_calc is None or now - self.last_calc >= self.weights.calc_period:
            self.recompute_all(now)

    def save_usage(self, now):
        self.cluster.journal.set_meta(USAGE_META_KEY, json.dumps(self.usage.snapshot(now), separators=(",", ":")))
        self.usage_dirty = False

    # -- usage --------------------------------------------------------------------------
    def charge_running(self, now):
        charges, gone = [], []
        for job_id, since in self.charged_until.items():
            job = self.cluster.jobs.get(job_id)
            if job is None or job["state"] not in ("RUNNING", "COMPLETING", "SUSPENDED"):
                gone.append(job_id)  # ended without a charge at its end (never happens; never leaks)
                continue
            if now <= since:
                continue
            if job["state"] == "SUSPENDED":  # a suspended job uses nothing
                self.charged_until[job_id] = now
                continue
            charges.append((job, now - since))
            self.charged_until[job_id] = now
        for job_id in gone:
            del self.charged_until[job_id]
        if charges:
            self._charge(charges, now)

    def _charge(self, charges, now):
        known = self._accounts_of_users()
        items = []
        for job, seconds in charges:
            account, user = resolve_association(job, known)
            items.append((account, user, (job.get("num_cpus") or 1) * seconds))
        self.usage.charge_many(items, now)
        self.usage_dirty = True
        self._generation += 1

    def job_started(self, job, now):
        self.charged_until[job["job_id"]] = now

    def job_ended(self, job, now):
        """Charge what the job used since its last charge (PriorityType=basic charges nothing)."""
        since = self.charged_until.pop(job["job_id"], None)
        if since is None or not self.multifactor:
            return
        if now > since and job["state"] != "SUSPENDED":
            self._charge([(job, now - since)], now)

    # -- the association tree -----------------------------------------------------------
    def associations(self):
        """The cluster's association rows, or the default tree (root + every known user)."""
        rows = self.cluster.association_tree()
        if rows:
            return rows
        return default_associations(self.users)

    def associations_changed(self, now):
        """Associations or QOS changed (sacctmgr): recompute fairshare and every pending priority now."""
        self._generation += 1
        self.recompute_all(now)

    def note_user(self, user):
        if user not in self.users:
            self.users.add(user)
            self._generation += 1

    def fairshare_rows(self, now):
        """sshare's table as of ``now`` (computed fresh: raw usage decays every second)."""
        return fairshare_table(self.associations(), self.usage, now)

    def _cached_table(self, now):
        if self._table is None or self._table[0] != self._generation:
            rows = self.fairshare_rows(now)
            by_key = {(r["account"], r["user"]): r for r in rows if r["user"]}
            self._table = (self._generation, rows, by_key, self._accounts_of_users())
        return self._table

    def _accounts_of_users(self):
        """user -> that user's accounts, the default first (a row flagged ``default``, else the first)."""
        out = {}
        for r in self.associations():
            if r.get("user"):
                accounts = out.setdefault(r["user"], [])
                if r.get("default"):
                    accounts.insert(0, r["account"])
                else:
                    accounts.append(r["account"])
        return out

    def fairshare_of(self, job, now):
        table = self._cached_table(now)
        memo = self._fairshare_memo
        if memo.get(None) is not table:  # a new table: forget the old answers
            memo.clear()
            memo[None] = table
        key = (job["user"], job.get("account"))
        value = memo.get(key)
        if value is None:
            row = table[2].get(resolve_association(job, table[3]))
            value = memo[key] = row["fairshare"] if row else 0.0
        return value

    # -- priorities -----------------------------------------------------------------------
    def factor_inputs(self, now):
        """What factors are normalised against; cached until the next PriorityCalcPeriod pass."""
        if self._inputs is None:
            self._inputs = self._build_inputs()
        return self._inputs

    def _build_inputs(self):
        c = self.cluster
        nodes = list(c.nodes.values())
        total_cpus = sum(n.cpus for n in nodes) or 1
        tres = {"cpu": total_cpus, "node": len(nodes) or 1,
                "mem": sum(n.real_memory for n in nodes), "gres/gpu": sum(n.gpus for n in nodes)}
        return FactorInputs(
            total_nodes=len(nodes) or 1, total_cpus=total_cpus, total_tres=tres,
            partition_job_factors={name: p.get("priority_job_factor", 1) or 0 for name, p in c.partitions.items()},
            qos_priorities=c.qos_priorities(),
            fairshare=(lambda job: self.fairshare_of(job, c.now())) if self.weights.fairshare else (lambda job: 0.0))

    def priority_of(self, job, now, inputs=None):
        """The priority ``job`` should have now (0 held, admin-set kept, else basic or multifactor)."""
        if job.get("held"):
            return 0
        if job.get("priority_set"):
            return int(job["priority_set"])
        if not self.multifactor:
            return max(1, BASIC_TOP - job["job_id"] - int(job.get("nice") or 0))
        return job_priority(job, now, weights=self.weights,
                            factors_inputs=inputs or self.factor_inputs(now))[0]

    def refresh(self, job, now):
        """Set ``job["priority"]``; mark the queue order stale if it moved. Returns True if it changed."""
        self.note_user(job["user"])
        value = self.priority_of(job, now)
        if value == job.get("priority"):
            return False
        job["priority"] = value
        self.cluster.order_dirty = True
        return True

    def recompute_all(self, now):
        """Every pending job's priority (PriorityCalcPeriod); one re-sort if anything moved."""
        self.last_calc = now
        c = self.cluster
        self._inputs = None  # QOS priorities may have changed (sacctmgr)
        inputs = self.factor_inputs(now) if self.multifactor else None
        moved = False
        for job in c.pending.values():
            value = self.priority_of(job, now, inputs)
            if value != job.get("priority"):
                job["priority"] = value  # derived, not journaled
                moved = True
        if moved:
            c.order_dirty = True
        return moved

    # -- what sprio and sshare show ---------------------------------------------------------
    def report(self, jobs, now):
        """Per pending job: weighted and normalised factors as sprio shows them."""
        inputs = self.factor_inputs(now)
        w = self.weights
        out = []
        for job in jobs:
            if job["state"] != "PENDING" or job.get("held") or (job.get("begin_time") or 0) > now:
                continue
            entry = {"job_id": job["job_id"], "display_id": job.get("display_id") or str(job["job_id"]),
                     "user": job["user"], "account": job.get("account") or "", "qos": job.get("qos") or "normal",
                     "partition": job["partition"], "nice": int(job.get("nice") or 0),
                     "direct": bool(job.get("priority_set"))}
            if entry["direct"] or not self.multifactor:
                entry["priority"] = self.priority_of(job, now, inputs)
                entry["factors"] = {}
                entry["weighted"] = {}
            else:
                priority, factors = job_priority(job, now, weights=w, factors_inputs=inputs)
                weighted = weighted_factors(factors, w)
                entry["priority"] = priority
                entry["factors"] = {k: v for k, v in factors.items() if k != "nice"}
                entry["weighted"] = {k: v for k, v in weighted.items() if k != "nice"}
            out.append(entry)
        return out

    def weights_dict(self):
        w = self.weights
        return {"age": w.age, "fairshare": w.fairshare, "jobsize": w.job_size, "partition": w.partition,
                "qos": w.qos, "assoc": 0, "tres": dict(w.tres), "max_age": w.max_age,
                "favor_small": w.favor_small, "decay_half_life": w.decay_half_life,
                "usage_reset_period": w.usage_reset_period, "calc_period": w.calc_period}
