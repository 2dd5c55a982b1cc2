"""sbatch's argument handling: argv + script + environment -> submission dict.

Everything sbatch decides before it talks to the controller lives here, so it
can be unit-tested without a controller and so the ``sbatch`` entry point stays
a thin wrapper. It follows Slurm 22.05 as described in SLURM_DIALECT section 2:

* Options come from three sources with precedence command line > ``SBATCH_*``
  environment > ``#SBATCH`` directives. Each source is validated as Slurm
  does, even where a higher one overrides it.
* Command-line parsing is getopt-like (hand-written, table driven, so that
  ``-xv``, ``--opt=v``, ``--opt v``, unique long prefixes, the first positional
  ending option parsing, and Slurm's error texts are all under our control).
* The script is snapshotted (bytes read now) because clients delete or rename
  it as soon as sbatch returns.
* The batch shell's starting environment is computed here from ``--export``.

Error texts live in :class:`UsageError` lines without the ``sbatch: error: ``
prefix; the caller prints each line with it and exits 1.
"""

import os

from batch_backend import hostlist, timespec
from batch_backend.cli.sbatch_script import (  # noqa: F401  (re-exported)
    MAX_ARRAY_INDEX, NOSHEBANG_LINES, WRAP_TEMPLATE, UsageError, _is_uint, _read_bytes,
    check_script, compute_environment, expand_array_spec, parse_directives)

__all__ = ["UsageError", "parse_directives", "build_submission", "expand_array_spec",
           "compute_environment", "NOSHEBANG_LINES"]


# --- option table -----------------------------------------------------------
# long name -> (argument: "req" | "opt" | "none", kind, destination key)
# kinds: str, pos (positive int), time, mem, true, false, flag (cli flag),
# ignore, or a special name handled in _apply.
_LONG = {
    "job-name": ("req", "str", "name"),
    "partition": ("req", "str", "partition"),
    "account": ("req", "str", "account"),
    "qos": ("req", "str", "qos"),
    "reservation": ("req", "str", "reservation"),
    "nodes": ("req", "nodes", "num_nodes"),
    "ntasks": ("req", "pos", "num_tasks"),
    "ntasks-per-node": ("req", "pos", "ntasks_per_node"),
    "cpus-per-task": ("req", "pos", "cpus_per_task"),
    "mem": ("req", "mem", "mem_per_node"),
    "mem-per-cpu": ("req", "mem", "mem_per_cpu"),
    "time": ("req", "time", "time_limit"),
    "time-min": ("req", "time", "time_min"),
    "output": ("req", "str", "stdout"),
    "error": ("req", "str", "stderr"),
    "input": ("req", "str", "stdin"),
    "chdir": ("req", "str", "workdir"),
    "export": ("req", "export", "export"),
    "get-user-env": ("opt", "user_env", "get_user_env"),
    "hold": ("none", "true", "hold"),
    "wait": ("none", "true", "wait"),
    "array": ("req", "array", "array"),
    "gres": ("req", "gres", "gres"),
    "gpus-per-node": ("req", "gpus", "gres"),
    "gpus": ("req", "gpus", "gres"),
    "constraint": ("req", "str", "features"),
    "nodelist": ("req", "hosts", "nodelist_req"),
    "exclude": ("req", "hosts", "exclude"),
    "dependency": ("req", "str", "dependency"),
    "signal": ("req", "signal", "signal"),
    "open-mode": ("req", "open_mode", "open_mode"),
    "requeue": ("none", "true", "requeue"),
    "no-requeue": ("none", "false", "requeue"),
    "exclusive": ("opt", "true", "exclusive"),
    "comment": ("req", "str", "comment"),
    "begin": ("req", "begin", "begin_time"),
    "nice": ("opt", "nice", "nice"),
    "priority": ("req", "priority", "priority"),
    "uid": ("req", "str", "uid"),
    "gid": ("req", "str", "gid"),
    "wrap": ("req", "str", "wrap"),
    "parsable": ("none", "flag", "parsable"),
    "test-only": ("none", "flag", "test_only"),
    "clusters": ("req", "str", "cluster"),
    "cluster": ("req", "str", "cluster"),
    "help": ("none", "flag", "help"),
    "usage": ("none", "flag", "usage"),
    "version": ("none", "flag", "version"),
    "mincpus": ("req", "pos", None),
    "tmp": ("req", "mem", None),
}
# Accepted and ignored (Slurm options no BatchHub client depends on).
for _name in ("wckey", "mail-type", "mail-user", "threads-per-core", "hint", "licenses",
              "distribution", "extra-node-info", "nodefile", "core-spec", "acctg-freq",
              "batch", "bb", "bbf", "cluster-constraint", "container", "cores-per-socket",
              "cpu-freq", "cpus-per-gpu", "deadline", "delay-boot", "export-file", "gpu-bind",
              "gpu-freq", "gpus-per-socket", "gpus-per-task", "kill-on-invalid-dep",
              "mcs-label", "mem-bind", "mem-per-gpu", "network", "ntasks-per-core",
              "ntasks-per-gpu", "ntasks-per-socket", "power", "prefer", "profile",
              "sockets-per-node", "switches", "thread-spec", "wait-all-nodes"):
    _LONG[_name] = ("req", "ignore", None)
