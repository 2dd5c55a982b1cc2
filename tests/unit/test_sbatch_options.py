"""sbatch argv/script/environment -> submission dict, with the clients' real headers."""

import os

import pytest

from batch_backend.cli.sbatch_options import (
    NOSHEBANG_LINES, UsageError, build_submission, compute_environment, expand_array_spec,
    parse_directives,
)

BS_SCRIPT = """#!/bin/bash
#SBATCH --output=/home/alice/jupyterhub_slurmspawner_%j.log
#SBATCH --chdir=/home/alice
#SBATCH --export=JUPYTERHUB_API_TOKEN,JUPYTERHUB_API_URL,USER,HOME,SHELL
#SBATCH --get-user-env=L
srun batchspawner-singleuser jupyterhub-singleuser
"""

DJ_SCRIPT = """#!/usr/bin/env bash

#SBATCH -J dask-worker
#SBATCH -e /shared/logs/dask-worker-%J.err
#SBATCH -n 1
#SBATCH -t 00:30:00
python -m distributed.cli.dask_worker tcp://10.0.0.2:43963 --nthreads 1
"""

SI_SCRIPT = """#!/bin/bash

# Parameters
#SBATCH --array=0-3%4
#SBATCH --open-mode=append
#SBATCH --output=/shared/sm/%A_%a_0_log.out
#SBATCH --signal=USR2@90
#SBATCH --time=5

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output /shared/sm/%A_%a_%t_log.out --error /shared/sm/%A_%a_%t_log.err python -u -m submitit.core._submit /shared/sm
"""

IPP_SCRIPT = """#!/bin/sh
#SBATCH --ntasks=3
#SBATCH --output=/home/alice/.ipython/profile_default/log/ipengine-%j.out
#SBATCH --export=ALL
#SBATCH --job-name=ipengine-1700000000-abcd
srun python -m ipyparallel.engine --profile-dir=/home/alice/.ipython/profile_default
"""

ENV = {"USER": "alice", "HOME": "/home/alice", "SHELL": "/bin/bash", "FOO": "bar",
       "JUPYTERHUB_API_TOKEN": "tok", "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
       "IPP_CONNECTION_INFO": '{"a": [1, 2]}', "SLURM_CONF": "/etc/slurm/slurm.conf"}


def files(mapping):
    """A read_file for build_submission backed by a dict path -> bytes."""
    def read(path):
        try:
            return mapping[path]
        except KeyError:
            raise FileNotFoundError(path) from None
    return read


def submit(argv, script=None, env=None, cwd="/home/alice", **kw):
    return build_submission(argv, stdin_text=script, env=ENV if env is None else env,
                            cwd=cwd, **kw)


# --- directives -----------------------------------------------------------------

def test_directives_of_batchspawner_header():
    assert parse_directives(BS_SCRIPT) == [
        "--output=/home/alice/jupyterhub_slurmspawner_%j.log", "--chdir=/home/alice",
        "--export=JUPYTERHUB_API_TOKEN,JUPYTERHUB_API_URL,USER,HOME,SHELL",
        "--get-user-env=L",
    ]


def test_directives_continue_past_blank_lines_and_comments():
    assert parse_directives(SI_SCRIPT) == [
        "--array=0-3%4", "--open-mode=append", "--output=/shared/sm/%A_%a_0_log.out",
        "--signal=USR2@90", "--time=5",
    ]
    assert parse_directives(DJ_SCRIPT)[:2] == ["-J", "dask-worker"]


def test_directives_after_first_command_are_ignored():
    script = "#!/bin/sh\n#SBATCH -n 2\necho hi\n#SBATCH -n 4\n"
    assert parse_directives(script) == ["-n", "2"]


def test_directive_quoting_and_trailing_comments():
    script = ("#!/bin/sh\n"
              "#SBATCH -n 2  # two tasks\n"
              "#SBATCH --job-name='my job' --comment=\"a b\"\n"
              "#SBATCH --output=out\\ file.log\n"
              "#SBATCH--ignored\n"
              "  #SBATCH --also-ignored-leading-space\n")
    assert parse_directives(script) == [
        "-n", "2", "--job-name=my job", "--comment=a b", "--output=out file.log"]


