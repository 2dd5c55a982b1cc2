"""sinfo's output formatters: the ``-o`` engine over partition/state groups or single nodes.

``sinfo_groups`` builds the rows (nodes of a partition split by the grouping
codes, or one row per node with ``-N``); ``format_sinfo`` prints them
(SLURM_DIALECT section 9).
"""

from .. import timespec
from .formats_common import NULL, _parse_percent_format, _secs, pad

SINFO_DEFAULT = "%9P %.5a %.10l %.6D %.6t %N"
SINFO_LONG = "%9P %.5a %.10l %.10s %.4r %.8h %.10g %.6D %.11T %N"
SINFO_NODES = "%N %.6D %.9P %6t"
SINFO_NODES_LONG = "%N %.6D %.9P %.11T %.4c %.8z %.6m %.8d %.6w %.8f %20E"
SINFO_SUMMARIZE = "%9P %.5a %.10l %.16F  %N"
SINFO_REASONS = "%20E %9u %19H %N"
SINFO_REASONS_LONG = "%20E %12U %19H %6t %N"
MIN_FIELD_SIZE = 9  # Slurm's MIN_NODE_FIELD_SIZE / MIN_PART_FIELD_SIZE

_NODE_BASE_NUM = {"UNKNOWN": 0, "DOWN": 1, "IDLE": 2, "ALLOCATED": 3, "MIXED": 5, "FUTURE": 6,
                  "DRAINED": 2, "DRAINING": 3, "COMPLETING": 3}
_COMPACT = {"IDLE": "idle", "ALLOCATED": "alloc", "MIXED": "mix", "DOWN": "down", "UNKNOWN": "unk",
            "DRAINED": "drain", "DRAINING": "drng", "COMPLETING": "comp", "FUTURE": "futr",
            "RESERVED": "resv", "MAINT": "maint"}
_LONG = {"IDLE": "idle", "ALLOCATED": "allocated", "MIXED": "mixed", "DOWN": "down", "UNKNOWN": "unknown",
         "DRAINED": "drained", "DRAINING": "draining", "COMPLETING": "completing", "FUTURE": "future",
         "RESERVED": "reserved", "MAINT": "maint"}


def _drain_base(node):
    """Fold the DRAIN flag into DRAINED/DRAINING as Slurm's node_state_string does.

    A node in an active reservation shows MAINT (maintenance reservation, unless
    it is drained, down, allocated or mixed) or RESERVED (idle), as in Slurm.
    """
    base = node.get("state", "UNKNOWN")
    flags = node.get("state_flags") or []
    if "DRAIN" in flags and base not in ("DRAINED", "DRAINING"):
        base = "DRAINING" if base in ("ALLOCATED", "MIXED", "COMPLETING") else "DRAINED"
    if "MAINT" in flags and base not in ("DRAINED", "DRAINING", "ALLOCATED", "DOWN", "MIXED"):
        base = "MAINT"
    elif "RESERVED" in flags and base == "IDLE":
        base = "RESERVED"
    return base


def node_state_compact(node):
    """sinfo ``%t``: ``idle``, ``mix``, ``alloc``, ``drain``, ``drng``, ``down``, + ``*`` if not responding."""
    base = _drain_base(node)
    star = "*" if "NOT_RESPONDING" in (node.get("state_flags") or []) else ""
    return _COMPACT.get(base, base.lower()[:5]) + star


def node_state_name(node):
    """sinfo ``%T``: ``idle``, ``mixed``, ``allocated``, ``drained``, ``draining``, ``down`` (+ ``*``)."""
    base = _drain_base(node)
    star = "*" if "NOT_RESPONDING" in (node.get("state_flags") or []) else ""
    return _LONG.get(base, base.lower()) + star


def node_state_num(node):
    """Slurm's numeric node state (base | DRAIN 0x200 | NO_RESPOND 0x800), sinfo's ``-t`` sort key."""
    raw = node.get("state", "UNKNOWN")
    flags = node.get("state_flags") or []
    num = _NODE_BASE_NUM.get(raw, 0)
    if raw == "DRAINING":
        num = 3 if node.get("alloc_cpus", 0) >= node.get("cpus", 1) else 5
    if "DRAIN" in flags or raw in ("DRAINED", "DRAINING"):
        num |= 0x200
    if "NOT_RESPONDING" in flags:
        num |= 0x800
    if "RESERVED" in flags:  # NODE_STATE_RES
        num |= 0x80
    if "MAINT" in flags:  # NODE_STATE_MAINT
        num |= 0x40000
    return num


