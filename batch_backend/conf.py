"""slurm.conf: parser and BatchHub's embedded default configuration.

Sites that already know Slurm describe their cluster in slurm.conf syntax, and
the controller, node daemons and CLI (``scontrol show config``, sinfo) all need
the same view of nodes and partitions, so one stdlib-only parser serves them.
Errors carry ``path:line:`` so an admin can fix the file from one line of
output. With no file, :func:`default_conf_text` describes this machine as four
virtual nodes in one ``debug`` partition.

Syntax handled: ``#`` comments (not when escaped ``\\#`` or inside double
quotes), blank lines, ``\\`` line continuation, several ``Key=Value`` per line,
case-insensitive keys, double-quoted values, ``NodeName=DEFAULT`` and
``PartitionName=DEFAULT`` lines, ``Include path`` (relative to the including
file's directory) and ``DownNodes=``.
"""

import os

from batch_backend import hostlist, timespec
from batch_backend.conf_default import default_conf_text, detect_host  # noqa: F401

__all__ = ["ConfError", "parse_conf", "load_conf", "get_option", "get_int_option",
           "scheduler_parameters", "detect_host", "default_conf_text"]


class ConfError(Exception):
    """A configuration problem; the message is ``path:line: what is wrong``."""


_NODE_STATES = {"UNKNOWN", "IDLE", "DOWN", "DRAIN", "FAIL", "FAILING", "FUTURE", "CLOUD"}
_PART_STATES = {"UP", "DOWN", "DRAIN", "INACTIVE"}
_UNLIMITED = {"UNLIMITED", "INFINITE"}
# Top-level options that must be integers (checked at parse time, with line numbers).
_INT_OPTIONS = {k.lower() for k in (
    "SlurmctldTimeout", "SlurmdTimeout", "KillWait", "MinJobAge", "MaxJobCount",
    "MaxArraySize", "FirstJobId", "InactiveLimit", "MessageTimeout", "Waittime",
    "ReturnToService", "DefMemPerCPU", "DefMemPerNode", "MaxMemPerCPU", "MaxMemPerNode",
    "SlurmctldPort", "SlurmdPort", "BatchStartTimeout", "CompleteWait", "GetEnvTimeout")}
# ...of which these may also be UNLIMITED/INFINITE (the others are seconds, ids or ports).
_UNLIMITED_OK = {k.lower() for k in (
    "MaxJobCount", "MaxArraySize", "DefMemPerCPU", "DefMemPerNode", "MaxMemPerCPU", "MaxMemPerNode")}

# Node keywords: canonical lower-case name -> stored key (None: accepted, kept in 'other').
_NODE_KEYS = {
    "nodename": "name", "nodeaddr": "address", "nodehostname": "hostname", "cpus": "cpus",
    "procs": "cpus", "realmemory": "real_memory", "gres": "gres", "feature": "features",
    "features": "features", "state": "state", "port": "port", "weight": "weight",
    "reason": "reason", "boards": None, "socketsperboard": None, "sockets": None,
    "corespersocket": None, "threadspercore": None, "tmpdisk": None, "memspeclimit": None,
    "cpuspeclist": None, "corespeccount": None, "bcastaddr": None, "cpubind": None,
    "tresweights": None, "parameters": None, "topologyparam": None, "availablefeatures": None,
    "activefeatures": None,
}
_PART_KEYS = {
    "partitionname": "name", "nodes": "nodes", "default": "default", "state": "state",
    "maxtime": "max_time", "defaulttime": "default_time", "maxnodes": "max_nodes",
    "minnodes": "min_nodes", "allowgroups": "allow_groups", "allowaccounts": "allow_accounts",
    "allowqos": "allow_qos", "rootonly": "root_only", "hidden": "hidden",
    "prioritytier": "priority_tier", "priorityjobfactor": "priority_job_factor",
    "priority": "priority", "oversubscribe": "over_subscribe", "shared": "over_subscribe",
    "denyaccounts": "deny_accounts", "denyqos": "deny_qos", "allocnodes": None, "alternate": None,
    "cpubind": None, "defmempercpu": None, "defmempernode": None, "defmempergpu": None,
    "defcpupergpu": None, "maxmempercpu": None, "maxmempernode": None, "maxcpuspernode": None,
    "maxcpuspersocket": None, "disablerootjobs": None, "exclusiveuser": None,
    "gracetime": "grace_time", "lln": None, "overtimelimit": None, "preemptmode": "preempt_mode", "qos": None,
    "reqresv": None, "resumetimeout": None, "selecttypeparameters": None,
    "suspendtime": None, "suspendtimeout": None, "tresbillingweights": None,
    "powerdownonidle": None,
}