def test_noshebang_script_is_rejected_with_slurm_text():
    with pytest.raises(UsageError) as info:
        parse_directives("echo hello\n")
    assert info.value.lines == [
        "This does not look like a batch script.  The first",
        "line must start with #! followed by the path to an interpreter.",
        "For instance: #!/bin/sh",
    ]
    assert info.value.lines == NOSHEBANG_LINES


def test_noshebang_file_fails_submission():
    with pytest.raises(UsageError) as info:
        submit(["noshebang.sh"], read_file=files({"/home/alice/noshebang.sh": b"sleep 1\n"}))
    assert info.value.lines == NOSHEBANG_LINES


# --- client submissions ---------------------------------------------------------------

def test_batchspawner_submission_on_stdin():
    sub, flags = submit(["--parsable"], script=BS_SCRIPT, cwd="/tmp")
    assert flags["parsable"] is True and flags["wait"] is False and flags["cluster"] is None
    assert sub["script"] == BS_SCRIPT
    assert sub["name"] == "sbatch"
    assert sub["command"] == ""
    assert sub["stdout"] == "/home/alice/jupyterhub_slurmspawner_%j.log"
    assert sub["workdir"] == "/home/alice"
    assert sub["submit_dir"] == "/tmp"
    assert sub["get_user_env"] is True
    assert sub["export"] == "JUPYTERHUB_API_TOKEN,JUPYTERHUB_API_URL,USER,HOME,SHELL"
    # Only the listed names (those set), plus the submitter's SLURM_* variables.
    assert sub["environment"] == {
        "JUPYTERHUB_API_TOKEN": "tok", "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "USER": "alice", "HOME": "/home/alice", "SHELL": "/bin/bash",
        "SLURM_CONF": "/etc/slurm/slurm.conf"}
    assert sub["submit_line"] == "sbatch --parsable"


def test_dask_jobqueue_submission_from_file():
    sub, _ = submit(["/tmp/tmpab12.sh"], read_file=files({"/tmp/tmpab12.sh": DJ_SCRIPT.encode()}))
    assert sub["name"] == "dask-worker"
    assert sub["stderr"] == "/shared/logs/dask-worker-%J.err"
    assert sub["stdout"] == ""
    assert sub["num_tasks"] == 1
    assert sub["time_limit"] == 30
    assert sub["command"] == "/tmp/tmpab12.sh"
    assert sub["environment"] == ENV  # default --export=ALL
    assert sub["export"] == "ALL"


def test_submitit_array_submission():
    sub, _ = submit(["/shared/sm/submission_file.sh"],
                    read_file=files({"/shared/sm/submission_file.sh": SI_SCRIPT.encode()}))
    assert sub["array"] == "0-3%4"
    assert sub["open_mode"] == "append"
    assert sub["signal"] == "USR2@90"
    assert sub["time_limit"] == 5
    assert sub["stdout"] == "/shared/sm/%A_%a_0_log.out"
    assert sub["name"] == "submission_file.sh"


def test_ipyparallel_relative_script_path():
    sub, _ = submit(["./slurm_engine.sbatch"],
                    read_file=files({"/home/alice/slurm_engine.sbatch": IPP_SCRIPT.encode()}))
    assert sub["num_tasks"] == 3
    assert sub["name"] == "ipengine-1700000000-abcd"
    assert sub["command"] == "/home/alice/slurm_engine.sbatch"
    assert sub["name"] != "slurm_engine.sbatch"
    assert sub["environment"]["IPP_CONNECTION_INFO"] == '{"a": [1, 2]}'


# --- script sources -----------------------------------------------------------------

def test_wrap_builds_sh_script_named_wrap():
    sub, _ = submit(["--parsable", "--wrap=sleep 30", "-o", "/dev/null"])
    assert sub["script"] == "#!/bin/sh\n# This script was created by sbatch --wrap.\n\nsleep 30\n"
    assert sub["name"] == "wrap"
    assert sub["command"] == ""
    assert sub["stdout"] == "/dev/null"
    assert sub["submit_line"] == "sbatch --parsable --wrap=sleep 30 -o /dev/null"


def test_wrapped_command_is_not_read_as_directives():
    sub, _ = submit(["--wrap=#SBATCH -n 5"])
    assert sub["num_tasks"] is None


def test_wrap_refuses_script_arguments():
    with pytest.raises(UsageError) as info:
        submit(["--wrap", "true", "extra"])
    assert info.value.lines == ["Script arguments not permitted with --wrap option"]


