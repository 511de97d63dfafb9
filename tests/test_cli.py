"""The command line: `mnistlab evaluate`'s classification report on a tiny trained run, and
the shell completion scripts of `mnistlab completion`."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from spanish import english_in

from mnistlab.cli import main
from mnistlab.cli.train import report_table
from mnistlab.config import TrainConfig
from mnistlab.training.evaluation import classification_report


@pytest.fixture()
def trained_run(tmp_path, tiny_idx_dir) -> Path:
    """A one-epoch MLP on the tiny synthetic dataset: about a second."""
    folder = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "100", "--eval-train-size", "100",
                 "--device", "cpu", "--quiet", "--out", str(folder)]) == 0
    return folder


def test_a_run_without_its_summary_is_used_with_a_warning_as_doctor_refuses_it(trained_run,
                                                                              capsys):
    """Killed between its model and its summary.json: evaluate, predict and export used it
    without a word while doctor said it had not finished (hunt: a folder an older version
    left so)."""
    (trained_run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    assert ("has not finished (no summary.json: stopped, killed or out of memory): this is its "
            "model as last saved; run the command that made it again to finish it"
            in " ".join(capsys.readouterr().err.split()))


def test_evaluate_on_the_test_set_splits_no_training_set(trained_run, capsys, monkeypatch):
    """`evaluate` split (and copied) the whole training set to score the test set: 17 s and
    1.9 GB for a million training images, where the test set is 10,000. It scores the same."""
    from mnistlab.data import tensors

    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(tensors, "prepare_data", lambda *a, **k: pytest.fail("split"))
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    summary = json.loads((trained_run / "summary.json").read_text())
    assert before["accuracy"] == pytest.approx(summary["test_accuracy"])
    # a run that validated on the test set is still told of (the split's making said it)
    config = trained_run / "config.toml"
    config.write_text(config.read_text().replace('val_from = "train"', 'val_from = "test"'))
    model = torch.load(trained_run / "model.pt", weights_only=True)
    model["config"]["val_from"] = "test"
    torch.save(model, trained_run / "model.pt")
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    assert "val-from=test: this run validated on the test set" in capsys.readouterr().err


def test_evaluate_json_holds_the_classification_report(trained_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = data["classification_report"]
    assert data["n"] == 200 and data["split"] == "test"
    names = [f"class-{i}" for i in range(10)]
    assert list(report["classes"]) == names
    assert all(report["classes"][n]["support"] == 20 for n in names)  # 200 balanced images
    assert report["accuracy"] == pytest.approx(data["accuracy"])
    assert {n: s["recall"] for n, s in report["classes"].items()} == pytest.approx(
        data["per_class_accuracy"])
    assert report["macro_avg"]["support"] == report["weighted_avg"]["support"] == 200
    # the precisions are consistent with the recalls: the images predicted as each class
    # (right ones / precision) add up to all the images
    predicted = sum(s["recall"] * s["support"] / s["precision"]
                    for s in report["classes"].values() if s["precision"])
    assert predicted == pytest.approx(200)


def test_evaluate_prints_the_report_under_a_one_line_heading(trained_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{trained_run} on the val split (100 images)"
    text = "\n".join(lines)
    for row in ("class-9", "accuracy", "macro avg", "weighted avg"):
        assert row in text
    assert "precision" in text and "support" in text
    # hunt: evaluate had no --lang; its table, heading and caption were English only
    assert main(["evaluate", str(trained_run), "--split", "val", "--lang", "es"]) == 0
    said = capsys.readouterr().out
    assert said.splitlines()[0] == f"{trained_run} en la partición de validación (100 imágenes)"
    for words in ("precisión", "soporte", "media macro", "media ponderada", "exactitud 0,"):
        assert words in said
    assert english_in(said) == [] and not re.search(r"\d\.\d{4}", said)


def test_the_report_table_fits_fifty_columns():
    names = ["T-shirt/top", "Trouser", "Ankle boot"]
    matrix = [[9000, 500, 500], [0, 10000, 0], [3000, 0, 7000]]
    out = io.StringIO()
    Console(file=out, width=50).print(report_table(classification_report(matrix, names), 50))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 50
    weighted = next(line for line in lines if line.strip().startswith("weighted avg"))
    assert weighted.split()[-1] == "30,000"  # the whole row on one line, nothing cut
    assert "…" not in out.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 200])
def test_the_report_table_keeps_every_figure_whole_beside_a_long_class_name(width):
    """Hunt: rich kept a long class name on one line and cut the figures to "0.9…", "10,0…"
    and the headings to "precis…" (at 40 columns with any name; at 60 and 80 with this one)."""
    names = ["zero", "one", "nine (the digit that looks like a g)"]
    matrix = [[9538, 462, 0], [0, 9000, 1000], [0, 0, 10000]]
    report = classification_report(matrix, names)
    out = io.StringIO()
    Console(file=out, width=width).print(report_table(report, width))
    text = out.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    words = text.split()
    for figure in ("0.9538", "0.9000", "1.0000", "10,000", "30,000", f"{report.accuracy:.4f}",
                   "precision", "recall", "support"):
        assert figure in words, (figure, text)
    assert all(word in words for word in names[2].split())  # wrapped at its spaces
    assert ("precision" in text.splitlines()[0]) == (width >= 60)  # side by side, or a row each
    # review: a wide (Chinese) name was sized by len(), half its width, and folded mid-name
    wide = classification_report(matrix, ["猫", "犬", "长" * 16])
    out = io.StringIO()
    Console(file=out, width=width).print(report_table(wide, width))
    if width >= 80:
        assert "长" * 16 in out.getvalue()


def test_evaluate_a_split_with_no_image_is_one_line(trained_run, capsys):
    # A run trained with --val-size 0 stops as diverged (its validation loss is NaN), so the
    # run here has the settings in its model file edited to hold no validation images instead.
    import torch

    from mnistlab import files

    payload = torch.load(trained_run / "model.pt", weights_only=True)
    assert payload["config"]["val_size"] == 100
    files.torch_save(trained_run / "model.pt",
                     {**payload, "config": {**payload["config"], "val_size": 0}})
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no images" in err and "--split test" in err


def test_evaluate_scores_the_model_as_its_file_says_not_an_edited_config(trained_run,
                                                                          capsys):
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    (trained_run / "config.toml").write_text('dataset = "fashion-mnist"\nmodel = "cnn"\n')
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    (trained_run / "config.toml").unlink()  # model.pt holds the settings; nothing is missing
    assert main(["evaluate", str(trained_run / "model.pt"), "--json"]) == 0  # the file itself
    assert json.loads(capsys.readouterr().out) == before


def test_evaluate_on_data_that_changed_since_is_one_line(trained_run, tiny_idx_dir, capsys):
    (tiny_idx_dir / "classes.txt").write_text("\n".join("abcdefghij") + "\n")
    capsys.readouterr()
    assert main(["evaluate", str(trained_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "10 classes (a, b, c, …) of 28x28 images" in err
    assert "trained on 10 classes (class-0, class-1, class-2, …) of 28x28" in err
    assert f"put the data it was trained on back at {tiny_idx_dir}" in err  # a folder dataset


def test_a_data_dir_beside_a_dataset_folder_is_said_to_do_nothing(trained_run, tiny_idx_dir,
                                                                   tmp_path, capsys):
    """--data-dir says where the known datasets are; beside a folder given by its path it was
    passed over without a word (train, evaluate, data info, data path)."""
    said = (f"--data-dir {tmp_path} does nothing with {{}}{tiny_idx_dir}: a folder given by its "
            "path is read where it is (--data-dir says where mnist and fashion-mnist are)")
    for argv, named in ((["data", "info", str(tiny_idx_dir)], ""),
                        (["data", "path", str(tiny_idx_dir)], ""),
                        (["evaluate", str(trained_run)], "the run's dataset ")):
        capsys.readouterr()
        assert main([*argv, "--data-dir", str(tmp_path)]) == 0
        assert capsys.readouterr().err.strip() == f"warning: {said.format(named)}"
    assert main(["train", "--dataset", str(tiny_idx_dir), "--data-dir", str(tmp_path), "--model",
                 "mlp", "--hidden", "8", "--epochs", "1", "--train-subset", "200", "--val-size",
                 "50", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert f"warning: {said.format('--dataset ')}" in capsys.readouterr().err
    # a name that is no folder (a typo): its own error, not a warning about folders
    assert main(["data", "info", "mnsit", "--data-dir", str(tmp_path)]) == 2
    assert "does nothing" not in capsys.readouterr().err


def test_relative_data_paths_are_saved_absolute_and_a_run_s_gone_data_dir_is_its_own(
        tiny_idx_dir, shared_datasets, tmp_path, monkeypatch, capsys):
    """`train --dataset rel` saved "rel" in config.toml, so `evaluate` from another folder said
    the data was "not there now"; a run's --data-dir gone since was blamed on a --data-dir the
    evaluate command was not given."""
    import shutil

    shutil.copytree(tiny_idx_dir, tmp_path / "mine")
    (tmp_path / "dd").mkdir()
    (tmp_path / "dd" / "mnist").symlink_to(shared_datasets / "mnist")
    monkeypatch.chdir(tmp_path)
    small = ["--model", "mlp", "--hidden", "8", "--epochs", "1", "--train-subset", "200",
             "--val-size", "50", "--quiet"]
    assert main(["train", "--dataset", "mine", *small, "--out", str(tmp_path / "r")]) == 0
    assert main(["train", "--dataset", "mnist", "--data-dir", "dd", *small,
                 "--out", str(tmp_path / "m")]) == 0
    assert f'dataset = "{tmp_path / "mine"}"' in (tmp_path / "r" / "config.toml").read_text()
    assert f'data_dir = "{tmp_path / "dd"}"' in (tmp_path / "m" / "config.toml").read_text()
    monkeypatch.chdir(tmp_path / "dd")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r"), "--json"]) == 0  # from another folder
    shutil.rmtree(tmp_path / "dd")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), "--json"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"warning: the run's data_dir {tmp_path / 'dd'} (in its settings) is no folder now; "
        "mnist is looked for without it (--data-dir DIR names one)")


def _train_on(folder, out, *more):
    return main(["train", "--dataset", str(folder), "--model", "mlp", "--hidden", "8",
                 "--train-subset", "200", "--val-size", "50", "--quiet", "--out", str(out),
                 *more])


def test_a_run_whose_dataset_folder_moved_resumes_from_its_new_place(tiny_idx_dir, tmp_path,
                                                                      capsys):
    """The only ways out were to put the folder back or --overwrite, which throws the trained
    epochs away: the run keeps a digest of its data, so the same files elsewhere are taken,
    an interrupted run resumes there, and the run folder names the new place from then on."""
    from mnistlab import interrupt, train
    from mnistlab.training import Hook

    class StopAfterEpoch1(Hook):  # as Ctrl-C after the first epoch: its checkpoint is kept
        def on_epoch_end(self, run):
            interrupt.request()

    shutil.copytree(tiny_idx_dir, tmp_path / "a")
    config = TrainConfig(dataset=str(tmp_path / "a"), model="mlp", hidden=(8,), epochs=2,
                         train_subset=200, val_size=50)
    try:
        cut = train(config, out=tmp_path / "r", hooks=[StopAfterEpoch1()])
    finally:
        interrupt.flag().clear()
    assert cut.summary.status == "interrupted" and (tmp_path / "r" / "checkpoint.pt").exists()
    (tmp_path / "a").rename(tmp_path / "b")
    capsys.readouterr()
    assert _train_on(tmp_path / "b", tmp_path / "r", "--epochs", "2") == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2  # resumed, not over
    assert f"dataset = \"{tmp_path / 'b'}\"" in (tmp_path / "r" / "config.toml").read_text()
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r"), "--split", "val"]) == 0  # reads it at b
    (tmp_path / "b").rename(tmp_path / "c")  # moved again, the run finished: read back
    assert _train_on(tmp_path / "c", tmp_path / "r", "--epochs", "2") == 0
    assert "already holds this run, finished" in capsys.readouterr().err


def test_a_run_whose_dataset_folder_moved_refuses_other_data_there(tiny_idx_dir, tmp_path,
                                                                   capsys):
    """Another folder of the same shape is not taken for the run's data; a run made before
    runs kept a digest of their data can only be resumed from its own path."""
    from conftest import make_dataset_folder

    shutil.copytree(tiny_idx_dir, tmp_path / "a")
    assert _train_on(tmp_path / "a", tmp_path / "r", "--epochs", "1") == 0
    (tmp_path / "a").rename(tmp_path / "b")
    other = make_dataset_folder(tmp_path / "other", 600, 150)
    capsys.readouterr()
    assert _train_on(other, tmp_path / "r", "--epochs", "1") == 2
    assert (f"it was trained on the data in {tmp_path / 'a'}, not there now: the data in "
            f"{other} is not that data; give --dataset the folder it is in now to resume or "
            "reuse it; else use another --out") in capsys.readouterr().err
    (tmp_path / "empty").mkdir()  # no dataset there: not called other data (review)
    assert _train_on(tmp_path / "empty", tmp_path / "r", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'empty'} holds no dataset; give --dataset the folder it is in" in err
    assert _train_on(tmp_path / "b", tmp_path / "r", "--epochs", "2") == 2  # another change
    err = capsys.readouterr().err  # the same data at b: only epochs differ, and nothing about
    assert "(epochs 1 there, 2 here); use another --out" in err, err  # --dataset is advised
    model = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    del model["data_digest"]  # as a run made before runs kept one
    torch.save(model, tmp_path / "r" / "model.pt")
    assert _train_on(tmp_path / "b", tmp_path / "r", "--epochs", "1") == 2
    assert (f"it was trained on the data in {tmp_path / 'a'}, not there now: put that folder "
            "back to resume or reuse it; else use another --out") in capsys.readouterr().err


def test_evaluate_on_other_data_says_so_before_the_run_s_own_splits_fail(trained_run, tmp_path,
                                                                          capsys):
    """A 3-class folder of 60 images: the run's val-size 100 was said to be out of range
    first ("use 0 (no validation set) or ..."), a flag evaluate does not take."""
    from conftest import make_dataset_folder

    other = make_dataset_folder(tmp_path / "small", 60, 20, k=3)
    capsys.readouterr()
    for split in ("val", "test"):
        assert main(["evaluate", str(trained_run), "--dataset", str(other), "--split",
                     split]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {other}: the data there now holds 3 classes"), err
        assert "give --dataset the data it was trained on" in err and "val-size" not in err


@pytest.mark.parametrize("folder, expected", [
    ("killed", "its training was stopped before it wrote a model"),
    ("study", "a study folder, not a run; give one of its run folders, e.g. "),
    # hunt: told to give one of its run folders, of which it had none
    ("empty-search", "a search folder, not a run, and it holds no run folder; `mnistlab "
                     "train --config "),
    ("empty-study", "a study folder, not a run, and it holds no run folder; the same "
                    "`mnistlab study` command, run to its end, makes them"),
    # the final model's, not the first folder by name (a seed of some variant)
    ("final", "give one of its run folders, e.g. its final model's, "),
    # no final model: its base run, named, not the first folder by name
    ("no-final", "give one of its run folders, e.g. "),
    ("garbage", "model.pt: damaged or cut short, torch cannot read it (not in torch's zip"),
    # torch's reason for an empty file is an empty text: "torch cannot read it ()"
    ("empty", "model.pt: damaged or cut short: an empty file (0 bytes)"),
    # a folder named model.pt was "missing (deleted, or never written)"
    ("model-folder", "model.pt: a folder, where a run keeps its model file"),
    # another program's torch.save: "not an mnistlab model file (format None, ...)", no fix
    ("foreign", "not an mnistlab model file (format None, expected 'mnistlab-model"),
    ("foreign", "); give a folder `mnistlab train --out DIR` wrote, or its model.pt")])
def test_a_folder_that_is_no_finished_run_says_what_it_is(trained_run, tmp_path, capsys,
                                                          folder, expected):
    path = tmp_path / folder
    path.mkdir()
    if folder == "killed":  # SIGKILL or out of memory mid-run: config and checkpoint only
        shutil.copy(trained_run / "config.toml", path)
        (path / "checkpoint.pt").write_bytes(b"")
    elif folder == "empty-search":
        (path / "tune.db").write_bytes(b"")
        (path / "best.toml").write_text("model = 'mlp'\n")
        expected += f"{path / 'best.toml'}` trains its best configuration"
    elif folder == "empty-study":
        (path / "study.db").write_bytes(b"")
    elif folder in ("study", "final", "no-final"):
        (path / "study.db").write_bytes(b"")
        shutil.copytree(trained_run, path / "runs" / "abc123")
        if folder == "no-final":
            shutil.copytree(trained_run, path / "runs" / "bbb456")
            (path / "results.csv").write_text(
                "experiment,factor,value,seed,epochs,run\nlr,lr,0.1,0,2,abc123\n"
                "base,,base,0,2,bbb456\n")
            expected += f"{path / 'runs' / 'bbb456'} (the base, seed 0)"
        if folder == "final":
            shutil.copytree(trained_run, path / "runs" / "fff999")
            (path / "results.csv").write_text("experiment,value,seed,run\nlr,0.1,0,abc123\n"
                                              "final,final,0,fff999\n")
            expected += str(path / "runs" / "fff999")
    elif folder == "model-folder":
        shutil.copy(trained_run / "summary.json", path)
        (path / "model.pt").mkdir()
    elif folder == "foreign":
        torch.save({"weights": torch.zeros(3)}, path / "model.pt")
    else:
        (path / "model.pt").write_bytes(b"\x00" * 100 if folder == "garbage" else b"")
    for command in ("evaluate", "export"):
        capsys.readouterr()
        assert main([command, str(path), "--out", str(tmp_path / "m.onnx")]
                    if command == "export" else [command, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in " ".join(err.split()) and len(err.splitlines()) <= 2, err


@pytest.mark.parametrize("change, said", [
    ({"format": "mnistlab-model-2"}, "made by a later version of mnistlab (model format "
     "'mnistlab-model-2'; this one, "),
    ({"format": "mnistlab-model-0"}, "made by an earlier version of mnistlab (model format "
     "'mnistlab-model-0'; this one, "),
    ({"config": {"cutmix": 0.5}}, "made with settings this mnistlab (")])
def test_a_model_from_another_version_says_so(trained_run, tmp_path, capsys, change, said):
    """A later version's model file (a new format, or a setting this one does not know) was
    "not an mnistlab model file", or "damaged or altered ... train the model again"."""
    payload = torch.load(trained_run / "model.pt", weights_only=False)
    if "config" in change:
        payload["config"].update(change["config"])
    else:
        payload.update(change)
    path = shutil.copytree(trained_run, tmp_path / "later")
    torch.save(payload, path / "model.pt")
    for argv in (["evaluate", str(path)], ["predict", str(path), str(tmp_path / "x.png")],
                 ["export", str(path), "--out", str(tmp_path / "m.onnx")]):
        capsys.readouterr()
        assert main(argv) == 2
        err = " ".join(capsys.readouterr().err.split())
        earlier = "earlier" in said  # its fix is to train it again, not to upgrade
        assert said in err and ("upgrade mnistlab" in err) != earlier, err
        assert ("train the model again" in err) == earlier, err
        if "config" in change:
            assert "does not know (cutmix): made by a newer version?" in err, err


def test_commands_using_an_interrupted_run_say_so(trained_run, tmp_path, capsys):
    """A run cut short by Ctrl-C has a model (its weights at that moment): evaluate, predict
    and export use it, and each says in one line that the run is unfinished and how to end it."""
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 0
    assert "interrupted" not in capsys.readouterr().err  # a finished run: nothing to say
    summary = json.loads((trained_run / "summary.json").read_text())
    summary.update(status="interrupted", epochs=0, epochs_planned=1)
    (trained_run / "summary.json").write_text(json.dumps(summary))
    image = tmp_path / "digit.png"
    _write_png(image)
    for argv in (["evaluate", str(trained_run), "--split", "val"],
                 ["predict", str(trained_run), str(image)],
                 ["export", str(trained_run), "--out", str(tmp_path / "m.onnx"), "--no-check"]):
        assert main(argv) == 0
        warning = [line for line in capsys.readouterr().err.splitlines() if "interrupted" in line]
        assert len(warning) == 1 and "after 0 of 1 epochs" in warning[0], argv
        assert "run the command that made it again to finish it" in warning[0]


def test_data_without_test_images_leaves_the_test_figure_out_and_evaluate_says_why(
        tmp_path, capsys):
    """The one-line summary read `test_accuracy=nan`, and evaluate advised `--split test`, the
    split it was scoring."""
    from conftest import make_dataset_folder

    data = make_dataset_folder(tmp_path / "d", 200, 0)
    capsys.readouterr()
    assert main(["train", "--dataset", str(data), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "50", "--quiet", "--out",
                 str(tmp_path / "r")]) == 0
    line = capsys.readouterr().out.strip()
    assert "val_accuracy=" in line and "test_accuracy" not in line and "nan" not in line
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["test_accuracy"] is None
    assert main(["evaluate", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'r'}: the test set of {data} holds no images; give data with test "
        "images (--dataset DIR)")


def test_a_diverged_run_is_refused_by_predict_and_export_and_flagged_by_evaluate(
        trained_run, tmp_path, capsys):
    """A run whose outputs blew up without turning NaN gave predict a confident answer,
    evaluate a loss of 4e30 without a word, and export a parity error blaming the exporter."""
    summary = json.loads((trained_run / "summary.json").read_text())
    (trained_run / "summary.json").write_text(json.dumps({**summary, "status": "diverged"}))
    image = tmp_path / "digit.png"
    _write_png(image)
    capsys.readouterr()
    for argv in (["predict", str(trained_run), str(image)],
                 ["export", str(trained_run), "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.strip() == (f"error: {trained_run}: the run diverged (its "
                                             "summary.json says so), so its model answers "
                                             "nothing; train it again with a lower --lr"), argv
    assert not (tmp_path / "m.onnx").exists()
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "diverged" in line]
    assert len(warning) == 1 and "these are a diverged model's figures" in warning[0]


@pytest.mark.parametrize("argv", [
    ["train", "--recipe", "mnist-fast", "--out", ""], ["study", "fashion-hparams", "--out", " "],
    ["tune", "fashion-mlp", "--out", ""], ["export", "run", "--out", ""],
    ["predict", "run", "x.png", "--show", ""], ["train", "--config", ""],
    ["train", "--recipe", " "], ["train", "--data-dir", ""],
    ["study", "fashion-hparams", "--data-dir", ""], ["evaluate", "run", "--data-dir", ""],
    ["data", "info", "mnist", "--data-dir", " "]])
def test_an_empty_path_is_refused_not_taken_for_the_default(argv, tmp_path, monkeypatch, capsys):
    """`--out "$DIR"` with DIR unset used to train into runs/<time>-... of the current folder;
    `--config "$CFG"` and `--recipe "$R"` trained the defaults, `--data-dir "$D"` read the
    data from elsewhere after a warning."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err.strip()
    what = "name" if "--recipe" in argv[-2:] else "path"
    assert caught.value.code == 2 and len(err.splitlines()) == 1 and f"an empty {what}" in err
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere
    # export's --out and --config have no default to leave the flag out for
    assert ("leave the flag out" in err) == (argv[0] != "export" and "--config" not in argv)


