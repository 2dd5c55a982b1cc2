"""The queue as the kernel sees it: one interface, a BatchHub and a Slurm-CLI implementation.

The magics, the job-watch widget and (later) the dashboards call a
:class:`Backend`; they never know whether the queue is BatchHub or a real
Slurm cluster, which is what lets the same notebook run on both:

* :class:`BatchHubBackend` talks to a BatchHub controller through
  ``batch_backend.client``. Submissions are built by sbatch's own parser
  (``build_submission``), and the text commands (``sacct``, ``scontrol``, ...)
  run their ``main()`` in-process, so every option means exactly what it means
  on the command line, without a subprocess per call.
* :class:`SlurmCLIBackend` runs the standard commands (``sbatch --parsable``,
  ``squeue -h -o`` with a fixed delimited format, ``sacct -P``, ``scancel``,
  ``scontrol show``) and parses their text, so it works against any Slurm,
  including BatchHub's own Slurm-compatible CLI.

:func:`select_backend` picks BatchHub when a controller answers ``ping``, the
CLI otherwise; ``BATCHHUB_MAGICS_BACKEND=batchhub|cli`` forces one.

Every failure is a :class:`QueueError` whose message is one line a notebook can
show. Job dicts follow ``batch_backend.model.JOB_FIELDS`` (the CLI backend
fills the fields Slurm prints), plus ``stdout_file``/``stderr_file``: the
job's output paths, absolute and expanded, or ``""`` when unknown.
"""

import importlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse

from . import slurm_text
from .slurm_text import SEP

#: Environment variable that forces a backend: ``batchhub`` or ``cli``.
BACKEND_ENV = "BATCHHUB_MAGICS_BACKEND"

#: Job states after which a job never runs again (Slurm's; REQUEUED is not one).
FINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                          "PREEMPTED", "BOOT_FAIL", "DEADLINE"})

class QueueError(Exception):
    """A queue operation failed; ``str(error)`` is one line for the user."""


class JobNotFound(QueueError):
    """The queue does not know this job id (never existed, or purged)."""


class ControllerDown(QueueError):
    """Nobody answered: the controller is unreachable (never read as "job gone")."""


class CommandUnavailable(QueueError):
    """The command does not exist on this system (e.g. ``sprio`` on BatchHub)."""


def is_final(job):
    """True once the job (one task record) has ended for good."""
    return slurm_text.state_word(job.get("state")) in FINAL_STATES