def test_stdin_script_is_default_name_sbatch():
    sub, _ = submit([], script="#!/bin/sh\ntrue\n")
    assert sub["name"] == "sbatch" and sub["script"] == "#!/bin/sh\ntrue\n"


def test_script_file_is_snapshotted(tmp_path):
    path = tmp_path / "job.sh"
    path.write_bytes(b"#!/bin/sh\n#SBATCH -J snap\necho one\n")
    sub, _ = build_submission(["job.sh", "arg1", "--not-an-option"], env={}, cwd=str(tmp_path))
    path.write_bytes(b"#!/bin/sh\necho two\n")
    path.unlink()
    assert sub["script"] == "#!/bin/sh\n#SBATCH -J snap\necho one\n"
    assert sub["script_args"] == ["arg1", "--not-an-option"]
    assert sub["command"] == str(path)
    assert sub["name"] == "snap"


def test_missing_script_file():
    with pytest.raises(UsageError) as info:
        submit(["nosuch.sh"], read_file=files({}))
    assert info.value.lines == ["Unable to open file nosuch.sh"]


def test_non_utf8_script_bytes_survive():
    raw = b"#!/bin/sh\necho \xff\n"
    sub, _ = submit(["s.sh"], read_file=files({"/home/alice/s.sh": raw}))
    assert sub["script"].encode("utf-8", "surrogateescape") == raw


@pytest.mark.parametrize("script, lines", [
    ("", ["Batch script is empty!"]),
    (" \n\t\n", ["Batch script contains only whitespace!"]),
    ("#!/bin/sh\r\ntrue\r\n", ["Batch script contains DOS line breaks (\\r\\n)",
                               "instead of expected UNIX line breaks (\\n)."]),
])
def test_script_sanity_checks(script, lines):
    with pytest.raises(UsageError) as info:
        submit([], script=script)
    assert info.value.lines == lines


# --- precedence -----------------------------------------------------------------------

def test_command_line_beats_environment_beats_directives():
    script = "#!/bin/sh\n#SBATCH -p fromscript -A acct_s -J name_s -t 10\ntrue\n"
    env = {"SBATCH_PARTITION": "fromenv", "SBATCH_ACCOUNT": "acct_e"}
    sub, _ = submit(["-p", "fromcli"], script=script, env=env)
    assert sub["partition"] == "fromcli"
    assert sub["account"] == "acct_e"
    assert sub["name"] == "name_s"
    assert sub["time_limit"] == 10


def test_environment_variables_map_to_options():
    env = {"SBATCH_TIMELIMIT": "1:00:00", "SBATCH_JOB_NAME": "envname", "SBATCH_QOS": "high",
           "SBATCH_RESERVATION": "maint", "SBATCH_OPEN_MODE": "append", "SBATCH_REQUEUE": "1",
           "SBATCH_EXPORT": "NONE", "SBATCH_PARTITION": ""}
    sub, _ = submit([], script="#!/bin/sh\ntrue\n", env=env)
    assert (sub["time_limit"], sub["name"], sub["qos"], sub["reservation"]) == \
        (60, "envname", "high", "maint")
    assert sub["open_mode"] == "append" and sub["requeue"] is True
    assert sub["export"] == "NONE" and sub["environment"] == {}
    assert sub["partition"] == ""


def test_invalid_environment_value_is_reported():
    with pytest.raises(UsageError) as info:
        submit(["--wrap=true"], env={"SBATCH_TIMELIMIT": "soon"})
    assert info.value.lines == ["Invalid --time specification"]


def test_mem_on_command_line_replaces_mem_per_cpu_from_script():
    script = "#!/bin/sh\n#SBATCH --mem-per-cpu=2G\ntrue\n"
    sub, _ = submit(["--mem=954M"], script=script)
    assert sub["mem_per_node"] == 954 and sub["mem_per_cpu"] is None


def test_mem_and_mem_per_cpu_together_are_rejected():
    with pytest.raises(UsageError, match="mutually exclusive"):
        submit(["--mem=1G", "--mem-per-cpu=1G", "--wrap=true"])


# --- option syntax --------------------------------------------------------------------

def test_option_spellings_are_equivalent():
    forms = [["--ntasks=4"], ["--ntasks", "4"], ["-n", "4"], ["-n4"]]
    for form in forms:
        sub, _ = submit(form + ["--wrap=true"])
        assert sub["num_tasks"] == 4, form


