"""benchmarks/*.py command lines: a count that cannot be (--rounds 0, --threads -1) is refused
as argparse refuses a bad value, in one line and before any work (it was an IndexError, inf or
a StatisticsError after minutes); every option's help shows its default; the package's errors
for user mistakes are one line, not a traceback.

Each script's `main` runs in this process with its parser watched: a command line that parses
stops there, so no case ever starts the benchmark's work.
"""

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if not p.stem.startswith("_"))
RUNS = ["/nonexistent-run"]  # a positional the run-scoring scripts need before their options

# script -> a count option and a value it must refuse (where the script has count options)
BAD_COUNTS = [
    ("batch_chunks", ["--rounds", "0"]), ("batch_chunks", ["--epochs", "0"]),
    ("batch_chunks", ["--threads", "0"]),
    ("cohort_kernels", ["--repeats", "0"]), ("cohort_kernels", ["--members", "4,0"]),
    ("cohort_kernels", ["--batch", "x"]),
    ("cuda_graphs", ["--steps", "0"]), ("cuda_graphs", ["--rounds", "0"]),
    ("ensemble_cost", ["--repeats", "0"]), ("ensemble_cost", ["--steps", "0"]),
    ("ensemble_cost", ["--members", "0"]), ("ensemble_cost", ["--epochs", "-1"]),
    ("ensemble_mix", [*RUNS, "--threads", "-1"]),
    ("gpu_check", ["--workers", "0"]),
    ("ray_backend", ["--seeds", "0"]), ("ray_backend", ["--repeats", "0"]),
    ("report_drawing", ["--rounds", "0"]),
    ("scoring_chunk", ["--rounds", "0"]), ("scoring_chunk", ["--chunks", "500", "0"]),
    ("stem_fusion", ["--steps", "0"]), ("stem_fusion", ["--rounds", "0"]),
    ("study_speed", ["--student-epochs", "0"]), ("study_speed", ["--student-workers", "-1"]),
    ("study_speed", ["--skip-one-by-one-seeds-above", "0"]),
    ("study_wall_time", ["fashion-hparams", "--seeds", "0"]),
    ("time_to_accuracy", ["--seeds", "0"]), ("time_to_accuracy", ["--baseline-seeds", "0"]),
    ("time_to_accuracy", ["--baseline-max-epochs", "0"]),
    ("time_to_accuracy", ["--fast-ratio", "-1"]), ("time_to_accuracy", ["--first-seed", "-1"]),
    ("tracking_cost", ["--repeats", "0"]), ("tracking_cost", ["--workers", "0"]),
    ("tta_views", [*RUNS, "--threads", "-1"]),
]


class Parsed(Exception):
    """Raised in place of the work a command line that parsed would start."""


def run_main(monkeypatch, script: str, argv: list[str]) -> int:
    """`main` of benchmarks/<script>.py with `argv`; its exit code, or Parsed."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    main = importlib.import_module(script).main
    with pytest.raises(SystemExit) as stopped:
        main([*argv]) if "argv" in main.__code__.co_varnames else main()
    return stopped.value.code


def test_every_script_is_in_the_list():
    listed = {script for script, _ in BAD_COUNTS} | {"robustness"}  # robustness: no counts
    assert listed == set(SCRIPTS)


@pytest.mark.parametrize(("script", "argv"), BAD_COUNTS,
                         ids=[f"{s} {' '.join(a)}" for s, a in BAD_COUNTS])
def test_a_count_that_cannot_be_is_one_line_before_any_work(monkeypatch, capsys, script, argv):
    code = run_main(monkeypatch, script, argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    option = next(a for a in argv if a.startswith("--"))
    assert err.splitlines()[-1].startswith(f"{script}.py: error: argument {option}: "), err


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_is_a_checked_count_and_says_its_default(monkeypatch, capsys, script):
    """No option takes a bare `int` (a count of 0 or -1 would get through), and every option
    that is shown says its default."""
    options = []
    add = argparse._ActionsContainer.add_argument

    def recorded(self, *names, **kwargs):
        action = add(self, *names, **kwargs)
        options.append(action)
        return action

    monkeypatch.setattr(argparse._ActionsContainer, "add_argument", recorded)
    assert run_main(monkeypatch, script, [*RUNS, "--help"] if script in (
        "tta_views", "ensemble_mix", "robustness") else ["--help"]) == 0
    capsys.readouterr()
    for action in options:
        if action.option_strings == ["-h", "--help"]:
            continue
        assert action.type is not int, f"{script} {action.option_strings}: a bare int"
        if action.option_strings and action.help != argparse.SUPPRESS:
            assert "default" in (action.help or ""), f"{script} {action.option_strings}"


@pytest.mark.parametrize("script", ["tta_views", "robustness"])
def test_a_folder_that_is_not_a_run_is_one_line(script, tmp_path):
    """`tta_views.py /tmp/x` ended in the package's MnistlabError as a traceback."""
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent / "src")}
    result = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
