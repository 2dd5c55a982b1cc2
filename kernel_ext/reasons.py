"""Why a job waits (or is suspended), in plain words, with what to do about it.

The queue dashboard shows these next to each pending job: Slurm's reason
codes (``Priority``, ``AssocMaxJobsLimit``, ``Reservation``...) mean little to
a student, and some (``PartitionTimeLimit``, ``*PerJob`` limits) mean the job
will never start, which deserves to be said plainly together with the limit.
Pure functions of the job dict (and its partition), no I/O.
"""

from .slurm_text import state_word

#: Pending reason -> (plain words, what to do). ``{...}`` are filled from the job and its partition.
REASONS = {
    "None": ("waiting for the scheduler's next pass", "nothing: it is considered within seconds"),
    "Priority": ("waiting behind jobs with higher priority in this partition",
                 "wait, or ask for fewer resources or a shorter time so it can backfill"),
    "Resources": ("waiting for resources: the nodes it can use are busy",
                  "wait for running jobs to end, or ask for fewer CPUs/memory/GPUs"),
    "JobHeldUser": ("held by you", "press Release (or %scontrol release {job_id}) to let it start"),
    "JobHeldAdmin": ("held by an administrator", "ask the administrators why"),
    "Dependency": ("waiting for the jobs it depends on to finish", "nothing: it starts when they end"),
    "DependencyNeverSatisfied": ("it depends on a job that failed, so it will never start",
                                 "cancel it and resubmit without that dependency"),
    "BeginTime": ("waiting for its requested start time", "nothing: it becomes eligible then"),
    "PartitionTimeLimit": ("its time limit ({limit}) is longer than partition {partition} allows "
                           "({max_time}), so it will never start",
                           "cancel it and resubmit with --time {max_time} or less, or use another partition"),
    "PartitionNodeLimit": ("it asks for more nodes than partition {partition} allows, so it will never start",
                           "cancel it and resubmit with fewer nodes"),
    "PartitionDown": ("partition {partition} is down", "wait for the administrators, or use another partition"),
    "PartitionInactive": ("partition {partition} is inactive", "use another partition"),
    "ReqNodeNotAvail": ("the nodes it needs are unavailable (down, drained or reserved)",
                        "wait, or resubmit without --nodelist/--constraint"),
    "NodeDown": ("a node it needs is down", "wait, or resubmit without that node"),
    "Reservation": ("waiting for reservation {reservation} to start (or for room inside it)",
                    "nothing: it starts when the reservation's nodes are free; scontrol show res {reservation} "
                    "says when"),
    "ReservationDeleted": ("the reservation it asked for was deleted, so it will never start",
                           "cancel it and resubmit without --reservation (or with another one)"),
    "ReqNodeNotAvail, Reserved for maintenance": ("the nodes are reserved for maintenance",
                                                  "wait for the maintenance window to end"),
    "QOSMaxCpuPerUserLimit": ("you already use as many CPUs as your QOS allows", "wait for your other jobs to end"),
    "QOSMaxNodePerUserLimit": ("you already use as many nodes as your QOS allows",
                               "wait for your other jobs to end"),
    "QOSMaxCpuPerJobLimit": ("it asks for more CPUs than its QOS allows one job, so it will never start",
                             "cancel it and resubmit with fewer CPUs (sacctmgr show qos shows the limit)"),
    "QOSMaxNodePerJobLimit": ("it asks for more nodes than its QOS allows one job, so it will never start",
                              "cancel it and resubmit with fewer nodes"),
    "QOSMaxMemoryPerJob": ("it asks for more memory than its QOS allows one job, so it will never start",
                           "cancel it and resubmit with less --mem"),
    "QOSMaxGRESPerJob": ("it asks for more GPUs than its QOS allows one job, so it will never start",
                         "cancel it and resubmit with fewer GPUs"),
    "QOSGrpCpuLimit": ("everyone in its QOS together already uses all the CPUs the QOS may", "wait"),
    "QOSGrpMemLimit": ("everyone in its QOS together already uses all the memory the QOS may", "wait"),
    "QOSGrpGRES": ("everyone in its QOS together already uses all the GPUs the QOS may", "wait"),
    "QOSGrpNodeLimit": ("everyone in its QOS together already uses all the nodes the QOS may", "wait"),
    "QOSGrpJobsLimit": ("its QOS already runs as many jobs as it may", "wait for other jobs in the QOS to end"),
    "AssocGrpJobsLimit": ("your account already runs as many jobs as its group limit allows",
                          "wait for other jobs of the account to end"),
    "AssocGrpNodeLimit": ("your account's group already uses all the nodes it may", "wait"),
    "AssocMaxCpuPerJobLimit": ("it asks for more CPUs than your association allows one job, so it will never "
                               "start", "cancel it and resubmit with fewer CPUs (sacctmgr show assoc shows "
                                        "the limit)"),
    "AssocMaxNodePerJobLimit": ("it asks for more nodes than your association allows one job, so it will never "
                                "start", "cancel it and resubmit with fewer nodes"),
    "AssocMaxMemPerJob": ("it asks for more memory than your association allows one job, so it will never start",
                          "cancel it and resubmit with less --mem"),
    "AssocMaxGRESPerJob": ("it asks for more GPUs than your association allows one job, so it will never start",
                           "cancel it and resubmit with fewer GPUs"),
    "JobArrayTaskLimit": ("waiting for other tasks of its array to finish", "nothing"),
    "QOSMaxJobsPerUserLimit": ("you already run as many jobs as your QOS allows",
                               "wait for your other jobs to end"),
    "AssocMaxJobsLimit": ("you already run as many jobs in this account as your association allows (MaxJobs)",
                          "wait for your other jobs in the account to end"),
    "AssocMaxWallDurationPerJobLimit": ("its time limit ({limit}) is longer than your association allows, "
                                        "so it will never start",
                                        "cancel it and resubmit with a shorter --time"),
    "QOSMaxWallDurationPerJobLimit": ("its time limit ({limit}) is longer than its QOS allows, "
                                      "so it will never start", "cancel it and resubmit with a shorter --time"),
    "AssocGrpCpuLimit": ("your account (everyone in it together) already uses all the CPUs it may (GrpTRES cpu)",
                         "wait for jobs of the account to end, or ask the instructor/admin to raise GrpTRES"),
    "AssocGrpMemLimit": ("your account's group already uses all the memory it may", "wait"),
    "AssocGrpGRES": ("your account's group already uses all the GPUs it may", "wait"),
    "QOSMaxMemoryPerUser": ("you already use as much memory as your QOS allows", "wait for your other jobs to end"),
    "QOSMaxGRESPerUser": ("you already use as many GPUs as your QOS allows", "wait for your other jobs to end"),
    "AccountNotAllowed": ("partition {partition} does not admit its account, so it will never start",
                          "cancel it and resubmit with another -A or partition"),
    "QOSNotAllowed": ("partition {partition} does not admit its QOS, so it will never start",
                      "cancel it and resubmit with another --qos or partition"),
    "BadConstraints": ("no node matches its constraints, so it will never start",
                       "cancel it and resubmit with other --constraint/--gres"),
}