_NODE_DEFAULTS = {"cpus": None, "real_memory": 1, "gres": "", "features": [], "state": "UNKNOWN",
                  "reason": "", "port": None, "weight": 1}
_PART_DEFAULTS = {"default": False, "state": "UP", "max_time": None, "default_time": None,
                  "max_nodes": None, "min_nodes": 0, "allow_groups": "ALL",
                  "allow_accounts": "ALL", "allow_qos": "ALL", "deny_accounts": "", "deny_qos": "", "root_only": False,
                  "hidden": False, "priority_tier": 1, "priority_job_factor": 1,
                  "over_subscribe": "NO"}


# --- lexical layer --------------------------------------------------------------

def _strip_comment(line):
    """Cut an unescaped, unquoted ``#`` and everything after it."""
    backslashes, quoted = 0, False
    for i, ch in enumerate(line):
        if ch == "#" and not quoted and backslashes % 2 == 0:
            return line[:i]
        if ch == '"' and backslashes % 2 == 0:
            quoted = not quoted
        backslashes = backslashes + 1 if ch == "\\" else 0
    return line


def _logical_lines(text):
    """Yield (first line number, text): comments cut, ``\\`` continuations joined."""
    pending, start = [], None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = _strip_comment(raw.rstrip("\r")).rstrip()
        if start is None:
            start = lineno
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, "".join(pending)
        pending, start = [], None
    if pending:
        yield start, "".join(pending)


def _tokens(line):
    """Whitespace-separated words; double quotes group (and are removed); ``\\#`` -> ``#``."""
    words, buf, quoted, in_word = [], [], False, False
    for ch in line:
        if ch == '"':
            quoted, in_word = not quoted, True
        elif ch.isspace() and not quoted:
            if in_word:
                words.append("".join(buf))
            buf, in_word = [], False
        else:
            buf.append(ch)
            in_word = True
    if in_word:
        words.append("".join(buf))
    return [w.replace("\\#", "#") for w in words]


# --- value converters (raise ValueError with a message) ----------------------------

def _int(key, value, minimum=0):
    if not value.isascii() or not value.isdigit() or int(value) < minimum:
        raise ValueError(f"bad number '{value}' for {key}")
    return int(value)


def _int_or_unlimited(key, value):
    return None if value.upper() in _UNLIMITED else _int(key, value)


def _bool(key, value):
    upper = value.upper()
    if upper in ("YES", "TRUE", "1"):
        return True
    if upper in ("NO", "FALSE", "0"):
        return False
    raise ValueError(f"bad boolean '{value}' for {key} (use YES or NO)")


def _minutes(key, value):
    try:
        return timespec.parse_time_limit(value)
    except ValueError:
        raise ValueError(f"bad time '{value}' for {key}") from None


def _expand(key, value):
    try:
        return hostlist.expand(value)
    except ValueError as exc:
        raise ValueError(f"bad hostlist in {key}={value}: {exc}") from None


def _parallel(key, value, count):
    """Expand a hostlist that pairs with *count* node names (NodeAddr, Port)."""
    values = _expand(key, value)
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{key}={value} names {len(values)} values for {count} nodes")
    return values


# --- records ------------------------------------------------------------------------

def _pairs(tokens, table, what):
    """[(canonical lower key, original key, value)], rejecting unknown keys."""
    pairs = []
    for token in tokens:
        key, eq, value = token.partition("=")
        if not eq or not key:
            raise ValueError(f"expected Key=Value on a {what} line, got '{token}'")
        if key.lower() not in table:
            raise ValueError(f"unknown {what} parameter '{key}'")
        pairs.append((key.lower(), key, value))
    return pairs


def _node_settings(pairs):
    """Convert node line keys to stored values (name/address/hostname/port stay raw)."""
    settings, other = {}, {}
    sizes = {}
    for low, key, value in pairs:
        dest = _NODE_KEYS[low]
        if dest is None:
            other[key] = value
            if low in ("boards", "socketsperboard", "sockets", "corespersocket", "threadspercore"):
                sizes[low] = _int(key, value, 1)
        elif dest == "cpus":
            settings["cpus"] = _int(key, value, 1)
        elif dest in ("real_memory", "weight"):
            settings[dest] = _int(key, value)
        elif dest == "features":
            settings["features"] = [f for f in value.split(",") if f]
        elif dest == "state":
            state = value.upper()
            if state.split("+")[0] not in _NODE_STATES:
                raise ValueError(f"bad node State '{value}'")
            settings["state"] = state
        elif dest == "gres":
            settings["gres"] = "" if value.lower() in ("", "none", "(null)") else value
        else:
            settings[dest] = value
    if sizes:
        settings["_sizes"] = sizes
    if other:
        settings["other"] = other
    return settings


