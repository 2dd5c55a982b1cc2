"""srun: run a parallel job step (SLURM_DIALECT section 4).

Inside an allocation (``SLURM_JOB_ID`` set, or ``--jobid``) srun creates one step
of the job; outside one it first asks for an allocation of its own (an
"interactive" job the controller allocates without running anything), runs
the step in it and releases it at the end, like Slurm.

What srun itself does while the step runs (the node daemons do the rest, see
``batch_backend/noded/steps.py``):

* **I/O server**: a TCP listener the node daemons connect to, one connection
  per task stream; each starts with a JSON header line carrying the step's
  secret ``io_key``. Task output is written to srun's stdout/stderr, line by
  line per task (``-u``: as it comes), prefixed ``R: `` with ``--label``;
  srun's stdin goes to every task (``--input=0``: task 0 only; ``none``, or
  srun's stdin being /dev/null: nobody).
* **PMI server** (``--mpi=pmi1|pmi2``): :mod:`batch_backend.cli.pmi`, one KVS
  per step; tasks get ``PMI_PORT``/``PMI_ID``.
* **Signals**: Ctrl-C once prints the tasks' status, twice within a second
  cancels the step; TERM, HUP, QUIT, USR1, USR2, CONT and ALRM are forwarded
  to every task.
* **End**: once every task stream hit EOF and the step is final, srun prints
  ``srun: error: NODE: task R: Exited with exit code C`` for failed tasks and
  exits with the highest task exit code (128+SIG for a task killed by SIG).

MPICH hydra's ``srun -N 2 -n 2 --input none hydra_pmi_proxy ...`` is an
ordinary invocation. Options are parsed getopt-style up to the first word
that is not an option (the command).
"""

import os
import sys
import time

PROG = "srun"
MPI_TYPES = ("none", "pmi1", "pmi2")
FORWARDED_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGALRM")

USAGE = """\
Usage: srun [-N nnodes] [-n ntasks] [-c ncpus] [--ntasks-per-node=n] [-p partition] [-t time]
            [-J jobname] [-l] [-u] [-i in] [-o out] [-e err] [--mpi=type] [--export=...]
            [-w hosts] [-x hosts] [--overlap] [--exclusive] [--jobid=id] executable [args...]
"""

# long name -> (argument: "req" | "opt" | "none", destination or None to accept and ignore)
LONG = {
    "ntasks": ("req", "ntasks"), "nodes": ("req", "nodes"), "cpus-per-task": ("req", "cpus_per_task"),
    "ntasks-per-node": ("req", "ntasks_per_node"), "mpi": ("req", "mpi"), "cpu-bind": ("req", None),
    "cpu_bind": ("req", None), "export": ("req", "export"), "label": ("none", "label"),
    "unbuffered": ("none", "unbuffered"), "input": ("req", "input"), "output": ("req", "output"),
    "error": ("req", "error"), "job-name": ("req", "name"), "time": ("req", "time"),
    "partition": ("req", "partition"), "overlap": ("none", "overlap"), "exclusive": ("opt", "exclusive"),
    "nodelist": ("req", "nodelist"), "exclude": ("req", "exclude"), "account": ("req", "account"),
    "qos": ("req", "qos"), "mem": ("req", "mem"), "mem-per-cpu": ("req", "mem_per_cpu"),
    "chdir": ("req", "chdir"), "jobid": ("req", "jobid"), "verbose": ("none", "verbose"),
    "quiet": ("none", "quiet"), "help": ("none", "help"), "usage": ("none", "usage"),
    "version": ("none", "version"), "reservation": ("req", "reservation"), "constraint": ("req", "constraint"),
    "gres": ("req", "gres"), "pty": ("none", "pty"), "multi-prog": ("none", "multi_prog"),
    "open-mode": ("req", None), "kill-on-bad-exit": ("opt", None), "wait": ("req", None),
    "distribution": ("req", None), "hint": ("req", None), "mem-bind": ("req", None), "propagate": ("opt", None),
    "no-kill": ("opt", None), "overcommit": ("none", None), "oversubscribe": ("none", None),
    "immediate": ("opt", None), "exact": ("none", None), "signal": ("req", None), "threads": ("req", None),
    "disable-status": ("none", None), "network": ("req", None), "comment": ("req", None),
    "gpus": ("req", None), "gpus-per-node": ("req", None), "gpus-per-task": ("req", None),
    "cpus-per-gpu": ("req", None), "mincpus": ("req", None), "tmp": ("req", None), "wckey": ("req", None),
    "mail-type": ("req", None), "mail-user": ("req", None), "slurmd-debug": ("req", None),
    "accel-bind": ("req", None), "cpu-freq": ("req", None), "acctg-freq": ("req", None),
    "prolog": ("req", None), "epilog": ("req", None), "task-prolog": ("req", None),
    "task-epilog": ("req", None), "ntasks-per-core": ("req", None), "ntasks-per-socket": ("req", None),
    "hetgroup": ("req", None), "het-group": ("req", None), "nice": ("opt", None), "priority": ("req", None),
    "time-min": ("req", None), "begin": ("req", None), "dependency": ("req", None),
}
SHORT = {
    "n": "ntasks", "N": "nodes", "c": "cpus-per-task", "l": "label", "u": "unbuffered", "i": "input",
    "o": "output", "e": "error", "J": "job-name", "t": "time", "p": "partition", "w": "nodelist",
    "x": "exclude", "A": "account", "q": "qos", "D": "chdir", "v": "verbose", "Q": "quiet", "h": "help",
    "V": "version", "K": "kill-on-bad-exit", "W": "wait", "m": "distribution", "k": "no-kill",
    "O": "overcommit", "s": "oversubscribe", "I": "immediate", "X": "disable-status", "G": "gpus",
    "C": "constraint", "d": "dependency", "b": "begin",
}