def _range(values, fmt=str, plus=True):
    """sinfo min/max: ``4`` or ``4+`` (``_build_min_max``), or ``lo-hi`` when not *plus*."""
    values = [v for v in values if v is not None]
    if not values:
        return "N/A"
    lo, hi = min(values), max(values)
    if lo == hi:
        return fmt(hi)
    return f"{fmt(lo)}+" if plus else f"{fmt(lo)}-{fmt(hi)}"


class SinfoGroup:
    """A row of sinfo: one partition (or None) and the nodes it summarizes."""

    __slots__ = ("part", "nodes")

    def __init__(self, part, nodes):
        self.part, self.nodes = part, nodes


def _part_name(g, width):
    if g.part is None:
        return "n/a"
    name = g.part["name"]
    if g.part.get("default"):
        if len(name) < width or width == 0:
            name += "*"
        else:
            name = name[:width - 1] + "*"
    return name


def _part_time(minutes_key):
    def fn(g):
        if g.part is None:
            return "n/a"
        minutes = g.part.get(minutes_key)
        if minutes is None:
            return "infinite" if minutes_key == "max_time" else "n/a"
        return _secs(minutes * 60)
    return fn


def _hostlist(names):
    from .. import hostlist
    return hostlist.compress(names) if names else ""


def _node_class(node):
    """'alloc', 'idle' or 'other' (down, drained, draining, not responding), as sinfo counts."""
    if "NOT_RESPONDING" in (node.get("state_flags") or []):
        return "other"
    base = _drain_base(node)
    if base in ("ALLOCATED", "MIXED", "COMPLETING"):
        return "alloc"
    return "idle" if base in ("IDLE", "RESERVED") else "other"


def _counts(nodes):
    """Nodes allocated/idle/other/total (sinfo ``%F``)."""
    classes = [_node_class(n) for n in nodes]
    alloc, idle = classes.count("alloc"), classes.count("idle")
    return alloc, idle, len(nodes) - alloc - idle, len(nodes)


def _cpu_counts(nodes):
    """CPUs allocated/idle/other/total (sinfo ``%C``): all CPUs of an 'other' node are other."""
    alloc = idle = other = total = 0
    for n in nodes:
        cpus, used = n.get("cpus", 0), n.get("alloc_cpus", 0)
        total += cpus
        if _node_class(n) == "other":
            other += cpus
        else:
            alloc += used
            idle += cpus - used
    return alloc, idle, other, total


def _reason_user(g, with_uid):
    user = next((n.get("reason_user") for n in g.nodes if n.get("reason_user")), None)
    if not user:
        return "Unknown"
    if with_uid:
        try:
            import pwd
            return f"{user}({pwd.getpwnam(user).pw_uid})"
        except (KeyError, ImportError):
            return f"{user}"
    return user


