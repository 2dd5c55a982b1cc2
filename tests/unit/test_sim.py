"""The simulator replays workloads through the real policies; SWF is parsed as the archive defines it."""

import io
import os
import re
import subprocess
import sys

import pytest

from batch_backend.sched import fifo
from batch_backend.sim import SwfError, SwfJob, Simulator, jobs_from_swf, parse_swf, simulate, write_swf

TRACE = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "traces", "synthetic-512.swf")


def swf_line(number, submit, run, procs, req_time, user=1, wait=-1):
    return f"{number} {submit} {wait} {run} {procs} -1 -1 {procs} {req_time} -1 1 {user} 1 -1 1 1 -1 -1"


def records(*lines):
    return parse_swf(lines)[1]


# -- SWF ----------------------------------------------------------------------------------------

def test_swf_parses_header_comments_and_unknown_fields():
    text = """; Version: 2.2
; MaxProcs: 128
;   a free-form comment: with a colon
1 0 5 100 4 -1 -1 4 3600 -1 1 7 1 -1 1 1 -1 -1

2 10.5 -1 -1 -1 -1 -1 8 -1 -1 0 3 1 -1 1 1 1 0
"""
    header, jobs = parse_swf(io.StringIO(text))
    assert header == {"Version": "2.2", "MaxProcs": "128"}
    assert [j.job_number for j in jobs] == [1, 2]
    first, second = jobs
    assert (first.submit_time, first.wait_time, first.run_time, first.requested_time, first.user_id) == (
        0, 5, 100, 3600, 7)
    assert first.avg_cpu_time is None and second.run_time is None and second.allocated_procs is None
    assert second.submit_time == 10.5 and second.procs == 8  # requested when known, else allocated


def test_swf_rejects_a_short_line_with_its_line_number():
    with pytest.raises(SwfError, match="trace.swf:2: expected 18 fields, found 3"):
        parse_swf(["; c", "1 2 3"], name="trace.swf")


def test_swf_round_trips_through_write():
    jobs = records(swf_line(1, 0, 100, 4, 3600), swf_line(2, 60, 5, 1, -1))
    out = io.StringIO()
    write_swf(out, jobs, {"MaxProcs": "8"})
    header, again = parse_swf(io.StringIO(out.getvalue()))
    assert header == {"MaxProcs": "8"} and again == jobs


def test_records_without_run_time_or_wider_than_the_cluster_are_skipped():
    jobs, skipped = jobs_from_swf(records(swf_line(1, 0, 100, 4, 3600), swf_line(2, 0, -1, 4, 3600),
                                          swf_line(3, 0, 100, 64, 3600)), total_cpus=8)
    assert [j["num_tasks"] for j in jobs] == [4] and skipped == 2


def test_jobs_run_no_longer_than_their_time_limit():
    jobs, _ = jobs_from_swf(records(swf_line(1, 0, 5000, 1, 600)), total_cpus=8)
    assert jobs[0]["time_limit"] == 10 and jobs[0]["run_time"] == 600


# -- simulator -------------------------------------------------------------------------------------

CRAFTED = [
    swf_line(1, 0, 1000, 4, 1000),   # fills node 1
    swf_line(2, 1, 1000, 8, 1000),   # needs both nodes: waits for job 1
    swf_line(3, 2, 300, 1, 300),     # small and short: fit on node 2 before job 1 ends
    swf_line(4, 3, 300, 2, 300),
    swf_line(5, 4, 300, 1, 300),
]


def test_backfill_beats_fifo_on_mean_wait_without_delaying_the_wide_job():
    fifo_m = simulate(records(*CRAFTED), nodes=2, cpus=4, policy="fifo")
    bf_m = simulate(records(*CRAFTED), nodes=2, cpus=4, policy="backfill")
    assert bf_m["mean_wait"] < fifo_m["mean_wait"]
    assert bf_m["backfilled"] == 3 and fifo_m["backfilled"] == 0
    assert bf_m["makespan"] < fifo_m["makespan"]


