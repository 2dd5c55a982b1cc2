"""sbatch end to end: real controller, real node daemons, the installed command."""

import json
import os
import re
import time


def test_submit_prints_slurm_line_and_job_runs(cluster):
    r = cluster.run("sbatch", "--wrap=echo hello from $SLURM_JOB_ID", "-o", "hello-%j.out")
    assert r.returncode == 0 and r.stderr == ""
    m = re.fullmatch(r"Submitted batch job (\d+)\n", r.stdout)
    assert m, r.stdout
    job_id = m.group(1)
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path(f"hello-{job_id}.out")) as f:
        assert f.read() == f"hello from {job_id}\n"


def test_parsable_prints_only_the_id(cluster):
    r = cluster.run("sbatch", "--parsable", "--wrap=true")
    assert re.fullmatch(r"\d+\n", r.stdout) and r.stderr == "" and r.returncode == 0


def test_script_from_stdin_with_directives(cluster):
    script = "#!/bin/bash\n\n#SBATCH -J stdinjob\n#SBATCH --output=stdin-%x-%j.log\n# a comment\necho from-stdin\n"
    job_id = cluster.sbatch(input=script)
    cluster.wait_state(job_id, "COMPLETED")
    assert cluster.job(job_id)["JobName"] == "stdinjob"
    with open(cluster.path(f"stdin-stdinjob-{job_id}.log")) as f:
        assert f.read() == "from-stdin\n"


def test_command_line_overrides_directives(cluster):
    path = cluster.path("override.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n#SBATCH -J fromdirective\n#SBATCH -o never.out\necho $SLURM_JOB_NAME\n")
    job_id = cluster.sbatch("-J", "fromcli", "-o", "override.out", "override.sh")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("override.out")) as f:
        assert f.read() == "fromcli\n"
    assert not os.path.exists(cluster.path("never.out"))


def test_script_is_snapshotted_at_submit(cluster):
    path = cluster.path("snap.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho original\n")
    job_id = cluster.sbatch("--hold", "-o", "snap.out", "snap.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho edited\n")
    os.unlink(path)
    assert cluster.run("scontrol", "release", str(job_id)).returncode == 0
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("snap.out")) as f:
        assert f.read() == "original\n"


def test_script_arguments_are_passed(cluster):
    with open(cluster.path("args.sh"), "w") as f:
        f.write('#!/bin/sh\necho "$#:$1:$2"\n')
    job_id = cluster.sbatch("-o", "args.out", "args.sh", "one two", "three")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("args.out")) as f:
        assert f.read() == "2:one two:three\n"


def test_exit_codes_become_states(cluster):
    ok = cluster.sbatch("--wrap=exit 0")
    bad = cluster.sbatch("--wrap=exit 3")
    cluster.wait_state(ok, "COMPLETED")
    cluster.wait_state(bad, "FAILED")
    assert cluster.acct(ok, "JobID,State,ExitCode")[0] == [str(ok), "COMPLETED", "0:0"]
    assert cluster.acct(bad, "JobID,State,ExitCode")[0] == [str(bad), "FAILED", "3:0"]


def test_wait_returns_the_job_exit_code(cluster):
    r = cluster.run("sbatch", "--wait", "--wrap=exit 7", timeout=60)
    assert r.returncode == 7
    assert r.stdout.startswith("Submitted batch job ")
    r = cluster.run("sbatch", "--wait", "--wrap=true", timeout=60)
    assert r.returncode == 0


def test_output_patterns_and_missing_directories(cluster):
    user = cluster.run("id", "-un").stdout.strip()
    job_id = cluster.sbatch("-J", "pat", "-o", "deep/new/dir/%x-%j-%u-%N.out", "-e", "errs/%j.err",
                            "--wrap=echo out; echo err >&2")
    cluster.wait_state(job_id, "COMPLETED")
    node = cluster.job(job_id)["NodeList"]
    with open(cluster.path(f"deep/new/dir/pat-{job_id}-{user}-{node}.out")) as f:
        assert f.read() == "out\n"
    with open(cluster.path(f"errs/{job_id}.err")) as f:
        assert f.read() == "err\n"


