"""sacctmgr: manage clusters, accounts, users, associations and QOS (Slurm's syntax).

``sacctmgr [-i] [-n] [-p|-P] [-s] VERB ENTITY [names] [where COND...] [set KEY=VAL...]``
with VERB add/create, modify/update, delete/remove, show/list and ENTITY
cluster, account, user, qos, association. Keys are case-insensitive and may be
abbreviated as in Slurm (``fairshare=``, ``DefaultAccount=``, ``MaxJobs=``,
``GrpTRES=cpu=8``, ``QOS+=high``); ``-1`` clears a limit.

Changes are admin-only (the controller checks). Without ``-i`` sacctmgr shows
what it will change and asks ``Would you like to commit changes? (You have 30
seconds to decide)``, reading the answer from stdin as Slurm does (a pipe works:
``echo y | sacctmgr add account x``); anything but ``y`` discards, and so does
end of input. With no command on the line, commands are read from stdin, one
per line, like sacctmgr's own prompt.
"""

import select
import sys

from . import common
from .common import COUNT, FLAG, CommandError

OPTIONS = common.options(
    ("h", "help,usage", "help", FLAG),
    ("i", "immediate", "immediate", FLAG),
    ("n", "noheader", "noheader", FLAG),
    ("o", "oneliner", "oneliner", FLAG),
    ("p", "parsable", "parsable", FLAG),
    ("P", "parsable2", "parsable2", FLAG),
    ("Q", "quiet", "quiet", FLAG),
    ("r", "readonly", "readonly", FLAG),
    ("s", "associations", "associations", FLAG),
    ("v", "verbose", "verbose", COUNT),
    ("V", "version", "version", FLAG),
)

USAGE = """sacctmgr [<OPTION>] [<COMMAND>]
    Valid <OPTION> values are:
     -h or --help: equivalent to "help" command
     -i or --immediate: commit changes immediately
     -n or --noheader: no header will be added to the beginning of output
     -p or --parsable: output will be '|' delimited with a '|' at the end
     -P or --parsable2: output will be '|' delimited without a '|' at the end
     -Q or --quiet: equivalent to "quiet" command
     -r or --readonly: equivalent to "readonly" command
     -s or --associations: equivalent to "associations" command
     -V or --version: equivalent to "version" command

  <keyword> may be omitted from the execute line and sacctmgr will execute
  in interactive mode. It will process commands as entered until explicitly
  terminated.

    Valid <COMMAND> values are:
     add <ENTITY> <SPECS>     add entity
     delete <ENTITY> where <SPECS> delete the specified entity(s)
     list <ENTITY> [<SPECS>]  display info of identified entity, default is display all.
     modify <ENTITY> where <SPECS> set <SPECS> modify entity
     show                     same as list

  <ENTITY> may be "account", "association", "cluster", "qos" or "user".
"""

ENTITIES = {"account": "account", "acct": "account", "accounts": "account", "association": "association",
            "associations": "association", "assoc": "association", "cluster": "cluster", "clusters": "cluster",
            "qos": "qos", "user": "user", "users": "user"}
PLURAL = {"account": "accounts", "association": "associations", "cluster": "clusters", "qos": "qos",
          "user": "users"}

