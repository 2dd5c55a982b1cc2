"""Bulk submission through the client: many jobs, one request, one commit, each checked alone."""

import os

import pytest

from batch_backend.client import APIError, Client


def _sub(cluster, cmd, **extra):
    sub = {"script": f"#!/bin/sh\n{cmd}\n", "name": "bulk", "workdir": cluster.workdir,
           "stdout": os.path.join(cluster.workdir, "bulk-%j.out"), "environment": {"PATH": "/usr/bin:/bin"}}
    sub.update(extra)
    return sub


def test_bulk_submission_accepts_the_good_and_refuses_the_bad(cluster):
    subs = [_sub(cluster, f"echo bulk {i}") for i in range(20)]
    subs.insert(7, _sub(cluster, "true", partition="nosuchpart"))
    with Client(cluster.socket) as client:
        results = client.submit_many(subs)
    assert len(results) == 21
    bad = results.pop(7)
    assert "job_id" not in bad
    assert bad["error"]["code"] and "partition" in bad["error"]["message"].lower()
    ids = [r["job_id"] for r in results]
    assert ids == list(range(ids[0], ids[0] + 20)), "accepted jobs get consecutive ids, in order"
    for i, job_id in enumerate(ids):
        cluster.wait_state(job_id, "COMPLETED")
        with open(os.path.join(cluster.workdir, f"bulk-{job_id}.out")) as f:
            assert f.read() == f"bulk {i}\n"


def test_bulk_retry_with_the_same_tokens_creates_nothing_twice(cluster):
    subs = [_sub(cluster, "true", hold=True, submit_token=f"bulk-retry-{os.getpid()}-{i}") for i in range(5)]
    with Client(cluster.socket) as client:
        first = client.submit_many(subs)
        again = client.submit_many(subs)
        assert first == again
        ids = [str(r["job_id"]) for r in first]
        assert len(client.jobs(ids=ids, fields=["job_id"])) == 5
        client.cancel(ids)


@pytest.mark.parametrize("body, message", [
    ({"jobs": []}, "non-empty list"),
    ({"jobs": "sbatch"}, "non-empty list"),
    ({"jobs": [1, 2]}, "non-empty list"),
    ({}, "non-empty list"),
])
def test_malformed_bulk_request_is_a_400_and_changes_nothing(cluster, body, message):
    with Client(cluster.socket) as client:
        before = client.jobs(fields=["job_id", "state"])
        with pytest.raises(APIError) as err:
            client.request("POST", "/jobs/batch", body)
        assert err.value.status == 400 and message in str(err.value)
        assert client.jobs(fields=["job_id", "state"]) == before
