"""The association store: clusters, accounts, users, associations and QOS (slurmdbd's job).

Why in the controller: a job's account and QOS are checked at submit, its
limits in every scheduling pass, so the records live next to the jobs, in the
same SQLite journal, and every accepted change is committed before the caller
is answered (a ``kill -9`` loses nothing acknowledged).

The model is Slurm's. An *association* is (account, user, partition): an
account's own row has no user and hangs below its parent account's row, a
user's row hangs below its account's. Shares, limits and the allowed QOS list
sit on associations; unset ``Max*`` limits and QOS lists are inherited from the
nearest ancestor, ``Grp*`` limits bound everything below the row that sets
them. Seeded as Slurm seeds a new cluster: the cluster (ClusterName), account
``root`` with user ``root`` (AdminLevel=Administrator) and QOS ``normal``.

Enforcement follows ``AccountingStorageEnforce`` (associations, limits, qos,
safe; limits/qos/safe imply associations). Unset, which is the default, nothing
is enforced: jobs keep any account they name, and only defaults are filled in.
"""

import json

from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied

INVALID_ACCOUNT = "Invalid account or account/partition combination specified"
INVALID_QOS = "Invalid qos specification"
POLICY_VIOLATION = "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"
ADMIN_LEVELS = {"none": "None", "operator": "Operator", "admin": "Administrator",
                "administrator": "Administrator"}

#: limit fields of an association; None = unset (inherit / unlimited)
ASSOC_LIMITS = ("max_jobs", "max_submit", "max_wall", "max_tres_per_job", "grp_tres", "grp_jobs",
                "grp_submit", "grp_wall")
QOS_FIELDS = ("description", "priority", "max_jobs_pu", "max_submit_pu", "max_wall", "max_tres_pu",
              "max_tres_per_job", "grp_tres", "grp_jobs", "grp_submit", "preempt", "preempt_mode",
              "flags", "usage_factor", "grace_time")


def parse_enforce(text):
    """``AccountingStorageEnforce`` -> set of 'associations', 'limits', 'qos', 'safe' (with implications)."""
    flags = {f.strip().lower() for f in (text or "").split(",") if f.strip()}
    if flags & {"none", "no", "0"}:
        return set()
    if "all" in flags:
        flags |= {"associations", "limits", "qos", "safe"}
    if "safe" in flags:
        flags |= {"limits"}
    if flags & {"limits", "qos", "wckeys"}:
        flags |= {"associations"}
    return flags


def new_assoc(account, user="", partition="", parent=None):
    return {"account": account, "user": user, "partition": partition, "parent": parent, "shares": 1,
            "qos": [], "default_qos": None, "max_jobs": None, "max_submit": None, "max_wall": None,
            "max_tres_per_job": {}, "grp_tres": {}, "grp_jobs": None, "grp_submit": None, "grp_wall": None}


def new_qos(name):
    return {"name": name, "description": name, "priority": 0, "max_jobs_pu": None, "max_submit_pu": None,
            "max_wall": None, "max_tres_pu": {}, "max_tres_per_job": {}, "grp_tres": {}, "grp_jobs": None,
            "grp_submit": None, "preempt": [], "preempt_mode": "cluster", "flags": [], "usage_factor": 1.0,
            "grace_time": 0}


def _key(account, user="", partition=""):
    return (account, user or "", partition or "")


