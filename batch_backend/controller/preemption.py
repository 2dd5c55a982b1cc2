"""Suspend, resume, preemption and gang time-slicing, applied to the live cluster.

The decisions come from the pure modules :mod:`..sched.preemption` and
:mod:`..sched.gang`; this module turns them into transitions of the
:class:`~.cluster.Cluster`'s job records. Every transition is journaled
*before* the node daemons are told to act (commands are queued only after the
commit), so a controller restart never finds a node doing something the
journal does not know about.

Fields a job record gains here (all journaled with it):

* ``suspend_kind``: why a SUSPENDED job is stopped: ``admin`` (scontrol
  suspend; keeps its CPUs), ``preempt`` (SUSPEND preemption; its CPUs are
  released, ``cpus_released``, until it resumes), ``gang`` (waiting for its
  time slice; keeps its CPUs, which the ring shares).
* ``suspend_time`` (when it stopped), ``suspended_seconds`` (total so far),
  ``pre_suspend_seconds`` (run time before the last suspension, Slurm's
  SecsPreSuspend), ``suspend_changed`` (last suspend or resume: SuspendTime).
  Suspended time never counts against the time limit: the end time moves on
  by it at every resume, and the node daemons get the seconds left.
* ``preempt``: ``{"mode", "by", "time", "deadline"}`` while a preemption is
  under way (``deadline``: the end of GraceTime for CANCEL/REQUEUE).
* ``prior_runs`` (see :mod:`.runs`): a run that REQUEUE preemption ended is
  kept as a PREEMPTED accounting record.
"""

import logging

from .. import hostlist
from ..conf import get_option
from ..errors import Conflict, PermissionDenied
from ..model import FINAL_STATES
from ..sched import fifo, gang, preemption

log = logging.getLogger("batchhub.controller")


def mode_text(mode, gang_flag):
    """Slurm's spelling of a PreemptMode: ``OFF``, ``GANG``, ``REQUEUE``, ``GANG,SUSPEND``."""
    if mode == "OFF":
        return "GANG" if gang_flag else "OFF"
    return f"GANG,{mode}" if gang_flag else mode