class SrunError(Exception):
    """A failure printed as ``srun: error: <line>`` per line, with an exit code."""

    def __init__(self, message, rc=1):
        super().__init__(message)
        self.message = message
        self.rc = rc


# -- option parsing -----------------------------------------------------------------

def _lookup(name):
    if name in LONG:
        return name
    matches = [k for k in LONG if k.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SrunError(f"unrecognized option '--{name}'\nTry \"srun --help\" for more information")
    raise SrunError(f"option '--{name}' is ambiguous; possibilities: " + " ".join(f"'--{m}'" for m in sorted(matches)))


def parse_args(argv):
    """getopt-style parse stopping at the command: ``(options dict, command argv)``."""
    opts, i = {}, 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return opts, list(argv[i + 1:])
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            name = _lookup(name)
            mode, dest = LONG[name]
            if mode == "none":
                if eq:
                    raise SrunError(f"option '--{name}' doesn't allow an argument")
                value = True
            elif mode == "req" and not eq:
                if i + 1 >= len(argv):
                    raise SrunError(f"option '--{name}' requires an argument")
                i += 1
                value = argv[i]
            elif mode == "opt" and not eq:
                value = True
            if dest:
                opts[dest] = opts.get(dest, 0) + 1 if dest == "verbose" else value
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                if letter not in SHORT:
                    raise SrunError(f"invalid option -- '{letter}'\nTry \"srun --help\" for more information")
                mode, dest = LONG[SHORT[letter]]
                if mode == "none" or (mode == "opt" and j + 1 == len(word)):
                    if dest:
                        opts[dest] = opts.get(dest, 0) + 1 if dest == "verbose" else True
                    j += 1
                    continue
                if j + 1 < len(word):
                    value = word[j + 1:]
                elif i + 1 < len(argv):
                    i += 1
                    value = argv[i]
                else:
                    raise SrunError(f"option requires an argument -- '{letter}'")
                if dest:
                    opts[dest] = value
                break
            i += 1
            continue
        return opts, list(argv[i:])
    return opts, []


def _positive(opts, key, flag):
    value = opts.get(key)
    if value is None:
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise SrunError(f'Invalid numeric value "{value}" for {flag}.')
    return int(text)


def _node_count(value):
    if value is None:
        return None
    low, _, high = str(value).strip().partition("-")
    if not (low.isascii() and low.isdigit()) or int(low) < 1 \
            or (high and (not (high.isascii() and high.isdigit()) or int(high) < int(low))):
        raise SrunError(f"invalid node count `{value}'")
    return int(low)


def export_environment(export, env):
    """``--export`` (SLURM_DIALECT 2.3): ALL (default), NONE, or a list (plus SLURM_*); sbatch's rules."""
    from .sbatch_script import UsageError, compute_environment
    try:
        return compute_environment(export, env)
    except UsageError as e:
        raise SrunError(str(e)) from None


def which(name, path):
    """``name`` searched in ``path`` (srun's own PATH), or None."""
    for directory in (path or "").split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def _stdin_is_null():
    """srun's stdin is closed or /dev/null: nothing to forward."""
    import stat
    try:
        st = os.fstat(0)
    except OSError:
        return True
    if not stat.S_ISCHR(st.st_mode):
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return (st.st_rdev, st.st_ino) == (null.st_rdev, null.st_ino) or st.st_rdev == null.st_rdev


def build_request(opts, command, env, cwd):
    """The step request body (controller protocol) from options, command, environment."""
    if not command:
        raise SrunError("No command given to execute.")
    if opts.get("pty"):
        raise SrunError("--pty is not supported by BatchHub")
    if opts.get("multi_prog"):
        raise SrunError("--multi-prog is not supported by BatchHub")
    mpi = str(opts.get("mpi") or env.get("SLURM_MPI_TYPE") or "none")
    if mpi not in MPI_TYPES:
        raise SrunError(f"invalid MPI type '{mpi}', --mpi=list for acceptable types")
    export = opts.get("export") or env.get("SLURM_EXPORT_ENV") or "ALL"
    step_env = export_environment(export, env)
    step_env.setdefault("SLURM_UMASK", "%04o" % _umask())
    argv = list(command)
    if "PATH" not in step_env and "/" not in argv[0]:
        # SLURM_DIALECT section 10: resolve with srun's PATH, exec the absolute path
        found = which(argv[0], env.get("PATH") or os.defpath)
        if found:
            argv[0] = found
    workdir = os.path.abspath(os.path.join(cwd, opts["chdir"])) if opts.get("chdir") else cwd
    cpus = _positive(opts, "cpus_per_task", "--cpus-per-task")
    if cpus is None and env.get("SLURM_CPUS_PER_TASK", "").isascii() and env.get("SLURM_CPUS_PER_TASK", "").isdigit() and int(env["SLURM_CPUS_PER_TASK"]) > 0:
        cpus = int(env["SLURM_CPUS_PER_TASK"])
    if opts.get("cpus_per_task"):
        step_env["SLURM_CPUS_PER_TASK"] = str(cpus)
    input_spec = str(opts.get("input") or "")
    if input_spec.lower() == "none" or (not input_spec and _stdin_is_null()):
        stdin_mode = "none"
    elif input_spec in ("", "all"):
        stdin_mode = "all"
    elif (input_spec.isascii() and input_spec.isdigit()):
        if int(input_spec) != 0:
            raise SrunError(f"--input={input_spec}: only task 0 can be given srun's stdin here (use 0, all or none)")
        stdin_mode = "0"
    else:
        stdin_mode = "all"  # a file: srun reads it and forwards it to every task

    def out_pattern(value):
        if not value:
            return ""
        return "/dev/null" if str(value).lower() == "none" else str(value)

    return {
        "num_tasks": _positive(opts, "ntasks", "--ntasks"),
        "num_nodes": _node_count(opts.get("nodes")),
        "ntasks_per_node": _positive(opts, "ntasks_per_node", "--ntasks-per-node"),
        "cpus_per_task": cpus,
        "argv": argv,
        "environment": step_env,
        "cwd": workdir,
        "name": str(opts.get("name") or os.path.basename(command[0])),
        "mpi": mpi,
        "label": bool(opts.get("label")),
        "overlap": bool(opts.get("overlap")),
        "exclusive": bool(opts.get("exclusive")),
        "stdin_mode": stdin_mode,
        "stdout": out_pattern(opts.get("output")),
        "stderr": out_pattern(opts.get("error")),
        "submit_line": " ".join([PROG] + list(sys.argv[1:] if sys.argv else [])),
        "nodelist_req": str(opts.get("nodelist") or ""),
        "exclude": str(opts.get("exclude") or ""),
    }


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- allocations (srun outside a job, salloc) -------------------------------------------

def compact_counts(values):
    """[2, 2, 1] -> '2(x2),1' (SLURM_TASKS_PER_NODE)."""
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return ",".join(f"{v}(x{n})" if n > 1 else str(v) for v, n in out)


def allocation_submission(opts, prog, env, cwd, name, argv_line):
    """The ``POST /v1/jobs`` body of an interactive allocation (srun outside a job, salloc)."""
    from .. import timespec
    sub = {"interactive": True, "name": name, "workdir": cwd, "submit_dir": cwd, "submit_line": argv_line,
           "submit_host": os.uname().nodename.split(".")[0],
           "num_tasks": _positive(opts, "ntasks", "--ntasks"), "num_nodes": _node_count(opts.get("nodes")),
           "ntasks_per_node": _positive(opts, "ntasks_per_node", "--ntasks-per-node"),
           "cpus_per_task": _positive(opts, "cpus_per_task", "--cpus-per-task"),
           "environment": {k: v for k, v in env.items() if isinstance(v, str)}}
    for key, field in (("partition", "partition"), ("account", "account"), ("qos", "qos"),
                       ("reservation", "reservation"), ("nodelist", "nodelist_req"), ("exclude", "exclude"),
                       ("constraint", "features"), ("gres", "gres")):
        if opts.get(key):
            sub[field] = str(opts[key])
    if opts.get("exclusive"):
        sub["exclusive"] = True
    if opts.get("time"):
        try:
            minutes = timespec.parse_time_limit(str(opts["time"]))
        except ValueError:
            raise SrunError("Invalid --time specification") from None
        sub["time_limit"] = minutes if minutes else -1
    for key, field in (("mem", "mem_per_node"), ("mem_per_cpu", "mem_per_cpu")):
        if opts.get(key):
            try:
                sub[field] = timespec.parse_mem(str(opts[key]))
            except ValueError:
                raise SrunError(f"invalid memory constraint: {opts[key]}") from None
    return {k: v for k, v in sub.items() if v is not None}


def allocate(client, submission, prog, err=None, quiet=False):
    """Submit an interactive allocation and wait until it runs; returns the job dict.

    Prints ``<prog>: job N queued and waiting for resources`` only when it has to
    wait (and ``... has been allocated resources`` then), as Slurm does. Ctrl-C
    while waiting withdraws the request.
    """
    from ..client import APIError, ControllerUnreachable
    err = err or sys.stderr
    try:
        job_id = client.submit(submission, retries=2)["job_id"]
    except ControllerUnreachable:
        raise SrunError("Unable to allocate resources: Unable to contact slurm controller (connect failure)") from None
    except APIError as e:
        raise SrunError(f"Unable to allocate resources: {e.message}") from None
    waited = False
    delay = 0.002
    try:
        while True:
            job = client.job(job_id)
            state = job["state"]
            if state == "RUNNING":
                if waited and not quiet:
                    err.write(f"{prog}: job {job_id} has been allocated resources\n")
                    err.flush()
                return job
            if state != "PENDING":
                reason = job.get("reason") or state
                raise SrunError(f"Unable to allocate resources: job {job_id} is {state.lower()} ({reason})")
            if not waited and delay >= 0.05:
                waited = True
                if not quiet:
                    err.write(f"{prog}: job {job_id} queued and waiting for resources\n")
                    err.flush()
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    except KeyboardInterrupt:
        release(client, job_id, 1)
        err.write(f"{prog}: Job allocation {job_id} has been revoked\n")
        raise SrunError("", rc=1) from None


def release(client, job_id, exit_code):
    """End an allocation made by srun/salloc (``POST /jobs/N/complete``); never raises."""
    from ..client import ClientError
    try:
        client.request("POST", f"/jobs/{job_id}/complete", {"exit_code": int(exit_code)})
    except ClientError:
        pass


def allocation_env(job, base):
    """The SLURM_* environment of an allocation (salloc's shell, srun's step outside a job)."""
    env = dict(base)
    nodes = job.get("nodes") or []
    tasks = job.get("tasks_per_node") or {}
    cpus = job.get("cpus_per_node") or {}
    values = {
        "SLURM_JOB_ID": job["job_id"], "SLURM_JOBID": job["job_id"], "SLURM_JOB_NAME": job.get("name"),
        "SLURM_JOB_NODELIST": job.get("nodelist"), "SLURM_NODELIST": job.get("nodelist"),
        "SLURM_JOB_NUM_NODES": len(nodes) or None, "SLURM_NNODES": len(nodes) or None,
        "SLURM_NTASKS": job.get("num_tasks"), "SLURM_NPROCS": job.get("num_tasks"),
        "SLURM_TASKS_PER_NODE": compact_counts([tasks[n] for n in nodes if n in tasks]) or None,
        "SLURM_JOB_CPUS_PER_NODE": compact_counts([cpus[n] for n in nodes if n in cpus]) or None,
        "SLURM_JOB_PARTITION": job.get("partition"), "SLURM_JOB_ACCOUNT": job.get("account"),
        "SLURM_JOB_QOS": job.get("qos"), "SLURM_JOB_USER": job.get("user"), "SLURM_JOB_UID": job.get("uid"),
        "SLURM_JOB_GID": job.get("gid"), "SLURM_SUBMIT_DIR": job.get("submit_dir"),
        "SLURM_SUBMIT_HOST": job.get("submit_host"), "SLURM_CLUSTER_NAME": job.get("cluster_name"),
    }
    if (job.get("cpus_per_task") or 1) > 1:
        values["SLURM_CPUS_PER_TASK"] = job["cpus_per_task"]
    if job.get("ntasks_per_node"):
        values["SLURM_NTASKS_PER_NODE"] = job["ntasks_per_node"]
    for key, value in values.items():
        if value is not None and value != "":
            env[key] = str(value)
    return env


# -- running a step ------------------------------------------------------------------------

def _listen_host(client=None):
    """(bind, advertise) for the step's I/O and PMI servers: an address the nodes can reach.

    A configured address (``BATCHHUB_SRUN_ADDR``) is advertised and every
    interface listened on; with a TCP controller, the address this host uses to
    reach it (the cluster network; the nodes reach srun there); on the
    controller's socket, the address facing the nodes when they live on other
    hosts; else loopback (controller, nodes and srun share this host).
    """
    addr = os.environ.get("BATCHHUB_SRUN_ADDR") or os.environ.get("BATCHHUB_NODE_ADDR")
    if addr and addr not in ("127.0.0.1", "localhost"):
        return ("::" if ":" in addr else "0.0.0.0"), addr
    from ..client import ClientError, is_tcp_address, local_address_for
    address = getattr(client, "address", None)
    local = local_address_for(address)
    if local is None and address and not is_tcp_address(address):
        try:
            remote = {n.get("address") for n in client.nodes()} - {None, "", "127.0.0.1", "::1", "localhost"}
        except ClientError:
            remote = set()
        for node_addr in sorted(remote):
            local = local_address_for(f"[{node_addr}]:9" if ":" in node_addr else f"{node_addr}:9")
            if local:
                break
    if local:
        return local, local
    return "127.0.0.1", "127.0.0.1"


def _ranges(ranks):
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, ranks = [], sorted(ranks)
    i = 0
    while i < len(ranks):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] == ranks[j] + 1:
            j += 1
        out.append(str(ranks[i]) if i == j else f"{ranks[i]}-{ranks[j]}")
        i = j + 1
    return ",".join(out)


