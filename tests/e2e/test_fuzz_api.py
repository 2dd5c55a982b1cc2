"""Hostile input against a live controller (hypothesis): never a 500, never a change from a rejection.

One module-scoped cluster takes every fuzzed request: submission bodies drawn from
the OpenAPI document's own ``Submission`` schema (right and wrong types, odd
strings, huge and non-finite numbers, unknown keys), job updates, actions,
cancels, node updates, step creation, node-daemon events and query strings.
Properties checked after every request:

* the answer is JSON; a rejection is a 4xx ``{"error": {"code", "message"}}``,
  never a 5xx;
* a rejected request changes nothing (the jobs and nodes look exactly as before);
* an accepted job is printable by the CLI (``scontrol show job``, ``squeue``,
  ``sacct`` exit 0 without an "internal error");
* the controller and every node daemon still serve at the end.

Every accepted submission is held (``hold`` is always ``true`` when it is a
boolean) and cancelled right away, so no fuzzed script ever runs.
"""

import http.client
import json
import math
import os
import socket
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batch_backend.model import FINAL_STATES
from cluster_support import TEST_CONF, LiveCluster

EXAMPLES = int(os.environ.get("BATCHHUB_FUZZ_EXAMPLES", 60))
LIVE = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])

# fields whose value changes by itself while nothing is asked of the controller
VOLATILE_NODE = {"last_seen", "cpu_load", "free_memory", "free_memory_mb", "boot_time", "last_busy"}


# -- the cluster and a raw HTTP client on its socket ---------------------------------------
class RawAPI:
    """Raw HTTP on the Unix socket (or TCP with a token): the body is sent exactly as given."""

    def __init__(self, path, *, port=None, token=None):
        self.path, self.port, self.token = path, port, token

    def request(self, method, url, body=None):
        if self.port:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        else:
            conn = http.client.HTTPConnection("localhost", timeout=30)
            conn.sock = socket.socket(socket.AF_UNIX)
            conn.sock.settimeout(30)
            conn.sock.connect(self.path)
        headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body, allow_nan=True)
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogatepass")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, url, body=body, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            raise AssertionError(f"{method} {url}: HTTP {r.status} answered non-JSON {raw[:200]!r}") from None
        return r.status, answer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    port = free_port()
    c = LiveCluster(tmp_path_factory.mktemp("fuzz"), TEST_CONF + f"BatchHubTCPAddress=127.0.0.1:{port}\n")
    c.up()
    c.port = port
    api = RawAPI(c.socket)
    # a few held jobs that every rejected request must leave exactly as they are
    held = [c.sbatch("--hold", "-J", f"anchor{i}", "--wrap", "true") for i in range(2)]
    held.append(c.sbatch("--hold", "--array=0-3%2", "--wrap", "true"))
    c.anchors = held
    c.api = api
    yield c
    c.down()


def snapshot(api):
    """Everything a request could change: all jobs (finished ones too) and all nodes."""
    status, jobs = api.request("GET", "/v1/jobs?all=1")
    assert status == 200, jobs
    status, nodes = api.request("GET", "/v1/nodes")
    assert status == 200, nodes
    node_view = {n["name"]: {k: v for k, v in n.items() if k not in VOLATILE_NODE} for n in nodes["nodes"]}
    job_view = {j["job_id"]: j for j in jobs["jobs"]}
    return job_view, node_view


def _short(value):
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def check_answer(method, url, body, status, answer):
    assert status < 500, f"{method} {url} {_short(body)}: HTTP {status} {answer}"
    if status >= 400:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), dict), answer
        assert answer["error"].get("message"), answer
        assert answer["error"].get("code"), answer


def live_records(live):
    """The anchors as the controller holds them in memory (GET one job), not as last journaled."""
    return {a: live.api.request("GET", f"/v1/jobs/{a}")[1] for a in getattr(live, "anchors", [])}


