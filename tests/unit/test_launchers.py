"""The Slurm commands' launchers start Python without site processing and still find the package."""

import os
import subprocess

from batch_backend.cli import launchers


def test_launchers_run_the_commands_with_python_minus_S(tmp_path):
    written = launchers.install(str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == sorted(launchers.COMMANDS)
    squeue = tmp_path / "squeue"
    assert squeue.read_text().splitlines()[0].endswith(" -S")
    assert os.access(squeue, os.X_OK)
    env = {"PATH": "/usr/bin:/bin", "BATCHHUB_SOCKET": str(tmp_path / "none.sock")}
    r = subprocess.run([str(squeue), "--usage"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "Usage: squeue" in r.stdout, r.stderr
    r = subprocess.run([str(squeue)], capture_output=True, text=True, env=env)  # no controller: one line
    assert r.returncode == 1 and "Unable to contact slurm controller" in r.stderr and "Traceback" not in r.stderr


def test_bad_invocation_is_a_usage_line(tmp_path, capsys):
    assert launchers.main([str(tmp_path / "missing")]) == 2
    assert "usage: python -m batch_backend.cli.launchers BIN_DIR" in capsys.readouterr().err
