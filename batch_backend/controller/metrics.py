"""``/metrics``: the controller's state and timings in Prometheus text format (0.0.4).

What is exported (all aggregates: no user names, job names or paths):

* ``batchhub_jobs{state,partition}``: jobs the controller holds, by state
  (active states always present, per partition, so a scraper sees zeros);
* ``batchhub_nodes{state}`` and ``batchhub_node_cpus{state}``: nodes by base
  state (IDLE, MIXED, ALLOCATED, DRAINED, DOWN, ...) and their CPUs;
* ``batchhub_scheduler_pass_seconds`` (histogram): one scheduling pass;
* ``batchhub_api_request_duration_seconds{route,method}`` (histogram): API
  latency by route pattern (node daemons' long polls are their own route);
* ``batchhub_journal_commit_seconds`` (histogram): journal transaction commits;
* counters and gauges: submissions, passes, accounting backlog and store
  health, recovery time, start time.

Who may read it: anyone on the Unix socket (local users can run squeue
anyway). Over TCP, like Slurm's metrics (``MetricsType=metrics/openmetrics``,
served unauthenticated by slurmctld and switched off when ``PrivateData`` is
set): without a token only when ``MetricsType=metrics/openmetrics`` is
configured and ``PrivateData`` is not; otherwise a TCP scrape needs a token
like every other request. ``/metrics/{jobs,nodes,partitions,scheduler}``
serve the matching subsets, as Slurm's endpoints do.
"""

import bisect
import time

#: seconds; wide enough for a 10,000-job pass and a held long poll
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: job states always reported per partition (zeros included)
_ACTIVE = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING")
_NODE_STATES = ("IDLE", "MIXED", "ALLOCATED", "DRAINING", "DRAINED", "DOWN", "UNKNOWN")

