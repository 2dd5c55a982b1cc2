"""Job dependencies (``--dependency``) as Slurm evaluates them.

``afterok:1:2,afterany:3`` (all must hold) or ``afterok:1?afterok:2`` (any);
types ``after``, ``afterany``, ``afterok``, ``afternotok``, ``aftercorr``
(treated as afterok), ``singleton``. A dependency that can no longer be met
(afterok on a failed job) is reported as never satisfied
(``DependencyNeverSatisfied``) rather than waiting forever silently.
"""

from ..errors import InvalidRequest

TYPES = ("after", "afterany", "afterok", "afternotok", "aftercorr", "singleton")


def parse_dependency(text):
    """-> (mode 'all'|'any', [(type, [job_id, ...]), ...]); InvalidRequest on bad syntax."""
    text = text.strip()
    if not text:
        return "all", []
    if "," in text and "?" in text:
        raise InvalidRequest("Job dependency problem: cannot mix ',' and '?'")
    mode, sep = ("any", "?") if "?" in text else ("all", ",")
    terms = []
    for term in text.split(sep):
        parts = term.split(":")
        kind = parts[0].strip().lower()
        if kind not in TYPES:
            raise InvalidRequest(f"Job dependency problem: unknown type {kind!r}")
        if kind == "singleton":
            if len(parts) != 1:
                raise InvalidRequest("Job dependency problem: singleton takes no job ids")
            terms.append((kind, []))
            continue
        ids = []
        for p in parts[1:]:
            p = p.split("+")[0].split("_")[0].strip()
            if not (p.isascii() and p.isdigit()):
                raise InvalidRequest(f"Job dependency problem: invalid job id {p!r}")
            ids.append(int(p))
        if not ids:
            raise InvalidRequest(f"Job dependency problem: {kind} needs job ids")
        terms.append((kind, ids))
    return mode, terms


def validate_dependency(text, lookup):
    """Reject syntax errors and references to jobs that never existed (as Slurm does)."""
    _, terms = parse_dependency(text)
    for _, ids in terms:
        for job_id in ids:
            if lookup(job_id) is None:
                raise InvalidRequest("Job dependency problem", detail_lines=[f"job {job_id} does not exist"])


def _term_state(kind, ids, job, lookup, singleton_check):
    """(satisfied, never) for one term."""
    if kind == "singleton":
        return (singleton_check(job), False)
    satisfied, never = True, False
    for job_id in ids:
        other = lookup(job_id)
        if other is None:
            continue  # purged long ago: treat as done
        state = other["state"]
        if kind == "after":
            ok = state != "PENDING"
        elif kind == "afterany":
            ok = state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                           "PREEMPTED", "BOOT_FAIL", "DEADLINE")
        elif kind in ("afterok", "aftercorr"):
            ok = state == "COMPLETED"
            if state in ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"):
                never = True
        else:  # afternotok
            ok = state in ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")
            if state == "COMPLETED":
                never = True
        satisfied = satisfied and ok
    return satisfied, never


def dependency_state(job, lookup, jobs_of_user=None):
    """(satisfied, never_satisfiable) for ``job``'s dependency expression."""
    mode, terms = parse_dependency(job.get("dependency") or "")

    def singleton_ok(j):
        if jobs_of_user is None:
            return True
        return not any(o["job_id"] != j["job_id"] and o["name"] == j["name"] and o["state"] in ("RUNNING", "SUSPENDED", "COMPLETING")
                       for o in jobs_of_user(j["user"]))

    results = [_term_state(kind, ids, job, lookup, singleton_ok) for kind, ids in terms]
    if not results:
        return True, False
    if mode == "all":
        return all(s for s, _ in results), any(n for _, n in results)
    return any(s for s, _ in results), all(n for _, n in results)
