"""IPython magics that put the batch queue in the notebook.

``%load_ext kernel_ext`` registers :class:`SlurmMagics`:

``%%sbatch [sbatch options] [--python] [--wait] [--out VAR]``
    Submit the cell as a batch script. ``#SBATCH`` lines in the cell are
    honoured exactly as sbatch honours them; a cell without ``#!`` runs under
    ``#!/bin/bash``; ``--python`` runs it with this kernel's interpreter.
``%sbatch [sbatch options] [--wait] [--out VAR] script.sh [args]``
    Submit a script file. Both forms print ``Submitted batch job N`` and
    return N (so ``_`` holds it); ``--out VAR`` also stores it in ``VAR``;
    ``--wait`` follows the job until it ends (a live widget in a notebook, a
    status line in a terminal) and prints the tail of its output.
``%squeue``, ``%sinfo``, ``%sacct``, ``%scontrol show job N``, ``%sprio``, ``%sshare``
    The commands' own options; the answer is a table (HTML in a notebook,
    text in a terminal), a pandas DataFrame with ``-o df``, or the command's
    text when a custom output format is asked for (``%squeue -o "%i %T"``).
``%scancel ID... | --all-mine [scancel options]``
    Cancel jobs; ``--all-mine`` is scancel's ``--me``.

Magic options never shadow a command option: ``-o``/``--output`` stays
sbatch's output file (only the exact ``--out`` is the magic's), and ``-o df``
is not a valid squeue format, sacct field list or sinfo format. Every failure
(bad option, unknown job, queue down) prints one ``cmd: error: ...`` line to
stderr, never a traceback.
"""

import functools
import logging
import shlex
import sys
import time

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from traitlets import CaselessStrEnum, Float, Int

from . import slurm_text, tables, watch
from .backend import QueueError, is_final, select_backend

log = logging.getLogger(__name__)


def _reports_errors(prog):
    """Turn every failure of a magic into one stderr line (the magic then returns None)."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except QueueError as e:
                self.error(prog, str(e))
            except Exception as e:  # noqa: BLE001 - a notebook cell shows one line, never a traceback
                log.debug("%%%s failed", prog, exc_info=True)
                self.error(prog, f"internal error: {type(e).__name__}: {e}")
            return None
        return wrapper
    return decorate


def split_line(line):
    """Shell-style words of a magic's line (IPython has already expanded ``$var``/``{expr}``)."""
    try:
        return shlex.split(line)
    except ValueError as e:
        raise QueueError(f"cannot split the line into words: {e}") from None


def take_dataframe_flag(argv):
    """Remove ``-o df`` / ``-odf`` / ``--out df`` / ``--out=df``; return (argv, asked?)."""
    out, asked, i = [], False, 0
    while i < len(argv):
        word = argv[i]
        if word in ("-o", "--out") and i + 1 < len(argv) and argv[i + 1] == "df":
            asked, i = True, i + 2
            continue
        if word in ("-odf", "--out=df"):
            asked, i = True, i + 1
            continue
        out.append(word)
        i += 1
    return out, asked


def has_option(argv, shorts="", longs=()):
    """True if *argv* holds one of the options (``-x...`` by first letter, ``--name[=v]``)."""
    for word in argv:
        if word == "--":
            break
        if word.startswith("--"):
            if word[2:].split("=", 1)[0] in longs:
                return True
        elif word.startswith("-") and len(word) > 1 and word[1] in shorts:
            return True
    return False


def _sbatch_takes_value(word):
    """Does this sbatch option word consume the next word as its value?"""
    from batch_backend.cli import sbatch_options as so
    if word.startswith("--"):
        name, eq, _ = word[2:].partition("=")
        matches = [k for k in so._LONG if k == name] or [k for k in so._LONG if k.startswith(name)]
        return len(matches) == 1 and not eq and so._LONG[matches[0]][0] == "req"
    for j, letter in enumerate(word[1:], start=1):
        opt = so._SHORT.get(letter)
        if opt is None:
            return False
        mode = so._LONG[opt][0]
        if mode == "req":
            return j + 1 == len(word)
        if mode == "opt":
            return False
    return False