def _minutes(value):
    if value is None or value == "" or (isinstance(value, (int, float)) and value < 0):
        return "no limit"
    try:
        m = int(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{m // 60}:{m % 60:02d}:00" if m >= 60 else f"{m} min"


#: Why a SUSPENDED job is stopped (``suspend_kind``, BatchHub's job field) -> (plain words, what to do).
SUSPENDED = {
    "preempt": ("suspended: a higher-priority job preempted it{by} and took its CPUs",
                "nothing: it resumes where it stopped when that job ends; its time limit does not run meanwhile"),
    "gang": ("suspended for now: it shares its CPUs with other jobs in turns (gang time-slicing)",
             "nothing: its next time slice comes within the partition's slice time"),
    "admin": ("suspended by an administrator", "ask the administrators; scontrol resume {job_id} resumes it"),
    "": ("suspended: stopped in place (preempted, time-sliced or by an administrator)",
         "nothing: it resumes where it stopped; its time limit does not run meanwhile"),
}


def explain_reason(job, partitions=None):
    """``(plain words, what to do)`` for a pending or suspended job; ``("", "")`` for any other."""
    state = state_word(job.get("state"))
    if state == "SUSPENDED":
        kind = job.get("suspend_kind") if job.get("suspend_kind") in SUSPENDED else ""
        by = (job.get("preempt") or {}).get("by")
        words, todo = SUSPENDED[kind]
        return words.format(by=f" (job {by})" if by else ""), todo.format(job_id=job.get("job_id"))
    if state != "PENDING":
        return "", ""
    reason = job.get("reason") or "None"
    words, todo = REASONS.get(reason, (f"waiting ({reason})", "see %scontrol show job {job_id}"))
    part = (partitions or {}).get(job.get("partition")) or {}
    fields = {"job_id": job.get("job_id"), "partition": job.get("partition") or "?",
              "limit": _minutes(job.get("time_limit")), "max_time": _minutes(part.get("max_time")),
              "reservation": job.get("reservation") or "(its reservation)"}
    return words.format(**fields), todo.format(**fields)