def test_bf_interval_runs_fifo_between_backfill_passes_as_slurm_does():
    outcome = ("mean_wait", "p95_wait", "makespan", "backfilled", "utilization")
    every_event = simulate(records(*CRAFTED), nodes=2, cpus=4, policy="backfill")
    often = simulate(records(*CRAFTED), nodes=2, cpus=4, policy="backfill", bf_interval=1)
    assert [often[k] for k in outcome] == [every_event[k] for k in outcome]
    # Backfill only at t=0 (job 1 alone), then FIFO until the next interval: nothing jumps the queue.
    rare = simulate(records(*CRAFTED), nodes=2, cpus=4, policy="backfill", bf_interval=100000)
    assert rare["backfilled"] == 0
    assert rare["mean_wait"] == simulate(records(*CRAFTED), nodes=2, cpus=4, policy="fifo")["mean_wait"]


def test_simulated_times_follow_the_virtual_clock():
    jobs, _ = jobs_from_swf(records(*CRAFTED), total_cpus=8)
    sim = Simulator(jobs, nodes=2, cpus=4, policy="backfill")
    sim.run()
    start = {j["job_id"]: j["start_time"] for j in sim.jobs}
    assert start == {1: 0, 2: 1000, 3: 2, 4: 3, 5: 4}  # job 2 at job 1's end: the end triggers a pass
    assert [round(sum(j["cpus_per_node"].values())) for j in sim.jobs] == [4, 8, 1, 2, 1]


def test_nodes_are_never_over_allocated_during_a_replay():
    _, recs = parse_swf(open(TRACE))
    seen = []

    def check(sim, now, decisions):
        for v in sim.views.values():
            assert 0 <= v.alloc_cpus <= v.cpus
        seen.append(now)
    jobs, _ = jobs_from_swf(recs[:150], total_cpus=64)
    sim = Simulator(jobs, nodes=8, cpus=8, policy="backfill", on_pass=check)
    m = sim.run()
    assert m["jobs"] == len(jobs) and seen == sorted(seen)
    assert 0 < m["utilization"] <= 1


def test_multifactor_priority_runs_with_fairshare_usage():
    _, recs = parse_swf(open(TRACE))
    m = simulate(recs[:100], nodes=8, cpus=8, policy="backfill", priority="multifactor")
    assert m["jobs"] + m["skipped"] == 100 and m["skipped"] > 0 and m["priority"] == "multifactor"


def test_policies_are_pluggable():
    calls = []

    def policy(state, now):
        calls.append(now)
        return fifo.schedule(state, now)
    m = simulate(records(*CRAFTED), nodes=2, cpus=4, policy=policy)
    assert m["jobs"] == 5 and calls


def test_cli_prints_a_metrics_table(tmp_path):
    trace = tmp_path / "t.swf"
    trace.write_text("\n".join(CRAFTED) + "\n")
    out = subprocess.run([sys.executable, "-m", "batch_backend.sim", str(trace), "--nodes", "2", "--cpus", "4"],
                         capture_output=True, text=True, check=True).stdout
    header = out.splitlines()[1].split()
    assert header == ["FCFS", "FCFS+EASY", "multifactor+backfill"]
    assert "mean wait (s)" in out and "backfilled jobs" in out and "user fairness" in out


def test_batchhub_sim_replays_the_lublin_model():
    out = subprocess.run([sys.executable, "-m", "batch_backend.admin", "sim", "--model", "lublin", "--jobs", "150",
                          "--nodes", "16", "--cpus", "4", "--seed", "3", "--runs", "fifo/fcfs,backfill/fcfs"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("Lublin-Feitelson model, 150 jobs, seed 3: 150 records, 16 nodes x 4 CPUs")
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in out.splitlines()[2:])}
    assert rows["jobs run"] == ["150", "150"]
    assert int(rows["backfilled jobs"][0]) == 0  # FCFS never starts a job out of order


@pytest.mark.parametrize("argv, message", [
    (["--nodes", "4", "--cpus", "2"], "give a trace file or --model lublin"),
    (["--model", "lublin", "--nodes", "4", "--cpus", "2", "--runs", "sjf/fcfs"], "unknown run 'sjf/fcfs'"),
    (["--model", "lublin", "--nodes", "0", "--cpus", "2"], "--nodes and --cpus must be at least 1"),
    (["/nonexistent.swf", "--nodes", "4", "--cpus", "2"], "No such file"),
])
def test_batchhub_sim_bad_input_is_one_line(argv, message):
    proc = subprocess.run([sys.executable, "-m", "batch_backend.admin", "sim", *argv], capture_output=True, text=True)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr


# -- the Lublin-Feitelson model -------------------------------------------------------------------

