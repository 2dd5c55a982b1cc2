"""TRES strings as sacctmgr writes and prints them (``cpu=4,mem=2G,node=1,gres/gpu=2``).

Stdlib only and tiny: the sacctmgr CLI and the controller's association store
both need it. Memory is kept in MB; ``-1`` as a value clears a limit (Slurm's
convention), which :func:`parse_tres` returns as ``None``.
"""

TRES_ORDER = ("cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu")
_ALIASES = {"cpus": "cpu", "nodes": "node", "memory": "mem", "gpu": "gres/gpu", "gpus": "gres/gpu",
            "gres/gpus": "gres/gpu"}
_SUPPORTED = ("cpu", "mem", "node", "gres/gpu")
_MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


class TresError(ValueError):
    """A TRES string sacctmgr would refuse."""


def _mem_mb(text):
    unit = text[-1:].upper()
    if unit in _MEM_UNITS:
        number = text[:-1]
    else:
        unit, number = "M", text
    try:
        value = float(number)
    except ValueError:
        raise TresError(f"Invalid TRES value: mem={text}") from None
    return int(-(-value * _MEM_UNITS[unit] // 1))


def parse_tres(text):
    """``'cpu=4,mem=2G'`` -> ``{'cpu': 4, 'mem': 2048}``; a value of -1 maps the TRES to None (clear)."""
    out = {}
    for item in filter(None, (text or "").split(",")):
        name, eq, value = item.partition("=")
        name = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if not eq or not value:
            raise TresError(f"Invalid TRES specification: {item}")
        if name not in _SUPPORTED:
            raise TresError(f"Invalid TRES: {name}")
        value = value.strip()
        if value == "-1":
            out[name] = None
        elif name == "mem":
            out[name] = _mem_mb(value)
        elif (value.isascii() and value.isdigit()):
            out[name] = int(value)
        else:
            raise TresError(f"Invalid TRES value: {name}={value}")
    return out


def format_tres(tres):
    """``{'cpu': 4, 'mem': 2048}`` -> ``'cpu=4,mem=2G'`` in Slurm's TRES order."""
    parts = []
    for name in sorted(tres or {}, key=lambda n: (TRES_ORDER.index(n) if n in TRES_ORDER else 99, n)):
        value = tres[name]
        if value is None:
            continue
        if name == "mem":
            if value and value % (1024 * 1024) == 0:
                text = f"{value // (1024 * 1024)}T"
            elif value and value % 1024 == 0:
                text = f"{value // 1024}G"
            else:
                text = f"{value}M"
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return ",".join(parts)
