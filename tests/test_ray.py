"""--backend ray: a real two-node Ray cluster on loopback trains the quick Fashion study and a
search while a worker process is SIGKILLed, and gives the local backend's numbers.

The cluster is started with `ray start` exactly as docs/scale-out.md tells users to (a head
and a second node, 1 CPU each) and stopped at the end, also on failure, by killing the process
groups it was started in (`ray stop` would stop every Ray on the machine). Its nodes use
127.0.0.2: Ray replaces the literal 127.0.0.1 and "localhost" by the machine's outward address
so that other machines could join, and that address is not loopback.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mnistlab.errors import MnistlabError
from mnistlab.raycluster import TaskResources, pack_folder, unpack_folder
from mnistlab.testing import LOOPBACK, loopback_cluster

HOST = LOOPBACK


# --- no cluster needed -----------------------------------------------------------------------
def test_packed_folder_comes_back_whole_and_cannot_climb_out(tmp_path):
    src = tmp_path / "run"
    (src / "sub").mkdir(parents=True)
    (src / "summary.json").write_text('{"a": 1}')
    (src / "sub" / "model.pt").write_bytes(b"\x00\x01" * 1000)
    packed = pack_folder(src)
    assert set(packed) == {"summary.json", "sub/model.pt"}
    unpack_folder(packed, tmp_path / "copy")
    assert pack_folder(tmp_path / "copy") == packed
    assert pack_folder(tmp_path / "missing") == {}
    with pytest.raises(MnistlabError, match="outside"):
        unpack_folder({"../evil.txt": b"x"}, tmp_path / "copy")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kwargs,message", [
    ({"cpus": 0}, "task-cpus: must be a positive number"),
    ({"cpus": float("nan")}, "task-cpus: must be a positive number"),
    ({"gpus": -1}, "task-gpus: must be a number >= 0"),
    ({"retries": -1}, "task-retries: must be a whole number >= 0"),
])
def test_bad_task_resources(kwargs, message):
    with pytest.raises(MnistlabError, match=message):
        TaskResources(**kwargs)


def test_task_resources_become_ray_options():
    options = TaskResources(cpus=2, gpus=0.5, retries=1).options()
    assert options == {"num_cpus": 2, "num_gpus": 0.5, "max_retries": 1,
                       "retry_exceptions": False}
    assert TaskResources(cpus=0.5).threads == 1


def test_the_progress_relay_ends_quietly_when_the_mailbox_is_killed_under_it():
    """Under load the relay was still waiting on the mailbox when the study killed it: the
    thread printed ActorDiedError's traceback after a finished tune (caught by a bug hunt)."""
    from types import SimpleNamespace

    from mnistlab.study.backends import start_relay
    from mnistlab.study.ray_backend import MailboxReader

    class RayActorError(Exception):  # ray.exceptions': ActorDiedError is one
        pass

    def get(_ref):
        raise RayActorError("The actor is dead because it was killed by `ray.kill`.")

    fake = SimpleNamespace(get=get, exceptions=SimpleNamespace(RayActorError=RayActorError))
    reader = MailboxReader(fake, SimpleNamespace(take_all=SimpleNamespace(remote=lambda: 0)))
    with pytest.raises(EOFError):
        reader.get(0.1)
    failures = []
    previous, threading.excepthook = threading.excepthook, failures.append
    try:
        stop = threading.Event()
        thread = start_relay(reader, [], lambda *a: None, stop)
        thread.join(timeout=10)
    finally:
        threading.excepthook = previous
    assert not thread.is_alive() and failures == []


def test_no_retrain_seeds_sends_nothing_to_the_cluster():
    from mnistlab.tune.ray_backend import RayTrials

    unconnected = RayTrials.__new__(RayTrials)  # no cluster: any use of one would fail
    assert unconnected.retrain([], None, None) == []


WITHOUT_RAY = ("import sys; sys.modules['ray'] = None; from mnistlab.cli import main; "
               "sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("command", [["study", "fashion-hparams", "--quick"],
                                     ["tune", "fashion-mlp", "--quick"]])
