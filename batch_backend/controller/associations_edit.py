"""Planning sacctmgr's add/modify/delete against the association store.

Why a separate module: validating a change (names exist, parents are real, the
default QOS is allowed, root stays) is most of the work, and doing it on copies
gives ``dry_run`` for free: :func:`plan` returns the record writes and drops
it *would* make plus what to report; the store applies them in one journal
transaction only when asked to commit. A bad request raises before any write.

Request shapes (the API body)::

    add:    {"names": [...], "set": {...}}     (users: set["accounts"], set["partition"])
    modify: {"where": {...}, "set": {...}}
    delete: {"where": {...}}

``where`` takes ``names``, ``accounts``, ``users``, ``partitions``. In
``set``, a key with ``None`` clears that setting; ``qos_add``/``qos_remove``
edit the QOS list (sacctmgr's ``QOS+=`` / ``QOS-=``); TRES dicts merge per
TRES (a ``None`` value removes that TRES).
"""

import copy

from ..errors import Conflict, InvalidRequest, NotFound
from .associations import ADMIN_LEVELS, ASSOC_LIMITS, QOS_FIELDS, _key, new_assoc, new_qos

SUPPORTED = {(a, k) for a in ("add", "modify", "delete") for k in ("cluster", "account", "user", "qos")} | {
    ("modify", "association"), ("delete", "association")}

ASSOC_SETTINGS = set(ASSOC_LIMITS) | {"fairshare", "qos", "qos_add", "qos_remove", "default_qos"}
ACCOUNT_SETTINGS = {"description", "organization", "parent"} | ASSOC_SETTINGS
USER_SETTINGS = {"default_account", "admin_level", "accounts", "partition"} | ASSOC_SETTINGS
_INT_FIELDS = {"max_jobs", "max_submit", "max_wall", "grp_jobs", "grp_submit", "grp_wall", "fairshare",
               "priority", "max_jobs_pu", "max_submit_pu", "grace_time"}
_TRES_FIELDS = {"max_tres_per_job", "grp_tres", "max_tres_pu"}
_LIST_FIELDS = {"qos", "qos_add", "qos_remove", "preempt", "flags", "accounts"}
_QOS_FLAGS = {"denyonlimit": "DenyOnLimit", "enforceusagethreshold": "EnforceUsageThreshold",
              "nodecay": "NoDecay", "nopreempt": "NoReserve", "noreserve": "NoReserve",
              "overpartqos": "OverPartQOS", "partitionmaxnodes": "PartitionMaxNodes",
              "partitionminnodes": "PartitionMinNodes", "partitiontimelimit": "PartitionTimeLimit",
              "requiresreservation": "RequiresReservation", "usagefactorsafe": "UsageFactorSafe"}
_PREEMPT_MODES = {"cluster", "off", "cancel", "requeue", "suspend", "gang"}


def _check_types(settings, allowed):
    for name, value in settings.items():
        if name not in allowed:
            raise InvalidRequest(f"Unknown option: {name}")
        if value is None:
            continue
        if name in _INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidRequest(f"Invalid value for {name}: {value!r}")
        if name in _TRES_FIELDS and (not isinstance(value, dict) or not all(
                v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in value.values())):
            raise InvalidRequest(f"Invalid TRES for {name}: {value!r}")
        if name in _LIST_FIELDS and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise InvalidRequest(f"{name} must be a list of names")
        if name in ("description", "organization", "parent", "default_account", "admin_level", "default_qos",
                    "partition", "preempt_mode") and not isinstance(value, str):
            raise InvalidRequest(f"{name} must be a string")
        if name == "usage_factor" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InvalidRequest(f"Invalid UsageFactor: {value!r}")


def _names(values, what, lower=True):
    if values is not None and not isinstance(values, list):
        raise InvalidRequest(f"{what} names must be a list")
    out = []
    for v in values or []:
        if not isinstance(v, str) or not v.strip() or any(c in v for c in " \t,|'\"="):
            raise InvalidRequest(f"Invalid {what} name: {v!r}")
        out.append(v.strip().lower() if lower else v.strip())
    return list(dict.fromkeys(out))