def test_lublin_model_is_seeded_and_well_formed():
    from batch_backend.sim.lublin import generate
    jobs = generate(2000, procs=256, seed=4)
    assert jobs == generate(2000, procs=256, seed=4) and jobs != generate(2000, procs=256, seed=5)
    assert [j.job_number for j in jobs] == list(range(1, 2001))
    assert all(j.submit_time <= k.submit_time for j, k in zip(jobs, jobs[1:]))
    assert all(1 <= j.requested_procs <= 256 and 1 <= j.run_time <= j.requested_time for j in jobs)
    assert {j.queue for j in jobs} == {0, 1}  # batch and interactive streams


def test_lublin_model_has_the_published_shape():
    """Sizes: about a quarter serial, most parallel jobs powers of two; run time grows with size."""
    import statistics
    from batch_backend.sim.lublin import generate
    jobs = generate(20000, procs=128, seed=1, interactive=False)
    serial = sum(j.requested_procs == 1 for j in jobs) / len(jobs)
    assert 0.25 < serial < 0.34  # SERIAL_PROB_BATCH = 0.2927
    parallel = [j for j in jobs if j.requested_procs > 1]
    pow2 = sum(j.requested_procs & (j.requested_procs - 1) == 0 for j in parallel) / len(parallel)
    assert pow2 > 0.85  # rounded ones plus the unrounded that land on a power of two
    small = statistics.median(j.run_time for j in jobs if j.requested_procs <= 2)
    large = statistics.median(j.run_time for j in jobs if j.requested_procs >= 32)
    assert large > small


def test_lublin_load_rescales_arrivals():
    from batch_backend.sim.lublin import generate
    jobs = generate(3000, procs=512, seed=2, load=0.5)
    span = jobs[-1].submit_time - jobs[0].submit_time
    offered = sum(j.requested_procs * j.run_time for j in jobs) / (512 * span)
    assert abs(offered - 0.5) < 0.02


def test_gamma_cdf_matches_known_values():
    import math
    from batch_backend.sim.lublin import daily_weights, gamma_cdf
    assert gamma_cdf(1.0, 1.0, 1.0) == pytest.approx(1 - math.exp(-1))      # exponential
    assert gamma_cdf(4.0, 2.0, 2.0) == pytest.approx(1 - 3 * math.exp(-2))   # Erlang-2, scale 2
    assert gamma_cdf(30.0, 2.0, 1.0) == pytest.approx(1 - 31 * math.exp(-30))
    weights = daily_weights(6.1271, 5.2740)
    assert len(weights) == 48 and sum(weights) == pytest.approx(48)


def test_small_instance_of_a_large_cluster_completes():
    from benchmarks.make_trace import generate
    jobs, _ = jobs_from_swf(generate(200, procs=2000, load=0.8, seed=5, max_width=250), total_cpus=2000)
    m = Simulator(jobs, nodes=500, cpus=4, policy="backfill").run()
    print(f"\n500 nodes, 200 jobs: {m['wall_s']:.2f} s wall, {m['mean_pass_ms']:.2f} ms mean pass")
    assert m["jobs"] == 200


def test_trace_generator_is_seeded():
    from benchmarks.make_trace import generate
    assert generate(50, procs=64, seed=9) == generate(50, procs=64, seed=9)
    assert generate(50, procs=64, seed=9) != generate(50, procs=64, seed=10)
    assert all(isinstance(j, SwfJob) and j.run_time <= j.requested_time for j in generate(200, procs=64))


def test_simulated_jobs_keep_off_an_advance_reservation():
    """The simulator runs the same reservation rules: no job on reserved nodes during the window."""
    jobs, _ = jobs_from_swf(records(swf_line(1, 0, 500, 8, 600), swf_line(2, 10, 100, 4, 600),
                                    swf_line(3, 20, 60, 4, 120)), total_cpus=8)
    window = {"name": "maint", "start_time": 300, "end_time": 2000, "nodes": ["n00001"], "flags": ["MAINT"]}
    sim = Simulator(jobs, nodes=2, cpus=4, policy="backfill", reservations=[window])
    sim.run()
    start = {j["job_id"]: j["start_time"] for j in sim.jobs}
    assert start[1] == 2000                  # needs both nodes for 600 s: only after the window
    assert start[2] == 10 and sim.jobs[1]["nodes"] == ["n00002"]   # would still run at 300: beside it
    assert start[3] == 20 and sim.jobs[2]["nodes"] == ["n00001"]   # ends before 300: on the reserved node