# key typed (lower case) -> (setting name, kind); the QOS table overrides a few
_KEYS = {
    "name": ("names", "list"), "names": ("names", "list"),
    "account": ("accounts", "list"), "accounts": ("accounts", "list"), "acct": ("accounts", "list"),
    "user": ("users", "list"), "users": ("users", "list"),
    "partition": ("partitions", "list"), "partitions": ("partitions", "list"),
    "cluster": ("clusters", "list"), "clusters": ("clusters", "list"),
    "parent": ("parent", "str"), "description": ("description", "str"), "organization": ("organization", "str"),
    "fairshare": ("fairshare", "int"), "shares": ("fairshare", "int"), "share": ("fairshare", "int"),
    "qos": ("qos", "qos"), "qoslevel": ("qos", "qos"), "defaultqos": ("default_qos", "str"),
    "defaultaccount": ("default_account", "str"), "adminlevel": ("admin_level", "str"),
    "maxjobs": ("max_jobs", "int"), "maxsubmitjobs": ("max_submit", "int"), "maxsubmit": ("max_submit", "int"),
    "maxwall": ("max_wall", "time"), "maxwalldurationperjob": ("max_wall", "time"),
    "maxtres": ("max_tres_per_job", "tres"), "maxtresperjob": ("max_tres_per_job", "tres"),
    "grptres": ("grp_tres", "tres"), "grpjobs": ("grp_jobs", "int"), "grpsubmitjobs": ("grp_submit", "int"),
    "grpsubmit": ("grp_submit", "int"), "grpwall": ("grp_wall", "time"),
    "maxjobsperuser": ("max_jobs_pu", "int"), "maxjobspu": ("max_jobs_pu", "int"),
    "maxsubmitjobsperuser": ("max_submit_pu", "int"), "maxsubmitjobspu": ("max_submit_pu", "int"),
    "maxsubmitpu": ("max_submit_pu", "int"),
    "maxtresperuser": ("max_tres_pu", "tres"), "maxtrespu": ("max_tres_pu", "tres"),
    "priority": ("priority", "int"), "preempt": ("preempt", "list"), "preemptmode": ("preempt_mode", "str"),
    "flags": ("flags", "list"), "usagefactor": ("usage_factor", "float"), "gracetime": ("grace_time", "secs"),
    "format": ("format", "raw"),
}
_QOS_KEYS = {"maxjobs": ("max_jobs_pu", "int"), "maxsubmitjobs": ("max_submit_pu", "int"),
             "maxsubmit": ("max_submit_pu", "int")}
_FLAG_WORDS = {"withassoc", "withassociations", "withcoord", "withcoordinators", "withdeleted", "tree",
               "wopinfo", "woplimits", "wolimits", "withrawqoslevel"}


def _value(key, kind, text, entity):
    """A typed setting value from the text after ``=`` (``-1`` clears)."""
    from ..timespec import parse_time_limit
    from ..tres import TresError, parse_tres
    if kind == "list":
        return [v for v in text.split(",") if v]
    if kind in ("str", "raw"):
        return text.strip("'\"")
    if text.strip() == "-1" and kind in ("int", "time", "tres"):
        return None
    try:
        if kind == "int":
            if not (text.isascii() and text.isdigit()):
                raise ValueError
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "secs":
            minutes = parse_time_limit(text)
            return 0 if minutes is None else minutes * 60
        if kind == "time":
            return parse_time_limit(text)
        if kind == "tres":
            return parse_tres(text)
    except TresError as e:
        raise CommandError(f" {e}", raw=True) from None
    except ValueError:
        pass
    raise CommandError(f" Bad {key} value: {text}", raw=True)


def parse_words(entity, words):
    """Split ``[names] [where K=V...] [set K=V...]`` into (names, where, settings, flags, format)."""
    names, where, settings, flags, fmt = [], {}, {}, set(), None
    section = "where" if entity else "where"
    for word in words:
        low = word.lower()
        if low in ("where", "set"):
            section = low
            continue
        if low in _FLAG_WORDS:
            flags.add("withassoc" if low.startswith("withassoc") else low)
            continue
        key, op, value = _split_assignment(word)
        if op is None:
            names.extend(v for v in word.split(",") if v)
            continue
        low_key = key.lower()
        setting, kind = (_QOS_KEYS.get(low_key) if entity == "qos" else None) or _KEYS.get(low_key, (None, None))
        if setting is None:
            raise CommandError(f" Unknown option: {word}\n Use keyword 'where' to modify condition", raw=True)
        if setting == "format":
            fmt = value
            continue
        if kind == "qos":
            listed = _value(key, "list", value, entity)
            if op == "+=":
                settings["qos_add"] = listed
            elif op == "-=":
                settings["qos_remove"] = listed
            else:
                (settings if section == "set" else where)["qos"] = listed
            continue
        typed = _value(key, kind, value, entity)
        if section == "set":
            settings[setting] = typed
        else:
            where[setting] = typed
    return names, where, settings, flags, fmt


def _split_assignment(word):
    for op in ("+=", "-=", "="):
        i = word.find(op)
        if i > 0 and (op != "=" or word[i - 1] not in "+-"):
            return word[:i], op, word[i + len(op):]
    return word, None, None


# -- confirmation --------------------------------------------------------------------