def split_sbatch_argv(argv):
    """Separate the magic's options from sbatch's: ``(magic, sbatch_argv, script_index)``.

    Magic options (``--python``, ``--wait``/``-W``, ``--out VAR``) are taken
    only among the options, i.e. before the script path: after it, every word
    is an argument of the script, as for sbatch. *script_index* is the
    position of the script path in *sbatch_argv* (None without one).
    """
    magic = {"python": False, "wait": False, "out": None}
    rest, i = [], 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            rest.append(word)
            index = len(rest) if argv[i + 1:] else None
            rest.extend(argv[i + 1:])
            return magic, rest, index
        if word == "--python":
            magic["python"] = True
        elif word in ("--wait", "-W"):
            magic["wait"] = True
        elif word == "--out" or word.startswith("--out="):
            if word == "--out":
                if i + 1 >= len(argv):
                    raise QueueError("--out needs a variable name")
                i += 1
                name = argv[i]
            else:
                name = word[len("--out="):]
            if not name.isidentifier():
                raise QueueError(f"--out {name}: not a valid Python variable name")
            magic["out"] = name
        elif word.startswith("-") and len(word) > 1:
            rest.append(word)
            if _sbatch_takes_value(word) and i + 1 < len(argv):
                i += 1
                rest.append(argv[i])
        else:
            index = len(rest)
            rest.extend(argv[i:])
            return magic, rest, index
        i += 1
    return magic, rest, None


def cell_script(cell, python=False):
    """The batch script of a ``%%sbatch`` cell: its own ``#!``, bash, or the kernel's Python."""
    body = cell.lstrip("\n")
    if not body.endswith("\n"):
        body += "\n"
    if python:
        return f"#!{sys.executable} -u\n{body}"
    if body.startswith("#!"):
        return body
    return "#!/bin/bash\n" + body


_INFO_OPTIONS = {
    "sbatch": ("hV", ("help", "usage", "version", "test-only")),
    "squeue": ("oOlsV", ("format", "Format", "long", "start", "steps", "help", "usage", "version")),
    "sinfo": ("olsRV", ("format", "long", "summarize", "list-reasons", "help", "usage", "version")),
    "sacct": ("heV", ("help", "helpformat", "usage", "version")),
}


#: What an empty table says, per command.
_EMPTY = {"squeue": "No jobs.", "sinfo": "No partitions.", "sacct": "No jobs.", "sprio": "No pending jobs."}

#: The short option that drops the header line, per command.
_NOHEADER = {"squeue": "h", "sinfo": "h", "sprio": "h", "sacct": "n", "sshare": "n"}