def _task_word(ranks):
    return f"task {ranks[0]}" if len(ranks) == 1 else f"tasks {_ranges(ranks)}"


def exit_status(tasks):
    """srun's exit code from the tasks' ends: highest exit code, 128+SIG for a signal."""
    rc = 0
    for t in tasks.values():
        if t.get("exit_signal"):
            rc = max(rc, 128 + int(t["exit_signal"]))
        else:
            rc = max(rc, int(t.get("exit_code") or 0))
    return rc


def failure_lines(tasks, quiet_signals=False):
    """Slurm's ``NODE: task R: Exited with exit code C`` lines, grouped per node and status."""
    import signal as _signal
    groups = {}
    for rank, t in tasks.items():
        if t.get("exit_signal"):
            if quiet_signals:
                continue
            sig = int(t["exit_signal"])
            what = _signal.strsignal(sig) or f"Signal {sig}"
        elif t.get("exit_code"):
            what = f"Exited with exit code {t['exit_code']}"
        else:
            continue
        groups.setdefault((t.get("node") or "?", what), []).append(int(rank))
    return [f"{node}: {_task_word(sorted(ranks))}: {what}"
            for (node, what), ranks in sorted(groups.items(), key=lambda kv: min(kv[1]))]


def main(argv=None):
    from .common import run_command
    return run_command(PROG, run, argv)