def _write_png(path: Path) -> None:
    """A dark bar on white paper: a 1."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (56, 56), 255)
    ImageDraw.Draw(image).rectangle([24, 8, 31, 47], fill=0)
    image.save(path)


# --- completion ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bash_script(tmp_path_factory) -> Path:
    """`mnistlab completion bash`, made once (it builds every command's flags: seconds)."""
    out = subprocess.run([sys.executable, "-m", "mnistlab", "completion", "bash"],
                         capture_output=True, text=True, check=True).stdout
    path = tmp_path_factory.mktemp("completion") / "mnistlab.bash"
    path.write_text(out)
    return path


def test_bash_script_ends_its_last_line(bash_script, tmp_path):
    """`mnistlab completion bash >> ~/.bashrc`, then another line: the two ran together
    ("complete ... mnistlabexport FOO=1"), and completion was for no command (hunt)."""
    rc = tmp_path / "bashrc"
    rc.write_text(bash_script.read_text() + "export FOO=1\n")
    said = subprocess.run(["bash", "-c", f"source {rc}; complete -p mnistlab; echo $FOO"],
                          capture_output=True, text=True, check=True).stdout
    assert said.splitlines()[-1] == "1" and "mnistlab" in said.splitlines()[0]


def test_bash_script_names_every_subcommand_and_flags(bash_script):
    from mnistlab.cli import COMMANDS

    text = bash_script.read_text()
    line = next(x for x in text.splitlines() if x.startswith("_shtab_mnistlab_subparsers="))
    assert line.split("=", 1)[1].strip("()").split() == list(COMMANDS)
    for flag in ("--batch-size", "--split", "--json", "--seeds", "--trials", "--top"):
        assert flag in text
    if shutil.which("bash"):
        checked = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stderr


def complete(script: Path, cwd: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` (COMP_WORDS as bash sets them on Tab)."""
    command = (f"source {script}; COMP_WORDS=(mnistlab {shlex.join(words)}); "
               f"COMP_CWORD={len(words)}; _shtab_mnistlab; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    return sorted(out.split())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_flags_choices_and_folders(bash_script, tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "notes.txt").write_text("")
    assert complete(bash_script, tmp_path, "ev") == ["evaluate"]
    assert complete(bash_script, tmp_path, "evaluate", "--sp") == ["--split"]
    assert complete(bash_script, tmp_path, "evaluate", "--split", "") == ["test", "val"]
    # settings flags take text checked by TrainConfig; the script still offers its choices
    assert complete(bash_script, tmp_path, "train", "--model", "") == [
        "cnn", "lenet5", "mlp", "resnet"]
    assert complete(bash_script, tmp_path, "evaluate", "runs/") == ["runs/a"]  # folders only


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_presets_datasets_and_recipes_beside_paths(bash_script, tmp_path):
    """Tab offered files for a study or search and nothing for --dataset or --recipe: the
    preset, dataset and recipe names had to be looked up."""
    from mnistlab.recipes import RECIPES
    from mnistlab.study.spec import list_presets

    (tmp_path / "lenet.toml").write_text("")
    (tmp_path / "mnist-copy").mkdir()
    (tmp_path / "notes.txt").write_text("")  # hunt: every file was offered for a study
    assert complete(bash_script, tmp_path, "study", "") == sorted(
        [*list_presets(), "lenet.toml", "mnist-copy"])
    assert complete(bash_script, tmp_path, "study", "len") == ["lenet-challenge", "lenet.toml"]
    assert complete(bash_script, tmp_path, "tune", "fa") == ["fashion-mlp"]
    assert complete(bash_script, tmp_path, "train", "--dataset", "") == [
        "fashion-mnist", "mnist", "mnist-copy"]  # folders, not files
    assert complete(bash_script, tmp_path, "train", "--recipe", "") == sorted([*RECIPES, "list"])
    assert complete(bash_script, tmp_path, "data", "fetch", "") == ["fashion-mnist", "mnist"]
    assert complete(bash_script, tmp_path, "data", "info", "m") == ["mnist", "mnist-copy"]


ZSH_TAB = r"""
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z "PS1='> '; fpath=($FPATH_DIR \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' format '<%d>'; LISTMAX=1000; cd $WORK"
zpty -n -w z "$LINE"$'\t'
sleep 2
out=""
while zpty -r -t z line; do out+="$line"; done
print -r -- "$out"
zpty -d z
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh")
@pytest.mark.parametrize("line, offered", [
    ("mnistlab train --dataset ", ["fashion-mnist", "mnist", "folder/"]),
    ("mnistlab train --dataset mnist --model ", ["cnn", "lenet5", "mlp", "resnet"]),
    ("mnistlab study ", ["lenet-challenge", "folder/"]),
])
def test_zsh_completes_names_beside_paths(tmp_path, line, offered):
    """Tab in a live zsh (zpty). The names-or-paths action, put unescaped into _arguments'
    spec, printed "unmatched '" and "bad option: -e", and broke the flags after it."""
    script = subprocess.run([sys.executable, "-m", "mnistlab", "completion", "zsh"],
                            capture_output=True, text=True, check=True).stdout
    (tmp_path / "fpath").mkdir()
    (tmp_path / "fpath" / "_mnistlab").write_text(script)
    (tmp_path / "work" / "folder").mkdir(parents=True)
    env = {**os.environ, "FPATH_DIR": str(tmp_path / "fpath"), "WORK": str(tmp_path / "work"),
           "LINE": line}
    out = subprocess.run(["zsh", "-f", "-c", ZSH_TAB], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    out = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out)
    assert not [bad for bad in ("unmatched", "bad option", "not found", "parse error")
                if bad in out], out
    assert all(word in out for word in offered), out


def test_completion_without_shtab_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "shtab", None)  # `import shtab` fails
    assert main(["completion", "bash"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install shtab" in err


@pytest.mark.parametrize("command", ["tune", "completion", "study", "train"])
def test_help_fills_the_description_to_the_terminal_and_keeps_examples_as_written(
        command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "60")
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]  # after the usage lines
    assert max(map(len, description.splitlines())) <= 60, description
    if command == "tune":  # the examples after the flags, indented as written
        assert "\n  mnistlab tune --list\n" in text
        assert "\n      --storage postgresql://USER:PASS@HOST/DB\n" in text
    if command == "completion":
        assert "\n        and in ~/.zshrc, before `compinit`: fpath=(~/.zfunc $fpath)\n" in text
    # the prose between the examples is filled too (it ran past the terminal)
    epilog = text.split("\n\n")[-1]
    prose = [line for line in epilog.splitlines() if not line.startswith("  ")]
    assert all(len(line) <= 60 for line in prose), prose
    if command == "tune":
        assert "\nmany workers, one search (each adds trials until the study\nholds N):\n" in text


def test_the_quiet_line_leaves_out_a_figure_not_measured(tmp_path, tiny_idx_dir, capsys):
    """`--val-size 0 --quiet` printed `val_accuracy=None`."""
    capsys.readouterr()
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "0", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{tmp_path / 'r'}  test_accuracy=0.") and "None" not in line
    assert line.endswith("  status=completed") and "val_accuracy" not in line
    # four places, as the summary gives them: 0.19945514691574237 on 5,807 test images (hunt)
    import re

    assert re.search(r"  test_accuracy=0\.\d{4}  status", line), line


def test_a_run_on_a_folder_that_moved_is_evaluated_where_it_went(tmp_path, tiny_idx_dir, capsys):
    """`evaluate` said the path "is neither a known dataset nor an existing folder" and took
    no other; other images of the same classes and size were scored without a word."""
    import shutil

    from conftest import make_idx_files, tiny_arrays

    run = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "100", "--quiet", "--out", str(run)]) == 0
    moved = shutil.move(tiny_idx_dir, tmp_path / "moved")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {run}: trained on the data in {tiny_idx_dir}, which is not there now; give "
        "where it is with --dataset DIR")
    assert main(["evaluate", str(run), "--dataset", str(moved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 200
    other = shutil.copytree(moved, tmp_path / "other")
    images, labels = tiny_arrays(600, 0)
    make_idx_files(other, 255 - images, labels, "train")  # the same classes, other pixels
    assert main(["evaluate", str(run), "--dataset", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not the images the model was trained on (their pixel mean is 0." in err
    assert err.endswith(f"give --dataset the data it was trained on ({tiny_idx_dir})")
    # the same images with other labels: the same statistics, and a score near 0 said as the
    # model's accuracy (hunt)
    relabelled = shutil.copytree(moved, tmp_path / "relabelled")
    images, labels = tiny_arrays(600, 0)
    make_idx_files(relabelled, images, (labels + 1) % 10, "train")
    assert main(["evaluate", str(run), "--dataset", str(relabelled)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {relabelled}: not the data the model was trained on (its images or "
                   "labels differ from those the run kept a digest of); give --dataset the "
                   f"data it was trained on ({tiny_idx_dir})"), err


def test_a_numbered_folder_relabelled_is_refused_by_its_digest(tmp_path, capsys):
    """A folder without classes.txt (its classes named 0..K-1, the usual custom dataset)
    skipped the digest check: the same images with shifted labels scored 0.0000 with exit 0
    (hunt)."""
    from conftest import make_dataset_folder, make_idx_files, tiny_arrays

    folder = make_dataset_folder(tmp_path / "digits", 600, 200)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(folder), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "100", "--quiet", "--out", str(run)]) == 0
    relabelled = make_dataset_folder(tmp_path / "relabelled", 600, 200)
    images, labels = tiny_arrays(600, 0)
    make_idx_files(relabelled, images, (labels + 1) % 10, "train")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--dataset", str(folder), "--json"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--dataset", str(relabelled)]) == 2
    assert "not the data the model was trained on (its images or labels differ" in (
        capsys.readouterr().err)
    # the classes named since (a classes.txt added): the same data (review)
    (folder / "classes.txt").write_text("\n".join(f"kind {k}" for k in range(10)) + "\n")
    assert main(["evaluate", str(run), "--dataset", str(folder), "--json"]) == 0


def test_images_of_another_contrast_are_named_by_the_figure_that_differs():
    """Only the mean was quoted: "their pixel mean is 0.1307, the training images' 0.1307"
    where the sd differed; a NaN kept in the model file passed as the same."""
    from types import SimpleNamespace

    from mnistlab.config import TrainConfig
    from mnistlab.errors import MnistlabError
    from mnistlab.runs import check_same_data

    data = SimpleNamespace(image_shape=(1, 28, 28), class_names=[str(k) for k in range(10)],
                           mean=0.1307, std=0.3081)
    payload = {"image_shape": [1, 28, 28], "class_names": data.class_names, "mean": 0.1307}
    config = TrainConfig(dataset="mnist")
    check_same_data({**payload, "std": 0.3081}, data, config)
    for kept, said in ((0.2, "their pixel sd is 0.3081, the training images' 0.2000"),
                       (float("nan"), "their pixel sd is 0.3081, the training images' nan")):
        with pytest.raises(MnistlabError, match=said):
            check_same_data({**payload, "std": kept}, data, config)


def test_narrow_tables_keep_names_and_folders_whole(monkeypatch, tmp_path, shared_datasets):
    """Hunt: at 40 columns `study --list` cut "fashion-h…", and `data info` cut a dataset
    folder of 58 characters or more even in a file."""
    import io

    from mnistlab.cli import common, data, study

    shown = io.StringIO()
    for module in (common, data, study):
        monkeypatch.setattr(module, "stdout", Console(file=shown, width=40))
    assert main(["study", "--list"]) == 0 and main(["tune", "--list"]) == 0
    assert "fashion-hparams" in shown.getvalue() and "fashion-mlp" in shown.getvalue()
    folder = tmp_path / "someuser" / "projects" / "mnist-experiments-2026" / "shared-datasets"
    folder.mkdir(parents=True)
    (folder / "mnist").symlink_to(shared_datasets / "mnist")
    monkeypatch.setenv("MNISTLAB_DATA", str(folder))
    shown.truncate(0), shown.seek(0)
    assert main(["data", "info", "mnist"]) == 0
    assert "…" not in shown.getvalue()
    assert str(folder / "mnist") in "".join(
        line.split("│")[2].strip() for line in shown.getvalue().splitlines()
        if line.count("│") == 3)


@pytest.mark.parametrize("width", [40, 60, 80, 200])
def test_data_info_lists_counts_that_cannot_be_misread(width, monkeypatch, shared_datasets,
                                                        capsys):
    """Hunt: per-class counts joined with ", " read "5,923, 6,742," at 40 columns (a class
    named "T-shirt, top" split alike); --json keeps its lists."""
    from mnistlab.cli import data

    shown = io.StringIO()
    monkeypatch.setattr(data, "stdout", Console(file=shown, width=width))
    assert main(["data", "info", "mnist", "--data-dir", str(shared_datasets)]) == 0
    cells: dict[str, str] = {}
    last = ""
    for line in shown.getvalue().splitlines():
        if line.count("│") == 3:
            _, key, value, _ = line.split("│")
            last = key.strip() or last
            cells[last] = f"{cells.get(last, '')} {value.strip()}".strip()
    counts = cells["train per class"].split("; ")
    assert counts[:2] == ["5,923", "6,742"] and len(counts) == 10
    assert cells["classes"] == "; ".join(map(str, range(10)))
    assert main(["data", "info", "mnist", "--data-dir", str(shared_datasets), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train per class"][:2] == [5923, 6742]


def test_json_stays_json_on_an_output_that_is_not_utf8(trained_run):
    """Hunt: under PYTHONIOENCODING=ascii (or a Latin-1 terminal), `doctor --json --lang es`
    wrote "1 \\xe9poca", no JSON escape, and every reader failed on it."""
    import os
    import subprocess

    done = subprocess.run([sys.executable, "-m", "mnistlab", "doctor", str(trained_run),
                           "--json", "--lang", "es"], capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    found = json.loads(done.stdout)
    assert found and all(isinstance(f["title"], str) for fs in found.values() for f in fs)
    assert b"\\u00" in done.stdout or not any(found.values())


def test_a_path_flag_s_leading_tilde_is_the_home_folder(trained_run, tmp_path, monkeypatch):
    """Hunt: `--out=~/m.onnx`, which no shell expands, wrote into a folder named "~" under the
    working folder, printed as "~/m.onnx" as if it were home."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert main(["export", str(trained_run), "--out=~/m.onnx"]) == 0
    assert (home / "m.onnx").is_file() and not (work / "~").exists()


@pytest.mark.parametrize("width", [40, 72, 80, 120])
@pytest.mark.parametrize("stopped", [False, "15/30, best 12", "150/200, best 80"])
def test_the_summary_table_keeps_every_figure_whole_on_a_narrow_terminal(width, stopped,
                                                                         trained_run,
                                                                         monkeypatch):
    """At 40 columns each figure was cut to "0.…"; at 80, "early-stopped" to "early-st…"."""
    import dataclasses
    import io

    from mnistlab.cli import common
    from mnistlab.runs import load_summary

    shown = io.StringIO()
    monkeypatch.setattr(common, "stdout", Console(file=shown, width=width))
    summary = load_summary(trained_run)
    if stopped:  # the longer piece first or last ("150/200," is one word with its comma)
        done, planned, best = map(int, re.findall(r"\d+", stopped))
        summary = dataclasses.replace(summary, status="early-stopped", epochs=done,
                                      epochs_planned=planned, best_epoch=best)
    common.print_summary(summary, None)
    text = shown.getvalue()
    assert f"{summary.test_accuracy:.4f}" in text and f"{summary.val_accuracy:.4f}" in text
    assert summary.status in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    across = "┃" in text  # the figures side by side under headers, not one row each
    assert across == (width >= 80 or width >= 72 and not stopped)
    shown.truncate(0), shown.seek(0)  # hunt: one row each, a Spanish two-line heading was
    common.print_summary(summary, None, lang="es")  # cut in two rows ("s" / "entren.")
    if "┃" not in shown.getvalue():
        assert "s entren." in shown.getvalue() and "exact. val." in shown.getvalue()
    shown.truncate(0), shown.seek(0)  # hunt: and on two lines where it has room for one
    monkeypatch.setattr(common, "stdout", Console(file=shown, width=200))
    common.print_summary(summary, None, lang="es")
    assert "┃ exact. val. ┃" in shown.getvalue()


COMMAND_NAMES = "train, evaluate, data, doctor, study, tune, predict, export, completion"


@pytest.mark.parametrize("argv, said", [
    (["--lang", "es", "study", "x"], "mnistlab: error: the command comes first, then its "
     "options: mnistlab study --lang es x (see `mnistlab --help`)"),
    (["train", "mnist"], "mnistlab train: error: unrecognized arguments: mnist (see `mnistlab "
     "train --help`)"),
    (["evaluate", "r", "--bogus", "1"], "mnistlab evaluate: error: unrecognized arguments: "
     "--bogus 1 (see `mnistlab evaluate --help`)"),
    # a flag misspelt is named as the choices and datasets are (hunt: no hint)
    (["train", "--optimiser", "sgd"], "mnistlab train: error: unrecognized arguments: "
     "--optimiser sgd (did you mean --optimizer?) (see `mnistlab train --help`)"),
    (["study", "--quik=1", "x"], "mnistlab study: error: unrecognized arguments: --quik=1 "
     "(did you mean --quick?) (see `mnistlab study --help`)"),
    # hunt: another tool's name for a flag was told the nearest spelling (--out-dir:
    # --data-dir, which changes the meaning; --learning-rate: nothing)
    (["train", "--out-dir", "x"], "mnistlab train: error: unrecognized arguments: --out-dir x "
     "(did you mean --out?) (see `mnistlab train --help`)"),
    (["train", "--learning_rate=0.1"], "mnistlab train: error: unrecognized arguments: "
     "--learning_rate=0.1 (did you mean --lr?) (see `mnistlab train --help`)"),
    (["train", "--gpu"], "mnistlab train: error: unrecognized arguments: --gpu (did you mean "
     "--device cuda?) (see `mnistlab train --help`)"),
    # review: a command without --device was told --out
    (["export", "r", "--out", "a.onnx", "--gpu"], "mnistlab export: error: unrecognized "
     "arguments: --gpu (see `mnistlab export --help`)"),
    (["data"], "mnistlab data: error: the following arguments are required: {fetch,info,path} "
     "(see `mnistlab data --help`)"),
    # hunt: no command among the words: no hint for a typo, "invalid choice: 'es'" for an
    # option's value, "required: command" for an option alone
    (["trian", "--lr", "0.1"], f"mnistlab: error: unknown command 'trian' (did you mean "
     f"train?); the commands: {COMMAND_NAMES} (see `mnistlab --help`)"),
    (["--lang", "es"], f"mnistlab: error: unrecognized arguments: --lang es; options go after "
     f"a command (one of {COMMAND_NAMES}): mnistlab COMMAND --lang es (see `mnistlab --help`)"),
    ([], f"mnistlab: error: give a command: {COMMAND_NAMES} (see `mnistlab --help`)"),
    # review: with --help it was argparse's "invalid choice"; after an option, the misspelt
    # command was left among the options to give after COMMAND
    (["trian", "-h"], f"mnistlab: error: unknown command 'trian' (did you mean train?); the "
     f"commands: {COMMAND_NAMES} (see `mnistlab --help`)"),
    (["--lang", "es", "trian"], f"mnistlab: error: unknown command 'trian' (did you mean "
     f"train?); the commands: {COMMAND_NAMES} (see `mnistlab --help`)")])
