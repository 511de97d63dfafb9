"""--log tensorboard,mlflow: runs, studies and searches read back from a real MLflow tracking
server (started here on 127.0.0.1 with an SQLite store) with MlflowClient, and from the event
files with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mnistlab import files
from mnistlab.api import run_study, run_tune
from mnistlab.cli import main
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.study import StudyOptions
from mnistlab.training import Hook, train
from mnistlab.tune import TuneOptions

mlflow = pytest.importorskip("mlflow", reason="needs the tracking extra: "
                             'pip install "mnistlab[tracking]"')
pytest.importorskip("tensorboard", reason='needs the tracking extra: pip install '
                    '"mnistlab[tracking]"')
from mlflow import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from mnistlab.tracking import SearchLog, Tracking  # noqa: E402

BOTH = ("tensorboard", "mlflow")
EPOCH_METRICS = ("train_loss", "train_loss_eval", "val_loss", "train_accuracy_running",
                 "train_accuracy_eval", "val_accuracy", "lr")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """A real MLflow tracking server on a free loopback port: SQLite store, artifacts served
    by the server itself (the client uploads them over HTTP). Stopped after the module."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'store.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(uri + "/health", process, 180)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def tiny_config(data: Path, **changes) -> TrainConfig:
    return TrainConfig(dataset=str(data), model="mlp", hidden=(16,), val_size=100,
                       eval_train_size=100, epochs=3, batch_size=50, device="cpu",
                       schedule="constant", optimizer="sgd", lr=0.05).replace(**changes)


def events(logdir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0,
                                                               "tensors": 0})
    accumulator.Reload()
    return accumulator


def steps(client: MlflowClient, run_id: str, metric: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, metric)]


def artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


