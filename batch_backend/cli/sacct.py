"""sacct: accounting records of jobs and their steps (SLURM_DIALECT section 6).

submitit polls ``sacct -o JobID,State,NodeList --parsable2 -j A -j B ...``
and reads the header line for column names, so ``-P`` output always starts
with Slurm's spelling of the field names; an unknown id is a header alone
with rc 0. Window: all time when ``-j`` is given, else since midnight unless
``-S``. Users: the caller's own jobs unless ``-a``, ``-u`` or ``-j`` (root:
everyone's), as Slurm does.
"""

import os

from . import common, formats_sacct
from .common import COUNT, FLAG, LIST, VALUE, UsageError

PROG = "sacct"

OPTIONS = common.options(
    ("a", "allusers", "allusers", FLAG),
    ("A", "accounts,account", "accounts", LIST),
    ("b", "brief", "brief", FLAG),
    ("D", "duplicates", "duplicates", FLAG),
    (None, "delimiter", "delimiter", VALUE),
    ("e", "helpformat", "helpformat", FLAG),
    ("E", "endtime", "end", VALUE),
    ("h", "help", "help", FLAG),
    ("j", "jobs,job", "jobs", LIST),
    ("l", "long", "long", FLAG),
    ("L", "allclusters", "allclusters", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    (None, "name,jobname", "names", LIST),
    ("n", "noheader", "noheader", FLAG),
    ("N", "nodelist", "nodelist", VALUE),
    ("o", "format,fields", "format", LIST),
    ("p", "parsable", "parsable", FLAG),
    ("P", "parsable2", "parsable2", FLAG),
    ("q", "qos", "qos", LIST),
    ("r", "partition", "partitions", LIST),
    ("s", "state,states", "states", LIST),
    ("S", "starttime", "start", VALUE),
    ("T", "truncate", "truncate", FLAG),
    ("u", "user,uid", "users", LIST),
    (None, "usage", "usage", FLAG),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
    ("X", "allocations", "allocations", FLAG),
)

USAGE = """\
Usage: sacct [-a] [-A accounts] [-b] [-D] [--delimiter char] [-e] [-E time]
             [-j job(.step)] [-l] [--name names] [-n] [-N nodes] [-o fields]
             [-p] [-P] [-q qos] [-r partitions] [-s states] [-S time]
             [-u users] [-X] [-h] [-V]
"""

HELP = """\
sacct [<OPTION>]
    Valid <OPTION> values are:
     -a, --allusers:     Display jobs for all users.
     -A, --accounts:     Use this comma separated list of accounts to select jobs.
     -b, --brief:        Equivalent to '--format=jobid,state,exitcode'.
     -D, --duplicates:   (accepted; every run of a requeued job is shown)
         --delimiter:    ASCII characters used to separate the fields when
                         specifying the -p or -P options. The default is '|'.
     -e, --helpformat:   Print a list of fields that can be specified with the
                         '--format' option
     -E, --endtime:      Select jobs eligible before this time.
     -h, --help:         Print this description of use.
     -j, --jobs:         Format is <job(.step)>. Display information about this
                         job or comma-separated list of jobs.
     -l, --long:         Equivalent to specifying '--format=' with the long list.
         --name:         Display jobs that have any of these name(s).
     -n, --noheader:     No header will be added to the beginning of output.
     -N, --nodelist:     Display jobs that ran on any of these nodes.
     -o, --format:       Comma separated list of fields (use "--helpformat"
                         for a list of available fields).
     -p, --parsable:     Output will be '|' delimited with a '|' at the end.
     -P, --parsable2:    Output will be '|' delimited without a '|' at the end.
     -q, --qos:          Only send data about jobs using these qos.
     -r, --partition:    Comma separated list of partitions to select jobs from.
     -s, --state:        Select jobs based on their state during the time period
                         given.
     -S, --starttime:    Select jobs eligible after this time.
     -u, --uid, --user:  Use this comma separated list of uids or user names
                         to select jobs to display.
     -V, --version:      Print version.
     -X, --allocations:  Only show statistics relevant to the job allocation
                         itself, not taking steps into consideration.
"""

_JOB_ID_PATTERN = r"^([0-9]+(?:_(?:[0-9]+|\[[0-9,\-%]+\]))?)(?:\.([0-9]+|batch|extern))?$"


def _match_job_id(text):
    """Parse a job id argument; `re` is imported only when ids are given (fast start)."""
    import re
    return re.match(_JOB_ID_PATTERN, text)


def parse_jobs(values):
    """``-j 4034,4039_1 -j 4035.batch`` -> (ids, step filter or None)."""
    ids, steps = [], set()
    for item in common.split_list(values):
        m = _match_job_id(item)
        if not m:
            raise UsageError(f"Bad job/step specified: {item}")
        if m.group(1) not in ids:
            ids.append(m.group(1))
        if m.group(2) is not None:
            steps.add((m.group(1), m.group(2)))
    return ids, (steps or None)


def parse_states(values):
    from .. import model
    codes = {code: name for name, code in model.JOB_STATE_CODES.items()}
    out = []
    for item in common.split_list(values):
        up = item.upper()
        if up in model.JOB_STATE_CODES:
            out.append(up)
        elif up in codes:
            out.append(codes[up])
        else:
            raise UsageError(f"Invalid state: {item}")
    return out


def field_spec(opts):
    if opts["format"]:
        return ",".join(opts["format"])
    if opts["long"]:
        return formats_sacct.SACCT_LONG
    if opts["brief"]:
        return formats_sacct.SACCT_BRIEF
    return os.environ.get("SACCT_FORMAT") or formats_sacct.SACCT_DEFAULT


def help_format():
    """``sacct -e``: the field names, four to a line."""
    names = formats_sacct.SACCT_FIELD_ORDER
    lines = []
    for i in range(0, len(names), 4):
        lines.append("".join(f"{n:<20}" for n in names[i:i + 4]).rstrip())
    return "\n".join(lines) + "\n"


def _caller(client, cache):
    if "ping" not in cache:
        cache["ping"] = client.ping()
    return cache["ping"]


def resolve_users(client, opts, ids, cache):
    """The user filter: -u names (checked), everybody, or the caller's own jobs."""
    users = common.split_list(opts["users"])
    if any(u.lower() == "all" or u == "-1" for u in users) or opts["allusers"]:
        return None
    if users:
        import pwd
        out = []
        for name in users:
            try:
                out.append(pwd.getpwuid(int(name)).pw_name if (name.isascii() and name.isdigit()) else pwd.getpwnam(name).pw_name)
                continue
            except (KeyError, ValueError):
                pass
            # Single-account mode: BatchHub users may be names without a passwd entry.
            if name == _caller(client, cache).get("user"):
                out.append(name)
                continue
            raise UsageError(f"Invalid user id: {name}")
        return out
    if ids:
        return None
    if os.environ.get("BATCHHUB_TOKEN"):
        me = _caller(client, cache)
        return None if me.get("uid") == 0 else [me.get("user") or common.current_user()]
    return None if os.getuid() == 0 else [common.current_user()]


def select(jobs, opts):
    """Filters the accounting API does not take: accounts, QOS, nodes."""
    accounts = set(common.split_list(opts["accounts"]))
    qos = set(common.split_list(opts["qos"]))
    nodes = None
    if opts["nodelist"]:
        from .. import hostlist
        nodes = set(hostlist.expand(opts["nodelist"]))
    out = []
    for job in jobs:
        if accounts and job.get("account") not in accounts:
            continue
        if qos and job.get("qos") not in qos:
            continue
        if nodes is not None and not nodes.intersection(job.get("nodes") or []):
            continue
        out.append(job)
    return out


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if opts["helpformat"]:
        common.write_out(help_format())
        return 0
    if args:
        raise UsageError(f"Unknown arguments: {' '.join(args)}")
    try:
        fields = formats_sacct.parse_sacct_fields(field_spec(opts))
    except ValueError as e:
        raise UsageError(str(e)) from None
    ids, step_filter = parse_jobs(opts["jobs"])
    states = parse_states(opts["states"])
    from .. import timespec
    try:
        start = timespec.parse_datetime(opts["start"]) if opts["start"] else None
        end = timespec.parse_datetime(opts["end"]) if opts["end"] else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if start is None and not ids:
        start = timespec.parse_datetime("today")
    from ..client import Client
    client = Client()
    cache = {}
    users = resolve_users(client, opts, ids, cache)
    jobs = client.accounting(ids=ids or None, users=users, start=None if start is None else int(start),
                             end=None if end is None else int(end), states=states or None,
                             partitions=common.split_list(opts["partitions"]) or None,
                             names=common.split_list(opts["names"]) or None)
    jobs = select(jobs, opts)
    parsable = "P" if opts["parsable2"] else ("p" if opts["parsable"] else None)
    rows = formats_sacct.sacct_rows(jobs, allocations_only=opts["allocations"], step_filter=step_filter)
    common.write_out(formats_sacct.format_sacct(rows, fields, header=not opts["noheader"], parsable=parsable,
                                                delimiter=opts["delimiter"] or "|"))
    return 0


def main(argv=None):
    common.run_command(PROG, run, argv)


if __name__ == "__main__":
    main()