GROUPS = ("jobs", "nodes", "partitions", "scheduler")


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics); observe() is O(log buckets)."""

    def __init__(self, buckets=LATENCY_BUCKETS):
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # last: above every bound (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value):
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def samples(self, name, labels=""):
        """Text lines: ``_bucket`` (cumulative, ``le``), ``_sum``, ``_count``."""
        sep = "," if labels else ""
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts):
            running += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{_num(bound)}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        tail = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{tail} {_num(self.sum)}")
        out.append(f"{name}_count{tail} {self.count}")
        return out


class LabeledHistograms:
    """One histogram per label set."""

    def __init__(self, label_names, buckets=LATENCY_BUCKETS):
        self.label_names = label_names
        self.buckets = buckets
        self.series = {}

    def observe(self, label_values, value):
        h = self.series.get(label_values)
        if h is None:
            h = self.series[label_values] = Histogram(self.buckets)
        h.observe(value)

    def samples(self, name):
        out = []
        for values in sorted(self.series):
            out += self.series[values].samples(name, _labels(zip(self.label_names, values)))
        return out


def _num(v):
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


def metrics_open(conf):
    """May TCP callers scrape without a token? (Slurm: MetricsType set and no PrivateData.)"""
    from ..conf import get_option
    kind = str(get_option(conf, "MetricsType", "") or "").strip().lower()
    private = str(get_option(conf, "PrivateData", "") or "").strip()
    return kind == "metrics/openmetrics" and not private


def render(controller, group=None):
    """The exposition text for ``/metrics`` (or one of its groups)."""
    cluster = controller.cluster
    out = []

    def family(name, kind, help_text, lines):
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)

    if group in (None, "jobs", "partitions"):
        counts = {}
        for job in cluster.jobs.values():
            key = (job["state"], job["partition"])
            counts[key] = counts.get(key, 0) + 1
        for part in cluster.partitions:
            for state in _ACTIVE:
                counts.setdefault((state, part), 0)
        family("batchhub_jobs", "gauge", "Jobs held by the controller, by state and partition.",
               [f"batchhub_jobs{{{_labels([('state', s), ('partition', p)])}}} {n}"
                for (s, p), n in sorted(counts.items())])
    if group in (None, "jobs"):
        family("batchhub_jobs_submitted_total", "counter", "Jobs accepted since the controller started.",
               [f"batchhub_jobs_submitted_total {cluster.stats.get('submitted', 0)}"])
    if group in (None, "nodes", "partitions"):
        nodes, cpus = {s: 0 for s in _NODE_STATES}, {s: 0 for s in _NODE_STATES}
        alloc = 0
        for node in cluster.nodes.values():
            base, _ = node.state()
            nodes[base] = nodes.get(base, 0) + 1
            cpus[base] = cpus.get(base, 0) + node.cpus
            alloc += node.alloc_cpus
        family("batchhub_nodes", "gauge", "Nodes by base state.",
               [f'batchhub_nodes{{state="{s}"}} {n}' for s, n in sorted(nodes.items())])
        family("batchhub_node_cpus", "gauge", "Configured CPUs of the nodes in each base state.",
               [f'batchhub_node_cpus{{state="{s}"}} {n}' for s, n in sorted(cpus.items())])
        family("batchhub_cpus_allocated", "gauge", "CPUs allocated to jobs.", [f"batchhub_cpus_allocated {alloc}"])
        flagged = {}
        for node in cluster.nodes.values():
            for flag in node.state()[1]:
                flagged[flag] = flagged.get(flag, 0) + 1
        family("batchhub_nodes_flagged", "gauge", "Nodes carrying a state flag (DRAIN, NOT_RESPONDING).",
               [f'batchhub_nodes_flagged{{flag="{f}"}} {flagged.get(f, 0)}' for f in ("DRAIN", "NOT_RESPONDING")])
    if group in (None, "partitions"):
        family("batchhub_partition_nodes", "gauge", "Nodes in each partition.",
               [f'batchhub_partition_nodes{{partition="{_escape(p)}"}} {len(part["nodes"])}'
                for p, part in sorted(cluster.partitions.items())])
    if group in (None, "scheduler"):
        family("batchhub_scheduler_pass_seconds", "histogram", "Duration of one scheduling pass.",
               cluster.pass_times.samples("batchhub_scheduler_pass_seconds"))
        family("batchhub_scheduler_passes_total", "counter", "Scheduling passes since start.",
               [f"batchhub_scheduler_passes_total {cluster.stats.get('passes', 0)}"])
        family("batchhub_scheduler_last_pass_seconds", "gauge", "Duration of the latest scheduling pass.",
               [f"batchhub_scheduler_last_pass_seconds {_num(cluster.stats.get('last_pass_ms', 0.0) / 1000)}"])
        family("batchhub_api_request_duration_seconds", "histogram",
               "API request latency by route pattern and method.",
               controller.request_times.samples("batchhub_api_request_duration_seconds"))
        family("batchhub_journal_commit_seconds", "histogram", "Journal transaction commit time.",
               controller.journal.commit_times.samples("batchhub_journal_commit_seconds"))
        acct = controller.accounting
        family("batchhub_accounting_backlog", "gauge", "Job records waiting to reach the accounting store.",
               [f"batchhub_accounting_backlog {acct.backlog()}"])
        family("batchhub_accounting_store_up", "gauge", "1 if the accounting store answered last time.",
               [f"batchhub_accounting_store_up {0 if acct.down_since is not None else 1}"])
        family("batchhub_recovery_seconds", "gauge", "Time to load the journal at the last start.",
               [f"batchhub_recovery_seconds {_num(getattr(controller, 'recovery_seconds', 0.0))}"])
        family("batchhub_start_time_seconds", "gauge", "Unix time the controller started.",
               [f"batchhub_start_time_seconds {_num(float(controller.started))}"])
        family("batchhub_scrape_time_seconds", "gauge", "Unix time of this scrape.",
               [f"batchhub_scrape_time_seconds {_num(time.time())}"])
    return "\n".join(out) + "\n"