class AssociationStore:
    """The accounting records in memory, journaled on every change."""

    def __init__(self, journal, cluster_name, *, enforce=""):
        self.journal = journal
        self.cluster_name = cluster_name
        self.enforce = parse_enforce(enforce)
        self.clusters, self.accounts, self.users, self.assocs, self.qos = {}, {}, {}, {}, {}
        self.load()

    # -- persistence -------------------------------------------------------------------
    def load(self):
        tables = {"cluster": self.clusters, "account": self.accounts, "user": self.users, "qos": self.qos}
        rows = self.journal.load_acct_records()
        for kind, key, data in rows:
            if kind == "assoc":
                self.assocs[tuple(json.loads(key))] = data
            else:
                tables[kind][key] = data
        if not rows:
            self._seed()

    def _seed(self):
        with self.journal.transaction():
            self._put("cluster", {"name": self.cluster_name})
            self._put("account", {"name": "root", "description": "default root account", "organization": "root"})
            root = new_assoc("root")
            root["qos"], root["default_qos"] = ["normal"], None
            self._put("assoc", root)
            self._put("assoc", new_assoc("root", "root", parent=None))
            self._put("user", {"name": "root", "default_account": "root", "admin_level": "Administrator"})
            self._put("qos", new_qos("normal"))

    def _put(self, kind, rec):
        if kind == "assoc":
            key = _key(rec["account"], rec["user"], rec["partition"])
            self.assocs[key] = rec
            text_key = json.dumps(list(key))
        else:
            {"cluster": self.clusters, "account": self.accounts, "user": self.users, "qos": self.qos}[kind][
                rec["name"]] = rec
            text_key = rec["name"]
        self.journal.save_acct_record(kind, text_key, rec)

    def _drop(self, kind, key):
        if kind == "assoc":
            self.assocs.pop(key, None)
            text_key = json.dumps(list(key))
        else:
            {"cluster": self.clusters, "account": self.accounts, "user": self.users, "qos": self.qos}[kind].pop(key, None)
            text_key = key
        self.journal.drop_acct_record(kind, text_key)

    # -- who may change things -------------------------------------------------------------
    def has_admin_level(self, user):
        """AdminLevel Operator or Administrator (a Slurm administrator without being root)."""
        rec = self.users.get(user)
        return bool(rec) and rec.get("admin_level") in ("Administrator", "Operator")

    def is_admin(self, caller):
        return caller.admin or self.has_admin_level(caller.user)

    def _require_admin(self, caller):
        if not self.is_admin(caller):
            raise PermissionDenied("Access/permission denied")

    # -- inheritance ---------------------------------------------------------------------
    def parent_of(self, key):
        rec = self.assocs[key]
        if rec["user"]:
            return _key(rec["account"])
        return _key(rec["parent"]) if rec.get("parent") else None

    def chain(self, key):
        out = []
        while key is not None and key in self.assocs and key not in out:
            out.append(key)
            key = self.parent_of(key)
        return out

    def effective(self, key, name):
        for k in self.chain(key):
            value = self.assocs[k].get(name)
            if value not in (None, [], {}):
                return value
        return None

    def allowed_qos(self, key):
        return list(self.effective(key, "qos") or [])

    def default_qos(self, key):
        return self.effective(key, "default_qos")

    def find_assoc(self, account, user, partition=""):
        for key in (_key(account, user, partition), _key(account, user)):
            if key in self.assocs:
                return key
        return None

    def children(self, account):
        """Accounts whose parent is ``account``."""
        return sorted(k[0] for k, a in self.assocs.items() if not k[1] and a.get("parent") == account)

    # -- views for other modules ---------------------------------------------------------
    def tree(self):
        """The association tree for fairshare, as plain dicts, parents before children::

            [{"account": str, "parent": str | None, "user": str | None (None for account rows),
              "shares": int, "partition": str | None}, ...]

        ``parent`` is the enclosing account (for a user row: its own account;
        None only for ``root``). :meth:`qos_priorities` gives the QOS side:
        ``[{"name": str, "priority": int}, ...]``.
        """
        out = []

        def walk(account):
            row = self.assocs.get(_key(account))
            if row is None:
                return
            out.append({"account": account, "parent": row.get("parent"), "user": None,
                        "shares": row["shares"], "partition": None})
            for key in sorted(k for k in self.assocs if k[0] == account and k[1]):
                a = self.assocs[key]
                out.append({"account": account, "parent": account, "user": a["user"], "shares": a["shares"],
                            "partition": a["partition"] or None})
            for child in self.children(account):
                walk(child)
        walk("root")
        return out

    def qos_priorities(self):
        """``[{"name": str, "priority": int}, ...]`` for every QOS (multifactor's QOS factor)."""
        return [{"name": q["name"], "priority": q["priority"]} for q in sorted(self.qos.values(), key=lambda q: q["name"])]

    def limits_view(self):
        """(assocs, qos) in the shape :class:`batch_backend.sched.limits.Limits` takes."""
        assocs = {}
        for key, a in self.assocs.items():
            rec = {name: a.get(name) for name in ASSOC_LIMITS}
            rec["parent"] = self.parent_of(key)
            assocs[key] = rec
        return assocs, {n: dict(q) for n, q in self.qos.items()}

    def configured(self):
        """Anything beyond the seeded defaults?"""
        return len(self.accounts) > 1 or len(self.users) > 1 or len(self.qos) > 1

    def max_wall(self, job):
        """(minutes, "QOS x" / "account y") bounding ``job``'s time limit when limits are
        enforced: the QOS's MaxWall, else its association's (Slurm's precedence); (None, "")."""
        if "limits" not in self.enforce:
            return None, ""
        q = self.qos.get(job.get("qos") or "") or {}
        if q.get("max_wall") is not None:
            return q["max_wall"], f"QOS {job['qos']}"
        key = self.find_assoc(job.get("account") or "", job["user"], job.get("partition") or "") \
            if job.get("account") else None
        wall = self.effective(key, "max_wall") if key else None
        return (wall, f"account {job['account']}") if wall is not None else (None, "")

    # -- submit-time -----------------------------------------------------------------------
    def apply_to_job(self, job, sub, partition, active_jobs):
        """Fill in a new job's account and QOS and check them (Slurm's submit-time checks).

        ``active_jobs(user=None)``: the pending and running job dicts, all of them or one
        user's (for the submit limits; called only when limits are enforced and a submit
        limit is set; the per-user limits ask for the user's own jobs only, so a flooding
        user's refused submissions cost no scan of everyone's queue).
        Raises InvalidRequest with Slurm's texts; changes nothing else.
        """
        user = job["user"]
        urec = self.users.get(user)
        account = (sub.get("account") or "").lower() or (urec or {}).get("default_account") or ""
        key = self.find_assoc(account, user, job["partition"]) if account else None
        enforce = self.enforce
        if "associations" in enforce and key is None:
            raise InvalidRequest(INVALID_ACCOUNT)
        qos = (sub.get("qos") or "").lower()
        if not qos:
            allowed = self.allowed_qos(key) if key else []
            qos = (self.default_qos(key) if key else None) or (allowed[0] if len(allowed) == 1 else "normal")
        if "qos" in enforce:
            if qos not in self.qos:
                raise InvalidRequest(INVALID_QOS)
            if key is not None and qos not in self.allowed_qos(key):
                raise InvalidRequest(INVALID_QOS)
        job["account"], job["qos"] = account, qos
        self._check_partition_access(partition, account, qos)
        if "limits" in enforce:
            self._apply_limits(job, sub, key, active_jobs)

    @staticmethod
    def _check_partition_access(partition, account, qos):
        def listed(value, item):
            return item in {v.strip() for v in (value or "").split(",") if v.strip()}
        allow = partition.get("allow_accounts") or "ALL"
        if (allow.upper() != "ALL" and not listed(allow, account)) or listed(partition.get("deny_accounts"), account):
            raise InvalidRequest(INVALID_ACCOUNT)
        allow = partition.get("allow_qos") or "ALL"
        if (allow.upper() != "ALL" and not listed(allow, qos)) or listed(partition.get("deny_qos"), qos):
            raise InvalidRequest(INVALID_QOS)

    def _apply_limits(self, job, sub, key, active_jobs):
        from ..sched.limits import requested_tres
        q = self.qos.get(job["qos"]) or {}
        # Slurm's hierarchy: a limit the QOS sets replaces the association's limit of that kind
        wall = q.get("max_wall") if q.get("max_wall") is not None else (
            self.effective(key, "max_wall") if key else None)
        if sub.get("time_limit") is None and wall is not None:
            # Slurm: a job without a time limit gets its QOS/association MaxWall
            job["time_limit"] = wall if job["time_limit"] is None else min(job["time_limit"], wall)
        count = len(job.get("array_pending") or []) or 1

        def tasks(j):
            return len(j.get("array_pending") or []) or 1
        limit = self.effective(key, "max_submit") if key and q.get("max_submit_pu") is None else None
        grps = [(k, self.assocs[k]["grp_submit"]) for k in (self.chain(key) if key else [])
                if self.assocs[k].get("grp_submit") is not None]
        per_user = limit is not None or q.get("max_submit_pu") is not None
        mine = active_jobs(job["user"]) if per_user else []
        # the whole queue only for the group limits
        active_jobs = active_jobs() if grps or q.get("grp_submit") is not None else []
        if key is not None:
            used = sum(tasks(j) for j in mine if self.find_assoc(j["account"], j["user"], j["partition"]) == key)
            if limit is not None and used + count > limit:
                raise InvalidRequest(POLICY_VIOLATION)
            for k, grp in grps:
                below = set(self.subtree(k))
                used = sum(tasks(j) for j in active_jobs
                           if self.find_assoc(j["account"], j["user"], j["partition"]) in below)
                if used + count > grp:
                    raise InvalidRequest(POLICY_VIOLATION)
        if q.get("grp_submit") is not None:
            used = sum(tasks(j) for j in active_jobs if j.get("qos") == job["qos"])
            if used + count > q["grp_submit"]:
                raise InvalidRequest(POLICY_VIOLATION)
        if q.get("max_submit_pu") is not None:
            used = sum(tasks(j) for j in mine if j.get("qos") == job["qos"])
            if used + count > q["max_submit_pu"]:
                raise InvalidRequest(POLICY_VIOLATION)
        if "DenyOnLimit" in (q.get("flags") or []):
            asked = requested_tres(job)
            wall = q.get("max_wall")
            over_wall = wall is not None and (job["time_limit"] is None or job["time_limit"] > wall)
            over_tres = any(v is not None and asked.get(t, 0) > v
                            for lim in (q.get("max_tres_per_job") or {}, q.get("max_tres_pu") or {})
                            for t, v in lim.items())
            if over_wall or over_tres:
                raise InvalidRequest(POLICY_VIOLATION)

    def subtree(self, key):
        """Association keys at or below ``key``."""
        out = [key]
        rec = self.assocs.get(key)
        if rec is None or rec["user"]:
            return out
        account = rec["account"]
        out.extend(k for k in self.assocs if k[0] == account and k[1])
        for child in self.children(account):
            out.extend(self.subtree(_key(child)))
        return out

    # -- listing ---------------------------------------------------------------------------
    def list(self, kind, where=None):
        """Records of one kind as API dicts, filtered by ``where`` (names, accounts, users, partitions)."""
        where = where or {}
        names = set(where.get("names") or [])
        if kind == "cluster":
            return [dict(c) for n, c in sorted(self.clusters.items()) if not names or n in names]
        if kind == "qos":
            return [dict(q) for n, q in sorted(self.qos.items()) if not names or n in names]
        if kind == "account":
            return [dict(a, parent=(self.assocs.get(_key(n)) or {}).get("parent"))
                    for n, a in sorted(self.accounts.items()) if not names or n in names]
        if kind == "user":
            return [dict(u) for n, u in sorted(self.users.items()) if not names or n in names]
        if kind == "association":
            accounts, users = set(where.get("accounts") or []), set(where.get("users") or [])
            parts = set(where.get("partitions") or [])
            out = []
            for row in self.tree():
                key = _key(row["account"], row["user"] or "", row["partition"] or "")
                if accounts and key[0] not in accounts or users and key[1] not in users \
                        or parts and key[2] not in parts:
                    continue
                out.append(self.assoc_view(key))
            return out
        raise NotFound(f"unknown record kind {kind}")

    def assoc_view(self, key):
        """An association as shown: own shares and Grp limits, inherited Max limits and QOS."""
        a = self.assocs[key]
        view = dict(a, cluster=self.cluster_name, parent=a.get("parent") if not a["user"] else a["account"])
        for name in ("max_jobs", "max_submit", "max_wall", "max_tres_per_job", "default_qos"):
            view[name] = self.effective(key, name)
        view["max_tres_per_job"] = view["max_tres_per_job"] or {}
        view["qos"] = self.allowed_qos(key)
        return view

    # -- changes -----------------------------------------------------------------------------
    def change(self, kind, action, request, caller, active_jobs=None):
        """Add, modify or delete records (``sacctmgr``); ``dry_run`` checks without changing.

        ``active_jobs()`` gives the pending and running jobs: as in Slurm, an association or
        QOS that active jobs use cannot be deleted. Returns ``{"changed": [...],
        "associations": [...]}`` describing what was (or would be) done.
        """
        self._require_admin(caller)
        if action not in ("add", "modify", "delete"):
            raise InvalidRequest(f"unknown action {action}")
        from . import associations_edit
        if (action, kind) not in associations_edit.SUPPORTED:
            raise InvalidRequest(f"cannot {action} {kind}")
        plan = associations_edit.plan(self, kind, action, request, caller)
        if action == "delete" and active_jobs is not None:
            self._refuse_active(plan["ops"], active_jobs())
        if not request.get("dry_run") and plan["ops"]:
            with self.journal.transaction():
                for op, rec_kind, rec in plan["ops"]:
                    if op == "put":
                        self._put(rec_kind, rec)
                    else:
                        self._drop(rec_kind, rec)
        return {"changed": plan["changed"], "associations": plan["associations"]}

    def _refuse_active(self, ops, jobs):
        gone = {key for op, kind, key in ops if op == "drop" and kind == "assoc"}
        gone_qos = {key for op, kind, key in ops if op == "drop" and kind == "qos"}
        busy = [j for j in jobs if (j.get("account"), j.get("user"), j.get("partition")) in gone
                or (j.get("account"), j.get("user"), "") in gone or j.get("qos") in gone_qos]
        if busy:
            ids = ", ".join(str(j.get("display_id") or j["job_id"]) for j in busy[:10])
            raise Conflict(f"Job(s) active, cancel job(s) before remove (jobs {ids})")
