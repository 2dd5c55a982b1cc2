"""Fast launchers for the Slurm commands: ``python -S`` and the package's own directory.

Why: pollers (batchspawner, dashboards, people's watch loops) start ``squeue``
every few seconds, and a shell loop of ``sbatch`` is as fast as the
interpreter starts. Processing ``site`` (site-packages, ``.pth`` files,
setuptools' distutils hook) is about a third of a bare interpreter start here
(~4 of ~14 ms). The CLI is stdlib-only by design, so its launchers skip
``site`` and put just the directory holding ``batch_backend`` on ``sys.path``
(after PYTHONPATH, which ``-S`` still honours).

``scripts/setup`` runs ``python -m batch_backend.cli.launchers .venv/bin``
after pip has written its console scripts; the launchers replace those of the
commands below and nothing else (``batchhub`` itself needs site-packages).
"""

import os
import sys

COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "sacct", "scontrol", "srun", "salloc",
            "sprio", "sshare", "sacctmgr")

TEMPLATE = """\
#!{python} -S
# BatchHub's {command}: written by batch_backend.cli.launchers (python -S starts faster;
# the CLI needs only the standard library and this package).
import sys
sys.path.append({root!r})
from batch_backend.cli.{command} import main
if __name__ == "__main__":
    sys.exit(main())
"""


def package_root():
    """The directory that holds the ``batch_backend`` package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def install(bin_dir, python=None):
    """Write a launcher for every command into ``bin_dir`` (atomically); returns their paths."""
    python = python or sys.executable
    written = []
    for command in COMMANDS:
        path = os.path.join(bin_dir, command)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(TEMPLATE.format(python=python, root=package_root(), command=command))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m batch_backend.cli.launchers BIN_DIR", file=sys.stderr)
        return 2
    install(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
