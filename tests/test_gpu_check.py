"""benchmarks/gpu_check.py --smoke: the GPU check's every step runs, on a CPU, in seconds, and
prints its five figures."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_the_smoke_form_prints_every_figure(shared_datasets):
    env = {**os.environ, "MNISTLAB_DATA": str(shared_datasets), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu",
                             "--workers", "1"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("device: cpu")
    number = r"[0-9]+\.[0-9]+"
    patterns = [rf"mnist-fast: {number} s of training \({number} s in the first run, device "
                rf"start included\), test accuracy 0\.[0-9]{{4}} \(99% ",
                rf"fashion-hparams study \(1 seed, smoke\): wall {number} s, [0-9]+ runs trained; "
                rf"longest run .+ seed [0-9]+, {number} s, all runs' training {number} s",
                rf"fashion-best: {number} s of training, test accuracy 0\.[0-9]{{4}} \(94% ",
                rf"cohort of 8 MLPs: {number} s; one by one: {number} s \({number}x "
                r"(faster|slower) together\)",
                rf"ensemble of 4 mnist-fast: {number} s in lockstep; one by one: {number} s "
                rf"\({number}x their cost\); test accuracy 0\.[0-9]{{4}}, "
                r"members' mean 0\.[0-9]{4}",
                rf"total: {number} s"]
    assert len(lines) == 1 + len(patterns)
    for line, pattern in zip(lines[1:], patterns):
        assert re.match(pattern, line), line


def test_a_device_this_machine_lacks_is_one_line(missing_device):
    """`gpu_check.py --device cuda` without a GPU ended in a traceback."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", missing_device],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"gpu_check: device: {missing_device} was asked for but ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_speed_ratio_is_said_the_right_way_round(monkeypatch):
    """A cohort slower than its runs one by one was printed "(0.2x faster together)"."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from time_to_accuracy import speedup

    assert speedup(0.2, 0.9, "together") == "4.50x slower together"
    assert speedup(11.5, 4.5) == "2.56x faster"
