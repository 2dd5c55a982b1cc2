"""Spawn options: admin profiles, the live spawn form, validation, the sbatch request.

A user's choice arrives as ``user_options`` (from the spawn form or the REST
API): either ``{"profile": "small"}`` or, when custom requests are allowed,
``{"profile": "custom", "partition": "debug", "cpus": "2", "memory": "4G",
"gpus": "0", "time": "2:00:00"}``. :func:`resolve` checks it against the
profiles the user may use and the partitions as the controller reports them
*now*, and returns a :class:`Request` - or raises :class:`OptionsError` with a
sentence the user can act on. Nothing unchecked ever reaches the queue.

Accounts, QOS and reservations: with the user's :class:`spawner.access.Access`
(their sacctmgr associations, the QOS, the reservations), a custom request may
also name ``account``, ``qos`` and ``reservation`` - chosen from what the form
offers, and refused with the reason otherwise. Without it (no accounting data)
they come only from profiles: a user cannot type their way into a reservation
or account that no profile grants them.
"""

import html
from dataclasses import dataclass, field

from tornado import web

from batch_backend import timespec

from .access import AccessError

CUSTOM = "custom"


class OptionsError(web.HTTPError):
    """Invalid spawn options; ``str(e)`` / ``log_message`` is the user-facing sentence."""

    def __init__(self, message):
        super().__init__(400, message.replace("%", "%%"))
        self.message = message

    def __str__(self):
        return self.message


@dataclass
class Request:
    """What one server asks the queue for."""

    profile: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: int
    time_minutes: int
    account: str = ""
    qos: str = ""
    reservation: str = ""
    extra: list = field(default_factory=list)  # extra sbatch options from the profile

    def sbatch_args(self):
        argv = [f"--partition={self.partition}", "--ntasks=1", f"--cpus-per-task={self.cpus}",
                f"--mem={self.memory_mb}M", f"--time={self.time_minutes}"]
        if self.gpus:
            argv.append(f"--gres=gpu:{self.gpus}")
        for opt, value in (("account", self.account), ("qos", self.qos), ("reservation", self.reservation)):
            if value:
                argv.append(f"--{opt}={value}")
        return argv + list(self.extra)

    def describe(self):
        text = f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}, {_mem_text(self.memory_mb)}"
        if self.gpus:
            text += f", {self.gpus} GPU{'s' if self.gpus != 1 else ''}"
        text += f", {_minutes_text(self.time_minutes)} on {self.partition}"
        if self.reservation:
            text += f" (reservation {self.reservation})"
        return text


def _mem_text(mb):
    return f"{mb // 1024} GB" if mb % 1024 == 0 else f"{mb} MB"


def _minutes_text(minutes):
    if minutes is None:
        return "no time limit"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes > 60 else f"{minutes} min"


def gpu_count(gres):
    total = 0
    for item in filter(None, (gres or "").split(",")):
        parts = item.split(":")
        if parts[0] == "gpu":
            try:
                total += int(parts[-1]) if len(parts) > 1 else 1
            except ValueError:
                total += 1
    return total


# -- partitions the user may use -------------------------------------------------------
def usable_partitions(partitions, nodes, user_groups=None, accounts=None):
    """Partitions a user may submit to, each with its per-node limits.

    Returns ``{name: {"partition": p, "max_cpus", "max_memory", "max_gpus"}}``;
    hidden, root-only, down and group-restricted partitions are left out.
    ``user_groups`` None means "not checked" (single-account mode); ``accounts`` (the
    user's accounts, None = not known) leaves out partitions whose AllowAccounts /
    DenyAccounts admit none of them.
    """
    by_name = {n["name"]: n for n in nodes}
    out = {}
    for p in partitions:
        if p.get("hidden") or p.get("root_only") or p.get("state") not in ("UP", None):
            continue
        allow = p.get("allow_groups") or "ALL"
        if allow != "ALL" and user_groups is not None and not set(allow.split(",")) & set(user_groups):
            continue
        if accounts and not any(_account_admitted(p, a) for a in accounts):
            continue
        members = [by_name[n] for n in p.get("nodes", []) if n in by_name]
        if not members:
            continue
        out[p["name"]] = {
            "partition": p,
            "max_cpus": max(n["cpus"] for n in members),
            "max_memory": max(n["real_memory"] for n in members),
            "max_gpus": max(gpu_count(n.get("gres")) for n in members),
        }
    return out