def wait_final(live, job_id, timeout=30):
    """Until every record of the job (all tasks of an array) is in a final state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, shown = live.api.request("GET", f"/v1/jobs/{job_id}")
        if status == 200 and all(j["state"] in FINAL_STATES for j in shown["jobs"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {shown}")


def send_checked(live, method, url, body=None):
    """One fuzzed request with all the properties; returns (status, answer)."""
    before = snapshot(live.api)
    anchors_before = live_records(live)
    status, answer = live.api.request(method, url, body)
    check_answer(method, url, body, status, answer)
    if status >= 400:
        assert live_records(live) == anchors_before, f"rejected {method} {url} {_short(body)} changed an anchor"
        after = snapshot(live.api)
        assert after[0].keys() == before[0].keys(), f"rejected {method} {url} {_short(body)} made jobs {set(after[0]) - set(before[0])}"
        for job_id, job in before[0].items():
            if job["state"] in FINAL_STATES or job.get("held"):  # (others move on by themselves)
                assert after[0][job_id] == job, f"rejected {method} {url} {_short(body)} changed job {job_id}"
        assert after[1] == before[1], f"rejected {method} {url} {_short(body)} changed nodes"
    return status, answer


# -- strategies ---------------------------------------------------------------------------------
ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "a b", "../../etc/x", "/root/evil.out", "x" * 5000, "é١\u202e", "a\nb", "a\0b",
                     "%j %N %x", "n[1-2]", "n[1-", "debug", "gpu:2", "gpu:99", "afterok:1", "afterany:99999",
                     "singleton", "0-3%2", "-1", "UNLIMITED", "ALL", "NONE", "append", "B:USR1@10", "cpu&gpu",
                     "²", "1²", "gpu:²", "afterok:²", "١٢", "n[²-3]"]),
    st.text(max_size=40))
ODD_NUMBER = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.sampled_from([0, 1, -1, 2**63, 10**9]),
                       st.floats(allow_nan=True, allow_infinity=True))
JUNK = st.one_of(st.none(), st.booleans(), ODD_NUMBER, ODD_TEXT, st.lists(ODD_TEXT, max_size=3),
                 st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=3))


def openapi_schemas():
    """The live document's Submission schema: the fuzzer follows what the server advertises."""
    from batch_backend.api.openapi import openapi_document
    return openapi_document()["components"]["schemas"]


TYPED = {
    "string": ODD_TEXT, "integer": st.one_of(st.integers(-5, 100), ODD_NUMBER.filter(lambda v: isinstance(v, int))),
    "number": ODD_NUMBER, "boolean": st.booleans(), "null": st.none(),
    "array": st.lists(ODD_TEXT, max_size=3), "object": st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=3),
}


def value_for(schema):
    kinds = [s["type"] for s in schema["anyOf"]] if "anyOf" in schema else [schema["type"]]
    # mostly the advertised type, sometimes anything at all
    return st.one_of(*[TYPED[k] for k in kinds], JUNK) if kinds else JUNK


SCRIPTS = st.one_of(st.just("#!/bin/sh\ntrue\n"),
                    st.text(max_size=30).map(lambda t: "#!/bin/sh\n# " + t.replace("\n", " ") + "\ntrue\n"),
                    ODD_TEXT, JUNK)


@st.composite
def submissions(draw):
    props = openapi_schemas()["Submission"]["properties"]
    keys = draw(st.lists(st.sampled_from(sorted(props)), max_size=8, unique=True))
    sub = {"script": draw(SCRIPTS)}
    for key in keys:
        if key != "script":
            sub[key] = draw(value_for(props[key]))
    if draw(st.integers(0, 9)) == 0:
        sub[draw(ODD_TEXT)] = draw(JUNK)  # an unknown key
    if not isinstance(sub.get("hold"), bool) or not sub.get("hold"):
        sub["hold"] = True if draw(st.integers(0, 9)) else draw(JUNK.filter(lambda v: v is not False))
    for never in ("test_only", "wait"):
        sub.pop(never, None)
    return sub


UPDATE_KEYS = ["time_limit", "partition", "name", "comment", "nice", "num_nodes", "num_tasks", "mem_per_node",
               "dependency", "features", "exclude", "begin_time", "priority", "requeue", "bogus", "state"]


# -- properties ---------------------------------------------------------------------------------
@LIVE
@given(body=submissions())
def test_fuzzed_submission_is_a_held_job_or_a_clean_rejection(live, body):
    status, answer = send_checked(live, "POST", "/v1/jobs", body)
    event("accepted" if status == 201 else f"rejected {status}")
    if status == 201:
        assert body.get("hold") is True
        job_id = answer["job_id"]
        status, shown = live.api.request("GET", f"/v1/jobs/{job_id}")
        assert status == 200 and shown["job"]["state"] == "PENDING", shown
        live.fuzz_accepted = getattr(live, "fuzz_accepted", []) + [job_id]
        status, _ = live.api.request("POST", "/v1/jobs/cancel", {"ids": [str(job_id)]})
        assert status == 200