# code -> (title, function(group) -> str, grouping key?) ; key=True: nodes of a row share this value
SINFO_CODES = {
    "a": ("AVAIL", lambda g: "n/a" if g.part is None else (g.part.get("state") or "UP").lower(), False),
    "A": ("NODES(A/I)", lambda g: "%d/%d" % _counts(g.nodes)[:2], False),
    "b": ("ACTIVE_FEATURES", lambda g: ",".join(g.nodes[0].get("features") or []) or NULL, True),
    "B": ("MAX_CPUS_PER_NODE", lambda g: "UNLIMITED", False),
    "c": ("CPUS", lambda g: _range(n.get("cpus") for n in g.nodes), True),
    "C": ("CPUS(A/I/O/T)", lambda g: "%d/%d/%d/%d" % _cpu_counts(g.nodes), False),
    "d": ("TMP_DISK", lambda g: "0", False),
    "D": ("NODES", lambda g: str(len(g.nodes)), False),
    "e": ("FREE_MEM", lambda g: _range((n.get("free_memory") for n in g.nodes), plus=False), False),
    "E": ("REASON", lambda g: g.nodes[0].get("reason") or "none", True),
    "f": ("AVAIL_FEATURES", lambda g: ",".join(g.nodes[0].get("features") or []) or NULL, True),
    "F": ("NODES(A/I/O/T)", lambda g: "%d/%d/%d/%d" % _counts(g.nodes), False),
    "g": ("GROUPS", lambda g: "n/a" if g.part is None else (
        "all" if (g.part.get("allow_groups") or "ALL").upper() == "ALL" else g.part["allow_groups"]), False),
    "G": ("GRES", lambda g: g.nodes[0].get("gres") or NULL, True),
    "h": ("OVERSUBSCRIBE", lambda g: "n/a" if g.part is None else (g.part.get("over_subscribe") or "NO"), False),
    "H": ("TIMESTAMP", lambda g: timespec.format_datetime(g.nodes[0].get("reason_time")), True),
    "I": ("PRIO_JOB_FACTOR", lambda g: "1", False),
    "l": ("TIMELIMIT", _part_time("max_time"), False),
    "L": ("DEFAULTTIME", _part_time("default_time"), False),
    "m": ("MEMORY", lambda g: _range(n.get("real_memory") for n in g.nodes), True),
    "M": ("PREEMPT_MODE", lambda g: "n/a" if g.part is None else (g.part.get("preempt_mode_text") or "OFF"), False),
    "n": ("HOSTNAMES", lambda g: _hostlist([n.get("hostname") or n["name"] for n in g.nodes]), False),
    "N": ("NODELIST", lambda g: _hostlist([n["name"] for n in g.nodes]), False),
    "o": ("NODE_ADDR", lambda g: _hostlist([n.get("address") or n["name"] for n in g.nodes]), False),
    "O": ("CPU_LOAD", lambda g: _range((n.get("cpu_load") for n in g.nodes), fmt=lambda v: "%.2f" % v, plus=False), False),
    "p": ("PRIO_TIER", lambda g: str(g.part.get("priority_tier", 1)) if g.part else "n/a", False),
    "P": ("PARTITION", lambda g: _part_name(g, 0), False),  # format_sinfo passes the width
    "r": ("ROOT", lambda g: "n/a" if g.part is None else ("yes" if g.part.get("root_only") else "no"), False),
    "R": ("PARTITION", lambda g: "n/a" if g.part is None else g.part["name"], False),
    "s": ("JOB_SIZE", lambda g: "n/a" if g.part is None else "%d-%s" % (
        max(1, g.part.get("min_nodes") or 1),
        "infinite" if g.part.get("max_nodes") is None else g.part["max_nodes"]), False),
    "S": ("ALLOCNODES", lambda g: "all", False),
    "t": ("STATE", lambda g: node_state_compact(g.nodes[0]) if g.nodes else "n/a", True),
    "T": ("STATE", lambda g: node_state_name(g.nodes[0]) if g.nodes else "n/a", True),
    "u": ("USER", lambda g: _reason_user(g, False), True),
    "U": ("USER", lambda g: _reason_user(g, True), True),
    "v": ("VERSION", lambda g: g.nodes[0].get("version") or "N/A", True),
    "V": ("CLUSTER", lambda g: g.nodes[0].get("cluster_name") or "N/A", False),
    "w": ("WEIGHT", lambda g: _range(n.get("weight", 1) for n in g.nodes), True),
    "X": ("SOCKETS", lambda g: _range(n.get("sockets", n.get("cpus")) for n in g.nodes), True),
    "Y": ("CORES", lambda g: _range(n.get("cores_per_socket", 1) for n in g.nodes), True),
    "Z": ("THREADS", lambda g: _range(n.get("threads_per_core", 1) for n in g.nodes), True),
    "z": ("S:C:T", lambda g: "%s:%s:%s" % (_range(n.get("sockets", n.get("cpus")) for n in g.nodes),
                                           _range(n.get("cores_per_socket", 1) for n in g.nodes),
                                           _range(n.get("threads_per_core", 1) for n in g.nodes)), True),
}
_SINFO_UNCUT_TITLES = {"NODELIST", "HOSTNAMES", "NODE_ADDR"}
# Per-node values of the grouping codes (what makes two nodes fall in different rows).
_SINFO_NODE_KEYS = {
    "b": lambda n: tuple(n.get("features") or ()), "f": lambda n: tuple(n.get("features") or ()),
    "c": lambda n: n.get("cpus"), "E": lambda n: n.get("reason") or "", "G": lambda n: n.get("gres") or "",
    "H": lambda n: n.get("reason_time"), "m": lambda n: n.get("real_memory"),
    "t": node_state_num, "T": node_state_num,
    "u": lambda n: n.get("reason_user") or "", "U": lambda n: n.get("reason_user") or "",
    "v": lambda n: n.get("version") or "", "w": lambda n: n.get("weight", 1),
    "X": lambda n: n.get("sockets"), "Y": lambda n: n.get("cores_per_socket"),
    "Z": lambda n: n.get("threads_per_core"), "z": lambda n: (n.get("sockets"), n.get("cores_per_socket")),
}