class Backend:
    """What the kernel needs from a batch queue. ``argv`` lists are the CLI's options.

    Methods raise :class:`QueueError` (or a subclass) and nothing else for
    failures a user can cause or meet. A backend may be shared by threads
    (the job-watch widget polls from one).
    """

    #: Short name shown to users: ``"batchhub"`` or ``"cli"``.
    name = "base"

    def submit(self, argv, script_text=None):
        """Submit like ``sbatch ARGV`` (script on stdin when *script_text*); return the job id (int)."""
        raise NotImplementedError

    def queue(self, argv=()):
        """Jobs like ``squeue ARGV`` lists them (filter options only), as job dicts."""
        raise NotImplementedError

    def job_records(self, job_id):
        """The job's records (one, or every task of an array), including recently finished jobs.

        Raises :class:`JobNotFound` for an unknown id.
        """
        raise NotImplementedError

    def show_job(self, job_id):
        """One job dict (the first record of :meth:`job_records`)."""
        return self.job_records(job_id)[0]

    def cancel(self, argv):
        """``scancel ARGV``; returns the command's stderr (non-empty only with ``-v``)."""
        return self.command("scancel", argv)[1]

    def accounting(self, argv=()):
        """``sacct ARGV`` as ``(columns, rows)``: sacct's field names and one list of strings per row."""
        argv = [a for a in argv if a not in ("-n", "--noheader")]
        out, _ = self.command("sacct", [*argv, "-P", f"--delimiter={SEP}"])
        return slurm_text.parse_delimited(out)

    def partition_summary(self, argv=(), node_mode=False):
        """``sinfo ARGV`` rows for the given columns: ``(columns, rows)``."""
        if node_mode:
            columns = [("NODELIST", "%N"), ("NODES", "%D"), ("PARTITION", "%P"), ("STATE", "%t"),
                       ("CPUS(A/I/O/T)", "%C"), ("MEMORY", "%m")]
        else:
            columns = [("PARTITION", "%P"), ("AVAIL", "%a"), ("TIMELIMIT", "%l"), ("NODES", "%D"),
                       ("STATE", "%t"), ("NODELIST", "%N")]
        fmt = SEP.join(code for _, code in columns)
        out, _ = self.command("sinfo", [*argv, "-h", "-o", fmt])
        return [title for title, _ in columns], slurm_text.parse_delimited(out, header=False)[1]

    def nodes(self):
        """Node dicts (``batch_backend.model.NODE_FIELDS``; the CLI fills what scontrol shows)."""
        raise NotImplementedError

    def partitions(self):
        """Partition dicts (``batch_backend.model.PARTITION_FIELDS``, partly for the CLI)."""
        raise NotImplementedError

    def shares(self):
        """Every association's shares, usage and fairshare, in sshare's tree order.

        Dicts as ``GET /v1/shares`` rows: ``account``, ``user`` (None on an
        account row), ``depth``, ``raw_shares``, ``norm_shares``, ``raw_usage``,
        ``norm_usage``, ``effective_usage``, ``fairshare`` (None for root).
        """
        raise NotImplementedError

    def reservations(self):
        """Advance reservations as dicts (``batch_backend.model.RESERVATION_FIELDS``, partly for the CLI)."""
        raise NotImplementedError

    def command(self, prog, argv, input=None):
        """Run a Slurm command as a user would; return ``(stdout, stderr)`` on success."""
        raise NotImplementedError

    def available(self, prog):
        """True if the command exists here."""
        raise NotImplementedError


# -- BatchHub --------------------------------------------------------------------

# Swapping sys.std* for an in-process command is process-wide: one at a time.
_STDIO_LOCK = threading.Lock()