def _account_admitted(part, account):
    listed = lambda value: account in {v.strip() for v in (value or "").split(",") if v.strip()}  # noqa: E731
    allow = part.get("allow_accounts") or "ALL"
    return (allow.upper() == "ALL" or listed(allow)) and not listed(part.get("deny_accounts"))


def profile_allowed(profile, user_name, hub_groups):
    users, groups = profile.get("users"), profile.get("groups")
    if not users and not groups:
        return True
    return user_name in (users or []) or bool(set(groups or []) & set(hub_groups))


# -- parsing --------------------------------------------------------------------------------
def _int(value, what, lo, hi):
    try:
        n = int(str(value).strip())
    except ValueError:
        raise OptionsError(f"{what} must be a whole number, not {value!r}.") from None
    if n < lo:
        raise OptionsError(f"{what} must be at least {lo} (you asked for {n}).")
    if hi is not None and n > hi:
        raise OptionsError(f"{what} can be at most {hi} here (you asked for {n}).")
    return n


def parse_memory(value):
    """'4G', '512M', '4096' (MB) -> MB; OptionsError otherwise."""
    text = str(value).strip()
    try:
        return timespec.parse_mem(text)
    except ValueError:
        raise OptionsError(f"Memory must be a size like 2G or 512M, not {text!r}.") from None


def parse_time(value):
    """'90' (minutes), '2:00:00', '1-00:00' -> minutes; OptionsError otherwise."""
    text = str(value).strip()
    try:
        minutes = timespec.parse_time_limit(text)
    except ValueError:
        raise OptionsError(f"Time must look like 90 (minutes), 2:00:00 or 1-00:00, not {text!r}.") from None
    if not minutes:
        raise OptionsError("An unlimited time is not allowed for a notebook server; give a time limit.")
    return minutes