def test_arguments_in_the_wrong_place_are_said_by_the_command_they_belong_to(argv, said,
                                                                           capsys):
    """`mnistlab --lang es study` said "invalid choice: 'es'"; `train mnist` was blamed on
    `mnistlab`, whose --help does not list train's flags."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and capsys.readouterr().err.strip() == said


@pytest.mark.parametrize("tail, said", [
    (["-x.png"], "the following arguments are required: IMAGE; -x.png is a file: write it as "
     "./-x.png (or put -- before the file names) so it is not read as a flag"),
    (["a.png", "-x.png"], "unrecognized arguments: -x.png; -x.png is a file: write it as")])
def test_a_file_named_like_a_flag_gets_a_hint(tail, said, tmp_path, monkeypatch, capsys):
    """argparse reads -x.png as a flag it does not know; the hint says how to give it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-x.png").write_bytes(b"")
    with pytest.raises(SystemExit) as caught:
        main(["predict", "run", *tail])
    err = capsys.readouterr().err.strip()
    assert caught.value.code == 2 and said in err and len(err.splitlines()) == 1


def test_every_example_in_the_help_parses():
    """The commands `mnistlab --help` and the subcommands' epilogs show are ones the parser
    takes (flags renamed since would make them fail where a reader first tries them)."""
    from mnistlab.cli import EPILOGS, START, build_parser

    lines = [line.strip() for text in (START, *EPILOGS.values())
             for line in text.replace("\\\n", "").splitlines()
             if line.strip().startswith("mnistlab ") and " > " not in line]
    assert len(lines) >= 30  # the start, and every command's examples
    assert set(EPILOGS) >= {"train", "evaluate", "data", "doctor", "study", "tune", "predict",
                            "export", "completion"}
    parser = build_parser()
    for line in lines:
        parser.parse_args(shlex.split(line)[1:])  # SystemExit(2) on a flag it does not know


