"""sprio: the factors that make up each pending job's priority (Slurm 22.05's sprio).

The controller computes the factors now (GET /v1/priority); this module only
formats them the way sprio does: ``%[.][size]type`` fields (``.`` = right
justify, the size both pads and cuts), weighted factors as whole numbers,
normalised ones (``-n``) with seven decimals. Default columns are Slurm's:
``%.15i %9r %.10Y %.10S`` plus one ``%.10X`` column per factor whose weight is
not zero; ``-l`` shows every factor and the nice value.
"""

import pwd

from . import common
from .common import FLAG, LIST, VALUE, COUNT, CommandError, UsageError

PROG = "sprio"

OPTIONS = common.options(
    ("h", "noheader", "noheader", FLAG),
    ("j", "jobs", "jobs", LIST),
    ("l", "long", "long", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    ("n", "norm", "norm", FLAG),
    ("o", "format", "format", VALUE),
    ("S", "sort", "sort", VALUE),
    ("p", "partition", "partitions", LIST),
    ("u", "user,users", "users", LIST),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
    ("w", "weights", "weights", FLAG),
    (None, "federation", "federation", FLAG),
    (None, "local", "local", FLAG),
    (None, "sibling", "sibling", FLAG),
    (None, "help", "help", FLAG),
    (None, "usage", "usage", FLAG),
    (None, "helpformat", "helpformat", FLAG),
)

USAGE = """\
Usage: sprio [-j jid[s]] [-u user_name[s]] [-o format] [-p partitions]
     [--federation] [--local] [--sibling] [--usage] [-hlnvVw]
"""

HELP = """\
Usage: sprio [OPTIONS]
      --federation                display jobs in federation if a member of one
  -h, --noheader                  no headers on output
  -j, --jobs                      comma separated list of jobs
                                  to view, default is all
      --local                     display jobs on local cluster only
  -l, --long                      long report
  -M, --cluster=cluster_name      cluster to issue commands to.
  -n, --norm                      display normalized values
  -o, --format=format             format specification
  -p, --partition=partition_name  comma separated list of partitions
      --sibling                   display job records separately for each
                                  federation cluster
  -S, --sort=sort_list            comma separated list of fields to sort on
  -u, --user=user_name            comma separated list of users to view
  -v, --verbose                   display more information
  -V, --version                   output version information and exit
  -w, --weights                   show the weights for each priority factor

Help options:
  --help                          show this help message
  --usage                         display a brief summary of sprio options
"""

#: (factor key, weight key) of the per-factor columns: upper case weighted, lower case normalised
_FACTORS = {"A": ("age", "age"), "B": ("assoc", "assoc"), "F": ("fairshare", "fairshare"),
            "J": ("jobsize", "jobsize"), "P": ("partition", "partition"), "Q": ("qos", "qos")}
_HEADERS = {"i": "JOBID", "r": "PARTITION", "u": "USER", "o": "ACCOUNT", "n": "QOSNAME", "c": "CLUSTER",
            "Y": "PRIORITY", "y": "PRIORITY", "S": "SITE", "A": "AGE", "a": "AGE", "B": "ASSOC", "b": "ASSOC",
            "F": "FAIRSHARE", "f": "FAIRSHARE", "J": "JOBSIZE", "j": "JOBSIZE", "P": "PARTITION",
            "p": "PARTITION", "Q": "QOS", "q": "QOS", "N": "NICE", "T": "TRES", "t": "TRES"}
_WEIGHT_KEYS = {"A": "age", "B": "assoc", "F": "fairshare", "J": "jobsize", "P": "partition", "Q": "qos"}


def default_format(weights, *, long, norm, users):
    """Slurm 22.05's sprio default columns (one per factor with a non-zero weight)."""
    def code(c):
        return c.lower() if norm else c
    if long:
        return (f"%.15i %9r %.8u %.10{code('Y')} %.10S %.10{code('A')} %.10{code('B')} %.10{code('F')} "
                f"%.10{code('J')} %.10{code('P')} %.10{code('Q')} %.11N %.20{code('T')}")
    fmt = "%.15i %9r"
    if users:
        fmt += " %.8u"
    fmt += f" %.10{code('Y')} %.10S"
    for c in "ABFJPQ":
        if weights.get(_WEIGHT_KEYS[c]):
            fmt += f" %.10{code(c)}"
    if weights.get("tres"):
        fmt += f" %20{code('T')}"
    return fmt


def parse_format(fmt):
    """``"%.15i %9r"`` -> (prefix, [(code, width, right, suffix)]); unknown codes are reported and skipped."""
    if "%" not in fmt:
        return fmt, []
    prefix, _, rest = fmt.partition("%")
    fields, invalid = [], []
    for token in rest.split("%"):
        if not token:
            continue
        i, right = 0, False
        if token[0] == ".":
            right, i = True, 1
        j = i
        while j < len(token) and token[j] in "0123456789":
            j += 1
        width = int(token[i:j]) if j > i else 0
        code, suffix = (token[j], token[j + 1:]) if j < len(token) else ("", "")
        if code in _HEADERS:
            fields.append((code, width, right, suffix))
        else:
            invalid.append(code)
    for code in invalid:
        common._write_err(f"{PROG}: error: Invalid job format specification: {code}")
    return prefix, fields


def _cell(text, width, right):
    text = str(text)
    if not width:
        return text
    text = text[:width]
    return text.rjust(width) if right else text.ljust(width)


def _tres_text(values, fmt):
    return ",".join(f"{name}={fmt % v}" for name, v in sorted(values.items()) if v)


def value_of(code, job, weights, cluster):
    """The text of one sprio field for one job (``job`` None = the -w weights row)."""
    if job is None:  # -w: the weights
        if code == "i":
            return "Weights"
        if code in "AaBbFfJjPpQq":
            return "%.0f" % (weights.get(_WEIGHT_KEYS[code.upper()]) or 0)
        if code == "S":
            return "1"
        if code in "Tt":
            return ",".join(f"{k.upper() if '/' not in k else k}={v}" for k, v in (weights.get("tres") or {}).items())
        return ""
    direct = job.get("direct")
    if code == "i":
        return str(job["job_id"])
    if code == "r":
        return job["partition"]
    if code == "u":
        return job["user"]
    if code == "o":
        return job.get("account") or ""
    if code == "n":
        return job.get("qos") or ""
    if code == "c":
        return cluster
    if code == "Y":
        return str(int(job["priority"]))
    if code == "y":
        return "%16.14f" % (job["priority"] / 4294967295.0)
    if code == "S":
        return "0"
    if code == "N":
        return "0" if direct else str(job.get("nice") or 0)
    if code in "ABFJPQ":
        return "0" if direct else "%.0f" % (job.get("weighted") or {}).get(_FACTORS[code][0], 0.0)
    if code in "abfjpq":
        key = _FACTORS[code.upper()][0]
        weight = weights.get(_WEIGHT_KEYS[code.upper()]) or 0
        value = (job.get("weighted") or {}).get(key, 0.0) / weight if weight else 0.0
        return "0" if direct else "%.7f" % value
    if code == "T":
        return "" if direct else _tres_text((job.get("weighted") or {}).get("tres") or {}, "%.0f")
    if code == "t":
        return "" if direct else _tres_text((job.get("factors") or {}).get("tres") or {}, "%.2f")
    return ""


def _sort_key(code, job):
    w = job.get("weighted") or {}
    if code == "i":
        return job["job_id"]
    if code in "Yy":
        return job["priority"]
    if code == "u":
        return job["user"]
    if code == "r":
        return job["partition"]
    if code == "o":
        return job.get("account") or ""
    if code == "n":
        return job.get("qos") or ""
    if code == "N":
        return job.get("nice") or 0
    if code in "AaFfJjPpQq":
        return w.get(_FACTORS[code.upper()][0], 0.0)
    if code in "Tt":
        return sum((w.get("tres") or {}).values())
    if code == "c":
        return ""
    raise UsageError(f"Invalid sort specification: {code}")


def sort_jobs(jobs, spec):
    """sprio -S: fields applied last to first (stable), '-' descending; default job id."""
    jobs = list(jobs)
    items = [x for x in (spec or "i").split(",") if x]
    for item in reversed(items):
        descending = item.startswith("-")
        for code in reversed(item.lstrip("+-")):
            jobs.sort(key=lambda j: _sort_key(code, j), reverse=descending)
    return jobs


def render(answer, opts, cluster=""):
    """The whole sprio output for a /v1/priority answer."""
    weights = answer.get("weights") or {}
    users = common.split_list(opts["users"])
    fmt = opts["format"] or default_format(weights, long=opts["long"], norm=opts["norm"], users=bool(users))
    prefix, fields = parse_format(fmt)

    def line(job, header=False):
        parts = [prefix]
        for code, width, right, suffix in fields:
            text = _HEADERS[code] if header else value_of(code, job, weights, cluster)
            parts.append(_cell(text, width, right) + suffix)
        return "".join(parts) + "\n"

    jobs = answer.get("jobs") or []
    if (opts["jobs"] or users) and not jobs and not opts["weights"]:
        return "Unable to find jobs matching user/id(s) specified\n"
    out = [] if opts["noheader"] else [line(None, header=True)]
    if opts["weights"]:
        out.append(line(None))
        return "".join(out)
    for job in sort_jobs(jobs, opts["sort"]):
        out.append(line(job))
    return "".join(out)


def _known_users(names):
    good = []
    for name in names:
        try:
            pwd.getpwnam(name)
            good.append(name)
        except KeyError:
            if (name.isascii() and name.isdigit()):
                try:
                    good.append(pwd.getpwuid(int(name)).pw_name)
                    continue
                except KeyError:
                    pass
            common._write_err(f"{PROG}: error: Invalid user: {name}")
    return good


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if opts["helpformat"]:
        common.write_out("%a    %A    %b    %B    %c    %f    %F    %i    \n"
                         "%j    %J    %n    %N    %o    %p    %P    %r    \n"
                         "%S    %q    %Q    %u    %y    %Y    %t    %T    \n")
        return 0
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if args:
        if not opts["jobs"]:
            raise UsageError(f"Unrecognized option: {args[0]}\n{USAGE.rstrip()}")
        opts["jobs"].append(args.pop(0))
        if args:
            raise UsageError(f"Unrecognized option: {args[0]}\n{USAGE.rstrip()}")
    if opts["long"] and opts["format"]:
        raise CommandError(f"{PROG}: fatal: Options -o(--format) and -l(--long) are mutually exclusive. "
                           "Please remove one and retry.", raw=True)
    ids = common.split_list(opts["jobs"])
    for i in ids:
        if not (i.isascii() and i.replace("_", "").isdigit()):
            raise UsageError(f"Invalid job id: {i}")
    users = common.split_list(opts["users"])
    if users:
        users = _known_users(users)
        opts["users"] = users
        if not users:
            common.write_out("Unable to find jobs matching user/id(s) specified\n")
            return 0
    from ..client import Client
    client = Client()
    answer = client.priority_factors(ids=ids or None, users=users or None,
                                     partitions=common.split_list(opts["partitions"]) or None)
    if answer.get("priority_type") == "priority/basic":
        raise CommandError("You are not running a supported priority plugin\n(priority/basic).\n"
                           "Only 'priority/multifactor' is supported.", raw=True)
    common.write_out(render(answer, opts))
    return 0


def main(argv=None):
    common.run_command(PROG, run, argv, unreachable="Couldn't get priority factors from controller: {reason}")


if __name__ == "__main__":
    main()
