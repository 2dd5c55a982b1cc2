"""Observability: /metrics in Prometheus text format, job ids in log lines, live `scontrol show config`."""

import http.client
import math
import os
import re
import socket
import time

import pytest

from batch_backend import http11
from cluster_support import TEST_CONF

# -- a small parser of the Prometheus text exposition format (0.0.4) ------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """{family: {"type", "help", "samples": [(name, labels dict, value)]}}; raises on bad syntax."""
    families, current = {}, None
    assert text.endswith("\n"), "exposition must end with a newline"
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, {"samples": []})["help"] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fam = families.setdefault(name, {"samples": []})
            assert "type" not in fam, f"TYPE given twice for {name}"
            assert not fam["samples"], f"TYPE after samples for {name}"
            fam["type"] = kind
            current = name
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = {}, 0
        while pos < len(labels_text):
            lm = _LABEL.match(labels_text, pos)
            assert lm, f"bad labels in {line!r}"
            assert lm.group(1) not in labels, f"label repeated in {line!r}"
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        number = float(value)  # also accepts +Inf, NaN
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in families:
                family = name[: -len(suffix)]
        assert family in families and family == current, f"sample {name} outside its family block"
        families[family]["samples"].append((name, labels, number))
    for name, fam in families.items():
        assert "type" in fam, f"{name} has no TYPE"
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    """Buckets cumulative and ascending per series, +Inf bucket = _count, _sum present."""
    series = {}
    for sample, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sample.endswith("_bucket"):
            series[key]["buckets"].append((float(labels["le"]), value))
        elif sample.endswith("_sum"):
            series[key]["sum"] = value
        elif sample.endswith("_count"):
            series[key]["count"] = value
    for key, s in series.items():
        bounds = [b for b, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, f"{name}{key}: buckets out of order"
        assert counts == sorted(counts), f"{name}{key}: buckets not cumulative"
        assert s["count"] == counts[-1], f"{name}{key}: +Inf bucket != _count"
        assert s["sum"] is not None and s["sum"] >= 0


def value(families, name, **labels):
    family = name if name in families else name.rsplit("_", 1)[0]
    for sample, sample_labels, v in families[family]["samples"]:
        if sample == name and all(sample_labels.get(k) == str(x) for k, x in labels.items()):
            return v
    raise KeyError(f"{name}{labels}")


def get_metrics(c, path="/metrics"):
    conn = http11.Connection(c.socket, 10)
    try:
        status, headers, body = conn.request("GET", path)
    finally:
        conn.close()
    return status, headers, body.decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_get(port, path, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


# -- /metrics ---------------------------------------------------------------------------------------
def test_metrics_report_jobs_nodes_and_timings_in_prometheus_text_format(private_cluster):
    c = private_cluster
    running = c.sbatch("-o", "/dev/null", "--wrap=sleep 60")
    c.sbatch("-o", "/dev/null", "-p", "short", "--hold", "--wrap=true")
    c.wait_state(running, "RUNNING")
    assert c.run("scontrol", "update", "NodeName=n3", "State=DRAIN", "Reason=maint").returncode == 0
    status, headers, text = get_metrics(c)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = parse_prometheus(text)
    assert value(fams, "batchhub_jobs", state="RUNNING", partition="debug") == 1
    assert value(fams, "batchhub_jobs", state="PENDING", partition="short") == 1
    assert value(fams, "batchhub_jobs", state="PENDING", partition="gpu") == 0
    assert fams["batchhub_jobs"]["type"] == "gauge"
    assert sum(v for n, _, v in fams["batchhub_nodes"]["samples"]) == 4
    assert value(fams, "batchhub_nodes", state="DRAINED") == 1
    assert value(fams, "batchhub_nodes", state="MIXED") == 1
    assert value(fams, "batchhub_nodes_flagged", flag="DRAIN") == 1
    assert value(fams, "batchhub_jobs_submitted_total") == 2
    assert fams["batchhub_scheduler_pass_seconds"]["type"] == "histogram"
    assert value(fams, "batchhub_scheduler_pass_seconds_count") >= 1
    assert value(fams, "batchhub_api_request_duration_seconds_count", route="/v1/jobs", method="POST") == 2
    assert value(fams, "batchhub_journal_commit_seconds_count") >= 2
    assert value(fams, "batchhub_accounting_store_up") == 1
    # the other parser agrees, where it is installed (it is not a dependency of the project)
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"batchhub_jobs", "batchhub_scheduler_pass_seconds", "batchhub_api_request_duration_seconds"} <= names


def test_metrics_groups_like_slurms_endpoints(cluster):
    status, _, text = get_metrics(cluster, "/metrics/nodes")
    assert status == 200
    assert set(parse_prometheus(text)) >= {"batchhub_nodes", "batchhub_node_cpus"}
    assert "batchhub_jobs{" not in text
    status, _, text = get_metrics(cluster, "/metrics/bogus")
    assert status == 404 and "no such metrics group: bogus" in text


@pytest.mark.parametrize("extra,scrape_status", [
    ("", 401),                                                   # TCP scrapes need a token by default
    ("MetricsType=metrics/openmetrics\n", 200),                  # like Slurm's metrics: open when enabled
    ("MetricsType=metrics/openmetrics\nPrivateData=jobs\n", 401),  # ... and closed again by PrivateData
])
def test_who_may_scrape_metrics_over_tcp(make_cluster, extra, scrape_status):
    port = free_port()
    c = make_cluster(TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n" + extra, wait_nodes=False)
    status, body = tcp_get(port, "/metrics")
    assert status == scrape_status, body
    if status == 200:
        parse_prometheus(body)
    # the rest of the API never opens up
    assert tcp_get(port, "/v1/jobs")[0] == 401
    token = c.run("scontrol", "token").stdout.strip().partition("=")[2]
    assert tcp_get(port, "/metrics", token)[0] == 200


# -- structured job logs ---------------------------------------------------------------------------
def test_every_job_event_is_logged_with_its_job_id(private_cluster):
    c = private_cluster
    done = c.sbatch("-J", "with space", "-o", "/dev/null", "--wrap=exit 3")
    held = c.sbatch("-o", "/dev/null", "--hold", "--wrap=true")
    c.wait_state(done, "FAILED")
    assert c.run("scontrol", "update", f"JobId={held}", "TimeLimit=5").returncode == 0
    assert c.run("scancel", str(held)).returncode == 0
    with open(os.path.join(c.home, "log", "controller.log")) as f:
        lines = [line for line in f if " batchhub.jobs " in line]
    for line in lines:
        assert re.search(r" batchhub\.jobs INFO [a-z_]+ JobId=\d+( |$)", line), line
    events = [(m.group(1), int(m.group(2))) for m in
              (re.search(r"INFO ([a-z_]+) JobId=(\d+)", line) for line in lines)]
    assert [e for e, j in events if j == done] == ["submit", "allocate", "end"]
    assert [e for e, j in events if j == held] == ["submit", "update", "cancel"]
    end = next(line for line in lines if f"end JobId={done} " in line)
    assert "State=FAILED" in end and "ExitCode=3:0" in end
    submit = next(line for line in lines if f"submit JobId={done} " in line)
    assert 'Name="with space"' in submit


# -- scontrol show config ----------------------------------------------------------------------------
def test_show_config_reflects_live_settings_and_hides_passwords(make_cluster):
    c = make_cluster(TEST_CONF.replace("MinJobAge=300\n", "minjobage=7\n")
                     + "AccountingStorageURL=postgresql://acct:s3cret@127.0.0.1:1/acct\nPurgeJobAfter=2days\n")
    job = c.sbatch("-o", "/dev/null", "--wrap=true")
    r = c.run("scontrol", "show", "config")
    assert r.returncode == 0, r.stderr
    settings = dict(re.match(r"(\S+)\s+= (.*)", line).groups() for line in r.stdout.splitlines()[1:])
    assert settings["MinJobAge"] == "7 sec"
    assert "minjobage" not in settings, "one line per key, with the live value"
    assert settings["AccountingStorageType"] == "accounting_storage/postgresql"
    assert settings["AccountingStorageURL"] == "postgresql://acct:***@127.0.0.1:1/acct"
    assert "s3cret" not in r.stdout
    assert settings["PurgeJobAfter"] == "2days"
    assert settings["JournalSync"] == "NORMAL"
    assert int(settings["NEXT_JOB_ID"]) == job + 1
    # the database does not answer: jobs still run, records wait, metrics say so
    c.wait_nodes_up()
    deadline = time.time() + 30
    while c.run("squeue", "-h", "-j", str(job)).stdout.strip() and time.time() < deadline:
        time.sleep(0.2)
    fams = parse_prometheus(get_metrics(c)[2])
    assert value(fams, "batchhub_accounting_store_up") == 0
    assert value(fams, "batchhub_accounting_backlog") >= 1