def test_every_command_in_the_readme_and_docs_parses():
    """The `mnistlab ...` lines of the README's and docs' shell blocks are ones the parser
    takes: a flag renamed or dropped since fails here, not where a reader pastes it."""
    import re

    from mnistlab.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    commands = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("mnistlab "):
                    words = shlex.split(line, comments=True)
                    stops = [i for i, w in enumerate(words) if w in ("|", "&&", ";", ">", "&")]
                    commands.append((page.name, words[1:min(stops, default=len(words))]))
    assert len(commands) >= 40 and {"README.md", "tune.md"} <= {page for page, _ in commands}
    parser = build_parser()
    for page, words in commands:
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{page}: mnistlab {shlex.join(words)} does not parse")


def test_a_run_from_before_a_folder_was_recognised_still_evaluates(tmp_path, shared_datasets,
                                                                   capsys):
    """A run trained on a copy of Fashion-MNIST given by path was told its classes 0..9; read
    again, the copy's checksums name its classes, and evaluate refused the unchanged data."""
    copy = tmp_path / "fm"
    copy.mkdir()
    for f in (shared_datasets / "fashion-mnist").glob("*-ubyte.gz"):
        (copy / f.name).symlink_to(f)
    (copy / "classes.txt").write_text("\n".join(map(str, range(10))))  # as it was named then
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(copy), "--train-subset", "1000", "--epochs", "1",
                 "--val-size", "500", "--out", str(run), "--quiet"]) == 0
    (copy / "classes.txt").unlink()
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [
    ("--model cnn --hidden 32", ["--hidden 32 does nothing with --model cnn: only mlp reads it "
                                 "(cnn is sized by --filters, --dense)"]),
    ("--model mlp --filters 8,16 --batchnorm",
     ["--filters 8,16 does nothing with --model mlp: only cnn and resnet read it (mlp is sized "
      "by --hidden)", "--batchnorm does nothing with --model mlp: only cnn and lenet5 read it"]),
    ("--model resnet --dense 16 --variant classic",
     ["--dense 16 does nothing with --model resnet: only cnn reads it (resnet is sized by "
      "--filters, --blocks)", "--variant classic does nothing with --model resnet: only lenet5 "
      "reads it"]),
    ("--optimizer adam --momentum 0.9", ["--momentum 0.9 does nothing with --optimizer adam: "
                                         "it is SGD's (adam keeps its own running averages of "
                                         "the gradient)"]),
    ("--val-from test --val-size 5000", ["--val-size 5000 does nothing with --val-from test: "
                                         "the whole test set is the validation set, and every "
                                         "training image trains"]),
    ("--model cnn --filters 8 --dense 16 --no-batchnorm --optimizer sgd --momentum 0.9 "
     "--val-size 500", []),
    ("--model lenet5 --variant classic --batchnorm --recipe mnist-fast",
     ["--recipe mnist-fast gives filters, dense for its cnn, which --model lenet5 does not read; "
      "they do nothing"]),
    ("--recipe mnist-best --epochs 2", []),
    # one-cycle cycles SGD's momentum itself: --momentum was dropped without a word
    ("--optimizer sgd --schedule onecycle --momentum 0.5",
     ["--momentum 0.5 does nothing with --schedule onecycle: it cycles SGD's momentum from "
      "0.95 to 0.85 and back itself"]),
    # early stopping that waits as long as the run: it never stops it
    ("--epochs 5 --early-stopping 5",
     ["--early-stopping 5 never stops a run of 5 epochs: it stops after 5 epochs without a "
      "better validation accuracy, after the best one"]),
    ("--epochs 6 --early-stopping 5", []),
    # the binary loss smooths no labels (hunt: dropped without a word)
    ("--loss bce --metric binary-accuracy --label-smoothing 0.1",
     ["--label-smoothing 0.1 does nothing with --loss bce: only ce and ce-on-softmax smooth "
      "their labels"]),
    ("--label-smoothing 0.1", []),
])
def test_a_flag_the_model_or_optimizer_does_not_read_is_said(argv, said):
    """--hidden with a cnn, --momentum with adam, --val-size with --val-from test were
    dropped without a word."""
    from mnistlab.cli import build_parser
    from mnistlab.cli.common import config_from_args
    from mnistlab.cli.train import unread_flags
    from mnistlab.recipes import get_recipe

    args = build_parser().parse_args(["train", *argv.split()])
    config = config_from_args(args, get_recipe(args.recipe).settings if args.recipe else None)
    assert unread_flags(args, config) == [f"warning: {line}" for line in said]


