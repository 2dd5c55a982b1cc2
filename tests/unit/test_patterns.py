"""Output filename patterns must match Slurm byte for byte (SLURM_DIALECT 2.2)."""

import pytest

from batch_backend.patterns import NO_VAL, default_output, expand_output_pattern

ARRAY_TASK = dict(job_id=4040, array_job_id=4039, array_task_id=0, name="arrjob",
                  user="root", node="vm")


def test_dialect_example_batch_script():
    pattern = "arr-%A_%a-j%j-J%J-x%x-u%u-N%N-n%n-s%s.out"
    assert expand_output_pattern(pattern, **ARRAY_TASK) == \
        "arr-4039_0-j4040-J4040-xarrjob-uroot-Nvm-n0-sbatch.out"


def test_dialect_example_srun_step():
    pattern = "%A_%a_%t-j%j-J%J-s%s.out"
    assert expand_output_pattern(pattern, **ARRAY_TASK, step=0, task=0) == \
        "4039_0_0-j4040-J4040.0-s0.out"


def plain(pattern, **kw):
    args = dict(job_id=42, name="job", user="alice", node="n1")
    args.update(kw)
    return expand_output_pattern(pattern, **args)


def test_non_array_job_uses_job_id_for_A_and_no_val_for_a():
    assert plain("%A_%a") == f"42_{NO_VAL}"
    assert NO_VAL == 4294967294


def test_width_zero_pads_numeric_codes_only():
    assert plain("%5j-%3t-%2n-%4x-%3u") == "00042-000-00-job-alice"
    assert plain("%3a", array_job_id=40, array_task_id=7) == "007"


def test_width_pads_job_id_inside_step_J():
    assert plain("%6J", step=3) == "000042.3"
    assert plain("%6J") == "000042"


def test_width_is_capped_at_ten_like_slurm():
    assert plain("%20j") == "0000000042"


def test_percent_escape_and_unknown_codes_stay_literal():
    assert plain("100%%-%j") == "100%-42"
    assert plain("%q%Z") == "%q%Z"
    assert plain("end%") == "end%"
    assert plain("end%5") == "end%5"


def test_N_uses_short_host_name():
    assert plain("%N", node="node7.cluster.example.org") == "node7"


def test_step_code_s_and_task_code_t_in_srun():
    assert plain("%s-%t", step=2, task=5) == "2-5"
    assert plain("%s-%t") == "batch-0"


def test_submitit_and_batchspawner_patterns():
    assert plain("/shared/sm/%A_%a_%t_log.out", job_id=4041, array_job_id=4039,
                 array_task_id=1, step=0, task=0) == "/shared/sm/4039_1_0_log.out"
    assert plain("/home/alice/jupyterhub_slurmspawner_%j.log") == \
        "/home/alice/jupyterhub_slurmspawner_42.log"
    assert plain("/shared/logs/dask-worker-%J.err") == "/shared/logs/dask-worker-42.err"


def test_backslash_disables_expansion():
    assert plain("slurm-\\%j.out") == "slurm-%j.out"


def test_pattern_without_codes_is_unchanged():
    assert plain("/dev/null") == "/dev/null"


@pytest.mark.parametrize("is_array, pattern", [(True, "slurm-%A_%a.out"), (False, "slurm-%j.out")])
def test_default_output(is_array, pattern):
    assert default_output(is_array) == pattern
