"""What a hub user may charge and where: accounts, QOS and reservations, from live data.

The controller checks a job's account, QOS and reservation at submit (Slurm's
texts: ``Invalid account or account/partition combination specified``,
``Access denied to requested reservation``). Those are right but say little to
a scientist, and a job kept pending forever by a MaxWall limit says nothing at
submit. So the spawner asks the controller for the user's associations
(sacctmgr), the QOS records, the reservations and the enforcement flags, and
:class:`Access` answers the questions the spawn form needs - which accounts,
which QOS (and their defaults), which reservations - and refuses a choice with
a sentence the user can act on before anything reaches the queue. The
controller's own checks stay: this is the friendly first line, not the only one.

Rules (mirroring ``controller/associations.py`` and ``sched/reservations.py``):

- an account or QOS the *user* picks must be one of their associations' (the hub
  never lets a user type their way into another account); one an admin profile
  names is checked only as far as ``AccountingStorageEnforce`` makes the
  controller check it (``associations``, ``qos``);
- partition AllowAccounts/DenyAccounts/AllowQos/DenyQos always apply;
- MaxWall (QOS first, else the association's) bounds the time limit when
  ``limits`` is enforced (the controller would keep the job pending forever);
- a reservation must exist, not have ended, and admit the user (Users=, or
  Groups= through the user's groups) and the account (Accounts=).
"""

import time

from batch_backend.sched import reservations as R


class AccessError(ValueError):
    """A choice the user may not make; ``str(e)`` is the sentence to show."""


def _listed(value, item):
    return item in {v.strip() for v in (value or "").split(",") if v.strip()}


def _minutes_text(minutes):
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes > 60 else f"{minutes} min"


