"""The user's path in a real browser: log in, pick a profile, watch the queue, use JupyterLab, stop.

Headless Chromium (Debian's ``chromium``) driven by Playwright for Python through
``executable_path`` (Playwright's own browser download is not used). Screenshots of
each step go to ``$BATCHHUB_ARTIFACTS_DIR/browser`` (default: the test's tmp dir).
"""

import os
import shutil
import time

import pytest

from hub_helpers import squeue_ids

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture
def shots(tmp_path):
    base = os.environ.get("BATCHHUB_ARTIFACTS_DIR")
    d = os.path.join(base, "browser") if base else str(tmp_path / "browser")
    os.makedirs(d, exist_ok=True)
    return d


def test_login_profile_queue_progress_jupyterlab_cell_and_stop(hub, hub_cluster, shots):
    blocker = hub_cluster.sbatch("-p", "solo", "-c", "2", "--wrap", "sleep 300")
    hub_cluster.wait_state(blocker, "RUNNING")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        try:
            page.goto(hub.url + "/hub/login")
            page.fill("input[name=username]", "browseruser")
            page.fill("input[name=password]", "classroom")
            page.click("[type=submit]")
            page.wait_for_url("**/hub/spawn**", timeout=30000)
            page.screenshot(path=os.path.join(shots, "1-spawn-form.png"), full_page=True)
            page.check("#profile-solo")
            page.click("[type=submit]")
            # the job waits behind the blocker: the spawn page says where it is and why
            page.wait_for_selector("text=queued in partition solo", timeout=30000)
            page.wait_for_selector("text=waiting for resources", timeout=10000)
            page.screenshot(path=os.path.join(shots, "2-queued.png"), full_page=True)
            hub_cluster.run("scancel", str(blocker))
            page.wait_for_url("**/lab**", timeout=90000)
            page.wait_for_selector(".jp-LauncherCard", timeout=60000)
            page.screenshot(path=os.path.join(shots, "3-jupyterlab.png"))
            page.click(".jp-LauncherCard[data-category='Notebook']")
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60000)
            page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=60000)  # kernel ready
            page.click(".jp-Notebook .jp-Cell .cm-content")
            page.keyboard.type("print(6 * 7)")
            page.keyboard.press("Shift+Enter")
            page.wait_for_selector(".jp-OutputArea-output:has-text('42')", timeout=60000)
            page.screenshot(path=os.path.join(shots, "4-cell-ran.png"))
            job_id = hub.server("browseruser")["state"]["job_id"]
            assert squeue_ids(hub_cluster)[job_id] == "RUNNING"
            page.goto(hub.url + "/hub/home")
            page.click("#stop")
            page.wait_for_selector("#start", timeout=60000)
            page.screenshot(path=os.path.join(shots, "5-stopped.png"), full_page=True)
        except Exception:
            page.screenshot(path=os.path.join(shots, "failure.png"))
            raise
        finally:
            browser.close()
            hub_cluster.run("scancel", str(blocker))
    deadline = time.time() + 30
    while time.time() < deadline and job_id in squeue_ids(hub_cluster):
        time.sleep(0.2)
    assert job_id not in squeue_ids(hub_cluster)
    assert hub_cluster.state(job_id).startswith("CANCELLED")