def confirm():
    """Slurm's commit_check: ask, wait 30 s for Y/N on stdin; True to commit."""
    sys.stdout.write("Would you like to commit changes? (You have 30 seconds to decide)\n")
    answer = ""
    while True:
        sys.stdout.write("(N/y): ")
        sys.stdout.flush()
        if sys.stdin.isatty():
            try:
                ready, _, _ = select.select([sys.stdin], [], [], 30)
            except (OSError, ValueError):
                ready = []
            if not ready:
                sys.stdout.write("timeout\n")
                return False
        # a pipe or file: the answer is whatever comes next (Python may have buffered it already)
        char = sys.stdin.read(1)
        sys.stdout.write("\n")
        if char == "":
            return False  # end of input: nobody can say yes
        if char in "YyNn\n":
            answer = char
            break
        sys.stdout.write("Y or N please\n")
    return answer in ("Y", "y")


# -- summaries (what Slurm prints before asking) ---------------------------------------------

def _assoc_line(a):
    line = f"  C = {a['cluster'][:10]:<10} A = {a['account'][:10]:<10}"
    if a.get("user"):
        line += f" U = {a['user'][:9]:<9}"
    if a.get("partition"):
        line += f" P = {a['partition'][:10]:<10}"
    return line + "\n"


_SETTING_LABELS = {"description": "Description", "organization": "Organization", "parent": "Parent",
                   "fairshare": "Fairshare", "default_qos": "Default QOS", "default_account": "Default Account",
                   "admin_level": "Admin Level", "max_jobs": "MaxJobs", "max_submit": "MaxSubmitJobs",
                   "max_wall": "MaxWall", "max_tres_per_job": "MaxTRESPerJob", "grp_tres": "GrpTRES",
                   "grp_jobs": "GrpJobs", "grp_submit": "GrpSubmitJobs", "priority": "Priority",
                   "max_jobs_pu": "MaxJobsPU", "max_submit_pu": "MaxSubmitJobsPU", "max_tres_pu": "MaxTRESPU",
                   "preempt": "Preempt", "preempt_mode": "PreemptMode", "flags": "Flags",
                   "usage_factor": "UsageFactor", "qos": "QOS", "qos_add": "QOS", "qos_remove": "QOS",
                   "grace_time": "GraceTime", "grp_wall": "GrpWall"}


def _settings_lines(settings, skip=()):
    from ..tres import format_tres
    out = []
    for key, value in settings.items():
        if key in skip or key in ("accounts", "partition"):
            continue
        if isinstance(value, dict):
            value = format_tres(value)
        elif isinstance(value, list):
            value = ("+" if key == "qos_add" else "-" if key == "qos_remove" else "") + ",".join(value)
        elif value is None:
            value = "-1"
        elif key in ("max_wall", "grp_wall"):
            from ..timespec import format_hms
            value = format_hms(value * 60)
        out.append(f"  {_SETTING_LABELS.get(key, key):<15} = {value}\n")
    return "".join(out)


def summary(action, entity, answer, settings):
    changed, assocs = answer.get("changed", []), answer.get("associations", [])
    text = []
    if action == "add":
        if entity == "cluster":
            text += [" Adding Cluster(s)\n"] + [f"  Name           = {n}\n" for n in changed]
        elif entity == "account":
            text += [" Adding Account(s)\n"] + [f"  {n}\n" for n in changed]
            text += [" Settings\n",
                     f"  Description     = {settings.get('description') or 'Account Name'}\n",
                     f"  Organization    = {settings.get('organization') or 'Parent/Account Name'}\n",
                     _settings_lines(settings, skip=("description", "organization"))]
            text += [" Associations\n"] + [f"  A = {a['account'][:10]:<10} C = {a['cluster'][:10]:<10}\n"
                                           for a in assocs]
        elif entity == "user":
            if changed:
                text += [" Adding User(s)\n"] + [f"  {n}\n" for n in changed]
                text += [" Settings =\n", _settings_lines(
                    {k: settings[k] for k in ("default_account", "admin_level") if settings.get(k)}
                    or {"default_account": (settings.get("accounts") or [""])[0]})]
            if assocs:
                text += [" Associations =\n"] + [
                    f"  U = {a['user'][:9]:<9} A = {a['account'][:10]:<10} C = {a['cluster'][:10]:<10}"
                    + (f" P = {a['partition'][:10]:<10}" if a.get("partition") else "") + "\n"
                    for a in assocs]
            extra = _settings_lines(settings, skip=("default_account", "admin_level"))
            if extra:
                text += [" Non Default Settings\n", extra]
        elif entity == "qos":
            text += [" Adding QOS(s)\n"] + [f"  {n}\n" for n in changed]
            text += [" Settings\n", f"  {'Description':<15} = {settings.get('description') or 'QOS Name'}\n",
                     _settings_lines(settings, skip=("description",))]
    elif action == "modify":
        own = {k for k in settings if k in ("description", "organization", "default_account", "admin_level")}
        if entity == "qos":
            text += [" Modified qos...\n"] + [f"  {n}\n" for n in changed]
        elif own:
            text += [f" Modified {PLURAL[entity]}...\n"] + [f"  {n}\n" for n in changed]
        if assocs and entity != "qos":
            kind = "account" if entity == "account" else "user"
            text += [f" Modified {kind} associations...\n"] + [_assoc_line(a) for a in assocs]
    else:
        if entity == "association" or (entity == "user" and assocs and len(changed) and not _whole(answer)):
            text += [" Deleting user associations...\n"] + [_assoc_line(a) for a in assocs]
        else:
            label = {"qos": "QOS(s)", "account": "accounts", "user": "users", "cluster": "clusters"}[entity]
            text += [f" Deleting {label}...\n"] + [f"  {n}\n" for n in changed]
    return "".join(text)


