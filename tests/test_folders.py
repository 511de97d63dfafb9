"""Output folders off the happy path: a finished run is never silently replaced, a foreign
folder is never written into, a bad --out (a file, read-only, a full disk) is said in one line
before the work, files get the umask's permissions, and a file name cannot break a record."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from drawn import make_run
from PIL import Image

from mnistlab import MnistlabError, files, interrupt, runs
from mnistlab.cli import main
from mnistlab.config import TrainConfig
from mnistlab.predict import Prediction, format_predictions
from mnistlab.study.run import settings_changed
from mnistlab.study.store import Store


@pytest.fixture()
def train_args(tiny_idx_dir) -> list[str]:
    """A run of about a second on the tiny synthetic dataset."""
    return ["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
            "--epochs", "1", "--val-size", "100", "--eval-train-size", "100", "--device", "cpu",
            "--quiet"]


@pytest.fixture()
def tiny_study_toml(tmp_path, tiny_idx_dir) -> Path:
    """A study of two one-epoch runs on the tiny synthetic dataset (seconds)."""
    path = tmp_path / "micro-study.toml"
    path.write_text(f'name = "micro"\nseeds = 1\n[base]\n{MICRO_BASE.format(tiny_idx_dir)}'
                    '[[experiment]]\nname = "lr"\nfactor = "lr"\nvalues = [0.01, 0.05]\n')
    return path


@pytest.fixture()
def tiny_space_toml(tmp_path, tiny_idx_dir) -> Path:
    path = tmp_path / "micro-space.toml"
    path.write_text(f'name = "micro"\n[base]\n{MICRO_BASE.format(tiny_idx_dir)}'
                    '[space.lr]\ntype = "float"\nlow = 0.001\nhigh = 0.1\nlog = true\n')
    return path


MICRO_BASE = ('dataset = "{}"\nmodel = "mlp"\nhidden = [16]\nepochs = 1\nval_size = 100\n'
              'eval_train_size = 100\ndevice = "cpu"\n')


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "Traceback" not in err
    return err


def snapshot(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# --- train --out -----------------------------------------------------------------------------
def test_a_finished_run_is_read_back_and_another_config_is_refused(train_args, tmp_path,
                                                                   capsys):
    out = tmp_path / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    finished = snapshot(out)
    capsys.readouterr()

    assert main([*train_args, "--out", str(out)]) == 0  # the same settings: nothing to train
    assert "already holds this run" in capsys.readouterr().err
    assert snapshot(out) == finished

    assert main([*train_args, "--lr", "0.01", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "another configuration" in err and "lr 0.001 there, 0.01 here" in err
    assert "--overwrite" in err
    assert snapshot(out) == finished

    assert main([*train_args, "--lr", "0.01", "--out", str(out), "--overwrite"]) == 0
    assert "lr = 0.01" in (out / "config.toml").read_text()
    assert snapshot(out)["summary.json"] != finished["summary.json"]


def test_overwrite_keeps_the_old_run_until_the_new_one_can_train(train_args, tmp_path,
                                                                  capsys):
    out = tmp_path / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    finished = snapshot(out)
    data = train_args[train_args.index("--dataset") + 1]
    typo = [data + "-typo" if a == data else a for a in train_args]
    capsys.readouterr()
    assert main([*typo, "--lr", "0.01", "--out", str(out), "--overwrite"]) == 2
    assert "neither a known dataset" in one_line_error(capsys)
    assert snapshot(out) == finished  # model.pt, metrics.csv, summary.json: all still there
    assert main([*train_args, "--out", str(out)]) == 0  # and still read back as finished
    assert "already holds this run" in capsys.readouterr().err


def test_a_finished_run_whose_summary_is_damaged_is_not_trained_over(train_args, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    (out / "summary.json").write_text('{"status": "completed", "val_accuracy": "oops"}')
    model = (out / "model.pt").read_bytes()
    capsys.readouterr()
    assert main([*train_args, "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "summary.json: damaged" in err and "--overwrite" in err
    assert (out / "model.pt").read_bytes() == model


def test_an_interrupted_run_in_a_default_folder_says_how_to_resume_it(train_args, tmp_path,
                                                                      capsys, monkeypatch):
    from mnistlab import interrupt
    from mnistlab.training import hooks

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hooks.Progress, "on_step", lambda self, run, sample: interrupt.request())
    try:
        assert main(train_args) == 130  # no --out: runs/<time>-<dataset>-mlp
    finally:
        interrupt.flag().clear()
    (folder,) = (tmp_path / "runs").iterdir()
    err = capsys.readouterr().err
    assert f"when this command is run again with --out runs/{folder.name}:" in err


def _run_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}


def test_overwrite_stopped_before_its_first_whole_epoch_keeps_the_old_run(train_args, tmp_path,
                                                                          capsys, monkeypatch):
    """A Ctrl-C seconds into `--overwrite` deleted the finished run for a partial epoch that
    resumes from the start (hunt). The old run stays whole until the new one has an epoch."""
    from mnistlab.training import hooks

    out = tmp_path / "r"
    assert main([*train_args, "--out", str(out)]) == 0
    before = _run_files(out)
    capsys.readouterr()
    monkeypatch.setattr(hooks.Progress, "on_step", lambda self, run, sample: interrupt.request())
    try:
        assert main([*train_args, "--out", str(out), "--hidden", "32", "--overwrite"]) == 130
    finally:
        interrupt.flag().clear()
    assert capsys.readouterr().err.strip() == (
        f"interrupted before the new run's first whole epoch: the run it was to replace is kept "
        f"in {out} as it was; run the command again to replace it")
    assert _run_files(out) == before and not (out / runs.REPLACED_FOLDER).exists()
    # stopped after a whole epoch, the new run stands (resumable) and the old one is gone
    monkeypatch.setattr(hooks.Progress, "on_step", lambda self, run, sample: None)
    monkeypatch.setattr(hooks.Progress, "on_epoch_end",
                        lambda self, run: interrupt.request(), raising=False)
    try:
        assert main([*train_args, "--out", str(out), "--hidden", "32", "--epochs", "2",
                     "--overwrite"]) == 130
    finally:
        interrupt.flag().clear()
    assert (out / "checkpoint.pt").is_file() and not (out / runs.REPLACED_FOLDER).exists()
    assert TrainConfig.from_dict(runs.read_toml(out / "config.toml")).hidden == (32,)


def test_overwrite_killed_before_its_first_whole_epoch_is_put_back_by_the_next_train(
        train_args, tmp_path, capsys):
    """Killed (no Ctrl-C to answer) between setting the old run aside and the new run's
    first epoch: doctor says where it is, and the next train into the folder puts it back."""
    out = tmp_path / "r"
    assert main([*train_args, "--out", str(out)]) == 0
    before = _run_files(out)
    runs.replace_run(out, TrainConfig.from_dict(runs.read_toml(out / "config.toml")).replace(
        hidden=(32,)))  # where the killed command stopped
    capsys.readouterr()
    assert main(["doctor", str(out)]) == 2
    assert (f"an --overwrite here was stopped before the new run's first whole epoch (killed); "
            f"the run it was to replace is set aside in .replaced/, and the next `mnistlab "
            f"train --out {out}` puts it back first") in capsys.readouterr().err
    assert main(["evaluate", str(out)]) == 2  # review: it said only "no model.pt here"
    assert (f"no model.pt here: an --overwrite was stopped before the new run's first whole "
            f"epoch (killed), and the run it was to replace is set aside in .replaced/; the next "
            f"`mnistlab train --out {out}` puts it back") in capsys.readouterr().err
    assert main([*train_args, "--out", str(out)]) == 0  # the old run's settings: read back
    assert "already holds this run, finished" in capsys.readouterr().err
    assert _run_files(out) == before and not (out / runs.REPLACED_FOLDER).exists()


def test_a_replacement_killed_after_its_first_epoch_is_the_new_run_and_a_refusal_deletes_nothing(
        train_args, tmp_path, capsys):
    """Review: the next train settled a replacement killed after its first checkpoint by
    deleting the old run, even a train then refused; doctor had said it would come back.
    The new run's first checkpoint drops the old one; a leftover from the moment between is
    kept by a refused command."""
    out = tmp_path / "r"
    assert main([*train_args, "--out", str(out)]) == 0
    old = TrainConfig.from_dict(runs.read_toml(out / "config.toml"))
    runs.replace_run(out, old.replace(hidden=(32,)))
    (out / "checkpoint.pt").write_bytes(b"saved")  # killed between the save and the drop
    capsys.readouterr()
    assert main([*train_args, "--out", str(out)]) == 2  # the old settings: another run's now
    assert "holds a run of another configuration" in capsys.readouterr().err
    assert (out / runs.REPLACED_FOLDER / "model.pt").is_file()  # nothing deleted
    assert main(["evaluate", str(out)]) == 2  # the new run's, which resumes
    assert "to resume it" in capsys.readouterr().err


def test_a_replacement_puts_back_or_sets_aside_the_tensorboard_events_with_its_run(tmp_path):
    """Review: a Ctrl-C'd --overwrite put the old run back "as it was", but TensorBoard then
    showed the stopped run (the old events were in replaced-1/)."""
    out = tmp_path / "r"
    (out / "tensorboard").mkdir(parents=True)
    (out / "config.toml").write_text(TrainConfig().to_toml())
    (out / "model.pt").write_bytes(b"old model")
    (out / "tensorboard" / "events.out.tfevents.1.old").write_bytes(b"old")
    runs.replace_run(out, TrainConfig().replace(epochs=3))
    (out / "tensorboard" / "events.out.tfevents.2.new").write_bytes(b"new")
    assert runs.restore_replaced(out)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["events.out.tfevents.1.old"]
    assert (out / "model.pt").read_bytes() == b"old model" and TrainConfig.from_dict(
        runs.read_toml(out / "config.toml")) == TrainConfig()
    runs.replace_run(out, TrainConfig().replace(epochs=3))  # and once the new run saves
    (out / "tensorboard" / "events.out.tfevents.2.new").write_bytes(b"new")
    runs.drop_replaced(out)
    assert sorted(p.relative_to(out).as_posix() for p in (out / "tensorboard").rglob("*")
                  if p.is_file()) == ["tensorboard/events.out.tfevents.2.new",
                                      "tensorboard/replaced-1/events.out.tfevents.1.old"]
    assert not (out / "model.pt").exists() and not (out / runs.REPLACED_FOLDER).exists()


def test_a_run_inside_another_run_folder_is_refused_before_it_trains(train_args, tmp_path,
                                                                      capsys):
    """`--out RUN/sub` trained into the run folder, which was then refused as holding "files
    mnistlab did not write (sub)": mnistlab had written them."""
    assert main([*train_args, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main([*train_args, "--out", str(tmp_path / "r" / "sub" / "deeper")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --out {tmp_path / 'r' / 'sub' / 'deeper'}: inside the run folder "
        f"{tmp_path / 'r'} (made by `mnistlab train`), which holds only its own files; give "
        "a folder outside it")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(
        ["config.toml", "metrics.csv", "summary.json", "model.pt", "curves.png",
         "confusion.png", ".lock"])


def test_a_study_or_search_inside_a_run_folder_is_refused_before_it_trains(
        train_args, tmp_path, capsys, tiny_study_toml, tiny_space_toml):
    """`study --out RUN/sub` (or `tune`) trained into the run folder, which was then refused
    as holding "files mnistlab did not write (sub)": train refused it already (hunt)."""
    assert main([*train_args, "--out", str(tmp_path / "r")]) == 0
    before = sorted(p.name for p in (tmp_path / "r").iterdir())
    for command in (["study", str(tiny_study_toml)], ["tune", str(tiny_space_toml),
                                                       "--trials", "1"]):
        capsys.readouterr()
        assert main([*command, "--out", str(tmp_path / "r" / "sub")]) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: --out {tmp_path / 'r' / 'sub'}: inside the run folder {tmp_path / 'r'} "
            "(made by `mnistlab train`), which holds only its own files; give a folder "
            "outside it")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == before


def test_two_trainings_started_in_one_second_take_two_default_folders(tmp_path, monkeypatch,
                                                                      missing_device):
    """Without --out, two commands started in the same second took one folder, and the
    second was refused: "another process is running a training run in this folder"."""
    import time

    from mnistlab.cli.train import default_out
    from mnistlab.config import TrainConfig

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20261205-234029")
    config = TrainConfig(dataset="mnist", model="mlp")
    made = [default_out(config) for _ in range(3)]
    assert [str(p) for p in made] == ["runs/20261205-234029-mnist-mlp",
                                      "runs/20261205-234029-mnist-mlp-2",
                                      "runs/20261205-234029-mnist-mlp-3"]
    assert all(p.is_dir() for p in made)
    # refused before anything is written: taken back
    assert main(["train", "--device", missing_device, "--quiet"]) == 2
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [p.name for p in made]


@pytest.mark.parametrize("stop", [MnistlabError("refused"), KeyboardInterrupt()])
def test_a_default_folder_left_empty_is_taken_back_with_the_runs_folder_it_made(
        tmp_path, monkeypatch, capsys, stop):
    """A refused `train` without --out left `runs/` behind; a Ctrl-C before the run wrote
    anything (reading the data) left its empty stamped folder."""
    import mnistlab.training

    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mnistlab.training, "train", stopped)
    assert main(["train", "--quiet"]) in (2, 130)
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs" / "mine").mkdir(parents=True)  # a runs/ of the user's own: kept
    assert main(["train", "--quiet"]) in (2, 130)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mine"]
    capsys.readouterr()


def test_a_default_folder_a_data_check_refuses_is_taken_back(tmp_path, monkeypatch, capsys):
    """`train --dataset nope` (a typo) left runs/<stamp>-nope-mlp holding config.toml and
    .lock, written when the folder was claimed, before the data was checked: `doctor runs/*`
    then read it as a killed run."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "mlp", "--dataset", "nope", "--quiet"]) == 2
    assert "dataset: 'nope' is neither" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_new_out_folder_a_data_check_refuses_is_taken_back(tmp_path, monkeypatch, capsys):
    """The same for a --out that did not exist (and its new parents); an empty --out that did
    is left as it was, and one where another process trains now is not touched. A dataset
    named in a --config file is said to come from it (it read as a flag's)."""

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text('dataset = "nope"\nmodel = "mlp"\n')
    argv = ["train", "--config", str(config), "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "new" / "deeper")]) == 2
    assert ("(--dataset nope comes from --config " + str(config) + ": change it there, or give "
            "--dataset)") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
    (tmp_path / "empty").mkdir()
    assert main([*argv, str(tmp_path / "empty")]) == 2
    assert list((tmp_path / "empty").iterdir()) == []
    # a new --out that another process made and trains in meanwhile is its, not taken back
    import mnistlab.training

    busy = tmp_path / "busy"
    holder = ("import sys, time, pathlib, filelock; d = pathlib.Path(sys.argv[1]); "
              "d.mkdir(); (d / 'config.toml').write_text('x'); "
              "lock = filelock.FileLock(d / '.lock'); lock.acquire(); "
              "(d / 'held').touch(); time.sleep(60)")

    def started_beside(*args, **kwargs):
        child = subprocess.Popen([sys.executable, "-c", holder, str(busy)])
        while not (busy / "held").exists():
            time.sleep(0.05)
        (busy / "held").unlink()
        started_beside.child = child
        raise MnistlabError(f"{busy}: another process is running a training run in this "
                            "folder; wait for it or use another --out")

    monkeypatch.setattr(mnistlab.training, "train", started_beside)
    try:
        assert main(["train", "--quiet", "--out", str(busy)]) == 2
        assert sorted(p.name for p in busy.iterdir()) == [".lock", "config.toml"]
    finally:
        started_beside.child.kill()
        started_beside.child.wait()
    assert "another process" in capsys.readouterr().err


def test_a_file_where_a_study_or_search_makes_a_run_folder_is_not_blamed_on_out(tmp_path):
    """A file at a search's retrain/<name> (or a study's runs/<key>) was "--out ...: exists
    and is not a folder; give a folder path", of an --out the user never gave."""
    from mnistlab.training import train

    config = TrainConfig(model="mlp", hidden=(8,), epochs=1, train_subset=200, val_size=50)
    (tmp_path / "retrain").mkdir()
    (tmp_path / "retrain" / "best-seed1").write_text("x")
    for out, file in ((tmp_path / "retrain" / "best-seed1", tmp_path / "retrain" / "best-seed1"),
                      (tmp_path / "retrain" / "best-seed1" / "deeper",
                       tmp_path / "retrain" / "best-seed1")):
        with pytest.raises(MnistlabError) as refused:
            train(config, out=out, named_by_settings=True)
        assert str(refused.value) == (f"{file}: a file stands where mnistlab makes a folder: "
                                      "move or rename it")
    with pytest.raises(MnistlabError, match="^--out .*: exists and is not a folder; give a "
                       "folder path$"):
        train(config, out=tmp_path / "retrain" / "best-seed1")  # the user's own --out
    # a study's cohort: said before it trains (it trained, then failed writing its members)
    from synth import blobs

    from mnistlab.data.tensors import prepare_data
    from mnistlab.progress import SilentReporter
    from mnistlab.study.backends import train_unit
    from mnistlab.study.plan import PlannedRun

    class Cache:
        def splits(self, config):
            return prepare_data(config, blobs(n_train=400, n_test=100), torch.device("cpu"))

    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    (study / "runs" / "k1").write_text("x")
    unit = [PlannedRun("k0", config.replace(seed=0), False),
            PlannedRun("k1", config.replace(seed=1), False)]
    with pytest.raises(MnistlabError, match="k1: a file stands where mnistlab makes a folder"):
        train_unit(unit, study, Cache(), SilentReporter())
    assert not (study / "runs" / "k0").exists()  # nothing trained


def test_the_same_augmentation_written_another_way_is_the_same_run(train_args, tmp_path,
                                                                    capsys):
    """"scale=0.1,rotate=10" after "rotate=10,scale=0.1" was another configuration (and
    --overwrite, which it offered, trained the same run again); "none" after no --augment
    showed as "(augment  there, none here)"."""
    out = ["--out", str(tmp_path / "r")]
    assert main([*train_args, "--augment", "rotate=10,scale=0.1", *out]) == 0
    capsys.readouterr()
    assert main([*train_args, "--augment", "scale=0.1, rotate=10.0", *out]) == 0
    assert "already holds this run, finished" in capsys.readouterr().err
    assert main([*train_args, "--augment", "scale=0.1,rotate=10,shift=0", *out]) == 0
    assert "already holds this run, finished" in capsys.readouterr().err  # a zero does nothing
    assert main([*train_args, "--augment", "rotate=10", *out]) == 2  # another augmentation
    assert "(augment rotate=10,scale=0.1 there, rotate=10 here)" in capsys.readouterr().err
    assert main([*train_args, "--augment", "rotate=10.0000001,scale=0.1", *out]) == 2
    assert ("(augment rotate=10,scale=0.1 there, rotate=10.0000001,scale=0.1 here)"
            in capsys.readouterr().err)  # not "the same to 6 digits"
    assert runs.same_run(TrainConfig(augment="erase=0.5,erase_area=0.25"),
                         TrainConfig(augment="erase=0.5"))  # the area erase takes unsaid
    assert not runs.same_run(TrainConfig(augment="erase=0.5,erase_area=0.2"),
                             TrainConfig(augment="erase=0.5"))
    assert main([*train_args, "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main([*train_args, "--augment", "none", "--out", str(tmp_path / "plain")]) == 0
    assert "already holds this run, finished" in capsys.readouterr().err


def test_a_run_cut_short_under_overwrite_resumes_without_it(train_args, tmp_path, capsys,
                                                             monkeypatch):
    """`train ... --overwrite` stopped after a whole epoch said "resumes when this command is
    run again": that command, --overwrite in it, threw the kept epoch away."""
    from mnistlab.training import hooks

    real = hooks.Progress.on_epoch_end

    def stop_after(self, run):
        real(self, run)
        interrupt.request()

    args = [*(a if a != "1" else "2" for a in train_args), "--out", str(tmp_path / "r")]
    assert main(args) == 0
    monkeypatch.setattr(hooks.Progress, "on_epoch_end", stop_after)
    try:
        assert main([*args, "--lr", "0.02", "--overwrite"]) == 130
    finally:
        interrupt.flag().clear()
    assert ("interrupted; the run resumes from its last whole epoch when this command is run "
            f"again without --overwrite: {tmp_path / 'r'}") in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*args, "--lr", "0.02"]) == 0  # it goes on from epoch 2
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2"]


def test_a_ctrl_c_in_the_final_scoring_names_the_folder_that_resumes_it(train_args, tmp_path,
                                                                       capsys, monkeypatch):
    """Outside the epochs the Ctrl-C reached the generic line ("run the same command again"),
    which without --out trained from scratch in a new folder."""
    from mnistlab.training import finish

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(finish, "make_summary", stopped)
    assert main(train_args) == 130
    (folder,) = (tmp_path / "runs").iterdir()
    err = capsys.readouterr().err
    assert (f"interrupted; the run resumes from its last whole epoch when this command is run "
            f"again with --out runs/{folder.name}: runs/{folder.name}") in err
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main([*train_args, "--out", f"runs/{folder.name}"]) == 0  # it goes on there
    assert list((tmp_path / "runs").iterdir()) == [folder]
    from mnistlab.training import single  # before any epoch (reading the data): no epoch

    monkeypatch.setattr(single, "prepare_data", stopped)
    assert main([*train_args, "--out", "early"]) == 130  # nothing computed: the new folder
    assert "interrupted" in capsys.readouterr().err  # is taken back, as a default one is
    assert not (tmp_path / "early").exists()
    (tmp_path / "early").mkdir()  # a folder of the user's: kept, and named
    assert main([*train_args, "--out", "early"]) == 130
    assert ("interrupted; the run resumes from the start (no epoch was whole) when this "
            "command is run again: early") in capsys.readouterr().err
    assert main([*train_args, "--out", "early", "--lang", "es"]) == 130  # in its language
    assert ("interrumpido; la ejecución continuará desde el principio (ninguna época estaba "
            "completa) cuando ejecutes de nuevo este comando: early"
            ) in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["garbage [[[\n", None])
def test_a_damaged_config_toml_is_restored_from_the_run_s_own_files(train_args, tmp_path,
                                                                    capsys, damage):
    out = tmp_path / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    config = (out / "config.toml").read_text()
    model = (out / "model.pt").read_bytes()
    if damage is None:
        (out / "config.toml").unlink()
    else:
        (out / "config.toml").write_text(damage)
    capsys.readouterr()
    assert main([*train_args, "--out", str(out)]) == 0  # not "another configuration"
    assert "already holds this run" in capsys.readouterr().err
    assert (out / "config.toml").read_text() == config and (out / "model.pt").read_bytes() == model


def test_mnistlab_s_own_warnings_are_one_line(train_args, tmp_path):
    # the real process: pytest records warnings instead of showing them
    result = subprocess.run([sys.executable, "-m", "mnistlab", *train_args, "--val-from", "test",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0
    err = result.stderr
    [line] = [line for line in err.splitlines() if "val-from=test" in line]
    assert line.startswith("warning: val-from=test: validating on the test set")
    assert "warnings.warn" not in err and "UserWarning" not in err


@pytest.mark.parametrize("name", ["summary.json", "model.pt", "metrics.csv"])
def test_a_study_s_run_whose_files_are_damaged_is_trained_again(tiny_idx_dir, tmp_path, name):
    """Studies and searches have no --overwrite to offer: their runs are trained again (a
    damaged model.pt or metrics.csv used to stop a search's resume, naming --overwrite)."""
    from mnistlab.config import TrainConfig
    from mnistlab.training import train

    config = TrainConfig(dataset=str(tiny_idx_dir), model="mlp", hidden=(16,), epochs=1,
                         val_size=100, eval_train_size=100, device="cpu")
    out = tmp_path / "run"
    train(config, out=out)
    (out / name).write_bytes((out / name).read_bytes()[:40] + b"\x00 damaged")
    with pytest.raises(MnistlabError, match="damaged"):
        train(config, out=out, refuse_damaged=True)  # the train command: refused, not trained
    result = train(config, out=out)
    assert not result.reused and result.summary.status == "completed"
    assert train(config, out=out).reused  # whole again


def test_a_second_train_on_the_same_folder_gets_a_lock_error(train_args, tmp_path, capsys):
    out = tmp_path / "run"
    with files.exclusive(out / runs.LOCK_FILE, "a training run"):
        assert main([*train_args, "--out", str(out)]) == 2
    assert "another process is running a training run" in one_line_error(capsys)
    assert not (out / "summary.json").exists()


def test_a_wait_for_a_lock_is_said_once_and_only_when_there_is_one(tmp_path):
    """A search waiting for another worker's retraining (or a slow storage) said nothing for
    minutes: it looked hung."""
    import threading

    lock, said = tmp_path / ".report.lock", []
    with files.exclusive(lock, "the report", wait=True, waiting=lambda: said.append("free")):
        pass
    assert said == []
    taken, release = threading.Event(), threading.Event()

    def hold():
        with files.exclusive(lock, "the report"):
            taken.set()
            release.wait(20)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(20)
    threading.Timer(1.0, release.set).start()
    with files.exclusive(lock, "the report", wait=True, waiting=lambda: said.append("held")):
        assert release.is_set()  # it waited for the holder
    holder.join(20)
    assert said == ["held"]


@pytest.mark.parametrize("command", ["train", "study", "tune"])
def test_a_foreign_folder_is_refused_and_left_untouched(command, train_args, tmp_path,
                                                        tiny_study_toml, tiny_space_toml,
                                                        capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / ".draft.tmp").write_text("mine too")
    (out / "config.toml").write_text("# my own settings, not a run's")
    before = snapshot(out)
    argv = {"train": [*train_args], "study": ["study", str(tiny_study_toml), "--quiet"],
            "tune": ["tune", str(tiny_space_toml), "--trials", "1", "--quiet"]}[command]
    assert main([*argv, "--out", str(out)]) == 2
    # the user's own names first, hidden ones last; their config.toml is not "a run folder"
    held = "notes.txt, .draft.tmp" if command == "train" else "config.toml, notes.txt, .draft.tmp"
    assert f"not empty and not a {'run' if command == 'train' else command} folder (it holds " \
        f"{held})" in one_line_error(capsys)
    assert snapshot(out) == before


@pytest.mark.parametrize("command,mark,said", [
    ("train", "study.db", "is a study folder (made by `mnistlab study`), not a run folder"),
    ("study", "summary.json+metrics.csv", "is a run folder (made by `mnistlab train`), not a "
     "study folder"),
    ("tune", "study.db", "is a study folder (made by `mnistlab study`), not a tune folder"),
    ("train", "tune.db", "is a tune folder (made by `mnistlab tune`), not a run folder"),
    ("tune", "model.pt+config.toml", "is a run folder (made by `mnistlab train`), not a tune "
     "folder"),
    ("study", "checkpoint.pt+config.toml", "is a run folder (made by `mnistlab train`), not a "
     "study folder"),
    # a model.pt of the user's own (a common PyTorch name) is not taken for one of ours, nor
    # a summary.json
    ("study", "model.pt", "not empty and not a study folder (it holds model.pt, .lock)"),
    ("study", "summary.json", "not empty and not a study folder (it holds summary.json, .lock)")])
def test_another_command_s_folder_is_named_for_what_it_is(command, mark, said, train_args,
                                                          tmp_path, tiny_study_toml,
                                                          tiny_space_toml, capsys):
    out = tmp_path / "theirs"
    out.mkdir()
    for name in mark.split("+"):
        (out / name).write_text("")
    (out / ".lock").write_text("")
    before = snapshot(out)
    argv = {"train": [*train_args], "study": ["study", str(tiny_study_toml), "--quiet"],
            "tune": ["tune", str(tiny_space_toml), "--trials", "1", "--quiet"]}[command]
    assert main([*argv, "--out", str(out)]) == 2
    assert said in one_line_error(capsys)
    assert snapshot(out) == before


def test_a_run_folder_with_files_added_is_said_to_be_one(train_args, tmp_path, capsys):
    """An ONNX export written into a run folder made the next train call it "not a run
    folder", while evaluate, doctor and predict read it as one."""
    out = tmp_path / "run"
    assert main([*train_args, "--out", str(out)]) == 0
    (out / "model.onnx").write_text("")
    capsys.readouterr()
    assert main([*train_args, "--out", str(out)]) == 2
    assert one_line_error(capsys).endswith(
        f"--out {out}: a run folder holding files mnistlab did not write (model.onnx); move "
        "them out of it, or give another folder")


@pytest.mark.parametrize("name", ["../escape", "/tmp/escape", "a/../../escape", ".."])
def test_a_study_name_cannot_escape_the_studies_folder(name, tiny_study_toml, tmp_path,
                                                       monkeypatch, capsys):
    """The name becomes the default output folder, studies/<name>: it must stay a name."""
    study = tmp_path / "named.toml"
    study.write_text(tiny_study_toml.read_text().replace('name = "micro"', f'name = "{name}"'))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["study", str(study), "--quiet", "--workers", "1"]) == 2
    assert "name" in one_line_error(capsys)
    assert list(work.iterdir()) == [] and not (tmp_path / "escape").exists()


def test_a_study_deletes_only_its_own_temporaries(tiny_study_toml, tmp_path):
    out = tmp_path / "study"
    study = ["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out", str(out)]
    assert main(study) == 0
    theirs = out / "runs" / ".results.csv.draft.tmp"
    theirs.write_text("a user's file")
    ours = out / f".results.csv.k2j3h4{files.TEMP_SUFFIX}"
    ours.write_text("left by a killed study")
    assert main(study) == 0
    assert theirs.exists() and not ours.exists()


def test_a_run_deletes_its_killed_temporaries(tmp_path, tiny_idx_dir):
    """A train killed while writing its checkpoint left a hidden 70 MB temporary that no
    later train, --overwrite or doctor removed (hunt); only a study cleaned its own."""
    out = tmp_path / "run"
    train = ["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
             "--epochs", "1", "--val-size", "100", "--quiet", "--out", str(out)]
    assert main(train) == 0
    ours = out / f".checkpoint.pt.k2j3h4{files.TEMP_SUFFIX}"
    ours.write_bytes(b"left by a killed run")
    assert main(train) == 0  # read back: nothing trained, the temporary still goes
    assert not ours.exists()


def test_a_folder_of_another_study_is_refused(tiny_study_toml, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out",
                 str(out)]) == 0
    other = tmp_path / "other.toml"
    other.write_text(tiny_study_toml.read_text().replace("values = [0.01, 0.05]",
                                                         "values = [0.02, 0.05]"))
    other.write_text(other.read_text().replace("epochs = 1", "epochs = 2"))
    capsys.readouterr()
    assert main(["study", str(other), "--quiet", "--out", str(out)]) == 2
    err = one_line_error(capsys)  # what changed, named, so the user can put it back
    assert "holds this study made from other settings" in err
    assert "base epochs 1 -> 2" in err
    assert "experiment 'lr' variants 0.01, 0.05 -> 0.02, 0.05" in err
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(tiny_study_toml.read_text().replace('name = "micro"', 'name = "nano"'))
    assert main(["study", str(renamed), "--quiet", "--out", str(out)]) == 2
    assert "holds another study ('micro'); use another --out" in one_line_error(capsys)
    # its --quick form: "holds another study ('micro')" of a study named micro was a riddle
    quick = tmp_path / "quick.toml"
    quick.write_text(tiny_study_toml.read_text() + "\n[quick]\nmax_epochs = 1\n")
    assert main(["study", str(quick), "--quick", "--quiet", "--out", str(out)]) == 2
    assert ("holds another study ('micro': the full form of this study; --quick makes "
            "another); use another --out") in one_line_error(capsys)


def test_a_study_whose_dataset_folder_moved_says_to_put_it_back(tiny_study_toml, tiny_idx_dir,
                                                                 tmp_path, capsys):
    """The study file following a moved folder was told "made from other settings" as if
    the user had changed one: the runs are named after the folder, so it has to go back."""
    out = tmp_path / "study"
    assert main(["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out",
                 str(out)]) == 0
    moved = tiny_idx_dir.rename(tmp_path / "moved")
    tiny_study_toml.write_text(tiny_study_toml.read_text().replace(str(tiny_idx_dir),
                                                                   str(moved)))
    capsys.readouterr()
    assert main(["study", str(tiny_study_toml), "--quiet", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert f"{tiny_idx_dir} is not there now: a study's runs are named after the dataset " \
        "folder they read, so put that folder back and put the settings back" in err
    shutil.copytree(moved.rename(tiny_idx_dir), moved)  # the old one there too: as before
    assert main(["study", str(tiny_study_toml), "--quiet", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "holds this study made from other settings" in err and "not there now" not in err


def test_a_study_run_whose_config_was_edited_by_hand_says_so_not_overwrite(
        tiny_study_toml, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out",
                 str(out)]) == 0
    (out / "study.db").unlink()  # lost: the run folders are what is left
    config = next((out / "runs").glob("*/config.toml"))
    config.write_text(config.read_text().replace("epochs = 1", "epochs = 3"))
    capsys.readouterr()
    assert main(["study", str(tiny_study_toml), "--quiet", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "changed by hand" in err and "epochs" in err and "--overwrite" not in err


def test_a_study_cohort_whose_run_configs_were_edited_by_hand_is_refused(tiny_study_toml, tmp_path,
                                                                         capsys):
    study = tmp_path / "cohort.toml"  # two seeds of each setting: trained as cohorts
    study.write_text(tiny_study_toml.read_text().replace("seeds = 1", "seeds = 2"))
    out = tmp_path / "study"
    assert main(["study", str(study), "--quiet", "--workers", "1", "--out", str(out)]) == 0
    (out / "study.db").unlink()
    for config in (out / "runs").glob("*/config.toml"):
        config.write_text(config.read_text().replace("epochs = 1", "epochs = 3"))
    trained = snapshot(out / "runs")
    capsys.readouterr()
    assert main(["study", str(study), "--quiet", "--workers", "1", "--out", str(out)]) == 2
    assert "changed by hand" in one_line_error(capsys)
    assert snapshot(out / "runs") == trained  # nothing rewritten


@pytest.mark.parametrize("row", [None, '"x"', "{bad",
                                 '["micro", {}, [{"a": 1}], "explicit", null]'])
def test_a_missing_or_damaged_record_of_the_settings_gives_the_plain_refusal(
        row, tiny_study_toml, tmp_path, capsys):
    """None: the folder of an earlier version, which did not keep it; else a damaged row,
    which never refuses the study it belongs to."""
    out = tmp_path / "study"
    assert main(["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out",
                 str(out)]) == 0
    with sqlite3.connect(out / "study.db") as db:
        if row is None:
            db.execute("DELETE FROM meta WHERE name = 'identity_settings'")
        else:
            db.execute("UPDATE meta SET value = ? WHERE name = 'identity_settings'", (row,))
    db.close()
    other = tmp_path / "other.toml"
    other.write_text(tiny_study_toml.read_text().replace("epochs = 1", "epochs = 2"))
    capsys.readouterr()
    assert main(["study", str(other), "--quiet", "--out", str(out)]) == 2
    assert "holds another study (or this one made from other settings)" in one_line_error(capsys)
    assert main(["study", str(tiny_study_toml), "--quiet", "--out", str(out)]) == 0
    with Store(out / "study.db") as store:  # the same study resumed: the record is made good
        assert store.identity_settings()[0] == "micro"


def test_settings_changed_names_each_difference_in_words():
    base = ["s", {"lr": 0.1, "hidden": [8]},
            [["lr", "lr", False, [["0.1", {"lr": 0.1}]]], ["opt", "optimizer", False, []]],
            "explicit", {"epochs": 3}]
    same = json.loads(json.dumps(base))
    # the hash differs (1 against 1.0), the values compare equal
    assert settings_changed(base, same) == ["a setting written another way, such as 1 against 1.0"]
    new = json.loads(json.dumps(base))
    new[1]["hidden"] = [16]
    del new[1]["lr"]
    new[2][0][3][0][1] = {"lr": 0.2}
    new[2][1][2] = True
    new[2].append(["drop", "dropout", False, []])
    new[3], new[4] = "best", None
    assert settings_changed(base, new) == [
        "base lr 0.1 -> (default)", "base hidden [8] -> [16]", "experiment 'drop' added",
        "experiment 'lr' variants' settings", "experiment 'opt' test false -> true",
        "final choose explicit -> best", "final epochs 3 -> (not set)"]  # hunt: not train's
    with pytest.raises(ValueError):  # a list of another shape: the caller's plain refusal
        settings_changed(base, ["s", {}])
    swapped = json.loads(json.dumps(base))
    swapped[2].reverse()
    assert settings_changed(base, swapped) == ["the experiments' order"]
    # a reworded augmentation is said to be one: its runs are stored under the first wording
    reworded = json.loads(json.dumps(base))
    base[1]["augment"], reworded[1]["augment"] = "rotate=10,shift=0.1", "shift=0.1, rotate=10"
    assert settings_changed(base, reworded) == [
        'base augment "rotate=10,shift=0.1" -> "shift=0.1, rotate=10" (the same augmentation '
        "written another way: the runs are stored under the first)"]
    reworded[1]["augment"] = "rotate=10"
    assert settings_changed(base, reworded) == ['base augment "rotate=10,shift=0.1" -> '
                                                '"rotate=10"']


# --- a bad --out, said before the work -------------------------------------------------------
@pytest.fixture()
def toy_model(tmp_path) -> Path:
    return make_run(tmp_path / "toy", model="mlp", hidden=(8,))


@pytest.fixture()
def image(tmp_path) -> Path:
    path = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(path)
    return path


def commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image, target: Path
             ) -> dict[str, list[str]]:
    """Every command that writes, aimed at `target`."""
    return {
        "train": [*train_args, "--out", str(target)],
        "study": ["study", str(tiny_study_toml), "--quiet", "--out", str(target)],
        "tune": ["tune", str(tiny_space_toml), "--trials", "1", "--quiet", "--out", str(target)],
        "export": ["export", str(toy_model), "--no-check", "--out", str(target / "m.onnx")],
        "predict --show": ["predict", str(toy_model), str(image), "--show",
                           str(target / "sheet.png")],
    }


WRITERS = ["train", "study", "tune", "export", "predict --show"]


@pytest.mark.parametrize("command", WRITERS)
def test_out_that_is_a_file(command, train_args, tiny_study_toml, tiny_space_toml, toy_model,
                            image, tmp_path, capsys):
    pytest.importorskip("onnx") if command == "export" else None
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    argv = commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image,
                    blocker)[command]
    assert main(argv) == 2
    assert "not a folder" in one_line_error(capsys)
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("link", ["loop", "dangling"])
def test_out_through_a_symbolic_link_loop_or_to_nowhere(command, link, train_args,
                                                        tiny_study_toml, tiny_space_toml,
                                                        toy_model, image, tmp_path, capsys):
    """A loop of links raised RuntimeError (a traceback) in train and tune; a link to a
    folder that is not there was "cannot create the folder (File exists)"."""
    pytest.importorskip("onnx") if command == "export" else None
    given = tmp_path / "it's"  # a quote: Python's message of the loop quotes it otherwise
    if link == "loop":
        given.symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(given)
    else:
        given.symlink_to(tmp_path / "gone")
    argv = commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image,
                    given)[command]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert "symbolic link" in err and "run the same command again" not in err, err
    if link == "dangling":  # a folder mnistlab names itself: not "a file stands where..."
        with pytest.raises(MnistlabError, match="is a symbolic link to .*gone, which is not"):
            files.check_output_folder(given / "runs" / "key", "")


@pytest.mark.parametrize("command", ["train", "export", "predict --show"])
def test_a_name_too_long_is_the_user_s_path_and_exit_2(command, train_args, tiny_study_toml,
                                                         tiny_space_toml, toy_model, image,
                                                         tmp_path, capsys):
    """ENAMETOOLONG was exit 1, "then run the same command again", which can never work."""
    pytest.importorskip("onnx") if command == "export" else None
    argv = commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image,
                    tmp_path / ("a" * 256))[command]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert "give a shorter" in err and "run the same command again" not in err, err


def test_a_long_valid_name_is_written_and_too_long_for_a_sidecar_is_refused_first(
        toy_model, tmp_path, capsys):
    """A name of 230-250 bytes failed on the temporary file's longer name (naming it), and
    export wrote the model, then failed on its sidecar's name."""
    pytest.importorskip("onnx")
    long = tmp_path / ("b" * (files.NAME_MAX - 4) + ".png")
    files.write_bytes(long, b"x")  # 255 bytes: the temporary beside it is cut short
    assert long.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()
                                          if p.name.startswith(".")] == []
    made = []  # cut at whole characters: half an "é" is not UTF-8, which macOS refuses
    real = files.tempfile.mkstemp
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files.tempfile, "mkstemp",
                      lambda **kw: made.append(kw["prefix"]) or real(**kw))
        files.write_bytes(tmp_path / ("a" + "é" * 120 + ".txt"), b"y")
    assert made and os.fsencode(made[0]).decode("utf-8").startswith(".aé")
    out = tmp_path / "out"
    out.mkdir()
    name = "m" * (files.NAME_MAX - len(".onnx") - 2) + ".onnx"  # 253 bytes: 258 with .json
    assert main(["export", str(toy_model), "--no-check", "--out", str(out / name)]) == 2
    assert "too long for its sidecar" in one_line_error(capsys)
    assert list(out.iterdir()) == []
    fits = "m" * (files.NAME_MAX - len(".onnx.json")) + ".onnx"
    assert main(["export", str(toy_model), "--no-check", "--out", str(out / fits)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [fits, fits + ".json"]


@pytest.mark.parametrize("command", ["study", "tune"])
def test_a_folder_whose_name_is_not_utf8_gets_its_report(command, train_args, tiny_study_toml,
                                                         tiny_space_toml, toy_model, image,
                                                         tmp_path, capsys):
    """The report holds the folder's path: a byte such as 0xff in its name raised
    UnicodeEncodeError once the runs were done, and again on every rerun, so that folder
    never had a report."""
    from mnistlab import cli

    cli._output_that_any_terminal_takes()  # as from a shell: its lines name the folder too
    out = Path(os.fsdecode(os.fsencode(tmp_path) + b"/s\xff"))
    argv = commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image,
                    out)[command]
    assert main(argv) == 0, capsys.readouterr().err
    report = (out / "report.md").read_text("utf-8")
    assert "s\\xff" in report or command == "tune"  # the study's report names its folder
    assert (out / "report.html").read_text("utf-8")


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `folder` (root only; skips otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; run the tests as root to cover full and "
                    "read-only devices")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("device", ["read-only", "full"])
def test_out_on_a_read_only_or_full_device(command, device, train_args, tiny_study_toml,
                                           tiny_space_toml, toy_model, image, tmp_path, capsys):
    options = "ro,size=1m" if device == "read-only" else "size=64k"
    with tmpfs(tmp_path / "mnt", options) as mount:
        if device == "full":
            (mount / "filler").write_bytes(b"\0" * 64 * 1024)
        argv = commands(train_args, tiny_study_toml, tiny_space_toml, toy_model, image,
                        mount / "out")[command]
        code = main(argv)
        err = one_line_error(capsys)
        assert code == 2
        assert ("Read-only file system" if device == "read-only" else "No space left") in err


def test_disk_full_in_the_middle_of_a_run(train_args, tmp_path, capsys):
    """The probe passes, the model does not fit: one line naming the file, exit 1, and nothing
    half-written or presented as finished."""
    with tmpfs(tmp_path / "mnt", "size=256k") as mount:
        out = mount / "run"
        code = main([*train_args, "--hidden", "512", "--out", str(out)])
        err = one_line_error(capsys)
        assert code == 1 and "No space left on device" in err and "run the same command" in err
        assert not (out / "summary.json").exists()
        assert not list(out.glob(f".*{files.TEMP_SUFFIX}"))


def test_a_finished_run_on_a_read_only_disk_is_read_back_not_refused(train_args, tmp_path,
                                                                     capsys):
    """The same command on a read-only copy of a finished run said "cannot write there;
    choose a folder you can write to", and doing so trained it again; a writable copy was
    read back. Another configuration there is still refused, in the same line as before."""
    run = tmp_path / "shared" / "run"
    assert main([*train_args, "--out", str(run)]) == 0
    summary = (run / "summary.json").read_text()
    with tmpfs(tmp_path / "mnt", "size=1m") as mount:  # a read-only view of the folder
        view = mount / "ro"
        view.mkdir()
        subprocess.run(["mount", "--bind", "-o", "ro", str(run.parent), str(view)], check=True)
        try:
            capsys.readouterr()
            assert main([*train_args, "--out", str(view / "run")]) == 0
            said = capsys.readouterr()
            assert "already holds this run, finished; nothing to train" in said.err
            assert json.loads(summary)["val_accuracy"] is not None
            # in another language its figures cannot be redrawn there: said (hunt: silent)
            with pytest.warns(UserWarning, match=": its figures stay in their first language: "
                                                 "the folder cannot be written"):
                assert main([*train_args, "--out", str(view / "run"), "--lang", "es"]) == 0
            capsys.readouterr()
            assert main([*train_args, "--epochs", "2", "--out", str(view / "run")]) == 2
            assert "cannot write there (Read-only file system)" in one_line_error(capsys)
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)
    assert (run / "summary.json").read_text() == summary


def test_a_folder_where_a_file_goes_is_named_not_the_temporary(tmp_path):
    (tmp_path / "report.md").mkdir()
    with pytest.raises(OSError) as caught:
        files.write_text(tmp_path / "report.md", "x")
    assert caught.value.filename == str(tmp_path / "report.md")
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_study_whose_report_is_a_folder_names_it_and_keeps_its_runs(tiny_study_toml, tmp_path,
                                                                      capsys):
    out = tmp_path / "study"
    (out / "report.md").mkdir(parents=True)
    assert main(["study", str(tiny_study_toml), "--quiet", "--workers", "1", "--out",
                 str(out)]) == 1
    err = one_line_error(capsys)
    assert f"{out / 'report.md'}:" in err and files.TEMP_SUFFIX not in err
    trained = snapshot(out / "runs")
    (out / "report.md").rmdir()
    assert main(["study", str(tiny_study_toml), "--quiet", "--out", str(out)]) == 0
    assert (out / "report.md").is_file() and snapshot(out / "runs") == trained


# --- permissions, names ------------------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_get_the_umasks_permissions(umask, mode, train_args, tmp_path, capsys):
    previous = os.umask(umask)
    try:
        files.write_text(tmp_path / "a.txt", "x")
        assert main([*train_args, "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(previous)
    written = [tmp_path / "a.txt", *(tmp_path / "run").glob("[!.]*")]
    assert len(written) > 5
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {mode}


def test_a_newline_in_a_file_name_stays_on_one_record():
    predictions = [Prediction(path="two\nlines.png", label="3", top=[("3", 0.9)]),
                   Prediction(path="bell\a.png", error="not an image"),
                   Prediction(path="straße.png", label="1", top=[("1", 0.8)])]
    lines = format_predictions(predictions).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("two\\nlines.png") and lines[1].startswith("bell\\x07.png")
    assert lines[2].startswith("straße.png")


def test_a_resumed_search_does_not_say_it_retrains_runs_it_reads_back(tiny_space_toml, tmp_path,
                                                                    capsys):
    argv = ["tune", str(tiny_space_toml), "--trials", "1", "--retrain-seeds", "1", "--out",
            str(tmp_path / "search")]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert "retraining the best configuration with seed 1" in said.out + said.err
    assert "1 trial in the study" in said.out
    assert main(argv) == 0  # finished: its retrained run is read back, not trained
    said = capsys.readouterr()
    assert "retraining" not in said.out + said.err and "retrained test acc" in said.out


def test_a_run_still_training_is_said_to_be_training_not_killed(tmp_path):
    """evaluate/predict/doctor on a run mid-training said it was killed and advised running
    the train command again, which then refused: another process was training there."""
    from mnistlab.errors import MnistlabError
    from mnistlab.runs import load_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom filelock import FileLock\n"
         f"lock = FileLock({str(run / '.lock')!r})\nlock.acquire()\n"
         "print('held', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MnistlabError, match="a training is running in this folder now"):
            load_model(run)
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(MnistlabError, match="its training was stopped before it wrote a model "
                       r"\(Ctrl-C, killed, or out of memory; checkpoint.pt is here\): run the "
                       f"same train command again with --out {run}"):
        load_model(run)  # the lock file is left, but nobody holds it; the --out finds it again
    # a study's cohort stopped: `train --out` there is refused; the study command resumes it
    study = tmp_path / "S"
    cohort = study / "cohorts" / "1f69"
    cohort.mkdir(parents=True)
    (study / "study.db").write_bytes(b"")
    (cohort / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(MnistlabError, match=r"checkpoint.pt is here\): run the same `mnistlab "
                       rf"study` command again to resume it \(the study in {study}\)"):
        load_model(cohort)
    search = tmp_path / "T"  # a search's retrained run: "the search", as elsewhere (review)
    (search / "retrain" / "best-seed1").mkdir(parents=True)
    (search / "tune.db").write_bytes(b"")
    (search / "retrain" / "best-seed1" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(MnistlabError, match=r"the same `mnistlab tune` command again to resume "
                       rf"it \(the search in {search}\)"):
        load_model(search / "retrain" / "best-seed1")


def test_a_folder_no_file_can_be_made_in_is_said_as_such(tmp_path, monkeypatch):
    """`export --out /proc/x.onnx` said "No such file or directory" of a folder that exists,
    and advised freeing space; a full disk is told to free space, a refusal to write is not."""
    import errno

    if Path("/proc").is_dir():
        with pytest.raises(MnistlabError) as info:
            files.check_output_folder("/proc")
        assert str(info.value) == ("--out /proc: cannot write there (no file can be made in "
                                   "it); choose a folder you can write to")
    real_open = open

    def full(path, *args, **kwargs):
        if str(path).endswith(files.PROBE_NAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(MnistlabError, match=r"\(No space left on device\); free space on its "
                       r"device, or choose another folder$"):
        files.check_output_folder(tmp_path / "out")


def test_a_dataset_folder_whose_files_changed_is_not_pooled_into_a_study(
        tiny_study_toml, tiny_idx_dir, tmp_path, capsys):
    """The files of a study's dataset folder replaced (Fashion-MNIST, then MNIST) and the
    study run again with more seeds: the new seeds trained on the other data and were pooled
    with the first in one table, without a word (hunt). Refused in one line; the same files
    again go on. A finished study run again as it was redrew its report's misclassified
    images from the other files (hunt): refused too, saying so."""
    from conftest import make_dataset_folder

    out = tmp_path / "S"
    assert main(["study", str(tiny_study_toml), "--out", str(out), "--quiet"]) == 0
    kept = tmp_path / "kept"
    shutil.copytree(tiny_idx_dir, kept)
    shutil.rmtree(tiny_idx_dir)
    make_dataset_folder(tiny_idx_dir, 500, 200, k=10)  # other images and labels
    shutil.copy(kept / "classes.txt", tiny_idx_dir)  # the same class names
    capsys.readouterr()
    assert main(["study", str(tiny_study_toml), "--out", str(out), "--seeds", "2",
                 "--quiet"]) == 2
    err = one_line_error(capsys)
    assert f"dataset {tiny_idx_dir}: its files changed since this study's first runs read " \
           "them" in err and "give another --out" in err
    with Store(out / "study.db") as store:
        assert len(store.finished()) == 2  # nothing trained on the other files
    report = (out / "report.md").read_bytes()
    assert main(["study", str(tiny_study_toml), "--out", str(out), "--quiet"]) == 2
    assert "and its report would show images of these beside figures measured on those; " \
           "put the first files back" in one_line_error(capsys)
    assert (out / "report.md").read_bytes() == report
    shutil.rmtree(tiny_idx_dir)
    shutil.copytree(kept, tiny_idx_dir)
    assert main(["study", str(tiny_study_toml), "--out", str(out), "--seeds", "2",
                 "--quiet"]) == 0
    with Store(out / "study.db") as store:
        assert len(store.finished()) == 4


def test_a_search_whose_dataset_files_changed_is_refused_before_new_trials(
        tiny_space_toml, tiny_idx_dir, tmp_path, capsys):
    """The same for a search: trials on the replaced files joined the first ones (hunt)."""
    from conftest import make_dataset_folder

    out = tmp_path / "T"
    argv = ["tune", str(tiny_space_toml), "--out", str(out), "--no-report", "--quiet"]
    assert main([*argv, "--trials", "2"]) == 0
    kept = tmp_path / "kept"
    shutil.copytree(tiny_idx_dir, kept)
    shutil.rmtree(tiny_idx_dir)
    make_dataset_folder(tiny_idx_dir, 500, 200, k=10)
    shutil.copy(kept / "classes.txt", tiny_idx_dir)
    capsys.readouterr()
    assert main([*argv, "--trials", "3"]) == 2
    err = one_line_error(capsys)
    assert f"dataset {tiny_idx_dir}: its files changed since this search's first trials " \
           "read them" in err
    assert len(json.loads((out / "search.json").read_text())["data_digests"]) == 1
    shutil.rmtree(tiny_idx_dir)
    shutil.copytree(kept, tiny_idx_dir)
    assert main([*argv, "--trials", "3"]) == 0


def test_class_names_written_another_way_are_the_same_data_to_the_digest(tiny_idx_dir):
    """Review: a byte-order mark or a blank last line added to classes.txt (the names the
    loader reads unchanged) made a study's resume refused as "its files changed"."""
    from mnistlab.data.dataset import folder_digest

    first = folder_digest(tiny_idx_dir)
    names = tiny_idx_dir / "classes.txt"
    names.write_bytes(b"\xef\xbb\xbf" + names.read_bytes().replace(b"\n", b"\r\n") + b"\r\n\n")
    assert folder_digest(tiny_idx_dir) == first
    names.write_text(names.read_text("utf-8-sig").replace("class-9", "class-nine"))
    assert folder_digest(tiny_idx_dir) != first


def test_what_a_file_browser_or_notebook_leaves_in_a_folder_is_not_the_user_s_files(
        train_args, tiny_study_toml, tmp_path):
    """JupyterLab's .ipynb_checkpoints in a finished run (opening its metrics.csv), and
    Finder's .DS_Store in a new folder: refused as "files mnistlab did not write" and "not
    empty and not a run folder" (hunt)."""
    run = tmp_path / "run"
    assert main([*train_args, "--out", str(run)]) == 0
    (run / ".ipynb_checkpoints").mkdir()
    (run / ".DS_Store").write_bytes(b"\0")
    (run / "._metrics.csv").write_bytes(b"\0")  # macOS on exFAT or SMB (review)
    assert main([*train_args, "--out", str(run)]) == 0
    new = tmp_path / "new"
    new.mkdir()
    (new / ".DS_Store").write_bytes(b"\0")
    assert main([*train_args, "--out", str(new)]) == 0
    study = tmp_path / "S"
    study.mkdir()
    (study / "Thumbs.db").write_bytes(b"\0")
    assert main(["study", str(tiny_study_toml), "--out", str(study), "--quiet"]) == 0
    # review: a refused run took back its files from an empty folder, not from one with
    # .DS_Store beside them (read as a killed run afterwards)
    refused = tmp_path / "refused"
    refused.mkdir()
    (refused / ".DS_Store").write_bytes(b"\0")
    typo = [a if a != str(train_args[2]) else "mnsit" for a in train_args]
    assert main([*typo, "--out", str(refused)]) == 2
    assert sorted(p.name for p in refused.iterdir()) == [".DS_Store"]