@LIVE
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200),
                     st.sampled_from(['{"script": NaN}', '{"script": "#!/bin/sh\\n", "nice": Infinity}',
                                      '{"script": "#!/bin/sh\\n", "hold": true, "begin_time": NaN}',
                                      '{"script": "#!/bin/sh\\n", "hold": true, "begin_time": 1e308}',
                                      '[' * 5000, '{"a":' * 3000, '"\\ud800"', '{"script": "\\ud800"}'])))
def test_raw_bodies_never_500(live, raw):
    for url in ("/v1/jobs", "/v1/jobs/cancel", "/v1/nodes/update", f"/v1/jobs/{live.anchors[0]}/update",
                f"/v1/jobs/{live.anchors[0]}/steps", "/v1/tokens"):
        send_checked(live, "POST", url, raw)


@LIVE
@given(fields=st.dictionaries(st.sampled_from(UPDATE_KEYS), JUNK, min_size=1, max_size=4),
       which=st.integers(0, 2))
def test_fuzzed_job_update_is_applied_or_changes_nothing(live, fields, which):
    send_checked(live, "POST", f"/v1/jobs/{live.anchors[which]}/update", fields)
    # put the anchor back on hold in case an accepted update released it (none should)
    status, shown = live.api.request("GET", f"/v1/jobs/{live.anchors[which]}")
    assert all(j["state"] == "PENDING" for j in shown["jobs"]), shown


@LIVE
@given(job_id=st.one_of(ODD_TEXT, st.integers(-5, 10**20).map(str)),
       action=st.sampled_from(["update", "hold", "uhold", "release", "requeue", "requeuehold", "suspend",
                               "resume", "top", "steps", "complete", "extension?minutes=x", "extension?minutes=5",
                               "steps/0", "steps/0/cancel", "bogus", ""]))
def test_fuzzed_job_ids_and_actions(live, job_id, action):
    from urllib.parse import quote
    url = f"/v1/jobs/{quote(job_id, safe='')}" + (f"/{action}" if action else "")
    method = "GET" if action in ("", "steps/0") or action.startswith("extension") else "POST"
    if action == "release":
        return  # would legitimately start a job
    send_checked(live, method, url, {} if method == "POST" else None)


@LIVE
@given(body=st.fixed_dictionaries({}, optional={
    "ids": st.one_of(st.lists(st.one_of(ODD_TEXT, st.integers()), max_size=3), JUNK),
    "signal": JUNK, "users": JUNK, "names": JUNK, "partitions": JUNK, "states": JUNK,
    "batch_only": JUNK, "full": JUNK}))
def test_fuzzed_cancel_never_500(live, body):
    # never let a fuzzed cancel reach the anchors: only ids that match nothing, or no selector at all
    for key in ("users", "names", "partitions", "states"):
        body.pop(key, None)
    if isinstance(body.get("ids"), list):
        body["ids"] = [i for i in body["ids"] if not str(i).strip().split("_")[0].split(".")[0].isdigit()]
    send_checked(live, "POST", "/v1/jobs/cancel", body)


@LIVE
@given(body=st.fixed_dictionaries({}, optional={
    "names": st.one_of(st.lists(ODD_TEXT, max_size=3), JUNK, st.sampled_from(["n[1-", "n9", "n[1-99999999]"])),
    "state": st.one_of(st.sampled_from(["DRAIN", "DOWN", "RESUME", "IDLE", "FAIL", "bogus", ""]), JUNK),
    "reason": JUNK}))
def test_fuzzed_node_update_never_500(live, body):
    names = body.get("names")
    # draining/downing a real node is a legitimate change; keep the fuzz to requests that name no real node
    if isinstance(names, (list, str)) and any("n" in str(n) and any(ch.isdigit() for ch in str(n))
                                              for n in (names if isinstance(names, list) else [names])):
        if body.get("state") not in (None, "", "bogus") and not isinstance(body.get("state"), (int, float, list, dict)):
            body["names"] = ["nosuchnode"]
    send_checked(live, "POST", "/v1/nodes/update", body)