def _whole(answer):
    return answer.get("_whole_user", True)


# -- the commands ------------------------------------------------------------------------------

def _entity(words, verb):
    if not words:
        raise CommandError(f"No entity given to {verb}: use account, association, cluster, qos or user", rc=1)
    entity = ENTITIES.get(words[0].lower())
    if entity is None:
        raise CommandError(f" Unknown entity: {words[0]}", rc=1, raw=True)
    return entity


def do_change(client, action, entity, words, opts):
    names, where, settings, flags, _ = parse_words(entity, words[1:])
    if action == "add":
        # `add user alice account=a`: before any 'set', K=V are settings
        settings = dict(where, **settings)
        names = names + settings.pop("names", [])
        for key in ("users", "partitions", "clusters"):
            settings.pop(key, None)
        if "partitions" in where:
            settings["partition"] = where["partitions"][0]
        where = {}
        if not names:
            what = {"account": "account", "user": "user", "qos": "qos", "cluster": "cluster"}.get(entity, entity)
            raise CommandError(f" Need name of {what} to add.", raw=True)
    else:
        if names:
            key = "names" if entity != "association" else "accounts"
            where[key] = where.get(key, []) + names
        where.pop("clusters", None)
        if action == "modify" and not settings:
            raise CommandError(" You didn't give me anything to set", raw=True)
    kind = PLURAL[entity]
    from ..client import APIError

    def call(dry_run):
        return client.change_accounting(kind, action, names=names, where=where, settings=settings,
                                        dry_run=dry_run)
    try:
        answer = call(dry_run=not opts["immediate"])
    except APIError as e:
        if e.message == "Nothing new added.":
            raise CommandError(" Nothing new added.", raw=True) from None
        prefix = f" Problem adding {PLURAL[entity]}: " if action == "add" else " Error with request: "
        if action != "add" and e.status == 404:
            raise CommandError(f" Nothing {'modified' if action == 'modify' else 'deleted'}\n{prefix}{e.message}",
                               raw=True) from None
        raise CommandError(prefix + e.message, raw=True) from None
    if action == "delete" and entity == "user":
        answer["_whole_user"] = not (where.get("accounts") or where.get("partitions"))
    if not answer.get("changed") and not answer.get("associations"):
        raise CommandError(f" Nothing {'modified' if action == 'modify' else 'deleted' if action == 'delete' else 'new added.'}",
                           raw=True)
    out = summary(action, entity, answer, settings)
    if not opts["quiet"]:
        common.write_out(out)
    if opts["immediate"]:
        return 0
    sys.stdout.flush()
    if not confirm():
        common.write_out(" Changes Discarded\n")
        return 0
    try:
        call(dry_run=False)
    except APIError as e:
        raise CommandError(" Error with request: " + e.message, raw=True) from None
    return 0