def test_unique_long_prefix_is_accepted_and_ambiguous_one_is_not():
    sub, _ = submit(["--parti=gpu", "--job-n", "x", "--wrap=true"])
    assert sub["partition"] == "gpu" and sub["name"] == "x"
    with pytest.raises(UsageError, match="ambiguous"):
        submit(["--ntas=4", "--wrap=true"])  # --ntasks, --ntasks-per-node, ... (as getopt)


def test_bundled_short_flags():
    sub, flags = submit(["-HWJname", "--wrap=true"])
    assert sub["hold"] is True and sub["wait"] is True and flags["wait"] is True
    assert sub["name"] == "name"


def test_options_after_script_path_belong_to_the_script():
    sub, _ = submit(["-n", "2", "job.sh", "-n", "5"],
                    read_file=files({"/home/alice/job.sh": b"#!/bin/sh\n"}))
    assert sub["num_tasks"] == 2 and sub["script_args"] == ["-n", "5"]


def test_double_dash_ends_options():
    sub, _ = submit(["--", "-weird.sh"], read_file=files({"/home/alice/-weird.sh": b"#!/bin/sh\n"}))
    assert sub["name"] == "-weird.sh"


@pytest.mark.parametrize("argv, line", [
    (["--foo"], "unrecognized option '--foo'"),
    (["-z"], "invalid option -- 'z'"),
    (["--hold=yes"], "option '--hold' doesn't allow an argument"),
    (["--partition"], "option '--partition' requires an argument"),
    (["-p"], "option requires an argument -- 'p'"),
    (["--mem-per=1", "--wrap=x"], "option '--mem-per' is ambiguous; possibilities: "
                                  "'--mem-per-cpu' '--mem-per-gpu'"),
    (["--time=soon", "--wrap=x"], "Invalid --time specification"),
    (["--mem=4XB", "--wrap=x"], "invalid memory constraint: 4XB"),
    (["-n", "0", "--wrap=x"], "Invalid --ntasks specification"),
    (["-c", "two", "--wrap=x"], 'Invalid numeric value "two" for --cpus-per-task.'),
    (["-N", "3-1", "--wrap=x"], "invalid node count `3-1'"),
    (["--open-mode=overwrite", "--wrap=x"], "Invalid --open-mode argument: overwrite"),
    (["--array=3-1", "--wrap=x"], "Invalid job array specification"),
    (["--signal=FOO@90", "--wrap=x"], "Invalid --signal specification"),
    (["--begin=someday", "--wrap=x"], "Invalid time specification: someday"),
    (["--get-user-env=X", "--wrap=x"], "Invalid --get-user-env argument: X"),
    (["-w", "n[1-", "--wrap=x"],
     "Invalid --nodelist specification: unbalanced '[' in hostlist 'n[1-'"),
])
def test_usage_errors(argv, line):
    with pytest.raises(UsageError) as info:
        submit(argv, script="#!/bin/sh\n")
    assert info.value.lines == [line]


def test_unknown_option_in_directive_is_an_error():
    with pytest.raises(UsageError) as info:
        submit([], script="#!/bin/sh\n#SBATCH --bogus\ntrue\n")
    assert info.value.lines == ["unrecognized option '--bogus'"]


def test_positional_word_in_directive_is_an_error():
    with pytest.raises(UsageError) as info:
        submit([], script="#!/bin/sh\n#SBATCH -n 2 oops\ntrue\n")
    assert info.value.lines == ["Invalid directive found in batch script: oops"]


