"""sshare: shares, decayed usage and the fairshare factor of each association (Slurm 22.05).

The controller computes the classic fairshare table (GET /v1/shares); this
module filters and prints it like sshare: Slurm's print_fields layout (each
column padded to its width and followed by one space, strings cut with ``+``,
numbers ``%f``), accounts indented one space per tree level, ``-p``/``-P``
for ``|``-separated output. Without ``-a`` or ``-u`` only the caller's own
user rows are shown (account rows always are), as sshare does.
"""

from . import common
from .common import COUNT, FLAG, LIST, VALUE, CommandError

PROG = "sshare"

OPTIONS = common.options(
    ("A", "accounts,account", "accounts", LIST),
    ("a", "all", "all", FLAG),
    ("l", "long", "long", FLAG),
    ("M", "clusters,cluster", "clusters", VALUE),
    ("m", "partition", "partition", FLAG),
    ("n", "noheader", "noheader", FLAG),
    ("o", "format", "format", LIST),
    ("p", "parsable", "parsable", FLAG),
    ("P", "parsable2", "parsable2", FLAG),
    ("u", "users,user", "users", LIST),
    ("U", "Users", "users_only", FLAG),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
    (None, "help", "help", FLAG),
    (None, "usage", "usage", FLAG),
    (None, "helpformat", "helpformat", FLAG),
)

USAGE = """\
Usage:  sshare [-a] [-A accounts] [-l] [-m] [-n] [-o format] [-p] [-P] [-u users] [-U] [-v] [-V]
"""

HELP = """\
Usage:  sshare [OPTION]
  Valid OPTIONs are:
    -a or --all            list all users
    -A or --accounts=      display specific accounts (comma separated list)
    -e or --helpformat     Print a list of fields that can be specified
                           with the '--format' option
    -l or --long           include normalized usage in output
    -m or --partition      print the partition part of the association
    -M or --cluster=name   cluster to issue commands to. Default is
                           current cluster. cluster with no name will
                           reset to default.
    -n or --noheader       omit header from output
    -o or --format=        Comma separated list of fields (use
                           "--helpformat" for a list of available fields).
    -p or --parsable       '|' delimited output with a trailing '|'
    -P or --parsable2      '|' delimited output without a trailing '|'
    -u or --users=         display specific users (comma separated list)
    -U or --Users          display only user information
    -v or --verbose        display more information
    -V or --version        display tool version number
          --help           display this usage description
          --usage          display this usage description
"""

#: Slurm's sshare field table: name -> (width, kind); negative width = left-justified
FIELDS = [
    ("Account", -20, "str"), ("Cluster", 10, "str"), ("EffectvUsage", 13, "double"),
    ("FairShare", 10, "double"), ("GrpTRESMins", 30, "str"), ("GrpTRESRaw", 30, "str"), ("ID", 6, "uint"),
    ("LevelFS", 10, "double"), ("NormShares", 11, "double"), ("NormUsage", 11, "double"),
    ("Partition", 12, "str"), ("RawShares", 10, "uint"), ("RawUsage", 11, "uint"),
    ("TRESRunMins", 30, "str"), ("User", 10, "str"),
]

DEFAULT = "A,User,RawShares,NormShares,RawUsage,Eff,Fairshare"
LONG = "A,User,RawShares,NormShares,RawUsage,NormUsage,Eff,Fairshare,GrpTRESMins,TRESRunMins"


def parse_fields(spec):
    """``"A,User,RawUsage%15"`` -> [(name, width, kind)]; a prefix picks the first field it starts."""
    out = []
    for item in common.split_list(spec):
        name, _, width = item.partition("%")
        match = next((f for f in FIELDS if f[0].lower().startswith(name.lower())), None) if name else None
        if match is None:
            raise CommandError(f'{PROG}: error: Invalid field requested: "{name}"', raw=True)
        w = match[1]
        if (width.isascii() and width.isdigit()) and int(width):
            w = int(width)
        out.append((match[0], w, match[2]))
    return out