class _Plan:
    """Copies of the store's records; every change is recorded as an op."""

    def __init__(self, store):
        self.store = store
        self.accounts = copy.deepcopy(store.accounts)
        self.users = copy.deepcopy(store.users)
        self.assocs = copy.deepcopy(store.assocs)
        self.qos = copy.deepcopy(store.qos)
        self.clusters = copy.deepcopy(store.clusters)
        self.ops, self.changed, self.associations = [], [], []

    def put(self, kind, rec):
        table = {"account": self.accounts, "user": self.users, "qos": self.qos, "cluster": self.clusters}
        if kind == "assoc":
            self.assocs[_key(rec["account"], rec["user"], rec["partition"])] = rec
        else:
            table[kind][rec["name"]] = rec
        self.ops.append(("put", kind, rec))

    def drop(self, kind, key):
        table = {"account": self.accounts, "user": self.users, "qos": self.qos, "cluster": self.clusters,
                 "assoc": self.assocs}
        table[kind].pop(key, None)
        self.ops.append(("drop", kind, key))

    def note_assoc(self, key, parent=None):
        self.associations.append({"cluster": self.store.cluster_name, "account": key[0], "user": key[1],
                                  "partition": key[2], "parent": parent})

    # -- checks that read the planned state ----------------------------------------------
    def check_qos_names(self, names):
        for name in names:
            if name not in self.qos:
                raise InvalidRequest(f"Unknown QOS name: {name}")

    def effective_qos(self, key):
        seen = set()
        while key is not None and key in self.assocs and key not in seen:
            seen.add(key)
            a = self.assocs[key]
            if a.get("qos"):
                return a["qos"]
            key = _key(a["account"]) if a["user"] else (_key(a["parent"]) if a.get("parent") else None)
        return []

    def apply_assoc_settings(self, key, settings):
        a = copy.deepcopy(self.assocs[key])
        for name, value in settings.items():
            if name == "fairshare":
                a["shares"] = 1 if value is None else value
            elif name == "qos":
                names = _names(value or [], "QOS")
                self.check_qos_names(names)
                a["qos"] = names
            elif name == "qos_add":
                names = _names(value, "QOS")
                self.check_qos_names(names)
                base = list(a["qos"] or self.effective_qos(key))
                a["qos"] = base + [n for n in names if n not in base]
            elif name == "qos_remove":
                base = list(a["qos"] or self.effective_qos(key))
                a["qos"] = [n for n in base if n not in set(_names(value, "QOS"))]
            elif name == "default_qos":
                if value:
                    value = value.lower()
                    self.check_qos_names([value])
                a["default_qos"] = value or None
            elif name in _TRES_FIELDS:
                if value is None:
                    a[name] = {}
                else:
                    merged = dict(a.get(name) or {})
                    for t, v in value.items():
                        if v is None:
                            merged.pop(t, None)
                        else:
                            merged[t] = v
                    a[name] = merged
            elif name in ASSOC_LIMITS:
                a[name] = value
        self.assocs[key] = a
        if a.get("default_qos") and a["default_qos"] not in self.effective_qos(key):
            raise InvalidRequest(f"Default QOS {a['default_qos']} is not in the QOS list of "
                                 f"account {key[0]}" + (f" user {key[1]}" if key[1] else ""))
        self.put("assoc", a)