def test_a_recipe_s_settings_a_config_file_s_model_does_not_read_blame_the_file(tmp_path):
    """--recipe mnist-fast --config mlp.toml said "which --model mlp does not read", a flag
    not given: the file chose the model."""
    from mnistlab.cli import build_parser
    from mnistlab.cli.common import config_from_args
    from mnistlab.cli.train import unread_flags
    from mnistlab.recipes import get_recipe

    path = tmp_path / "mlp.toml"
    path.write_text('model = "mlp"\nhidden = [8]\n')
    args = build_parser().parse_args(["train", "--recipe", "mnist-fast", "--config", str(path)])
    config = config_from_args(args, get_recipe(args.recipe).settings)
    assert unread_flags(args, config) == [
        "warning: --recipe mnist-fast gives filters, dense, batchnorm for its cnn, which the mlp "
        f"that {path} chooses does not read; they do nothing"]


@pytest.mark.parametrize("text, said", [
    ("", "holds no settings; write one `name = value` per line (e.g. epochs = 3"),
    ("# epochs = 3\n", "holds no settings"),
    ('{"epochs": 3}', "JSON, not TOML; write one `name = value` per line"),
    ("[train]\nepochs = 3\n", "[train] is a table; a run's settings file has no tables: "
                               "remove the [train] line"),
    ("[base]\nepochs = 3\n", "[base] is a table"),
    # another tool's file (hunt): "remove the [build-system] line" was no help
    ('[build-system]\nrequires = ["setuptools"]\n[project]\nname = "x"\n',
     "not a run's settings file ([build-system] holds no setting: another tool's file?); give a "
     "file of `name = value` settings"),
    ("[augment]\nrotate = 10\n", "[augment] is a table, but augment is one setting; write it "
                                  'on one line above any [table], e.g. augment = "rotate=10,'),
    ("learning_rate = 0.01\n", "unknown setting 'learning_rate' (did you mean lr?)"),
    ("hidden = [128.5, 64]\n", "is not a list of whole numbers (e.g. [128, 64])"),
    # hunt: TOML's own words named no fix ("Invalid hex value" of a Windows path), a path
    # with \t and \n in it was read as another, nesting 500 deep was a traceback
    ('data_dir = "C:\\Users\\me"\n', "in double quotes a backslash starts an escape (\\t, \\n, "
     "\\U); write a Windows path in single quotes ('C:\\Users\\me\\data') or with forward slashes"),
    ('data_dir = "C:\\temp\\new"\n', "holds a tab or a line break: a Windows path's backslashes "
     "read as escapes?"),
    ("epochs = 2\nlr = 0.1\nepochs = 3\n", "epochs (lines 1 and 3) is given twice; keep one"),
    ("batchnorm = True\n", "TOML writes True as true"),
    ("data_dir = None\n", "TOML has no empty value: leave the key out for its default"),
    ("model = mlp\n", 'text goes in double quotes: "mlp"'),
    ("hidden = " + "[" * 600 + "]" * 600 + "\n", "nested too deeply to read"),
    ("LR = 0.1\n", "unknown setting 'LR' (did you mean lr?)"),
    # review: the key of another [[experiment]], a multi-line string's line, a line counted
    # at U+0085, and a number told to be quoted
    ("[[a]]\nname = 'x'\nv = 1\n[[a]]\nname = 'y'\nv = 1\nv = 2\n",
     "v (lines 6 and 7) is given twice"),
    ('note = """\nlr = 1\n"""\nlr = 0.1\nlr = 0.2\n', "lr (lines 4 and 5) is given twice"),
    ("# caf\u0085 note\nepochs = 2\nmodel = None\n", "TOML has no empty value"),
    ("lr = Inf\n", "TOML writes Inf as inf"),
    ("lr = e-3\n", "a number starts with a digit: 1e-3"),
    # review: a quote in a comment hid the key; a sign hid the advice
    ("# use \x27\x27\x27 for long text\nepochs = 2\nepochs = 3\n",
     "epochs (lines 2 and 3) is given twice"),
    ("note = \"quotes \x27\x27\x27 open\"\nlr = 0.1\nlr = 0.2\n", "lr (lines 2 and 3) is given"),
    ("lr = -Infinity\n", "TOML writes -Infinity as -inf"),
    ("lr = .5\n", "a number starts with a digit: 0.5, not .5"),
    ("epochs = 2\nnote = \"\"\"\nepochs = 3 was too few\n\"\"\"\nepochs = 5\n",
     "epochs (lines 1 and 5) is given twice"),  # review: a description's line was named
])
def test_a_config_file_s_mistakes_get_a_line_that_names_the_fix(tmp_path, capsys, text, said):
    """An empty file trained the defaults without a word; JSON got a TOML parse error; a
    [train] table got "did you mean train_subset?"; learning_rate got no hint; a file's list
    was told to be written as the flag writes it."""
    path = tmp_path / "run.toml"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert said in err, err
    assert not (tmp_path / "r").exists()


