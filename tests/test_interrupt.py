"""Ctrl-C and SIGTERM, sent for real to the process group as a terminal does: every command
stops within seconds, exits 128 + the signal's number without a traceback, keeps what it
finished, and the same command run again resumes to the same results."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_study import write_tiny_study

STOP_WITHIN = 15.0  # seconds from the signal to the exit: generous for a loaded CI machine
CASES = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def mnistlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnistlab", *args]


def signal_when(cmd: list[str], ready: Callable[[], bool], signum: int, *, settle: float = 0.3,
                start_timeout: float = 600, env: dict[str, str] | None = None
                ) -> tuple[int, str, float]:
    """Run `cmd` in a session of its own, wait until `ready()`, then `settle` seconds more,
    and send `signum` to its whole process group. (exit code, stderr, seconds to exit).
    `start_timeout` catches a run that never gets there, not a slow one: a first epoch of
    3,750 steps took over 180 s on a 2-core host shared with two trainings. `env`: added to
    the environment."""
    proc = subprocess.Popen(cmd, env={**ENV, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + start_timeout
        while not ready():
            assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()}"
            assert time.time() < deadline, "never got ready"
            time.sleep(0.02)
        time.sleep(settle)
        sent = time.time()
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err, time.time() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# Starts each command of argv[1] (JSON) with stderr to argv[2]/<i>.err, then ignores the signals
# itself (the commands keep the default dispositions) and prints their exit codes as JSON.
LAUNCHER = """
import json, signal, subprocess, sys
procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                          stderr=open(f"{sys.argv[2]}/{i}.err", "w"))
         for i, cmd in enumerate(json.loads(sys.argv[1]))]
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(json.dumps([p.wait() for p in procs]))
"""


def leftover_processes(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def rows(path: Path) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k != "seconds"}
                   for r in csv.DictReader(path.open())), key=lambda r: (r["run"], r["experiment"]))


@pytest.fixture(scope="module")
def tiny_study_file(tmp_path_factory, shared_datasets) -> Path:
    return write_tiny_study(tmp_path_factory.mktemp("interrupt") / "tiny.toml", shared_datasets)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code,workers", [(signal.SIGINT, 130, "2"),
                                                 (signal.SIGTERM, 143, "1")],
                         ids=["SIGINT-2-workers", "SIGTERM-in-process"])
def test_study_stops_at_once_and_resumes(tiny_study_file, study_reference, tmp_path, signum,
                                         code, workers):
    out = tmp_path / "study"
    cmd = mnistlab("study", str(tiny_study_file), "--quiet", "--workers", workers, "--out",
                   str(out))
    returncode, err, seconds = signal_when(cmd, lambda: bool(list(out.glob("*/*/checkpoint.pt"))),
                                           signum)
    assert returncode == code, err
    assert seconds < STOP_WITHIN
    assert "Traceback" not in err and "interrupted; what was finished is kept" in err
    assert not (out / "results.csv").exists()
    subprocess.run(cmd, check=True, env=ENV, capture_output=True)
    assert rows(out / "results.csv") == rows(study_reference(workers))


def _workers_starting(out: Path) -> bool:
    """Whether a worker process of the study writing `out` has been spawned (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"spawn_main" in (entry / "cmdline").read_bytes():
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                if str(out).encode() in Path(f"/proc/{parent}/cmdline").read_bytes():
                    return True
        except OSError:  # gone meanwhile
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds workers in /proc")
@pytest.mark.parametrize("settle", [0.0, 0.3, 0.8])
def test_a_stop_while_workers_start_is_one_line_not_their_tracebacks(tmp_path, settle):
    """A terminal's Ctrl-C reaches the workers too; one importing torch printed its traceback,
    and the study blamed 'a worker process died' with exit 2."""
    out = tmp_path / "study"
    cmd = mnistlab("study", "fashion-hparams", "--quick", "--seeds", "1", "--quiet", "--workers",
                   "2", "--out", str(out))
    returncode, err, _ = signal_when(cmd, lambda: _workers_starting(out), signal.SIGINT,
                                     settle=settle)
    assert returncode == 130, err
    assert err.strip() == "interrupted; what was finished is kept (run the same command again " \
                          "to continue)"


@pytest.mark.parametrize("signum,code", CASES, ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after", [0.3, 0.8])
def test_a_stop_while_the_command_starts_is_one_line(tmp_path, shared_datasets, signum, code,
                                                     after):
    """The first second of any command is Python importing torch and numpy: a Ctrl-C there
    printed their traceback (a half-imported numpy then failed: "cannot load module more
    than once per process") and exited 1; SIGTERM ended it without a word. The signal now
    waits until the command takes it."""
    cmd = mnistlab("tune", "fashion-mlp", "--quick", "--trials", "1", "--quiet",
                   "--data-dir", str(shared_datasets), "--out", str(tmp_path / "t"))
    returncode, err, _ = signal_when(cmd, lambda: True, signum, settle=after)
    assert returncode == code, err
    assert err.strip() == "interrupted; what was finished is kept (run the same command again " \
                          "to continue)"


def test_a_second_ctrl_c_while_the_command_starts_stops_it_at_once():
    """The first is held until the command takes it; the second was held too, until the
    imports ended (seconds on a slow disk). Here the "imports" never end."""
    code = ("import os, signal, time\n"
            "from mnistlab import interrupt\n"
            "interrupt.hold_from_start()\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "time.sleep(60)\n")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=30)
    assert (done.returncode, done.stderr) == (130, "interrupted\n")


def test_a_stop_held_while_help_prints_is_said_after_it(capsys, monkeypatch):
    """--version (or --help) has no work to stop: it prints, then the held signal is said
    (exit 130)."""
    from mnistlab import __main__, interrupt

    monkeypatch.setattr(sys, "argv", ["mnistlab", "--version"])
    monkeypatch.setattr(interrupt, "hold_from_start", lambda: None)  # pytest's handlers stay
    monkeypatch.setattr(interrupt, "_held", signal.SIGINT)
    assert __main__.main() == 130
    assert capsys.readouterr().err.strip() == "interrupted"


@pytest.mark.slow
def test_train_stops_mid_epoch_and_marks_the_cut_epoch(shared_datasets, tmp_path):
    """The epoch the signal cut short is not written as if whole: metrics.csv holds whole
    epochs only, the summary says how far the cut epoch got; running again resumes."""
    out = tmp_path / "run"
    cmd = mnistlab("train", "--dataset", "fashion-mnist", "--data-dir", str(shared_datasets),
                   "--model", "mlp", "--hidden", "64", "--batch-size", "8", "--epochs", "2",
                   "--train-subset", "30000",
                   "--schedule", "constant", "--eval-train-size", "1000", "--device", "cpu",
                   "--quiet", "--out", str(out))
    # an epoch is 3,750 small steps (seconds): 0.3 s after epoch 1's checkpoint is mid-epoch 2
    returncode, err, seconds = signal_when(cmd, lambda: (out / "checkpoint.pt").exists(),
                                           signal.SIGINT)
    assert returncode == 130, err
    assert seconds < STOP_WITHIN and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    history = list(csv.DictReader((out / "metrics.csv").open()))
    assert summary["status"] == "interrupted"
    cut = summary["partial_epoch"]
    assert cut["epoch"] == len(history) + 1 and 0 < cut["images"] < cut["of_images"]
    assert summary["epochs"] == len(history) >= 1
    # the cut epoch's steps are undone: scored and saved is the epoch metrics.csv ends with
    assert summary["val_accuracy"] == pytest.approx(float(history[-1]["val_acc"]), abs=1e-5)
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and "partial_epoch" not in summary
    assert [int(r["epoch"]) for r in csv.DictReader((out / "metrics.csv").open())] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", CASES[:1], ids=["SIGINT"])  # SIGTERM: the study tests
def test_two_tune_workers_stop_together(shared_datasets, tmp_path, signum, code):
    """Two `mnistlab tune` processes sharing one search, in one process group (one terminal):
    both stop within seconds; the finished trials stay in the storage and the search resumes."""
    out = tmp_path / "tune"

    def tune(trials: str) -> list[str]:
        return mnistlab("tune", "fashion-mlp", "--quick", "--trials", trials, "--out", str(out),
                        "--data-dir", str(shared_datasets), "--device", "cpu", "--quiet",
                        "--no-report")

    def trials_in_storage() -> int:
        import sqlite3

        try:
            with sqlite3.connect(out / "tune.db", timeout=1) as connection:
                return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        except sqlite3.Error:
            return 0

    # a launcher in a session of its own starts both workers, as a shell in a terminal would
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, json.dumps([tune("40"), tune("40")]), str(tmp_path)],
        env=ENV, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while trials_in_storage() < 4:
            assert launcher.poll() is None, (tmp_path / "0.err").read_text()
            assert time.time() < deadline
            time.sleep(0.05)
        sent = time.time()
        os.killpg(launcher.pid, signum)
        codes = json.loads(launcher.communicate(timeout=60)[0])
        seconds = time.time() - sent
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    errors = [(tmp_path / f"{i}.err").read_text() for i in range(2)]
    assert seconds < STOP_WITHIN
    assert codes == [code, code], errors
    for err in errors:
        assert "Traceback" not in err and "interrupted; what was finished is kept" in err
    assert not leftover_processes(launcher.pid)
    done = trials_in_storage()
    resumed = subprocess.run(tune(str(done + 1)), env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr


def test_a_stop_asked_after_the_last_check_is_not_lost(tiny_study_file, tmp_path):
    """A signal that lands while the last unit writes its run folders (after the last step's
    check) still stops the study before the report: nothing reads the flag after it, so the
    backend checks once more (it used to finish and exit 0, the signal swallowed)."""
    from mnistlab import StudyOptions, interrupt
    from mnistlab.api import run_study
    from mnistlab.progress import StudyProgress

    class StopAtTheFinalRun(StudyProgress):
        def run_finished(self, run, summary):
            super().run_finished(run, summary)
            if run.test:  # a final run: the last unit of the study
                interrupt.request(signal.SIGTERM)

    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(str(tiny_study_file), tmp_path / "s", options=StudyOptions(workers=1),
                      progress=StopAtTheFinalRun(silent=True))
    finally:
        interrupt.flag().clear()
    assert not (tmp_path / "s" / "results.csv").exists()


def test_the_command_says_so_when_a_stop_came_after_its_work(monkeypatch, capsys):
    import argparse

    from mnistlab import cli, interrupt

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=lambda args: interrupt.request(signal.SIGTERM) or 0)
    monkeypatch.setattr(cli, "build_parser", lambda command: parser)
    monkeypatch.setattr(cli, "_no_command", lambda parser, argv: None)  # a parser of no commands
    try:
        assert cli.main([]) == 143
    finally:
        interrupt.flag().clear()
    # the work is done: nothing to "run the same command again" for (hunt)
    assert "interrupted after the work was done" in capsys.readouterr().err


def test_a_stop_while_the_report_is_written_lets_it_finish_whole(tiny_study_file, tmp_path,
                                                                  monkeypatch):
    """A Ctrl-C a few seconds into re-running a finished study raised KeyboardInterrupt inside
    the report's writing, where it could land in a garbage-collector callback: a traceback
    printed, the stop lost. Now the report is written whole and the stop is kept for the end."""
    import dataclasses

    import mnistlab.report.study as report_module
    from mnistlab import interrupt
    from mnistlab.api import run_study
    from mnistlab.study.spec import load_study

    spec = dataclasses.replace(load_study(str(tiny_study_file)), seeds=1)
    writer = report_module.write_study_report

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # delivered before the next bytecode
        return writer(*args, **kwargs)

    monkeypatch.setattr(report_module, "write_study_report", signalled)
    with interrupt.handling():
        run_study(spec, tmp_path / "S")  # no KeyboardInterrupt
        assert interrupt.requested()
    assert "## " in (tmp_path / "S" / "report.md").read_text()


def test_a_ctrl_c_after_the_command_has_returned_is_no_traceback(tmp_path):
    """A Ctrl-C landing while Python shut down (atexit hooks of torch, matplotlib) printed
    "Exception ignored in atexit callback ... KeyboardInterrupt" and the exit code stayed 0."""
    code = ("import os, signal, sys\n"
            "from mnistlab.cli import main\n"
            "sys.argv = ['mnistlab', 'data', 'path', 'mnist']\n"
            "code = main()\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "print('exited', code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MNISTLAB_DATA": str(tmp_path)})
    assert "exited " in done.stdout and "Traceback" not in done.stderr, done


def test_a_stop_raised_inside_a_garbage_collector_callback_prints_no_traceback():
    """A Ctrl-C whose KeyboardInterrupt lands in a callback Python cannot raise from (a weakref
    finaliser during garbage collection) printed "Exception ignored in ..." and a traceback
    above the interrupted line; the stop is in the flag, which the command reads."""
    script = """
import os, signal, sys
sys.path.insert(0, "src")
from mnistlab import interrupt

class Stopping:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # no listener: the handler raises here

with interrupt.handling():
    Stopping()
    print("stopped" if interrupt.requested() else "not stopped")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.stdout.strip() == "stopped"
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("lang, said", [
    ("en", "interrupted after the work was done: everything is finished, nothing is left to "
           "continue"),
    ("es", "interrumpido cuando el trabajo ya estaba hecho: todo está terminado, no queda "
           "nada por continuar")])
def test_a_stop_asked_for_once_the_work_was_done_does_not_say_to_continue(lang, said, capsys):
    """A Ctrl-C while a finished study wrote its report: the report was finished, its closing
    line printed, and then "interrupted; ... run the same command again to continue", with
    nothing left to continue (hunt)."""
    import argparse

    from mnistlab import interrupt
    from mnistlab.cli import _run

    def done_then_stopped(args):
        interrupt.request()  # as the signal handler does, after the last check
        return 0

    code = _run(argparse.Namespace(func=done_then_stopped, lang=lang))
    assert code == 130
    assert capsys.readouterr().err.strip() == said
    assert not interrupt.requested()  # the next command in this process starts unstopped