@LIVE
@given(body=st.one_of(JUNK, st.fixed_dictionaries({}, optional={
    "argv": st.one_of(st.lists(ODD_TEXT, max_size=2), JUNK), "num_tasks": JUNK, "num_nodes": JUNK,
    "cpus_per_task": JUNK, "nodelist_req": ODD_TEXT, "exclude": ODD_TEXT, "mpi": JUNK, "environment": JUNK})))
def test_fuzzed_step_creation_on_a_pending_job_is_rejected(live, body):
    status, _ = send_checked(live, "POST", f"/v1/jobs/{live.anchors[0]}/steps", body)
    assert status >= 400


@LIVE
@given(events=st.one_of(JUNK, st.lists(st.one_of(JUNK, st.fixed_dictionaries({"event": st.sampled_from(
    ["ended", "started", "task_ended", "stats", "bogus"])}, optional={
        "job_id": st.one_of(ODD_NUMBER, ODD_TEXT), "state": JUNK, "exit_code": JUNK, "step_id": JUNK,
        "rank": JUNK, "time": JUNK, "pid": JUNK, "cpu_load": JUNK})), max_size=3)))
def test_fuzzed_node_daemon_events_never_500(live, events):
    # events for jobs that are not running on that node are ignored; the anchors are pending
    status, _ = send_checked(live, "POST", "/v1/noded/n1/events", {"events": events})


QUERY_KEYS = ["ids", "users", "partitions", "states", "names", "all", "fields", "start", "end", "minutes"]


@LIVE
@given(path=st.sampled_from(["/v1/jobs", "/v1/accounting/jobs", "/v1/nodes", "/v1/partitions", "/v1/ping",
                             "/v1/config", "/openapi.json", "/v1/noded/n1/commands"]),
       query=st.dictionaries(st.sampled_from(QUERY_KEYS + ["bogus", "epoch", "after", "wait"]),
                             st.one_of(ODD_TEXT, st.sampled_from(["1", "0", "R,PD", "x,,y", "n[1-", "n[1-2]",
                                                                  "nan", "inf", "-1e400", "1e400"])),
                             max_size=3))
def test_fuzzed_query_strings_never_500(live, path, query):
    from urllib.parse import urlencode
    if path.endswith("/commands"):
        query["wait"] = "0"  # never hold a poll open in the fuzz
    url = path + ("?" + urlencode(query) if query else "")
    send_checked(live, "GET", url)


# -- regressions found by the fuzzers above ---------------------------------------------------
@pytest.mark.parametrize("method,url,body", [
    ("POST", "/v1/jobs", b"[" * 100000),                                    # RecursionError in json
    ("POST", "/v1/jobs/{anchor}/update", {"nice": None}),                   # int(None)
    ("POST", "/v1/jobs/{anchor}/update", {"name": "renamed", "priority": "high"}),  # half-applied before
    ("POST", "/v1/jobs/{anchor}/update", {"time_limit": 2**80}),            # end time beyond any date
    ("POST", "/v1/jobs/{anchor}/update", {"exclude": "n[1-"}),
    ("POST", "/v1/jobs/{anchor}/update", {}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "begin_time": float("nan")}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "time_limit": 10**12}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "nice": 2**40}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "name": "a\0b"}),  # launch would fail unseen
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "environment": {"": "x"}}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "environment": {"A=B": "x"}}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "environment": {"A": "x\0y"}}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n\0", "hold": True}),
    ("GET", "/v1/nodes?names=n%5B1-", None),                               # found by schemathesis
    ("POST", "/v1/nodes/update", {"names": ""}),                            # hostlist ValueError
    ("POST", "/v1/nodes/update", {"names": ["n[1-"], "state": "DRAIN", "reason": "x"}),
    ("POST", "/v1/nodes/update", {"names": ["n1"], "state": 5}),
    ("POST", "/v1/noded/n1/events", {"events": [{"event": "ended"}]}),      # KeyError job_id
    ("POST", "/v1/noded/n1/events", {"events": [{"event": "ended", "job_id": 1, "state": "RUNNING"}]}),
    ("POST", "/v1/noded/n1/events", {"events": [{"event": "task_ended", "job_id": 1, "step_id": 0,
                                                 "rank": 0, "exit_code": "x"}]}),
])
def test_found_by_fuzzing_is_a_clean_400(live, method, url, body):
    status, answer = send_checked(live, method, url.format(anchor=live.anchors[0]), body)
    assert status == 400, answer


