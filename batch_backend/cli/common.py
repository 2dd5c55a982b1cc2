"""Plumbing shared by the Slurm-dialect commands: option parsing and error mapping.

Every command's ``main()`` is ``run_command(prog, body, argv)``: *body* parses
its arguments with :func:`parse_options`, talks to the controller and returns
an exit code; every failure is an exception mapped here, once, to Slurm's
stderr text and exit code (SLURM_DIALECT section 0):

* :class:`CommandError` (and :class:`UsageError`): the command's own message;
* ``client.ControllerUnreachable``: the command-specific "Unable to contact
  slurm controller" line (clients such as batchspawner match it);
* ``client.APIError``: ``<prog>: error: <message from the controller>``;
* ``KeyboardInterrupt``: rc 130; a closed stdout pipe: a quiet exit;
* anything else: one ``internal error`` line, never a traceback.

This module imports nothing heavy: the client's exception classes are looked
up in ``sys.modules`` (an exception from the client means it is loaded), so
``scontrol show hostnames`` never pays for the HTTP client.
"""

import os
import sys

#: What ``-V/--version`` prints (and ``scontrol version``).
SLURM_VERSION = "slurm 22.05.11"

#: The reasons Slurm prints when the controller does not answer.
CONNECT_FAILURE = "Unable to contact slurm controller (connect failure)"
SOCKET_TIMEOUT = "Socket timed out on send/recv operation"

FLAG, VALUE, LIST, COUNT = "flag", "value", "list", "count"


class CommandError(Exception):
    """A failure with its stderr text and exit code.

    ``raw=False`` prints ``<prog>: error: <message>`` (one such line per line of
    *message*); ``raw=True`` prints *message* as it is (Slurm's own texts such
    as ``slurm_load_jobs error: Invalid job id specified``).
    """

    def __init__(self, message, rc=1, raw=False):
        super().__init__(message)
        self.message = message
        self.rc = rc
        self.raw = raw


class UsageError(CommandError):
    """Bad arguments: ``<prog>: error: <message>``, rc 1."""


def unreachable_reason(exc):
    """Slurm's wording for a ``ControllerUnreachable``: timeout or connect failure."""
    return SOCKET_TIMEOUT if "timed out" in str(exc).lower() else CONNECT_FAILURE


def _client_error_classes():
    mod = sys.modules.get("batch_backend.client")
    if mod is None:
        return None, None
    return mod.ControllerUnreachable, mod.APIError


def _write_err(text):
    try:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout():
    """After EPIPE: point stdout at /dev/null so the final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def error_text(prog, exc):
    """The stderr text of a :class:`CommandError`."""
    if exc.raw:
        return exc.message
    return "\n".join(f"{prog}: error: {line}" for line in str(exc.message).splitlines() or [""])


def run_command(prog, body, argv=None, *, unreachable="{prog}: error: {reason}", unreachable_rc=1):
    """Run ``body(argv)`` and exit with its return code, mapping failures once.

    *unreachable* is the stderr text when the controller does not answer: a
    format string (``{prog}``, ``{reason}``) or a callable ``reason -> text``.
    """
    from_console = argv is None
    if from_console:
        argv = sys.argv[1:]
    try:
        rc = body(list(argv))
        sys.stdout.flush()
    except CommandError as e:
        _write_err(error_text(prog, e))
        rc = e.rc
    except KeyboardInterrupt:
        rc = 130
    except BrokenPipeError:
        _silence_stdout()
        rc = 1
    except Exception as e:  # noqa: BLE001 - the one place every failure is mapped
        unreachable_cls, api_cls = _client_error_classes()
        if unreachable_cls is not None and isinstance(e, unreachable_cls):
            reason = unreachable_reason(e)
            text = unreachable(reason) if callable(unreachable) else unreachable.format(prog=prog, reason=reason)
            _write_err(text)
            rc = unreachable_rc
        elif api_cls is not None and isinstance(e, api_cls):
            _write_err(f"{prog}: error: {e.message}")
            rc = 1
        elif type(e).__module__ == "batch_backend.errors":
            _write_err(f"{prog}: error: {e}")
            rc = 1
        else:
            _write_err(f"{prog}: error: internal error: {e!r}")
            rc = 1
    if from_console:
        # A command-line process has nothing to tear down: skipping interpreter
        # finalisation saves ~1.5 ms per call (pollers call squeue every few seconds).
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        os._exit(rc or 0)
    sys.exit(rc or 0)


def answer_info_flags(opts, help_text, usage_text):
    """--help, --usage, --version: print the answer and return True (the caller exits 0)."""
    for flag, text in (("help", help_text), ("usage", usage_text), ("version", SLURM_VERSION + "\n")):
        if opts.get(flag):
            write_out(text)
            return True
    return False


def write_out(text):
    """Write a command's whole stdout at once (one syscall for small outputs)."""
    if text:
        sys.stdout.write(text)