def test_a_config_file_s_momentum_under_adam_is_warned_about_as_the_flag_is(tmp_path):
    from mnistlab.cli import build_parser
    from mnistlab.cli.common import config_from_args
    from mnistlab.cli.train import unread_flags

    path = tmp_path / "adam.toml"
    path.write_text('optimizer = "adam"\nmomentum = 0.9\n')
    args = build_parser().parse_args(["train", "--config", str(path)])
    assert unread_flags(args, config_from_args(args, None)) == [
        f"warning: momentum = 0.9 ({path}) does nothing with --optimizer adam: it is SGD's "
        "(adam keeps its own running averages of the gradient)"]


def test_a_flag_overrides_a_config_file_key_spelled_with_dashes_under_a_recipe(tmp_path):
    """The recipe's batch_size, the file's batch-size and the flag were three keys; the file's,
    merged last, beat the flag."""
    from mnistlab.cli import build_parser
    from mnistlab.cli.common import config_from_args
    from mnistlab.errors import MnistlabError
    from mnistlab.recipes import get_recipe

    settings = tmp_path / "s.toml"
    settings.write_text("batch-size = 32\ntrain-subset = 2000\n")
    args = build_parser().parse_args(["train", "--recipe", "mnist-fast", "--config",
                                      str(settings), "--batch-size", "16"])
    config = config_from_args(args, get_recipe("mnist-fast").settings)
    assert (config.batch_size, config.train_subset) == (16, 2000)
    settings.write_text("batch-size = 32\nbatch_size = 8\n")
    with pytest.raises(MnistlabError, match=r"s\.toml: batch-size and batch_size are one "
                       "setting, given twice; keep one"):
        config_from_args(build_parser().parse_args(["train", "--config", str(settings)]))