for _name in ("verbose", "quiet", "overcommit", "oversubscribe", "contiguous", "ignore-pbs",
              "reboot", "spread-job", "use-min-nodes"):
    _LONG[_name] = ("none", "ignore", None)
for _name in ("no-kill", "propagate"):
    _LONG[_name] = ("opt", "ignore", None)
del _name

_SHORT = {
    "J": "job-name", "p": "partition", "A": "account", "q": "qos", "N": "nodes",
    "n": "ntasks", "c": "cpus-per-task", "t": "time", "o": "output", "e": "error",
    "i": "input", "D": "chdir", "H": "hold", "W": "wait", "a": "array", "G": "gpus",
    "C": "constraint", "w": "nodelist", "x": "exclude", "d": "dependency", "M": "clusters",
    "b": "begin", "v": "verbose", "Q": "quiet", "h": "help", "V": "version",
    "L": "licenses", "k": "no-kill", "m": "distribution", "O": "overcommit",
    "s": "oversubscribe", "B": "extra-node-info", "F": "nodefile", "S": "core-spec",
}

# SBATCH_* input environment variable -> long option (Slurm's documented set).
_ENV_OPTIONS = {
    "SBATCH_ACCOUNT": "account", "SBATCH_ARRAY_INX": "array", "SBATCH_CLUSTERS": "clusters",
    "SBATCH_CONSTRAINT": "constraint", "SBATCH_EXCLUSIVE": "exclusive",
    "SBATCH_EXPORT": "export", "SBATCH_GET_USER_ENV": "get-user-env", "SBATCH_GRES": "gres",
    "SBATCH_JOB_NAME": "job-name", "SBATCH_MEM_PER_CPU": "mem-per-cpu",
    "SBATCH_MEM_PER_NODE": "mem", "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_OPEN_MODE": "open-mode", "SBATCH_PARTITION": "partition", "SBATCH_QOS": "qos",
    "SBATCH_REQUEUE": "requeue", "SBATCH_RESERVATION": "reservation",
    "SBATCH_TIMELIMIT": "time", "SBATCH_WAIT": "wait",
}

_SIGNALS = frozenset((
    "HUP INT QUIT ILL TRAP ABRT IOT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD "
    "CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO POLL PWR SYS").split())

_FLAG_KEYS = ("parsable", "test_only", "cluster", "help", "usage", "version")


# --- value checks -------------------------------------------------------------

def _positive(opt, value):
    if not _is_uint(value.strip()):
        raise UsageError(f'Invalid numeric value "{value}" for --{opt}.')
    number = int(value)
    if number <= 0:
        raise UsageError(f"Invalid --{opt} specification")
    return number


def _node_count(value):
    low, dash, high = value.strip().partition("-")
    if not _is_uint(low) or (dash and not _is_uint(high)) or int(low) <= 0 \
            or (dash and int(high) < int(low)):
        raise UsageError(f"invalid node count `{value}'")
    return int(low)


def _check_signal(value):
    spec = value
    flags, colon, rest = spec.partition(":")
    if colon and flags and set(flags.upper()) <= {"B", "R"}:
        spec = rest
    sig, at, seconds = spec.partition("@")
    if at and not _is_uint(seconds):
        raise UsageError("Invalid --signal specification")
    if _is_uint(sig):
        ok = 1 <= int(sig) <= 64
    else:
        name = sig.upper()
        ok = (name[3:] if name.startswith("SIG") else name) in _SIGNALS
    if not ok:
        raise UsageError("Invalid --signal specification")
    return value


def _gpus(opt, value):
    parts = value.split(":")
    if len(parts) > 2 or not parts[-1].strip() or not _is_uint(parts[-1]) or int(parts[-1]) <= 0:
        raise UsageError(f"Invalid --{opt} specification: {value}")
    return "gpu:" + value