@magics_class
class SlurmMagics(Magics):
    """``%sbatch``, ``%%sbatch``, ``%squeue``, ``%sinfo``, ``%sacct``, ``%scancel``, ``%scontrol``,
    ``%sprio``, ``%sshare`` on BatchHub or any Slurm (see :mod:`kernel_ext.backend`)."""

    tail_lines = Int(20, help="Lines of a job's output that --wait prints when the job ends "
                              "(and the job-watch widget shows while it runs).").tag(config=True)
    poll_interval = Float(2.0, help="Longest delay, in seconds, between two polls of a job that --wait "
                                    "follows; polls start every 0.1 s and slow down to this, so short "
                                    "jobs return at once without hammering the queue.").tag(config=True)
    watch_widget = CaselessStrEnum(
        ["auto", "always", "never"], default_value="auto",
        help="Whether --wait shows the ipywidgets job watch: 'auto' when running in a Jupyter kernel "
             "with ipywidgets installed, else a text status line.").tag(config=True)

    #: The JobWatch of the most recent ``--wait`` that used the widget (to re-display or inspect it).
    last_watch = None

    # -- plumbing ---------------------------------------------------------------------
    def error(self, prog, message):
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)

    def backend(self):
        """The queue backend, chosen afresh per call (the controller may come and go)."""
        return select_backend()

    def _result(self, prog, table, dataframe):
        if not dataframe:
            return table
        if not isinstance(table, tables.Table):
            self.error(prog, "-o df: this output is not a table")
            return table
        try:
            return table.to_dataframe()
        except ImportError:
            self.error(prog, "-o df needs pandas, which is not installed; showing the table")
            return table

    def _text(self, prog, backend, argv, dataframe):
        out, err = backend.command(prog, argv)
        if err.strip():
            print(err.rstrip("\n"), file=sys.stderr)
        parsed = None
        if not has_option(argv, _NOHEADER.get(prog, ""), ("noheader",)):  # headerless text is not a table
            parsed = slurm_text.parse_whitespace_table(out) or slurm_text.parse_fixed_width_table(out)
        table = tables.Table(*parsed, empty=_EMPTY.get(prog, "No rows.")) if parsed else tables.TextOutput(out)
        return self._result(prog, table, dataframe)

    def _use_widget(self):
        if self.watch_widget == "never":
            return False
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return self.watch_widget == "always" or getattr(self.shell, "kernel", None) is not None

    # -- sbatch -----------------------------------------------------------------------
    @line_cell_magic
    @_reports_errors("sbatch")
    def sbatch(self, line, cell=None):
        """Submit a batch job; return its id.

        %%sbatch [sbatch options] [--python] [--wait] [--out VAR]   (the cell is the script)
        %sbatch  [sbatch options] [--wait] [--out VAR] script.sh [args...]

        Options are sbatch's (``-p``, ``-t``, ``-o``, ``--array`` ...); ``#SBATCH``
        lines in the script apply with sbatch's precedence. A cell without a
        ``#!`` line runs under ``/bin/bash``. ``--python`` runs the cell with
        the kernel's Python (``sys.executable``). ``--wait`` follows the job
        until it ends and prints the tail of its output; ``--out VAR`` also
        stores the job id in ``VAR``.
        """
        magic, argv, script_index = split_sbatch_argv(split_line(line))
        backend = self.backend()
        if has_option(argv[:script_index], *_INFO_OPTIONS["sbatch"]):
            script = cell_script(cell, magic["python"]) if cell is not None else None
            out, err = backend.command("sbatch", argv, input=script)
            print((out + err).rstrip("\n"))
            return None
        if cell is not None:
            if script_index is not None:
                raise QueueError(f"the cell is the script: remove '{argv[script_index]}' "
                                 f"(or use %sbatch {argv[script_index]} to submit a file)")
            script = cell_script(cell, magic["python"])
        else:
            if script_index is None:
                raise QueueError("usage: %sbatch [options] script [args...]  "
                                 "(or %%sbatch [options] with the script in the cell)")
            if magic["python"]:
                raise QueueError("--python is for %%sbatch cells; a script file names its "
                                 "interpreter in its #! line")
            script = None
        job_id = backend.submit(argv, script)
        print(f"Submitted batch job {job_id}", flush=True)
        if magic["out"]:
            self.shell.user_ns[magic["out"]] = job_id
        if magic["wait"]:
            self._wait(backend, job_id)
        return job_id

    def _wait(self, backend, job_id):
        """Follow the job until it ends, then print how it ended and its output tail."""
        records, error, watcher = None, None, None
        try:
            if self._use_widget():
                from IPython.display import display
                watcher = self.last_watch = watch.JobWatch(job_id, backend, interval=self.poll_interval,
                                                           tail_lines=self.tail_lines)
                display(watcher)
                records = watcher.wait()
                error = watcher.error
            else:
                records, error = self._follow_text(backend, job_id)
        except KeyboardInterrupt:
            # The kernel is free again; a widget goes on following the job in the background.
            following = " (the widget keeps following it)" if watcher is not None else ""
            print(f"Stopped waiting; job {job_id} goes on{following}. %scancel {job_id} cancels it.",
                  file=sys.stderr)
            return
        if not records or not all(is_final(r) for r in records):
            if error is not None:
                self.error("sbatch", f"--wait: job {job_id}: {error}")
            return
        print(watch.describe_end(job_id, records))
        self._print_tails(records)

    def _follow_text(self, backend, job_id):
        last_state, last_error, records, error = None, None, None, None
        for polled, error in watch.poll_job(backend, job_id, interval=self.poll_interval):
            if polled is None:
                if str(error) != last_error:
                    print(f"Job {job_id}: {error}", file=sys.stderr, flush=True)
                    last_error = str(error)
                continue
            records, last_error = polled, None
            state = watch.summarize_states(records)
            if state != last_state and not all(is_final(r) for r in records):
                job = records[0]
                detail = f" on {job['nodelist']}" if state == "RUNNING" and job.get("nodelist") else (
                    f" ({job['reason']})" if state == "PENDING" and job.get("reason") else "")
                print(f"Job {job_id} {state}{detail}", flush=True)
            last_state = state
        return records, error

    def _print_tails(self, records):
        for path in watch.output_files(records):
            deadline = time.monotonic() + 2.0  # a shared file system may show the file late
            text = watch.read_tail(path, self.tail_lines)
            while not text and time.monotonic() < deadline:
                time.sleep(0.1)
                text = watch.read_tail(path, self.tail_lines)
            if text:
                print(f"==> {path} <==")
                print(text)

    # -- queries ------------------------------------------------------------------------
    @line_magic
    @_reports_errors("squeue")
    def squeue(self, line):
        """Jobs in the queue, as a table: ``%squeue [squeue options] [-o df]``.

        Filters are squeue's (``-u alice -t PD``, ``-j 12``, ``-p debug``, ``--me``);
        a custom format (``-o "%i %T"``, ``-O``, ``-l``, ``--start``) shows squeue's
        own text; ``-o df`` returns a pandas DataFrame.
        """
        argv, dataframe = take_dataframe_flag(split_line(line))
        if has_option(argv, "i", ("iterate",)):
            raise QueueError("--iterate never returns in a notebook: re-run the cell instead")
        backend = self.backend()
        if has_option(argv, *_INFO_OPTIONS["squeue"]):
            return self._text("squeue", backend, argv, dataframe)
        return self._result("squeue", tables.job_table(backend.queue(argv)), dataframe)

    @line_magic
    @_reports_errors("sinfo")
    def sinfo(self, line):
        """Partitions and node states: ``%sinfo [sinfo options] [-o df]`` (``-N`` per node)."""
        argv, dataframe = take_dataframe_flag(split_line(line))
        if has_option(argv, "i", ("iterate",)):
            raise QueueError("--iterate never returns in a notebook: re-run the cell instead")
        backend = self.backend()
        if has_option(argv, *_INFO_OPTIONS["sinfo"]):
            return self._text("sinfo", backend, argv, dataframe)
        columns, rows = backend.partition_summary(argv, node_mode=has_option(argv, "N", ("Node",)))
        return self._result("sinfo", tables.Table(columns, rows, empty="No partitions."), dataframe)

    @line_magic
    @_reports_errors("sacct")
    def sacct(self, line):
        """Accounting records: ``%sacct [sacct options] [-o df]`` (``-j 12``, ``-o JobID,State``, ``-X``)."""
        argv, dataframe = take_dataframe_flag(split_line(line))
        backend = self.backend()
        if has_option(argv, *_INFO_OPTIONS["sacct"]):
            return self._text("sacct", backend, argv, dataframe)
        columns, rows = backend.accounting(argv)
        return self._result("sacct", tables.Table(columns, rows, empty="No jobs."), dataframe)

    @line_magic
    @_reports_errors("scancel")
    def scancel(self, line):
        """Cancel jobs: ``%scancel ID [ID...]``, ``%scancel --all-mine``, or any scancel options."""
        argv = ["--me" if word == "--all-mine" else word for word in split_line(line)]
        err = self.backend().cancel(argv)
        if err.strip():
            print(err.rstrip("\n"), file=sys.stderr)

    @line_magic
    @_reports_errors("scontrol")
    def scontrol(self, line):
        """``%scontrol show job N`` (a table of the job's fields), ``show node|partition``, ``hold N``, ..."""
        argv, dataframe = take_dataframe_flag(split_line(line))
        out, err = self.backend().command("scontrol", argv)
        if err.strip():
            print(err.rstrip("\n"), file=sys.stderr)
        words = [w.lower() for w in argv if not w.startswith("-")]
        if len(words) >= 2 and words[0] == "show" and words[1].startswith(("job", "node", "partition")):
            records = slurm_text.parse_records(out)
            if records:
                return self._result("scontrol", tables.records_table(records), dataframe)
        if out.strip():
            return tables.TextOutput(out)
        return None

    @line_magic
    @_reports_errors("sprio")
    def sprio(self, line):
        """Pending jobs' priority and its factors: ``%sprio [sprio options] [-o df]``.

        The options are sprio's (``-j 12,13``, ``-u alice``, ``-p debug``, ``-l``,
        ``-n``, ``-w``, ``-S -y``, ``-o "%i %u %F"``); the answer is sprio's table
        (blank cells kept in place: ``-w``'s weights row, ``-l``'s TRES), a
        DataFrame with ``-o df``. A cluster without multifactor priority says so
        in one line, as sprio does.
        """
        argv, dataframe = take_dataframe_flag(split_line(line))
        return self._text("sprio", self.backend(), argv, dataframe)

    @line_magic
    @_reports_errors("sshare")
    def sshare(self, line):
        """Shares, usage and fairshare of the association tree: ``%sshare [sshare options] [-o df]``.

        The options are sshare's (``-a`` every user, ``-A class101``, ``-u alice``,
        ``-l`` with NormUsage, ``-U`` users only, ``--format=Account,User,FairShare``).
        The table is read from sshare's ``-P`` output, so blank cells (the User of
        an account row) and long names stay whole; accounts keep their tree
        indentation.
        """
        argv, dataframe = take_dataframe_flag(split_line(line))
        backend = self.backend()
        if has_option(argv, "nV", ("noheader", "help", "usage", "version", "helpformat")):
            return self._text("sshare", backend, argv, dataframe)
        if not _bundles_any(argv, "pP", ("parsable", "parsable2")):
            argv = [*argv, "-P"]
        out, err = backend.command("sshare", argv)
        if err.strip():
            print(err.rstrip("\n"), file=sys.stderr)
        parsed = slurm_text.parse_pipe_table(out)
        table = tables.Table(*parsed, empty="No associations.") if parsed else tables.TextOutput(out)
        return self._result("sshare", table, dataframe)


#: sshare's short options that take no value (they may be bundled: ``-aP``).
_SSHARE_FLAGS = "almnpPUvV"


def _bundles_any(argv, letters, longs):
    """True if a flag among *letters* is in a bundle of sshare's short flags (``-aP``) or a long option."""
    for word in argv:
        if word == "--":
            break
        if word.startswith("--"):
            if word[2:].split("=", 1)[0] in longs:
                return True
        elif word.startswith("-") and word[1:] and set(word[1:]) <= set(_SSHARE_FLAGS) and \
                any(c in word[1:] for c in letters):
            return True
    return False