def test_a_recipe_every_setting_of_which_is_given_again_is_said_to_change_nothing(tmp_path,
                                                                                 capsys):
    """A run's config.toml lists every setting: with --recipe it silently replaced the recipe
    whole; and --recipe list took other flags (and --out) without a word."""
    from mnistlab.cli import build_parser, main
    from mnistlab.cli.common import config_from_args
    from mnistlab.cli.train import unread_flags
    from mnistlab.config import TrainConfig
    from mnistlab.recipes import get_recipe

    recipe = get_recipe("mnist-fast").settings
    other, same = tmp_path / "other.toml", tmp_path / "same.toml"
    other.write_text(TrainConfig(model="mlp").to_toml())
    same.write_text(TrainConfig.from_dict(recipe, typed=False).to_toml())  # the recipe's run
    said = {}
    for path in (other, same):
        args = build_parser().parse_args(["train", "--recipe", "mnist-fast", "--config",
                                          str(path)])
        said[path] = unread_flags(args, config_from_args(args, recipe))
    assert said[other] == [f"warning: --recipe mnist-fast changes nothing: {other} sets every "
                           f"setting it gives ({', '.join(recipe)}) again; leave the recipe "
                           "out, or those settings"]
    assert said[same] == []
    assert main(["train", "--recipe", "list", "--epochs", "3", "--out", "zz",
                 "--no-batchnorm", "--log", "mlflow"]) == 2
    assert "--recipe list shows the recipes and trains nothing; leave out --out, --log, " \
        "--no-batchnorm, --epochs" in capsys.readouterr().err
    assert not (tmp_path / "zz").exists()