class Access:
    """The accounting view of one user (built from controller answers, no I/O of its own).

    ``associations``: the user's association rows (``Client().associations(users=[u])``,
    inherited QOS and limits filled in); ``user_record``: ``Client().users([u])`` row or
    None; ``qos``: every QOS record; ``reservations``: every reservation; ``enforce``:
    AccountingStorageEnforce flags; ``groups``: the user's groups for Groups=.
    """

    def __init__(self, user, *, associations=(), user_record=None, qos=(), reservations=(),
                 enforce=(), groups=(), now=None):
        self.user = user
        self.assocs = [a for a in associations if a.get("user") == user]
        self.default_account = (user_record or {}).get("default_account") or ""
        self.qos = {q["name"]: q for q in qos}
        self.all_reservations = list(reservations)
        self.enforce = set(enforce or ())
        self.groups = set(groups or ())
        self.now = time.time() if now is None else now

    # -- accounts and QOS ------------------------------------------------------------------
    def accounts(self):
        """The user's accounts, the default first."""
        names = sorted({a["account"] for a in self.assocs})
        if self.default_account in names:
            names.remove(self.default_account)
            names.insert(0, self.default_account)
        return names

    def assoc(self, account, partition=""):
        """The user's association for ``account`` (the partition's own row first)."""
        rows = [a for a in self.assocs if a["account"] == account]
        for a in rows:
            if partition and a.get("partition") == partition:
                return a
        return next((a for a in rows if not a.get("partition")), None)

    def allowed_qos(self, account, partition=""):
        a = self.assoc(account, partition)
        return list((a or {}).get("qos") or [])

    def default_qos(self, account, partition=""):
        """The QOS the controller gives a job of this account without --qos."""
        a = self.assoc(account, partition)
        if a is None:
            return "normal"
        allowed = a.get("qos") or []
        return a.get("default_qos") or (allowed[0] if len(allowed) == 1 else "normal")

    def max_wall(self, account, qos, partition=""):
        """(minutes, who) of the MaxWall that bounds a job: the QOS's, else the association's."""
        q = self.qos.get(qos) or {}
        if q.get("max_wall") is not None:
            return q["max_wall"], f"QOS {qos}"
        a = self.assoc(account, partition)
        if a is not None and a.get("max_wall") is not None:
            return a["max_wall"], f"account {account}"
        return None, ""

    def partition_admits(self, part, account):
        """May ``account`` use partition ``part`` (AllowAccounts/DenyAccounts)?"""
        allow = part.get("allow_accounts") or "ALL"
        if allow.upper() != "ALL" and not _listed(allow, account):
            return False
        return not _listed(part.get("deny_accounts"), account)

    def check(self, part, *, account="", qos="", reservation="", minutes=None, chosen_by_user=True,
              partitions=()):
        """Check a request's account, QOS, reservation and time against ``part`` (a partition dict).

        Returns (account, qos, reservation dict or None) with the defaults the
        controller would fill in; raises :class:`AccessError` with the reason.
        ``partitions``: the partitions the user may use, to suggest one that holds
        the reservation's nodes.
        """
        pname = part["name"]
        mine = self.accounts()
        strict_account = chosen_by_user or "associations" in self.enforce
        if account:
            if strict_account and self.assoc(account, pname) is None:
                raise AccessError(
                    f"You may not charge account {account!r}: "
                    + (f"your accounts are {', '.join(mine)}." if mine else
                       "you have no account on this cluster (ask your administrator)."))
        else:
            account = self.default_account
            if "associations" in self.enforce and self.assoc(account, pname) is None:
                raise AccessError("You have no account on this cluster you may charge in partition "
                                  f"{pname} (ask your administrator to add you with sacctmgr).")
        if account and not self.partition_admits(part, account):
            raise AccessError(f"Partition {pname} does not admit account {account}.")
        if qos:
            strict_qos = chosen_by_user or "qos" in self.enforce
            allowed = self.allowed_qos(account, pname)
            if strict_qos and (qos not in self.qos or (self.assoc(account, pname) is not None and qos not in allowed)
                               or (chosen_by_user and self.assoc(account, pname) is None)):
                raise AccessError(
                    f"You may not use QOS {qos!r}" + (f" with account {account}" if account else "") + ": "
                    + (f"yours are {', '.join(allowed)}." if allowed else "no QOS is available to you."))
        else:
            qos = self.default_qos(account, pname)
        allow = part.get("allow_qos") or "ALL"
        if (allow.upper() != "ALL" and not _listed(allow, qos)) or _listed(part.get("deny_qos"), qos):
            raise AccessError(f"Partition {pname} does not admit QOS {qos}.")
        if minutes is not None and "limits" in self.enforce:
            wall, who = self.max_wall(account, qos, pname)
            if wall is not None and minutes > wall:
                raise AccessError(f"{who[0].upper()}{who[1:]} allows at most {_minutes_text(wall)} per job "
                                  f"(you asked for {_minutes_text(minutes)}).")
        resv = None
        if reservation:
            resv = self.reservation_check(reservation, account, part, partitions)
        return account, qos, resv

    # -- reservations -------------------------------------------------------------------------
    def admitted(self, resv, account=None):
        """Is the user (with ``account``, or any of theirs when None) admitted to ``resv``?"""
        accounts = [account] if account is not None else (self.accounts() or [self.default_account])
        return any(R.may_use(resv, self.user, self.groups, a) for a in accounts)

    def reservations(self, account=None):
        """Reservations the user may run in, not ended, soonest first."""
        return sorted((r for r in self.all_reservations
                       if r.get("end_time", 0) > self.now and self.admitted(r, account)),
                      key=lambda r: (r.get("start_time") or 0, r["name"]))

    def reservation_check(self, name, account, part, partitions=()):
        resv = next((r for r in self.all_reservations if r["name"] == name), None)
        if resv is None:
            raise AccessError(f"There is no reservation {name!r} on this cluster.")
        if resv.get("end_time", 0) <= self.now:
            raise AccessError(f"Reservation {name} has ended.")
        if not self.admitted(resv, account):
            raise AccessError(f"You are not admitted to reservation {name}"
                              + (f" with account {account}" if account and resv.get("accounts") else "") + ".")
        if resv.get("nodes") and not set(resv["nodes"]) & set(part.get("nodes") or []):
            fits = [p["name"] for p in partitions if set(resv["nodes"]) & set(p.get("nodes") or [])]
            if resv.get("partition") and resv["partition"] not in fits:
                fits.insert(0, resv["partition"])
            raise AccessError(f"Reservation {name} is on nodes {resv.get('nodelist') or ','.join(resv['nodes'])}, "
                              f"none of them in partition {part['name']}"
                              + (f"; choose partition {' or '.join(fits)}." if fits else "."))
        return resv
