"""Helpers of the kernel tests: run a magic the way a notebook cell does, check its error line."""

from IPython.utils.capture import capture_output


def run_magic(ip, line, cell=None):
    """Run ``%line`` (or ``%%line`` with *cell*) as a notebook cell; return (result, captured)."""
    source = f"%{line}" if cell is None else f"%%{line}\n{cell}"
    with capture_output() as captured:
        result = ip.run_cell(source, store_history=False)
    return result, captured


def assert_one_error_line(result, captured, prog):
    """The cell failed politely: no exception, no traceback, one ``prog: error:`` line on stderr."""
    assert result.error_in_exec is None and result.error_before_exec is None
    assert "Traceback" not in captured.stdout + captured.stderr
    lines = captured.stderr.strip().splitlines()
    assert len(lines) == 1, captured.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


def held_job(ip, name="held", extra=""):
    """Submit a held job through the magic; return its id."""
    return ip.run_cell_magic("sbatch", f"--hold -J {name} {extra}".strip(), "sleep 60\n")