class BatchHubBackend(Backend):
    """A BatchHub controller through ``batch_backend.client`` (one client per thread)."""

    name = "batchhub"

    def __init__(self, address=None):
        self.address = address
        self._local = threading.local()

    # -- plumbing ------------------------------------------------------------------
    def client(self):
        """This thread's client (``Client`` objects are not thread-safe)."""
        client = getattr(self._local, "client", None)
        if client is None:
            from batch_backend.client import Client
            client = self._local.client = Client(self.address)
        return client

    def reachable(self, timeout=2.0):
        """True if a controller answers ``ping`` within *timeout* seconds."""
        from batch_backend.client import Client, ClientError
        try:
            with Client(self.address, timeout=timeout) as probe:
                probe.ping()
            return True
        except ClientError:
            return False

    def _call(self, fn, *args, prog="squeue", **kwargs):
        """Call the client (or a CLI helper), mapping its errors to QueueError."""
        from batch_backend import client as api
        from batch_backend.cli import common
        try:
            return fn(*args, **kwargs)
        except api.ControllerUnreachable as e:
            raise ControllerDown(f"Unable to contact the BatchHub controller: {e}") from None
        except api.NotFound as e:
            raise JobNotFound(e.message) from None
        except api.APIError as e:
            raise QueueError(e.message) from None
        except common.CommandError as e:
            message = slurm_text.one_line(prog, common.error_text(prog, e))
            raise (JobNotFound if "Invalid job id" in message else QueueError)(message) from None

    # -- Backend -------------------------------------------------------------------
    def submit(self, argv, script_text=None):
        from batch_backend.cli.sbatch_options import UsageError, build_submission
        try:
            submission, _flags = build_submission(list(argv), stdin_text=script_text or "", env=os.environ,
                                                  cwd=os.getcwd())
        except UsageError as e:
            raise QueueError(slurm_text.one_line("sbatch", "\n".join(e.lines))) from None
        submission.pop("wait", None)
        from batch_backend import client as api
        try:
            answer = self.client().submit(submission, retries=2)
        except api.ControllerUnreachable as e:
            raise ControllerDown(f"Batch job submission failed: Unable to contact the BatchHub controller: {e}"
                                 ) from None
        except api.APIError as e:
            lines = list(e.details.get("detail_lines", [])) + [f"Batch job submission failed: {e.message}"]
            raise QueueError(slurm_text.one_line("sbatch", "\n".join(lines))) from None
        if answer.get("job_id") is None:
            raise QueueError("the controller accepted the submission but returned no job id")
        return int(answer["job_id"])

    def queue(self, argv=()):
        from batch_backend.cli import common, formats, squeue
        opts, args = self._call(common.parse_options, "squeue", list(argv), squeue.OPTIONS)
        if args:
            raise QueueError(f"Unrecognized option: {args[0]}")
        jobs = self._call(squeue.query, self.client(), opts)
        if opts["array"]:
            jobs = formats.expand_array_rows(jobs)
        try:
            return formats.sort_jobs(jobs, opts["sort"] or os.environ.get("SQUEUE_SORT"))
        except ValueError as e:
            raise QueueError(str(e)) from None

    def job_records(self, job_id):
        path = f"/jobs/{urllib.parse.quote(str(job_id))}"
        jobs = self._call(self.client().request, "GET", path)["jobs"]
        if not jobs:
            raise JobNotFound("Invalid job id specified")
        from batch_backend.cli.formats import job_std_path
        for job in jobs:
            job["stdout_file"] = job_std_path(job, "stdout")
            job["stderr_file"] = job_std_path(job, "stderr")
        return jobs

    def nodes(self):
        return self._call(self.client().nodes)

    def partitions(self):
        return self._call(self.client().partitions)

    def shares(self):
        return list(self._call(self.client().shares, prog="sshare").get("rows") or [])

    def reservations(self):
        return self._call(self.client().reservations, prog="scontrol")

    def available(self, prog):
        return _cli_module_name(prog) is not None

    def command(self, prog, argv, input=None):
        """Run the BatchHub command's ``main()`` in this process, with its stdio captured."""
        name = _cli_module_name(prog)
        if name is None:
            raise CommandUnavailable(f"{prog} is not available on this BatchHub cluster")
        module = importlib.import_module(name)
        out, err = io.StringIO(), io.StringIO()
        with _STDIO_LOCK:
            saved = sys.stdin, sys.stdout, sys.stderr
            sys.stdin, sys.stdout, sys.stderr = io.StringIO(input or ""), out, err
            try:
                module.main(list(argv))
                rc = 0
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            finally:
                sys.stdin, sys.stdout, sys.stderr = saved
        return _checked(prog, rc, out.getvalue(), err.getvalue())


_CLI_COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "sacct", "scontrol", "sprio", "sshare",
                 "sacctmgr", "sdiag")


def _cli_module_name(prog):
    """``batch_backend.cli.<prog>`` if BatchHub implements that command, else None."""
    if prog not in _CLI_COMMANDS:
        return None
    name = f"batch_backend.cli.{prog}"
    try:
        return name if importlib.util.find_spec(name) is not None else None
    except ImportError:
        return None


def _checked(prog, rc, out, err):
    if rc != 0:
        message = slurm_text.one_line(prog, err or out or f"exit code {rc}")
        if "Unable to contact" in message:
            raise ControllerDown(message)
        if "Invalid job id" in message:
            raise JobNotFound(message)
        raise QueueError(message)
    return out, err


# -- Slurm command line -------------------------------------------------------------

