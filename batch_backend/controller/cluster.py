"""The controller's authoritative state and every transition of it.

All mutations go through :class:`Cluster` methods, and each one journals what
it changed before returning, so the API layer can acknowledge as soon as a
method returns. Scheduling is event-driven: anything that might let a job start
(submit, job end, node change, release) calls :meth:`request_schedule`, which
coalesces into one pass on the next loop iteration.
"""

import asyncio
import json
import logging
import os
import time

from .. import hostlist
from ..errors import BatchError, Conflict, InvalidRequest, NotFound, PermissionDenied
from ..model import ACTIVE_STATES, FINAL_STATES
from ..patterns import expand_output_pattern
from ..sched import backfill, fifo
from ..sched import reservations as resv_policy
from .dependencies import dependency_state, validate_dependency
from .jobs import build_job, check_job_update, check_submission, format_array_pending, share_strings
from .joblog import job_event
from .metrics import Histogram
from .nodes import NOT_RESPONDING_REASON, NodeRecord
from .priority_service import PriorityService
from .reservations import ReservationBook

log = logging.getLogger("batchhub.controller")

#: job states that hold resources on nodes
HOLDING_STATES = ("RUNNING", "COMPLETING", "SUSPENDED")


class Cluster:
    """Nodes, partitions and jobs in memory; the journal on disk."""

    def __init__(self, conf, journal, *, now=time.time):
        from ..conf import get_option
        self.conf = conf
        self.journal = journal
        self.now = now
        self.cluster_name = get_option(conf, "ClusterName") or "batchhub"  # empty = unset
        self.kill_wait = float(get_option(conf, "KillWait", 30))
        self.min_job_age = float(get_option(conf, "MinJobAge", 300))
        self.slurmd_timeout = float(get_option(conf, "SlurmdTimeout", 300))
        # Slurm's ReturnToService: 0 = a node DOWN for not responding stays DOWN until an admin
        # resumes it; 1/2 = it returns when its daemon registers again (BatchHub's default: 1,
        # virtual nodes on one host come and go with their daemons)
        from ..conf import get_int_option
        self.return_to_service = get_int_option(conf, "ReturnToService", 1) or 0
        self.mint_job_token = None  # job -> token for jobs on nodes reached over TCP (set by the daemon)
        self.epoch = os.urandom(8).hex()
        from .associations import AssociationStore
        self.assoc = AssociationStore(journal, self.cluster_name,
                                      enforce=get_option(conf, "AccountingStorageEnforce", ""))
        self.nodes = {}
        for i, nconf in enumerate(conf["nodes"]):
            self.nodes[nconf["name"]] = NodeRecord(nconf, i)
        self.partitions = {}
        self.default_partition = None
        for p in conf["partitions"]:
            part = dict(p)
            part["nodes"] = [n for n in p["nodes"] if n in self.nodes]
            self.partitions[p["name"]] = part
            for n in part["nodes"]:
                self.nodes[n].partitions.append(p["name"])
            if p.get("default") and self.default_partition is None:
                self.default_partition = p["name"]
        if self.default_partition is None and self.partitions:
            self.default_partition = next(iter(self.partitions))
        # SchedulerType: sched/backfill (Slurm's default) or sched/builtin (priority FIFO)
        from ..conf import scheduler_parameters
        sched_type = str(get_option(conf, "SchedulerType", "sched/backfill")).lower()
        self.policy = fifo if sched_type == "sched/builtin" else backfill
        sched_params = scheduler_parameters(conf)
        self.backfill_params = backfill.params_from_scheduler_parameters(sched_params)
        try:
            self.bf_interval = float(sched_params.get("bf_interval", 1))
        except (TypeError, ValueError):
            self.bf_interval = 1.0
        self.last_backfill = 0.0
        self.jobs = {}        # job_id -> job dict (active + recently finished)
        # user -> {job_id: job} over self.jobs: submit limits count one user's jobs without
        # scanning the whole queue (a flooding user's every refused submit would otherwise)
        self.jobs_by_user = {}
        self.pending = {}     # job_id -> job dict, submit order
        self.order_dirty = False
        # Scripts and environments (payloads) and the jobs' JSON text are not kept in memory:
        # with 100,000 known jobs they would cost ~4 KB a job. A payload is read back from the
        # journal when the job launches, the JSON text is made when asked for.
        self.running_array_tasks = {}
        self._schedule_handle = None
        self.blocked_partitions = set()
        self.on_change = None  # callback(job) for watchers
        from .steps import StepManager
        self.steps = StepManager(self, os.urandom(32))  # the daemon installs the persistent key
        self.stats = {"passes": 0, "last_pass_ms": 0.0, "submitted": 0}
        # Where associations and QOS come from once sacctmgr manages them: callables returning
        # the association rows ({"account", "parent", "user", "shares", "partition"}) and the
        # QOS rows ({"name", "priority"}); None means "none configured" (see association_tree).
        # sacctmgr's store feeds fairshare once anything beyond its seeded defaults exists.
        self.assoc_source = lambda: self.assoc.tree() if self.assoc.configured() else []
        # QOS records for multifactor (priority) and preempt/qos (preempt, preempt_mode, grace_time;
        # sacctmgr's PreemptMode "cluster" means the cluster's own mode).
        self.qos_source = lambda: [
            dict(q, name=name, preempt_mode="" if q.get("preempt_mode") in (None, "cluster") else q["preempt_mode"])
            for name, q in self.assoc.qos.items()]
        self.priority = PriorityService(self)  # PriorityType, weights, usage (ValueError on bad config)
        self.reservations = ReservationBook(self)  # advance reservations (controller/reservations.py)
        from .preemption import PreemptionControl
        self.preemption = PreemptionControl(self)  # suspend/resume, preemption, gang scheduling
        self.pass_times = Histogram()  # /metrics: batchhub_scheduler_pass_seconds

    # -- recovery ------------------------------------------------------------
    def recover(self):
        """Load the journal after a (re)start; nodes get SlurmdTimeout to re-register."""
        now = self.now()
        for name, data in self.journal.load_nodes().items():
            node = self.nodes.get(name)
            if node is not None:
                node.admin_state = data.get("admin_state", "")
                node.reason = data.get("reason", "")
                node.reason_time = data.get("reason_time")
                node.reason_user = data.get("reason_user", "")
        self.next_job_id = self.journal.next_job_id(int(self._opt("FirstJobId", 1)))
        self.reservations.recover()
        for job in self.journal.load_live_jobs(now - self.min_job_age if self.min_job_age > 0 else 0):
            share_strings(job)
            self._remember(job)
            if job["state"] == "PENDING":
                self.pending[job["job_id"]] = job
            elif job["state"] in ("RUNNING", "COMPLETING", "SUSPENDED"):
                for name in job["nodes"]:
                    node = self.nodes.get(name)
                    if node is not None:
                        node.allocate(job["job_id"], 0 if job.get("cpus_released") else job["cpus_per_node"].get(name, 0),
                                      job["mem_alloc_per_node"].get(name, 0),
                                      job["gpus_per_node"].get(name, []))
                if job.get("array_job_id") and job["array_job_id"] != job["job_id"]:
                    self._count_array_task(job["array_job_id"], +1)
        self.order_dirty = True
        self.recovered_at = now
        self.priority.recover(now)
        return len(self.jobs)

    # -- associations and QOS (the adapter the priority code reads) -------------------
    def association_tree(self):
        """Association rows ``{"account", "parent", "user", "shares", "partition"}`` or [] if none.

        A user row may carry ``"default": True`` (the user's DefaultAccount: jobs
        without ``-A`` are charged there; else the user's first row is). Per-partition
        associations are not distinguished: usage is per (account, user).

        The one place the controller asks for the account tree: sacctmgr's store
        plugs in through ``assoc_source``. With no associations the priority code
        uses its default tree (root with every user who has jobs, shares 1). After
        a change, ``self.priority.associations_changed(now)`` applies it at once
        (otherwise the next PriorityCalcPeriod pass does).
        """
        if self.assoc_source is not None:
            return list(self.assoc_source() or [])
        return []

    def qos_priorities(self):
        """QOS name -> Priority (``normal`` 0 when no QOS are configured)."""
        rows = list(self.qos_source() or []) if self.qos_source is not None else []
        out = {"normal": 0}
        out.update({q["name"]: int(q.get("priority") or 0) for q in rows})
        return out

    def priority_tick(self):
        """Once a second (the daemon's housekeeping): usage charging and PriorityCalcPeriod."""
        self.priority.tick(self.now())
        if self.order_dirty and self.pending:
            self.request_schedule()

    def _opt(self, key, default):
        from ..conf import get_option
        return get_option(self.conf, key, default)

    # -- helpers ---------------------------------------------------------------
    def _save(self, *jobs):
        """Journal jobs; the JSON text written is also what the API serves for them."""
        texts = [json.dumps(job, separators=(",", ":")) for job in jobs]
        self.journal.save_jobs(jobs, texts)
        if self.on_change is not None:
            for job in jobs:
                self.on_change(job)

    def public(self, job):
        """The API view of a job (the record itself: every field is readable by users)."""
        return job

    def job_json(self, job):
        """The job as JSON text (what the full job list serves)."""
        return json.dumps(job, separators=(",", ":"))

    def find(self, id_text):
        """Jobs named by 'N', 'A' (an array: all its tasks), 'A_i' or 'A_[x-y]'.

        Returns a list (possibly empty) of job dicts held in memory.
        """
        id_text = str(id_text).strip()
        if "_" in id_text:
            base, _, idx = id_text.partition("_")
            if not (base.isascii() and base.isdigit()):
                raise InvalidRequest(f"Invalid job id specified: {id_text}")
            array_id = int(base)
            wanted = None
            if idx.startswith("[") and idx.endswith("]"):
                try:
                    from .jobs import parse_array
                    wanted, _ = parse_array(idx[1:-1])
                except InvalidRequest:
                    raise InvalidRequest(f"Invalid job id specified: {id_text}") from None
                wanted = set(wanted)
            elif (idx.isascii() and idx.isdigit()):
                wanted = {int(idx)}
            else:
                raise InvalidRequest(f"Invalid job id specified: {id_text}")
            return [j for j in self._array_members(array_id)
                    if (j.get("array_task_id") in wanted)
                    or (j.get("array_pending") and wanted & set(j["array_pending"]))]
        if not (id_text.isascii() and id_text.isdigit()):
            raise InvalidRequest(f"Invalid job id specified: {id_text}")
        job_id = int(id_text)
        job = self.jobs.get(job_id)
        if job is None:
            return []
        if job.get("array_job_id") == job_id:
            return self._array_members(job_id)
        return [job]

    def _array_members(self, array_id):
        return [j for j in self.jobs.values() if j.get("array_job_id") == array_id]

    def _check_owner(self, job, caller):
        if not caller.admin and job["uid"] != caller.uid:
            raise PermissionDenied("Access/permission denied")
        if not caller.admin and job["user"] != caller.user:
            raise PermissionDenied("Access/permission denied")

    def _count_array_task(self, array_id, delta):
        n = self.running_array_tasks.get(array_id, 0) + delta
        if n > 0:
            self.running_array_tasks[array_id] = n
        else:
            self.running_array_tasks.pop(array_id, None)

    # -- submit ------------------------------------------------------------------
    def submit(self, sub, caller):
        """Validate, journal and queue a submission; returns the job id."""
        check_submission(sub)
        token = sub.get("submit_token")
        if token:
            existing = self.journal.job_for_token(token)
            if existing is not None:
                return existing  # a retried submit: same job, never a second one
        now = self.now()
        sub = self.reservations.submission_defaults(sub)
        job, payload = build_job(sub, job_id=self.next_job_id, caller=caller, partitions=self.partitions,
                                 default_partition=self.default_partition,
                                 nodes={n: r.template() for n, r in self.nodes.items()},
                                 now=now, cluster_name=self.cluster_name)
        if job["dependency"]:
            validate_dependency(job["dependency"], self._lookup_any)
        self.reservations.check_job(job)
        self.assoc.apply_to_job(job, sub, self.partitions[job["partition"]], self.active_jobs)
        if sub.get("test_only"):
            return None
        if job["dependency"]:
            job["eligible_time"] = None  # a job ages (and shows an EligibleTime) once its dependency is met
        job["priority_set"] = job["priority"] or None  # sbatch --priority by an admin pins it
        self.priority.note_user(job["user"])
        job["priority"] = self.priority.priority_of(job, now)
        if job["held"]:
            job["reason"] = "JobHeldUser"
        elif (job["begin_time"] or 0) > now:
            job["reason"] = "BeginTime"
        elif job["dependency"]:
            job["reason"] = "Dependency"
        else:
            job["reason"] = "Priority" if job["partition"] in self.blocked_partitions else "None"
        with self.journal.transaction():
            self.journal.save_payload(job["job_id"], payload)
            self._save(job)
            if token:
                self.journal.save_submit_token(token, job["job_id"])
            self.journal.set_next_job_id(job["job_id"] + 1)
        self.next_job_id = job["job_id"] + 1
        self._remember(job)
        self.pending[job["job_id"]] = job
        self.stats["submitted"] += 1
        job_event("submit", job, UserId=f"{job['user']}({job['uid']})", Partition=job["partition"],
                  Name=job["name"], NumCPUs=job["num_cpus"], Reason=job["reason"])
        if not self.order_dirty:
            # appended last: the queue is still in order unless it outranks the job before it
            before = self._pending_before_last()
            if before is not None and job["priority"] > before["priority"]:
                self.order_dirty = True
        self.request_schedule()
        return job["job_id"]

    def submit_many(self, subs, caller):
        """Submit several jobs in one journal commit; one result per submission, in order.

        A result is ``{"job_id": N}`` or ``{"error": {"code", "message"}}``: a bad
        submission is refused alone, the others are accepted (as if each had
        been sent by itself, only faster - the high-throughput path for
        workflow tools that would otherwise call sbatch thousands of times).
        Nothing is acknowledged before the single commit.
        """
        results = []
        with self.journal.transaction():
            for sub in subs:
                try:
                    results.append({"job_id": self.submit(sub, caller)})
                except BatchError as e:
                    results.append({"error": {"code": e.code, "message": e.message}})
        return results

    def _remember(self, job):
        """Keep a job in memory (``self.jobs``) and in its user's index."""
        self.jobs[job["job_id"]] = job
        self.jobs_by_user.setdefault(job["user"], {})[job["job_id"]] = job

    def active_jobs(self, user=None):
        """Pending and running jobs (dicts), of one user when ``user`` is given (from the index)."""
        jobs = self.jobs.values() if user is None else self.jobs_by_user.get(user, {}).values()
        return [j for j in jobs if j["state"] in ACTIVE_STATES]

    def _pending_before_last(self):
        it = reversed(self.pending.values())
        next(it, None)
        return next(it, None)

    def _jobs_of_user(self, user):
        return [j for j in self.jobs.values() if j["user"] == user]

    def _lookup_any(self, job_id):
        """A job by raw id from memory or, for old ones, the journal."""
        job = self.jobs.get(job_id)
        if job is not None:
            return job
        rows = self.journal.query_jobs(job_ids=[job_id])
        return rows[0] if rows else None

    # -- scheduling ---------------------------------------------------------------
    #: seconds a pass waits after the event that asked for it. A burst of submits
    #: (a shell loop, a workflow tool) then costs one pass, not one per job, and
    #: the submitting client gets the CPU to finish before its job is launched.
    SCHEDULE_DELAY = 0.003

    def request_schedule(self):
        """Coalesce scheduling requests into one pass a few milliseconds from now."""
        if self._schedule_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._schedule_handle = loop.call_later(self.SCHEDULE_DELAY, self.schedule_now)

    def schedule_now(self):
        self._schedule_handle = None
        # preemption and gang scheduling wrap the main pass (controller/preemption.py)
        self.preemption.before_pass(self.now())
        self._main_pass()
        self.preemption.after_pass(self.now())

    def _main_pass(self):
        if not self.pending:
            return
        t0 = time.perf_counter()
        now = self.now()
        if self.order_dirty or self.preemption.multi_tier:
            # Slurm's queue order: partition PriorityTier first, then job priority
            tier = self.preemption.tier_of
            ordered = sorted(self.pending.values(), key=lambda j: (-tier(j), -j["priority"], j["submit_time"], j["job_id"]))
            self.pending = {j["job_id"]: j for j in ordered}
            self.order_dirty = False
        # Held jobs cannot start and hold/release set their reason: leaving them out keeps a
        # pass cheap however many jobs users park in the queue.
        # Advance reservations (sched/reservations.py): jobs that asked for one are placed
        # inside it first; every other job sees reserved nodes as blocked time windows.
        in_resv, outside = resv_policy.split_pending(j for j in self.pending.values() if not j["held"])
        windows = resv_policy.blocked_windows(self.reservations.items.values(), now, now + resv_policy.WINDOW_HORIZON)
        common = dict(
            nodes={n: r.view() for n, r in self.nodes.items()},
            partitions=self.partitions,
            pending=self.preemption.pending_for_main_pass(outside),
            running_array_tasks=dict(self.running_array_tasks),
            dependency_state=lambda job: dependency_state(job, self._lookup_any, self._jobs_of_user),
            expand_hostlist=hostlist.expand,
            reserved_windows=windows,
            limits=self._limits(),
        )
        resv_decisions = []
        if in_resv:
            resv_decisions = resv_policy.schedule_reserved(fifo.SchedState(**dict(common, pending=in_resv)),
                                                           now, self.reservations.items, in_resv)
        # Like slurmctld: every event runs the cheap main scheduler (priority order, stop at
        # the first job that cannot start: it can never delay a higher-priority job); the
        # backfill planner, which costs milliseconds per pass on a long queue, runs every
        # bf_interval seconds and is what starts jobs out of order and estimates starts.
        use_backfill = self.policy is backfill and now - self.last_backfill >= self.bf_interval
        if use_backfill:
            self.last_backfill = now
            state = backfill.BackfillState(
                **common, running=self.preemption.running_for_planner(
                    [j for j in self.jobs.values() if j["state"] in HOLDING_STATES]),
                **self.backfill_params)
        else:
            state = fifo.SchedState(**common)
        decisions = (backfill if use_backfill else fifo).schedule(state, now)
        if windows:
            decisions = resv_policy.maint_reasons(decisions, outside, state, windows, now)
        decisions = resv_decisions + decisions
        self.blocked_partitions = state.blocked
        changed = []
        starts = []
        for d in decisions:
            job = self.jobs.get(d.job_id)
            if job is None or job["state"] != "PENDING":
                continue
            if isinstance(d, fifo.SetReason):
                if job.get("eligible_time") is None and not job.get("held") \
                        and d.reason not in ("Dependency", "DependencyNeverSatisfied", "BeginTime"):
                    job["eligible_time"] = now  # its dependency is met: from now on it ages
                job["reason"] = d.reason
                changed.append(job)
            elif isinstance(d, backfill.Estimate):
                # the planner's opinion, not a fact: served by the API, not journaled
                job["start_time"] = d.start_time
                job["start_estimated"] = d.start_time is not None
                job["sched_nodes"] = hostlist.compress(d.nodes) if d.nodes else ""
            else:
                started = self._start(job, d.allocation, now)
                changed.extend(started)
                starts.append(started[-1])
        if changed:
            # dedupe, keep last
            unique = {j["job_id"]: j for j in changed}
            with self.journal.transaction():
                self._save(*unique.values())
        for job in starts:
            if not job.get("interactive"):
                self._send_launch(job)
        self.stats["passes"] += 1
        elapsed = time.perf_counter() - t0
        self.stats["last_pass_ms"] = elapsed * 1000
        self.pass_times.observe(elapsed)

    def _limits(self):
        """A fresh association/QOS tally for one pass, or None when limits are not enforced."""
        if "limits" not in self.assoc.enforce:
            return None
        from ..sched.limits import Limits
        assocs, qos = self.assoc.limits_view()
        return Limits(assocs, qos, [j for j in self.jobs.values() if j["state"] in HOLDING_STATES])

    def _start(self, job, alloc, now):
        """Apply a Start decision; for an array master, split off its next task."""
        changed = []
        if job.get("array_pending"):
            index = job["array_pending"][0]
            if len(job["array_pending"]) == 1:
                task = job  # the last task takes over the master record (raw id = A)
                job["array_pending"] = None
                job["array_spec"] = None
                self.pending.pop(job["job_id"], None)
            else:
                task = {k: (v.copy() if isinstance(v, (dict, list)) and k != "array_pending" else v)
                        for k, v in job.items()}
                task["job_id"] = self.next_job_id
                self.next_job_id += 1
                self.journal.set_next_job_id(self.next_job_id)
                task["array_pending"] = None
                task["array_spec"] = None
                job["array_pending"] = job["array_pending"][1:]
                job["array_spec"] = format_array_pending(job["array_pending"], job.get("array_max_running"))
                job["display_id"] = f"{job['job_id']}_[{job['array_spec']}]"
                self._remember(task)
                changed.append(job)
            task["array_task_id"] = index
            task["display_id"] = f"{job['array_job_id']}_{index}"
            self._count_array_task(job["array_job_id"], +1)
            job = task
        else:
            self.pending.pop(job["job_id"], None)
        job["state"] = "RUNNING"
        job["reason"] = "None"
        job["start_time"] = now
        job["start_estimated"] = False
        job["sched_nodes"] = ""
        job["end_time"] = None if job["time_limit"] is None else now + job["time_limit"] * 60
        self.reservations.job_started(job)  # a job in a reservation ends with it
        job["nodes"] = list(alloc.nodes)
        job["nodelist"] = hostlist.compress(alloc.nodes)
        job["batch_host"] = alloc.nodes[0]
        job["cpus_per_node"] = dict(alloc.cpus_per_node)
        job["tasks_per_node"] = dict(alloc.tasks_per_node)
        job["gpus_per_node"] = {n: list(g) for n, g in alloc.gpus_per_node.items()}
        job["mem_alloc_per_node"] = dict(alloc.memory_per_node)
        job["num_nodes"] = len(alloc.nodes)
        job["num_cpus"] = sum(alloc.cpus_per_node.values())
        if job.get("eligible_time") is None:
            job["eligible_time"] = now
        self.priority.job_started(job, now)
        self._expand_paths(job)
        for name in alloc.nodes:
            self.nodes[name].allocate(job["job_id"], alloc.cpus_per_node[name],
                                      alloc.memory_per_node[name], alloc.gpus_per_node.get(name, []))
        changed.append(job)
        job_event("allocate", job, NodeList=job["nodelist"], NumCPUs=job["num_cpus"], Partition=job["partition"])
        return changed

    def _expand_paths(self, job):
        def expand(pattern):
            if not pattern:
                return ""
            path = expand_output_pattern(
                pattern, job_id=job["job_id"], array_job_id=job.get("array_job_id"),
                array_task_id=job.get("array_task_id"), name=job["name"], user=job["user"],
                node=job["batch_host"], node_index=0, step="batch")
            return path if os.path.isabs(path) else os.path.join(job["workdir"], path)
        job["stdout_path"] = expand(job["stdout"])
        job["stderr_path"] = expand(job["stderr"]) if job["stderr"] else job["stdout_path"]

    # -- talking to nodes -------------------------------------------------------------
    def launch_message(self, job):
        payload = self.journal.load_payload(job["job_id"])
        if payload is None and job.get("array_job_id"):
            payload = self.journal.load_payload(job["array_job_id"])
        payload = payload or {"script": "#!/bin/sh\nexit 1\n", "script_args": [], "environment": {}}
        host = job["batch_host"]
        node = self.nodes[host]
        mem = job["mem_alloc_per_node"].get(host) or None
        return {
            "job_id": job["job_id"], "array_job_id": job.get("array_job_id"),
            "array_task_id": job.get("array_task_id"),
            "array_task_count": job.get("array_task_count"), "array_task_min": job.get("array_task_min"),
            "array_task_max": job.get("array_task_max"), "array_task_step": job.get("array_task_step"),
            "name": job["name"], "user": job["user"], "uid": job["uid"], "gid": job["gid"],
            "group": job["group"], "account": job["account"], "qos": job["qos"],
            "partition": job["partition"], "script": payload["script"],
            "script_args": payload.get("script_args", []), "environment": payload.get("environment", {}),
            "export": job.get("export", "ALL"), "get_user_env": job.get("get_user_env", False),
            "workdir": job["workdir"], "submit_dir": job.get("submit_dir") or job["workdir"],
            "submit_host": job["submit_host"], "stdout_path": job["stdout_path"],
            "stderr_path": job["stderr_path"] if job["stderr"] else "",
            "stdin": job["stdin"], "open_mode": job["open_mode"], "time_limit": job["time_limit"],
            "time_limit_seconds": None if job["time_limit"] is None else job["time_limit"] * 60
            - max(0.0, self.now() - job["start_time"]),
            "mem_limit_mb": mem, "cpus_on_node": job["cpus_per_node"].get(host, 1),
            "cpu_slots": job["cpus_per_node"].get(host, 1), "gpu_ids": job["gpus_per_node"].get(host, []),
            "nodes": job["nodes"], "nodelist": job["nodelist"], "num_nodes": job["num_nodes"],
            "num_tasks": job["num_tasks"], "cpus_per_task": job["cpus_per_task"],
            "tasks_per_node_str": _compact_counts([job["tasks_per_node"][n] for n in job["nodes"]]),
            "cpus_per_node_str": _compact_counts([job["cpus_per_node"][n] for n in job["nodes"]]),
            "mem_per_node": job.get("mem_per_node"), "mem_per_cpu": job.get("mem_per_cpu"),
            "cluster_name": self.cluster_name, "node_index": node.index, "restarts": job["restarts"],
            "signal": job.get("signal", ""), "kill_wait": self.kill_wait,
            # a node on another host reaches the controller over TCP only: so must the job's srun
            "job_token": self.mint_job_token(job) if self.mint_job_token and node.daemon_info.get("via_tcp")
            else None,
        }

    def _send_launch(self, job):
        node = self.nodes[job["batch_host"]]
        node.push({"type": "launch", "job_id": job["job_id"], "launch": self.launch_message(job)})

    # -- job end ----------------------------------------------------------------------
    def job_ended(self, job_id, state, exit_code=0, exit_signal=0, reason="", end_time=None, node=None,
                  max_rss_mb=None, run=None):
        """A node daemon reports the batch script's end (``run``: the restart count it ran)."""
        job = self.jobs.get(job_id)
        if job is None or job["state"] in FINAL_STATES or job["state"] == "PENDING":
            return
        if node is not None and job.get("batch_host") and node != job["batch_host"]:
            return
        if run is not None and run != job.get("restarts", 0):
            return  # the end of an earlier run (killed as stale) is not this run's end
        now = end_time or self.now()
        requeue = job.pop("_requeue", None)
        state, requeue = self.preemption.end_outcome(job, state, requeue)
        if state == "CANCELLED" and job.get("_cancelled_by") is not None:
            job["cancelled_by"] = job.pop("_cancelled_by")
        self._release_nodes(job)
        self.priority.job_ended(job, now)
        self.reservations.job_ended(job)
        self.steps.kill_all(job)  # a step never outlives its job
        if requeue:
            from .runs import close_run
            close_run(job, "PREEMPTED" if requeue == "preempt" else "NODE_FAIL" if state == "NODE_FAIL"
                      else "REQUEUED", now)
            self.preemption.clear_run_state(job)
            self._requeue_now(job, now, hold=(requeue == "hold"))
            return
        exit_code, exit_signal = int(exit_code or 0), int(exit_signal or 0)
        # Slurm's accounting: the job row of a cancelled or timed-out job shows 0:0,
        # its .batch step the real end (0:15); a shell killed by a stray signal is
        # FAILED 0:SIG on the job row and CANCELLED 0:SIG on .batch.
        batch_state = state
        if state in ("CANCELLED", "TIMEOUT", "PREEMPTED"):
            batch_state = "CANCELLED"
            job["exit_code"], job["exit_signal"] = 0, 0
        else:
            job["exit_code"], job["exit_signal"] = exit_code, exit_signal
            if state == "FAILED" and exit_signal and exit_signal != 53:
                batch_state = "CANCELLED"
        job["state"] = state
        job["end_time"] = now
        job["reason"] = reason or ("NonZeroExitCode" if state == "FAILED" else "None")
        if max_rss_mb is not None:
            job["max_rss_mb"] = max_rss_mb
        job_event("end", job, State=state, ExitCode=f"{exit_code}:{exit_signal}", Reason=job["reason"],
                  NodeList=job.get("nodelist", ""))
        if job.get("interactive"):
            self._save(job)
            self.request_schedule()
            return
        job["steps"] = [s for s in job.get("steps", []) if s.get("step_id") != "batch"] + [{
            "step_id": "batch", "name": "batch", "state": batch_state,
            "exit_code": exit_code, "exit_signal": exit_signal,
            "start_time": job["start_time"], "end_time": now, "nodelist": job["batch_host"],
            "num_tasks": 1, "num_cpus": job["cpus_per_node"].get(job["batch_host"], 1),
            "max_rss_mb": max_rss_mb,
        }]
        self._save(job)
        self.request_schedule()

    def _release_nodes(self, job):
        for name in job.get("nodes", []):
            node = self.nodes.get(name)
            if node is not None:
                node.release(job["job_id"], 0 if job.get("cpus_released") else job["cpus_per_node"].get(name, 0),
                             job["mem_alloc_per_node"].get(name, 0), job["gpus_per_node"].get(name, []))
        if job.get("array_job_id") is not None:
            self._count_array_task(job["array_job_id"], -1)

    def _requeue_now(self, job, now, hold=False):
        job_event("requeue", job, Restarts=job["restarts"] + 1, Hold="yes" if hold else "no")
        job["state"] = "PENDING"
        job["reason"] = "JobHeldAdmin" if hold else "BeginTime"
        job["held"] = "admin" if hold else ""
        job["restarts"] += 1
        job["start_time"] = None
        job["end_time"] = None
        job["nodes"], job["nodelist"], job["batch_host"] = [], "", ""
        job["cpus_per_node"], job["tasks_per_node"], job["gpus_per_node"], job["mem_alloc_per_node"] = {}, {}, {}, {}
        job["open_mode"] = "append"
        job["exit_code"] = job["exit_signal"] = 0
        job["num_cpus"] = job["num_tasks"] * job["cpus_per_task"]
        job["priority"] = self.priority.priority_of(job, now)
        self.pending[job["job_id"]] = job
        self.order_dirty = True
        self._save(job)
        self.request_schedule()

    # -- user actions ----------------------------------------------------------------------
    def cancel(self, ids, caller, *, signal=None, batch_only=False, full=False, users=None, names=None,
               partitions=None, states=None):
        result = {"cancelled": [], "signalled": [], "not_found": [], "denied": []}
        targets = []
        for id_text in ids or []:
            if "." in str(id_text):
                base, _, step_id = str(id_text).partition(".")
                found = self.find(base)
                if not found:
                    result["not_found"].append(str(id_text))
                for job in found:
                    try:
                        self.steps.cancel(job["job_id"], step_id, caller, signal=signal)
                        result["signalled" if signal else "cancelled"].append(str(id_text))
                    except PermissionDenied:
                        result["denied"].append(str(id_text))
                    except NotFound:
                        result["not_found"].append(str(id_text))
                continue
            found = self.find(id_text)
            if not found:
                result["not_found"].append(str(id_text))
            targets.extend(found)
        if not ids and (users or names or partitions or states):
            targets = [j for j in self.jobs.values() if j["state"] in ACTIVE_STATES]
        if users or names or partitions or states:
            targets = [j for j in targets
                       if (not users or j["user"] in users) and (not names or j["name"] in names)
                       and (not partitions or j["partition"] in partitions)
                       and (not states or j["state"] in states)]
        changed = []
        for job in {j["job_id"]: j for j in targets}.values():
            if not caller.admin and job["uid"] != caller.uid or (not caller.admin and job["user"] != caller.user):
                result["denied"].append(job.get("display_id") or str(job["job_id"]))
                continue
            if job["state"] not in ACTIVE_STATES:
                continue
            if signal:
                if job["state"] == "RUNNING":
                    if not job.get("interactive"):
                        self.nodes[job["batch_host"]].push(
                            {"type": "signal", "job_id": job["job_id"], "signal": signal,
                             "batch_only": bool(batch_only), "full": bool(full)})
                    if not batch_only:  # steps' tasks hear it too (that is how IPP interrupts engines)
                        for step in job.get("steps", []):
                            if step.get("step_id") != "batch" and step["state"] == "RUNNING":
                                self.steps.kill(job, step, str(signal))
                    result["signalled"].append(job["display_id"])
                    job_event("signal", job, Signal=signal, ByUid=caller.uid)
                continue
            job_event("cancel", job, State=job["state"], ByUid=caller.uid)
            if job["state"] == "PENDING":
                self.pending.pop(job["job_id"], None)
                job["state"] = "CANCELLED"
                job["reason"] = "None"
                job["end_time"] = self.now()
                job["cancelled_by"] = caller.uid
                if job.get("array_pending"):
                    job["array_pending"] = job["array_pending"]
                changed.append(job)
            elif job["state"] in ("RUNNING", "SUSPENDED"):
                if job.get("interactive"):
                    job["_cancelled_by"] = caller.uid
                    self.job_ended(job["job_id"], "CANCELLED", reason="None")
                else:
                    job["state"] = "COMPLETING"
                    job["_cancelled_by"] = caller.uid
                    self.nodes[job["batch_host"]].push({"type": "cancel", "job_id": job["job_id"]})
                changed.append(job)
            result["cancelled"].append(job["display_id"])
        if changed:
            with self.journal.transaction():
                self._save(*changed)
            self.request_schedule()
        return result

    def job_action(self, id_text, action, caller):
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        for job in jobs:  # every refusal before any change: an array is held whole or not at all
            self._check_action(job, action, caller)
        changed = []
        for job in jobs:
            self._check_owner(job, caller)
            if action in ("hold", "uhold"):
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                job["held"] = "admin" if (action == "hold" and caller.admin) else "user"
                job["reason"] = "JobHeldAdmin" if job["held"] == "admin" else "JobHeldUser"
                job["eligible_time"] = None
                job["priority"] = 0  # Slurm: priority 0 means held
            elif action == "release":
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                if job["held"] == "admin" and not caller.admin:
                    raise PermissionDenied("Access/permission denied: job held by an administrator")
                job["held"] = ""
                job["reason"] = "None"
                job["eligible_time"] = self.now()
                self.priority.refresh(job, self.now())
            elif action in ("requeue", "requeuehold"):
                if job["state"] == "PENDING":
                    if action == "requeuehold":
                        job["held"] = "admin" if caller.admin else "user"
                        job["reason"] = "JobHeldAdmin" if caller.admin else "JobHeldUser"
                        job["priority"] = 0
                    else:
                        raise Conflict("Job is pending execution")
                elif job["state"] in ("RUNNING", "SUSPENDED"):
                    job["_requeue"] = "hold" if action == "requeuehold" else "requeue"
                    job["state"] = "COMPLETING"
                    self.nodes[job["batch_host"]].push({"type": "cancel", "job_id": job["job_id"], "requeue": True})
                elif job["state"] in FINAL_STATES:
                    if not job.get("nodes") and job["state"] == "CANCELLED" and job.get("start_time") is None:
                        raise Conflict("Job has not started, cannot requeue a cancelled pending job")
                    self._release_nodes_if_needed(job)
                    from .runs import close_run
                    close_run(job, job["state"], job.get("end_time") or self.now(),
                              job.get("exit_code", 0), job.get("exit_signal", 0))
                    self._requeue_now(job, self.now(), hold=(action == "requeuehold"))
                    continue
                else:
                    raise Conflict("Job is completing, try again later")
            elif action in ("suspend", "resume"):
                self.preemption.admin_action(job, action, caller)  # journals and tells the nodes
                continue
            elif action == "top":
                if job["state"] != "PENDING":
                    raise Conflict("Job is no longer pending execution")
                mine = [j["priority"] for j in self.pending.values() if j["uid"] == job["uid"]]
                job["priority_set"] = max(mine) + 1  # pinned, as an admin-set priority is
                self.priority.refresh(job, self.now())
                self.order_dirty = True
            else:
                raise InvalidRequest(f"unknown action {action}")
            job_event("action", job, Action=action, ByUid=caller.uid)
            changed.append(job)
        if changed:
            with self.journal.transaction():
                self._save(*changed)
        self.request_schedule()
        return [j["display_id"] for j in jobs]

    def _check_action(self, job, action, caller):
        """Raise what :meth:`job_action` would raise for ``job``, before anything has changed."""
        self._check_owner(job, caller)
        state = job["state"]
        if action in ("hold", "uhold", "release", "top"):
            if state != "PENDING":
                raise Conflict("Job is no longer pending execution")
            if action == "release" and job["held"] == "admin" and not caller.admin:
                raise PermissionDenied("Access/permission denied: job held by an administrator")
        elif action in ("requeue", "requeuehold"):
            if state == "PENDING" and action == "requeue":
                raise Conflict("Job is pending execution")
            if state in FINAL_STATES:
                if not job.get("nodes") and state == "CANCELLED" and job.get("start_time") is None:
                    raise Conflict("Job has not started, cannot requeue a cancelled pending job")
            elif state not in ("PENDING", "RUNNING", "SUSPENDED"):
                raise Conflict("Job is completing, try again later")
        elif action in ("suspend", "resume"):
            if not caller.admin:
                raise PermissionDenied("Access/permission denied")
            if state not in ("RUNNING", "SUSPENDED"):
                raise Conflict("Job is not running")

    def _release_nodes_if_needed(self, job):
        return None

    def update_job(self, id_text, fields, caller):
        """scontrol update job: change limits and attributes of a job."""
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        check_job_update(fields)
        # all or nothing: a refusal for a later field or array task undoes the earlier ones
        saved = [(job, dict(job)) for job in jobs]
        pushes = []
        try:
            changed = self._apply_job_update(jobs, fields, caller, pushes)
        except BaseException:
            for job, before in saved:
                job.clear()
                job.update(before)
            raise
        for node, command in pushes:
            node.push(command)
        for job in changed:  # logged once it stuck (a refused update is rolled back, never logged)
            job_event("update", job, Fields=",".join(sorted(fields)), ByUid=caller.uid)
        with self.journal.transaction():
            self._save(*changed)
        self.request_schedule()
        return [j["display_id"] for j in changed]

    def _apply_job_update(self, jobs, fields, caller, pushes):
        changed = []
        for job in jobs:
            self._check_owner(job, caller)
            pending = job["state"] == "PENDING"
            if "account" in fields or "qos" in fields:
                self._update_account_qos(job, fields)
            for key, value in fields.items():
                if key in ("account", "qos"):
                    continue
                if key == "time_limit":
                    if value is not None and (not isinstance(value, int) or value <= 0):
                        raise InvalidRequest("Invalid time limit specification")
                    if not caller.admin and (value is None or (job["time_limit"] is not None and value > job["time_limit"])):
                        raise PermissionDenied("Access/permission denied: only an administrator may increase the time limit")
                    if job["state"] not in ACTIVE_STATES:
                        raise Conflict("Job is no longer active")
                    job["time_limit"] = value
                    if job["state"] in ("RUNNING", "SUSPENDED"):
                        paused = float(job.get("suspended_seconds") or 0)  # suspended time does not count
                        job["end_time"] = None if value is None else job["start_time"] + paused + value * 60
                    if job["state"] == "RUNNING":  # (a suspended job gets its seconds left at resume)
                        pushes.append((self.nodes[job["batch_host"]],
                                       {"type": "time_limit", "job_id": job["job_id"],
                                        "seconds_left": None if value is None else job["end_time"] - self.now()}))
                elif key == "priority":
                    if not caller.admin:
                        raise PermissionDenied("Access/permission denied: only an administrator may set the priority")
                    if value == 0:  # Slurm: priority=0 holds the job
                        if job["state"] != "PENDING":
                            raise Conflict("Job is no longer pending execution")
                        job["held"], job["reason"], job["eligible_time"] = "admin", "JobHeldAdmin", None
                        job["priority"] = 0
                    else:
                        job["priority_set"] = value
                        self.priority.refresh(job, self.now())
                    self.order_dirty = True
                elif key == "nice":
                    if int(value) < 0 and not caller.admin:
                        raise PermissionDenied("Access/permission denied: only an administrator may set a negative nice value")
                    job["nice"] = int(value)
                    if pending:
                        self.priority.refresh(job, self.now())
                    self.order_dirty = True
                elif key == "name":
                    job["name"] = str(value)
                elif key == "comment":
                    job["comment"] = str(value)
                elif key == "requeue":
                    job["requeue"] = bool(value)
                else:
                    if not pending:
                        raise Conflict("Job is no longer pending execution")
                    if key == "partition":
                        if value not in self.partitions:
                            raise InvalidRequest("Invalid partition name specified")
                        job["partition"] = value
                    elif key == "dependency":
                        if value:
                            validate_dependency(value, self._lookup_any)
                        job["dependency"] = value or ""
                    elif key == "begin_time":
                        job["begin_time"] = value
                    elif key == "num_nodes":
                        job["num_nodes"] = job["num_nodes_req"] = int(value)
                        job["num_tasks"] = max(job["num_tasks"], int(value))
                    elif key == "num_tasks":
                        job["num_tasks"] = int(value)
                        job["num_cpus"] = job["num_tasks"] * job["cpus_per_task"]
                    elif key == "mem_per_node":
                        job["mem_per_node"] = int(value)
                    elif key == "features":
                        job["features"] = value or ""
                    elif key == "exclude":
                        job["exclude"] = value or ""
            changed.append(job)
        return changed

    def _update_account_qos(self, job, fields):
        """A pending job moves to another account or QOS, checked as at submit."""
        if job["state"] != "PENDING":
            raise Conflict("Job is no longer pending execution")
        for key in ("account", "qos"):
            if key in fields and not isinstance(fields[key], str):
                raise InvalidRequest(f"field {key!r} must be a string")
        probe = dict(job)
        sub = {"account": fields.get("account", job["account"]), "qos": fields.get("qos", job["qos"]),
               "time_limit": job["time_limit"]}
        self.assoc.apply_to_job(probe, sub, self.partitions[job["partition"]], lambda user=None: [
            j for j in self.active_jobs(user) if j is not job])
        job["account"], job["qos"] = probe["account"], probe["qos"]

    # -- nodes -------------------------------------------------------------------------------
    def update_nodes(self, names, state, reason, caller):
        if not caller.admin:
            raise PermissionDenied("Access/permission denied: only an administrator may change node state")
        nodes = []
        for expr in names:
            try:
                expanded = hostlist.expand(expr)
            except ValueError as e:
                raise InvalidRequest(f"Invalid node name specified: {e}") from None
            for name in expanded:
                if name not in self.nodes:
                    raise NotFound(f"Node {name} not found")
                nodes.append(self.nodes[name])
        state = (state or "").upper()
        if state in ("DRAIN", "DOWN") and not reason:
            raise InvalidRequest("You must specify a reason when DOWNING or DRAINING a node. Request denied")
        for node in nodes:
            if state in ("DRAIN", "DOWN"):
                node.admin_state = state
                node.reason, node.reason_time, node.reason_user = reason, self.now(), caller.user
                if state == "DOWN":
                    self._fail_node_jobs(node, "NODE_FAIL")
            elif state in ("RESUME", "IDLE", "UNDRAIN"):
                node.admin_state = ""
                node.reason, node.reason_time, node.reason_user = "", None, ""
                if node.not_responding and node.registered:
                    node.not_responding = False
            elif state:
                raise InvalidRequest(f"Invalid node state specified: {state}")
            elif reason is not None:
                node.reason = reason
            self.journal.save_node(node.name, {"admin_state": node.admin_state, "reason": node.reason,
                                               "reason_time": node.reason_time, "reason_user": node.reason_user})
        self.request_schedule()
        return [n.name for n in nodes]

    def _save_node(self, node):
        self.journal.save_node(node.name, {"admin_state": node.admin_state, "reason": node.reason,
                                           "reason_time": node.reason_time, "reason_user": node.reason_user})

    def _fail_node_jobs(self, node, state):
        for job_id in list(node.jobs):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            node.push({"type": "cancel", "job_id": job_id})
            job_event("node_fail", job, Node=node.name, State=state)
            batch_host = self.nodes.get(job.get("batch_host") or "")
            if batch_host is not None and batch_host is not node:
                # the job's other nodes live on: its batch script there must end with the job
                batch_host.push({"type": "cancel", "job_id": job_id, "stale": True})
            if job.get("requeue"):
                job["_requeue"] = "requeue"
            self.job_ended(job_id, state, reason="NodeDown")

    def node_register(self, name, info):
        """A node daemon (re)connects: check resources, reconcile its jobs."""
        node = self.nodes.get(name)
        if node is None:
            raise NotFound(f"Node {name} not found in the configuration")
        from ..noded.resources import check_node_resources
        now = self.now()
        node.daemon_info = info
        node.registered = True
        node.not_responding = False
        if node.down_for_no_response() and self.return_to_service >= 1:
            node.admin_state, node.reason, node.reason_time, node.reason_user = "", "", None, ""
            self._save_node(node)
        node.last_seen = now
        node.boot_time = info.get("boot_time") or now
        overrides = "config_overrides" in str(self._opt("SlurmdParameters", ""))
        real = {"cpus": info.get("cpus", 0), "memory_mb": info.get("memory_mb", 0), "gpus": info.get("gpus", [])}
        node.resource_problem = check_node_resources(
            {"cpus": node.cpus, "real_memory": node.real_memory, "gres": node.gres}, real,
            config_overrides=overrides) or ""
        running = set(info.get("running", []))
        finished = set(info.get("finished", []))
        node.commands = []  # a fresh session: re-derive what the node must do
        for job_id in list(node.jobs):
            job = self.jobs.get(job_id)
            if job is None or job.get("batch_host") != name or job.get("interactive"):
                continue
            if job_id in running or job_id in finished:
                continue
            if job["state"] in ("RUNNING", "SUSPENDED") and not job.get("interactive"):
                self._send_launch(job)  # decided but never delivered: launch now
                if job["state"] == "SUSPENDED":  # (admitted for a later time slice)
                    node.push({"type": "suspend", "job_id": job_id})
            elif job["state"] == "COMPLETING":
                self.job_ended(job_id, "CANCELLED", exit_signal=15, reason="None")
        for job_id in running:
            job = self.jobs.get(job_id)
            if job is None or job["state"] in FINAL_STATES or job.get("batch_host") != name:
                node.push({"type": "cancel", "job_id": job_id, "stale": True})
            elif job["state"] == "COMPLETING":
                node.push({"type": "cancel", "job_id": job_id, "requeue": bool(job.get("_requeue"))})
        for job_id, step_id in info.get("steps") or []:
            # step tasks of a job this node no longer holds (it was declared dead meanwhile): stale
            job = self.jobs.get(job_id)
            if job is None or job["state"] not in HOLDING_STATES or name not in job.get("nodes", ()):
                node.push({"type": "kill_step", "job_id": job_id, "step_id": step_id, "signal": "KILL"})
        self.request_schedule()
        return {"epoch": self.epoch, "node_index": node.index, "cpus": node.cpus,
                "real_memory": node.real_memory, "gres": node.gres, "kill_wait": self.kill_wait,
                "slurmd_timeout": self.slurmd_timeout,
                "cluster_name": self.cluster_name, "resource_problem": node.resource_problem,
                # node daemons check step credentials with it (sent to node daemons only: root or
                # the service account on the socket, a node credential over TCP, where TLS keeps it secret)
                "credential_key": self.steps.key.hex()}

    def node_seen(self, name):
        node = self.nodes.get(name)
        if node is not None:
            node.last_seen = self.now()
            if node.not_responding and node.registered:
                node.not_responding = False
                self.request_schedule()
        return node

    def node_event(self, name, event):
        kind = event.get("event")
        if kind == "started":
            job = self.jobs.get(event.get("job_id"))
            if job is not None and job.get("batch_host") == name and not job.get("batch_pid"):
                job["batch_pid"] = event.get("pid")
        elif kind == "ended":
            job = self.jobs.get(event.get("job_id"))
            if event.get("state") == "NODE_FAIL" and job is not None and job.get("requeue") \
                    and job.get("batch_host") == name and event.get("restarts") == job.get("restarts"):
                job["_requeue"] = "requeue"  # its daemon died under it: --requeue jobs run again
            self.job_ended(event["job_id"], event["state"], event.get("exit_code", 0),
                           event.get("exit_signal", 0), event.get("reason", ""), event.get("time"),
                           node=name, max_rss_mb=event.get("max_rss_mb"), run=event.get("restarts"))
        elif kind == "task_ended":
            self.steps.task_ended(name, event)
        elif kind == "shutdown":
            node = self.nodes.get(name)
            if node is not None:
                log.info("node %s: daemon stopped", name)
                node.registered = False
                node.not_responding = True
                if node.jobs:
                    self._fail_node_jobs(node, "NODE_FAIL")
        elif kind == "stats":
            node = self.nodes.get(name)
            if node is not None:
                node.daemon_info.update({k: event[k] for k in ("cpu_load", "free_memory_mb") if k in event})

    def complete_job(self, id_text, exit_code, caller):
        """srun/salloc release an interactive allocation they created (the job ends with them)."""
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        job = jobs[0]
        self._check_owner(job, caller)
        if not job.get("interactive"):
            raise Conflict("Only allocations made by srun or salloc can be completed this way")
        if job["state"] in ("RUNNING", "SUSPENDED", "COMPLETING"):
            code = int(exit_code or 0)
            self.job_ended(job["job_id"], "COMPLETED" if code == 0 else "FAILED", exit_code=code)
        elif job["state"] == "PENDING":
            self.cancel([str(job["job_id"])], caller)
        return job

    def extension_check(self, id_text, minutes, caller):
        """Would adding ``minutes`` to a running job's limit delay any pending job's planned start?

        Asks the backfill planner twice, on copies (nothing changes): once as things
        are, once with the longer limit; any pending job planned later the second
        time (or no longer starting now) is delayed by the extension.
        """
        jobs = self.find(id_text)
        if not jobs:
            raise NotFound("Invalid job id specified")
        job = jobs[0]
        self._check_owner(job, caller)
        if job["state"] != "RUNNING" or job.get("time_limit") is None:
            return {"ok": False, "reason": f"job {job['job_id']} is not running with a time limit", "delays": []}
        if not isinstance(minutes, int) or minutes <= 0:
            raise InvalidRequest("minutes must be a positive integer")
        wanted = job["time_limit"] + minutes
        limit = self.partitions[job["partition"]].get("max_time")
        if limit is not None and wanted > limit:
            return {"ok": False, "delays": [],
                    "reason": f"partition {job['partition']} allows at most {limit} minutes"}
        wall, who = self.assoc.max_wall(job)
        if wall is not None and wanted > wall:
            return {"ok": False, "delays": [], "reason": f"{who} allows at most {wall} minutes per job"}
        clash = self.reservations.extension_conflict(job, job["start_time"] + wanted * 60)
        if clash:
            return {"ok": False, "delays": [], "reason": clash}
        now = self.now()

        def plan(extended):
            running = []
            for j in self.jobs.values():
                if j["state"] in HOLDING_STATES:
                    if extended and j["job_id"] == job["job_id"]:
                        j = dict(j, time_limit=wanted, end_time=j["start_time"] + wanted * 60)
                    running.append(j)
            pending = [dict(j, start_estimated=False, start_time=None) for j in self.pending.values()]
            state = backfill.BackfillState(
                nodes={n: r.view() for n, r in self.nodes.items()}, partitions=self.partitions, pending=pending,
                running_array_tasks=dict(self.running_array_tasks),
                dependency_state=lambda j: dependency_state(j, self._lookup_any, self._jobs_of_user),
                expand_hostlist=hostlist.expand, running=running, limits=self._limits(),
                **self.backfill_params)
            starts = {}
            for d in backfill.schedule(state, now):
                if isinstance(d, fifo.Start):
                    starts.setdefault(d.job_id, now)
                elif isinstance(d, backfill.Estimate) and d.start_time is not None:
                    starts[d.job_id] = d.start_time
            return starts

        before, after = plan(False), plan(True)
        delays = [{"job_id": jid, "before": t, "after": after.get(jid)}
                  for jid, t in sorted(before.items())
                  if after.get(jid) is None or after[jid] > t + 1]
        if delays:
            first = delays[0]
            return {"ok": False, "delays": delays,
                    "reason": f"it would delay the planned start of job {first['job_id']}"
                              + (f" and {len(delays) - 1} more" if len(delays) > 1 else "")}
        return {"ok": True, "delays": [], "reason": "", "new_time_limit": wanted}

    def backfill_due(self):
        """Pending work and a backfill pass older than bf_interval: time for one."""
        return bool(self.pending) and self.policy is backfill and self.now() - self.last_backfill >= self.bf_interval

    def enforce_interactive_limits(self):
        """No batch script watches an srun/salloc allocation: its time limit is the controller's job."""
        now = self.now()
        for job in list(self.jobs.values()):
            if job.get("interactive") and job["state"] == "RUNNING" and job.get("time_limit") is not None \
                    and now >= (job.get("end_time") or job["start_time"] + job["time_limit"] * 60):
                self.job_ended(job["job_id"], "TIMEOUT", reason="TimeLimit")

    def check_node_timeouts(self):
        """Nodes silent for SlurmdTimeout: NOT_RESPONDING and DOWN, their jobs NODE_FAIL.

        Polls are held at most a third of SlurmdTimeout (see the API), so a live
        node is seen several times per timeout. A node declared dead must register
        again: its registration lists what still runs there, and whatever the
        controller has given up on meanwhile is killed as stale.
        """
        now = self.now()
        for node in self.nodes.values():
            last = node.last_seen or getattr(self, "recovered_at", now)
            if now - last > self.slurmd_timeout and not node.not_responding:
                node.not_responding = True
                if node.registered:
                    log.warning("node %s not responding for %.0fs: DOWN, failing its jobs", node.name, now - last)
                    node.registered = False  # its next poll is told to re-register
                    if not node.admin_state:
                        node.admin_state, node.reason = "DOWN", NOT_RESPONDING_REASON
                        node.reason_time, node.reason_user = now, "slurm"
                        self._save_node(node)
                if node.jobs:
                    self._fail_node_jobs(node, "NODE_FAIL")

    def purge_old_jobs(self):
        """Forget finished jobs older than MinJobAge (squeue/scontrol no longer show them).

        Like slurmctld's MinJobAge: 0 keeps them forever. Their records stay in
        accounting (sacct) until PurgeJobAfter; the accounting agent trims the
        journal. Returns how many were dropped from memory.
        """
        if self.min_job_age <= 0:
            return 0
        cutoff = self.now() - self.min_job_age
        doomed = [j for j, job in self.jobs.items()
                  if job["state"] in FINAL_STATES and (job.get("end_time") or 0) < cutoff]
        for job_id in doomed:
            job = self.jobs.pop(job_id)
            mine = self.jobs_by_user.get(job["user"])
            if mine is not None:
                mine.pop(job_id, None)
                if not mine:
                    del self.jobs_by_user[job["user"]]
        if doomed:
            log.debug("purged %d finished jobs from memory (MinJobAge=%g)", len(doomed), self.min_job_age)
        return len(doomed)

    # -- queries --------------------------------------------------------------------------------
    def query(self, *, ids=None, users=None, partitions=None, states=None, names=None, include_finished=False):
        if ids:
            seen, jobs = set(), []
            for id_text in ids:
                for j in self.find(id_text):
                    if j["job_id"] not in seen:
                        seen.add(j["job_id"])
                        jobs.append(j)
        else:
            jobs = self.jobs.values()
        out = []
        want_states = set(states or [])
        for job in jobs:
            if want_states:
                if "ALL" not in want_states and job["state"] not in want_states:
                    continue
            elif not include_finished and job["state"] not in ACTIVE_STATES:
                continue
            if users and job["user"] not in users:
                continue
            if partitions and job["partition"] not in partitions:
                continue
            if names and job["name"] not in names:
                continue
            out.append(job)
        out.sort(key=lambda j: j["job_id"])
        return out


def _compact_counts(values):
    """[2, 2, 1] -> '2(x2),1' as in SLURM_TASKS_PER_NODE."""
    parts, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        n = j - i + 1
        parts.append(str(values[i]) if n == 1 else f"{values[i]}(x{n})")
        i = j + 1
    return ",".join(parts)