def do_show(client, entity, words, opts):
    from . import formats_sacctmgr as fm
    names, where, settings, flags, fmt = parse_words(entity, words[1:])
    if settings:
        raise CommandError(" Unknown option: set\n Use keyword 'where' to modify condition", raw=True)
    with_assoc = opts["associations"] or "withassoc" in flags
    if entity == "association":
        rows = client.associations(accounts=where.get("accounts") or names or None, users=where.get("users"),
                                   partitions=where.get("partitions"))
        default = fm.DEFAULT_FORMATS["association"]
    elif entity in ("account", "user") and with_assoc:
        records = {r["name"]: r for r in client.accounting_records(PLURAL[entity], names=where.get("names") or names or None)}
        if entity == "account":
            assocs = client.associations(accounts=list(records) or ["\x00"])
            rows = [dict(records[a["account"]], **a) for a in assocs if a["account"] in records]
        else:
            assocs = client.associations(users=list(records) or ["\x00"], accounts=where.get("accounts"))
            rows = [dict(records[a["user"]], **a) for a in assocs if a["user"] in records]
        default = fm.DEFAULT_FORMATS[f"{entity}_assoc"]
    else:
        rows = client.accounting_records(PLURAL[entity], names=where.get("names") or names or None)
        if entity == "account":
            rows = [dict(r, account=r["name"]) for r in rows]
        elif entity == "user":
            rows = [dict(r, user=r["name"]) for r in rows]
        elif entity == "cluster":
            root = client.associations(accounts=["root"])
            root_row = next((a for a in root if not a.get("user")), {})
            rows = [dict(root_row, cluster=r["name"], control_host="", control_port=0, rpc=0) for r in rows]
        default = fm.DEFAULT_FORMATS[entity]
    try:
        fields = fm.parse_format(fmt or default)
    except fm.FieldError as e:
        raise CommandError(str(e), raw=True) from None
    parsable = "no_ending" if opts["parsable2"] else "ending" if opts["parsable"] else None
    common.write_out(fm.render(rows, fields, header=not opts["noheader"], parsable=parsable))
    return 0


VERBS = {"add": "add", "create": "add", "modify": "modify", "update": "modify", "delete": "delete",
         "remove": "delete", "show": "show", "list": "show"}


def run(argv):
    opts, words = common.parse_options("sacctmgr", argv, OPTIONS)
    if opts["help"]:
        common.write_out(USAGE)
        return 0
    if opts["version"]:
        common.write_out(common.SLURM_VERSION + "\n")
        return 0
    if not words:
        return run_commands_from_stdin(opts)
    return run_words(opts, words)


def run_commands_from_stdin(opts):
    """No command on the line: read commands from stdin, one per line, as sacctmgr's prompt does.

    ``#`` lines are comments, ``exit``/``quit`` stop; a failed command is reported and the
    next one runs; the exit code is 1 if any failed.
    """
    import shlex
    from .common import error_text
    interactive = sys.stdin.isatty()
    rc = 0
    while True:
        if interactive:
            sys.stdout.write("sacctmgr: ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            if interactive:
                sys.stdout.write("\n")
            return rc
        if line.lstrip().startswith("#") or not line.strip():
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            sys.stderr.write(f"sacctmgr: error: {e}\n")
            rc = 1
            continue
        if words[0].lower() in ("exit", "quit", "\\q"):
            return rc
        try:
            rc = run_words(opts, words) or rc
        except CommandError as e:
            sys.stdout.flush()
            sys.stderr.write(error_text("sacctmgr", e) + "\n")
            rc = 1


def run_words(opts, words):
    verb = VERBS.get(words[0].lower())
    if verb is None:
        if words[0].lower() in ("help",):
            common.write_out(USAGE)
            return 0
        if words[0].lower() == "version":
            common.write_out(common.SLURM_VERSION + "\n")
            return 0
        raise CommandError(f"invalid keyword: {words[0]}", rc=1, raw=True)
    entity = _entity(words[1:], verb)
    from ..client import Client
    client = Client()
    if verb == "show":
        return do_show(client, entity, words[1:], opts)
    if opts["readonly"]:
        raise CommandError("Can't run this command in readonly mode.", raw=True)
    if verb == "add" and entity == "association":
        raise CommandError(" Associations are added with 'sacctmgr add user NAME account=ACCOUNT'", raw=True)
    return do_change(client, verb, entity, words[1:], opts)


def main(argv=None):
    return common.run_command("sacctmgr", run, argv, unreachable="sacctmgr: error: Problem talking to the "
                              "database: Unable to contact slurm controller (connect failure)")


if __name__ == "__main__":
    main()