def test_backend_ray_without_ray_says_how_to_install_it(command, tmp_path):
    done = subprocess.run([sys.executable, "-c", WITHOUT_RAY, *command, "--backend", "ray",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert 'pip install "mnistlab[ray]"' in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "study.db").exists()


@pytest.mark.parametrize("argv,message", [
    (["study", "fashion-hparams", "--task-cpus", "2"], "--task-cpus is for --backend ray"),
    (["tune", "fashion-mlp", "--address", "10.0.0.5:6379"], "--address is for --backend ray"),
    (["study", "fashion-hparams", "--backend", "ray", "--workers", "2"],
     "--workers is for --backend local"),
    (["tune", "fashion-mlp", "--backend", "ray", "--task-gpus", "-1"],
     "task-gpus: must be a number >= 0"),
    (["study", "fashion-hparams", "--backend", "ray", "--address", "nonsense"],
     "address: 'nonsense' is not HOST:PORT"),
    (["study", "fashion-hparams", "--backend", "ray", "--address", "127.0.0.1:99999"],
     "address: '127.0.0.1:99999' is not HOST:PORT (e.g. 10.0.0.5:6379, a port from 1 to 65535)"),
    (["tune", "fashion-mlp", "--backend", "ray", "--address", "ray://127.0.0.1:10001"],
     "address: ray://127.0.0.1:10001 is a Ray Client address, which mnistlab does not use; "
     "give the head node's HOST:PORT"),
])
def test_backend_flags_that_do_not_fit_are_one_line(argv, message, tmp_path, capsys):
    from mnistlab.cli import main

    if "ray" in argv and "--address" in argv:
        pytest.importorskip("ray", reason="the ray extra is not installed")
    assert main([*argv, "--quick", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_unreachable_address_is_one_line_and_quick(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    port = _free_port()  # nothing listens there
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams",
                           "--quick", "--backend", "ray", "--address", f"{HOST}:{port}",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"nothing answers at {HOST}:{port}" in done.stderr
    assert "ray start --head" in done.stderr and "Traceback" not in done.stderr
    assert time.time() - started < 60


def test_a_stale_ray_address_is_named_for_auto_and_passed_over_for_local(tmp_path):
    """With RAY_ADDRESS pointing where nothing answers, `--address auto` hung without a word
    (Ray reads it, and retries for minutes), and so did `--address local`, which promises a
    Ray of its own."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    env = {**os.environ, "RAY_ADDRESS": f"{HOST}:{_free_port()}"}  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams",
                           "--quick", "--backend", "ray", "--address", "auto",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"nothing answers at {env['RAY_ADDRESS']}" in done.stderr
    assert "that address is $RAY_ADDRESS's, which --address auto reads" in done.stderr
    local = subprocess.run(
        [sys.executable, "-c", "from mnistlab.raycluster import connect; ray = connect('local'); "
         "print(int(ray.cluster_resources()['CPU'])); ray.shutdown()"],
        capture_output=True, text=True, env=env, timeout=180)
    assert local.returncode == 0 and int(local.stdout.split()[-1]) >= 1, local.stderr


def test_a_cluster_ray_recorded_and_that_is_gone_is_named_for_auto(tmp_path):
    """A cluster that died uncleanly left its address in Ray's record, and `--address auto`
    (the default) waited for minutes, deaf to Ctrl-C and SIGTERM (hunt)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    address = f"{HOST}:{_free_port()}"  # nothing listens there
    (tmp_path / "rt" / "ray").mkdir(parents=True)
    (tmp_path / "rt" / "ray" / "ray_current_cluster").write_text(address + "\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path / "rt")
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams",
                           "--quick", "--backend", "ray", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"nothing answers at {address}" in done.stderr
    assert "that address is the cluster Ray recorded in" in done.stderr
    assert "`ray stop` clears the record" in done.stderr and time.time() - started < 60


# --- a real cluster --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="the ray extra is not installed")
    with loopback_cluster(nodes=2, cpus_per_node=1) as cluster:
        yield cluster
    assert _alive_in(cluster.groups) == [], "the cluster was not stopped"


def test_a_driver_without_the_clusters_token_is_refused_in_one_line(ray_cluster, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    # Ray retries a refused token once a second, 20 times by default; the answer is the same
    env["RAY_gcs_server_port_wait_time_s"] = "2"
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams",
                           "--quick", "--backend", "ray", "--address", ray_cluster.address,
                           "--out", str(tmp_path / "x")], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 2
    assert done.stderr.startswith("error: backend ray: the cluster at"), done.stderr
    assert "uses token authentication" in done.stderr and "~/.ray/auth_token" in done.stderr
    # no RAY_AUTH_MODE here: no token was sent, whatever the file (hunt: "copy its token")
    assert "this command sent no token; `export RAY_AUTH_MODE=token` here" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "study.db").exists()


@pytest.mark.parametrize(("flags", "said"), [
    (["--task-cpus", "2"], "--task-cpus 2: no node of the Ray cluster can run such a task (its "
     "nodes have 1 CPU and 0 GPUs; 1 CPU and 0 GPUs), so it would wait for ever"),
    (["--task-gpus", "1"], "--task-cpus 1 --task-gpus 1: no node of the Ray cluster can run"),
])
def test_tasks_no_node_can_hold_are_refused_not_queued_for_ever(ray_cluster, tmp_path, flags,
                                                                said):
    """Two 1-CPU nodes: 2 CPUs in all, but no task of 2 CPUs (or 1 GPU) can ever start there;
    the study waited at 0/N without a word."""
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams",
                           "--quick", "--backend", "ray", "--address", ray_cluster.address,
                           *flags, "--out", str(tmp_path / "x")],
                          env={**os.environ, **ray_cluster.env}, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "study.db").exists()


def _alive_in(groups: list[int]) -> list[int]:
    """Processes of these process groups that still run (zombies are dead: only unreaped)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, _, pgid = stat.rsplit(")", 1)[1].split()[:3]
            if int(pgid) in groups and state != "Z":
                alive.append(int(entry.name))
    return alive


def _task_processes(title: str) -> list[int]:
    """Ray workers name themselves `ray::<function>` while they run that task."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _kill_one_running_task(title: str, proc: subprocess.Popen, killed: list[int],
                           after: float = 2.0) -> threading.Thread:
    """SIGKILL the first worker seen running `title` for `after` seconds: mid-training."""

    def watch() -> None:
        seen: dict[int, float] = {}
        while proc.poll() is None and not killed:
            now = time.time()
            for pid in _task_processes(title):
                if now - seen.setdefault(pid, now) >= after:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _rows(path: Path) -> list[dict]:
    rows = list(csv.DictReader(path.open()))
    return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in rows),
                  key=lambda r: (r["run"], r["experiment"]))