def test_job_update_refused_half_way_changes_nothing(live):
    """A running job: the comment is fine, the partition change is refused (409): neither applies."""
    job_id = live.sbatch("--wrap", "sleep 30", "-o", "/dev/null")
    live.wait_state(job_id, "RUNNING")
    try:
        status, answer = send_checked(live, "POST", f"/v1/jobs/{job_id}/update",
                                      {"comment": "should not stick", "partition": "short"})
        assert status == 409, answer
        status, shown = live.api.request("GET", f"/v1/jobs/{job_id}")
        assert shown["job"]["comment"] == "" and shown["job"]["partition"] == "debug"
    finally:
        live.run("scancel", str(job_id))
        wait_final(live, job_id)


@pytest.fixture(scope="module")
def stranger(live):
    """The API as 'nobody' (a plain user) over TCP: root's anchor jobs are not theirs."""
    if os.getuid() != 0:
        pytest.skip("root mints a token for another user")
    r = live.run("scontrol", "token", "username=nobody")
    assert r.returncode == 0, r.stderr
    return RawAPI(None, port=live.port, token=r.stdout.strip().partition("=")[2])


@LIVE
@given(which=st.integers(0, 2),
       action=st.sampled_from(["update", "hold", "uhold", "release", "requeue", "requeuehold", "suspend", "resume",
                               "top", "steps", "complete", "cancel", "signal"]),
       fields=st.dictionaries(st.sampled_from(UPDATE_KEYS), JUNK, max_size=3))
def test_a_plain_user_changes_nothing_of_another_users_jobs(live, stranger, which, action, fields):
    """Whatever 'nobody' sends about root's jobs: never a 5xx, and the jobs and nodes stay exactly as they were."""
    job_id = live.anchors[which]
    before = snapshot(live.api)
    if action in ("cancel", "signal"):
        body = {"ids": [str(job_id)]} if action == "cancel" else {"ids": [str(job_id)], "signal": "KILL"}
        status, answer = stranger.request("POST", "/v1/jobs/cancel", body)
        assert status == 200 and answer["denied"], answer
    else:
        status, answer = stranger.request("POST", f"/v1/jobs/{job_id}/{action}", fields)
        check_answer("POST", action, fields, status, answer)
        assert 400 <= status < 500, (action, fields, status, answer)
    after = snapshot(live.api)
    steady = {k: v for k, v in before[0].items() if v["state"] in FINAL_STATES or v.get("held")}
    assert {k: after[0][k] for k in steady} == steady and after[1] == before[1], \
        f"{action} {_short(fields)} by nobody changed state"


def _file_name(text):
    """An output name that stays inside the job's directory (the fuzz runs as root)."""
    name = text.replace("/", "_").replace("\0", "_").replace("..", "_")
    return name if name.strip(".") else "x"


@st.composite
def runnable_submissions(draw, base):
    workdir = os.path.join(base, draw(st.sampled_from(["", "a b", "missing/deeper", "é١"])))
    sub = {
        "script": "#!/bin/sh\n" + draw(st.sampled_from(["true", "exit 3", 'echo "$SLURM_JOB_NAME"', "kill -9 $$",
                                                        "sleep 0.2", "cat", "env"])) + "\n",
        "name": draw(ODD_TEXT), "workdir": workdir, "time_limit": 1, "hold": False, "requeue": False,
        "environment": draw(st.dictionaries(st.one_of(st.sampled_from(["", "=", "A=B", "PATH", "SLURM_JOB_ID",
                                                                      "LD_PRELOAD", "a\nb"]), ODD_TEXT),
                                            ODD_TEXT, max_size=3)),
        "stdout": draw(st.one_of(st.just(""), st.just("%j-%x-%N-%u-%a.out"), ODD_TEXT.map(_file_name))),
        "stderr": draw(st.one_of(st.just(""), ODD_TEXT.map(_file_name))),
        "stdin": draw(st.sampled_from(["", "/dev/null", os.path.join(base, "nonexistent")])),
        "signal": draw(st.sampled_from(["", "USR1@1", "B:TERM@5"])),
        "open_mode": draw(st.sampled_from(["", "append", "truncate"])),
        "export": draw(st.sampled_from(["ALL", "NONE", "ALL,X=1"])),
        "comment": draw(ODD_TEXT), "nice": draw(st.integers(-5, 5)),
    }
    return sub


