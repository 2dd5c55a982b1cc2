"""Advance reservations as the scheduler sees them: pure functions of reservations and time.

A reservation (the API's dict, see ``model.RESERVATION_FIELDS``) holds a set of
nodes for a time window ``[start_time, end_time)``; recurring ones (DAILY,
WEEKDAY, WEEKEND, WEEKLY) repeat it, and the controller rolls the stored window
forward once an occurrence ends. Everything here is clock-injected and
side-effect free so the controller and the simulator share it:

* :func:`parse_flags`, :func:`next_window`, :func:`roll_forward`,
  :func:`occurrences` -- the calendar;
* :func:`overlapping` -- Slurm's "no two reservations on the same nodes at the
  same time" rule (recurrences included);
* :func:`may_use` -- who may run inside (Users/Groups and Accounts, with
  ``-name`` exclusions);
* :func:`blocked_windows`, :func:`blocked_nodes` -- what other jobs may not
  touch: a job outside a reservation may use its nodes only if it *ends*
  (by its time limit) before the reservation starts;
* :func:`schedule_reserved` -- the pass for jobs that asked for a reservation
  (they run inside it and only there, once it has started).

Reservations hold whole nodes (a CoreCnt request picks enough whole nodes to
cover the cores; Slurm can reserve single cores).
"""

import datetime as _dt
import math

from .fifo import SetReason, Start, _start_what_fits, ineligible_reason, job_task_ids
from .placement import place

#: flags users may set, in Slurm's display order (reservation_flags_string)
FLAG_ORDER = ("MAINT", "FLEX", "OVERLAP", "IGNORE_JOBS", "DAILY", "WEEKDAY", "WEEKEND", "WEEKLY",
              "SPEC_NODES", "ALL_NODES", "STATIC", "PART_NODES", "PURGE_COMP")
#: accepted spellings (case-insensitive prefixes as in Slurm's parse_resv_flags) -> flag
_FLAG_WORDS = (("MAINTENANCE", "MAINT", 1), ("OVERLAP", "OVERLAP", 1), ("FLEX", "FLEX", 1),
               ("IGNORE_JOBS", "IGNORE_JOBS", 1), ("DAILY", "DAILY", 1), ("WEEKDAY", "WEEKDAY", 1),
               ("WEEKEND", "WEEKEND", 1), ("WEEKLY", "WEEKLY", 1), ("STATIC_ALLOC", "STATIC", 1),
               ("PART_NODES", "PART_NODES", 2), ("PURGE_COMP", "PURGE_COMP", 2))
RECURRING = ("DAILY", "WEEKDAY", "WEEKEND", "WEEKLY")
#: how far ahead recurrences are compared for overlap (Slurm checks a bounded number too)
OVERLAP_HORIZON = 8 * 7 * 86400
#: how far ahead the scheduler lays out recurring windows (the first window always counts)
WINDOW_HORIZON = 14 * 86400


class FlagError(ValueError):
    """A Flags= value Slurm would refuse (the message is Slurm's)."""


def parse_flags(text):
    """``'maint,+daily,-weekly,purge_comp=5:00'`` -> ``(add, remove, purge_seconds)``.

    ``add``/``remove`` are sets of flag names; a leading ``-`` removes a flag
    (updates), ``+`` or nothing adds it. Abbreviations are accepted as Slurm
    does (``maint``, ``ig``...). ``PURGE_COMP=<time>`` sets how long an idle
    reservation lives (seconds, None when not given). Raises :class:`FlagError`.
    """
    from ..timespec import parse_time_limit
    add, remove, purge = set(), set(), None
    for raw in str(text).split(","):
        word = raw.strip()
        if not word:
            continue
        sign = ""
        if word[0] in "+-":
            sign, word = word[0], word[1:]
        value = None
        if "=" in word:
            word, _, value = word.partition("=")
        up = word.upper()
        found = None
        for full, flag, minimum in _FLAG_WORDS:
            if len(up) >= minimum and full.startswith(up):
                found = flag
                break
        if found is None or (value is not None and found != "PURGE_COMP") or (found == "OVERLAP" and sign == "-"):
            raise FlagError(f"Error parsing flags {text}.")
        if value is not None:
            try:
                minutes = parse_time_limit(value)
            except ValueError:
                raise FlagError(f"Error parsing flags {text}.") from None
            if not minutes:
                raise FlagError(f"Error parsing flags {text}.")
            purge = minutes * 60
        (remove if sign == "-" else add).add(found)
    return add, remove, purge


