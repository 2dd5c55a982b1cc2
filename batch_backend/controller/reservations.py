"""Advance reservations on the controller: validation, storage, and their life cycle.

``scontrol create|update|delete reservation`` land here (through the API);
every accepted change is journaled before it is acknowledged. The calendar
and scheduling rules are pure functions in :mod:`batch_backend.sched.reservations`;
this module applies them to the live cluster:

* create/update check what Slurm's slurmctld checks, with Slurm's error texts
  (``Requested nodes are busy``, ``Requested reservation overlaps with another
  reservation``, ``Access/permission denied``...), and change nothing on error;
* :meth:`ReservationBook.tick` (once a second) rolls recurring reservations
  forward, ends jobs still running in a reservation whose window is over
  (ResvOverRun minutes later, default 0: at once, as slurmctld does; their
  state is TIMEOUT), deletes one-off reservations once they end, holds pending
  jobs whose reservation is gone (reason ``ReservationDeleted``, as Slurm does
  without NO_HOLD_JOBS_AFTER_END), and purges PURGE_COMP reservations left idle.
"""

import grp
import logging
import math
import os
import pwd

from .. import hostlist
from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from ..sched import reservations as R

log = logging.getLogger("batchhub.controller")

#: Slurm's MAX_RESV_DELAY: a start time this far in the past is still "now"
MAX_RESV_DELAY = 600
YEAR = 365 * 86400
#: fields a create/update request may carry
SPEC_FIELDS = {"name", "start_time", "end_time", "duration", "duration_delta", "nodes", "node_cnt", "core_cnt",
               "partition", "features", "users", "groups", "accounts", "flags", "comment", "licenses"}


def _names(value, what):
    """A list of names from a list or a comma string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"field {what!r} must be a list of names or a comma-separated string")
    return [v.strip() for v in value if v.strip()]


def _apply_list(current, change):
    """Slurm's list update: ``+a,-b`` edits the current list; plain names replace it."""
    if change is None:
        return current
    if change and all(c[:1] in "+-" for c in change):
        out = list(current or [])
        for c in change:
            name = c[1:]
            if c[0] == "+" and name not in out:
                out.append(name)
            elif c[0] == "-" and name in out:
                out.remove(name)
        return out
    return change


