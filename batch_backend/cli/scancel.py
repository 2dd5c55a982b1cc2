"""scancel: cancel or signal jobs (SLURM_DIALECT section 8).

batchspawner fails a server stop on a non-zero rc, so unknown and finished
ids are not errors: rc 0 and no output (``-v`` reports them on stderr). A job
of another user is an error (``Access/permission denied``, rc 1). When the
controller does not answer, every id gets Slurm's ``Kill job error`` line and
the rc is non-zero.
"""


from . import common
from .common import COUNT, FLAG, LIST, VALUE, UsageError

PROG = "scancel"

OPTIONS = common.options(
    ("A", "account", "accounts", LIST),
    ("b", "batch", "batch", FLAG),
    ("f", "full", "full", FLAG),
    (None, "help", "help", FLAG),
    (None, "usage", "usage", FLAG),
    ("H", "hurry", "hurry", FLAG),
    ("i", "interactive", "interactive", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    (None, "me", "me", FLAG),
    ("n", "name,jobname", "names", LIST),
    ("p", "partition", "partitions", LIST),
    ("Q", "quiet", "quiet", FLAG),
    ("q", "qos", "qos", LIST),
    ("R", "reservation", "reservation", VALUE),
    ("s", "signal", "signal", VALUE),
    ("t", "state,states", "states", LIST),
    ("u", "user", "users", LIST),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
    ("w", "nodelist", "nodelist", VALUE),
)

USAGE = """\
Usage: scancel [-A account] [--batch] [--full] [--interactive] [-n job_name]
               [-p partition] [-Q] [-q qos] [-R reservation] [-s signal | integer]
               [-t PENDING | RUNNING | SUSPENDED] [--usage] [-u user_name]
               [--hurry] [-V] [-v] [-w hosts...] [--me] [job_id[_array_id][.step_id]]
"""

HELP = """\
Usage: scancel [OPTIONS] [job_id[_array_id][.step_id]]
  -A, --account=account           act only on jobs charging this account
  -b, --batch                     signal batch shell for specified job
  -f, --full                      signal batch shell and all steps for specified job
  -H, --hurry                     avoid burst buffer stage out
      --me                        cancel jobs of the current user
  -n, --name=job_name             act only on jobs with this name
  -p, --partition=partition       act only on jobs in this partition
  -Q, --quiet                     disable warnings
  -q, --qos=qos                   act only on jobs with this quality of service
  -s, --signal=name | integer     signal to send to job, default is SIGKILL
  -t, --state=states              act only on jobs in this state.  Valid job
                                  states are PENDING, RUNNING and SUSPENDED
  -u, --user=user_name            act only on jobs of this user
  -V, --version                   output version information and exit
  -v, --verbose                   verbosity level

Help options:
  --help                          show this help message
  --usage                         display brief usage message
"""

#: Linux signal numbers (the controller delivers numbers, as Slurm does).
SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}

_JOB_ID_PATTERN = r"^[0-9]+(_([0-9]+|\[[0-9,\-%:]+\]))?(\.([0-9]+|batch|extern))?$"


def _match_job_id(text):
    """Parse a job id argument; `re` is imported only when ids are given (fast start)."""
    import re
    return re.match(_JOB_ID_PATTERN, text)


def parse_signal(text):
    """``USR1``, ``SIGUSR1``, ``usr1`` or ``10`` -> 10; UsageError otherwise."""
    value = text.strip()
    if (value.isascii() and value.isdigit()):
        number = int(value)
        if 0 <= number <= 64:
            return number
    else:
        name = value.upper()
        if name.startswith("SIG"):
            name = name[3:]
        if name in SIGNALS:
            return SIGNALS[name]
    raise UsageError(f"Invalid job signal: {text}")


def parse_ids(args):
    """Positional ids (space or comma separated) after validation."""
    ids = common.split_list(args)
    for job_id in ids:
        if not _match_job_id(job_id):
            raise UsageError(f"Invalid job id {job_id}")
    return ids


def _long_state(text):
    from .. import model
    up = text.upper()
    if up in model.JOB_STATE_CODES:
        return up
    for name, code in model.JOB_STATE_CODES.items():
        if code == up:
            return name
    raise UsageError(f"Invalid job state specified: {text}")


def report(result, ids, verbose, signal):
    """(stderr text, rc) for the controller's answer."""
    lines = []
    rc = 0
    for job_id in result.get("denied") or []:
        lines.append(f"{PROG}: error: Kill job error on job id {job_id}: Access/permission denied")
        rc = 1
    if verbose:
        for job_id in result.get("cancelled") or []:
            lines.append(f"{PROG}: Terminating job {job_id}")
        for job_id in result.get("signalled") or []:
            lines.append(f"{PROG}: Signal {signal} to job {job_id}")
        for job_id in result.get("not_found") or []:
            lines.append(f"{PROG}: error: Kill job error on job id {job_id}: Invalid job id specified")
    return "".join(line + "\n" for line in lines), rc


def run(argv, context):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if opts["interactive"]:
        raise UsageError("--interactive is not supported")
    ids = parse_ids(args)
    context["ids"] = ids
    signal = parse_signal(opts["signal"]) if opts["signal"] is not None else None
    users = common.split_list(opts["users"])
    names = common.split_list(opts["names"])
    partitions = common.split_list(opts["partitions"])
    states = [_long_state(s) for s in common.split_list(opts["states"])]
    if not ids and not (users or opts["me"] or names or partitions or states or opts["accounts"]
                        or opts["qos"] or opts["reservation"] or opts["nodelist"]):
        raise UsageError("No job identification provided")
    from ..client import Client
    client = Client()
    if opts["me"]:
        users = [common.caller_name(client)]
    extra = opts["accounts"] or opts["qos"] or opts["reservation"] or opts["nodelist"]
    if extra and not ids:
        # Filters the API does not know: select the ids here, then cancel them.
        jobs = client.jobs(users=users or None, names=names or None, partitions=partitions or None,
                           states=states or None)
        ids = [str(j.get("display_id") or j["job_id"]) for j in _filter(jobs, opts)]
        context["ids"] = ids
        if not ids:
            return 0
        users = names = partitions = states = None
    result = client.cancel(ids, signal=signal, batch_only=opts["batch"], full=opts["full"],
                           users=users or None, names=names or None, partitions=partitions or None,
                           states=states or None)
    text, rc = report(result, ids, opts["verbose"], signal)
    if text:
        import sys
        sys.stderr.write(text)
    return rc


def _filter(jobs, opts):
    accounts = set(common.split_list(opts["accounts"]))
    qos = set(common.split_list(opts["qos"]))
    nodes = None
    if opts["nodelist"]:
        from .. import hostlist
        nodes = set(hostlist.expand(opts["nodelist"]))
    for job in jobs:
        if accounts and job.get("account") not in accounts:
            continue
        if qos and job.get("qos") not in qos:
            continue
        if opts["reservation"] and job.get("reservation") != opts["reservation"]:
            continue
        if nodes is not None and not nodes.intersection(job.get("nodes") or []):
            continue
        yield job


def _unreachable(context):
    def text(reason):
        ids = context.get("ids") or []
        if not ids:
            return f"{PROG}: error: {reason}"
        return "\n".join(f"{PROG}: error: Kill job error on job id {i}: {reason}" for i in ids)
    return text


def main(argv=None):
    context = {}
    common.run_command(PROG, lambda a: run(a, context), argv,
                       unreachable=_unreachable(context), unreachable_rc=8)


if __name__ == "__main__":
    main()