def _apply(opt, value, out):
    """Validate one option occurrence and record it in *out*."""
    _, kind, dest = _LONG[opt]
    if kind == "ignore":
        return
    if kind == "mem":
        try:
            number = timespec.parse_mem(value)
        except ValueError:
            raise UsageError(f"invalid memory constraint: {value}") from None
        if dest:
            out[dest] = number
        return
    if kind == "pos":
        number = _positive(opt, value)
        if dest:
            out[dest] = number
        return
    if kind == "str":
        result = value
    elif kind in ("true", "flag"):
        result = True
    elif kind == "false":
        result = False
    elif kind == "nodes":
        result = _node_count(value)
    elif kind == "time":
        try:
            minutes = timespec.parse_time_limit(value)
        except ValueError:
            raise UsageError(f"Invalid --{opt} specification") from None
        result = -1 if not minutes else minutes  # -1: explicit UNLIMITED (or 0)
    elif kind == "export":
        compute_environment(value, {})  # syntax check only
        result = value
    elif kind == "user_env":
        if value is not None:
            text = value[:-1] if value[-1:].upper() in ("L", "S") else value
            if not value or (text and not _is_uint(text)):
                raise UsageError(f"Invalid --get-user-env argument: {value}")
        result = True
    elif kind == "array":
        try:
            expand_array_spec(value)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        result = value.strip()
    elif kind == "gres":
        result = "" if value.strip().lower() == "none" else value.strip()
    elif kind == "gpus":
        result = _gpus(opt, value.strip())
    elif kind == "hosts":
        try:
            hostlist.expand(value)
        except ValueError as exc:
            raise UsageError(f"Invalid --{opt} specification: {exc}") from None
        result = value.strip()
    elif kind == "signal":
        result = _check_signal(value.strip())
    elif kind == "open_mode":
        mode = value.strip().lower()
        if mode in ("a", "append"):
            result = "append"
        elif mode in ("t", "truncate"):
            result = "truncate"
        else:
            raise UsageError(f"Invalid --open-mode argument: {value}")
    elif kind == "begin":
        try:
            result = timespec.parse_datetime(value)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif kind == "nice":
        text = "100" if value is None else value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not _is_uint(digits) or abs(int(text)) > 2147483645:
            raise UsageError(f"Invalid --nice value: {value}")
        result = int(text)
    elif kind == "priority":
        if not _is_uint(value.strip()):
            raise UsageError(f"Invalid --priority specification: {value}")
        result = int(value)
    else:  # pragma: no cover - table and code out of sync
        raise AssertionError(kind)
    out[dest] = result


def _lookup_long(name):
    if name in _LONG:
        return name
    matches = [k for k in _LONG if k.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"unrecognized option '--{name}'")
    choices = " ".join(f"'--{m}'" for m in sorted(matches))
    raise UsageError(f"option '--{name}' is ambiguous; possibilities: {choices}")


def _parse_words(words):
    """getopt_long-style parse; returns (options dict, positional words).

    Parsing stops at the first non-option word (or after ``--``); that word
    and everything after it are returned as positionals.
    """
    out = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return out, list(words[i + 1:])
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            opt = _lookup_long(name)
            argmode = _LONG[opt][0]
            if argmode == "none":
                if eq:
                    raise UsageError(f"option '--{opt}' doesn't allow an argument")
                value = None
            elif argmode == "req" and not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"option '--{opt}' requires an argument")
                i += 1
                value = words[i]
            elif argmode == "opt" and not eq:
                value = None
            _apply(opt, value, out)
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                if letter not in _SHORT:
                    raise UsageError(f"invalid option -- '{letter}'")
                opt = _SHORT[letter]
                argmode = _LONG[opt][0]
                if argmode == "none" or (argmode == "opt" and j + 1 == len(word)):
                    _apply(opt, None, out)
                    j += 1
                    continue
                if j + 1 < len(word):
                    value = word[j + 1:]
                elif i + 1 < len(words):
                    i += 1
                    value = words[i]
                else:
                    raise UsageError(f"option requires an argument -- '{letter}'")
                _apply(opt, value, out)
                break
            i += 1
            continue
        return out, list(words[i:])
    return out, []


def _env_options(env):
    out = {}
    for var, opt in _ENV_OPTIONS.items():
        value = env.get(var)
        if value is None:
            continue
        argmode = _LONG[opt][0]
        if argmode == "none":
            _apply(opt, None, out)
        elif argmode == "opt":
            _apply(opt, value or None, out)
        elif value:
            _apply(opt, value, out)
    return out


def _merge(sources):
    """Later sources win; a source choosing --mem or --mem-per-cpu drops the other."""
    merged = {}
    for source in sources:
        if "mem_per_node" in source and "mem_per_cpu" in source:
            raise UsageError("--mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.")
        if "mem_per_node" in source:
            merged.pop("mem_per_cpu", None)
        if "mem_per_cpu" in source:
            merged.pop("mem_per_node", None)
        merged.update(source)
    return merged


