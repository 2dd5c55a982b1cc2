"""GPU detection with a fake ``run`` and GRES string parsing."""

import subprocess

from batch_backend.noded.gpu import NVIDIA_SMI, detect_gpus, parse_gres


def fake_run(stdout="", returncode=0, exc=None):
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        if exc is not None:
            raise exc
        return subprocess.CompletedProcess(argv, returncode, stdout=stdout, stderr="")
    return run, calls


def test_detect_gpus_parses_indices():
    run, calls = fake_run("0\n1\n 3 \n\n")
    assert detect_gpus(run=run) == [0, 1, 3]
    assert calls == [NVIDIA_SMI]


def test_detect_gpus_errors_mean_no_gpus():
    assert detect_gpus(run=fake_run(exc=FileNotFoundError("nvidia-smi"))[0]) == []
    assert detect_gpus(run=fake_run(exc=subprocess.TimeoutExpired("nvidia-smi", 10))[0]) == []
    assert detect_gpus(run=fake_run("NVIDIA-SMI has failed because it couldn't communicate", 9)[0]) == []
    assert detect_gpus(run=fake_run("No devices were found\n")[0]) == []


def test_parse_gres():
    assert parse_gres("") == {}
    assert parse_gres(None) == {}
    assert parse_gres("(null)") == {}
    assert parse_gres("gpu") == {"gpu": 1}
    assert parse_gres("gpu:2") == {"gpu": 2}
    assert parse_gres("gpu:tesla:2") == {"gpu": 2}
    assert parse_gres("gpu:a100:2(S:0-1)") == {"gpu": 2}
    assert parse_gres("gres/gpu:4") == {"gpu": 4}
    assert parse_gres("gpu:a100:1,gpu:k80:2,mps:100") == {"gpu": 3, "mps": 100}
    assert parse_gres("bandwidth:lustre:4G") == {"bandwidth": 4 * 1024 ** 3}