def test_default_output_file_joins_stderr(cluster):
    job_id = cluster.sbatch("--wrap=echo a; echo b >&2")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path(f"slurm-{job_id}.out")) as f:
        assert sorted(f.read().split()) == ["a", "b"]


def test_open_mode_append(cluster):
    with open(cluster.path("append.out"), "w") as f:
        f.write("before\n")
    job_id = cluster.sbatch("--open-mode=append", "-o", "append.out", "--wrap=echo after")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("append.out")) as f:
        assert f.read() == "before\nafter\n"


def test_chdir_sets_working_directory(cluster):
    d = cluster.path("elsewhere")
    os.makedirs(d, exist_ok=True)
    job_id = cluster.sbatch("-D", d, "-o", "pwd.out", "--wrap=pwd; echo $SLURM_SUBMIT_DIR")
    cluster.wait_state(job_id, "COMPLETED")
    with open(os.path.join(d, "pwd.out")) as f:
        assert f.read().split() == [d, cluster.workdir]


def test_job_environment_is_slurms(cluster):
    job_id = cluster.sbatch("-J", "envjob", "-N", "2", "-n", "3", "-c", "1", "--mem=100M", "-p", "debug",
                            "-o", "env.out", "--wrap=env -0 > env.bin")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("env.bin"), "rb") as f:
        env = dict(item.split("=", 1) for item in f.read().decode().split("\0") if "=" in item)
    job = cluster.job(job_id)
    assert env["SLURM_JOB_ID"] == env["SLURM_JOBID"] == str(job_id)
    assert env["SLURM_JOB_NAME"] == "envjob"
    assert env["SLURM_JOB_NUM_NODES"] == env["SLURM_NNODES"] == "2"
    assert env["SLURM_NTASKS"] == env["SLURM_NPROCS"] == "3"
    assert env["SLURM_JOB_NODELIST"] == env["SLURM_NODELIST"] == job["NodeList"]
    assert env["SLURM_TASKS_PER_NODE"] in ("2,1", "1,2", "1(x2)")
    assert env["SLURM_JOB_PARTITION"] == "debug"
    assert env["SLURM_SUBMIT_DIR"] == cluster.workdir
    assert env["SLURM_MEM_PER_NODE"] == "100"
    assert env["SLURMD_NODENAME"] == job["BatchHost"]
    assert env["SLURM_PROCID"] == env["SLURM_LOCALID"] == env["SLURM_NODEID"] == "0"
    assert env["SLURM_CLUSTER_NAME"] == "testcluster"
    assert env["ENVIRONMENT"] == "BATCH"
    assert int(env["SLURM_CPUS_ON_NODE"]) >= 1


def test_export_all_is_byte_exact(cluster):
    value = json.dumps({"key": "a b", "quote": "\"'", "nl": "x\ny"})
    job_id = cluster.sbatch("-o", "/dev/null", "--wrap=printf %s \"$IPP_CONNECTION_INFO\" > ipp.json",
                            env={"IPP_CONNECTION_INFO": value})
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("ipp.json")) as f:
        assert f.read() == value


def test_export_list_and_none(cluster):
    env = {"FOO": "bar", "BAR": "baz"}
    j1 = cluster.sbatch("--export=FOO,X=1", "-o", "/dev/null",
                        "--wrap=echo \"$FOO|$BAR|$X|$SLURM_EXPORT_ENV|$(/usr/bin/env | grep -c ^PATH=)\" > exp1.out",
                        env=env)
    j2 = cluster.sbatch("--export=NONE", "-o", "/dev/null",
                        "--wrap=echo \"${FOO:-unset}|$SLURM_JOB_ID\" > exp2.out", env=env)
    cluster.wait_state(j1, "COMPLETED")
    cluster.wait_state(j2, "COMPLETED")
    with open(cluster.path("exp1.out")) as f:
        assert f.read() == "bar||1|FOO,X=1|0\n"  # PATH not exported: only what was listed
    with open(cluster.path("exp2.out")) as f:
        assert f.read() == f"unset|{j2}\n"


