"""sinfo: partitions and nodes in Slurm's table (SLURM_DIALECT section 9).

The slurm-magic ``%sinfo`` reads stdout as a whitespace table with the header
on line 1, so the default columns are Slurm's: ``%9P %.5a %.10l %.6D %.6t %N``
with the default partition marked ``*`` and nodes grouped by partition and
state.
"""

import sys
import time

from . import common, formats_common, formats_sinfo
from .common import COUNT, FLAG, LIST, VALUE, UsageError

PROG = "sinfo"

OPTIONS = common.options(
    ("a", "all", "all", FLAG),
    ("d", "dead", "dead", FLAG),
    ("e", "exact", "exact", FLAG),
    ("h", "noheader", "noheader", FLAG),
    (None, "help", "help", FLAG),
    (None, "usage", "usage", FLAG),
    (None, "hide", "hide", FLAG),
    ("i", "iterate", "iterate", VALUE),
    (None, "local", "local", FLAG),
    ("l", "long", "long", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    ("n", "nodes", "nodes", LIST),
    ("N", "Node", "node_mode", FLAG),
    ("o", "format", "format", VALUE),
    ("p", "partition", "partitions", LIST),
    ("r", "responding", "responding", FLAG),
    ("R", "list-reasons", "reasons", FLAG),
    ("s", "summarize", "summarize", FLAG),
    ("S", "sort", "sort", VALUE),
    ("t", "states,state", "states", LIST),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
)

USAGE = """\
Usage: sinfo [-adelNRrsv] [-i seconds] [-t states] [-p partition] [-n nodes]
             [-S fields] [-o format]
"""

HELP = """\
Usage: sinfo [OPTIONS]
  -a, --all                  show all partitions (including hidden and those
                             not accessible)
  -d, --dead                 show only non-responding nodes
  -e, --exact                group nodes only on exact match of configuration
  -h, --noheader             no headers on output
  -i, --iterate=seconds      specify an iteration period
  -l, --long                 long output - displays more information
  -n, --nodes=NODES          report on specific node(s)
  -N, --Node                 Node-centric format
  -o, --format=format        format specification
  -p, --partition=PARTITION  report on specific partition
  -r, --responding           report only responding nodes
  -R, --list-reasons         list reason nodes are down or drained
  -s, --summarize            report state summary only
  -S, --sort=fields          comma separated list of fields to sort on
  -t, --states=node_state    specify the what states of nodes to view
  -v, --verbose              verbosity level
  -V, --version              output version information and exit

Help options:
  --help                     show this help message
  --usage                    display brief usage message
"""

_STATE_WORDS = {
    "idle": "IDLE", "alloc": "ALLOCATED", "allocated": "ALLOCATED", "mix": "MIXED", "mixed": "MIXED",
    "down": "DOWN", "drain": "DRAIN", "drained": "DRAINED", "drng": "DRAINING", "draining": "DRAINING",
    "unk": "UNKNOWN", "unknown": "UNKNOWN", "comp": "COMPLETING", "completing": "COMPLETING",
    "no_respond": "NOT_RESPONDING", "not_responding": "NOT_RESPONDING",
    "resv": "RESERVED", "reserved": "RESERVED", "maint": "MAINT",
}


def parse_node_states(values):
    """``-t idle,drain`` -> set of wanted state words; UsageError on an unknown one."""
    wanted = set()
    for item in common.split_list(values):
        low = item.lower()
        if low == "all":
            return None
        match = _STATE_WORDS.get(low) or next((v for k, v in _STATE_WORDS.items() if k.startswith(low)), None)
        if match is None:
            raise UsageError(f'Bad state string: "{item}"')
        wanted.add(match)
    return wanted or None


def _node_matches(node, wanted):
    base = formats_sinfo._drain_base(node)
    flags = node.get("state_flags") or []
    if base in wanted or node.get("state") in wanted:
        return True
    if "DRAIN" in wanted and base in ("DRAINED", "DRAINING"):
        return True
    if wanted & {"RESERVED", "MAINT"} & set(flags):  # in an active reservation, whatever its load
        return True
    return "NOT_RESPONDING" in wanted and "NOT_RESPONDING" in flags


def select(partitions, nodes, opts):
    """Apply -p, -n, -t, -r, -d, -R, --hide/-a to the controller's lists."""
    wanted_parts = set(common.split_list(opts["partitions"]))
    if wanted_parts:
        partitions = [p for p in partitions if p["name"] in wanted_parts]
    elif not opts["all"]:
        partitions = [p for p in partitions if not p.get("hidden")]
    if opts["nodes"]:
        from .. import hostlist
        names = set()
        for expr in opts["nodes"]:
            try:
                names.update(hostlist.expand(expr))
            except ValueError as e:
                raise UsageError(str(e)) from None
        nodes = [n for n in nodes if n["name"] in names]
    states = parse_node_states(opts["states"])
    if opts["reasons"] and states is None:
        states = {"DOWN", "DRAIN", "NOT_RESPONDING"}
    if states:
        nodes = [n for n in nodes if _node_matches(n, states)]
    if opts["responding"]:
        nodes = [n for n in nodes if "NOT_RESPONDING" not in (n.get("state_flags") or [])]
    if opts["dead"]:
        nodes = [n for n in nodes if "NOT_RESPONDING" in (n.get("state_flags") or []) or n.get("state") == "DOWN"]
    return partitions, nodes


def default_format(opts):
    if opts["summarize"]:
        return formats_sinfo.SINFO_SUMMARIZE
    if opts["node_mode"]:
        return formats_sinfo.SINFO_NODES_LONG if opts["long"] else formats_sinfo.SINFO_NODES
    if opts["reasons"]:
        return formats_sinfo.SINFO_REASONS_LONG if opts["long"] else formats_sinfo.SINFO_REASONS
    return formats_sinfo.SINFO_LONG if opts["long"] else formats_sinfo.SINFO_DEFAULT


def render(partitions, nodes, opts, now=None):
    """The text of one sinfo report for already-fetched partitions and nodes."""
    fmt = opts["format"]
    auto = fmt is None and not opts["reasons"]
    if fmt is None:
        fmt = default_format(opts)
    columns, invalid = formats_sinfo.parse_sinfo_format(fmt)
    for code in invalid:
        sys.stderr.write(f"{PROG}: error: Invalid node format specification: {code}\n")
    partitions, nodes = select(partitions, nodes, opts)
    if opts["reasons"]:
        # -R: one row per reason, over all partitions
        groups = formats_sinfo.sinfo_groups([{"name": "", "nodes": [n["name"] for n in nodes]}], nodes, columns)
        groups = [g for g in groups if g.nodes and g.nodes[0].get("reason")]
        for g in groups:
            g.part = None
    else:
        groups = formats_sinfo.sinfo_groups(partitions, nodes, columns, node_mode=opts["node_mode"],
                                            summarize=opts["summarize"])
    text = formats_sinfo.format_sinfo(groups, columns, header=not opts["noheader"], auto_width=auto,
                                      node_mode=opts["node_mode"])
    if not opts["noheader"] and (opts["long"] or opts["iterate"]):
        text = formats_common.date_line(now) + text
    return text


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if args:
        raise UsageError(f"Unrecognized option: {args[0]}")
    iterate = 0
    if opts["iterate"] is not None:
        try:
            iterate = int(opts["iterate"])
        except ValueError:
            iterate = 0
        if iterate <= 0:
            raise UsageError(f"--iterate={opts['iterate']}")
    from ..client import Client
    client = Client()
    while True:
        common.write_out(render(client.partitions(), client.nodes(), opts))
        if not iterate:
            return 0
        common.write_out("\n")
        sys.stdout.flush()
        time.sleep(iterate)


def main(argv=None):
    common.run_command(PROG, run, argv, unreachable="slurm_load_partitions: {reason}")


if __name__ == "__main__":
    main()