def run(argv):
    try:
        return _run(argv)
    except SrunError as e:
        if e.message:
            for line in e.message.splitlines():
                sys.stderr.write(line + "\n" if line.startswith(f"{PROG}: ") else f"{PROG}: error: {line}\n")
        return e.rc


def _run(argv):
    opts, command = parse_args(argv)
    if opts.get("help") or opts.get("usage"):
        sys.stdout.write(USAGE)
        return 0
    if opts.get("version"):
        sys.stdout.write("slurm 22.05.11\n")
        return 0
    if str(opts.get("mpi")) == "list":
        sys.stderr.write("srun: MPI types are...\n" + "".join(f"srun: {t}\n" for t in MPI_TYPES))
        return 0
    env = dict(os.environ)
    cwd = os.getcwd()
    request = build_request(opts, command, env, cwd)
    from ..client import Client
    client = Client()
    job_id = opts.get("jobid") or env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if job_id:
        return _step_in(client, str(job_id).strip(), request, opts, own=False)
    submission = allocation_submission(opts, PROG, request["environment"], request["cwd"], request["name"],
                                       request["submit_line"])
    job = allocate(client, submission, PROG, quiet=bool(opts.get("quiet")))
    rc = 1
    try:
        request["environment"] = allocation_env(job, request["environment"])
        rc = _step_in(client, str(job["job_id"]), request, opts, own=True)
    finally:
        release(client, job["job_id"], rc)
    return rc


