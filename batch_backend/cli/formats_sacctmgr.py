"""sacctmgr's tables: field names, widths and values as Slurm prints them.

Slurm's ``print_fields``: every column right-justified to its width and
followed by one space (the last one too), a line of dashes under the header,
values longer than the column cut with a ``+``; ``-p`` ends every field with
``|``, ``-P`` separates fields with ``|``. Field names are matched
case-insensitively, by prefix, and ``Name%N`` sets a width, as sacctmgr does.
"""

from ..timespec import format_hms
from ..tres import format_tres


def _minutes(value):
    return "" if value is None else format_hms(int(value) * 60)


def _int(value):
    return "" if value is None else str(value)


def _tres(value):
    return format_tres(value or {})


def _qos_list(value):
    return ",".join(sorted(value or []))


def _tres_one(name, key):
    return lambda r: _int((r.get(key) or {}).get(name))


#: canonical name -> (header, width, value(row)); rows are the API's record dicts, merged
FIELDS = {
    "account": ("Account", 10, lambda r: r.get("account") or ""),
    "adminlevel": ("Admin", 9, lambda r: r.get("admin_level") or ""),
    "cluster": ("Cluster", 10, lambda r: r.get("cluster") or ""),
    "controlhost": ("ControlHost", 15, lambda r: r.get("control_host") or ""),
    "controlport": ("ControlPort", 12, lambda r: _int(r.get("control_port", 0))),
    "defaultaccount": ("Def Acct", 10, lambda r: r.get("default_account") or ""),
    "defaultqos": ("Def QOS", 9, lambda r: r.get("default_qos") or ""),
    "description": ("Descr", 20, lambda r: r.get("description") or ""),
    "flags": ("Flags", 20, lambda r: ",".join(r.get("flags") or [])),
    "gracetime": ("GraceTime", 10, lambda r: format_hms(r.get("grace_time") or 0) if "grace_time" in r else ""),
    "grpjobs": ("GrpJobs", 7, lambda r: _int(r.get("grp_jobs"))),
    "grpjobsaccrue": ("GrpJobsAccrue", 13, lambda r: ""),
    "grpsubmitjobs": ("GrpSubmit", 9, lambda r: _int(r.get("grp_submit"))),
    "grptres": ("GrpTRES", 13, lambda r: _tres(r.get("grp_tres"))),
    "grptresmins": ("GrpTRESMins", 13, lambda r: ""),
    "grptresrunmins": ("GrpTRESRunMin", 13, lambda r: ""),
    "grpwall": ("GrpWall", 11, lambda r: _minutes(r.get("grp_wall"))),
    "maxcpus": ("MaxCPUs", 8, _tres_one("cpu", "max_tres_per_job")),
    "maxcpumins": ("MaxCPUMins", 11, lambda r: ""),
    "maxjobs": ("MaxJobs", 7, lambda r: _int(r.get("max_jobs"))),
    "maxjobspa": ("MaxJobsPA", 9, lambda r: ""),
    "maxjobspu": ("MaxJobsPU", 9, lambda r: _int(r.get("max_jobs_pu"))),
    "maxnodes": ("MaxNodes", 8, _tres_one("node", "max_tres_per_job")),
    "maxsubmitjobs": ("MaxSubmit", 9, lambda r: _int(r.get("max_submit"))),
    "maxsubmitpa": ("MaxSubmitPA", 11, lambda r: ""),
    "maxsubmitpu": ("MaxSubmitPU", 11, lambda r: _int(r.get("max_submit_pu"))),
    "maxtres": ("MaxTRES", 13, lambda r: _tres(r.get("max_tres_per_job"))),
    "maxtresmins": ("MaxTRESMins", 13, lambda r: ""),
    "maxtrespa": ("MaxTRESPA", 13, lambda r: ""),
    "maxtrespernode": ("MaxTRESPerNode", 14, lambda r: ""),
    "maxtrespu": ("MaxTRESPU", 13, lambda r: _tres(r.get("max_tres_pu"))),
    "maxwall": ("MaxWall", 11, lambda r: _minutes(r.get("max_wall"))),
    "mintres": ("MinTRES", 13, lambda r: ""),
    "name": ("Name", 10, lambda r: r.get("name") or ""),
    "organization": ("Org", 20, lambda r: r.get("organization") or ""),
    "parentname": ("Par Name", 10, lambda r: (r.get("parent") or "") if not r.get("user") else ""),
    "partition": ("Partition", 10, lambda r: r.get("partition") or ""),
    "preempt": ("Preempt", 10, lambda r: ",".join(sorted(r.get("preempt") or []))),
    "preemptexempttime": ("PreemptExemptTime", 19, lambda r: ""),
    "preemptmode": ("PreemptMode", 11, lambda r: r.get("preempt_mode") or ""),
    "priority": ("Priority", 10, lambda r: _int(r.get("priority"))),
    "qos": ("QOS", 20, lambda r: _qos_list(r.get("qos"))),
    "rpc": ("RPC", 5, lambda r: _int(r.get("rpc"))),
    "share": ("Share", 9, lambda r: _int(r.get("shares"))),
    "usagefactor": ("UsageFactor", 11, lambda r: f"{float(r.get('usage_factor', 1.0)):.6f}"),
    "usagethreshold": ("UsageThres", 10, lambda r: ""),
    "user": ("User", 10, lambda r: r.get("user") or ""),
}