def _first(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else ""
    return value


def form_to_options(form_data):
    """Form fields (lists of strings) -> user_options (strings), no checks yet."""
    out = {}
    for key in ("profile",) + CUSTOM_FIELDS:
        if key in form_data:
            out[key] = str(_first(form_data[key])).strip()
    if out.get("profile") and out["profile"] != CUSTOM:
        # the custom fieldset is always posted; a chosen profile ignores it
        out = {"profile": out["profile"]}
    for key in ("account", "qos", "reservation"):
        if key in out and not out[key]:
            del out[key]  # "(default)" / "(none)" choices
    return out


#: fields of a custom request (account, qos, reservation need the user's Access)
CUSTOM_FIELDS = ("partition", "cpus", "memory", "gpus", "time", "account", "qos", "reservation")


def resolve(user_options, *, profiles, usable, allow_custom, user_name, hub_groups, default_profile=None,
            access=None):
    """Check ``user_options`` and return the :class:`Request` to submit.

    ``access``: the user's :class:`spawner.access.Access` (None: accounts, QOS and
    reservations only from profiles, unchecked here - the controller still checks).
    """
    opts = dict(user_options or {})
    allowed = [p for p in profiles if profile_allowed(p, user_name, hub_groups)]
    name = str(_first(opts.get("profile", "")) or "").strip()
    has_custom_fields = any(k in opts for k in CUSTOM_FIELDS)
    if not name:
        name = CUSTOM if has_custom_fields else (default_profile or (allowed[0]["name"] if allowed else CUSTOM))
    for key in ("account", "qos", "reservation"):
        if opts.get(key) and (access is None or name != CUSTOM):
            raise OptionsError(f"You cannot choose the {key} yourself: pick a profile that includes it"
                               + (", or a custom request." if access is not None and allow_custom else "."))
    if name != CUSTOM:
        profile = next((p for p in profiles if p["name"] == name), None)
        if profile is None:
            raise OptionsError(f"There is no profile {name!r}. Choose one of: "
                               + ", ".join(p["name"] for p in allowed) + ".")
        if profile not in allowed:
            raise OptionsError(f"You may not use profile {name!r}.")
        fields = {k: profile.get(k) for k in CUSTOM_FIELDS}
        source = f"profile {name!r}"
    else:
        if not allow_custom:
            raise OptionsError("Custom requests are not enabled on this hub: choose a profile.")
        fields = {k: _first(opts.get(k)) for k in CUSTOM_FIELDS}
        profile, source = {}, "your request"
    if not usable:
        raise OptionsError("No partition is available to you on this cluster right now.")
    resv_name = str(fields.get("reservation") or "").strip()
    if resv_name and not fields.get("partition") and access is not None:
        # as sbatch: a job asking for a reservation without a partition takes the reservation's
        resv = next((r for r in access.all_reservations if r["name"] == resv_name), None)
        if resv is not None and resv.get("partition") in usable:
            fields["partition"] = resv["partition"]
    pname = fields.get("partition") or next(
        (n for n, u in usable.items() if u["partition"].get("default")), next(iter(usable)))
    limits = usable.get(pname)
    if limits is None:
        raise OptionsError(f"Partition {pname!r} ({source}) is not available to you. Available: "
                           + ", ".join(sorted(usable)) + ".")
    part = limits["partition"]
    cpus = _int(fields.get("cpus") or 1, "CPUs", 1, limits["max_cpus"])
    memory = parse_memory(fields.get("memory") or "1G")
    if memory < 1:
        raise OptionsError("Memory must be at least 1 MB.")
    if memory > limits["max_memory"]:
        raise OptionsError(f"Memory can be at most {_mem_text(limits['max_memory'])} in partition "
                           f"{pname} (you asked for {_mem_text(memory)}).")
    gpus = _int(fields.get("gpus") or 0, "GPUs", 0, limits["max_gpus"])
    time_field = fields.get("time") or part.get("default_time") or part.get("max_time") or 60
    minutes = parse_time(time_field) if not isinstance(time_field, int) else time_field
    if minutes < 1:
        raise OptionsError("The time limit must be at least 1 minute.")
    if part.get("max_time") is not None and minutes > part["max_time"]:
        raise OptionsError(f"Partition {pname} allows at most {_minutes_text(part['max_time'])} "
                           f"(you asked for {_minutes_text(minutes)}).")
    account, qos = str(fields.get("account") or "").strip(), str(fields.get("qos") or "").strip()
    if access is not None:
        try:
            access.check(part, account=account, qos=qos, reservation=resv_name, minutes=minutes,
                         chosen_by_user=(name == CUSTOM),
                         partitions=[u["partition"] for u in usable.values()])
        except AccessError as e:
            raise OptionsError(f"Profile {name!r}: {e}" if name != CUSTOM else str(e)) from None
    return Request(profile=name, partition=pname, cpus=cpus, memory_mb=memory, gpus=gpus,
                   time_minutes=minutes, account=account, qos=qos, reservation=resv_name,
                   extra=list(profile.get("sbatch_args") or []))


# -- the form -------------------------------------------------------------------------------
def render_form(*, profiles, usable, allow_custom, user_name, hub_groups, previous=None, access=None,
                clock=None):
    """HTML of the spawn form: the allowed profiles, then a custom request within live limits.

    With ``access``, the custom request also offers the user's accounts and QOS (their
    defaults preselected) and the reservations they are admitted to; profiles naming an
    account, QOS or reservation they may not use are shown disabled, with why.
    """
    e = html.escape
    prev = previous or {}
    allowed = [p for p in profiles if profile_allowed(p, user_name, hub_groups)]
    problems = {}  # profiles that do not fit the cluster as it is now: shown, disabled, with why
    for p in allowed:
        try:
            resolve({"profile": p["name"]}, profiles=profiles, usable=usable, allow_custom=allow_custom,
                    user_name=user_name, hub_groups=hub_groups, access=access)
        except OptionsError as err:
            problems[p["name"]] = err.message
    fitting = [p["name"] for p in allowed if p["name"] not in problems]
    chosen = prev.get("profile") if prev.get("profile") in fitting + [CUSTOM] else (
        fitting[0] if fitting else CUSTOM)
    rows = []
    for p in allowed:
        checked = " checked" if p["name"] == chosen else ""
        problem = problems.get(p["name"])
        disabled = " disabled" if problem else ""
        note = f' <span class="text-danger">(unavailable: {e(problem)})</span>' if problem else ""
        rows.append(
            f'<div class="form-check"><input class="form-check-input" type="radio" name="profile" '
            f'id="profile-{e(p["name"])}" value="{e(p["name"])}"{checked}{disabled}>'
            f'<label class="form-check-label" for="profile-{e(p["name"])}">'
            f'{e(p.get("display_name") or p["name"])}{note}</label></div>')
    custom = ""
    if allow_custom and usable:
        checked = " checked" if chosen == CUSTOM or not allowed else ""
        opts = []
        for name, lim in usable.items():
            part = lim["partition"]
            sel = " selected" if (prev.get("partition") == name or (not prev.get("partition") and part.get("default"))) else ""
            label = (f"{name}: up to {lim['max_cpus']} CPUs, {_mem_text(lim['max_memory'])}"
                     + (f", {lim['max_gpus']} GPUs" if lim["max_gpus"] else "")
                     + f", {_minutes_text(part.get('max_time'))}")
            opts.append(f'<option value="{e(name)}"{sel}>{e(label)}</option>')
        max_cpus = max(lim["max_cpus"] for lim in usable.values())
        max_gpus = max(lim["max_gpus"] for lim in usable.values())
        custom = (
            f'<div class="form-check"><input class="form-check-input" type="radio" name="profile" '
            f'id="profile-custom" value="custom"{checked}><label class="form-check-label" '
            f'for="profile-custom">Custom request</label></div>'
            '<fieldset class="ms-4 mt-2">'
            f'<label class="form-label" for="bh-partition">Partition</label>'
            f'<select class="form-select" name="partition" id="bh-partition">{"".join(opts)}</select>'
            f'<label class="form-label" for="bh-cpus">CPUs</label>'
            f'<input class="form-control" type="number" name="cpus" id="bh-cpus" min="1" max="{max_cpus}" '
            f'value="{e(str(prev.get("cpus", 1)))}">'
            f'<label class="form-label" for="bh-memory">Memory (e.g. 2G, 512M)</label>'
            f'<input class="form-control" type="text" name="memory" id="bh-memory" '
            f'value="{e(str(prev.get("memory", "2G")))}">'
            + (f'<label class="form-label" for="bh-gpus">GPUs</label>'
               f'<input class="form-control" type="number" name="gpus" id="bh-gpus" min="0" max="{max_gpus}" '
               f'value="{e(str(prev.get("gpus", 0)))}">' if max_gpus else "")
            + f'<label class="form-label" for="bh-time">Time limit (minutes, or H:MM:SS)</label>'
            f'<input class="form-control" type="text" name="time" id="bh-time" '
            f'value="{e(str(prev.get("time", "60")))}">'
            + (_accounting_fields(access, prev, clock) if access is not None else "")
            + '</fieldset>')
    if not rows and not custom:
        return ('<p class="text-danger">No profile or partition is available to you on this cluster '
                'right now. Ask your administrator.</p>')
    return ('<div class="batchhub-options"><p>Your server runs as a job on the cluster. '
            'Choose what it needs:</p>' + "".join(rows) + custom + "</div>")


def _accounting_fields(access, prev, clock=None):
    """Account, QOS and reservation selects of the custom request (only what the user may use)."""
    e = html.escape
    out = []
    accounts = access.accounts()
    if accounts:
        chosen = prev.get("account") if prev.get("account") in accounts else (access.default_account or accounts[0])
        opts = "".join(f'<option value="{e(a)}"{" selected" if a == chosen else ""}>'
                       f'{e(a)}{" (default)" if a == access.default_account else ""}</option>' for a in accounts)
        out.append('<label class="form-label" for="bh-account">Account</label>'
                   f'<select class="form-select" name="account" id="bh-account">{opts}</select>')
        qos_names = []
        for a in accounts:
            for q in access.allowed_qos(a):
                if q not in qos_names:
                    qos_names.append(q)
        if qos_names:
            default = access.default_qos(chosen)
            picked = prev.get("qos") if prev.get("qos") in qos_names else ""
            opts = [f'<option value=""{"" if picked else " selected"}>default ({e(default)})</option>']
            opts += [f'<option value="{e(q)}"{" selected" if q == picked else ""}>{e(q)}</option>'
                     for q in qos_names]
            out.append('<label class="form-label" for="bh-qos">QOS</label>'
                       f'<select class="form-select" name="qos" id="bh-qos">{"".join(opts)}</select>')
    resvs = access.reservations()
    if resvs:
        fmt = clock or (lambda t: str(int(t)))
        picked = prev.get("reservation") if prev.get("reservation") in {r["name"] for r in resvs} else ""
        opts = [f'<option value=""{"" if picked else " selected"}>(none)</option>']
        for r in resvs:
            when = (f"active until {fmt(r['end_time'])}" if r.get("start_time", 0) <= access.now
                    else f"from {fmt(r['start_time'])} to {fmt(r['end_time'])}")
            label = f"{r['name']}: {when} on {r.get('nodelist') or ','.join(r.get('nodes') or [])}"
            opts.append(f'<option value="{e(r["name"])}"{" selected" if r["name"] == picked else ""}>'
                        f'{e(label)}</option>')
        out.append('<label class="form-label" for="bh-reservation">Reservation</label>'
                   f'<select class="form-select" name="reservation" id="bh-reservation">{"".join(opts)}</select>')
    return "".join(out)