@settings(max_examples=max(5, EXAMPLES // 4), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_jobs_that_run_end_in_a_final_state_and_the_node_daemons_survive(live, data):
    """Odd names, environments, output names and working directories reach the node daemon for real."""
    base = live.path("runfuzz")
    os.makedirs(base, exist_ok=True)
    body = data.draw(runnable_submissions(base))
    status, answer = send_checked(live, "POST", "/v1/jobs", body)
    event("accepted" if status == 201 else f"rejected {status}")
    if status != 201:
        return
    job_id = answer["job_id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        status, shown = live.api.request("GET", f"/v1/jobs/{job_id}")
        if shown["job"]["state"] in FINAL_STATES:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"job {job_id} never ended: {shown['job']['state']} {shown['job']['reason']}")
    for n in live.run("sinfo", "-h", "-N", "-o", "%t").stdout.split():
        assert n in ("idle", "mix", "alloc"), n


def test_controller_and_nodes_survive_the_fuzz_and_accepted_jobs_print(live):
    """Runs last in this module: everything still serves and every accepted job renders."""
    status, ping = live.api.request("GET", "/v1/ping")
    assert status == 200 and ping["cluster_name"] == "testcluster"
    live.wait_nodes_up()
    for job_id in live.anchors + getattr(live, "fuzz_accepted", [])[:20]:
        for argv in (("scontrol", "show", "job", str(job_id)), ("sacct", "-j", str(job_id), "-P"),
                     ("squeue", "-j", str(job_id), "-t", "all")):
            r = live.run(*argv)
            assert r.returncode == 0, (argv, r.stderr)
            assert "internal error" not in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
    # and a fresh job still runs end to end
    job_id = live.sbatch("--wrap", "echo alive", "-o", live.path("alive.out"))
    live.wait_state(job_id, "COMPLETED")
    with open(live.path("alive.out")) as f:
        assert f.read() == "alive\n"
    assert math.isfinite(ping["time"])


@pytest.mark.parametrize("action", ["hold", "uhold", "requeue", "suspend", "update"])
def test_action_refused_for_one_array_task_changes_no_other_task(live, action):
    """An array with a running task and pending ones: a refusal (409) leaves every task as it was."""
    job_id = live.sbatch("--array=0-2%1", "-o", "/dev/null", "--wrap", "sleep 30")
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            status, shown = live.api.request("GET", f"/v1/jobs/{job_id}")
            if any(j["state"] == "RUNNING" for j in shown["jobs"]):
                break
            time.sleep(0.05)
        body = {"partition": "short"} if action == "update" else {}
        _, before = live.api.request("GET", f"/v1/jobs/{job_id}")  # the live records, not the list's cache
        status, answer = send_checked(live, "POST", f"/v1/jobs/{job_id}/{action}", body)
        assert status == 409, answer
        _, after = live.api.request("GET", f"/v1/jobs/{job_id}")
        assert after == before
    finally:
        live.run("scancel", str(job_id))
        wait_final(live, job_id)


@pytest.mark.parametrize("method,url,body", [
    # str.isdigit() is true for '²', int('²') is a ValueError: each of these was a 500
    ("POST", "/v1/jobs/cancel", {"ids": ["²"]}),
    ("POST", "/v1/jobs/cancel", {"ids": ["²_1"]}),
    ("GET", "/v1/accounting/jobs?ids=%C2%B2", None),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "gres": "gpu:²"}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "dependency": "afterok:²"}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "user": "²"}),
])
def test_other_scripts_digits_are_clean_errors(live, method, url, body):
    status, answer = send_checked(live, method, url, body)
    assert 400 <= status < 500 or (status == 200 and answer.get("not_found")), answer


@pytest.mark.parametrize("method,url,body", [
    # found by schemathesis: pwd.getpwnam() raises ValueError (not KeyError) for a NUL in the name
    ("POST", "/v1/tokens", {"username": "x\0y", "lifespan": 60}),
    ("POST", "/v1/jobs", {"script": "#!/bin/sh\n", "hold": True, "user": "x\0y"}),
])
def test_names_with_nul_are_clean_errors(live, method, url, body):
    status, answer = send_checked(live, method, url, body)
    assert status == 400, answer