class SlurmCLIBackend(Backend):
    """Any Slurm (or BatchHub's Slurm-compatible CLI) through its commands."""

    name = "cli"

    def __init__(self, timeout=60.0, path=None):
        self.timeout = timeout
        self.path = path

    def which(self, prog):
        """The command's path: on PATH, else beside the kernel's interpreter (a venv's bin)."""
        found = shutil.which(prog, path=self.path)
        if found is None:
            candidate = os.path.join(os.path.dirname(sys.executable), prog)
            if os.access(candidate, os.X_OK):
                found = candidate
        return found

    def available(self, prog):
        return self.which(prog) is not None

    def command(self, prog, argv, input=None):
        exe = self.which(prog)
        if exe is None:
            raise CommandUnavailable(f"{prog} is not available on this system")
        try:
            proc = subprocess.run([exe, *argv], input=input or "", capture_output=True, encoding="utf-8",
                                  errors="replace", timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise QueueError(f"{prog} did not answer within {self.timeout:g} s") from None
        except OSError as e:
            raise QueueError(f"cannot run {prog}: {e.strerror or e}") from None
        return _checked(prog, proc.returncode, proc.stdout, proc.stderr)

    def submit(self, argv, script_text=None):
        out, _ = self.command("sbatch", ["--parsable", *argv], input=script_text)
        lines = out.strip().splitlines()
        first = lines[-1].split(";")[0].strip() if lines else ""
        if not first.isdigit():
            raise QueueError(f"sbatch printed no job id: {out.strip()[:100]!r}")
        return int(first)

    def queue(self, argv=()):
        out, _ = self.command("squeue", [*argv, "-h", "-o", slurm_text.SQUEUE_FORMAT])
        _, rows = slurm_text.parse_delimited(out, header=False)
        return [slurm_text.squeue_job(row) for row in rows if len(row) == len(slurm_text.SQUEUE_FIELDS)]

    def job_records(self, job_id):
        try:
            out, _ = self.command("scontrol", ["show", "job", str(job_id)])
        except JobNotFound:
            return self._accounting_records(job_id)
        records = slurm_text.parse_records(out)
        if not records:
            return self._accounting_records(job_id)
        return [slurm_text.scontrol_job(r) for r in records]

    def _accounting_records(self, job_id):
        """A job scontrol forgot (older than MinJobAge): its sacct allocation rows."""
        for fields in (slurm_text.SACCT_JOB_FIELDS + ",StdOut,StdErr", slurm_text.SACCT_JOB_FIELDS):
            try:
                columns, rows = self.accounting(["-X", "-j", str(job_id), "-o", fields])
            except JobNotFound:
                raise
            except QueueError:
                continue  # an older Slurm without StdOut/StdErr: ask again without them
            if rows:
                return [slurm_text.sacct_job(dict(zip(columns, row))) for row in rows]
            break
        raise JobNotFound(f"Invalid job id specified: {job_id}")

    def nodes(self):
        out, _ = self.command("scontrol", ["show", "node"])
        return [slurm_text.scontrol_node(r) for r in slurm_text.parse_records(out)]

    def partitions(self):
        out, _ = self.command("scontrol", ["show", "partition"])
        return [slurm_text.scontrol_partition(r) for r in slurm_text.parse_records(out)]

    def shares(self):
        out, _ = self.command("sshare", ["-a", "-P", "-o", slurm_text.SSHARE_FORMAT])
        return slurm_text.sshare_rows(out)

    def reservations(self):
        out, _ = self.command("scontrol", ["show", "reservation"])
        return [slurm_text.scontrol_reservation(r) for r in slurm_text.parse_records(out)
                if "ReservationName" in r]


# -- selection -----------------------------------------------------------------------

def select_backend(env=None):
    """The backend for this kernel.

    ``$BATCHHUB_MAGICS_BACKEND`` = ``batchhub`` or ``cli`` decides; otherwise
    BatchHub if its controller answers, else the Slurm CLI if ``sbatch``
    exists, else BatchHub (whose errors then say the controller is down).
    """
    env = os.environ if env is None else env
    forced = (env.get(BACKEND_ENV) or "").strip().lower()
    if forced in ("batchhub", "client", "api"):
        return BatchHubBackend()
    if forced in ("cli", "slurm"):
        return SlurmCLIBackend()
    if forced not in ("", "auto"):
        raise QueueError(f"{BACKEND_ENV}={forced!r}: expected 'batchhub', 'cli' or 'auto'")
    batchhub = BatchHubBackend()
    if batchhub.reachable():
        return batchhub
    cli = SlurmCLIBackend()
    if cli.available("sbatch"):
        return cli
    return batchhub