def flags_string(resv):
    """Slurm's Flags= text: known flags in Slurm's order, ``PURGE_COMP=HH:MM:SS`` with a time."""
    from ..timespec import format_hms
    flags = set(resv.get("flags") or ())
    out = []
    for f in FLAG_ORDER:
        if f in flags:
            if f == "PURGE_COMP" and resv.get("purge_comp_time"):
                out.append("PURGE_COMP=" + format_hms(resv["purge_comp_time"]))
            else:
                out.append(f)
    return ",".join(out)


# -- the calendar ------------------------------------------------------------------------

def _period_days(flags, start):
    """Days to the next occurrence after one starting at ``start`` (None: not recurring)."""
    flags = set(flags or ())
    if "DAILY" in flags:
        return 1
    if "WEEKLY" in flags:
        return 7
    weekday = _dt.datetime.fromtimestamp(start).weekday()  # Monday 0 .. Sunday 6
    if "WEEKDAY" in flags:
        return {4: 3, 5: 2}.get(weekday, 1)   # Friday -> Monday, Saturday -> Monday
    if "WEEKEND" in flags:
        return {5: 1, 6: 6}.get(weekday, 5 - weekday if weekday < 5 else 1)  # Sat -> Sun -> next Sat
    return None


def _shift_days(t, days):
    """Same local wall-clock time ``days`` later (a daily 10:00 slot stays at 10:00 across DST)."""
    moment = _dt.datetime.fromtimestamp(t)
    return (moment + _dt.timedelta(days=days)).timestamp()


def next_window(start, end, flags):
    """The occurrence after ``[start, end)``, or None for a one-off reservation."""
    days = _period_days(flags, start)
    if days is None:
        return None
    return _shift_days(start, days), _shift_days(end, days)


def roll_forward(resv, now):
    """``(start, end)`` of the occurrence a recurring reservation should show at ``now``.

    Unchanged while the current occurrence has not ended (or for one-off
    reservations, which end instead).
    """
    start, end = resv["start_time"], resv["end_time"]
    while end <= now:
        nxt = next_window(start, end, resv.get("flags"))
        if nxt is None:
            break
        start, end = nxt
    return start, end


def occurrences(resv, t0, t1, limit=1000):
    """Windows ``(start, end)`` of ``resv`` that intersect ``[t0, t1)``, in time order."""
    start, end = resv["start_time"], resv["end_time"]
    for _ in range(limit):
        if start >= t1:
            return
        if end > t0:
            yield start, end
        nxt = next_window(start, end, resv.get("flags"))
        if nxt is None:
            return
        start, end = nxt


def is_active(resv, now):
    return resv["start_time"] <= now < resv["end_time"]


def overlapping(new, others, *, horizon=OVERLAP_HORIZON):
    """Name of the first reservation in ``others`` that shares nodes and time with ``new``, or None.

    The new reservation's MAINT or OVERLAP flag waives the rule (Slurm's
    ``_resv_overlap``). Recurrences are compared over ``horizon`` seconds.
    """
    flags = set(new.get("flags") or ())
    if flags & {"MAINT", "OVERLAP"}:
        return None
    mine = set(new["nodes"])
    t0 = new["start_time"]
    t1 = t0 + max(horizon, new["end_time"] - t0)
    windows = list(occurrences(new, t0, t1))
    for other in others:
        if other["name"] == new["name"] or not mine & set(other["nodes"]):
            continue
        for s, e in occurrences(other, t0, t1):
            if any(s < e2 and s2 < e for s2, e2 in windows):
                return other["name"]
    return None