def parse_sinfo_format(fmt):
    """Compile a sinfo ``-o`` format; returns ``(columns, invalid_codes)``."""
    codes = {c: (title, fn) for c, (title, fn, _) in SINFO_CODES.items()}
    return _parse_percent_format(fmt, codes, "abcdefghlmnoprstuvwzABCDEFGHILMNORSTUVXYZ")


def sinfo_groups(partitions, nodes, columns, node_mode=False, summarize=False):
    """Build sinfo's rows: per partition (config order), nodes split by the grouping codes.

    *node_mode* (``-N``): one row per node and partition, in node order.
    *summarize* (``-s``): one row per partition. Rows are sorted like Slurm's
    default ``#P,-t`` (partition order, then numeric state descending).
    """
    by_name = {n["name"]: n for n in nodes}
    order = {n["name"]: i for i, n in enumerate(nodes)}
    codes = [col.code for col in columns if col.code in _SINFO_NODE_KEYS]
    groups = []
    for part in partitions:
        members = [by_name[m] for m in part.get("nodes") or [] if m in by_name]
        members.sort(key=lambda n: order[n["name"]])
        if node_mode:
            groups.extend(SinfoGroup(part, [n]) for n in members)
            continue
        if summarize:
            if members:
                groups.append(SinfoGroup(part, members))
            continue
        buckets = {}
        for n in members:
            buckets.setdefault(tuple(_SINFO_NODE_KEYS[c](n) for c in codes), []).append(n)
        rows = [SinfoGroup(part, ns) for ns in buckets.values()]
        if "t" in codes or "T" in codes:
            rows.sort(key=lambda g: node_state_num(g.nodes[0]), reverse=True)
        groups.extend(rows)
    if node_mode:
        groups.sort(key=lambda g: order[g.nodes[0]["name"]])
    return groups


def format_sinfo(groups, columns, header=True, auto_width=False, node_mode=False):
    """sinfo's table. *auto_width*: Slurm's default formats widen %P (and %N with -N) to fit."""
    part_width = node_width = None
    if auto_width:
        part_width = max([MIN_FIELD_SIZE] + [len(g.part["name"]) + (1 if g.part.get("default") else 0)
                                              for g in groups if g.part])
        if node_mode:
            node_width = max([MIN_FIELD_SIZE] + [len(SINFO_CODES["N"][1](g)) for g in groups])
    rows = [None] + groups if header else groups
    lines = []
    for g in rows:
        out = []
        for col in columns:
            if col.func is None:
                out.append(col.suffix)
                continue
            code = col.code
            width = col.width
            if code in ("P", "R") and part_width is not None:
                width = part_width
            elif code in ("N", "n") and node_width is not None:
                width = node_width
            if g is None:
                out.append(pad(col.title, width, col.right, col.title not in _SINFO_UNCUT_TITLES))
            else:
                value = _part_name(g, width) if code == "P" else col.func(g)
                out.append(pad(value, width, col.right, True))
            out.append(col.suffix)
        lines.append("".join(out))
    return "".join(line + "\n" for line in lines)