# --- one run -----------------------------------------------------------------------------------
def test_a_run_logs_live_to_the_server_and_to_event_files(tmp_path, tiny_idx_dir, server):
    out = tmp_path / "run"
    tracking = Tracking(BOTH, out, mlflow_uri=server)
    result = train(tiny_config(tiny_idx_dir), out=out, hooks=tracking.train_hooks())
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("run")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.05" and run.data.params["hidden"] == "16"
    assert set(TrainConfig().to_dict()) <= set(run.data.params)  # every setting
    for metric in EPOCH_METRICS:
        assert steps(client, run.info.run_id, metric) == [1, 2, 3], metric
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.value for m in history] == pytest.approx([r.val_accuracy for r in result.history])
    assert run.data.metrics["final/test_accuracy"] == pytest.approx(
        result.summary.test_accuracy)
    assert {"config.toml", "summary.json", "curves.png", "confusion.png",
            "model.pt"} <= artifacts(client, run.info.run_id)
    tags = run.data.tags
    assert tags["dataset"] == str(tiny_idx_dir) and tags["seed"] == "0"
    assert tags["mnistlab.version"].startswith("0.")
    assert tags["mnistlab.findings"] == (",".join(f.code for f in result.summary.diagnoses)
                                         or "none")
    seen = events(out / "tensorboard")
    assert [s.step for s in seen.Scalars("accuracy/val")] == [1, 2, 3]
    assert [s.value for s in seen.Scalars("loss/train")] == pytest.approx(
        [r.train_loss for r in result.history])
    for tag in ("loss/val", "loss/train_eval", "accuracy/train_running",
                "accuracy/train_eval", "lr"):
        assert len(seen.Scalars(tag)) == 3, tag
    assert set(seen.Tags()["images"]) == {"curves", "confusion"}
    assert "_hparams_/session_start_info" in seen.PluginTagToContent("hparams")
    assert seen.Scalars("hparams/val_accuracy")[0].value == pytest.approx(
        result.summary.val_accuracy)
    # a switch is true or false, not a FLOAT64 between 0 and 1 (torch's hparams() typed it so)
    from tensorboard.plugins.hparams import plugin_data_pb2

    declared = plugin_data_pb2.HParamsPluginData.FromString(
        seen.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    info = {h.name: h for h in declared.hparam_infos}
    assert info["batchnorm"].type == info["model"].type  # DATA_TYPE_STRING
    assert [v.string_value for v in info["batchnorm"].domain_discrete.values] == ["false",
                                                                                 "true"]


def test_the_findings_note_of_a_spanish_study_is_spanish():
    """Its severities were English ("El entrenamiento divergió (problem)")."""
    from spanish import english_in

    from mnistlab.records import Finding, RunSummary
    from mnistlab.tracking.mlflow_store import finding_tag, finding_tags

    summary = RunSummary.__new__(RunSummary)
    object.__setattr__(summary, "diagnoses", (Finding("diverged", "problem", {
        "kind": "nan", "value": float("nan"), "step": 3}),))
    object.__setattr__(summary, "status", "diverged")
    tags = finding_tags(summary, "es")
    assert tags["mnistlab.finding.diverged"].startswith("problema: ")
    assert "(problema)" in tags["mlflow.note.content"] and "(problem)" not in str(tags)
    assert english_in(tags["mlflow.note.content"]) == []
    # the tag set live, as the doctor makes the finding during training, reads the same (it
    # said "problem: El entrenamiento divergió")
    from mnistlab.tracking.mlflow_store import MLflowLogger

    class Store:
        logged: list = []

        def log(self, run_id, **kwargs):
            self.logged.append(kwargs)

    live = MLflowLogger(Path("unused"), store=Store(), lang="es")
    live.run_id = "r"
    live.on_finding(None, 0, summary.diagnoses[0])
    [logged] = Store.logged
    assert logged["tags"]["mnistlab.finding.diverged"] == tags["mnistlab.finding.diverged"]
    assert finding_tag(summary.diagnoses[0], "es") == logged["tags"]


def test_a_run_logged_under_an_earlier_name_is_not_logged_again(tmp_path):
    """Grid cells were named optimizer-hidden=optimizer=adam-…; renamed, a re-run of a study
    logged every such run a second time (caught on review)."""
    from mnistlab.tracking.jobs import _logged_before, run_folder_name

    def logged(label: str, key: str) -> bool:
        return _logged_before(tmp_path / run_folder_name(label, key), label, key)

    key = "abc123def456"
    (tmp_path / "optimizer-hidden=optimizer=adam-hidden=16-seed-0-abc123").mkdir()
    assert logged("optimizer=adam, hidden=16 seed 0", key)
    assert not logged("optimizer=adam, hidden=16 seed 1", key)
    assert not logged("optimizer=adam, hidden=16 seed 0", "fff999000111")
    # another run of that seed whose key shares 6 characters is its own (the label counts)
    (tmp_path / "lr=0.1-seed-0-abc123").mkdir()
    assert not logged("lr=0.5 seed 0", "abc123ffffff")
    # a long label, logged before names were capped at 80 characters
    long = "optimizer=adam, hidden=512-256-128-64, dropout=0.25, lr=0.001, weight_decay=1e-4 seed 0"
    (tmp_path / (long.replace(", ", "-").replace(" ", "-") + "-abc123")).mkdir()
    assert logged(long, key)


def test_a_run_replaced_with_overwrite_is_logged_as_a_run_of_its_own(tmp_path, tiny_idx_dir,
                                                                     server):
    """--overwrite with other settings, then --log: the store's run of the old settings was
    taken for the new one (nothing logged, the old numbers shown), and TensorBoard's event
    files too; a resumed run added its epochs to the old run's."""
    out = tmp_path / "replaced"  # the experiment's name: the module's server is shared
    old, new = tiny_config(tiny_idx_dir, epochs=2), tiny_config(tiny_idx_dir, epochs=2, lr=0.2)
    train(old, out=out, hooks=Tracking(BOTH, out, mlflow_uri=server).train_hooks())
    train(new, out=out, overwrite=True)  # without --log
    tracking = Tracking(BOTH, out, mlflow_uri=server)
    result = train(new, out=out, hooks=tracking.train_hooks())
    assert result.reused
    tracking.finished_folder()  # what the train command does with a run read back
    client = MlflowClient(server)
    logged = client.search_runs([client.get_experiment_by_name("replaced").experiment_id],
                                order_by=["attributes.start_time DESC"])
    assert [r.data.params["lr"] for r in logged] == ["0.2", "0.05"]
    assert logged[0].data.metrics["final/val_accuracy"] == pytest.approx(
        result.summary.val_accuracy)
    now, before = events(out / "tensorboard"), events(out / "tensorboard" / "replaced-1")
    assert [e.value for e in now.Scalars("accuracy/val")] == pytest.approx(
        [r.val_accuracy for r in result.history])
    assert [e.value for e in now.Scalars("lr")] == pytest.approx([0.2, 0.2])
    assert [e.value for e in before.Scalars("lr")] == pytest.approx([0.05, 0.05])


def test_a_folder_s_run_is_its_own_as_train_tells_runs_apart():
    """The first check of a replaced run compared every logged setting as text: a run logged
    by an older version (without its later settings), an augmentation spelled in another
    order, or data resumed from a moved folder each got a second MLflow run."""
    from types import SimpleNamespace

    from mnistlab.tracking.mlflow_store import params_of, same_settings

    config = TrainConfig(dataset="/data/digits", augment="rotate=10,shift=0.1", lr=0.01)

    def logged(**changes):
        params = {**params_of(config.to_dict()), **changes}
        return SimpleNamespace(data=SimpleNamespace(params={k: v for k, v in params.items()
                                                           if v is not None}))

    assert same_settings(logged(), config)
    assert same_settings(logged(ensemble=None, tta=None), config)  # an older version's
    assert same_settings(logged(augment="shift=0.1,rotate=10"), config)
    assert same_settings(logged(dataset="/old/place/digits", device="cuda"), config)
    assert not same_settings(logged(lr="0.05"), config)
    assert not same_settings(logged(dataset="mnist"), config.replace(dataset="fashion-mnist"))
    assert not same_settings(logged(hidden="not,a,list"), config)


def test_without_a_uri_the_store_is_inside_the_run_folder(tmp_path, tiny_idx_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    train(tiny_config(tiny_idx_dir, epochs=2), out=out,
          hooks=Tracking(("mlflow",), out).train_hooks())
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert steps(client, run.info.run_id, "val_loss") == [1, 2]
    assert "model.pt" in artifacts(client, run.info.run_id)
    assert (out / "mlartifacts").is_dir()
    assert not (out / "tensorboard").exists()  # only what --log asked for


def test_a_ctrl_c_while_the_folder_s_store_is_made_leaves_none_half_made(tmp_path, tiny_idx_dir,
                                                                         monkeypatch):
    """MLflow makes its SQLite store in seconds of migrations: a Ctrl-C among them left a
    half-made mlflow.db, and every later run was refused ("table jobs already exists")."""
    from mnistlab.tracking import mlflow_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    out.mkdir()
    real = mlflow_store.Store._opened

    def cut_short(self, uri):
        real(self, uri)  # the tables made, then the Ctrl-C before the store is whole
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow_store.Store, "_opened", cut_short)
    with pytest.raises(KeyboardInterrupt):
        mlflow_store.Store(None, out).client  # noqa: B018
    assert sorted(p.name for p in out.iterdir()) == []  # nothing left to refuse
    monkeypatch.setattr(mlflow_store.Store, "_opened", real)
    train(tiny_config(tiny_idx_dir, epochs=1), out=out,
          hooks=Tracking(("mlflow",), out).train_hooks())
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    assert len(client.search_runs([client.get_experiment_by_name("run").experiment_id])) == 1


def test_a_shared_sqlite_store_is_made_whole_or_not_at_all(tmp_path, monkeypatch):
    """Hunt: two runs started together on a new `--mlflow-uri sqlite:///shared.db` migrated it
    at once and left it refused for good ("table _alembic_tmp_metrics already exists"); it is
    made as the folder's own store is, under a temporary name and linked into place."""
    from mnistlab.tracking import mlflow_store

    shared = tmp_path / "stores" / "shared.db"
    uri = files.sqlite_url(shared)
    real = mlflow_store.Store._opened

    def cut_short(self, opened):
        real(self, opened)
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow_store.Store, "_opened", cut_short)
    with pytest.raises(KeyboardInterrupt):
        mlflow_store.Store(uri, tmp_path / "run")
    assert not shared.exists() and list(shared.parent.iterdir()) == []
    monkeypatch.setattr(mlflow_store.Store, "_opened", real)
    first = mlflow_store.Store(uri, tmp_path / "a")
    run = first.start(first.experiment("a"), "a", {})
    late = mlflow_store.Store(uri, tmp_path / "b")
    late._make_whole(shared)  # as a process that looked before the first one's store was there
    assert late.call("get_run", run) is not None and sorted(
        p.name for p in shared.parent.iterdir()) == ["shared.db"]


def test_a_store_another_process_made_first_is_kept_not_replaced(tmp_path, monkeypatch):
    """Two tune workers in one folder: the one that made its store second replaced the
    first's (os.replace), whose runs were lost with one warning (review)."""
    from mnistlab.tracking import mlflow_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = mlflow_store.Store(None, tmp_path)
    run = first.start(first.experiment("search"), "trial 0", {})
    late = mlflow_store.Store(None, tmp_path)
    late._make_whole(tmp_path / "mlflow.db")  # as a process that looked before the first's
    first.call("log_metric", run, "val_accuracy", 0.5, step=1)
    assert not first.lost and [p.name for p in tmp_path.iterdir()
                               if p.name.startswith(".")] == []
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(run).data.metrics == {"val_accuracy": 0.5}