def test_gpu_gres_sets_cuda_visible_devices(cluster):
    job_id = cluster.sbatch("-p", "gpu", "--gres=gpu:2", "-o", "gpu.out", "--wrap=echo $CUDA_VISIBLE_DEVICES")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("gpu.out")) as f:
        assert f.read() == "0,1\n"


def test_constraint_selects_nodes_with_the_feature(cluster):
    job_id = cluster.sbatch("-C", "gpu", "-o", "/dev/null", "--wrap=true")
    cluster.wait_state(job_id, "COMPLETED")
    assert cluster.job(job_id)["NodeList"] == "n4"


def test_nodelist_and_exclude(cluster):
    j1 = cluster.sbatch("-w", "n3", "-o", "/dev/null", "--wrap=true")
    j2 = cluster.sbatch("-x", "n[1-3]", "-o", "/dev/null", "--wrap=true")
    cluster.wait_state(j1, "COMPLETED")
    cluster.wait_state(j2, "COMPLETED")
    assert cluster.job(j1)["NodeList"] == "n3"
    assert cluster.job(j2)["NodeList"] == "n4"


def test_multinode_job_gets_consecutive_nodes(cluster):
    job_id = cluster.sbatch("-N", "2", "--ntasks-per-node=2", "-o", "mn.out",
                            "--wrap=echo $SLURM_NTASKS $SLURM_TASKS_PER_NODE $SLURM_JOB_NUM_NODES")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("mn.out")) as f:
        assert f.read() == "4 2(x2) 2\n"


def test_cpu_binding_by_affinity(cluster):
    job_id = cluster.sbatch("-c", "1", "-o", "aff.out",
                            "--wrap=python3 -c 'import os; print(len(os.sched_getaffinity(0)))'")
    cluster.wait_state(job_id, "COMPLETED")
    with open(cluster.path("aff.out")) as f:
        assert f.read() == "1\n"


def test_dependency_afterok_waits_for_success(cluster):
    first = cluster.sbatch("--wrap=sleep 1", "-o", "/dev/null")
    second = cluster.sbatch(f"--dependency=afterok:{first}", "-o", "/dev/null", "--wrap=true")
    r = cluster.run("squeue", "-h", "-j", str(second), "-o", "%T %R")
    assert r.stdout.strip() in ("PENDING (Dependency)", "")  # "" only if everything was very fast
    cluster.wait_state(second, "COMPLETED")
    third = cluster.sbatch("--dependency=afterok:" + str(cluster.sbatch("--wrap=exit 1", "-o", "/dev/null")),
                           "-o", "/dev/null", "--wrap=true")
    deadline = time.time() + 20
    while time.time() < deadline:
        r = cluster.run("squeue", "-h", "-j", str(third), "-o", "%R")
        if r.stdout.strip() == "(DependencyNeverSatisfied)":
            break
        time.sleep(0.1)
    assert r.stdout.strip() == "(DependencyNeverSatisfied)"
    cluster.run("scancel", str(third))


def test_array_job_runs_every_task_with_its_index(cluster):
    r = cluster.run("sbatch", "--array=0-3%2", "-o", "arr-%A_%a.out", "--wrap=echo $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_JOB_ID")
    assert r.returncode == 0, r.stderr
    array_id = int(r.stdout.split()[-1])
    deadline = time.time() + 30
    while time.time() < deadline:
        rows = cluster.acct(array_id, "JobID,State")
        job_rows = [row for row in rows if "." not in row[0]]
        if len(job_rows) == 4 and all(row[1] == "COMPLETED" for row in job_rows):
            break
        time.sleep(0.1)
    assert sorted(row[0] for row in job_rows) == [f"{array_id}_{i}" for i in range(4)]
    for i in range(4):
        with open(cluster.path(f"arr-{array_id}_{i}.out")) as f:
            assert f.read() == f"{i} {array_id}\n"