#: what users type -> canonical field (Slurm's spellings and abbreviations)
ALIASES = {
    "acct": "account", "admin": "adminlevel", "clusters": "cluster", "defacct": "defaultaccount",
    "defqos": "defaultqos", "descr": "description", "fairshare": "share", "grpsubmit": "grpsubmitjobs",
    "maxsubmit": "maxsubmitjobs", "maxtresperjob": "maxtres", "maxtresperuser": "maxtrespu",
    "maxjobsperuser": "maxjobspu", "maxsubmitjobsperuser": "maxsubmitpu", "maxsubmitjobspu": "maxsubmitpu",
    "maxwalldurationperjob": "maxwall", "org": "organization", "parent": "parentname",
    "qoslevel": "qos", "shares": "share", "users": "user", "usagethres": "usagethreshold",
    "grptresrunmin": "grptresrunmins",
}

DEFAULT_FORMATS = {
    "account": "Account,Descr,Org",
    "account_assoc": "Account,Descr,Org,Cluster,ParentName,User,Share,Priority,GrpJobs,GrpTRES,GrpSubmit,"
                     "GrpWall,GrpTRESMins,MaxJobs,MaxTRES,MaxTRESPerNode,MaxSubmit,MaxWall,MaxTRESMins,QOS,"
                     "DefaultQOS,GrpTRESRunMins",
    "user": "User,DefaultAccount,AdminLevel",
    "user_assoc": "User,DefaultAccount,AdminLevel,Cluster,Account,Partition,Share,Priority,MaxJobs,MaxNodes,"
                  "MaxCPUs,MaxSubmit,MaxWall,MaxCPUMins,QOS,DefaultQOS",
    "association": "Cluster,Account,User,Partition,Share,Priority,GrpJobs,GrpTRES,GrpSubmit,GrpWall,"
                   "GrpTRESMins,MaxJobs,MaxTRES,MaxTRESPerNode,MaxSubmit,MaxWall,MaxTRESMins,QOS,DefaultQOS,"
                   "GrpTRESRunMins",
    "qos": "Name,Priority,GraceTime,Preempt,PreemptExemptTime,PreemptMode,Flags%40,UsageThres,UsageFactor,"
           "GrpTRES,GrpTRESMins,GrpTRESRunMins,GrpJobs,GrpSubmit,GrpWall,MaxTRES,MaxTRESPerNode,MaxTRESMins,"
           "MaxWall,MaxTRESPU,MaxJobsPU,MaxSubmitPU,MaxTRESPA,MaxJobsPA,MaxSubmitPA,MinTRES",
    "cluster": "Cluster,ControlHost,ControlPort,RPC,Share,GrpJobs,GrpTRES,GrpSubmit,MaxJobs,MaxTRES,MaxSubmit,"
               "MaxWall,QOS,DefaultQOS",
}


class FieldError(ValueError):
    """An unknown format field (sacctmgr: ``Unknown field 'x'``)."""


def resolve_field(text):
    """``'MaxJobs%12'`` -> (canonical, header, width)."""
    name, _, width = text.partition("%")
    low = name.strip().lower()
    canonical = ALIASES.get(low, low)
    if canonical not in FIELDS:
        matches = sorted(f for f in FIELDS if f.startswith(low)) if len(low) >= 2 else []
        if len(matches) != 1:
            raise FieldError(f"Unknown field '{name}'")
        canonical = matches[0]
    header, default_width, _ = FIELDS[canonical]
    try:
        width = int(width) if width else default_width
    except ValueError:
        raise FieldError(f"Unknown field '{text}'") from None
    return canonical, header, width


def parse_format(text):
    return [resolve_field(f) for f in text.split(",") if f.strip()]


def _cell(value, width):
    size = abs(width)
    if len(value) > size:
        value = value[:size - 1] + "+"
    return value.rjust(size) if width > 0 else value.ljust(size)


def render(rows, fields, *, header=True, parsable=None):
    """The table text; ``parsable`` is None, 'ending' (-p) or 'no_ending' (-P)."""
    lines = []
    if parsable:
        def line(values):
            return "|".join(values) + ("|" if parsable == "ending" else "")
        if header:
            lines.append(line([h for _, h, _ in fields]))
        for row in rows:
            lines.append(line([FIELDS[c][2](row) for c, _, _ in fields]))
    else:
        if header:
            lines.append("".join(_cell(h, w) + " " for _, h, w in fields))
            lines.append("".join("-" * abs(w) + " " for _, _, w in fields))
        for row in rows:
            lines.append("".join(_cell(FIELDS[c][2](row), w) + " " for c, _, w in fields))
    return "".join(line + "\n" for line in lines)