def _step_in(client, job_id, request, opts, own):
    return StepRunner(client, job_id, request, opts, own_allocation=own).run()


class _Stream:
    """One connection from a node daemon: a task's stdout/stderr (read) or stdin (written)."""
    __slots__ = ("sock", "rank", "kind", "header", "partial", "outbuf", "eof_sent", "read_eof")

    def __init__(self, sock):
        self.sock = sock
        self.rank = None
        self.kind = None       # None until the header line arrived: stdout | stderr | stdin
        self.header = b""
        self.partial = b""     # output: the unterminated last line
        self.outbuf = bytearray()  # stdin: bytes not yet sent
        self.eof_sent = False
        self.read_eof = False  # stdin: the node half-closed its side (it only reads)


class StepRunner:
    """One step from creation to exit code: I/O server, PMI server, signals, polling."""

    FINAL_POLL_MAX = 0.05   # seconds between step polls once every stream is closed
    IDLE_POLL = 1.0         # seconds between step polls while streams are open
    GRACE = 0.5             # seconds to wait for late output once the step is final
    STDIN_HIGH_WATER = 4 << 20

    def __init__(self, client, job_id, request, opts, own_allocation=False):
        import selectors
        import socket
        self.client = client
        self.job_id = str(job_id)
        self.request = request
        self.own_allocation = own_allocation
        self.label = bool(request.get("label"))
        self.unbuffered = bool(opts.get("unbuffered"))
        self.verbose = int(opts.get("verbose") or 0)
        self.input_file = None
        spec = str(opts.get("input") or "")
        if spec and spec.lower() not in ("none", "all") and not (spec.isascii() and spec.isdigit()):
            self.input_file = spec
        self.sel = selectors.DefaultSelector()
        bind, advertise = _listen_host(client)
        self.listener = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((bind, 0))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        port = self.listener.getsockname()[1]
        self.io_key = os.urandom(16).hex()
        request["io_address"] = f"[{advertise}]:{port}" if ":" in advertise else f"{advertise}:{port}"
        request["io_key"] = self.io_key
        self.pmi = None
        if request.get("mpi") in ("pmi1", "pmi2"):
            from .pmi import PMIServer
            self.pmi = PMIServer(host=bind, advertise=advertise, on_abort=self._on_pmi_abort).start()
            request["pmi_address"] = self.pmi.address
        else:
            request["pmi_address"] = None
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.step_id = None
        self.num_tasks = 0
        self.rank_node = {}
        self.expected = set()   # (rank, stream) outputs still to reach EOF
        self.closed_outputs = set()
        self.stdin_ranks = set()
        self.stdin_streams = {}
        self.stdin_source = None  # fd srun reads stdin data from
        self.stdin_eof = False
        self.stdin_data = bytearray()  # read before every stdin stream connected
        self.width = 1
        self.signals = []
        self.last_int = 0.0
        self.aborted = False
        self.pmi_abort = None
        self.out_broken = False
        self.stdin_paused = False

    # -- signals ---------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        self.signals.append(signum)

    def _on_pmi_abort(self, rank, code, message):
        self.pmi_abort = (rank, code, message)
        try:
            self.wake_w.send(b"a")
        except OSError:
            pass

    def _install_signals(self):
        import signal
        self._old_wakeup = signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        self._old_handlers = {}
        for name in ("SIGINT",) + FORWARDED_SIGNALS:
            sig = getattr(signal, name)
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self):
        import signal
        for sig, handler in getattr(self, "_old_handlers", {}).items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError, TypeError):
                pass
        try:
            signal.set_wakeup_fd(getattr(self, "_old_wakeup", -1))
        except (ValueError, OSError):
            pass

    def _handle_signals(self):
        import signal
        pending, self.signals = self.signals, []
        for signum in pending:
            if signum == signal.SIGINT:
                now = time.monotonic()
                if self.step_id is None:
                    continue
                if now - self.last_int <= 1.0 and not self.aborted:
                    self._err(f"srun: sending Ctrl-C to StepId={self.job_id}.{self.step_id}\n"
                              "srun: forcing job termination\n"
                              "srun: Job step aborted: Waiting up to 32 seconds for job step to finish.\n")
                    self._cancel(None)
                    self.aborted = True
                elif not self.aborted:
                    self.last_int = now
                    self._err("srun: interrupt (one more within 1 sec to abort)\n")
                    self._print_status()
            elif self.step_id is not None:
                self._cancel(signal.Signals(signum).name[3:])

    def _cancel(self, signame):
        from ..client import ClientError
        try:
            self.client.request("POST", f"/jobs/{self.job_id}/steps/{self.step_id}/cancel", {"signal": signame})
        except ClientError as e:
            self._err(f"srun: error: Unable to signal step {self.job_id}.{self.step_id}: {e}\n")

    def _print_status(self):
        from ..client import ClientError
        try:
            step = self._get_step()
        except ClientError:
            return
        ended = {int(r) for r in (step.get("tasks") or {})}
        running = [r for r in range(self.num_tasks) if r not in ended]
        sid = f"StepId={self.job_id}.{self.step_id}"
        if running:
            self._err(f"srun: {sid} {_task_word(running)}: running\n")
        if ended:
            self._err(f"srun: {sid} {_task_word(sorted(ended))}: exited\n")

    # -- output ----------------------------------------------------------------------
    def _err(self, text):
        self._write(2, text.encode())

    def _write(self, fd, data):
        if not data or (fd == 1 and self.out_broken):
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except InterruptedError:
                continue
            except OSError:
                if fd == 1:
                    self.out_broken = True
                return
            view = view[n:]

    def _output(self, stream, data, eof=False):
        """Task output to srun's stdout/stderr: whole lines per task (``-u`` without
        ``--label``: as it comes), each prefixed ``R: `` with ``--label``."""
        fd = 1 if stream.kind == "stdout" else 2
        if not self.label and self.unbuffered:
            self._write(fd, data)
            return
        buf = stream.partial + data
        if eof:
            stream.partial = b""
            if buf:
                lines = buf.split(b"\n")
                last = lines.pop()  # b"" when the output ended with a newline
                text = self._prefixed(stream.rank, lines) if lines else b""
                if last:
                    text += self._prefix(stream.rank) + last
                self._write(fd, text)
            return
        cut = buf.rfind(b"\n")
        if cut < 0:
            stream.partial = buf
            if len(buf) > 65536:  # no newline in 64 KiB: let it through
                self._write(fd, self._prefix(stream.rank) + buf)
                stream.partial = b""
            return
        complete, stream.partial = buf[:cut], buf[cut + 1:]
        self._write(fd, self._prefixed(stream.rank, complete.split(b"\n")))

    def _prefix(self, rank):
        return f"{rank:>{self.width}}: ".encode() if self.label else b""

    def _prefixed(self, rank, lines):
        if not self.label:
            return b"\n".join(lines) + b"\n"
        prefix = self._prefix(rank)
        return b"".join(prefix + line + b"\n" for line in lines)

    # -- the I/O server ----------------------------------------------------------------------
    def _accept(self):
        import selectors
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, _Stream(sock))

    def _drop(self, stream):
        try:
            self.sel.unregister(stream.sock)
        except (KeyError, ValueError):
            pass
        try:
            stream.sock.close()
        except OSError:
            pass
        if stream.kind in ("stdout", "stderr"):
            self.closed_outputs.add((stream.rank, stream.kind))
        elif stream.kind == "stdin":
            self.stdin_streams.pop(stream.rank, None)

    def _readable(self, stream):
        import json
        try:
            data = stream.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if stream.kind is None:
            if not data:
                self._drop(stream)
                return
            stream.header += data
            if b"\n" not in stream.header:
                if len(stream.header) > 4096:
                    self._drop(stream)
                return
            line, rest = stream.header.split(b"\n", 1)
            stream.header = b""
            try:
                head = json.loads(line)
                ok = (isinstance(head, dict) and head.get("key") == self.io_key
                      and str(head.get("step_id")) == str(self.step_id)
                      and head.get("stream") in ("stdout", "stderr", "stdin"))
            except ValueError:
                ok = False
            if not ok:
                self._drop(stream)  # not ours: a stranger, or a stale step
                return
            stream.rank, stream.kind = int(head["rank"]), head["stream"]
            if stream.kind == "stdin":
                self._stdin_connected(stream)
                return
            data = rest
            if not data:
                return
        if stream.kind == "stdin":
            if not data:  # the node's half-close: the task only reads this socket
                stream.read_eof = True
                self._queue_stdin_flush(stream)
            return
        if data:
            self._output(stream, data)
        else:
            self._output(stream, b"", eof=True)
            self._drop(stream)

    # -- stdin --------------------------------------------------------------------------------
    def _stdin_connected(self, stream):
        self.stdin_streams[stream.rank] = stream
        stream.outbuf += self.stdin_data
        self._queue_stdin_flush(stream)
        if self.stdin_source is None and not self.stdin_eof and set(self.stdin_streams) >= self.stdin_ranks:
            self._open_stdin_source()

    def _open_stdin_source(self):
        import selectors
        if self.input_file is not None:
            try:
                fd = os.open(self.input_file, os.O_RDONLY)
            except OSError as e:
                self._err(f"srun: error: Could not open stdin file: {e.strerror}\n")
                self._stdin_eof()
                return
        else:
            fd = 0
        self.stdin_source = fd
        try:
            self.sel.register(fd, selectors.EVENT_READ, "stdin")
        except (PermissionError, OSError, ValueError):
            # a regular file (epoll refuses those): read it all now
            while True:
                try:
                    chunk = os.read(fd, 1 << 20)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self._fan_stdin(chunk)
            self._stdin_eof()

    def _read_stdin(self):
        try:
            chunk = os.read(self.stdin_source, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if chunk:
            self._fan_stdin(chunk)
            if sum(len(s.outbuf) for s in self.stdin_streams.values()) > self.STDIN_HIGH_WATER:
                self.sel.unregister(self.stdin_source)  # resumed once the tasks caught up
                self.stdin_paused = True
        else:
            self._stdin_eof()

    def _fan_stdin(self, chunk):
        for stream in list(self.stdin_streams.values()):
            stream.outbuf += chunk
            self._queue_stdin_flush(stream)

    def _stdin_eof(self):
        if self.stdin_source is not None:
            try:
                self.sel.unregister(self.stdin_source)
            except (KeyError, ValueError):
                pass
            if self.stdin_source != 0:
                os.close(self.stdin_source)
        self.stdin_eof = True
        for stream in list(self.stdin_streams.values()):
            self._queue_stdin_flush(stream)

    def _queue_stdin_flush(self, stream):
        import selectors
        self._flush_stdin(stream)
        if stream.sock.fileno() < 0:
            return
        events = (0 if stream.read_eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if stream.outbuf else 0)
        try:
            if not events:
                self.sel.unregister(stream.sock)
            else:
                self.sel.modify(stream.sock, events, stream)
        except KeyError:
            if events:
                self.sel.register(stream.sock, events, stream)
        except ValueError:
            pass

    def _flush_stdin(self, stream):
        import socket
        try:
            while stream.outbuf:
                n = stream.sock.send(stream.outbuf)
                del stream.outbuf[:n]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(stream)
            return
        if self.stdin_eof and not stream.eof_sent:
            stream.eof_sent = True
            try:
                stream.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if stream.read_eof:
                self._drop(stream)  # nothing more to say in either direction
        if self.stdin_paused and self.stdin_source is not None and \
                sum(len(s.outbuf) for s in self.stdin_streams.values()) < self.STDIN_HIGH_WATER // 2:
            import selectors
            self.stdin_paused = False
            self.sel.register(self.stdin_source, selectors.EVENT_READ, "stdin")

    # -- the step -------------------------------------------------------------------------------
    def _get_step(self):
        return self.client.request("GET", f"/jobs/{self.job_id}/steps/{self.step_id}")["step"]

    def _truncate_shared_files(self):
        """Create/truncate -o/-e files every task of the step shares (they append),
        as the user, before the tasks start. Patterns naming a file per task or per
        node are truncated on the nodes; those naming the step (%s, %J) cannot be
        known yet and are appended to."""
        import re
        from ..patterns import expand_output_pattern
        env = self.request.get("environment") or {}
        for key in ("stdout", "stderr"):
            pattern = self.request.get(key) or ""
            if not pattern or pattern.startswith("/dev/") or re.search(r"(?<!%)%\d*[tnNsJ]", pattern):
                continue
            try:
                path = expand_output_pattern(
                    pattern, job_id=int(self.job_id), array_job_id=env.get("SLURM_ARRAY_JOB_ID"),
                    array_task_id=env.get("SLURM_ARRAY_TASK_ID"), name=env.get("SLURM_JOB_NAME") or
                    self.request.get("name", ""), user=env.get("SLURM_JOB_USER") or env.get("USER", ""),
                    node="", step=0)
                path = os.path.join(self.request.get("cwd") or ".", path)
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
            except (OSError, ValueError):
                pass  # the nodes report what they cannot open

    def _create(self):
        from ..client import APIError, ControllerUnreachable, NotFound
        self._truncate_shared_files()
        try:
            return self.client.request("POST", f"/jobs/{self.job_id}/steps", self.request)
        except NotFound as e:
            if self.own_allocation or "Invalid job id" not in e.message:
                raise SrunError(f"Unable to create step for job {self.job_id}: {e.message}") from None
            raise SrunError(f"Unable to confirm allocation for job {self.job_id}: {e.message}\n"
                            f"srun: Check SLURM_JOB_ID environment variable. Expired or invalid job {self.job_id}"
                            ) from None
        except ControllerUnreachable:
            raise SrunError(f"Unable to create step for job {self.job_id}: "
                            "Unable to contact slurm controller (connect failure)") from None
        except APIError as e:
            lines = []
            if self.verbose and isinstance(e.details, dict):
                lines = list(e.details.get("detail_lines", []))
            raise SrunError("\n".join(lines + [f"Unable to create step for job {self.job_id}: {e.message}"])) from None

    def _setup(self, answer):
        self.step_id = answer["step_id"]
        self.num_tasks = int(answer["num_tasks"])
        self.width = len(str(max(self.num_tasks - 1, 0)))
        nodes = answer.get("nodes") or list(answer.get("tasks", {}))
        for index, node in enumerate(nodes):
            for rank in answer.get("tasks", {}).get(node, []):
                self.rank_node[int(rank)] = index
        if self.pmi is not None:
            self.pmi.configure(self.num_tasks, [self.rank_node.get(r, 0) for r in range(self.num_tasks)])
        req = self.request
        for rank in range(self.num_tasks):
            if not req.get("stdout"):
                self.expected.add((rank, "stdout"))
                if not req.get("stderr"):
                    self.expected.add((rank, "stderr"))
        mode = req.get("stdin_mode")
        self.stdin_ranks = set(range(self.num_tasks)) if mode == "all" else ({0} if mode == "0" else set())
        if not self.stdin_ranks:
            self.stdin_eof = True

    def run(self):
        """Create the step and see it through; returns srun's exit code."""
        self._install_signals()
        try:
            answer = self._create()
            self._setup(answer)
            step = self._loop()
        finally:
            self._restore_signals()
            self._close()
        tasks = step.get("tasks") or {}
        if step.get("state") == "CANCELLED" and not self.aborted:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(step.get("end_time") or time.time()))
            node = (step.get("nodes") or ["?"])[0]
            self._err("srun: Job step aborted: Waiting up to 32 seconds for job step to finish.\n"
                      f"slurmstepd: error: *** STEP {self.job_id}.{self.step_id} ON {node} CANCELLED AT {when} ***\n")
        lines = failure_lines(tasks, quiet_signals=self.aborted)
        if self.pmi_abort is not None:
            rank, code, message = self.pmi_abort
            lines.insert(0, f"task {rank}: MPI_Abort with exit code {code}" + (f": {message}" if message else ""))
        if lines:
            self._err("".join(f"srun: error: {line}\n" for line in lines))
        rc = exit_status(tasks)
        if self.pmi_abort is not None:
            rc = max(rc, self.pmi_abort[1] or 1)
        if not tasks and step.get("state") not in ("COMPLETED",):
            rc = max(rc, 1)
        return rc

    def _loop(self):
        from ..client import ClientError, NotFound
        next_poll = time.monotonic() + self.IDLE_POLL
        final_step, final_at = None, None
        fast_delay = 0.001
        while True:
            now = time.monotonic()
            outputs_done = self.expected <= self.closed_outputs
            if outputs_done or now >= next_poll:
                try:
                    step = self._get_step()
                except NotFound:
                    return {"state": "CANCELLED", "tasks": {}}
                except ClientError:
                    step = None
                if step is not None and step.get("state") not in ("RUNNING", "PENDING", "COMPLETING"):
                    if outputs_done:
                        return step
                    if final_step is None:
                        final_step, final_at = step, now
                    elif now - final_at >= self.GRACE:
                        return final_step
                if outputs_done:
                    next_poll = now + fast_delay
                    fast_delay = min(fast_delay * 2, self.FINAL_POLL_MAX)
                else:
                    next_poll = now + (0.05 if final_step is not None else self.IDLE_POLL)
            timeout = max(0.0, next_poll - time.monotonic())
            for key, mask in self.sel.select(timeout):
                tag = key.data
                if tag == "listen":
                    self._accept()
                elif tag == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                elif tag == "stdin":
                    self._read_stdin()
                elif isinstance(tag, _Stream):
                    if mask & 2 and tag.kind == "stdin":  # EVENT_WRITE
                        self._queue_stdin_flush(tag)
                    if mask & 1 and tag.sock.fileno() >= 0:
                        self._readable(tag)
            if self.signals:
                self._handle_signals()
            if self.pmi_abort is not None and not self.aborted:
                self.aborted = True
                self._cancel(None)

    def _close(self):
        streams = [key.data for key in list(self.sel.get_map().values()) if isinstance(key.data, _Stream)]
        for stream in streams + list(self.stdin_streams.values()):
            try:
                stream.sock.close()
            except OSError:
                pass
        for s in (self.listener, self.wake_r, self.wake_w):
            try:
                s.close()
            except OSError:
                pass
        try:
            self.sel.close()
        except (OSError, RuntimeError):
            pass
        if self.pmi is not None:
            self.pmi.close()


if __name__ == "__main__":
    sys.exit(main())