def build_submission(argv, *, stdin_text=None, env=None, cwd=None, read_file=_read_bytes):
    """Turn sbatch's argv (without the program name) into ``(submission, flags)``.

    *env* defaults to ``os.environ``, *cwd* to ``os.getcwd()``; *read_file*
    maps an absolute path to the script's bytes; *stdin_text* is the script
    when neither a path nor ``--wrap`` is given (``None``: read ``sys.stdin``).
    ``flags`` holds ``parsable``, ``wait``, ``test_only``, ``cluster``,
    ``help``, ``usage``, ``version``; when one of the last three is on the
    command line, parsing stops and the submission is ``{}``.
    Raises :class:`UsageError` on any invalid input.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    argv = list(argv)
    cli, positionals = _parse_words(argv)
    if cli.get("help") or cli.get("usage") or cli.get("version"):
        flags = {key: cli.get(key, False) for key in _FLAG_KEYS}
        flags.update(wait=False, cluster=cli.get("cluster"))
        return {}, flags

    wrap = cli.pop("wrap", None)
    script_args = []
    if wrap is not None:
        if positionals:
            raise UsageError("Script arguments not permitted with --wrap option")
        script, default_name, command = WRAP_TEMPLATE.format(wrap), "wrap", ""
    elif positionals:
        path, script_args = positionals[0], positionals[1:]
        full = os.path.normpath(os.path.join(cwd, path))
        try:
            data = read_file(full)
        except OSError:
            raise UsageError(f"Unable to open file {path}") from None
        if isinstance(data, bytes):
            data = data.decode("utf-8", "surrogateescape")
        script, default_name, command = data, os.path.basename(path), full
    else:
        if stdin_text is None:
            import sys
            stdin_text = sys.stdin.read()
        script, default_name, command = stdin_text, "sbatch", ""
    check_script(script)

    # A --wrap command is the user's command line, never #SBATCH directives.
    directives, extra = _parse_words([] if wrap is not None else parse_directives(script))
    if extra:
        raise UsageError(f"Invalid directive found in batch script: {extra[0]}")
    from_env = _env_options(env)
    for source in (directives, from_env):
        source.pop("wrap", None)
    opts = _merge([directives, from_env, cli])

    export = opts.get("export", "ALL")
    workdir = os.path.normpath(os.path.join(cwd, opts["workdir"])) if "workdir" in opts else cwd
    submission = {
        "script": script,
        "script_args": script_args,
        "name": opts.get("name", default_name),
        "partition": opts.get("partition", ""),
        "account": opts.get("account", ""),
        "qos": opts.get("qos", ""),
        "reservation": opts.get("reservation", ""),
        "time_limit": opts.get("time_limit"),
        "time_min": opts.get("time_min"),
        "num_nodes": opts.get("num_nodes"),
        "num_tasks": opts.get("num_tasks"),
        "ntasks_per_node": opts.get("ntasks_per_node"),
        "cpus_per_task": opts.get("cpus_per_task"),
        "mem_per_node": opts.get("mem_per_node"),
        "mem_per_cpu": opts.get("mem_per_cpu"),
        "gres": opts.get("gres", ""),
        "features": opts.get("features", ""),
        "nodelist_req": opts.get("nodelist_req", ""),
        "exclude": opts.get("exclude", ""),
        "dependency": opts.get("dependency", ""),
        "workdir": workdir,
        "submit_dir": cwd,
        "stdout": opts.get("stdout", ""),
        "stderr": opts.get("stderr", ""),
        "stdin": opts.get("stdin", ""),
        "environment": compute_environment(export, env),
        "export": export,
        "get_user_env": opts.get("get_user_env", False),
        "hold": opts.get("hold", False),
        "array": opts.get("array"),
        "command": command,
        "submit_line": " ".join(["sbatch", *argv]),
        "submit_host": os.uname().nodename.split(".")[0],
        "open_mode": opts.get("open_mode", ""),
        "requeue": opts.get("requeue"),
        "signal": opts.get("signal", ""),
        "comment": opts.get("comment", ""),
        "begin_time": opts.get("begin_time"),
        "nice": opts.get("nice", 0),
        "exclusive": opts.get("exclusive", False),
        "priority": opts.get("priority"),
        "wait": opts.get("wait", False),
        "uid": opts.get("uid"),
        "gid": opts.get("gid"),
    }
    flags = {key: opts.get(key, False) for key in _FLAG_KEYS}
    flags["cluster"] = opts.get("cluster")
    flags["wait"] = submission["wait"]
    return submission, flags