# -- option parsing -------------------------------------------------------------

class Option:
    """One option of a command: ``-x``/``--long[,--alias]`` -> ``dest``.

    Kinds: FLAG (True), COUNT (+1 each time), VALUE (last one wins), LIST
    (every value appended, in order).
    """

    __slots__ = ("short", "longs", "dest", "kind")

    def __init__(self, short, longs, dest, kind=FLAG):
        self.short = short
        self.longs = tuple(n for n in longs.split(",") if n) if longs else ()
        self.dest = dest
        self.kind = kind

    @property
    def takes_value(self):
        return self.kind in (VALUE, LIST)


def options(*rows):
    """Build an option table from ``(short, "long,alias", dest, kind)`` rows."""
    return [Option(*row) for row in rows]


def _bad_option(prog, text):
    return CommandError(f"{prog}: {text}\nTry \"{prog} --help\" for more information", rc=1, raw=True)


def parse_options(prog, argv, table):
    """Parse *argv* like glibc ``getopt_long`` with argument permutation.

    Accepts ``--opt=v``, ``--opt v``, ``-x v``, ``-xv``, clustered flags
    (``-hv``), unambiguous prefixes of long options (``--job`` for
    ``--jobs``), options after positionals and ``--``. Returns
    ``(values, positionals)`` where *values* maps every ``dest`` to its value
    (None/False/0/[] when absent). Errors raise a raw :class:`CommandError`
    with glibc's message and Slurm's ``Try "<prog> --help"`` line, rc 1.
    """
    shorts = {o.short: o for o in table if o.short}
    longs = {name: o for o in table for name in o.longs}
    values = {}
    for o in table:
        values.setdefault(o.dest, [] if o.kind == LIST else (0 if o.kind == COUNT else (False if o.kind == FLAG else None)))
    positionals = []

    def store(opt, value=None):
        if opt.kind == FLAG:
            values[opt.dest] = True
        elif opt.kind == COUNT:
            values[opt.dest] = (values[opt.dest] or 0) + 1
        elif opt.kind == VALUE:
            values[opt.dest] = value
        else:
            values[opt.dest].append(value)

    i = 0
    n = len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if arg.startswith("--"):
            name, eq, inline = arg[2:].partition("=")
            opt = longs.get(name)
            if opt is None:
                matches = {id(o): o for key, o in longs.items() if key.startswith(name)} if name else {}
                if len(matches) == 1:
                    opt = next(iter(matches.values()))
                elif len(matches) > 1:
                    cands = " ".join(f"'--{k}'" for k in sorted(longs) if k.startswith(name))
                    raise _bad_option(prog, f"option '--{name}' is ambiguous; possibilities: {cands}")
                else:
                    raise _bad_option(prog, f"unrecognized option '{arg}'")
            shown = next((k for k in opt.longs if k == name), None) or next(k for k in opt.longs if k.startswith(name))
            if opt.takes_value:
                if eq:
                    store(opt, inline)
                elif i < n:
                    store(opt, argv[i])
                    i += 1
                else:
                    raise _bad_option(prog, f"option '--{shown}' requires an argument")
            else:
                if eq:
                    raise _bad_option(prog, f"option '--{shown}' doesn't allow an argument")
                store(opt)
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                ch = arg[j]
                opt = shorts.get(ch)
                if opt is None:
                    raise _bad_option(prog, f"invalid option -- '{ch}'")
                if opt.takes_value:
                    if j + 1 < len(arg):
                        store(opt, arg[j + 1:])
                    elif i < n:
                        store(opt, argv[i])
                        i += 1
                    else:
                        raise _bad_option(prog, f"option requires an argument -- '{ch}'")
                    break
                store(opt)
                j += 1
        else:
            positionals.append(arg)
    return values, positionals


def split_list(values):
    """Comma lists given once or repeatedly -> flat list without empty items."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        out.extend(x for x in str(v).split(",") if x)
    return out


def current_user():
    """The calling Unix user's name (uid number if it has no passwd entry)."""
    uid = os.getuid()
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return os.environ.get("USER") or str(uid)


def caller_name(client):
    """Who the controller sees calling (``--me``): the Unix user on the local
    socket, the token's user name when ``$BATCHHUB_TOKEN`` is set (one ping)."""
    if os.environ.get("BATCHHUB_TOKEN"):
        return client.ping().get("user") or current_user()
    return current_user()