def test_many_options_reach_their_keys():
    argv = ["-J", "x", "-p", "gpu", "-A", "acct", "-q", "high", "-N", "2-4", "-n", "8",
            "-c", "2", "--ntasks-per-node=4", "--mem=4GB", "-t", "1-0", "--time-min=10",
            "-o", "o.txt", "-e", "e.txt", "-i", "in.txt", "-D", "sub/dir", "--hold",
            "--gres=gpu:2", "-C", "a100", "-w", "n[1-2]", "-x", "n3", "-d", "afterok:12",
            "--requeue", "--reservation=r", "--exclusive", "--comment=hello",
            "--wckey=w", "--mail-type=END", "--mail-user=a@b", "--nice=5", "--priority=7",
            "--mincpus=2", "--tmp=1G", "--threads-per-core=1", "--hint=nomultithread",
            "--uid=1000", "--gid=1000", "-v", "--quiet", "--test-only", "-M", "hpc",
            "--wrap=true"]
    sub, flags = submit(argv)
    expected = {
        "name": "x", "partition": "gpu", "account": "acct", "qos": "high", "num_nodes": 2,
        "num_tasks": 8, "cpus_per_task": 2, "ntasks_per_node": 4, "mem_per_node": 4096,
        "time_limit": 1440, "time_min": 10, "stdout": "o.txt", "stderr": "e.txt",
        "stdin": "in.txt", "workdir": "/home/alice/sub/dir", "hold": True, "gres": "gpu:2",
        "features": "a100", "nodelist_req": "n[1-2]", "exclude": "n3",
        "dependency": "afterok:12", "requeue": True, "reservation": "r", "exclusive": True,
        "comment": "hello", "nice": 5, "priority": 7, "uid": "1000", "gid": "1000",
    }
    assert {k: sub[k] for k in expected} == expected
    assert flags["test_only"] is True and flags["cluster"] == "hpc"


def test_time_zero_and_unlimited_mean_explicitly_unlimited():
    for value in ("0", "UNLIMITED", "infinite"):
        sub, _ = submit([f"--time={value}", "--wrap=true"])
        assert sub["time_limit"] == -1
    sub, _ = submit(["--wrap=true"])
    assert sub["time_limit"] is None


@pytest.mark.parametrize("argv, gres", [
    (["--gpus-per-node=2"], "gpu:2"), (["-G", "1"], "gpu:1"), (["--gpus=a100:2"], "gpu:a100:2"),
    (["--gres=none"], ""), ([], ""),
])
def test_gpu_options_become_gres(argv, gres):
    sub, _ = submit(argv + ["--wrap=true"])
    assert sub["gres"] == gres


def test_defaults_of_a_plain_submission():
    sub, flags = submit(["--wrap=true"])
    assert sub["workdir"] == "/home/alice" and sub["open_mode"] == "" and sub["requeue"] is None
    assert sub["nice"] == 0 and sub["begin_time"] is None and sub["array"] is None
    assert sub["submit_host"] == os.uname().nodename.split(".")[0]
    assert flags == {"parsable": False, "test_only": False, "cluster": None, "help": False,
                     "usage": False, "version": False, "wait": False}


def test_nice_without_value_is_100_and_no_requeue_is_false():
    sub, _ = submit(["--nice", "--no-requeue", "--wrap=true"])
    assert sub["nice"] == 100 and sub["requeue"] is False


def test_begin_time_is_parsed_to_epoch():
    sub, _ = submit(["--begin=now+1hour", "--wrap=true"])
    assert isinstance(sub["begin_time"], float)


def test_version_stops_parsing_without_a_script():
    sub, flags = submit(["--version"], script=None)
    assert sub == {} and flags["version"] is True


# --- helpers --------------------------------------------------------------------------

@pytest.mark.parametrize("spec, indices, throttle", [
    ("0-3", [0, 1, 2, 3], None), ("0-3%2", [0, 1, 2, 3], 2), ("0-7:2", [0, 2, 4, 6], None),
    ("0,2,5", [0, 2, 5], None), ("1-3,2,9%4", [1, 2, 3, 9], 4), ("7", [7], None),
])
def test_expand_array_spec(spec, indices, throttle):
    assert expand_array_spec(spec) == (indices, throttle)


@pytest.mark.parametrize("spec", ["", "3-1", "a-b", "0-3%", "0-3%0", "1:2", "0-4:0", "1,,2",
                                  "0-99999999"])
def test_expand_array_spec_rejects(spec):
    with pytest.raises(ValueError) as info:
        expand_array_spec(spec)
    assert str(info.value) == "Invalid job array specification"


def test_compute_environment_modes():
    env = {"A": "1", "B": "2", "SLURM_X": "s"}
    assert compute_environment("ALL", env) == env
    assert compute_environment("ALL,B=9,C=3", env) == {"A": "1", "B": "9", "C": "3", "SLURM_X": "s"}
    assert compute_environment("A,C=x=y,MISSING", env) == {"A": "1", "C": "x=y", "SLURM_X": "s"}
    assert compute_environment("NONE", env) == {"SLURM_X": "s"}
    with pytest.raises(UsageError, match="Invalid --export specification"):
        compute_environment("=x", env)
