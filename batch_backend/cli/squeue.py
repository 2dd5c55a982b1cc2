"""squeue: list unfinished jobs in Slurm's formats (SLURM_DIALECT section 5).

batchspawner polls ``squeue -h -j ID -o '%T %B'`` every 0.5 s while a server
starts, so the common path is one ``GET /jobs`` and one formatted line. The
visibility rules that clients depend on:

* a finished job vanishes at once, even with ``-j`` (empty stdout, rc 0),
  unless ``-t all`` (or a final state) is asked for;
* ``-j`` with a single id that never existed (or was purged): rc 1 and
  ``slurm_load_jobs error: Invalid job id specified`` - found out with one
  ``GET /jobs/ID`` only when the list came back empty, as Slurm does;
* controller unreachable: rc 1, ``slurm_load_jobs error: Unable to contact
  slurm controller (connect failure)`` (batchspawner keeps waiting on it).
"""

import os
import sys
import time

from .. import model
from . import common, formats_common, formats_squeue
from .common import COUNT, FLAG, LIST, VALUE, CommandError, UsageError

PROG = "squeue"

OPTIONS = common.options(
    ("A", "account,accounts", "accounts", LIST),
    ("a", "all", "all", FLAG),
    ("r", "array", "array", FLAG),
    ("O", "Format", "format_long", VALUE),
    ("o", "format", "format", VALUE),
    (None, "help", "help", FLAG),
    (None, "usage", "usage", FLAG),
    (None, "hide", "hide", FLAG),
    ("i", "iterate", "iterate", VALUE),
    ("j", "jobs,job", "jobs", LIST),
    (None, "local", "local", FLAG),
    ("l", "long", "long", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    (None, "me", "me", FLAG),
    ("n", "name", "names", LIST),
    ("h", "noheader", "noheader", FLAG),
    ("p", "partition,partitions", "partitions", LIST),
    ("q", "qos", "qos", LIST),
    ("R", "reservation", "reservation", VALUE),
    ("S", "sort", "sort", VALUE),
    (None, "start", "start", FLAG),
    ("s", "steps", "steps", FLAG),
    ("t", "states,state", "states", LIST),
    ("u", "user,users", "users", LIST),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
    ("w", "nodelist,nodes,node", "nodelist", VALUE),
)

USAGE = """\
Usage: squeue [-A account] [--clusters names] [-i seconds] [--job jobid]
              [-n name] [-o format] [-p partitions] [--qos qos]
              [--sort fields] [--start] [-t states] [-u user_name] [--usage]
              [-w nodes] [-ahjlrsv]
"""

HELP = """\
Usage: squeue [OPTIONS]
  -A, --account=account(s)        comma separated list of accounts to view
  -a, --all                       display jobs in hidden partitions
  -h, --noheader                  no headers on output
  -i, --iterate=seconds           specify an interation period
  -j, --job=job(s)                comma separated list of jobs IDs to view
  -l, --long                      long report
      --me                        equivalent to --user=<my username>
  -n, --name=job_name(s)          comma separated list of job names to view
  -o, --format=format             format specification
  -O, --Format=format             format specification (field names)
  -p, --partition=partition(s)    comma separated list of partitions to view
  -r, --array                     display one job array element per line
  -R, --reservation=name          reservation to view
  -s, --steps                     show job steps
  -S, --sort=fields               comma separated list of fields to sort on
      --start                     print expected start times of pending jobs
  -t, --states=states             comma separated list of states to view
                                  (pending, running, ... or all)
  -u, --user=user_name(s)         comma separated list of users to view
  -v, --verbose                   verbosity level
  -V, --version                   output version information and exit

Help options:
  --help                          show this help message
  --usage                         display a brief summary of squeue options
"""

def _valid_job_id(text):
    """'N' or 'A_i' (checked without `re`: squeue must start fast)."""
    base, sep, index = text.partition("_")
    return base.isascii() and base.isdigit() and (not sep or (index.isascii() and index.isdigit()))
_LONG_STATES = {code: name for name, code in model.JOB_STATE_CODES.items()}


def parse_states(values):
    """``-t pd,R,completed`` -> (long names or None for 'all', any_final?)."""
    items = common.split_list(values)
    if any(s.lower() == "all" for s in items):
        return None, True
    states = []
    for item in items:
        up = item.upper()
        if up in model.JOB_STATE_CODES:
            states.append(up)
        elif up in _LONG_STATES:
            states.append(_LONG_STATES[up])
        else:
            valid = ",".join(model.JOB_STATE_CODES)
            raise UsageError(f"Invalid job state specified: {item}\nValid job states include: {valid}")
    return states, any(s not in model.ACTIVE_STATES for s in states)


def parse_job_ids(values):
    """``-j 4034,4039_1`` -> ['4034', '4039_1']; ``squeue: error: Invalid job id: X`` otherwise."""
    ids = common.split_list(values)
    for job_id in ids:
        if not _valid_job_id(job_id) or int(job_id.split("_")[0]) <= 0:
            raise UsageError(f"Invalid job id: {job_id}")
    return ids


def build_columns(opts):
    """The compiled columns for the options (-o, -O, -l, --start, env SQUEUE_FORMAT[2])."""
    if opts["format"] is not None and opts["format_long"] is not None:
        raise UsageError("-O (--Format) is incompatible with -o (--format)")
    if opts["long"] and opts["format"] is not None:
        raise UsageError("Options -o(--format) and -l(--long) are mutually exclusive. Please remove one and retry.")
    fmt, fmt_long = opts["format"], opts["format_long"]
    if fmt is None and fmt_long is None and not opts["long"] and not opts["start"]:
        fmt = os.environ.get("SQUEUE_FORMAT") or None
        if fmt is None:
            fmt_long = os.environ.get("SQUEUE_FORMAT2") or None
    if fmt is None and fmt_long is None:
        fmt = (formats_squeue.SQUEUE_LONG if opts["long"]
               else formats_squeue.SQUEUE_START if opts["start"] else formats_squeue.SQUEUE_DEFAULT)
    if fmt_long is not None:
        columns, invalid = formats_squeue.parse_squeue_long_format(fmt_long)
    else:
        columns, invalid = formats_squeue.parse_squeue_format(fmt)
    for code in invalid:
        sys.stderr.write(f"{PROG}: error: Invalid job format specification: {code}\n")
    return columns


def _matches(job, job_id):
    """Does a returned row answer the requested id ('N', 'A' or 'A_i')?"""
    base, _, task = job_id.partition("_")
    if str(job.get("job_id")) == job_id or job.get("display_id") == job_id:
        return True
    if job.get("array_job_id") is not None and str(job["array_job_id"]) == base:
        if not task:
            return True
        if job.get("array_task_id") is not None:
            return str(job["array_task_id"]) == task
        spec = job.get("array_spec")
        return bool(spec) and int(task) in formats_common.expand_array_spec(spec)
    return False


def wanted_fields(opts, columns):
    """Job keys to fetch (None = all) for these options and columns."""
    if opts["steps"] or opts["sort"] or os.environ.get("SQUEUE_SORT"):
        return None
    extra = []
    if opts["accounts"]:
        extra.append("account")
    if opts["qos"]:
        extra.append("qos")
    if opts["reservation"]:
        extra.append("reservation")
    if opts["nodelist"]:
        extra.append("nodes")
    return formats_squeue.squeue_fields(columns, extra)


def query(client, opts, fields=None):
    """Fetch the jobs the options select; raise the invalid-id error as Slurm would."""
    ids = parse_job_ids(opts["jobs"])
    states, any_final = parse_states(opts["states"])
    if opts["start"] and not opts["states"]:
        states = ["PENDING"]
    users = common.split_list(opts["users"])
    if opts["me"]:
        users = [common.caller_name(client)]
    jobs = client.jobs(ids=ids or None, users=users or None,
                       partitions=common.split_list(opts["partitions"]) or None,
                       states=states or None, names=common.split_list(opts["names"]) or None,
                       include_finished=any_final, fields=fields,
                       hide_hidden=not (opts["all"] or opts["partitions"] or ids))
    accounts = set(common.split_list(opts["accounts"]))
    if accounts:
        jobs = [j for j in jobs if j.get("account") in accounts]
    qos = set(common.split_list(opts["qos"]))
    if qos:
        jobs = [j for j in jobs if j.get("qos") in qos]
    if opts["reservation"]:
        jobs = [j for j in jobs if j.get("reservation") == opts["reservation"]]
    if opts["nodelist"]:
        from .. import hostlist
        wanted = set(hostlist.expand(opts["nodelist"]))
        jobs = [j for j in jobs if wanted.intersection(j.get("nodes") or [])]
    if len(ids) == 1 and not any(_matches(j, ids[0]) for j in jobs):
        from ..client import NotFound
        try:
            client.job(ids[0])
        except NotFound:
            raise CommandError("slurm_load_jobs error: Invalid job id specified", raw=True) from None
    return jobs


def render(jobs, opts, columns, now=None):
    """The text of one squeue report for already-fetched jobs."""
    now = time.time() if now is None else now
    if opts["steps"]:
        return formats_squeue.format_squeue_steps(jobs, header=not opts["noheader"], now=now)
    if opts["array"]:
        jobs = formats_common.expand_array_rows(jobs)
    sort = opts["sort"] or os.environ.get("SQUEUE_SORT") or ("S" if opts["start"] else None)
    try:
        jobs = formats_common.sort_jobs(jobs, sort, now=now)
    except ValueError as e:
        raise UsageError(str(e)) from None
    text = formats_squeue.format_squeue(jobs, columns, header=not opts["noheader"], now=now)
    if not opts["noheader"] and (opts["long"] or opts["iterate"]):
        text = formats_common.date_line(now) + text
    return text


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if args:
        raise CommandError(f"{PROG}: error: Unrecognized option: {args[0]}\n{USAGE.rstrip()}", raw=True)
    iterate = 0
    if opts["iterate"] is not None:
        try:
            iterate = int(opts["iterate"])
        except ValueError:
            iterate = 0
        if iterate <= 0:
            raise UsageError(f"--iterate={opts['iterate']}")
    columns = build_columns(opts)
    from ..client import Client
    client = Client()
    fields = wanted_fields(opts, columns)
    while True:
        jobs = query(client, opts, fields)
        common.write_out(render(jobs, opts, columns))
        if not iterate:
            return 0
        common.write_out("\n")
        sys.stdout.flush()
        time.sleep(iterate)


def main(argv=None):
    common.run_command(PROG, run, argv, unreachable="slurm_load_jobs error: {reason}")


if __name__ == "__main__":
    main()