@pytest.mark.slow
def test_quick_fashion_study_on_a_cluster_survives_a_killed_worker(ray_cluster, tmp_path,
                                                                     shared_datasets,
                                                                     quick_fashion_study):
    env = {**os.environ, **ray_cluster.env, "MNISTLAB_DATA": str(shared_datasets),
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mnistlab", "study", "fashion-hparams", "--quick",
           "--seeds", "1", "--quiet"]
    local = quick_fashion_study  # the same study trained on this machine
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "ray"), "--backend", "ray",
                                   "--address", ray_cluster.address],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[int] = []
    watcher = _kill_one_running_task("train_unit_task", proc, killed)
    out, err = proc.communicate(timeout=600)
    watcher.join(timeout=5)
    assert proc.returncode == 0, err
    assert killed, "no training task was seen running long enough to be killed"
    # the retried unit gave the same numbers, and every run is recorded once
    assert _rows(tmp_path / "ray" / "results.csv") == _rows(local / "results.csv")
    runs = list((tmp_path / "ray" / "runs").iterdir())
    assert len(runs) == len(list((local / "runs").iterdir()))
    assert all((r / "summary.json").is_file() and (r / "metrics.csv").is_file() for r in runs)
    assert (tmp_path / "ray" / "report.html").is_file()