def plan(store, kind, action, request, caller):
    if not isinstance(request, dict):
        raise InvalidRequest("request body must be a JSON object")
    settings = request.get("set")
    settings = {} if settings is None else settings
    where = request.get("where")
    where = {} if where is None else where
    if not isinstance(settings, dict) or not isinstance(where, dict):
        raise InvalidRequest("'set' and 'where' must be objects")
    for key, value in where.items():
        if key not in ("names", "accounts", "users", "partitions"):
            raise InvalidRequest(f"Unknown condition: {key}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"condition {key!r} must be a list of names")
    for name in _TRES_FIELDS & set(settings):
        unknown = set(settings[name] or {}) - {"cpu", "mem", "node", "gres/gpu"}
        if isinstance(settings[name], dict) and unknown:
            raise InvalidRequest(f"Invalid TRES: {sorted(unknown)[0]}")
    p = _Plan(store)
    globals()[f"_{action}_{kind}"](p, request, settings, where, caller)
    return {"ops": p.ops, "changed": p.changed, "associations": p.associations}


def _where_names(where, what, lower=True):
    names = _names(where.get("names") or [], what, lower)
    if not names:
        raise InvalidRequest(f"No {what} name given (use: where name=...)")
    return names


# -- clusters --------------------------------------------------------------------------------
def _add_cluster(p, request, settings, where, caller):
    _check_types(settings, set())
    names = [n for n in _names(request.get("names"), "cluster") if n not in p.clusters]
    if not names:
        raise Conflict("Nothing new added.")
    for n in names:
        p.put("cluster", {"name": n})
        p.changed.append(n)


def _modify_cluster(p, request, settings, where, caller):
    _check_types(settings, ASSOC_SETTINGS)
    for n in _where_names(where, "cluster"):
        if n not in p.clusters:
            raise NotFound(f"Cluster {n} does not exist")
        p.apply_assoc_settings(_key("root"), settings)
        p.changed.append(n)
        p.note_assoc(_key("root"))


def _delete_cluster(p, request, settings, where, caller):
    for n in _where_names(where, "cluster"):
        if n not in p.clusters:
            continue
        if n == p.store.cluster_name:
            raise Conflict(f"Cluster {n} is this controller's own cluster: it cannot be deleted")
        p.drop("cluster", n)
        p.changed.append(n)


# -- accounts ---------------------------------------------------------------------------------
def _add_account(p, request, settings, where, caller):
    _check_types(settings, ACCOUNT_SETTINGS)
    names = _names(request.get("names"), "account")
    if not names:
        raise InvalidRequest("Need name of account to add.")
    parent = (settings.get("parent") or "root").lower()
    if parent not in p.accounts:
        raise InvalidRequest(f"Parent account '{parent}' doesn't exist.")
    new = [n for n in names if n not in p.accounts]
    if not new:
        raise Conflict("Nothing new added.")
    for n in new:
        p.put("account", {"name": n, "description": settings.get("description") or n,
                          "organization": settings.get("organization") or (parent if parent != "root" else n)})
        p.assocs[_key(n)] = new_assoc(n, parent=parent)
        p.apply_assoc_settings(_key(n), {k: v for k, v in settings.items() if k in ASSOC_SETTINGS})
        p.changed.append(n)
        p.note_assoc(_key(n), parent)


def _descendants(p, account):
    out, todo = set(), [account]
    while todo:
        a = todo.pop()
        for k, rec in p.assocs.items():
            if not k[1] and rec.get("parent") == a and k[0] not in out:
                out.add(k[0])
                todo.append(k[0])
    return out


def _modify_account(p, request, settings, where, caller):
    _check_types(settings, ACCOUNT_SETTINGS)
    for n in _where_names(where, "account"):
        if n not in p.accounts:
            raise NotFound(f"Account {n} does not exist")
        rec = dict(p.accounts[n])
        if any(k in settings for k in ("description", "organization")):
            for k in ("description", "organization"):
                if settings.get(k) is not None:
                    rec[k] = settings[k]
            p.put("account", rec)
        assoc_settings = {k: v for k, v in settings.items() if k in ASSOC_SETTINGS}
        if "parent" in settings:
            parent = (settings["parent"] or "root").lower()
            if n == "root":
                raise InvalidRequest("The root account has no parent")
            if parent not in p.accounts or parent == n or parent in _descendants(p, n):
                raise InvalidRequest(f"Invalid parent account '{parent}' for account {n}")
            a = dict(p.assocs[_key(n)], parent=parent)
            p.assocs[_key(n)] = a
            p.put("assoc", a)
        if assoc_settings:
            p.apply_assoc_settings(_key(n), assoc_settings)
        p.changed.append(n)
        if assoc_settings or "parent" in settings:
            p.note_assoc(_key(n), p.assocs[_key(n)].get("parent"))


def _delete_account(p, request, settings, where, caller):
    for n in _where_names(where, "account"):
        if n not in p.accounts:
            continue
        if n == "root":
            raise Conflict("The root account cannot be deleted")
        if _descendants(p, n):
            raise Conflict(f"Account {n} has sub-accounts ({', '.join(sorted(_descendants(p, n)))}): "
                           "delete or move them first")
        for key in [k for k in p.assocs if k[0] == n]:
            p.drop("assoc", key)
        p.drop("account", n)
        p.changed.append(n)
        _fix_users(p)


def _fix_users(p):
    """Users left without associations disappear; a lost default account moves to another one."""
    for name, rec in list(p.users.items()):
        mine = sorted(k[0] for k in p.assocs if k[1] == name)
        if not mine:
            p.drop("user", name)
        elif rec.get("default_account") not in mine:
            p.put("user", dict(rec, default_account=mine[0]))


# -- users ---------------------------------------------------------------------------------------
def _admin_level(value):
    level = ADMIN_LEVELS.get((value or "none").lower())
    if level is None:
        raise InvalidRequest(f"Unknown AdminLevel: {value} (use None, Operator or Administrator)")
    return level


def _add_user(p, request, settings, where, caller):
    _check_types(settings, USER_SETTINGS)
    names = _names(request.get("names"), "user", lower=False)
    if not names:
        raise InvalidRequest("Need name of user to add.")
    accounts = _names(settings.get("accounts") or [], "account")
    default = (settings.get("default_account") or "").lower()
    if default and default not in accounts:
        accounts.append(default)
    if not accounts:
        if all(n in p.users for n in names) and not settings.get("admin_level"):
            raise InvalidRequest("Need a default account for these users to add.")
    for a in accounts:
        if a not in p.accounts:
            raise InvalidRequest(f"This account '{a}' doesn't exist.\n        Contact your admin to add this account.")
    partition = settings.get("partition") or ""
    assoc_settings = {k: v for k, v in settings.items() if k in ASSOC_SETTINGS}
    added = False
    for n in names:
        rec = p.users.get(n)
        if rec is None:
            if not accounts:
                raise InvalidRequest("Need a default account for these users to add.")
            rec = {"name": n, "default_account": default or accounts[0],
                   "admin_level": _admin_level(settings.get("admin_level"))}
            p.put("user", rec)
            p.changed.append(n)
            added = True
        elif settings.get("admin_level") and _admin_level(settings["admin_level"]) != rec["admin_level"]:
            p.put("user", dict(rec, admin_level=_admin_level(settings["admin_level"])))
            added = True
        for a in accounts:
            key = _key(a, n, partition)
            if key in p.assocs:
                continue
            p.assocs[key] = new_assoc(a, n, partition)
            p.apply_assoc_settings(key, assoc_settings)
            p.note_assoc(key)
            added = True
    if not added:
        raise Conflict("Nothing new added.")


def _user_assocs(p, name, where):
    accounts = set(_names(where.get("accounts") or [], "account"))
    parts = set(where.get("partitions") or [])
    return sorted(k for k in p.assocs if k[1] == name and (not accounts or k[0] in accounts)
                  and (not parts or k[2] in parts))


def _modify_user(p, request, settings, where, caller):
    _check_types(settings, USER_SETTINGS - {"accounts", "partition"})
    if "admin_level" in settings and not caller.admin and \
            (p.users.get(caller.user) or {}).get("admin_level") != "Administrator":
        from ..errors import PermissionDenied
        raise PermissionDenied("Access/permission denied")
    for n in _where_names(where, "user", lower=False):
        rec = p.users.get(n)
        if rec is None:
            raise NotFound(f"User {n} does not exist")
        if "default_account" in settings or "admin_level" in settings:
            rec = dict(rec)
            if settings.get("default_account"):
                acct = settings["default_account"].lower()
                if _key(acct, n) not in p.assocs and not any(k[0] == acct and k[1] == n for k in p.assocs):
                    raise InvalidRequest(f"User {n} has no association with account {acct}: "
                                         "add one first (sacctmgr add user ... account=...)")
                rec["default_account"] = acct
            if "admin_level" in settings:
                rec["admin_level"] = _admin_level(settings["admin_level"])
            p.put("user", rec)
        assoc_settings = {k: v for k, v in settings.items() if k in ASSOC_SETTINGS}
        if assoc_settings:
            keys = _user_assocs(p, n, where)
            if not keys:
                raise NotFound(f"User {n} has no matching association")
            for key in keys:
                p.apply_assoc_settings(key, assoc_settings)
                p.note_assoc(key)
        p.changed.append(n)


def _delete_user(p, request, settings, where, caller):
    for n in _where_names(where, "user", lower=False):
        if n not in p.users:
            continue
        for key in _user_assocs(p, n, where):
            p.drop("assoc", key)
            p.note_assoc(key)
        if not where.get("accounts") and not where.get("partitions"):
            p.drop("user", n)
        p.changed.append(n)
    _fix_users(p)


# -- associations -------------------------------------------------------------------------------------
def _matching_assocs(p, where, users_only):
    accounts = set(_names(where.get("accounts") or [], "account"))
    users = set(where.get("users") or [])
    parts = set(where.get("partitions") or [])
    if not (accounts or users or parts):
        raise InvalidRequest("No association condition given (use: where account=... user=...)")
    return sorted(k for k in p.assocs if (not accounts or k[0] in accounts) and (not users or k[1] in users)
                  and (not parts or k[2] in parts) and (k[1] or not users_only))


def _modify_association(p, request, settings, where, caller):
    _check_types(settings, ASSOC_SETTINGS)
    keys = _matching_assocs(p, where, users_only=False)
    for key in keys:
        p.apply_assoc_settings(key, settings)
        p.note_assoc(key)


def _delete_association(p, request, settings, where, caller):
    for key in _matching_assocs(p, where, users_only=True):
        p.drop("assoc", key)
        p.note_assoc(key)
    _fix_users(p)


# -- QOS -------------------------------------------------------------------------------------------
def _qos_settings(p, rec, settings):
    for name, value in settings.items():
        if name in _TRES_FIELDS:
            merged = {} if value is None else dict(rec.get(name) or {})
            for t, v in (value or {}).items():
                if v is None:
                    merged.pop(t, None)
                else:
                    merged[t] = v
            rec[name] = merged
        elif name == "preempt":
            names = _names(value or [], "QOS")
            p.check_qos_names(names)
            rec["preempt"] = names
        elif name == "flags":
            flags = []
            for f in value or []:
                flag = _QOS_FLAGS.get(f.lower())
                if flag is None:
                    raise InvalidRequest(f"Unknown QOS flag: {f}")
                flags.append(flag)
            rec["flags"] = flags
        elif name == "preempt_mode":
            mode = (value or "cluster").lower()
            if not set(mode.split(",")) <= _PREEMPT_MODES:
                raise InvalidRequest(f"Unknown PreemptMode: {value}")
            rec["preempt_mode"] = mode
        elif name in ("priority", "usage_factor", "grace_time"):
            rec[name] = value if value is not None else new_qos("x")[name]
        elif name == "description":
            rec[name] = value if value is not None else rec["name"]
        else:
            rec[name] = value


def _add_qos(p, request, settings, where, caller):
    _check_types(settings, set(QOS_FIELDS))
    names = [n for n in _names(request.get("names"), "QOS") if n not in p.qos]
    if not names:
        raise Conflict("Nothing new added.")
    for n in names:
        rec = new_qos(n)
        p.qos[n] = rec
        _qos_settings(p, rec, settings)
        p.put("qos", rec)
        p.changed.append(n)


def _modify_qos(p, request, settings, where, caller):
    _check_types(settings, set(QOS_FIELDS))
    for n in _where_names(where, "QOS"):
        if n not in p.qos:
            raise NotFound(f"QOS {n} does not exist")
        rec = copy.deepcopy(p.qos[n])
        _qos_settings(p, rec, settings)
        p.put("qos", rec)
        p.changed.append(n)


def _delete_qos(p, request, settings, where, caller):
    for n in _where_names(where, "QOS"):
        if n not in p.qos:
            continue
        if n == "normal":
            raise Conflict("QOS normal is every association's default: it cannot be deleted")
        p.drop("qos", n)
        p.changed.append(n)
        for key, a in list(p.assocs.items()):
            if n in (a.get("qos") or []) or a.get("default_qos") == n:
                a = dict(a, qos=[q for q in a.get("qos") or [] if q != n],
                         default_qos=None if a.get("default_qos") == n else a.get("default_qos"))
                p.assocs[key] = a
                p.put("assoc", a)
        for qn, q in list(p.qos.items()):
            if n in (q.get("preempt") or []):
                p.put("qos", dict(q, preempt=[x for x in q["preempt"] if x != n]))
