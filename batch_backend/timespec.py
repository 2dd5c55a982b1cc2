"""Slurm's time, duration and memory syntaxes, parsed and printed.

Clients compare these strings byte for byte (SLURM_DIALECT sections 2, 5, 6, 7):
squeue ``%M``/``%l`` print ``M:SS``/``H:MM:SS``/``D-HH:MM:SS``, sacct and
scontrol print ``HH:MM:SS``/``D-HH:MM:SS`` and ``YYYY-MM-DDTHH:MM:SS`` or
``Unknown``; sbatch accepts ``--time``/``--mem``/``--begin`` in Slurm's forms.
Keeping every conversion in one stdlib-only module makes the commands agree
with each other, and keeps CLI start-up fast (only ``time`` and ``datetime``,
both C modules, are imported).

Units: time limits are whole minutes (``None`` = UNLIMITED), durations are
seconds, memory is MB, absolute times are epoch seconds in local time.
"""

import time as _time

__all__ = [
    "parse_time_limit", "format_duration", "format_limit", "format_hms",
    "parse_mem", "format_mem", "parse_datetime", "format_datetime",
]

_UNLIMITED_WORDS = ("UNLIMITED", "INFINITE", "-1")


def _uint(text):
    """Non-negative ASCII integer or ValueError (``int`` alone accepts '+1', ' 1', '١')."""
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(text)
    return int(text)