@pytest.mark.slow
def test_search_on_a_cluster_survives_a_killed_worker(ray_cluster, tmp_path, shared_datasets):
    optuna = pytest.importorskip("optuna", reason="the tune extra is not installed")
    env = {**os.environ, **ray_cluster.env, "MNISTLAB_DATA": str(shared_datasets)}
    out = tmp_path / "tune"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "tune", "fashion-mlp", "--quick", "--trials", "8",
         "--retrain-seeds", "1", "--out", str(out), "--backend", "ray",
         "--address", ray_cluster.address],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[int] = []
    watcher = _kill_one_running_task("trial_task", proc, killed, after=0.5)
    stdout, stderr = proc.communicate(timeout=600)
    watcher.join(timeout=5)
    assert proc.returncode == 0, stderr
    assert killed, "no trial task was seen running long enough to be killed"
    study = optuna.load_study(study_name="fashion-mlp-quick",
                              storage=f"sqlite:///{out / 'tune.db'}")
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(8)), numbers  # each trial told once, none lost
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # trials trained side by side
    assert "trial" in stderr and (out / "report.md").is_file()
    # the retraining ran as tasks too, and its run folders came back where a local one puts them
    written = {}
    for label in ("best", "compare"):
        [summary] = list(out.glob(f"retrain/{label}-*-seed1/summary.json"))
        assert json.loads(summary.read_text())["test_accuracy"] > 0.5
        written[summary] = summary.stat().st_mtime_ns
    # run again, the search finished: its retrained runs are read back, not trained again
    again = subprocess.run(proc.args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "retraining" not in again.stderr
    assert {s: s.stat().st_mtime_ns for s in written} == written


def test_a_model_the_images_are_too_small_for_is_refused_before_a_cluster_trains(
        ray_cluster, tmp_path):
    """lenet5 drawn for 8x8 images: the cluster's error stopped the search ("a bad setting:
    every trial would fail alike") on every rerun. The driver reads the data to ship it: it is
    refused there, in one line, before the study is made."""
    from conftest import eight_pixel_folder

    eight_pixel_folder(tmp_path / "eight")
    space = tmp_path / "eight.toml"
    space.write_text(f'name = "eight"\n[base]\ndataset = "{tmp_path / "eight"}"\n'
                     'model = "mlp"\nhidden = [16]\nepochs = 1\nval_size = 150\n'
                     'eval_train_size = 150\n[space.model]\ntype = "categorical"\n'
                     'choices = ["mlp", "lenet5"]\n[space.lr]\ntype = "float"\n'
                     'low = 0.001\nhigh = 0.1\nlog = true\n')
    out = tmp_path / "tune"
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", "tune", str(space), "--trials", "3",
         "--retrain-seeds", "0", "--out", str(out), "--backend", "ray",
         "--address", ray_cluster.address],
        env={**os.environ, **ray_cluster.env}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "eight space.model: lenet5 needs images of at least 12x12" in done.stderr
    assert not (out / "tune.db").exists()


def test_trials_that_fail_on_a_cluster_have_their_row_saying_why(ray_cluster, tmp_path,
                                                                 tiny_idx_dir):
    """A trial whose drawn values cannot go together had no row in the live table on a
    cluster, where the local search shows it in red with why; the table jumped from trial 0
    to trial 2."""
    space = tmp_path / "nesterov.toml"
    space.write_text(f'name = "nest"\n[base]\ndataset = "{tiny_idx_dir}"\nmodel = "mlp"\n'
                     'hidden = [16]\nepochs = 1\nval_size = 100\neval_train_size = 100\n'
                     'optimizer = "sgd"\nmomentum = 0.9\n[space.momentum]\n'
                     'type = "categorical"\nchoices = [0.0]\n[space.nesterov]\n'
                     'type = "categorical"\nchoices = [false, true]\n')
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", "tune", str(space), "--trials", "3",
         "--retrain-seeds", "0", "--out", str(tmp_path / "tune"), "--backend", "ray",
         "--address", ray_cluster.address],
        env={**os.environ, **ray_cluster.env, "COLUMNS": "160"}, capture_output=True,
        text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stderr.splitlines()
            if line.split()[:1] and line.split()[0].isdigit()]
    failed = [row for row in rows if row[1] == "fail"]
    assert failed and len(rows) == len(failed) + 3, done.stderr
    assert done.stderr.count("nesterov: needs --optimizer sgd and --momentum > 0") == len(failed)


