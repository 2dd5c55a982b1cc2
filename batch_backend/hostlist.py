"""Slurm hostlist expressions: ``n[1-3,5]`` <-> ``['n1', 'n2', 'n3', 'n5']``.

Slurm never prints node lists one name at a time: ``SLURM_JOB_NODELIST``,
squeue ``%R``/``%N``, sacct ``NodeList``, ``scontrol show job`` and sinfo all
use the compressed bracket form, and clients (MPICH hydra, submitit) expand it
again. slurm.conf ``NodeName=``/``Nodes=`` and ``--nodelist``/``--exclude`` use
the same syntax, so both directions live here, stdlib-only and import-light
because every CLI command imports this module.

Rules implemented (those of Slurm's ``hostlist.c`` that matter in practice):

* A list is separated by commas (or whitespace) outside brackets.
* Each bracket holds comma-separated numbers or ``lo-hi`` ranges; several
  brackets in one name form a cartesian product (``a[1-2]b[3-4]``).
* Zero padding comes from the low bound (``node[01-04]`` -> ``node01``...).
* Expansion keeps order and duplicates; compression sorts the numbers of each
  prefix, drops duplicates and keeps prefixes in order of first appearance.
"""

__all__ = ["expand", "compress"]

#: Refuse to expand absurd ranges (``n[0-999999999]``) that would exhaust memory.
MAX_HOSTS = 1_000_000


def _split_top(expr):
    """Split *expr* on commas/whitespace that are outside brackets."""
    segments, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch == "[":
            if depth:
                raise ValueError(f"nested '[' in hostlist '{expr}'")
            depth = 1
        elif ch == "]":
            if not depth:
                raise ValueError(f"unbalanced ']' in hostlist '{expr}'")
            depth = 0
        elif depth and ch.isspace():
            raise ValueError(f"whitespace inside brackets in hostlist '{expr}'")
        elif ch == "," and not depth:
            segments.append(expr[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in hostlist '{expr}'")
    segments.append(expr[start:])
    items = []
    for segment in segments:
        words = segment.split()  # brackets hold no whitespace (checked above)
        if not words:
            raise ValueError(f"empty host name in hostlist '{expr}'")
        items.extend(words)
    return items


def _parse_bracket(body, expr):
    """Return the formatted numbers of one bracket body like ``1-3,05``."""
    if not body:
        raise ValueError(f"empty brackets in hostlist '{expr}'")
    values = []
    for part in body.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()) or not lo.isascii() or not hi.isascii():
            raise ValueError(f"invalid range '{part}' in hostlist '{expr}'")
        width = len(lo)
        start = int(lo)
        end = int(hi) if sep else start
        if end < start:
            raise ValueError(f"invalid range '{part}' in hostlist '{expr}': {end} < {start}")
        if end - start + 1 + len(values) > MAX_HOSTS:
            raise ValueError(f"too many hosts in hostlist '{expr}' (more than {MAX_HOSTS})")
        values.extend(str(n).zfill(width) for n in range(start, end + 1))
    return values


def _expand_item(item, expr):
    """Expand one comma-free element (may hold several brackets)."""
    results = [""]
    pos = 0
    while pos < len(item):
        open_at = item.find("[", pos)
        if open_at < 0:
            text = item[pos:]
            results = [r + text for r in results]
            break
        if open_at > pos:
            text = item[pos:open_at]
            results = [r + text for r in results]
        close_at = item.find("]", open_at)
        # _split_top already checked balance, so close_at > open_at here.
        values = _parse_bracket(item[open_at + 1:close_at], expr)
        if len(results) * len(values) > MAX_HOSTS:
            raise ValueError(f"too many hosts in hostlist '{expr}' (more than {MAX_HOSTS})")
        results = [r + v for r in results for v in values]
        pos = close_at + 1
    return results


def expand(expr):
    """Expand a hostlist expression into the list of host names.

    >>> expand("n[1-3,5],gpu01")
    ['n1', 'n2', 'n3', 'n5', 'gpu01']

    Raises ``ValueError`` for an empty expression, unbalanced or nested
    brackets, empty brackets, non-numeric or reversed ranges.
    """
    if expr is None or not str(expr).strip():
        raise ValueError("empty hostlist expression")
    expr = str(expr).strip()
    names = []
    for item in _split_top(expr):
        names.extend(_expand_item(item, expr))
    return names


def _split_name(name):
    """``'gpu012'`` -> ``('gpu', '012')``; ``'login'`` -> ``('login', '')``."""
    end = len(name)
    while end > 0 and name[end - 1].isdigit() and name[end - 1].isascii():
        end -= 1
    return name[:end], name[end:]


def _ranges(numbers, width):
    """Format sorted unique ints as ``1-3,5`` with zero padding *width*."""
    parts = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        lo = str(numbers[i]).zfill(width)
        parts.append(lo if i == j else f"{lo}-{str(numbers[j]).zfill(width)}")
        i = j + 1
    return ",".join(parts)


def compress(names):
    """Compress host names into a hostlist expression (inverse of :func:`expand`).

    >>> compress(['n1', 'n2', 'n3', 'n5'])
    'n[1-3,5]'

    Names are grouped by their non-numeric prefix (order of first appearance);
    numbers in a group are sorted and de-duplicated. A zero-padded name
    (``n09``) fixes the width of its group; an unpadded name joins the widest
    padded group it is compatible with (``n09,n10`` -> ``n[09-10]``), otherwise
    a separate group (``n1,n01`` -> ``n1,n01``). A group holding one number is
    printed plainly (``n5``, not ``n[5]``). An empty input gives ``''``.
    """
    names = list(names)
    padded = {}  # prefix -> set of padded widths
    split = []
    for name in names:
        if not name:
            raise ValueError("empty host name in list to compress")
        prefix, digits = _split_name(name)
        split.append((name, prefix, digits))
        if len(digits) > 1 and digits[0] == "0":
            padded.setdefault(prefix, set()).add(len(digits))

    groups = {}  # (prefix, width) or (name, None) -> set of ints; dict keeps order
    for name, prefix, digits in split:
        if not digits:
            groups.setdefault((name, None), None)
            continue
        if len(digits) > 1 and digits[0] == "0":
            width = len(digits)
        else:
            fits = [w for w in padded.get(prefix, ()) if w <= len(digits)]
            width = max(fits) if fits else 0
        groups.setdefault((prefix, width), set()).add(int(digits))

    parts = []
    for (prefix, width), numbers in groups.items():
        if width is None:
            parts.append(prefix)
            continue
        numbers = sorted(numbers)
        if len(numbers) == 1:
            parts.append(prefix + str(numbers[0]).zfill(width))
        else:
            parts.append(f"{prefix}[{_ranges(numbers, width)}]")
    return ",".join(parts)