# MLflow's filters take no escapes: "..." quotes the first; the second, with both quotes, was
# never found again, and each rerun logged the run once more (hunt)
@pytest.mark.parametrize("name", ["o'brien\\run", "q'u\"x", "'\""])
def test_a_run_folder_with_quotes_or_backslashes_in_its_path_is_logged_once(
        name, tmp_path, tiny_idx_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / name
    train(tiny_config(tiny_idx_dir, epochs=1), out=out,
          hooks=Tracking(("mlflow",), out).train_hooks())
    Tracking(("mlflow",), out).finished_folder()  # the same command again: logged already
    client = MlflowClient(files.sqlite_url(out / "mlflow.db"))
    (run,) = client.search_runs([client.get_experiment_by_name(out.name).experiment_id])
    # the run's epochs among its final figures, as a trial's are (hunt)
    assert run.data.metrics["final/epochs"] == 1


def test_a_run_folder_with_url_characters_in_its_name_keeps_its_store_inside(
        tmp_path, tiny_idx_dir, monkeypatch):
    """`--out "x?y"` put the store in a file `x` beside the run folder (the path went into the
    SQLite URL as is); escaped, MLflow also made an empty `x%3Fy` beside it, now taken back."""

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "x?y#z%41"
    train(tiny_config(tiny_idx_dir, epochs=1), out=out,
          hooks=Tracking(("mlflow",), out).train_hooks())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny", out.name]
    client = MlflowClient(files.sqlite_url(out / "mlflow.db"))
    (run,) = client.search_runs([client.get_experiment_by_name(out.name).experiment_id])
    assert "model.pt" in artifacts(client, run.info.run_id)


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_run_folder_renamed_with_its_store_keeps_its_run_and_writes_only_there(
        tmp_path, tiny_idx_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = tmp_path / "first"
    train(tiny_config(tiny_idx_dir, epochs=1), out=first,
          hooks=Tracking(("mlflow",), first).train_hooks())
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    before = files_under(first)
    notes: list[str] = []
    Tracking(("mlflow",), copy, warn=notes.append).finished_folder()  # the command again
    assert notes == [f"note: the MLflow store in {copy} was made in {first} (the folder was "
                     "moved or copied); its runs and files now point here"]
    assert files_under(first) == before  # the original is not written into
    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("copy")  # named after its folder, as it was
    assert experiment.artifact_location == (copy / "mlartifacts").as_uri()
    everywhere = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(everywhere)  # found again, not logged twice
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.artifact_uri.startswith((copy / "mlartifacts").as_uri() + "/")
    assert run.data.tags["mnistlab.folder"] == str(copy)
    assert "model.pt" in artifacts(client, run.info.run_id)  # read from the copy
    shutil.rmtree(first)  # and the copy stands alone
    assert "model.pt" in artifacts(client, run.info.run_id)
    Tracking(("mlflow",), copy, warn=notes.append)  # pointed here once: no second note
    assert len(notes) == 1


def test_a_study_folder_copied_with_its_store_resumes_into_the_copy(tmp_path, tiny_idx_dir,
                                                                     monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tmp_path / "tiny.toml"
    spec.write_text(STUDY.format(data=tiny_idx_dir))
    first, copy = tmp_path / "first", tmp_path / "elsewhere" / "first"
    options = StudyOptions(workers=1, log=("mlflow",))
    run_study(str(spec), first, options=options)
    shutil.copytree(first, copy)
    before = files_under(first)
    run_study(str(spec), copy, options=options)
    assert files_under(first) == before
    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny-tracked").experiment_id
    runs = client.search_runs([experiment])
    assert len(runs) == 4  # the parent and its three children, each once
    for run in runs:
        assert run.info.artifact_uri.startswith((copy / "mlartifacts").as_uri() + "/")
        assert run.data.tags["mnistlab.folder"].startswith(str(copy))
    (parent,) = [r for r in runs if r.data.tags.get("mnistlab.kind") == "study"]
    assert "report.html" in artifacts(client, parent.info.run_id)


def test_a_store_in_the_folder_that_cannot_be_opened_is_one_line_before_training(
        tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "study"
    out.mkdir()
    (out / "mlflow.db").write_bytes(b"not a database " * 200)
    with pytest.raises(MnistlabError) as info:
        Tracking(("mlflow",), out)  # before anything trains, not after a study's first run
    # named as what it is (it was "--mlflow-uri sqlite:///...", a flag the user never gave)
    assert str(info.value).startswith(f"the output folder's MLflow store {out / 'mlflow.db'}: "
                                      "cannot open it (")
    assert str(info.value).endswith("move mlflow.db out of the folder (or delete it) to start "
                                    "a new store there, or give --mlflow-uri")


# --- a study and a search ----------------------------------------------------------------------
STUDY = """
name = "tiny-tracked"
title = "tiny study"
seeds = 1
[base]
dataset = "{data}"
model = "mlp"
hidden = [16]
optimizer = "sgd"
lr = 0.05
schedule = "constant"
batch_size = 50
epochs = 3
val_size = 100
eval_train_size = 100
device = "cpu"
[[experiment]]
name = "learning-rate"
factor = "lr"
values = [0.01, 0.05]
[[experiment]]
name = "epochs"
factor = "epochs"
values = [1, 3]
[final]
choose = "best"
settings = {{ epochs = 2 }}
"""


def test_a_study_s_runs_are_named_in_its_language_and_its_tensorboard_folders_in_english():
    """Under --lang es the MLflow runs were named "optimizer=adam seed 0"; a TensorBoard folder
    keeps its English name, so that a study resumed in another language logs nothing twice."""
    from mnistlab.study.run import RunLabel
    from mnistlab.tracking.jobs import run_folder_name

    label = RunLabel("optimizer", "adam", 0)
    assert (str(label), label.text("es")) == ("optimizer=adam seed 0",
                                              "optimizador adam, semilla 0")
    assert RunLabel("", "base", 2).text("es") == "base, semilla 2"
    assert run_folder_name(str(label), "abcdef123") == "optimizer=adam-seed-0-abcdef"


def test_a_spanish_study_s_run_names_give_values_as_its_report_does():
    """Under --lang es a study's MLflow runs were "tasa de aprendizaje 0.02, semilla 0" and, a
    grid cell, "lr=0.0125, weight_decay=0.001, semilla 1", where the report and `doctor --lang
    es` write 0,02 and "tasa de aprendizaje 0,0125; decaimiento de pesos 0,001". English names
    (TensorBoard's folders) are as they were."""
    from mnistlab.study import parse_study
    from mnistlab.study.plan import Cell, Plan
    from mnistlab.study.run import run_label

    spec = parse_study({"name": "x", "base": {"model": "mlp", "lr": 0.05, "val_size": 500},
                        "experiment": [
                            {"name": "lr", "factor": "lr", "values": [0.05, 0.02]},
                            {"name": "g", "grid": {"lr": [0.05, 0.0125],
                                                   "weight_decay": [0.0, 0.001]}}]})
    grid = next(e for e in spec.experiments if e.name == "g")
    plan = Plan(cells=[Cell("lr", "lr", "0.02", 0, "k1", False),
                       Cell("g", grid.factor, grid.variants[-1].label, 1, "k2", False)])
    assert run_label(spec, plan, "k1", 0).text("es") == "tasa de aprendizaje 0,02, semilla 0"
    assert run_label(spec, plan, "k2", 1).text("es") == (
        "tasa de aprendizaje 0,0125; decaimiento de pesos 0,001, semilla 1")
    assert str(run_label(spec, plan, "k1", 0)) == "lr=0.02 seed 0"
    assert str(run_label(spec, plan, "k2", 1)) == "lr=0.0125, weight_decay=0.001 seed 1"


def test_a_study_is_a_parent_run_with_a_child_per_distinct_run(tmp_path, tiny_idx_dir, server):
    spec = tmp_path / "tiny.toml"
    spec.write_text(STUDY.format(data=tiny_idx_dir))
    out = tmp_path / "study"
    result = run_study(str(spec), out, options=StudyOptions(workers=1, log=BOTH,
                                                             mlflow_uri=server))
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("tiny-tracked").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.data.tags.get("mnistlab.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    # lr 0.01 and 0.05 (a cohort: both members), epochs 1 read off the 3-epoch base, the final
    assert len(result.summaries) == 3
    assert {c.data.tags["mnistlab.key"] for c in children} == set(result.summaries)
    assert {c.info.run_name for c in children} == {"base seed 0", "lr=0.01 seed 0",
                                                   "final seed 0"}
    for child in children:
        epochs = int(child.data.params["epochs"])
        assert steps(client, child.info.run_id, "val_accuracy") == list(range(1, epochs + 1))
        assert {"config.toml", "summary.json", "model.pt"} <= artifacts(client,
                                                                        child.info.run_id)
    assert {"report.html", "results.csv", "plots"} <= artifacts(client, parent.info.run_id)
    assert parent.data.params["seeds"] == "1"
    logdirs = sorted((out / "tensorboard").iterdir())
    assert len(logdirs) == 3  # one log root: tensorboard --logdir STUDY overlays them
    for logdir in logdirs:
        assert events(logdir).Scalars("accuracy/val")
    # resumed, it finds its parent again and adds no child twice
    run_study(str(spec), out, options=StudyOptions(workers=1, log=BOTH, mlflow_uri=server))
    assert len(client.search_runs([experiment])) == len(runs)


SPACE = """
name = "tiny-search"
[base]
dataset = "{data}"
model = "mlp"
hidden = [16]
val_size = 100
eval_train_size = 100
epochs = 2
batch_size = 50
device = "cpu"
schedule = "constant"
[space.lr]
type = "float"
low = 0.001
high = 0.1
log = true
"""


@pytest.mark.parametrize("logger,folder", [("tensorboard", "tensorboard"),
                                            ("mlflow", "mlartifacts")])
def test_a_file_where_a_logger_makes_its_folder_is_said_before_any_trial(tmp_path, tiny_idx_dir,
                                                                        logger, folder):
    """A file named `tensorboard` in a search's folder was said after the first trial had
    trained and been stored (exit 1); `mlartifacts` only warned, and every run's files were
    left out of MLflow."""
    pytest.importorskip("tensorboard" if logger == "tensorboard" else "mlflow")
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    out = tmp_path / "tune"
    out.mkdir()
    (out / folder).write_text("mine")
    with pytest.raises(MnistlabError, match=f"^{out / folder}: a file stands where --log "
                                            f"{logger} makes its folder; move or rename it$"):
        run_tune(str(space), out, options=TuneOptions(trials=1, log=(logger,)))
    assert sorted(p.name for p in out.iterdir()) == [folder]  # no trial, no tune.db


def test_a_search_is_a_parent_run_with_a_child_per_trial(tmp_path, tiny_idx_dir, server):
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    out = tmp_path / "tune"
    result = run_tune(str(space), out, options=TuneOptions(
        trials=3, retrain_seeds=1, log=BOTH, mlflow_uri=server))
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("tiny-search").experiment_id
    runs = client.search_runs([experiment])
    (parent,) = [r for r in runs if r.data.tags.get("mnistlab.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = {c.data.tags["mnistlab.trial"]: c for c in children if "mnistlab.trial" in c.data.tags}
    assert set(trials) == {str(t.number) for t in result.trials}
    for trial in result.trials:
        child = trials[str(trial.number)]
        assert float(child.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert steps(client, child.info.run_id, "val_accuracy") == sorted(
            trial.intermediate_values)
        # every final/ figure at the last epoch, as a run's (epochs, seconds were at step 0)
        last = max(trial.intermediate_values)
        for name in ("final/val_accuracy", "final/epochs", "final/seconds"):
            assert steps(client, child.info.run_id, name) == [last], name
        assert child.data.tags["mnistlab.state"] == trial.state.name.lower()
    retrained = [c for c in children if "mnistlab.trial" not in c.data.tags]
    assert len(retrained) == 1 and "model.pt" in artifacts(client, retrained[0].info.run_id)
    assert {"report.html", "trials.csv", "best.toml"} <= artifacts(client, parent.info.run_id)
    assert parent.data.metrics["best/val_accuracy"] == pytest.approx(result.best.value)
    assert len(list((out / "tensorboard").glob("trial-*"))) == 3


def test_a_stopped_search_ends_its_parent_and_a_resume_tags_what_it_changed(
        tmp_path, tiny_idx_dir, monkeypatch):
    """Stopped by a Ctrl-C, a search's MLflow parent run stayed RUNNING for good; resumed
    with --trials 3, it still said trials 2 (params cannot change)."""
    import mnistlab.api

    monkeypatch.chdir(tmp_path)  # MLflow puts a sqlite store's artifacts in ./mlruns
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    out, uri = tmp_path / "tune", f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = TuneOptions(trials=2, retrain_seeds=0, log=("mlflow",), mlflow_uri=uri)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as ctrl_c:
        ctrl_c.setattr(mnistlab.api, "analyse", stopped)  # after the trials: a Ctrl-C
        with pytest.raises(KeyboardInterrupt):
            run_tune(str(space), out, options=options)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny-search").experiment_id

    def parent():
        (found,) = [r for r in client.search_runs([experiment])
                    if r.data.tags.get("mnistlab.kind") == "search"]
        return found

    assert parent().info.status == "KILLED"
    run_tune(str(space), out, options=dataclasses.replace(options, trials=3))
    assert parent().info.status == "FINISHED"
    assert parent().data.params["trials"] == "2"
    # the command, as a study's parent holds it (docs/tracking.md): a search's had none
    assert parent().data.params["command"] == (
        f"mnistlab tune {space} --out {out} --trials 2 --retrain-seeds 0 --log mlflow "
        f"--mlflow-uri {uri}")
    assert {k: v for k, v in parent().data.tags.items() if k.startswith("mnistlab.now.")} == {
        "mnistlab.now.trials": "3",  # what changed, and nothing else: the command that did
        "mnistlab.now.command": parent().data.params["command"].replace("-trials 2", "-trials 3")}


def test_a_trial_child_cut_short_is_completed_when_the_search_resumes(tmp_path, tiny_idx_dir,
                                                                       monkeypatch):
    from mnistlab.tracking import mlflow_store as ml

    monkeypatch.chdir(tmp_path)  # MLflow puts a sqlite store's artifacts in ./mlruns
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    out, uri = tmp_path / "tune", f"sqlite:///{tmp_path / 'mlflow.db'}"
    cut: dict[str, str] = {}
    real_start, real_end = ml.Store.start, ml.Store.end

    def start(self, experiment, name, tags, parent=None):
        run_id = real_start(self, experiment, name, tags, parent)
        cut.setdefault("run", run_id) if name.startswith("trial 0") else None
        return run_id

    def end(self, run_id, status="FINISHED"):
        if run_id == cut.get("run"):  # the server goes away after the trial was logged
            self.lost = True
        real_end(self, run_id, status)

    monkeypatch.setattr(ml.Store, "start", start)
    monkeypatch.setattr(ml.Store, "end", end)
    options = TuneOptions(trials=2, retrain_seeds=0, log=("mlflow",), mlflow_uri=uri)
    run_tune(str(space), out, options=options)
    client = MlflowClient(uri)
    assert client.get_run(cut["run"]).info.status == "RUNNING"
    monkeypatch.undo()
    result = run_tune(str(space), out, options=options)  # the same command: nothing to train
    experiment = client.get_experiment_by_name("tiny-search").experiment_id
    children = {r.data.tags["mnistlab.trial"]: r for r in client.search_runs([experiment])
                if "mnistlab.trial" in r.data.tags}
    assert sorted(children) == ["0", "1"] and children["0"].info.run_id == cut["run"]
    for trial in result.trials:
        child = children[str(trial.number)]
        assert child.info.status == "FINISHED"
        assert steps(client, child.info.run_id, "val_accuracy") == sorted(
            trial.intermediate_values)  # each step once


@pytest.mark.parametrize("lang, name, parent", [("en", "trial 7 (pruned)", "search pruned-en"),
                                                 ("es", "ensayo 7 (podado)", "búsqueda pruned-es")])
def test_a_pruned_trial_is_marked_as_such(tmp_path, tiny_idx_dir, server, lang, name, parent):
    """Under --lang es the MLflow runs were still named in English."""
    import optuna

    from mnistlab.tune.space import load_space

    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    spec = load_space(str(space))
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.PRUNED, params={"lr": 0.002},
        distributions={"lr": optuna.distributions.FloatDistribution(0.001, 0.1, log=True)},
        intermediate_values={1: 0.31})
    trial.number = 7
    log = SearchLog(Tracking(BOTH, tmp_path / "tune", mlflow_uri=server, lang=lang),
                    f"pruned-{lang}", spec, {"trials": 1})
    log.trial_finished(trial)
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(f"pruned-{lang}").experiment_id
    (child,) = client.search_runs([experiment], "tags.`mnistlab.trial` = '7'")
    assert child.info.run_name == name
    assert client.get_run(child.data.tags["mlflow.parentRunId"]).info.run_name == parent
    assert child.data.tags["mnistlab.pruned"] == "true"
    assert steps(client, child.info.run_id, "val_accuracy") == [1]
    hparams = events(tmp_path / "tune" / "tensorboard" / "trial-0007")
    assert [s.value for s in hparams.Scalars("accuracy/val")] == pytest.approx([0.31])


def finished_trial(number: int, values: dict[int, float], *, status: str = "complete"):
    """A complete trial as a search's storage holds it (`status`: its training's end)."""
    import optuna

    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, params={"lr": 0.01 + number / 100},
        distributions={"lr": optuna.distributions.FloatDistribution(0.001, 0.1, log=True)},
        value=0.0 if status == "diverged" else values[max(values)],
        intermediate_values=values,
        user_attrs={"status": status, "epochs": len(values), "seconds": 1.5})
    trial.number = number
    return trial


def search_log_in(out: Path, name: str, data: Path, loggers=("mlflow",)) -> SearchLog:
    """A search's driver logging into the folder's own store (`out`/mlflow.db)."""
    from mnistlab.tune.space import load_space

    space = out.parent / "space.toml"
    space.write_text(SPACE.format(data=data))
    out.mkdir(exist_ok=True)
    return SearchLog(Tracking(loggers, out), name, load_space(str(space)), {"trials": 4})


def test_tune_workers_sharing_a_folder_log_one_parent_and_each_child_once(
        tmp_path, tiny_idx_dir, monkeypatch):
    """docs/tune.md runs several workers on one folder: each one's end logged the trials the
    others had logged (read at its start, never again), and the retrained run twice (one
    parent, 15 children for 9 trials)."""
    import types

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "tune"
    first, second = (search_log_in(out, "shared", tiny_idx_dir),
                     search_log_in(out, "shared", tiny_idx_dir))
    trials = [finished_trial(n, {1: 0.5 + n / 10, 2: 0.6 + n / 10}) for n in range(4)]
    for log, trial in zip((first, second, first, second), trials, strict=True):
        log.trial_finished(trial)  # each worker's own trials, as they finish
    retrained = out / "retrain" / "best-seed0"
    train(tiny_config(tiny_idx_dir, epochs=1), out=retrained)
    result = types.SimpleNamespace(trials=trials, retrained=[types.SimpleNamespace(
        out=str(retrained))], compared=[], best=trials[3])
    first.finish(result)  # the report: one worker after the other, each with every trial
    second.finish(result)
    client = MlflowClient(files.sqlite_url(out / "mlflow.db"))
    runs = client.search_runs([client.get_experiment_by_name("shared").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("mnistlab.kind") == "search"]
    keys = sorted(r.data.tags["mnistlab.key"] for r in runs if r is not parent)
    assert keys == ["retrain-best-seed0", "trial-0", "trial-1", "trial-2", "trial-3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r is not parent} == {
        parent.info.run_id}


def test_a_worker_finds_or_makes_the_parent_only_while_no_other_does(tmp_path, tiny_idx_dir,
                                                                    monkeypatch):
    """Two workers started together on one folder each made a parent run: a lock in the
    folder lets one look for it, and make it, at a time."""
    from mnistlab.config import MLFLOW_LOCK

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "tune"
    log = search_log_in(out, "locked", tiny_idx_dir)
    with files.exclusive(out / MLFLOW_LOCK, "another worker's logging"):
        finding = threading.Thread(target=log.parent)
        finding.start()
        finding.join(2)
        assert finding.is_alive() and log.run_id is None  # waits its turn
    finding.join(60)
    assert log.run_id is not None


def test_a_diverged_trial_is_logged_diverged_not_complete(tmp_path, tiny_idx_dir, monkeypatch):
    """trials.csv says `diverged`, and a diverged train run ends FAILED in MLflow: a trial
    that diverged (complete, scored 0) was an ordinary complete trial in MLflow and in
    TensorBoard's HParams."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "tune"
    log = search_log_in(out, "diverging", tiny_idx_dir, BOTH)
    log.trial_finished(finished_trial(0, {1: 0.1, 2: 0.1}, status="diverged"))
    log.trial_finished(finished_trial(1, {1: 0.4, 2: 0.7}))
    client = MlflowClient(files.sqlite_url(out / "mlflow.db"))
    experiment = client.get_experiment_by_name("diverging").experiment_id
    (bad,) = client.search_runs([experiment], "tags.`mnistlab.trial` = '0'")
    (good,) = client.search_runs([experiment], "tags.`mnistlab.trial` = '1'")
    assert (bad.info.status, bad.info.run_name) == ("FAILED", "trial 0 (diverged)")
    assert bad.data.tags["mnistlab.state"] == bad.data.tags["mnistlab.status"] == "diverged"
    assert (good.info.status, good.data.tags["mnistlab.state"]) == ("FINISHED", "complete")
    for number, state in ((0, "diverged"), (1, "complete")):
        seen = events(out / "tensorboard" / f"trial-{number:04d}")
        start = plugin_data_pb2.HParamsPluginData.FromString(
            seen.PluginTagToContent("hparams")["_hparams_/session_start_info"])
        assert start.session_start_info.hparams["state"].string_value == state


# --- off the happy path ------------------------------------------------------------------------
class Proxy:
    """A TCP relay to the tracking server: closing it is the network going away mid-run."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = [self.listener]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.closed:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.closed = True
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone does not
            except OSError:
                pass
            s.close()


class CutAfterFirstEpoch(Hook):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def on_epoch_end(self, run) -> None:
        if run.epoch == 1:
            self.proxy.close()


def test_a_connection_lost_mid_run_warns_once_and_training_goes_on(tmp_path, tiny_idx_dir,
                                                                      server):
    proxy = Proxy(server)
    out = tmp_path / "run"
    said: list[str] = []
    tracking = Tracking(BOTH, out, mlflow_uri=proxy.uri, warn=said.append)
    result = train(tiny_config(tiny_idx_dir, epochs=4), out=out,
                   hooks=[*tracking.train_hooks(), CutAfterFirstEpoch(proxy)])
    assert result.summary.status == "completed" and len(result.history) == 4
    assert len(said) == 1 and "training goes on" in said[0], said
    assert len((out / "metrics.csv").read_text().splitlines()) == 5  # nothing lost locally
    assert (out / "model.pt").is_file()
    assert [s.step for s in events(out / "tensorboard").Scalars("accuracy/val")] == [1, 2, 3, 4]
    client = MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id],
                                f"tags.`mnistlab.folder` = '{out.resolve()}'")
    assert steps(client, run.info.run_id, "val_accuracy") == [1]  # what got through
    # the same command again, the server back: the run is completed, not logged twice
    Tracking(("mlflow",), out, mlflow_uri=server).finished_folder()
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id],
                                f"tags.`mnistlab.folder` = '{out.resolve()}'")
    assert steps(client, run.info.run_id, "val_accuracy") == [1, 2, 3, 4]
    assert run.info.status == "FINISHED" and "model.pt" in artifacts(client, run.info.run_id)


class StopAfterEpoch(Hook):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, run) -> None:
        if run.epoch == self.epoch:
            from mnistlab import interrupt

            interrupt.request(signal.SIGTERM)  # as a Ctrl-C would: the run stops, resumable


def _stopped_logged_then_resumed_unlogged(data: Path, out: Path, loggers: tuple[str, ...]):
    """A 3-epoch run logged to `loggers` and stopped after its first epoch, then resumed to
    its end without them (a command run again without --log): its result."""
    from mnistlab import interrupt

    try:
        train(tiny_config(data, epochs=3), out=out,
              hooks=[*Tracking(loggers, out).train_hooks(), StopAfterEpoch(1)])
    finally:
        interrupt.flag().clear()
    return train(tiny_config(data, epochs=3), out=out)


class StopInFirstEpoch(Hook):
    def on_step(self, run, sample) -> None:
        from mnistlab import interrupt

        interrupt.request(signal.SIGTERM)


def test_a_ctrl_c_in_the_first_epoch_leaves_one_mlflow_run_not_two(tmp_path, tiny_idx_dir,
                                                                    monkeypatch):
    from mnistlab import interrupt

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    try:
        first = train(tiny_config(tiny_idx_dir), out=out,
                      hooks=[*Tracking(("mlflow",), out).train_hooks(), StopInFirstEpoch()])
    finally:
        interrupt.flag().clear()
    assert first.summary.status == "interrupted" and first.history == []
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("run").experiment_id
    (stopped,) = client.search_runs([experiment])
    assert stopped.info.status == "KILLED"
    train(tiny_config(tiny_idx_dir), out=out, hooks=Tracking(("mlflow",), out).train_hooks())
    (run,) = client.search_runs([experiment])
    assert run.info.run_id == stopped.info.run_id and run.info.status == "FINISHED"
    assert steps(client, run.info.run_id, "val_accuracy") == [1, 2, 3]
    # another configuration in the same folder (--overwrite) is another MLflow run (stopped
    # in its first epoch, it puts the replaced run back and says so)
    from mnistlab.runs import ReplacementStopped

    try:
        with pytest.raises(ReplacementStopped):
            train(tiny_config(tiny_idx_dir, lr=0.1), out=out, overwrite=True,
                  hooks=[*Tracking(("mlflow",), out).train_hooks(), StopInFirstEpoch()])
    finally:
        interrupt.flag().clear()
    train(tiny_config(tiny_idx_dir, lr=0.2), out=out, overwrite=True,
          hooks=Tracking(("mlflow",), out).train_hooks())
    assert len(client.search_runs([experiment])) == 3


def test_a_run_resumed_without_mlflow_is_completed_there_when_logged_again(tmp_path,
                                                                           tiny_idx_dir,
                                                                           monkeypatch):
    """Stopped with --log mlflow, resumed without it, then run again with it: the MLflow run
    stayed KILLED at its cut for good, its later epochs and final numbers never logged, as
    "logged whole" (hunt)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    result = _stopped_logged_then_resumed_unlogged(tiny_idx_dir, out, ("mlflow",))
    tracking = Tracking(("mlflow",), out)
    tracking.finished_folder()  # what `train --log mlflow` does with the finished folder
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert run.info.status == "FINISHED"
    assert steps(client, run.info.run_id, "val_accuracy") == [1, 2, 3]
    assert run.data.metrics["final/val_accuracy"] == pytest.approx(result.summary.val_accuracy)


def test_a_resumed_run_logs_its_final_numbers_once(tmp_path, tiny_idx_dir, monkeypatch):
    """Each attempt logged final/* at its own step, so a run stopped once and resumed held
    final/val_accuracy [(1, 0.61), (3, 0.95)] (bug hunt)."""
    from mnistlab import interrupt
    from mnistlab.training import engine

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    both = ("mlflow", "tensorboard")
    monkeypatch.setattr(engine, "code_version", lambda: "0.1.0+old")
    try:
        train(tiny_config(tiny_idx_dir, epochs=3), out=out,
              hooks=[*Tracking(both, out).train_hooks(), StopAfterEpoch(1)])
    finally:
        interrupt.flag().clear()
    monkeypatch.setattr(engine, "code_version", lambda: "0.1.0+new")  # updated, then resumed
    result = train(tiny_config(tiny_idx_dir, epochs=3), out=out,
                   hooks=Tracking(both, out).train_hooks())
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    # its version tag says what summary.json says (it kept the first attempt's)
    assert run.data.tags["mnistlab.version"] == result.summary.code_version == \
        "0.1.0+old, resumed by 0.1.0+new"
    history = client.get_metric_history(run.info.run_id, "final/val_accuracy")
    assert [(m.step, m.value) for m in history] == [
        (3, pytest.approx(result.summary.val_accuracy))]
    # TensorBoard too: the interrupted attempt wrote its "final" figures and images at epoch 1
    seen = events(out / "tensorboard")
    assert [(s.step, s.value) for s in seen.Scalars("hparams/val_accuracy")] == [
        (3, pytest.approx(result.summary.val_accuracy))]
    assert [image.step for image in seen.Images("curves")] == [3]
    assert [s.step for s in seen.Scalars("accuracy/val")] == [1, 2, 3]


def test_an_ensemble_logs_each_member_alone_beside_its_own_figures(tmp_path, tiny_idx_dir,
                                                                   monkeypatch):
    """summary.json lists each member's accuracy; neither tool had them (bug hunt)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    result = train(tiny_config(tiny_idx_dir, epochs=1, ensemble=2), out=out,
                   hooks=Tracking(("mlflow", "tensorboard"), out).train_hooks())
    members = {m["seed"]: m for m in result.summary.members}
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    seen = events(out / "tensorboard")
    for seed, member in members.items():
        for key in ("val_accuracy", "test_accuracy"):
            assert run.data.metrics[f"member/{seed}/{key}"] == pytest.approx(member[key])
            assert seen.Scalars(f"hparams/member/{seed}/{key}")[0].value == pytest.approx(
                member[key])
    assert run.data.metrics["final/val_accuracy"] == pytest.approx(result.summary.val_accuracy)


def test_a_run_interrupted_with_tensorboard_and_resumed_without_is_completed_later(
        tmp_path, tiny_idx_dir):
    """Its event folder held the interrupted attempt's first epoch, so the same command with
    --log tensorboard again took it as logged: epochs 2-3 and its end never were (review)."""
    out = tmp_path / "run"
    result = _stopped_logged_then_resumed_unlogged(tiny_idx_dir, out, ("tensorboard",))
    for _ in range(2):  # read back finished, logged once however often it is asked
        Tracking(("tensorboard",), out).finished_folder()
        seen = events(out / "tensorboard")
        assert [s.step for s in seen.Scalars("accuracy/val")] == [1, 2, 3]
        assert [(s.step, s.value) for s in seen.Scalars("hparams/val_accuracy")] == [
            (3, pytest.approx(result.summary.val_accuracy))]


def test_a_finding_the_end_no_longer_holds_loses_its_mlflow_tag(monkeypatch):
    """A finding said during training and dropped by the end's diagnosis stayed tagged, beside
    mnistlab.findings = none (bug hunt)."""
    from types import SimpleNamespace

    from mnistlab.tracking import mlflow_store

    deleted = []
    store = SimpleNamespace(
        call=lambda method, *args: (SimpleNamespace(data=SimpleNamespace(tags={
            "mnistlab.finding.softmax-twice": "problem: …", "mnistlab.finding.kept": "x",
            "other": "y"})) if method == "get_run" else deleted.append(args)))
    mlflow_store._drop_stale_findings(store, "r", {"mnistlab.finding.kept": "x"})
    assert deleted == [("r", "mnistlab.finding.softmax-twice")]


def test_tensorboard_added_on_resume_shows_the_epochs_trained_before_it(tmp_path, tiny_idx_dir):
    from mnistlab import interrupt

    out = tmp_path / "run"
    try:
        first = train(tiny_config(tiny_idx_dir, epochs=3), out=out, hooks=[StopAfterEpoch(2)])
    finally:
        interrupt.flag().clear()
    assert first.summary.status == "interrupted"
    train(tiny_config(tiny_idx_dir, epochs=3), out=out,
          hooks=Tracking(("tensorboard",), out).train_hooks())
    assert [s.step for s in events(out / "tensorboard").Scalars("accuracy/val")] == [1, 2, 3]


def cli(*argv: str, env: dict | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; {prelude}from mnistlab.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def train_argv(data: Path, out: Path, *more: str) -> list[str]:
    return ["train", "--dataset", str(data), "--model", "mlp", "--hidden", "16",
            "--val-size", "100", "--eval-train-size", "100", "--epochs", "1", "--device", "cpu",
            "--quiet", "--out", str(out), *more]


def test_a_tracking_uri_that_does_not_answer_is_one_line_before_training(tmp_path,
                                                                          tiny_idx_dir):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    closed = free_port()  # nothing listens
    try:
        for uri in (f"http://127.0.0.1:{silent.getsockname()[1]}", f"http://127.0.0.1:{closed}"):
            out = tmp_path / f"run-{uri.rsplit(':', 1)[1]}"
            started = time.monotonic()
            done = cli(*train_argv(tiny_idx_dir, out, "--log", "mlflow", "--mlflow-uri", uri))
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "no MLflow server answers there" in lines[0], lines
            assert "Traceback" not in done.stderr
            assert not out.exists()  # nothing trained, nothing written
            assert time.monotonic() - started < 60  # seconds, not MLflow's minutes of retries
    finally:
        silent.close()
    also = cli(*train_argv(tiny_idx_dir, tmp_path / "env", "--log", "tensorboard,mlflow"),
               env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed}"})
    assert also.returncode == 2 and "no MLflow server answers" in also.stderr
    from mnistlab.tracking.mlflow_store import check_answers

    with pytest.raises(MnistlabError) as info:  # a password in the URI is not said
        check_answers(f"http://me:secret@127.0.0.1:{closed}")
    assert "secret" not in str(info.value) and "http://me:***@127.0.0.1" in str(info.value)


@pytest.mark.parametrize("uri", ["http://[::1", "http://localhost:abc", "http://a b:5000"])
def test_an_address_that_is_no_url_is_one_line_naming_where_it_came_from(uri, monkeypatch):
    """These raised from deep in urllib (a traceback); and a URI from MLFLOW_TRACKING_URI was
    blamed on --mlflow-uri."""
    from mnistlab.tracking.mlflow_store import check_answers, store_named

    with pytest.raises(MnistlabError, match=r"^--mlflow-uri .*: not a valid address \(.+\); "
                       "give one such as http://127.0.0.1:5000$"):
        check_answers(uri)
    assert store_named(uri, None, False) == f"MLFLOW_TRACKING_URI {uri}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    pytest.importorskip("mlflow")
    with pytest.raises(MnistlabError, match=r"^MLFLOW_TRACKING_URI .*: not a valid address"):
        Tracking(("mlflow",), Path("unused"))


def test_another_tool_s_sqlite_file_is_refused_before_mlflow_writes_into_it(tmp_path):
    """`--mlflow-uri sqlite:///STUDY/study.db` was refused only after MLflow had added its
    tables to the study's database."""
    import sqlite3

    pytest.importorskip("mlflow")
    db = tmp_path / "study.db"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE runs (key TEXT)")
        connection.commit()
    before = db.read_bytes()
    with pytest.raises(MnistlabError, match=r"study.db is another tool's database \(tables "
                       r"runs\), not an MLflow store, and was left as it is"):
        Tracking(("mlflow",), tmp_path / "out", mlflow_uri=f"sqlite:///{db}")
    assert db.read_bytes() == before
    Tracking(("mlflow",), tmp_path / "out", mlflow_uri=f"sqlite:///{tmp_path / 'new.db'}")


def test_a_long_reason_is_cut_between_words():
    from mnistlab.tracking.mlflow_store import _first_line

    line = _first_line(ValueError("word " * 100), limit=23)
    assert line == "word word word word …"


def test_a_folder_store_says_how_to_keep_it_or_leave_it(tmp_path, tiny_idx_dir):
    """MLflow 3 refuses a folder store (./mlruns, MLflow 2's default) unless asked, in a
    paragraph whose first line never reached the fix; the advice given must work."""
    store = tmp_path / "mlruns"
    store.mkdir()
    out = tmp_path / "run"
    argv = train_argv(tiny_idx_dir, out, "--log", "mlflow", "--mlflow-uri", store.as_uri())
    refused = cli(*argv, env={"MLFLOW_ALLOW_FILE_STORE": "false"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert "a folder store" in line and "sqlite:///" in line, line
    assert line.endswith("set MLFLOW_ALLOW_FILE_STORE=true to keep logging into the folder")
    assert not out.exists()
    kept = cli(*argv, env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    assert kept.returncode == 0, kept.stderr
    assert list(store.glob("*/*/meta.yaml"))  # an experiment with a run, in the folder


def test_a_store_that_opens_but_cannot_be_written_is_one_line_before_training(tmp_path,
                                                                          tiny_idx_dir):
    """An SQLite store in a folder nothing can be written to opened (reads need no journal),
    printed MLflow's 60-line traceback at the run's first write, and the run trained with
    logging off (hunt). As root the folder is made immutable (chattr +i), as permissions do
    not bind root."""
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    made = cli(*train_argv(tiny_idx_dir, tmp_path / "a", "--log", "mlflow", "--mlflow-uri", uri))
    assert made.returncode == 0, made.stderr
    locked = subprocess.run(["chattr", "+i", str(store)], capture_output=True) \
        if os.geteuid() == 0 else None
    if os.geteuid() == 0 and locked.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {locked.stderr.decode().strip()}")
    if os.geteuid() != 0:
        store.chmod(0o555)
    try:
        refused = cli(*train_argv(tiny_idx_dir, tmp_path / "b", "--log", "mlflow",
                                  "--mlflow-uri", uri))
    finally:
        subprocess.run(["chattr", "-i", str(store)], capture_output=True) \
            if os.geteuid() == 0 else store.chmod(0o755)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert "cannot write to it" in line and "or give another --mlflow-uri" in line, line
    assert not (tmp_path / "b" / "model.pt").exists()


@pytest.mark.parametrize("code", [401, 502])
def test_a_server_behind_a_login_answers_and_a_proxy_without_one_does_not(code):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mnistlab.tracking.mlflow_store import _first_line, check_answers

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://me:secret@127.0.0.1:{server.server_address[1]}"
    try:  # MLflow's client logs in (MLFLOW_TRACKING_USERNAME); our check only asks who is there
        if code == 401:
            check_answers(uri)
        else:  # a proxy whose MLflow is down: one line now, not MLflow's minutes of retries
            with pytest.raises(MnistlabError, match="no MLflow server answers there \\(HTTP 502"):
                check_answers(uri)
    finally:
        server.shutdown()
        server.server_close()
    said = _first_line(RuntimeError(f"API request to {uri}/api/2.0/x failed"))
    assert "secret" not in said and "me:***@" in said  # MLflow's own text names the URL


@pytest.mark.parametrize("missing, logger", [("mlflow", "mlflow"),
                                             ("torch.utils.tensorboard", "tensorboard")])
def test_without_the_tracking_extra_one_line_names_it(tmp_path, tiny_idx_dir, missing, logger):
    done = cli(*train_argv(tiny_idx_dir, tmp_path / "run", "--log", logger),
               prelude=f"sys.modules[{missing!r}] = None; ")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "mnistlab[tracking]"' in lines[0], lines
    assert not (tmp_path / "run").exists()  # nothing started


def test_bad_log_values_are_one_line(tmp_path):
    with pytest.raises(MnistlabError, match="log: unknown value 'wandb'; choose one of "
                                            "tensorboard, mlflow"):
        StudyOptions(log=("wandb",))
    with pytest.raises(MnistlabError, match="--mlflow-uri: add --log mlflow"):
        TuneOptions(log=("tensorboard",), mlflow_uri="http://127.0.0.1:1")
    assert StudyOptions(log="mlflow,tensorboard,mlflow").log == ("mlflow", "tensorboard")
    assert "--log" in StudyOptions(log="mlflow").flags()


# --- the Optuna dashboard ------------------------------------------------------------------------
def test_the_optuna_dashboard_reads_a_finished_search(tmp_path, tiny_idx_dir):
    pytest.importorskip("optuna_dashboard")
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(data=tiny_idx_dir))
    out = tmp_path / "tune"
    result = run_tune(str(space), out, options=TuneOptions(trials=2, report=False))
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "optuna-dashboard"), f"sqlite:///{out / 'tune.db'}",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(base + "/api/meta", process, 120)
        with urllib.request.urlopen(base + "/api/studies", timeout=10) as reply:
            studies = json.load(reply)["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == "tiny-search"]
        with urllib.request.urlopen(f"{base}/api/studies/{study['study_id']}", timeout=10) as r:
            shown = json.load(r)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert shown["has_intermediate_values"]
    trials = {t["number"]: t for t in shown["trials"]}
    assert set(trials) == {t.number for t in result.trials}
    for trial in result.trials:
        values = {v["step"]: v["value"] for v in trials[trial.number]["intermediate_values"]}
        assert values == pytest.approx(trial.intermediate_values)
        assert sorted(values) == [1, 2]  # one value per epoch


@pytest.mark.parametrize("uri", ["127.0.0.1:5055", "localhost:5000", "[::1]:5000",
                                 "me@mlflow.example.org:8443/path"])
def test_a_server_address_without_http_is_said_to_need_it(uri, tmp_path, capsys):
    """It was called "a folder store (file:, ./mlruns)", with advice to set
    MLFLOW_ALLOW_FILE_STORE=true, which would log into a folder named after the address."""
    pytest.importorskip("mlflow")
    argv = ["train", "--model", "mlp", "--hidden", "8", "--epochs", "1", "--log", "mlflow",
            "--mlflow-uri", uri, "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: --mlflow-uri {uri}: a server's address without http://, which "
                   f"MLflow would take for a folder; give http://{uri}")
    assert not (tmp_path / "run").exists() and not Path(uri.split("/")[0]).exists()
    assert main([*argv[:-3], "--mlflow-uri", "mlflow.example.org:443", *argv[-3:]]) == 2
    assert capsys.readouterr().err.strip().endswith("give https://mlflow.example.org:443")