@pytest.mark.slow
def test_a_study_stopped_here_and_resumed_on_a_cluster_leaves_no_checkpoint(
        ray_cluster, tmp_path, shared_datasets):
    """The checkpoint an interrupted local attempt left travels with its task, which resumed
    from it and removed only its own copy: the study folder kept it beside the finished run
    (a local resume removes it)."""
    from test_interrupt import signal_when
    from tiny_study import write_tiny_study

    study = write_tiny_study(tmp_path / "tiny.toml", shared_datasets)
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "mnistlab", "study", str(study), "--quiet", "--workers", "1",
           "--out", str(out)]
    code, err, _ = signal_when(cmd, lambda: bool(list(out.glob("*/*/checkpoint.pt"))),
                               signal.SIGINT, settle=0.0)
    assert code == 130, err
    left = list(out.glob("*/*/checkpoint.pt"))
    assert left, "the stop came after the checkpoint was gone"
    done = subprocess.run(cmd[:-4] + ["--backend", "ray", "--address", ray_cluster.address,
                                      "--out", str(out)],
                          env={**os.environ, **ray_cluster.env,
                               "MNISTLAB_DATA": str(shared_datasets)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "results.csv").is_file()
    assert list(out.glob("*/*/checkpoint.pt")) == [], left


def _scratch_checkpoints(since: float) -> list[Path]:
    """Epoch checkpoints written since `since` in the scratch folders of Ray tasks on this
    machine (train_unit_task's)."""
    found = []
    for path in Path(tempfile.gettempdir()).glob("mnistlab-unit-*/*/*/checkpoint.pt"):
        try:
            if path.stat().st_mtime >= since:
                found.append(path)
        except OSError:  # its task ended meanwhile
            continue
    return found


@pytest.mark.slow
def test_a_study_stopped_on_a_cluster_keeps_its_epochs_and_resumes_from_them(
        ray_cluster, tmp_path, shared_datasets):
    """Ctrl-C at the driver cancelled the running tasks, whose epoch checkpoints lived in a
    scratch folder on their worker: every epoch they had trained was lost and the next
    attempt started them at epoch 0 (hunt), where `study --help` promises that an interrupted
    run continues from its last epoch, as it does locally. The tasks now stop after their
    step and send their checkpoint home; the next attempt resumes from it."""
    import torch
    from test_interrupt import signal_when
    from tiny_study import write_tiny_study

    from mnistlab.records import EpochRecord
    from mnistlab.runs import metrics_csv

    study = write_tiny_study(tmp_path / "tiny.toml", shared_datasets)
    study.write_text(study.read_text().replace("epochs = 3\n", "epochs = 30\n"))
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "mnistlab", "study", str(study), "--quiet", "--out", str(out),
           "--backend", "ray", "--address", ray_cluster.address]
    started = time.time()
    code, err, _ = signal_when(cmd, lambda: bool(_scratch_checkpoints(started)),
                               signal.SIGINT, settle=0.0, env=ray_cluster.env)
    assert code == 130 and "Traceback" not in err, err
    kept = list(out.glob("cohorts/*/checkpoint.pt")) + list(out.glob("runs/*/checkpoint.pt"))
    assert kept, f"no epoch checkpoint came home: {sorted(p.name for p in out.iterdir())}"
    trained = [metrics_csv([EpochRecord.from_row(row) for row in history])
               for path in kept
               for history in torch.load(path, weights_only=False)["histories"]]
    assert all(len(history.splitlines()) > 1 for history in trained)  # an epoch at least
    done = subprocess.run(cmd, env={**os.environ, **ray_cluster.env}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # resumed, not trained again: each run's first epochs are those kept, to their timings
    finished = [path.read_text() for path in out.glob("runs/*/metrics.csv")]
    assert all(any(f.startswith(history) for f in finished) for history in trained)
    assert list(out.glob("*/*/checkpoint.pt")) == []


@pytest.mark.slow
def test_runs_written_but_not_recorded_are_read_back_not_trained_again_on_a_cluster(
        ray_cluster, tmp_path, shared_datasets):
    """A study.db gone (or a final model scored, then the study killed before recording it):
    the local backend reads the finished folders back; Ray trained every one of them again
    (hunt), and a scored final lost its `scored_from`."""
    from tiny_study import write_tiny_study

    study = write_tiny_study(tmp_path / "tiny.toml", shared_datasets)
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "mnistlab", "study", str(study), "--quiet", "--out", str(out)]
    env = {**os.environ, **ray_cluster.env, "MNISTLAB_DATA": str(shared_datasets)}
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0
    made = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")}
    kept = (out / "results.csv").read_text()
    (out / "study.db").unlink()
    done = subprocess.run(cmd + ["--backend", "ray", "--address", ray_cluster.address],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.pt")} == made
    assert (out / "results.csv").read_text() == kept  # the same rows, read back


@pytest.mark.parametrize("command", ["study", "tune"])
@pytest.mark.parametrize("body", ["", "1 / 0\n", "raise ImportError('no')\n"])
def test_a_ray_py_of_the_user_s_is_named_not_a_traceback(tmp_path, command, body):
    """`python -m mnistlab` puts the current folder on the path: a ray.py there gave
    "module 'ray' has no attribute 'is_initialized'" (or its own error) as a traceback, exit
    1, or "Ray is not installed"."""
    import mnistlab

    (tmp_path / "ray.py").write_text(body)
    preset = "fashion-hparams" if command == "study" else "fashion-mlp"
    done = subprocess.run([sys.executable, "-m", "mnistlab", command, preset, "--quick",
                           "--backend", "ray", "--address", "local", "--out",
                           str(tmp_path / "out")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(mnistlab.__file__).parents[1])})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: backend ray: 'ray' is {tmp_path / 'ray.py'}, not "
                                   "Ray: a file or folder of that name stands in its place; "
                                   "rename it, or run from another folder")
    assert not (tmp_path / "out").exists()