def _node_cpus(settings):
    if settings.get("cpus"):
        return settings["cpus"]
    sizes = settings.get("_sizes", {})
    sockets = sizes.get("sockets") or sizes.get("socketsperboard", 1) * sizes.get("boards", 1)
    return sockets * sizes.get("corespersocket", 1) * sizes.get("threadspercore", 1)


def _part_settings(pairs):
    settings, other = {}, {}
    for low, key, value in pairs:
        dest = _PART_KEYS[low]
        if dest is None:
            other[key] = value
        elif dest in ("default", "root_only", "hidden"):
            settings[dest] = _bool(key, value)
        elif dest == "state":
            if value.upper() not in _PART_STATES:
                raise ValueError(f"bad partition State '{value}'")
            settings["state"] = value.upper()
        elif dest in ("max_time", "default_time"):
            settings[dest] = _minutes(key, value)
        elif dest == "max_nodes":
            settings[dest] = _int_or_unlimited(key, value)
        elif dest in ("min_nodes", "priority_tier", "priority_job_factor"):
            settings[dest] = _int(key, value)
        elif dest == "priority":
            settings["priority_tier"] = settings["priority_job_factor"] = _int(key, value)
        elif dest in ("over_subscribe", "preempt_mode"):
            settings[dest] = value.upper()
        elif dest == "grace_time":
            settings[dest] = _int(key, value)
        else:
            settings[dest] = value
    if other:
        settings["other"] = other
    return settings


