"""The magics inside a real Jupyter kernel (nbclient): %load_ext, the --wait widget, rich tables."""

import os

import nbformat
from nbclient import NotebookClient

import kernel_ext.magics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(kernel_ext.magics.__file__)))


def _outputs(cell, kind):
    return [o for o in cell.outputs if o.output_type == kind]


def test_notebook_cells_submit_watch_and_list(kernel_env, monkeypatch):
    # the kernel must import this checkout's kernel_ext whatever its working directory
    monkeypatch.setenv("PYTHONPATH", REPO)
    sources = [
        "%load_ext kernel_ext",
        "%%sbatch --wait --out jid -J in-kernel\necho hello from a kernel job",
        "w = get_ipython().magics_manager.registry['SlurmMagics'].last_watch\n"
        "(w.state_label.value, w.tail.value, w.job_id == str(jid))",
        "%sacct -j $jid -X -o JobID,JobName,State",
        "%scontrol show job 987654",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(kernel_env)}}).execute()
    load, submit, inspect, acct, error = nb.cells

    assert load.outputs == []
    # in a kernel, --wait shows the job-watch widget without being asked
    assert any("application/vnd.jupyter.widget-view+json" in o.data for o in _outputs(submit, "display_data"))
    text = "".join(o.text for o in _outputs(submit, "stream") if o.name == "stdout")
    assert "COMPLETED" in text and text.rstrip().endswith("hello from a kernel job")
    assert _outputs(inspect, "execute_result")[0].data["text/plain"] == (
        "('COMPLETED', 'hello from a kernel job', True)")
    html = _outputs(acct, "execute_result")[0].data["text/html"]
    assert "<td>in-kernel</td>" in html and "<td>COMPLETED</td>" in html
    assert [o.text for o in error.outputs] == ["scontrol: error: Invalid job id specified\n"]