def test_a_ray_installed_outside_site_packages_is_not_called_a_stand_in(tmp_path):
    """Ray installed with pip install --target (or a source checkout) whose import failed was
    told to be renamed."""
    import mnistlab

    real = tmp_path / "target" / "ray"
    (real / "_private").mkdir(parents=True)
    (real / "__init__.py").write_text("import a_missing_dependency_of_ray\n")
    src = str(Path(mnistlab.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", "from mnistlab.raycluster import require_ray\n"
         "from mnistlab.errors import MnistlabError\ntry:\n    require_ray()\n"
         "except MnistlabError as exc:\n    print(exc)"],
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'target'}{os.pathsep}{src}"},
        capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("backend ray: importing Ray failed (ModuleNotFoundError: No "
                                  "module named 'a_missing_dependency_of_ray'); "), done.stdout


def test_an_actor_gone_with_its_node_is_the_head_lost_or_one_line():
    """A search's pruning broker gone with the stopped head raised Ray's ActorUnavailableError
    out of the command: a traceback, or a minute's hang in ray.kill on the dead cluster."""
    from types import SimpleNamespace

    import ray.exceptions

    from mnistlab.raycluster import HeadLost, HeadWatch

    class GoneActor:
        exceptions = ray.exceptions

        def __init__(self, address: str) -> None:
            self.address = address

        def get_runtime_context(self):
            return SimpleNamespace(gcs_address=self.address)

        def wait(self, refs, timeout):
            return refs, []

        def get(self, ref):
            raise ray.exceptions.ActorUnavailableError("its node is gone", None)

    with socket.socket() as listening:  # a head that answers: the actor alone is gone
        listening.bind((LOOPBACK, 0))
        listening.listen()
        fake = GoneActor(f"{LOOPBACK}:{listening.getsockname()[1]}")
        with pytest.raises(MnistlabError, match="backend ray: the broker on the cluster is "
                           "gone \\(ActorUnavailableError\\); what finished is kept") as said:
            HeadWatch(fake).get(fake, "ref", "the broker")
        assert not isinstance(said.value, HeadLost) and said.value.exit_code == 1
    with socket.socket() as closed:  # a head that no longer answers
        closed.bind((LOOPBACK, 0))
        fake = GoneActor(f"{LOOPBACK}:{closed.getsockname()[1]}")
    with pytest.raises(HeadLost, match="stopped answering"):
        HeadWatch(fake).get(fake, "ref", "the broker")


@pytest.mark.slow
def test_a_cluster_whose_head_dies_mid_study_is_one_line_and_its_runs_are_kept(
        tmp_path, shared_datasets):
    """The cluster's head lost under a running study (its GCS killed, as when the head is
    another machine that goes down; here the driver's own raylet lives on): Ray noticed after
    a minute and ended the command with pages of its own log, exit 1, no word of what to do.
    (Where the driver's own node dies with it, Ray may end the command at once: exit 1.)"""
    from tiny_study import write_tiny_study

    study = write_tiny_study(tmp_path / "tiny.toml", shared_datasets)
    study.write_text(study.read_text().replace("epochs = 3\n", "epochs = 12\n"))
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "mnistlab", "study", str(study), "--quiet", "--out", str(out)]
    with loopback_cluster(nodes=1, cpus_per_node=1) as cluster:
        proc = subprocess.Popen(cmd + ["--backend", "ray", "--address", cluster.address],
                                env={**os.environ, **cluster.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while not list(out.glob("runs/*/summary.json")) and proc.poll() is None:
            assert time.time() < deadline, "no run finished"
            time.sleep(0.1)
        assert proc.poll() is None, "the study ended before its head could be killed"
        (gcs,) = [pid for pid in _alive_in(cluster.groups)
                  if b"gcs_server" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(gcs, signal.SIGKILL)
        killed = time.time()
        said, err = proc.communicate(timeout=120)
    assert time.time() - killed < 40, "Ray's own minute: the loss was not noticed"
    assert proc.returncode == 1, (said, err)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: backend ray: the Ray cluster's head at") and \
        "stopped answering; what finished is kept: re-run the same command" in last, err
    kept = {p.parent.name for p in out.glob("runs/*/summary.json")}
    assert kept
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "results.csv").is_file()