@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_the_recipe_list_breaks_lines_only_between_words_and_flags(width, monkeypatch):
    """Hunt: at 60 columns `--recipe list` folded "--filters" / "32,64,128,2" / "56 --dense";
    a flag and its value stay on one line, every word whole, a paragraph a recipe where
    the table cannot keep them so."""
    from mnistlab.cli import common, train
    from mnistlab.recipes import RECIPES

    shown = io.StringIO()
    monkeypatch.setattr(train, "stdout", Console(file=shown, width=width))
    assert main(["train", "--recipe", "list"]) == 0
    text = shown.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    for recipe in RECIPES.values():
        for pair in (common.as_flag(k, v) for k, v in recipe.settings.items()):
            assert pair in text, (pair, text)  # on one line
        for word in f"{recipe.name} {recipe.goal} {recipe.measured}".split():
            assert word in text, (word, text)
    assert ("┃ settings" in text) == (width >= 100)  # a table, or a paragraph each


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_without_unicode_gets_escapes_not_a_traceback(encoding, tiny_idx_dir,
                                                                 tmp_path):
    """The summary's "·" (or a path's "γ") raised UnicodeEncodeError once the run was done:
    a traceback and exit 1 for a finished run, under PYTHONIOENCODING=ascii or a latin-1
    pipe."""
    out = tmp_path / "γ"
    done = subprocess.run([sys.executable, "-m", "mnistlab", "train", "--dataset",
                           str(tiny_idx_dir), "--model", "mlp", "--hidden", "16", "--epochs",
                           "1", "--val-size", "100", "--device", "cpu", "--out", str(out)],
                          capture_output=True, env={**os.environ, "PYTHONIOENCODING": encoding},
                          timeout=300)
    said = done.stdout.decode(encoding) + done.stderr.decode(encoding)
    assert done.returncode == 0 and "Traceback" not in said, said
    assert "\\u03b3" in said and (out / "model.pt").is_file()


def test_brackets_in_folder_and_class_names_are_printed_as_written(tmp_path, tiny_idx_dir,
                                                                    capsys):
    """rich read "[v2]" in a folder's name and "[/]" in a class name as markup: `data info`
    showed another folder's name, and `data info` and `evaluate` ended in a traceback."""
    folder = tmp_path / "digits [v2]"
    shutil.copytree(tiny_idx_dir, folder)
    names = ["[/]", "[bold]b", "c[red]", *map(str, range(3, 10))]
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    capsys.readouterr()
    assert main(["data", "info", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "digits [v2]" in shown and "[bold]b" in shown and "[/]" in shown
    run = tmp_path / "run [1]"
    assert main(["train", "--dataset", str(folder), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "100", "--eval-train-size", "100",
                 "--device", "cpu", "--out", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "digits [v2]" in shown and f"run folder: {run}" in shown
    assert main(["evaluate", str(run)]) == 0
    shown = capsys.readouterr().out
    assert str(run) in shown and all(re.search(rf"^\s*{re.escape(n)}\s", shown, re.M)
                                     for n in names)


@pytest.mark.parametrize("quiet", [False, True])
def test_a_diverged_run_points_to_a_panel_only_where_it_printed_one(quiet, tiny_idx_dir,
                                                                    tmp_path, capsys):
    """With --quiet it said "see the doctor's panel", which --quiet does not print."""
    run = tmp_path / "run"
    code = main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "2", "--val-size", "100", "--optimizer", "sgd", "--lr", "1e6",
                 "--device", "cpu", "--out", str(run), *(["--quiet"] if quiet else [])])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "training diverged" in said
    assert ("see the doctor's panel" in said) != quiet
    assert (f"`mnistlab doctor {run}` says more" in said) == quiet


def test_train_lang_es_writes_the_figures_and_the_doctors_panel_in_spanish(tiny_idx_dir,
                                                                           tmp_path, capsys,
                                                                           monkeypatch):
    """`train` drew English figures and an English panel: only `doctor` and the reports had
    --lang. A diverged run: its curves' title and the panel are the run's own words."""
    from mnistlab import figures
    from mnistlab.messages import t

    drawn: dict[str, tuple] = {}

    def spied(name: str, draw):
        def spy(*args, **kwargs):
            drawn[name] = (args, kwargs)
            return draw(*args, **kwargs)
        return spy

    for name in ("learning_curves", "confusion"):
        monkeypatch.setattr(figures, name, spied(name, getattr(figures, name)))
    code = main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "2", "--val-size", "100", "--optimizer", "sgd", "--lr", "1e6",
                 "--device", "cpu", "--out", str(tmp_path / "run"), "--lang", "es"])
    assert code == 1 and (tmp_path / "run" / "curves.png").is_file()
    args, kwargs = drawn["learning_curves"]
    assert args[1:] == (t("es", "plot.diverged"), "es")
    shown = capsys.readouterr().out
    assert t("es", "cli.doctor") in shown and t("en", "cli.doctor") not in shown
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
                 "--epochs", "1", "--val-size", "100", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "ok"), "--lang", "es"]) == 0
    assert drawn["confusion"][1]["lang"] == "es"


def test_train_lang_es_prints_its_progress_and_results_in_spanish(tiny_idx_dir, tmp_path,
                                                                   capsys):
    """--lang es drew Spanish figures and a Spanish doctor's panel beside English epoch lines,
    results table and members' line. An ensemble: its scoring line too."""
    from spanish import english_in

    argv = ["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "16",
            "--epochs", "2", "--val-size", "100", "--ensemble", "2", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "es"), "--lang", "es"]) == 0
    shown = capsys.readouterr()
    for words in ("época   2/2", "exact. entren.", "puntuando validación y prueba con 2 miembros",
                  "conjunto de 2", "miembros por separado", "carpeta de la ejecución"):
        assert words in shown.out + shown.err
    assert english_in(shown.out + shown.err) == []
    # the same command again, and a run that diverges: their closing lines too
    assert main([*argv, "--out", str(tmp_path / "es"), "--lang", "es", "--quiet"]) == 0
    assert "ya contiene esta ejecución, terminada" in capsys.readouterr().err
    assert main([*argv[:-4], "--lr", "1e6", "--optimizer", "sgd", "--quiet", "--lang", "es",
                 "--device", "cpu", "--out", str(tmp_path / "nan")]) == 1
    said = capsys.readouterr().err
    assert "el entrenamiento divergió" in said and english_in(said) == []
    assert main([*argv, "--out", str(tmp_path / "en")]) == 0
    shown = capsys.readouterr()
    for words in ("epoch   2/2", "train acc", "scoring validation and test with 2 members",
                  "ensemble of 2", "members alone", "run folder"):
        assert words in shown.out + shown.err


def test_train_lang_es_names_fashion_s_classes_in_spanish(shared_datasets, tmp_path,
                                                          monkeypatch):
    """The run's confusion.png named Fashion's classes in English under --lang es, where the
    study's figures name them Pantalón, Jersey..."""
    from mnistlab import figures

    names = []
    real = figures.confusion
    monkeypatch.setattr(figures, "confusion", lambda matrix, classes, *a, **k: names.append(
        list(classes)) or real(matrix, classes, *a, **k))
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(shared_datasets),
                 "--model", "mlp", "--hidden", "16", "--epochs", "1", "--train-subset", "1000",
                 "--val-size", "500", "--eval-train-size", "200", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "run"), "--lang", "es"]) == 0
    assert names == [["Camiseta/top", "Pantalón", "Jersey", "Vestido", "Abrigo", "Sandalia",
                      "Camisa", "Zapatilla", "Bolso", "Botín"]]


def test_train_refuses_an_unknown_language_before_it_trains(tiny_idx_dir, tmp_path):
    from mnistlab import train
    from mnistlab.errors import MnistlabError

    config = TrainConfig(dataset=str(tiny_idx_dir), model="mlp", hidden=[8], epochs=1,
                         val_size=100, device="cpu")
    with pytest.raises(MnistlabError, match="lang: unknown language 'fr'"):
        train(config, out=tmp_path / "run", lang="fr")
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("argv, said", [
    (["study", "--list", "lenet-challenge"], "error: --list shows the presets and runs nothing; "
     "leave out 'lenet-challenge' to list them, or --list to run it"),
    (["tune", "fashion-mlp", "--list"], "error: --list shows the search spaces and searches "
     "nothing; leave out 'fashion-mlp' to list them, or --list to search it")])
def test_list_beside_a_name_is_refused(argv, said, capsys):
    """`study lenet-challenge --list` listed the presets, exit 0, and ran nothing, without a
    word of the study given (hunt); `train --recipe list --epochs 2` is refused alike."""
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == said


def test_retrain_seeds_beside_no_report_is_said(capsys, tmp_path, monkeypatch):
    """`tune --no-report --retrain-seeds 5` searched and retrained nothing, without a word."""
    import mnistlab.api
    from mnistlab.errors import MnistlabError

    monkeypatch.setattr(mnistlab.api, "run_tune", lambda *a, **k: (_ for _ in ()).throw(
        MnistlabError("stopped here")))
    assert main(["tune", "fashion-mlp", "--quick", "--no-report", "--retrain-seeds", "5",
                 "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err.startswith(
        "warning: --retrain-seeds 5 does nothing with --no-report: nothing is retrained")