class _Parser:
    def __init__(self):
        self.options = {}
        self.nodes = []
        self.node_where = {}
        self.partitions = []
        self.node_defaults = {}
        self.part_defaults = {}
        self.down = []

    def parse(self, text, path, depth=0):
        for lineno, line in _logical_lines(text):
            tokens = _tokens(line)
            if not tokens:
                continue
            try:
                self._line(tokens, path, lineno, depth)
            except ValueError as exc:
                raise ConfError(f"{path}:{lineno}: {exc}") from None

    def _line(self, tokens, path, lineno, depth):
        first, eq, value = tokens[0].partition("=")
        kind = first.lower()
        if kind == "include" and not eq:
            if len(tokens) != 2:
                raise ValueError("Include needs exactly one path")
            self._include(tokens[1], path, lineno, depth)
        elif kind == "nodename" and eq:
            self._node(tokens, path, lineno)
        elif kind == "partitionname" and eq:
            self._partition(tokens, path, lineno)
        elif kind == "downnodes" and eq:
            settings = {"state": "DOWN", "reason": ""}
            for token in tokens[1:]:
                key, eq2, val = token.partition("=")
                if key.lower() not in ("state", "reason") or not eq2:
                    raise ValueError(f"unknown DownNodes parameter '{token}'")
                settings[key.lower()] = val.upper() if key.lower() == "state" else val
            self.down.append((lineno, path, _expand("DownNodes", value), settings))
        else:
            for token in tokens:
                key, eq2, val = token.partition("=")
                if not eq2 or not key:
                    raise ValueError(f"expected Key=Value, got '{token}'")
                if key.lower() in _INT_OPTIONS and not (key.lower() in _UNLIMITED_OK and val.upper() in _UNLIMITED):
                    _int(key, val)
                for old in [k for k in self.options if k.lower() == key.lower()]:
                    del self.options[old]
                self.options[key] = val

    def _include(self, target, path, lineno, depth):
        if depth >= 10:
            raise ValueError("Include nesting deeper than 10 levels")
        full = os.path.join(os.path.dirname(path), target)
        try:
            with open(full, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read included file '{full}': {exc.strerror}") from None
        self.parse(text, full, depth + 1)

    def _node(self, tokens, path, lineno):
        pairs = _pairs(tokens, _NODE_KEYS, "NodeName")
        settings = _node_settings(pairs)
        name_expr = settings.pop("name")
        if name_expr.upper() == "DEFAULT":
            self.node_defaults.update(settings)
            return
        merged = {**_NODE_DEFAULTS, **self.node_defaults, **settings}
        names = _expand("NodeName", name_expr)
        count = len(names)
        hostnames = _parallel("NodeHostname", merged["hostname"], count) \
            if merged.get("hostname") else names
        addresses = _parallel("NodeAddr", merged["address"], count) \
            if merged.get("address") else hostnames
        ports = [None] * count
        if merged.get("port"):
            ports = [_int("Port", p, 1) for p in _parallel("Port", merged["port"], count)]
        cpus = _node_cpus(merged)
        for name, hostname, address, port in zip(names, hostnames, addresses, ports):
            if name in self.node_where:
                raise ValueError(f"duplicate node '{name}' (already defined at "
                                 f"{self.node_where[name]})")
            self.node_where[name] = f"{path}:{lineno}"
            node = {
                "name": name, "cpus": cpus, "real_memory": merged["real_memory"],
                "gres": merged["gres"], "features": list(merged["features"]),
                "state": merged["state"], "reason": merged["reason"], "address": address,
                "hostname": hostname, "port": port, "weight": merged["weight"],
            }
            if merged.get("other"):
                node["other"] = dict(merged["other"])
            self.nodes.append(node)

    def _partition(self, tokens, path, lineno):
        settings = _part_settings(_pairs(tokens, _PART_KEYS, "PartitionName"))
        name = settings.pop("name")
        if not name:
            raise ValueError("empty PartitionName")
        if name.upper() == "DEFAULT":
            self.part_defaults.update(settings)
            return
        for part in self.partitions:
            if part["name"] == name:
                raise ValueError(f"duplicate partition '{name}' (already defined at "
                                 f"{part['_where']})")
        merged = {"name": name, **_PART_DEFAULTS, **self.part_defaults, **settings}
        merged["_where"] = f"{path}:{lineno}"
        merged.setdefault("nodes", "")
        self.partitions.append(merged)

    def finish(self):
        known = {node["name"]: node for node in self.nodes}
        for lineno, path, names, settings in self.down:
            for name in names:
                if name not in known:
                    raise ConfError(f"{path}:{lineno}: DownNodes names unknown node '{name}'")
                known[name]["state"] = settings["state"]
                known[name]["reason"] = settings["reason"]
        default_seen = False
        for part in reversed(self.partitions):  # the last Default=YES wins
            if part["default"] and default_seen:
                part["default"] = False
            default_seen = default_seen or part["default"]
        for part in self.partitions:
            where = part.pop("_where")
            expr = part["nodes"].strip()
            if expr.upper() == "ALL":
                members = list(known)
            elif not expr:
                members = []
            else:
                try:
                    members = list(dict.fromkeys(hostlist.expand(expr)))
                except ValueError as exc:
                    raise ConfError(f"{where}: bad hostlist in Nodes={expr}: {exc}") from None
                for name in members:
                    if name not in known:
                        raise ConfError(f"{where}: partition '{part['name']}' names unknown "
                                        f"node '{name}' in Nodes={expr}")
            part["nodes"] = members
        return {"options": self.options, "nodes": self.nodes, "partitions": self.partitions}


def parse_conf(text, *, path="slurm.conf"):
    """Parse slurm.conf *text*; returns ``{'options', 'nodes', 'partitions'}``.

    ``options`` keeps top-level keys in their given spelling (look them up
    with :func:`get_option`); ``nodes`` has one dict per node (NodeName
    hostlists expanded); ``partitions`` one dict per partition with ``nodes``
    expanded (``ALL`` = every node). Raises :class:`ConfError`
    ``"path:line: message"``.
    """
    parser = _Parser()
    parser.parse(text, path)
    return parser.finish()


def load_conf(path):
    """Read and parse the slurm.conf at *path* (ConfError if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfError(f"{path}: cannot read configuration file: {exc.strerror}") from None
    return parse_conf(text, path=path)


def get_option(conf, key, default=None):
    """Top-level option value, key compared case-insensitively."""
    low = key.lower()
    for name, value in conf["options"].items():
        if name.lower() == low:
            return value
    return default


def get_int_option(conf, key, default):
    """Integer top-level option (``UNLIMITED``/``INFINITE`` -> None), *default* if unset."""
    value = get_option(conf, key)
    if value is None:
        return default
    if value.upper() in _UNLIMITED:
        return None
    if not value.isascii() or not value.isdigit():
        raise ConfError(f"bad number '{value}' for {key}")
    return int(value)


def scheduler_parameters(conf):
    """``SchedulerParameters=a=1,bf_continue`` -> ``{'a': '1', 'bf_continue': True}``.

    Keys are lower-cased (Slurm matches them case-insensitively).
    """
    result = {}
    for item in (get_option(conf, "SchedulerParameters", "") or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        result[key.lower()] = value if eq else True
    return result