class PreemptionControl:
    """The controller's side of suspension: admin suspend/resume, preemption, gang scheduling."""

    def __init__(self, cluster):
        self.cluster = cluster
        conf = cluster.conf
        self.config = preemption.config_from_options(conf.get("options", {}), conf.get("partitions", []))
        self.gang_parts = gang.gang_partitions(cluster.partitions)
        self.time_slice = float(get_option(conf, "SchedulerTimeSlice", 30))
        self.last_rotation = None
        tiers = {p.get("priority_tier", 1) for p in cluster.partitions.values()}
        self.multi_tier = len(tiers) > 1
        for name, part in cluster.partitions.items():
            # what scontrol show partition prints (the cluster's mode unless overridden)
            own = part.get("preempt_mode")  # a partition's own PreemptMode is shown as written
            part["preempt_mode_text"] = (mode_text(self.config.partitions[name]["preempt_mode"], False) if own
                                         else mode_text(self.config.mode, self.config.gang))
            part["grace_time"] = self.config.partitions[name]["grace_time"]

    def set_qos_table(self, table):
        """Install the QOS table preempt/qos reads: ``{name: {"priority", "preempt", "preempt_mode",
        "grace_time"}}`` (``preempt``: the QOS names it may preempt)."""
        import dataclasses
        self.config = dataclasses.replace(self.config, qos=dict(table or {}))

    def refresh_qos(self):
        """Read the QOS table from the cluster's ``qos_source`` (sacctmgr's QOS rows: ``name``,
        ``priority``, ``preempt`` as a list or comma list, ``preempt_mode``, ``grace_time``
        seconds), when preempt/qos is in use and a source is plugged in."""
        source = getattr(self.cluster, "qos_source", None)
        if self.config.preempt_type != "preempt/qos" or source is None:
            return
        table = {}
        for row in source() or []:
            preempt = row.get("preempt") or []
            if isinstance(preempt, str):
                preempt = [p for p in preempt.split(",") if p]
            table[row["name"]] = {"priority": int(row.get("priority") or 0), "preempt": list(preempt),
                                  "preempt_mode": row.get("preempt_mode") or "",
                                  "grace_time": int(row.get("grace_time") or 0)}
        if table != self.config.qos:
            self.set_qos_table(table)

    def config_entries(self):
        """``scontrol show config`` lines of this module."""
        return {
            "PreemptType": self.config.preempt_type,
            "PreemptMode": mode_text(self.config.mode, self.config.gang),
            "PreemptExemptTime": _hms(self.config.exempt_time),
            "SchedulerTimeSlice": f"{self.time_slice:g} sec",
        }

    def tier_of(self, job):
        return preemption.tier(job, self.config)

    # -- transitions ---------------------------------------------------------------------------
    def _suspend(self, job, kind, now, commands):
        job["state"] = "SUSPENDED"
        job["suspend_kind"] = kind
        job["suspend_time"] = job["suspend_changed"] = now
        job["pre_suspend_seconds"] = int(preemption.run_seconds(dict(job, state="RUNNING", suspend_time=None), now))
        if kind == "preempt":
            self._release_cpus(job)
        for name in job.get("nodes", []):
            commands.append((name, {"type": "suspend", "job_id": job["job_id"]}))

    def _resume(self, job, now, commands):
        paused = max(0.0, now - (job.get("suspend_time") or now))
        job["suspended_seconds"] = float(job.get("suspended_seconds") or 0) + paused
        for step in job.get("steps", []):  # sacct's step Elapsed leaves the suspension out too
            if step.get("state") == "RUNNING":
                step["suspended_seconds"] = float(step.get("suspended_seconds") or 0) + paused
        if job.get("end_time") is not None:
            job["end_time"] += paused
        job["state"] = "RUNNING"
        job["suspend_time"] = None
        job["suspend_changed"] = now
        job["gang_active_since"] = now
        job.pop("suspend_kind", None)
        if (job.get("preempt") or {}).get("mode") == "SUSPEND":
            job.pop("preempt", None)
        if job.pop("cpus_released", None):
            for name in job.get("nodes", []):
                node = self.cluster.nodes.get(name)
                if node is not None:
                    node.alloc_cpus += job["cpus_per_node"].get(name, 0)
        left = None if job.get("end_time") is None else job["end_time"] - now
        for name in job.get("nodes", []):
            commands.append((name, {"type": "resume", "job_id": job["job_id"], "seconds_left": left}))

    def _commit(self, jobs, commands, launches=()):
        """Journal the changed jobs, then (only then) tell the nodes: launches first, so that a
        job admitted for a later time slice is stopped after its launch, not before."""
        if jobs:
            unique = {j["job_id"]: j for j in jobs}
            with self.cluster.journal.transaction():
                self.cluster._save(*unique.values())
        for job in launches:
            if not job.get("interactive"):
                self.cluster._send_launch(job)
        ended = []
        for name, cmd in commands:
            if name is None:
                ended.append(cmd)
                continue
            node = self.cluster.nodes.get(name)
            if node is not None:
                node.push(cmd)
        for job_id in ended:  # interactive allocations: nothing runs a script to report the end
            self.cluster.job_ended(job_id, "CANCELLED", reason="None")

    # -- scontrol suspend / resume ------------------------------------------------------------
    def admin_action(self, job, action, caller):
        """``scontrol suspend|resume``: operators and administrators only, as in Slurm."""
        if not caller.admin:
            raise PermissionDenied("Access/permission denied")
        now = self.cluster.now()
        commands = []
        if action == "suspend":
            # Slurm's texts (slurm_errno): ESLURM_JOB_PENDING, ESLURM_JOB_NOT_RUNNING, ESLURM_ALREADY_DONE
            if job["state"] == "PENDING":
                raise Conflict("Job is pending execution")
            if job["state"] == "SUSPENDED":
                raise Conflict("Job is not running")
            if job["state"] != "RUNNING":
                raise Conflict("Job/step already completing or completed")
            self._suspend(job, "admin", now, commands)
        else:
            if job["state"] != "SUSPENDED":
                raise Conflict("Job is not suspended" if job["state"] in ("RUNNING", "PENDING")
                               else "Job/step already completing or completed")
            self._resume(job, now, commands)
        self._commit([job], commands)
        self.cluster.request_schedule()

    # -- the scheduler's hooks ----------------------------------------------------------------
    def before_pass(self, now):
        """Resume jobs that SUSPEND preemption stopped, once their preemptor is gone and their
        CPUs are free: before the pending jobs are looked at, so those cannot take the CPUs."""
        if not self.config.enabled:
            return
        suspended = [j for j in self.cluster.jobs.values()
                     if j["state"] == "SUSPENDED" and j.get("suspend_kind") == "preempt"]
        if not suspended:
            return
        jobs = self.cluster.jobs

        def gone(job_id):
            j = jobs.get(job_id)
            return j is None or j["state"] in FINAL_STATES

        views = {n: r.view() for n, r in self.cluster.nodes.items()}
        changed, commands = [], []
        for job_id in preemption.resumable(suspended, views, gone, self.config):
            job = jobs[job_id]
            self._resume(job, now, commands)
            changed.append(job)
            log.info("job %s: resumed (its preemptor is gone)", job_id)
        self._commit(changed, commands)

    def after_pass(self, now):
        """After the main pass: admit jobs into oversubscribed partitions, preempt for the
        pending jobs that still cannot start, and settle the gang ring."""
        changed, commands, launches = [], [], []
        if self.gang_parts:
            self._admit_oversubscribed(now, changed, launches)
        if self.config.enabled and self.cluster.pending:
            self._preempt(now, changed, commands)
        if self.config.gang and self.gang_parts:
            self._settle_ring(now, False, changed, commands)
        self._commit(changed, commands, launches)

    def tick(self, now):
        """Once a second: the QOS table, GraceTime deadlines, a gang rotation every SchedulerTimeSlice."""
        self.refresh_qos()
        changed, commands = [], []
        for job in list(self.cluster.jobs.values()) if self.config.enabled else ():
            pre = job.get("preempt")
            if pre and pre.get("deadline") is not None and now >= pre["deadline"] \
                    and job["state"] in ("RUNNING", "SUSPENDED"):
                self._finish_preempt(job, commands)
                changed.append(job)
        if self.config.gang and self.gang_parts and gang.due(self.last_rotation, now, self.time_slice):
            self.last_rotation = now
            self._settle_ring(now, True, changed, commands)
        self._commit(changed, commands)

    # -- oversubscribed partitions ------------------------------------------------------------
    def pending_for_main_pass(self, pending):
        """The pending jobs the main policy schedules: all but those of FORCE:N partitions
        (admitted by :meth:`_admit_oversubscribed`) and REQUEUE victims whose preemptor has
        not started yet (they keep reason BeginTime: were they to start first, on the very
        resources they were preempted from, they would be preempted again, and again)."""
        if self.gang_parts:
            pending = [j for j in pending if j["partition"] not in self.gang_parts]
        if self.config.enabled:
            jobs = self.cluster.jobs
            out = []
            for j in pending:
                by = j.get("requeued_for")
                if by is not None:
                    preemptor = jobs.get(by)
                    if preemptor is not None and preemptor["state"] == "PENDING":
                        continue
                    j.pop("requeued_for", None)  # a gate, not a fact: re-derived after a restart
                out.append(j)
            pending = out
        return pending

    @staticmethod
    def running_for_planner(running):
        """The backfill planner's running jobs: a job suspended by preemption gave its CPUs to
        its preemptor already, so its end gives back only its memory and GPUs."""
        return [dict(j, cpus_per_node={}) if j.get("cpus_released") else j for j in running]

    def _admit_oversubscribed(self, now, changed, launches):
        cluster = self.cluster
        from ..sched import reservations as resv_policy
        from .dependencies import dependency_state
        windows = None
        for name, factor in self.gang_parts.items():
            pending = [j for j in cluster.pending.values() if j["partition"] == name and not j.get("held")
                       and not j.get("reservation")]
            if pending and windows is None and getattr(cluster, "reservations", None) is not None:
                # reserved nodes are blocked time windows here too (sched/reservations.py)
                windows = resv_policy.blocked_windows(cluster.reservations.items.values(), now,
                                                      now + resv_policy.WINDOW_HORIZON)
            if not pending:
                continue
            part = cluster.partitions[name]
            views = gang.admission_views({n: cluster.nodes[n].view() for n in part["nodes"]}, factor)
            copies = [dict(j, exclusive=False) for j in pending]  # FORCE: --exclusive does not apply
            state = fifo.SchedState(
                nodes=views, partitions={name: part}, pending=copies,
                running_array_tasks=dict(cluster.running_array_tasks),
                dependency_state=lambda job: dependency_state(job, cluster._lookup_any, cluster._jobs_of_user),
                expand_hostlist=hostlist.expand, reserved_windows=windows or None)
            for d in fifo.schedule(state, now):
                job = cluster.jobs.get(d.job_id)
                if job is None or job["state"] != "PENDING":
                    continue
                if isinstance(d, fifo.SetReason):
                    job["reason"] = d.reason
                    changed.append(job)
                else:
                    started = cluster._start(job, d.allocation, now)
                    started[-1]["gang_active_since"] = now
                    changed.extend(started)
                    launches.append(started[-1])

    def is_ring(self, job):
        """Time-sliced: a job of a FORCE partition, running or waiting for its turn (a job on
        its way out through preemption no longer takes turns)."""
        return job["partition"] in self.gang_parts and not job.get("preempt") and (
            job["state"] == "RUNNING" or (job["state"] == "SUSPENDED" and job.get("suspend_kind") == "gang"))

    def _settle_ring(self, now, rotate, changed, commands):
        ring, capacity = [], {n: r.cpus for n, r in self.cluster.nodes.items()}
        for job in self.cluster.jobs.values():
            if job["state"] not in ("RUNNING", "COMPLETING", "SUSPENDED"):
                continue
            if self.is_ring(job):
                ring.append(job)
            elif job["state"] in ("RUNNING", "COMPLETING"):
                for name in job.get("nodes", []):
                    if name in capacity:
                        capacity[name] -= job["cpus_per_node"].get(name, 0)
        if not ring:
            return
        tiers = {j["job_id"]: self.tier_of(j) for j in ring}
        for d in gang.timeslice(ring, capacity, tiers, rotate=rotate):
            job = self.cluster.jobs[d.job_id]
            if isinstance(d, gang.Suspend):
                self._suspend(job, "gang", now, commands)
            else:
                self._resume(job, now, commands)
            changed.append(job)

    # -- preemption ----------------------------------------------------------------------------
    def _preempt(self, now, changed, commands):
        cluster = self.cluster
        pending = [j for j in cluster.pending.values()
                   if j.get("reason") in ("Resources", "Priority", "None") and not j.get("held")]
        if not pending:
            return
        running = [j for j in cluster.jobs.values() if j["state"] in ("RUNNING", "COMPLETING", "SUSPENDED")]
        state = preemption.PreemptionState(
            nodes={n: r.view() for n, r in cluster.nodes.items()}, partitions=cluster.partitions,
            pending=pending, running=running, config=self.config, expand_hostlist=hostlist.expand)
        for d in preemption.decide(state, now):
            job = cluster.jobs.get(d.job_id)
            if job is None:
                continue
            log.info("job %s: preempted (%s) by job %s", d.job_id, d.mode, d.preemptor_id)
            job["preempt"] = {"mode": d.mode, "by": d.preemptor_id, "time": now, "deadline": None}
            if d.mode == "SUSPEND":
                if job["state"] == "SUSPENDED":  # waiting for its gang turn: now for its preemptor
                    self._release_cpus(job)
                    job["suspend_kind"] = "preempt"
                else:
                    self._suspend(job, "preempt", now, commands)
            elif d.grace_time > 0 and job["state"] == "RUNNING":
                # GraceTime: SIGTERM now, the end at the deadline (Slurm moves the end time there)
                job["preempt"]["deadline"] = now + d.grace_time
                job["end_time"] = now + d.grace_time
                if not job.get("interactive"):
                    commands.append((job["batch_host"], {"type": "signal", "job_id": job["job_id"],
                                                         "signal": "TERM", "full": True}))
                for step in job.get("steps", []):
                    if step.get("step_id") != "batch" and step.get("state") == "RUNNING":
                        for name in step["nodes"]:
                            commands.append((name, {"type": "kill_step", "job_id": job["job_id"],
                                                    "step_id": step["step_id"], "signal": "TERM"}))
            else:
                self._finish_preempt(job, commands)
            changed.append(job)

    def _release_cpus(self, job):
        if job.get("cpus_released"):
            return
        for name in job.get("nodes", []):
            node = self.cluster.nodes.get(name)
            if node is not None:
                node.alloc_cpus = max(0, node.alloc_cpus - job["cpus_per_node"].get(name, 0))
        job["cpus_released"] = True

    def _finish_preempt(self, job, commands):
        """End a CANCEL/REQUEUE victim now (its grace is over, or it had none)."""
        job["preempt"]["deadline"] = None
        if job.get("interactive"):
            commands.append((None, job["job_id"]))
            return
        job["state"] = "COMPLETING"
        commands.append((job["batch_host"], {"type": "cancel", "job_id": job["job_id"],
                                             "requeue": job["preempt"]["mode"] == "REQUEUE"}))

    # -- job end -------------------------------------------------------------------------------
    def end_outcome(self, job, state, requeue):
        """How a job that ends while being preempted is recorded: ``(state, requeue)``.

        A CANCEL victim ends PREEMPTED; a REQUEUE victim goes back to the queue
        (``requeue='preempt'``). A victim that finished its work during its
        GraceTime (exit 0) stays COMPLETED.
        """
        pre = job.get("preempt")
        if not pre or pre.get("mode") not in ("CANCEL", "REQUEUE") or requeue or state == "COMPLETED" \
                or job.get("_cancelled_by") is not None:  # scancel'ed during its GraceTime: CANCELLED
            return state, requeue
        if pre["mode"] == "REQUEUE" and not job.get("interactive"):
            return state, "preempt"
        return "PREEMPTED", requeue

    @staticmethod
    def clear_run_state(job):
        """Forget the run's suspension and preemption state (the job goes back to PENDING);
        a REQUEUE victim remembers its preemptor until that one has started."""
        if (job.get("preempt") or {}).get("mode") == "REQUEUE":
            job["requeued_for"] = job["preempt"].get("by")
        for key in ("preempt", "suspend_kind", "suspend_time", "suspended_seconds", "pre_suspend_seconds",
                    "cpus_released", "gang_active_since"):
            job.pop(key, None)


def _hms(seconds):
    seconds = int(seconds or 0)
    return "%02d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)