def parse_time_limit(s):
    """Minutes for a Slurm ``--time`` value, ``None`` for UNLIMITED.

    Forms: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``; a bare
    number is minutes; ``UNLIMITED``/``INFINITE``/``-1`` mean no limit. Seconds
    round up to whole minutes (``0:30`` -> 1). ``0`` returns 0: Slurm reads it
    as "no limit", callers decide. Raises
    ``ValueError("Invalid time limit specification")`` on anything else.
    """
    text = str(s).strip()
    if text.upper() in _UNLIMITED_WORDS:
        return None
    try:
        days, hours, minutes, seconds = 0, 0, 0, 0
        if "-" in text:
            day_text, _, rest = text.partition("-")
            days = _uint(day_text)
            parts = [_uint(p) for p in rest.split(":")]
            if len(parts) == 1:
                hours, = parts
            elif len(parts) == 2:
                hours, minutes = parts
            elif len(parts) == 3:
                hours, minutes, seconds = parts
            else:
                raise ValueError(text)
        else:
            parts = [_uint(p) for p in text.split(":")]
            if len(parts) == 1:
                minutes, = parts
            elif len(parts) == 2:
                minutes, seconds = parts
            elif len(parts) == 3:
                hours, minutes, seconds = parts
            else:
                raise ValueError(text)
    except ValueError:
        raise ValueError("Invalid time limit specification") from None
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return -(-total // 60)


def _split_seconds(seconds):
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def format_duration(seconds):
    """squeue ``%M`` style: ``0:00``, ``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``.

    Fractions are truncated and negative values print as ``0:00``.
    """
    days, hours, minutes, secs = _split_seconds(seconds)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_limit(minutes):
    """squeue ``%l``/sinfo TIMELIMIT: ``UNLIMITED`` for None, else like %M."""
    if minutes is None:
        return "UNLIMITED"
    return format_duration(int(minutes) * 60)


def format_hms(seconds):
    """sacct Elapsed/Timelimit, scontrol RunTime: ``HH:MM:SS`` or ``D-HH:MM:SS``.

    ``None`` prints ``UNLIMITED`` (a time limit that is not set).
    """
    if seconds is None:
        return "UNLIMITED"
    days, hours, minutes, secs = _split_seconds(seconds)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


# Unit -> (numerator, denominator) of MB per unit.
# P is accepted because format_mem prints it (what scontrol shows must parse back).
_MEM_UNITS = {"": (1, 1), "K": (1, 1024), "M": (1, 1), "G": (1024, 1), "T": (1024 * 1024, 1),
              "P": (1024 ** 3, 1)}


def parse_mem(s):
    """MB for a Slurm memory size: ``954M`` -> 954, ``4GB`` -> 4096, ``1K`` -> 1.

    An integer or decimal (``1.5G``) with an optional ``K/M/G/T/P`` unit,
    optionally followed by ``B``, case-insensitive; no unit means MB. The
    result is rounded up to a whole MB (computed exactly, without floats).
    Raises ``ValueError`` on garbage or a negative value.
    """
    text = str(s).strip()
    upper = text.upper()
    if upper.endswith("B") and len(upper) > 1 and upper[-2] in "KMGTP":
        upper = upper[:-1]
    unit = upper[-1] if upper and upper[-1] in "KMGTP" else ""
    number = upper[:-1] if unit else upper
    whole, dot, frac = number.partition(".")
    if not (whole or frac) or (whole and not (whole.isascii() and whole.isdigit())) \
            or (frac and not (frac.isascii() and frac.isdigit())):
        if number.startswith("-"):
            raise ValueError(f"negative memory size '{s}'")
        raise ValueError(f"invalid memory size '{s}'")
    num, den = _MEM_UNITS[unit]
    digits = int((whole or "0") + frac)
    numerator = digits * num
    denominator = den * 10 ** len(frac)
    return -(-numerator // denominator)


def format_mem(mb):
    """Slurm's ReqMem style: the largest exact unit, ``4G``, ``954M``, ``1T``.

    ``0`` prints ``0`` and ``None`` prints ``''`` (no memory request).
    """
    if mb is None:
        return ""
    mb = int(mb)
    if mb == 0:
        return "0"
    units = "MGTP"
    idx = 0
    while mb % 1024 == 0 and idx < len(units) - 1:
        mb //= 1024
        idx += 1
    return f"{mb}{units[idx]}"


_DELTA_UNITS = {
    "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
}
# Named times of day (Slurm's parse_time): the next such time, today or tomorrow.
_NAMED_TIMES = {"midnight": (0, 0), "noon": (12, 0), "fika": (15, 0), "teatime": (16, 0)}


def _bad_time(s):
    return ValueError(f"Invalid time specification: {s}")


def _delta_seconds(text, s):
    """``30days`` -> 2592000, ``60`` -> 60 (seconds by default)."""
    i = 0
    while i < len(text) and text[i] in "0123456789":
        i += 1
    if i == 0 or not text[:i].isascii():
        raise _bad_time(s)
    amount, unit = int(text[:i]), text[i:].lower()
    if not unit:
        return amount
    if unit.endswith("s") and unit[:-1] in _DELTA_UNITS:
        unit = unit[:-1]
    if unit not in _DELTA_UNITS:
        raise _bad_time(s)
    return amount * _DELTA_UNITS[unit]


def _clock(text, s):
    """``HH:MM[:SS]`` -> (h, m, s) with range checks."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise _bad_time(s)
    try:
        values = [_uint(p) for p in parts]
    except ValueError:
        raise _bad_time(s) from None
    if len(values) == 2:
        values.append(0)
    h, m, sec = values
    if h > 23 or m > 59 or sec > 59:
        raise _bad_time(s)
    return h, m, sec


def _next_time_of_day(h, m, sec, now):
    import datetime as _dt  # here, not at the top: the CLI's start-up budget is tight
    """Epoch of the next h:m:sec local time (today, or tomorrow if passed)."""
    today = _dt.datetime.fromtimestamp(now).date()
    candidate = _dt.datetime.combine(today, _dt.time(h, m, sec)).timestamp()
    if candidate <= now:
        tomorrow = today + _dt.timedelta(days=1)
        candidate = _dt.datetime.combine(tomorrow, _dt.time(h, m, sec)).timestamp()
    return candidate


def _printable(epoch, s):
    """*epoch* if every tool can print it as a local date (``now+10**30`` cannot)."""
    try:
        _time.localtime(epoch)
    except (OverflowError, OSError, ValueError):
        raise _bad_time(s) from None
    return epoch


def parse_datetime(s, now=None):
    """Epoch seconds for sacct ``-S``/``-E`` and sbatch ``--begin`` values.

    Accepted (local time): ``now``, ``now[+-]N[unit]`` (unit seconds, minutes,
    hours, days or weeks, singular or plural; default seconds), ``today``,
    ``tomorrow`` (their 00:00), ``midnight``/``noon``/``teatime`` (next one),
    ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS]``, ``MM/DD[/YY]`` and
    ``HH:MM[:SS]`` (today, or tomorrow if already passed). Raises
    ``ValueError("Invalid time specification: <s>")`` otherwise.
    """
    import datetime as _dt
    if now is None:
        now = _time.time()
    text = str(s).strip()
    low = text.lower()
    if not text:
        raise _bad_time(s)
    if low.startswith("now"):
        rest = low[3:]
        if not rest:
            return float(now)
        if rest[0] not in "+-":
            raise _bad_time(s)
        delta = _delta_seconds(rest[1:], s)
        return _printable(float(now + delta if rest[0] == "+" else now - delta), s)
    today = _dt.datetime.fromtimestamp(now).date()
    if low == "today":
        return _dt.datetime.combine(today, _dt.time()).timestamp()
    if low == "tomorrow":
        return _dt.datetime.combine(today + _dt.timedelta(days=1), _dt.time()).timestamp()
    if low in _NAMED_TIMES:
        h, m = _NAMED_TIMES[low]
        return _next_time_of_day(h, m, 0, now)
    date_text, sep, clock_text = text.partition("T")
    try:
        if "-" in date_text:
            parts = date_text.split("-")
            if len(parts) != 3 or len(parts[0]) != 4:
                raise _bad_time(s)
            year, month, day = (_uint(p) for p in parts)
            date = _dt.date(year, month, day)
        elif "/" in date_text:
            parts = [_uint(p) for p in date_text.split("/")]
            if len(parts) == 2:
                date = _dt.date(today.year, parts[0], parts[1])
            elif len(parts) == 3:
                year = parts[2] + 2000 if parts[2] < 100 else parts[2]
                date = _dt.date(year, parts[0], parts[1])
            else:
                raise _bad_time(s)
        elif ":" in date_text and not sep:
            return _next_time_of_day(*_clock(date_text, s), now)
        else:
            raise _bad_time(s)
    except ValueError:
        raise _bad_time(s) from None
    if sep:
        h, m, sec = _clock(clock_text, s)
    else:
        h = m = sec = 0
    return _dt.datetime.combine(date, _dt.time(h, m, sec)).timestamp()


def format_datetime(epoch):
    """``YYYY-MM-DDTHH:MM:SS`` in local time; ``Unknown`` for None (or 0, as Slurm)."""
    if epoch is None or epoch == 0:
        return "Unknown"
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.localtime(epoch))
