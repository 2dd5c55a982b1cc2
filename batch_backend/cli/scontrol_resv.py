"""``scontrol create|update|delete|show reservation``: Slurm's words, Slurm's errors.

Arguments are parsed as Slurm's ``_parse_res_options`` does (case-insensitive
keys, abbreviations with the same minimum lengths, ``Users+=``/``Flags-=``
edits, times in ``parse_time`` forms such as ``now+1hour`` or
``2026-12-01T10:00``), then sent to the controller, which validates and
journals. Messages match Slurm 22.05: ``Reservation created: NAME``,
``Error creating the reservation: Requested nodes are busy``...

A classroom slot is one command::

    scontrol create reservation ReservationName=class101 StartTime=2026-12-01T10:00 \\
        Duration=2:00:00 Nodes=n[1-2] Groups=class101 Flags=WEEKLY
"""

import sys

from .common import CommandError, UsageError, write_out

# (key, minimum prefix length, spec field, kind) in Slurm's matching order
_KEYS = (
    ("Accounts", 1, "accounts", "list"),
    ("Comment", 3, "comment", "str"),
    ("Flags", 2, "flags", "flags"),
    ("Groups", 1, "groups", "list"),
    ("Users", 1, "users", "list"),
    ("ReservationName", 1, "name", "str"),
    ("BurstBuffer", 2, None, "unsupported"),
    ("StartTime", 2, "start_time", "start"),
    ("EndTime", 1, "end_time", "end"),
    ("Duration", 1, "duration", "duration"),
    ("MaxStartDelay", 2, None, "unsupported"),
    ("NodeCnt", 5, "node_cnt", "count"),
    ("NodeCount", 5, "node_cnt", "count"),
    ("CoreCnt", 5, "core_cnt", "count"),
    ("CoreCount", 5, "core_cnt", "count"),
    ("CPUCnt", 5, "core_cnt", "count"),
    ("CPUCount", 5, "core_cnt", "count"),
    ("Nodes", 5, "nodes", "str"),
    ("Features", 2, "features", "str"),
    ("Licenses", 2, "licenses", "str"),
    ("PartitionName", 1, "partition", "str"),
    ("TRES", 1, None, "unsupported"),
    ("Watts", 1, None, "unsupported"),
)


def _matches(tag, key, minimum):
    n = max(len(tag), minimum)
    return tag.lower()[:n] == key.lower()[:n]


def parse_options(args, msg, now=None):
    """``['ReservationName=x', 'Users+=a', ...]`` -> the API's create/update fields.

    ``msg`` ends each error as in Slurm (``No reservation created.``). Raises
    :class:`UsageError` with Slurm's text.
    """
    from .. import timespec
    spec = {}
    for arg in args:
        tag, eq, val = arg.partition("=")
        if not eq:
            if tag.lower().startswith("res"):
                continue  # the entity word itself: "create reservation ..."
            raise UsageError(f"Misformatted parameter '{arg}', most options have a parameter after '='.  {msg}")
        sign = ""
        if tag[-1:] in "+-":
            sign, tag = tag[-1], tag[:-1]
        for key, minimum, field, kind in _KEYS:
            if _matches(tag, key, minimum):
                break
        else:
            if tag.lower().startswith("res"):
                continue
            raise UsageError(f"Unknown parameter {arg}.  {msg}")
        if kind == "unsupported":
            raise UsageError(f"{key} is not supported by this cluster.  {msg}")
        if sign and kind not in ("list", "flags", "duration"):
            raise UsageError(f"The +=/-= notation is not supported when updating {tag}.  {msg}")
        if field in spec and kind in ("list", "str") and field != "nodes":
            raise UsageError(f"Parameter {arg} specified more than once")
        if kind == "list" or kind == "flags":
            items = [v for v in val.split(",") if v]
            spec[field] = ",".join(sign + v for v in items) if sign else val
        elif kind == "str":
            spec[field] = val
        elif kind == "count":
            if not (val.isascii() and val.isdigit()):
                raise UsageError(f"Invalid {'node' if field == 'node_cnt' else 'core'} count {val}")
            spec[field] = int(val)
        elif kind in ("start", "end"):
            try:
                spec[field] = timespec.parse_datetime(val, now)
            except ValueError:
                raise UsageError(f"Invalid {'start' if kind == 'start' else 'end'} time {arg}.  {msg}") from None
        elif kind == "duration":
            try:
                minutes = timespec.parse_time_limit(val)
            except ValueError:
                raise UsageError(f"Invalid duration {arg}.  {msg}") from None
            if sign:
                spec["duration_delta"] = (minutes or 0) * (1 if sign == "+" else -1)
            else:
                spec["duration"] = -1 if minutes is None else minutes
    return spec


def _unreachable():
    from ..client import ControllerUnreachable
    return ControllerUnreachable


def _reason(exc):
    """The controller's message, or Slurm's text when no controller answered (slurm_perror style)."""
    from .common import unreachable_reason
    return exc.message if hasattr(exc, "message") else unreachable_reason(exc)


def create(args):
    spec = parse_options(args, "No reservation created.")
    from ..client import APIError, Client
    try:
        resv = Client().create_reservation(**spec)
    except (APIError, _unreachable()) as e:
        text = f"Error creating the reservation: {_reason(e)}"
        if getattr(e, "message", "") in ("Requested nodes are busy", "Requested node configuration is not available"):
            text += ("\nNote, unless nodes are directly requested a reservation must exist in a single partition."
                     "\nIf no partition is requested the default partition is assumed.")
        raise CommandError(text, raw=True) from None
    write_out(f"Reservation created: {resv['name']}\n")
    return 0


def update(args):
    spec = parse_options(args, "No reservation update.")
    name = spec.pop("name", None)
    if not name:
        raise UsageError("Reservation must be given.  No reservation update.")
    from ..client import APIError, Client
    try:
        Client().update_reservation(name, **spec)
    except (APIError, _unreachable()) as e:
        raise CommandError(f"Error updating the reservation: {_reason(e)}", raw=True) from None
    write_out("Reservation updated.\n")
    return 0


def delete(arg):
    name = arg.partition("=")[2]
    from ..client import APIError, Client
    try:
        Client().delete_reservation(name)
    except (APIError, _unreachable()) as e:
        raise CommandError(f"delete_reservation {arg}: {_reason(e)}", raw=True) from None
    return 0


def show(args, oneliner):
    from ..client import Client
    from .formats_scontrol import format_reservation
    resvs = Client().reservations()
    if args:
        resvs = [r for r in resvs if r["name"] == args[0]]
        if not resvs:
            raise CommandError(f"Reservation {args[0]} not found", raw=True)
    elif not resvs:
        return "No reservations in the system\n"
    return "".join(format_reservation(r, oneliner=oneliner) for r in resvs)


def is_reservation_word(word):
    """``res``, ``reservation``, ``ReservationName=x``: the entity of create/update/delete."""
    tag = word.partition("=")[0]
    return len(tag) >= 3 and "reservationname".startswith(tag.lower())


def main_delete(args):
    if not args or "=" not in args[0]:
        if len(args) >= 2 and is_reservation_word(args[0]):
            return delete(f"ReservationName={args[1]}")
        sys.stderr.write("Proper format is 'delete Partition=p' or 'delete Reservation=r'\n")
        return 1
    if not is_reservation_word(args[0]):
        sys.stderr.write(f"Invalid deletion entity: {args[0]}\n")
        return 1
    return delete(args[0])
