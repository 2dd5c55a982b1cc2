"""sbatch's script handling: directives, sanity checks, ``--array``, ``--export``.

Split out of :mod:`batch_backend.cli.sbatch_options` (which re-exports all of
this) to keep both modules small. These are the pieces that interpret the
*content* sbatch submits rather than its command line: the ``#SBATCH`` lines
must be tokenised exactly like Slurm's ``_get_argument`` so that quoted values
and trailing comments mean the same thing; the script checks reproduce Slurm's
error texts; and ``--export`` decides, byte for byte, the environment the
batch shell starts from (SLURM_DIALECT 2.3).
"""

__all__ = ["UsageError", "NOSHEBANG_LINES", "WRAP_TEMPLATE", "MAX_ARRAY_INDEX",
           "parse_directives", "check_script", "compute_environment", "expand_array_spec"]


class UsageError(Exception):
    """A submission rejected before reaching the controller; ``lines`` go to stderr."""

    def __init__(self, lines):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


NOSHEBANG_LINES = [
    "This does not look like a batch script.  The first",
    "line must start with #! followed by the path to an interpreter.",
    "For instance: #!/bin/sh",
]
WRAP_TEMPLATE = "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{}\n"
#: Slurm's absolute ceiling for array indices (MaxArraySize can be at most 4000001).
MAX_ARRAY_INDEX = 4_000_000


def _is_uint(text):
    """ASCII digits only (``str.isdigit`` alone accepts other scripts' digits)."""
    return bool(text) and text.isascii() and text.isdigit()


def expand_array_spec(spec):
    """Indices and throttle of an ``--array`` spec: ``'0-7:2%3'`` -> ([0, 2, 4, 6], 3).

    Items are ``N``, ``A-B`` or ``A-B:STEP``, comma-separated, with an optional
    ``%MAX`` (max tasks running at once; None when absent). Indices are
    returned sorted without duplicates. Raises
    ``ValueError("Invalid job array specification")``.
    """
    error = ValueError("Invalid job array specification")
    body, pct, throttle = str(spec).strip().partition("%")
    max_running = None
    if pct:
        if not _is_uint(throttle) or int(throttle) == 0:
            raise error
        max_running = int(throttle)
    indices = set()
    for item in body.split(","):
        rng, colon, step_text = item.partition(":")
        low, dash, high = rng.partition("-")
        if not _is_uint(low) or (dash and not _is_uint(high)) \
                or (colon and (not dash or not _is_uint(step_text))):
            raise error
        start, end = int(low), int(high) if dash else int(low)
        step = int(step_text) if colon else 1
        if end < start or step < 1 or end > MAX_ARRAY_INDEX:
            raise error
        indices.update(range(start, end + 1, step))
    return sorted(indices), max_running


def compute_environment(export, env):
    """The environment the batch shell starts from, per ``--export`` (SLURM_DIALECT 2.3).

    ``ALL`` (default): a copy of *env*; ``ALL,X=v``: plus overrides; a list
    ``A,B=v``: only those (bare names take *env*'s value, missing ones are
    skipped); ``NONE``/``NIL``: nothing. Outside ``ALL`` mode the submitter's
    ``SLURM_*`` variables are kept, as Slurm does; the node daemon overrides
    them with the job's own values.
    """
    tokens = [t for t in str(export).split(",") if t]
    if not tokens:
        raise UsageError(f"Invalid --export specification: '{export}'")
    if any(t.upper() == "ALL" for t in tokens):
        result = dict(env)
    else:
        result = {k: v for k, v in env.items() if k.startswith("SLURM_")}
    for token in tokens:
        if token.upper() in ("ALL", "NONE", "NIL"):
            continue
        name, eq, value = token.partition("=")
        if not name:
            raise UsageError(f"Invalid --export specification: '{export}'")
        if eq:
            result[name] = value
        elif name in env:
            result[name] = env[name]
    return result


def _split_directive(text):
    """Split one ``#SBATCH`` line's arguments like Slurm's ``_get_argument``.

    Whitespace separates words; single or double quotes group; a backslash
    escapes the next character (also inside quotes, and also a space, as in
    the shell); an unquoted ``#`` starts a comment that ends the line (also in
    mid-word, as in Slurm). An unterminated quote runs to end of line.
    """
    words = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] == "#":
            break
        buf, quote, escaped, quoted, comment = [], None, False, False, False
        while i < n and (quote or escaped or not text[i].isspace()):
            ch = text[i]
            i += 1
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
                continue
            elif quote:
                if ch == quote:
                    quote = None
                    continue
            elif ch in "\"'":
                quote, quoted = ch, True
                continue
            elif ch == "#":
                comment = True
                break
            buf.append(ch)
        if buf or quoted:
            words.append("".join(buf))
        if comment:
            break
    return words


def parse_directives(script_text):
    """The argument words of the script's ``#SBATCH`` directives (SLURM_DIALECT 2.1).

    Line 1 must start with ``#!`` (else :class:`UsageError` with Slurm's
    three-line text). Directives are lines starting with ``#SBATCH`` followed
    by whitespace; scanning stops at the first line that is neither blank nor
    a ``#`` comment.
    """
    if not script_text.startswith("#!"):
        raise UsageError(NOSHEBANG_LINES)
    words = []
    for line in script_text.split("\n")[1:]:
        if line.startswith("#SBATCH") and line[7:8].isspace():
            words.extend(_split_directive(line[8:]))
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
    return words


def check_script(script):
    """Slurm's sanity checks on the script body, in Slurm's order."""
    if not script:
        raise UsageError("Batch script is empty!")
    if not script.strip():
        raise UsageError("Batch script contains only whitespace!")
    if not script.startswith("#!"):
        raise UsageError(NOSHEBANG_LINES)
    if "\0" in script:
        raise UsageError(["The Slurm controller does not allow scripts that",
                          "contain a NULL character '\\0'."])
    if "\r\n" in script:
        raise UsageError(["Batch script contains DOS line breaks (\\r\\n)",
                          "instead of expected UNIX line breaks (\\n)."])


def _read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()