# -- who may use it ------------------------------------------------------------------------

def _match(entries, value):
    """Slurm list semantics: ``[a, b]`` admits a and b; ``[-a, -b]`` admits everyone else."""
    if not entries:
        return None  # not restricted by this list
    negated = [e[1:] for e in entries if e.startswith("-")]
    if negated:
        return value not in negated
    return value in entries


def may_use(resv, user, groups, account):
    """May a job of ``user`` (member of ``groups``) charged to ``account`` run in ``resv``?

    Users (or Groups) and Accounts must each admit the job when given: Slurm
    requires a job to match both when both are set.
    """
    checks = []
    if resv.get("users"):
        checks.append(_match(resv["users"], user))
    elif resv.get("groups"):
        negated = [g[1:] for g in resv["groups"] if g.startswith("-")]
        if negated:
            checks.append(not set(groups) & set(negated))
        else:
            checks.append(bool(set(groups) & set(resv["groups"])))
    if resv.get("accounts"):
        checks.append(_match(resv["accounts"], account or ""))
    return bool(checks) and all(checks)


# -- what everyone else must keep off -------------------------------------------------------------

def blocked_windows(reservations, now, horizon):
    """``{node: [(start, end, maint), ...]}`` for windows that intersect ``[now, horizon)``.

    Each reservation's next window is included however far away it is, so a
    job with a very long (or no) time limit never starts on nodes it could
    not leave in time.
    """
    out = {}
    for resv in reservations:
        maint = "MAINT" in (resv.get("flags") or ())
        wins = list(occurrences(resv, now, horizon)) or list(occurrences(resv, now, math.inf, limit=1))
        for s, e in wins:
            for n in resv["nodes"]:
                out.setdefault(n, []).append((s, e, maint))
    for wins in out.values():
        wins.sort()
    return out


def job_duration(job):
    tl = job.get("time_limit")
    return math.inf if tl is None else tl * 60.0


def blocked_nodes(windows, now, duration):
    """Nodes a job outside their reservations may not start on now: it would not end before a window."""
    end = now + duration
    return {n for n, wins in windows.items() if any(s < end and e > now for s, e, _ in wins)}


def maint_blocked(windows, nodes, now, duration):
    """Whether a MAINT window keeps any of ``nodes`` from a job of ``duration`` starting now."""
    end = now + duration
    return any(maint and s < end and e > now
               for n in nodes for s, e, maint in windows.get(n, ()))


# -- the pass for jobs that asked for a reservation --------------------------------------------

