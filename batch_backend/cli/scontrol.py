"""scontrol: show and change jobs, nodes and partitions (SLURM_DIALECT section 7).

jupyterlab-slurm parses ``show job ID`` with a Key=Value regex and drives
``hold``/``release``/``requeue``/``suspend``/``resume``; submitit runs
``scontrol requeue ID`` from inside its job. ``show hostnames``/``show
hostlist`` are answered locally (no controller needed), which is what job
scripts use to expand ``$SLURM_JOB_NODELIST``.
"""

import os
import sys

from . import common, formats_scontrol
from .common import COUNT, FLAG, VALUE, CommandError, UsageError

PROG = "scontrol"

OPTIONS = common.options(
    ("a", "all", "all", FLAG),
    ("d", "details", "details", COUNT),
    (None, "help", "help", FLAG),
    ("h", None, "help", FLAG),
    (None, "usage", "usage", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    ("o", "oneliner", "oneliner", FLAG),
    ("Q", "quiet", "quiet", FLAG),
    ("u", "uid", "uid", VALUE),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
)

HELP = """\
scontrol [<OPTION>] [<COMMAND>]
    Valid <OPTION> values are:
     -a or --all: equivalent to "all" command
     -d or --details: equivalent to "details" command
     -h or --help: equivalent to "help" command
     -o or --oneliner: equivalent to "oneliner" command
     -Q or --quiet: equivalent to "quiet" command
     -V or --version: equivalent to "version" command

    Valid <COMMAND> values are:
     hold <job_list>          prevent specified job from starting
     ping                     print status of slurmctld daemons
     release <job_list>       permit specified job to start
     requeue <job_id>         re-queue a batch job
     requeuehold <job_id>     re-queue and hold a batch job
     resume <job_list>        resume previously suspended job
     create <SPECIFICATIONS>  create a new reservation
     delete <SPECIFICATIONS>  delete the specified reservation
     show <ENTITY> [<ID>]     display state of identified entity, default is all
                              records; ENTITY: config, hostlist, hostlistsorted,
                              hostnames, job, node, partition, reservation
     suspend <job_list>       suspend specified job
     token [lifespan=<lifespan>] [username=<username>]
                              get a token (JWT) for authentication to the
                              controller over TCP
     top <job_list>           put specified job first in the user's queue
     uhold <job_list>         place user hold on specified job
     update <SPECIFICATIONS>  update job, node or reservation configuration
     version                  display tool version number
"""

JOB_ACTIONS = ("hold", "uhold", "release", "requeue", "requeuehold", "suspend", "resume", "top")

# scontrol update key (lowercase) -> (client field, parser name)
JOB_UPDATE_KEYS = {
    "timelimit": ("time_limit", "limit"),
    "partition": ("partition", "str"),
    "jobname": ("name", "str"),
    "name": ("name", "str"),
    "comment": ("comment", "str"),
    "nice": ("nice", "int"),
    "priority": ("priority", "int"),
    "numnodes": ("num_nodes", "nodes"),
    "reqnodes": ("num_nodes", "nodes"),
    "numtasks": ("num_tasks", "int"),
    "reqprocs": ("num_tasks", "int"),
    "minmemorynode": ("mem_per_node", "mem"),
    "dependency": ("dependency", "str"),
    "features": ("features", "str"),
    "excnodelist": ("exclude", "str"),
    "starttime": ("begin_time", "time"),
    "account": ("account", "str"),
    "qos": ("qos", "str"),
}

NODE_STATES = ("DRAIN", "RESUME", "DOWN", "IDLE", "UNDRAIN", "FAIL", "POWER_DOWN", "POWER_UP")


def _split_assignments(tokens):
    """``['Reason="disk', 'full"', 'State=DRAIN']`` -> [('Reason', 'disk full'), ('State', 'DRAIN')].

    Words without ``=`` continue the previous value (magics split a typed line on
    whitespace without honouring quotes); surrounding quotes are removed.
    """
    pairs = []
    for tok in tokens:
        key, eq, value = tok.partition("=")
        if eq and key and not key[0] in "\"'":
            pairs.append([key, value])
        elif pairs:
            pairs[-1][1] += " " + tok
        else:
            raise UsageError(f"Invalid input: {tok}\nRequest aborted")
    out = []
    for key, value in pairs:
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out.append((key, value))
    return out


def parse_job_update(pairs, current=None):
    """``[('TimeLimit', '30'), ...]`` -> ``{'time_limit': 30, ...}`` for ``Client.update_job``.

    *current* (the job dict) resolves relative time limits (``TimeLimit=+10``).
    """
    from .. import timespec
    fields = {}
    for key, value in pairs:
        entry = JOB_UPDATE_KEYS.get(key.lower())
        if entry is None:
            raise UsageError(f"Update of this parameter is not supported: {key}={value}\nRequest aborted")
        name, kind = entry
        try:
            if kind == "str":
                parsed = value
            elif kind == "int":
                parsed = int(value)
            elif kind == "nodes":
                parsed = int(value.split("-")[0])
            elif kind == "mem":
                parsed = timespec.parse_mem(value)
            elif kind == "time":
                parsed = int(timespec.parse_datetime(value))
            else:  # limit
                if value[:1] in "+-" and value[1:2].isdigit():
                    delta = timespec.parse_time_limit(value[1:])
                    base = (current or {}).get("time_limit") or 0
                    parsed = max(1, base + delta if value[0] == "+" else base - delta)
                else:
                    parsed = timespec.parse_time_limit(value)
        except (ValueError, TypeError) as e:
            raise UsageError(f"Invalid {key} value: {value} ({e})\nRequest aborted") from None
        fields[name] = parsed
    return fields


def _ids(args):
    return common.split_list(args)


def show_job(client, args, oneliner):
    if args:
        job_id = args[0]
        jobs = client.jobs(ids=[job_id], include_finished=True)
        if not jobs:
            from ..client import NotFound
            try:
                jobs = [client.job(job_id)]
            except NotFound:
                raise CommandError("slurm_load_jobs error: Invalid job id specified", raw=True) from None
    else:
        jobs = client.jobs(include_finished=True)
        if not jobs:
            return "No jobs in the system\n"
    jobs = sorted(jobs, key=lambda j: j.get("job_id") or 0)
    return "".join(formats_scontrol.format_job(j, oneliner=oneliner) for j in jobs)


def show_node(client, args, oneliner):
    from ..client import NotFound
    names = None
    if args:
        from .. import hostlist
        try:
            names = hostlist.expand(args[0])
        except ValueError:
            names = [args[0]]
    try:
        nodes = client.nodes(names=names)
    except NotFound:
        nodes = []
    if names:
        nodes = [n for n in nodes if n["name"] in names]
        if not nodes:
            raise CommandError(f"Node {args[0]} not found", raw=True)
    return "".join(formats_scontrol.format_node(n, oneliner=oneliner) for n in nodes)


def show_partition(client, args, oneliner, show_all=False):
    """Hidden partitions show only with -a/--all or by name, as in Slurm."""
    parts = client.partitions()
    if args:
        parts = [p for p in parts if p["name"] == args[0]]
        if not parts:
            raise CommandError(f"Partition {args[0]} not found", raw=True)
    elif not show_all:
        parts = [p for p in parts if not p.get("hidden")]
    if not parts:
        return "No partitions in the system\n"
    return "".join(formats_scontrol.format_partition(p, oneliner=oneliner) for p in parts)


def show_hostnames(args):
    from .. import hostlist
    expr = args[0] if args else os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not expr:
        raise UsageError("host list is empty")
    try:
        return "".join(name + "\n" for name in hostlist.expand(expr))
    except ValueError as e:
        raise UsageError(str(e)) from None


def show_hostlist(args, sort):
    from .. import hostlist
    if not args:
        raise UsageError("host list is empty")
    try:
        names = hostlist.expand(",".join(args))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if sort:
        names = sorted(names)
    return hostlist.compress(names) + "\n"


_SHOW = {
    "job": "job", "jobs": "job", "jobid": "job",
    "node": "node", "nodes": "node", "nodename": "node",
    "partition": "partition", "partitions": "partition", "partitionname": "partition",
    "config": "config", "configuration": "config", "conf": "config",
    "hostnames": "hostnames", "hostname": "hostnames",
    "hostlist": "hostlist", "hostlistsorted": "hostlistsorted",
    "reservation": "reservation", "reservations": "reservation", "res": "reservation",
    "reservationname": "reservation",
}


def show(args, opts):
    if not args:
        raise UsageError("too few arguments for keyword:show")
    entity = _SHOW.get(args[0].lower())
    rest = args[1:]
    if rest and "=" in rest[0] and entity in ("job", "node", "partition", "reservation"):
        rest = [rest[0].split("=", 1)[1]] + rest[1:]  # show job=N / NodeName=n1
    if entity is None:
        raise UsageError(f"invalid entity:{args[0]} for keyword:show")
    if entity == "hostnames":
        return show_hostnames(rest)
    if entity in ("hostlist", "hostlistsorted"):
        return show_hostlist(rest, entity == "hostlistsorted")
    from ..client import Client
    client = Client()
    if entity == "job":
        return show_job(client, rest, opts["oneliner"])
    if entity == "node":
        return show_node(client, rest, opts["oneliner"])
    if entity == "partition":
        return show_partition(client, rest, opts["oneliner"], show_all=opts["all"])
    if entity == "reservation":
        from . import scontrol_resv
        return scontrol_resv.show(rest, opts["oneliner"])
    return formats_scontrol.format_config(client.config())


def update(args):
    pairs = _split_assignments(args)
    if not pairs:
        raise UsageError("too few arguments for keyword:update")
    keys = [k.lower() for k, _ in pairs]
    from . import scontrol_resv
    if scontrol_resv.is_reservation_word(pairs[0][0]):
        return scontrol_resv.update(args)
    from ..client import APIError, Client, NotFound
    client = Client()
    if "nodename" in keys:
        return _update_node(client, pairs)
    if "jobid" not in keys and "job" not in keys:
        raise UsageError("No valid entity in update command\n"
                         "Input line must include \"NodeName\", \"PartitionName\", \"Reservation\", "
                         "\"JobId\", or \"StepId\"")
    job_ids, rest = [], []
    for key, value in pairs:
        if key.lower() in ("jobid", "job"):
            job_ids.extend(common.split_list(value))
        else:
            rest.append((key, value))
    needs_current = any(k.lower() == "timelimit" and v[:1] in "+-" for k, v in rest)
    rc = 0
    for job_id in job_ids:
        try:
            current = client.job(job_id) if needs_current else None
            fields = parse_job_update(rest, current)
            client.update_job(job_id, **fields)
        except NotFound:
            sys.stderr.write("slurm_update error: Invalid job id specified\n")
            rc = 1
        except APIError as e:
            sys.stderr.write(f"slurm_update error: {e.message}\n")
            rc = 1
    return rc


def _update_node(client, pairs):
    from .. import hostlist
    from ..client import APIError
    names, state, reason = [], None, None
    for key, value in pairs:
        low = key.lower()
        if low == "nodename":
            try:
                names.extend(hostlist.expand(value))
            except ValueError as e:
                raise UsageError(f"Invalid node name specified: {e}") from None
        elif low == "state":
            state = value.upper()
            if state not in NODE_STATES:
                raise UsageError(f"Invalid node state specified: {value}\nRequest aborted")
        elif low == "reason":
            reason = value
        else:
            raise UsageError(f"Update of this parameter is not supported: {key}={value}\nRequest aborted")
    if state in ("DRAIN", "DOWN", "FAIL") and not reason:
        raise UsageError("You must specify a reason when DOWNING or DRAINING a node. Request denied")
    try:
        client.update_node(names, state=state, reason=reason)
    except APIError as e:
        sys.stderr.write(f"slurm_update error: {e.message}\n")
        return 1
    return 0


def job_action(action, args):
    ids = _ids(args)
    if not ids:
        raise UsageError(f"too few arguments for keyword:{action}")
    from ..client import APIError, Client, NotFound
    client = Client()
    rc = 0
    for job_id in ids:
        try:
            client.job_action(job_id, action)
        except NotFound:
            sys.stderr.write(f"{PROG}: error: Invalid job id specified for job {job_id}\n")
            rc = 1
        except APIError as e:
            sys.stderr.write(f"{PROG}: error: {e.message} for job {job_id}\n")
            rc = 1
    return rc


def token(args):
    """``scontrol token [lifespan=SECONDS] [username=NAME]``: print ``SLURM_JWT=<token>`` like Slurm."""
    body = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        low = key.lower()
        if eq and low == "lifespan":
            if not value.isascii() or not value.isdigit() or int(value) <= 0:
                raise UsageError(f"Invalid lifespan value: {value}")
            body["lifespan"] = int(value)
        elif eq and low == "username" and value:
            body["username"] = value
        else:
            raise UsageError(f"Invalid token option: {arg}")
    from ..client import Client
    answer = Client().request("POST", "/tokens", body)
    common.write_out(f"SLURM_JWT={answer['token']}\n")
    return 0


def ping():
    from ..client import Client, ControllerUnreachable
    client = Client()
    try:
        info = client.ping()
    except ControllerUnreachable:
        common.write_out(f"Slurmctld(primary) at {client.address} is DOWN\n")
        return 1
    host = info.get("host") or info.get("hostname") or info.get("cluster_name") or "localhost"
    common.write_out(f"Slurmctld(primary) at {host} is UP\n")
    return 0


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if opts["help"] or (args and args[0].lower() == "help"):
        common.write_out(HELP)
        return 0
    if opts["usage"]:
        common.write_out(HELP)
        return 0
    if opts["version"] or (args and args[0].lower() == "version"):
        common.write_out(common.SLURM_VERSION + "\n")
        return 0
    if not args:
        raise UsageError("no command given (interactive mode is not supported)")
    command, rest = args[0].lower(), args[1:]
    if command == "show":
        common.write_out(show(rest, opts))
        return 0
    if command == "update":
        return update(rest)
    if command in ("create", "delete"):
        from . import scontrol_resv
        if command == "delete":
            return scontrol_resv.main_delete(rest)
        if not any(scontrol_resv.is_reservation_word(a) for a in rest):
            raise UsageError(f"Invalid creation entity: {rest[0] if rest else ''}")
        return scontrol_resv.create(rest)
    if command in JOB_ACTIONS:
        return job_action(command, rest)
    if command == "ping":
        return ping()
    if command == "token":
        return token(rest)
    raise UsageError(f"Invalid command: {args[0]}")


def _unreachable(argv):
    """Slurm's texts when the controller is gone, by subcommand."""
    words = [a.lower() for a in argv if not a.startswith("-")]
    entity = _SHOW.get(words[1]) if len(words) > 1 and words[0] == "show" else None
    if entity == "job":
        return lambda reason: f"slurm_load_jobs error: {reason}"
    if entity == "node":
        return lambda reason: f"slurm_load_node error: {reason}"
    if entity == "partition":
        return lambda reason: f"slurm_load_partitions error: {reason}"
    if entity == "reservation":
        return lambda reason: f"slurm_load_reservations error: {reason}"
    if words and words[0] == "update":
        return lambda reason: f"slurm_update error: {reason}"
    return lambda reason: f"{PROG}: error: {reason}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    common.run_command(PROG, run, argv, unreachable=_unreachable(argv))


if __name__ == "__main__":
    main()