def _value(name, row, index):
    """A row's value for one field (None = unset, printed blank)."""
    user = row.get("user")
    if name == "Account":
        return " " * row["depth"] + row["account"]  # indented by tree level, as sshare shows the tree
    if name == "User":
        return user
    if name == "RawShares":
        return row.get("raw_shares")
    if name == "NormShares":
        return row.get("norm_shares")
    if name == "RawUsage":
        return int(row.get("raw_usage") or 0)
    if name == "NormUsage":
        return row.get("norm_usage")
    if name == "EffectvUsage":
        return row.get("effective_usage")
    if name == "FairShare":
        return row.get("fairshare")
    if name == "ID":
        return index + 1
    return None  # Cluster, Partition, LevelFS (Fair Tree only), GrpTRESMins, GrpTRESRaw, TRESRunMins


def _fixed(value, width, kind):
    """One column of the fixed-width table, as Slurm's print_fields does it."""
    absw = abs(width)
    if value is None:
        text = " " if kind == "str" else ""
        return (text.rjust(absw) if width > 0 else text.ljust(absw)) + " "
    if kind == "double":
        text = "%*f" % (absw, value)
        if len(text) > absw:
            text = "%*.*e" % (absw, absw, value)
            extra = len(text) - absw
            text = "%*.*e" % (absw, max(0, absw - extra), value)
    elif kind == "uint":
        text = str(value)
    else:
        text = str(value)
        if len(text) > absw:
            text = text[:absw - 1] + "+"
    return (text.rjust(absw) if width > 0 else text.ljust(absw)) + " "


def _parsable(value, kind):
    if value is None:
        return ""
    return "%f" % value if kind == "double" else str(value)


def select_rows(rows, opts, me):
    """sshare's filters: account rows always (or -A's), user rows of -u / everyone (-a) / the caller."""
    accounts = set(common.split_list(opts["accounts"]))
    users = set(common.split_list(opts["users"]))
    out = []
    for row in rows:
        user = row.get("user")
        if accounts and row["account"] not in accounts:
            continue
        if user:
            if not opts["all"] and user not in (users or {me}):
                continue
        elif opts["users_only"]:
            continue
        out.append(row)
    return out


def render(rows, opts, me):
    spec = opts["format"] or (LONG if opts["long"] else DEFAULT)
    fields = parse_fields(spec)
    rows = select_rows(rows, opts, me)
    parsable = opts["parsable"] or opts["parsable2"]
    trailing = "|" if opts["parsable"] and not opts["parsable2"] else ""
    lines = []
    if not opts["noheader"]:
        if parsable:
            lines.append("|".join(f[0] for f in fields) + trailing)
        else:
            lines.append("".join((f[0].rjust(abs(f[1])) if f[1] > 0 else f[0].ljust(abs(f[1])))[:abs(f[1])] + " "
                                 for f in fields))
            lines.append("".join("-" * abs(f[1]) + " " for f in fields))
    for index, row in enumerate(rows):
        values = [(_value(name, row, index), width, kind) for name, width, kind in fields]
        if parsable:
            lines.append("|".join(_parsable(v, k) for v, _, k in values) + trailing)
        else:
            lines.append("".join(_fixed(v, w, k) for v, w, k in values))
    return "".join(line + "\n" for line in lines)


def run(argv):
    opts, args = common.parse_options(PROG, argv, OPTIONS)
    if opts["helpformat"]:
        common.write_out("Account             Cluster             EffectvUsage        FairShare           \n"
                         "GrpTRESMins         GrpTRESRaw          ID                  LevelFS             \n"
                         "NormShares          NormUsage           Partition           RawShares           \n"
                         "RawUsage            TRESRunMins         User                \n")
        return 0
    if common.answer_info_flags(opts, HELP, USAGE):
        return 0
    if args:
        raise CommandError(f"{PROG}: error: Unrecognized option: {args[0]}", raw=True)
    spec = opts["format"] or (LONG if opts["long"] else DEFAULT)
    parse_fields(spec)  # a bad field is an error before anything is asked
    from ..client import Client
    client = Client()
    answer = client.shares()
    common.write_out(render(answer.get("rows") or [], opts, common.caller_name(client)))
    return 0


def main(argv=None):
    common.run_command(PROG, run, argv)


if __name__ == "__main__":
    main()