def schedule_reserved(state, now, reservations, jobs):
    """Start (or explain) ``jobs`` -- pending jobs with ``job["reservation"]`` -- inside their reservations.

    ``jobs`` are in priority order; ``reservations`` maps name -> reservation
    dict; ``state`` is a :class:`~.fifo.SchedState` whose node views are updated
    with every start, so the main pass that follows sees what these jobs took.
    Returns :class:`~.fifo.Start`, :class:`~.fifo.SetReason` and
    :class:`~.backfill.Estimate` decisions: a job waiting for its reservation
    to begin is estimated to start with it. The jobs of a FLEX reservation may
    start before it, end after it and use any free node of their partition
    that no other reservation holds (Slurm's FLEX).
    """
    from .backfill import Estimate, _clear_estimate, _estimate_changed
    decisions = []
    others_windows = {}   # FLEX reservation name -> windows of every other reservation
    for job in jobs:
        resv = reservations.get(job.get("reservation"))
        partition = state.partitions.get(job["partition"])
        reason = ineligible_reason(job, partition, now, state)
        if reason is None and resv is None:
            reason = "ReservationDeleted"
        flex = reason is None and "FLEX" in (resv.get("flags") or ())
        if reason is None and not flex and not is_active(resv, now):
            reason = "Reservation"
            if _estimate_changed(job, resv["start_time"], list(resv["nodes"]), state.expand_hostlist):
                decisions.append(Estimate(job["job_id"], resv["start_time"], list(resv["nodes"])))
        else:
            _clear_estimate(job, decisions)
        if reason is None:
            members = set(partition["nodes"])
            names = [n for n in resv["nodes"] if n in state.nodes and n in members]
            if flex:
                windows = others_windows.get(resv["name"])
                if windows is None:
                    others = [r for r in reservations.values() if r["name"] != resv["name"]]
                    windows = others_windows[resv["name"]] = blocked_windows(others, now, now + WINDOW_HORIZON)
                busy = blocked_nodes(windows, now, job_duration(job))
                names = [n for n in names if n not in busy] + [
                    n for n in partition["nodes"] if n in state.nodes and n not in busy and n not in names]
            views = [state.nodes[n] for n in names if state.nodes[n].usable]
            count = len(job_task_ids(job)) if job.get("array_spec") else 1
            if _start_what_fits(job, views, state, decisions) == count:
                continue
            reason = ineligible_reason(job, partition, now, state) or "Resources"
        if job.get("reason") != reason:
            decisions.append(SetReason(job["job_id"], reason))
    return decisions


def split_pending(pending):
    """``(jobs that asked for a reservation, the others)``, each in the given (priority) order."""
    inside, outside = [], []
    for job in pending:
        (inside if job.get("reservation") else outside).append(job)
    return inside, outside


MAINT_REASON = "ReqNodeNotAvail, Reserved for maintenance"


def maint_reasons(decisions, jobs, state, windows, now):
    """Explain waits caused by a MAINT reservation with Slurm's reason for it.

    A job left waiting for Resources (the head of its partition's queue; the
    jobs behind it wait for Priority, as in Slurm) that would start now if the
    maintenance windows were not there gets reason ``ReqNodeNotAvail, Reserved
    for maintenance``. ``state`` is the pass's state (its node views already
    show what the pass started). At most a few placements per pass: one per
    blocked partition. Returns the decisions, edited.
    """
    if not any(m for wins in windows.values() for _, _, m in wins):
        return decisions
    started = {d.job_id for d in decisions if isinstance(d, Start)}
    final = {d.job_id: i for i, d in enumerate(decisions) if isinstance(d, SetReason)}
    drop = set()
    for job in jobs:
        jid = job["job_id"]
        if jid in started:
            continue
        i = final.get(jid)
        reason = decisions[i].reason if i is not None else job.get("reason")
        if reason not in ("Resources", MAINT_REASON):
            continue
        want = "Resources"
        if _kept_out_by_maint(job, state, windows, now):
            want = MAINT_REASON
        if i is not None:
            if want == job.get("reason"):
                drop.add(i)
            else:
                decisions[i] = SetReason(jid, want)
        elif want != job.get("reason"):
            decisions.append(SetReason(jid, want))
    return [d for i, d in enumerate(decisions) if i not in drop]


def _kept_out_by_maint(job, state, windows, now):
    part = state.partitions.get(job["partition"])
    if not part:
        return False
    duration = job_duration(job)
    if not maint_blocked(windows, part["nodes"], now, duration):
        return False
    others = {n: [w for w in wins if not w[2]] for n, wins in windows.items()}
    blocked = blocked_nodes(others, now, duration)
    views = [state.nodes[n] for n in part["nodes"] if n in state.nodes and n not in blocked]
    return place(job, views, expand_hostlist=state.expand_hostlist) is not None


def end_of_window(resv, overrun_minutes):
    """When jobs still running in ``resv``'s current window are ended (ResvOverRun; None = never)."""
    if overrun_minutes is None:
        return None
    return resv["end_time"] + overrun_minutes * 60
