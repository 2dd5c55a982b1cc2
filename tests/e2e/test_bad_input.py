"""Every bad input: one Slurm-style line on stderr, non-zero exit, nothing lost."""

import http.client
import json
import socket

import pytest


def assert_clean_error(r, expected_fragment, rc=None):
    assert r.returncode != 0 if rc is None else r.returncode == rc
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert expected_fragment in r.stderr, r.stderr


def test_script_without_shebang(cluster):
    with open(cluster.path("noshebang.sh"), "w") as f:
        f.write("echo hi\n")
    r = cluster.run("sbatch", "noshebang.sh")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("sbatch: error: This does not look like a batch script.  The first\n"
                        "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
                        "sbatch: error: For instance: #!/bin/sh\n")


def test_unknown_partition(cluster):
    r = cluster.run("sbatch", "-p", "nosuch", "--wrap=true")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("sbatch: error: invalid partition specified: nosuch\n"
                        "sbatch: error: Batch job submission failed: Invalid partition name specified\n")


@pytest.mark.parametrize("spec", ["abc", "1:2:3:4", "-5", "1-2-3"])
def test_invalid_time_spec(cluster, spec):
    assert_clean_error(cluster.run("sbatch", f"--time={spec}", "--wrap=true"), "sbatch: error:", rc=1)


def test_more_cpus_than_any_node(cluster):
    r = cluster.run("sbatch", "-c", "64", "--wrap=true")
    assert_clean_error(r, "Requested node configuration is not available", rc=1)


def test_more_gpus_than_any_node(cluster):
    r = cluster.run("sbatch", "-p", "gpu", "--gres=gpu:3", "--wrap=true")
    assert_clean_error(r, "Requested node configuration is not available", rc=1)


def test_unparseable_directive(cluster):
    with open(cluster.path("baddirective.sh"), "w") as f:
        f.write("#!/bin/sh\n#SBATCH --no-such-option=1\necho hi\n")
    assert_clean_error(cluster.run("sbatch", "baddirective.sh"), "sbatch: error:", rc=1)


def test_bad_memory_directive(cluster):
    with open(cluster.path("badmem.sh"), "w") as f:
        f.write("#!/bin/sh\n#SBATCH --mem=lots\necho hi\n")
    assert_clean_error(cluster.run("sbatch", "badmem.sh"), "sbatch: error:", rc=1)


def test_missing_script(cluster):
    assert_clean_error(cluster.run("sbatch", "does-not-exist.sh"), "Unable to open file does-not-exist.sh", rc=1)


def test_unknown_job_for_scontrol_show_job(cluster):
    r = cluster.run("scontrol", "show", "job", "999999")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "slurm_load_jobs error: Invalid job id specified\n"


def test_unknown_job_for_squeue(cluster):
    r = cluster.run("squeue", "-h", "-j", "999999", "-o", "%T %B")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "slurm_load_jobs error: Invalid job id specified\n"


def test_scancel_unknown_job_is_rc0(cluster):
    r = cluster.run("scancel", "999999")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_controller_unreachable_messages(cluster):
    env = {"BATCHHUB_SOCKET": cluster.path("no-controller.sock")}
    r = cluster.run("squeue", env=env)
    assert r.returncode == 1
    assert r.stderr == "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    r = cluster.run("sbatch", "--wrap=true", env=env)
    assert r.returncode == 1
    assert r.stderr == "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"
    r = cluster.run("scancel", "4057", env=env)
    assert r.returncode != 0
    assert r.stderr == "scancel: error: Kill job error on job id 4057: Unable to contact slurm controller (connect failure)\n"


def _raw_request(sock_path, method, path, body):
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(sock_path)
    c = Conn("localhost")
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read())


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b'{"script": 5}', b'{"script": "#!/bin/sh\\n", "num_tasks": -3}',
                                  b'{"script": "#!/bin/sh\\n", "bogus": 1}', b"\xff\xfe"])
def test_malformed_api_request_is_400_and_changes_nothing(cluster, body):
    before = cluster.run("sacct", "-P", "-n", "-X", "-S", "2000-01-01", "-o", "JobID").stdout
    status, answer = _raw_request(cluster.socket, "POST", "/v1/jobs", body)
    assert status == 400
    assert answer["error"]["message"]
    after = cluster.run("sacct", "-P", "-n", "-X", "-S", "2000-01-01", "-o", "JobID").stdout
    assert before == after


def test_openapi_document_is_served(cluster):
    status, doc = _raw_request(cluster.socket, "GET", "/openapi.json", None)
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert "/v1/jobs" in doc["paths"] and "Job" in doc["components"]["schemas"]