class ReservationBook:
    """The cluster's reservations by name, kept in step with the journal."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.items = {}
        self.suffix = 0
        over = str(cluster._opt("ResvOverRun", 0)).strip().upper()
        self.overrun = None if over in ("UNLIMITED", "INFINITE") else int(over or 0)

    # -- storage ----------------------------------------------------------------------------
    def recover(self):
        self.items = self.cluster.journal.load_reservations()
        self.suffix = self.cluster.journal.reservation_suffix()
        now = self.cluster.now()
        for resv in self.items.values():  # PURGE_COMP idle time counts from the restart
            resv["last_job"] = max(resv.get("last_job") or 0, now)

    def _save(self, resv):
        self.cluster.journal.save_reservation(resv)

    def list(self):
        return sorted(self.items.values(), key=lambda r: (r["start_time"], r["name"]))

    def get(self, name):
        resv = self.items.get(name)
        if resv is None:
            raise NotFound("Requested reservation is invalid")
        return resv

    # -- validation helpers -------------------------------------------------------------------
    def _check_admin(self, caller):
        if not caller.admin:
            raise PermissionDenied("Access/permission denied")

    @staticmethod
    def _check_fields(spec, allowed):
        unknown = set(spec) - allowed
        if unknown:
            raise InvalidRequest(f"unknown field {sorted(unknown)[0]!r}")
        for key in ("name", "nodes", "partition", "features", "comment", "licenses"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise InvalidRequest(f"field {key!r} must be a string")

    def _resolve_nodes(self, spec_nodes, partition):
        text = spec_nodes.strip()
        if text.upper() == "ALL":
            return list(partition["nodes"]) if partition else list(self.cluster.nodes), True
        try:
            names = hostlist.expand(text)
        except ValueError:
            raise InvalidRequest("Invalid node name specified") from None
        if not names or any(n not in self.cluster.nodes for n in names):
            raise InvalidRequest("Invalid node name specified")
        return list(dict.fromkeys(names)), False

    def _busy(self, nodes, start, name=None):
        """Running jobs that would still run at ``start`` on ``nodes`` (outside reservation ``name``)."""
        wanted = set(nodes)
        for job in self.cluster.jobs.values():
            if job["state"] in ("RUNNING", "COMPLETING", "SUSPENDED") and wanted & set(job.get("nodes") or ()) \
                    and (job.get("end_time") is None or job["end_time"] > start) \
                    and (name is None or job.get("reservation") != name):
                return True
        return False

    def _pick_nodes(self, resv, partition, node_cnt, core_cnt, features):
        """NodeCnt/CoreCnt: the first suitable nodes of the partition (idle at the start unless IGNORE_JOBS)."""
        from ..sched.placement import features_match
        flags = set(resv["flags"])
        others = [r for r in self.items.values() if r["name"] != resv["name"]]
        candidates = []
        for n in partition["nodes"]:
            node = self.cluster.nodes[n]
            if node.admin_state or node.resource_problem:
                continue
            if features and not features_match(features, node.features):
                continue
            if not flags & {"MAINT", "OVERLAP"} and R.overlapping(dict(resv, nodes=[n]), others):
                continue
            candidates.append(n)
        total = len(candidates)
        if "IGNORE_JOBS" not in flags:
            candidates = [n for n in candidates if not self._busy([n], resv["start_time"], resv["name"])]
        chosen, cores = [], 0
        for n in candidates:
            if (node_cnt and len(chosen) >= node_cnt) or (core_cnt and not node_cnt and cores >= core_cnt):
                break
            chosen.append(n)
            cores += self.cluster.nodes[n].cpus
        if (node_cnt and len(chosen) < node_cnt) or (core_cnt and cores < core_cnt):
            if (node_cnt or 0) > len(partition["nodes"]):
                raise InvalidRequest("Requested node configuration is not available")
            raise Conflict("Requested nodes are busy", total=total)
        return chosen

    def _check_identities(self, resv):
        if os.getuid() == 0:
            for u in resv["users"]:
                try:
                    pwd.getpwnam(u.lstrip("-"))
                except (KeyError, ValueError):
                    raise InvalidRequest("Invalid user id") from None
        for g in resv["groups"]:
            try:
                grp.getgrnam(g.lstrip("-"))
            except (KeyError, ValueError):
                raise InvalidRequest("Invalid group id") from None
        for entries in (resv["users"], resv["groups"], resv["accounts"]):
            if entries and len({e.startswith("-") for e in entries}) > 1:
                raise InvalidRequest("Requested reservation is invalid")

    def _times(self, spec, now, current=None):
        start = spec.get("start_time", current["start_time"] if current else None)
        if start is None:
            raise InvalidRequest("A start time must be given.  No reservation created.")
        if not _finite(start):
            raise InvalidRequest("Invalid time specified")
        end = spec.get("end_time")
        duration = spec.get("duration")
        if end is not None and not _finite(end):
            raise InvalidRequest("Invalid time specified")
        if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool) or duration < -1
                                     or duration > 100 * YEAR // 60):
            raise InvalidRequest("Invalid time specified")
        if current is None and start < now - MAX_RESV_DELAY:
            raise InvalidRequest("Invalid time specified")
        if current is None:
            start = max(start, now)
        if end is None and duration is None:
            if current is None:
                raise InvalidRequest("An end time or duration must be given.  No reservation created.")
            end = current["end_time"] if "start_time" not in spec else start + (current["end_time"] - current["start_time"])
        elif end is None:
            end = start + (YEAR if duration == -1 else duration * 60)
        elif duration is not None and abs(start + duration * 60 - end) > 1:
            raise InvalidRequest("StartTime + Duration does not equal EndTime.  No reservation created.")
        delta = spec.get("duration_delta")
        if delta is not None:
            if not isinstance(delta, int) or isinstance(delta, bool):
                raise InvalidRequest("Invalid time specified")
            end += delta * 60
        if end <= start:
            raise InvalidRequest("Start time cannot be after end time.  No reservation created."
                                 if current is None else "Invalid time specified")
        return float(start), float(end)

    # -- create / update / delete ---------------------------------------------------------------
    def create(self, spec, caller):
        self._check_admin(caller)
        self._check_fields(spec, SPEC_FIELDS)
        now = self.cluster.now()
        start, end = self._times(spec, now)
        flags, purge = self._flags(spec.get("flags"), set())
        users = _names(spec.get("users"), "users") or []
        groups = _names(spec.get("groups"), "groups") or []
        accounts = _names(spec.get("accounts"), "accounts") or []
        if not (users or groups or accounts):
            raise InvalidRequest("Either Users/Groups and/or Accounts must be specified.  No reservation created.")
        if users and groups:
            raise InvalidRequest("Users and Groups are mutually exclusive.  You can have one or the other, "
                                 "but not both.  No reservation created.")
        pname = spec.get("partition") or None
        if pname is not None and pname not in self.cluster.partitions:
            raise InvalidRequest("Invalid partition name specified")
        name = spec.get("name") or None
        if name is not None and (not isinstance(name, str) or not name.strip() or any(c in name for c in " ,=/\n")):
            raise InvalidRequest("Requested reservation is invalid")
        if name in self.items:
            raise Conflict("Duplicate reservation name")
        node_cnt, core_cnt = self._count(spec.get("node_cnt"), "node"), self._count(spec.get("core_cnt"), "core")
        spec_nodes = spec.get("nodes") or ""
        if not isinstance(spec_nodes, str):
            raise InvalidRequest("Invalid node name specified")
        if not spec_nodes and not node_cnt and not core_cnt:
            if pname is None:
                raise InvalidRequest("CoreCnt, Nodes, NodeCnt, BurstBuffer, Licenses or Watts must be specified.  "
                                     "No reservation created.")
            spec_nodes = "ALL"
        resv = {
            "name": name or "", "start_time": start, "end_time": end, "nodes": [], "nodelist": "",
            "node_cnt": 0, "core_cnt": 0, "features": spec.get("features") or "", "partition": pname or "",
            "flags": sorted(flags), "purge_comp_time": purge, "users": users, "groups": groups,
            "accounts": accounts, "licenses": spec.get("licenses") or "", "comment": spec.get("comment") or "",
            "created": now, "last_job": now,
        }
        self._check_identities(resv)
        self._place(resv, spec_nodes, node_cnt, core_cnt)
        if not name:
            resv["name"], suffix = self._generate_name(resv)
        else:
            suffix = None
        self._store(resv, suffix)
        log.info("reservation %s created by %s: %s %s-%s", resv["name"], caller.user, resv["nodelist"],
                 resv["start_time"], resv["end_time"])
        self.cluster.request_schedule()
        return resv

    def _count(self, value, what):
        if value in (None, 0):
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidRequest(f"Invalid {what} count {value}")
        return value

    def _flags(self, value, current):
        flags, purge = set(current), None
        if value in (None, "", []):
            return flags, purge
        text = ",".join(value) if isinstance(value, list) else str(value)
        try:
            add, remove, purge = R.parse_flags(text)
        except R.FlagError as e:
            raise InvalidRequest(str(e)) from None
        if len(((flags | add) - remove) & set(R.RECURRING)) > 1:
            raise InvalidRequest("Requested reservation is invalid")
        return (flags | add) - remove, purge

    def _place(self, resv, spec_nodes, node_cnt, core_cnt):
        """Choose the nodes (explicit list, ALL, or a count) and check overlap and busy nodes."""
        flags = set(resv["flags"])
        pname = resv["partition"] or None
        partition = self.cluster.partitions.get(pname) if pname else None
        others = [r for r in self.items.values() if r["name"] != resv["name"]]
        if spec_nodes:
            nodes, all_nodes = self._resolve_nodes(spec_nodes, partition)
            flags.add("ALL_NODES" if all_nodes else "SPEC_NODES")
            if all_nodes and partition:
                flags.add("PART_NODES")
            resv["nodes"] = nodes
            clash = R.overlapping(resv, others)
            if clash:
                raise Conflict("Requested reservation overlaps with another reservation", reservation=clash)
            if "IGNORE_JOBS" not in flags and self._busy(nodes, resv["start_time"], resv["name"] or None):
                raise Conflict("Requested nodes are busy")
        else:
            if partition is None:
                pname = self.cluster.default_partition
                partition = self.cluster.partitions.get(pname)
                if partition is None:
                    raise InvalidRequest("Invalid partition name specified")
            resv["nodes"] = self._pick_nodes(resv, partition, node_cnt, core_cnt, resv["features"])
            resv["partition"] = pname
        resv["flags"] = sorted(flags)
        resv["nodelist"] = hostlist.compress(resv["nodes"])
        resv["node_cnt"] = len(resv["nodes"])
        resv["core_cnt"] = sum(self.cluster.nodes[n].cpus for n in resv["nodes"])

    def _generate_name(self, resv):
        """Slurm's automatic name: first account (else user, else group), ``_`` and a counter."""
        key = (resv["accounts"] or resv["users"] or resv["groups"])[0].lstrip("-")
        suffix = self.suffix
        while True:
            suffix = 1 if suffix >= 9999 else suffix + 1
            name = f"{key}_{suffix}"
            if name not in self.items:
                return name, suffix

    def _store(self, resv, suffix=None):
        with self.cluster.journal.transaction():
            self._save(resv)
            if suffix is not None:
                self.cluster.journal.set_reservation_suffix(suffix)
        if suffix is not None:
            self.suffix = suffix
        self.items[resv["name"]] = resv

    def update(self, name, spec, caller):
        self._check_admin(caller)
        self._check_fields(spec, SPEC_FIELDS - {"name"})
        current = self.get(name)
        now = self.cluster.now()
        resv = dict(current, flags=list(current["flags"]), nodes=list(current["nodes"]))
        start, end = self._times(spec, now, current)
        if "start_time" in spec and start < now - MAX_RESV_DELAY:
            raise InvalidRequest("Invalid time specified")
        resv["start_time"], resv["end_time"] = start, end
        flags, purge = self._flags(spec.get("flags"), set(current["flags"]))
        resv["flags"] = sorted(flags)
        if purge is not None:
            resv["purge_comp_time"] = purge
        for key in ("users", "groups", "accounts"):
            change = _names(spec.get(key), key)
            resv[key] = _apply_list(current[key], change)
        if resv["users"] and resv["groups"]:
            raise InvalidRequest("Users and Groups are mutually exclusive.  You can have one or the other, "
                                 "but not both.")
        if not (resv["users"] or resv["groups"] or resv["accounts"]):
            raise InvalidRequest("Requested reservation is invalid")
        self._check_identities(resv)
        for key in ("features", "comment", "licenses"):
            if key in spec:
                resv[key] = spec[key] or ""
        if "partition" in spec:
            if spec["partition"] and spec["partition"] not in self.cluster.partitions:
                raise InvalidRequest("Invalid partition name specified")
            resv["partition"] = spec["partition"] or ""
        node_cnt, core_cnt = self._count(spec.get("node_cnt"), "node"), self._count(spec.get("core_cnt"), "core")
        if spec.get("nodes") or node_cnt or core_cnt:
            resv["flags"] = [f for f in resv["flags"] if f not in ("SPEC_NODES", "ALL_NODES", "PART_NODES")]
            self._place(resv, spec.get("nodes") or "", node_cnt, core_cnt)
        else:
            clash = R.overlapping(resv, [r for r in self.items.values() if r["name"] != name])
            if clash:
                raise Conflict("Requested reservation overlaps with another reservation", reservation=clash)
        self._store(resv)
        self._retime_running(resv)
        log.info("reservation %s updated by %s", name, caller.user)
        self.cluster.request_schedule()
        return resv

    def delete(self, name, caller):
        self._check_admin(caller)
        resv = self.get(name)
        if any(j.get("reservation") == name and j["state"] in ("RUNNING", "COMPLETING", "SUSPENDED")
               for j in self.cluster.jobs.values()):
            raise Conflict("Requested reservation is in use")
        self._remove(resv)
        log.info("reservation %s deleted by %s", name, caller.user)

    def _remove(self, resv):
        """Forget ``resv``; its pending jobs are held (Slurm: reason ReservationDeleted)."""
        held = []
        for job in self.cluster.pending.values():
            if job.get("reservation") == resv["name"]:
                job["held"] = job.get("held") or "resv"
                job["reason"] = "ReservationDeleted"
                job["reservation"] = ""
                job["start_time"], job["start_estimated"], job["sched_nodes"] = None, False, ""
                held.append(job)
        with self.cluster.journal.transaction():
            self.cluster.journal.delete_reservation(resv["name"])
            if held:
                self.cluster._save(*held)
        self.items.pop(resv["name"], None)
        self.cluster.request_schedule()

    # -- jobs -----------------------------------------------------------------------------------
    def submission_defaults(self, sub):
        """A job asking for a reservation without a partition gets the reservation's (as in Slurm)."""
        resv = self.items.get(sub.get("reservation") or "")
        if resv is not None and not sub.get("partition") and resv.get("partition"):
            return dict(sub, partition=resv["partition"])
        return sub

    def check_job(self, job, account=None):
        """Submit-time check of ``--reservation``: it exists and admits the job's user, group, account."""
        name = job.get("reservation")
        if not name:
            return
        resv = self.items.get(name)
        if resv is None:
            raise InvalidRequest("Requested reservation is invalid")
        if not R.may_use(resv, job["user"], user_groups(job["user"], job["gid"]), account or job.get("account")):
            raise PermissionDenied("Access denied to requested reservation")

    def cap_end(self, job):
        """A job started in a reservation ends with it (plus ResvOverRun): its expected end, for planning."""
        resv = self.items.get(job.get("reservation") or "")
        if resv is None or self.overrun is None or "FLEX" in resv["flags"]:
            return  # FLEX: jobs may end after the reservation
        cap = R.end_of_window(resv, self.overrun)
        if job.get("end_time") is None or job["end_time"] > cap:
            job["end_time"] = cap

    def _retime_running(self, resv):
        """A changed window moves the expected end of the jobs running in it (journaled)."""
        changed = []
        for job in self.cluster.jobs.values():
            if job.get("reservation") == resv["name"] and job["state"] == "RUNNING":
                limit = job.get("time_limit")
                before = job.get("end_time")
                job["end_time"] = None if limit is None else job["start_time"] + limit * 60
                self.cap_end(job)
                if job["end_time"] != before:
                    job.pop("_resv_ended", None)
                    changed.append(job)
        if changed:
            with self.cluster.journal.transaction():
                self.cluster._save(*changed)

    # -- time passing -----------------------------------------------------------------------------
    def tick(self):
        """Roll, end, purge; returns True when scheduling may see something new."""
        now = self.cluster.now()
        changed = False
        self._end_running_jobs(now)
        for resv in list(self.items.values()):
            if R.is_active(resv, now) and not resv.get("_seen_active"):
                resv["_seen_active"] = True
                changed = True
            if now >= resv["end_time"]:
                start, end = R.roll_forward(resv, now)
                if end > now:
                    resv.update(start_time=start, end_time=end, _seen_active=False)
                    self._store(resv)
                    changed = True
                elif not self._running_in(resv["name"]):
                    log.info("reservation %s ended", resv["name"])
                    self._remove(resv)
                    changed = True
                continue
            if "PURGE_COMP" in resv["flags"] and R.is_active(resv, now):
                if self._running_in(resv["name"]) or self._pending_in(resv["name"]):
                    resv["last_job"] = now
                elif now - max(resv.get("last_job") or 0, resv["start_time"]) >= (resv.get("purge_comp_time") or 300):
                    # Slurm: "purge the reservation if it is ever idle for <time> (no jobs associated with it)"
                    log.info("reservation %s purged: idle for its PURGE_COMP time", resv["name"])
                    self._remove(resv)
                    changed = True
        return changed

    def _running_in(self, name):
        return any(j.get("reservation") == name and j["state"] in ("RUNNING", "COMPLETING", "SUSPENDED")
                   for j in self.cluster.jobs.values())

    def _pending_in(self, name):
        return any(j.get("reservation") == name for j in self.cluster.pending.values())

    def extension_conflict(self, job, new_end):
        """Why a running ``job`` may not run on until ``new_end`` (epoch), or None.

        Its own reservation ends it at the window's end (plus ResvOverRun, unless FLEX);
        any other reservation with a window on its nodes between its current end and
        ``new_end`` is a promise to someone else (walltime extension, issue #6).
        """
        own = self.items.get(job.get("reservation") or "")
        if own is not None and self.overrun is not None and "FLEX" not in own["flags"]:
            cap = R.end_of_window(own, self.overrun)
            if new_end > cap:
                return f"it runs in reservation {own['name']}, which ends at {_clock(cap)}"
        current_end = job["start_time"] + (job.get("time_limit") or 0) * 60
        nodes = set(job.get("nodes") or ())
        clashes = []
        for resv in self.items.values():
            if resv is own or not nodes & set(resv["nodes"]):
                continue
            for start, end in R.occurrences(resv, current_end, new_end, limit=64):
                if start < new_end and end > current_end:
                    clashes.append((start, resv["name"], sorted(nodes & set(resv["nodes"]))))
                    break
        if clashes:
            start, name, on = min(clashes)
            return (f"node{'s' if len(on) > 1 else ''} {hostlist.compress(on)} "
                    f"{'are' if len(on) > 1 else 'is'} reserved for {name} from {_clock(start)}")
        return None

    def job_started(self, job):
        resv = self.items.get(job.get("reservation") or "")
        if resv is not None:
            resv["last_job"] = self.cluster.now()
            self.cap_end(job)

    def job_ended(self, job):
        resv = self.items.get(job.get("reservation") or "")
        if resv is not None:
            resv["last_job"] = self.cluster.now()

    def _end_running_jobs(self, now):
        """Jobs past the end of their reservation's window (+ResvOverRun) end, state TIMEOUT.

        Their expected end was capped when they started (:meth:`cap_end`), so this
        holds after a recurring reservation has rolled on to its next window too.
        """
        if self.overrun is None:
            return
        for job in list(self.cluster.jobs.values()):
            if not job.get("reservation") or job["state"] != "RUNNING" or job.get("_resv_ended") \
                    or job.get("end_time") is None or job["end_time"] > now:
                continue
            job["_resv_ended"] = True
            log.info("job %s: the window of reservation %s is over, ending the job", job["job_id"],
                     job["reservation"])
            if job.get("interactive"):
                self.cluster.job_ended(job["job_id"], "TIMEOUT", reason="TimeLimit")
            else:
                node = self.cluster.nodes.get(job["batch_host"])
                if node is not None:
                    node.push({"type": "time_limit", "job_id": job["job_id"], "seconds_left": 0.001})

    # -- what the API shows -------------------------------------------------------------------------
    def public(self, resv, now=None):
        now = self.cluster.now() if now is None else now
        out = {k: v for k, v in resv.items() if not k.startswith("_")}
        out["state"] = "ACTIVE" if resv["start_time"] <= now <= resv["end_time"] else "INACTIVE"
        out["flags_text"] = R.flags_string(resv)
        out["tres"] = f"cpu={resv['core_cnt']}"
        return out

    def node_flags(self, now=None):
        """``{node: "RESERVED" | "MAINT"}`` for nodes in an active reservation (sinfo resv/maint)."""
        now = self.cluster.now() if now is None else now
        out = {}
        for resv in self.items.values():
            if R.is_active(resv, now):
                flag = "MAINT" if "MAINT" in resv["flags"] else "RESERVED"
                for n in resv["nodes"]:
                    if out.get(n) != "MAINT":
                        out[n] = flag
        return out


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _clock(epoch):
    """A time as scontrol prints it (local time)."""
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def user_groups(user, gid):
    """Group names of ``user``: primary and supplementary."""
    from .identity import group_name
    try:
        gids = os.getgrouplist(user, gid)
    except (OSError, KeyError, TypeError):
        gids = [gid]
    return {group_name(g) for g in gids}
