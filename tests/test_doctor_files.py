"""Run folders read back: a damaged summary.json, metrics.csv, config.toml or model.pt is one
line naming the file and what to do; a study folder reports its good runs and names the
damaged one."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from synth import blobs

from mnistlab.cli import main
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.records import Finding
from mnistlab.runs import FIX_DAMAGED, load_model
from mnistlab.runs import examine as doctor_path
from mnistlab.training import train


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One real run folder (a small MLP, two epochs on synthetic blobs)."""
    out = tmp_path_factory.mktemp("runs") / "good"
    config = TrainConfig(model="mlp", hidden=(16,), epochs=2, val_size=200, device="cpu",
                         eval_train_size=200)
    train(config, dataset=blobs(600, 200), out=out, write_plots=False)
    return out


@pytest.fixture()
def run_copy(good_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(good_run, copy)
    return copy


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def _csv(run):
    return (run / "metrics.csv").read_text()


def _edit(name, change):
    """A damaged file: name -> its new content, computed from the run folder."""
    def apply(run):
        content = change(run)
        if content is None:
            (run / name).unlink()
        elif isinstance(content, bytes):
            (run / name).write_bytes(content)
        else:
            (run / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return apply


DAMAGED = [
    ("summary.json", lambda r: "{oops", "not JSON: Expecting property name"),
    ("summary.json", lambda r: "", "not JSON: Expecting value at line 1"),
    ("summary.json", lambda r: "[1, 2]", "a JSON list, not an object"),
    ("summary.json", lambda r: b"\xff\xfe{}", "not UTF-8 text at byte 0"),
    ("summary.json", lambda r: {k: v for k, v in _summary(r).items() if k != "status"},
     "(no status)"),
    ("summary.json", lambda r: {**_summary(r), "status": 3}, "status is not text"),
    ("summary.json", lambda r: {**_summary(r), "loss_trace": "x"},
     "loss_trace is not a list of [step, loss] pairs"),
    ("summary.json", lambda r: {**_summary(r), "loss_trace": [[1]]},
     "loss_trace is not a list of [step, loss] pairs"),
    ("summary.json", lambda r: {**_summary(r), "class_names": 5},
     "class_names is not a list of class names"),
    ("summary.json", lambda r: {**_summary(r), "val_label_counts": ["a"]},
     "val_label_counts is not a list of whole numbers >= 0"),
    ("summary.json", lambda r: {**_summary(r), "val_pred_counts": {"a": 1}},
     "val_pred_counts is not a list of whole numbers >= 0"),
    ("summary.json", lambda r: {**_summary(r), "val_pred_counts": [1, 2]},
     "class_names, val_label_counts and val_pred_counts differ in length"),
    ("summary.json", lambda r: {**_summary(r), "val_accuracy": "high"},
     "val_accuracy is not a number or null"),
    ("summary.json", lambda r: {**_summary(r), "train_size": -1},
     "train_size is not a whole number >= 0"),
    # an ensemble's members, which the doctor reads (a traceback, once it did)
    *(("summary.json", lambda r, bad=bad: {**_summary(r), "members": bad},
       "members is not a list of members, each with val_accuracy and test_accuracy numbers "
       "or null") for bad in ([1, 2, 3], "x", [{"val_accuracy": "0.1"}])),
    ("summary.json", lambda r: {**_summary(r), "diagnoses": "x"},
     "diagnoses is not a list of findings"),
    ("summary.json", lambda r: {**_summary(r), "diagnoses": [{"code": "diverged"}]},
     "diagnosis 1 (diverged) cannot be read"),
    ("summary.json", lambda r: {**_summary(r), "diagnoses": [
        {"code": "overfitting", "severity": "problem", "values": {"train": "x"}}]},
     "diagnosis 1 (overfitting) cannot be read"),
    ("summary.json", lambda r: {**_summary(r), "diagnoses": [{"code": [1]}]},
     "diagnosis 1 ([1]) cannot be read"),
    ("summary.json", lambda r: {**_summary(r), "diagnoses": [{"severity": "problem"}]},
     "diagnosis 1 (None) cannot be read"),
    ("metrics.csv", lambda r: _csv(r).replace("\n1,", "\nabc,", 1), "line 2: epoch = 'abc'"),
    ("metrics.csv", lambda r: "x" * 200_000, "not readable as CSV (field larger than field"),
    ("metrics.csv", lambda r: _csv(r).replace("\n1,", "\n1.5,", 1),
     "line 2: epoch '1.5' is not a whole number"),
    ("metrics.csv", lambda r: _csv(r).rstrip("\n")[:-12], "line 3 does not have one cell per"),
    ("metrics.csv", lambda r: _csv(r).replace("\n2,", "\n2,9,", 1),
     "line 3 does not have one cell per column"),
    ("metrics.csv", lambda r: _csv(r).replace("val_acc,", "val_accuracy,", 1), "no val_acc column"),
    ("metrics.csv", lambda r: "", "empty, not even its header"),
    ("metrics.csv", lambda r: b"epoch\xff\n", "not UTF-8 text"),
    # deleted from a finished run: "nothing wrong found", where it had named a problem (hunt)
    ("metrics.csv", lambda r: None, "missing, where summary.json counts 2 epochs"),
]
CONFIG_DAMAGE = [("lr = -1\n", "lr: must be a positive number"), ("lr = [\n", "not valid TOML"),
                 (None, "no such file")]


@pytest.mark.parametrize("name,change,message", DAMAGED, ids=[
    f"{n}-{m[:30]}" for n, _, m in DAMAGED])
def test_damaged_run_folder_is_one_line_naming_the_file(name, change, message, run_copy):
    _edit(name, change)(run_copy)
    with pytest.raises(MnistlabError) as info:
        doctor_path(run_copy)
    text = str(info.value)
    assert text.startswith(f"{run_copy / name}: damaged (") and message in text
    assert text.endswith(f"; {FIX_DAMAGED}") and "\n" not in text


@pytest.mark.parametrize("content, problem", CONFIG_DAMAGE)
def test_a_run_without_a_readable_config_toml_is_examined_with_its_model_s_settings(
        content, problem, run_copy):
    """The doctor called the run damaged and advised --overwrite (a retrain; in a study, no
    command mends it). model.pt holds the same settings, which `train` writes back from."""
    wanted = doctor_path(run_copy)
    _edit("config.toml", lambda r: content)(run_copy)
    assert doctor_path(run_copy) == wanted
    (run_copy / "model.pt").write_bytes(b"cut")  # no other copy: the file is named
    with pytest.raises(MnistlabError, match=f"config.toml: damaged \\({problem}"):
        doctor_path(run_copy)


def test_a_project_folder_with_its_own_config_toml_is_searched_for_runs(good_run, tmp_path):
    """A config.toml of the user's own beside a runs/ folder was taken for an unfinished run."""
    (tmp_path / "config.toml").write_text('model = "mlp"\n')
    shutil.copytree(good_run, tmp_path / "runs" / "a")
    assert list(doctor_path(tmp_path)) == [str(tmp_path / "runs" / "a")]


def test_mlflow_s_copies_of_runs_are_not_examined_as_runs(good_run, tmp_path):
    """A study logged to MLflow keeps copies of its run folders under mlartifacts/: the doctor
    counted each run twice, and with runs/ deleted still found "nothing wrong" in the copies."""
    shutil.copytree(good_run, tmp_path / "runs" / "a")
    shutil.copytree(good_run, tmp_path / "mlartifacts" / "1" / "abc" / "artifacts")
    shutil.copytree(good_run, tmp_path / "tensorboard" / "a")
    assert list(doctor_path(tmp_path)) == [str(tmp_path / "runs" / "a")]
    shutil.rmtree(tmp_path / "runs")
    with pytest.raises(MnistlabError, match="no run folders here"):
        doctor_path(tmp_path)


@pytest.mark.parametrize("db, what, command, unit", [("study.db", "study", "study", "run"),
                                                     ("tune.db", "search", "tune", "trial")])
def test_a_study_stopped_before_its_first_run_is_named_unfinished(tmp_path, db, what, command,
                                                                  unit):
    (tmp_path / db).write_bytes(b"")
    (tmp_path / "cohorts" / "x").mkdir(parents=True)
    with pytest.raises(MnistlabError, match=f"a {what} stopped before its first {unit} "
                       f"finished; run the same `mnistlab {command}` command again"):
        doctor_path(tmp_path)


def test_a_study_or_search_running_now_or_done_without_run_folders_is_not_called_stopped(
        tmp_path):
    """A study running now, a search with trials running, and a search whose trials were all
    done (--no-report: no retrain/) were each said to have "stopped before its first run
    finished", exit 2, with advice to run a command that the study's lock then refused."""
    import sqlite3

    from mnistlab import files

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.db").write_bytes(b"")
    with files.exclusive(tmp_path / "s" / "study.lock", "this study"):
        with pytest.raises(MnistlabError, match="a study is running in this folder now and "
                           "none of its runs has finished yet; examine it once some have"):
            doctor_path(tmp_path / "s")
    (tmp_path / "t").mkdir()
    with sqlite3.connect(tmp_path / "t" / "tune.db") as db:  # Optuna's table, as it names it
        db.execute("CREATE TABLE trials (trial_id INTEGER PRIMARY KEY, state VARCHAR(8))")
        db.executemany("INSERT INTO trials (state) VALUES (?)",
                       [("COMPLETE",), ("PRUNED",), ("RUNNING",)])
    with pytest.raises(MnistlabError, match=r"a search with 1 trial running now \(or killed "
                       r"while running\) and 2 finished; its run folders come when it retrains"):
        doctor_path(tmp_path / "t")
    with sqlite3.connect(tmp_path / "t" / "tune.db") as db:
        db.execute("DELETE FROM trials WHERE state = 'RUNNING'")
    with pytest.raises(MnistlabError, match="a search of 2 finished trials and no run folder: "
                       "a search's trials keep none"):
        doctor_path(tmp_path / "t")
    # retraining its best configuration now: it said to run the command again
    (tmp_path / "t" / "retrain" / "best-seed1").mkdir(parents=True)
    with files.exclusive(tmp_path / "t" / "retrain" / "best-seed1" / ".lock", "a training run"):
        with pytest.raises(MnistlabError, match="a search retraining its best configuration now "
                           r"\(retrain/\); examine it once that has finished"):
            doctor_path(tmp_path / "t")
    # on Ray the retrained runs' folders may be on the workers: the driver's lock says it
    with files.exclusive(tmp_path / "t" / ".report.lock", "the report"):
        with pytest.raises(MnistlabError, match="a search retraining its best configuration now"):
            doctor_path(tmp_path / "t")
    # a worker's folder on PostgreSQL holds search.json, no tune.db: it was "no run folders
    # here", as of a folder that is none of ours (hunt)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "search.json").write_text(
        '{"study": "s", "storage": "postgresql://me:***@db/t"}')
    files.check_not_inside_ours(tmp_path / "w" / "mine")  # a search.json alone is anyone's
    (tmp_path / "w" / "space.toml").write_text('name = "s"\n')  # review: with its space.toml
    with files.exclusive(tmp_path / "w" / ".report.lock", "the report"):  # retraining now
        with pytest.raises(MnistlabError, match="a search retraining its best configuration now"):
            doctor_path(tmp_path / "w")
    with pytest.raises(MnistlabError, match=r"a search whose trials are stored in "
                       r"postgresql://me:\*\*\*@db/t \(search.json\), and no run folder yet"):
        doctor_path(tmp_path / "w")
    with pytest.raises(MnistlabError, match="inside the tune folder"):  # no work goes in it
        files.check_not_inside_ours(tmp_path / "w" / "mine")


def test_a_run_without_summary_json_is_named_unfinished(run_copy, capsys):
    """It was "no run folders here", of a folder that is one."""
    (run_copy / "summary.json").unlink()
    with pytest.raises(MnistlabError, match="a run that has not finished \\(no summary.json"):
        doctor_path(run_copy)


def test_runs_that_never_finished_are_named_not_passed_as_well(good_run, tmp_path):
    """A run stopped at epoch 0 was "nothing wrong found" (exit 0); one killed before any
    summary, inside a folder of runs, was not mentioned at all."""
    import dataclasses

    from mnistlab.runs import examine, load_summary

    stopped, killed = tmp_path / "many" / "stopped", tmp_path / "many" / "killed"
    shutil.copytree(good_run, stopped)
    summary = dataclasses.replace(load_summary(stopped), status="interrupted", epochs=1)
    (stopped / "summary.json").write_text(json.dumps(summary.to_dict()))
    shutil.copytree(good_run, killed)
    (killed / "summary.json").unlink()
    (killed / "metrics.csv").unlink()  # written when a run ends: a killed run has none
    torch.save({"format": "checkpoint", "histories": [[{"epoch": 1}]]},  # killed in epoch 2
               killed / "checkpoint.pt")
    cut = tmp_path / "many" / "cut"  # stopped inside its first epoch: it starts over
    shutil.copytree(good_run, cut)
    summary = dataclasses.replace(load_summary(cut), status="interrupted", epochs=0)
    (cut / "summary.json").write_text(json.dumps(summary.to_dict()))
    found = {Path(k).name: [(f.code, f.severity, f.values) for f in v][0]  # the most severe
             for k, v in examine(tmp_path / "many").items()}
    assert found == {"killed": ("unfinished-run", "warning", {"done": 1, "planned": 2}),
                     "stopped": ("unfinished-run", "warning", {"done": 1, "planned": 2}),
                     "cut": ("unfinished-run", "warning",
                             {"done": 0, "planned": 2, "kind": "from-start"})}
    assert Finding("unfinished-run", "warning", {"done": 1, "planned": 2}).text("es")[
        "evidence"] == "1 de 2 épocas entrenadas, luego se detuvo"
    # the fix said it resumed "from the last whole epoch" where none was
    fixes = {name: Finding(*found[name]).text()["fix"] for name in ("killed", "cut")}
    assert "from the last whole epoch" in fixes["killed"]
    assert "starts the run over" in fixes["cut"]
    # training now (a process holds its folder, or its study's): not "stopped", not a warning
    from mnistlab import files

    with files.exclusive(killed / ".lock", "a training run"):
        (finding,) = examine(tmp_path / "many")[str(killed)]
    assert (finding.severity, finding.values["kind"]) == ("info", "training")
    assert finding.text()["title"] == "Run training now"
    assert finding.text("es")["fix"] == "Espera a que termine y vuelve a examinarla."
    (tmp_path / "many" / "study.db").write_bytes(b"")
    with files.exclusive(tmp_path / "many" / "study.lock", "this study"):
        (finding,) = examine(tmp_path / "many")[str(killed)]  # a cohort's, or waiting its turn
    assert (finding.severity, finding.values["kind"]) == ("info", "study-running")
    assert finding.text()["fix"] == "Wait for the study to finish, then examine it again."
    (tmp_path / "many" / "study.db").unlink()
    (killed / "config.toml").write_text((good_run / "config.toml").read_text())
    for name in ("model.pt",):
        (killed / name).unlink(missing_ok=True)
    shutil.copytree(killed, tmp_path / "alone")
    with files.exclusive(tmp_path / "alone" / ".lock", "a training run"):  # given alone
        with pytest.raises(MnistlabError, match="a run training now \\(another process holds "
                           "its folder\\); examine it once it has finished"):
            examine(tmp_path / "alone")
    # an interrupted run (its summary written) resumed now: it was told "run the same command
    # again", which that command's lock then refused
    interrupted = tmp_path / "resumed"
    shutil.copytree(good_run, interrupted)
    with files.exclusive(interrupted / ".lock", "a training run"):
        with pytest.raises(MnistlabError, match="a run training now"):
            examine(interrupted)


@pytest.mark.parametrize("change, message", [
    ("delete", "model.pt: missing (deleted, or never written)"),
    ("truncate", "model.pt: damaged or cut short, torch cannot read it")])
def test_a_run_whose_model_cannot_be_loaded_is_not_well(change, message, run_copy):
    """The doctor used to find nothing wrong with a run whose model.pt was gone or cut short;
    every command that needs the model then failed. Now it says so, and how to mend it."""
    model = run_copy / "model.pt"
    if change == "delete":
        model.unlink()
    else:
        model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(MnistlabError) as info:
        doctor_path(run_copy)
    text = str(info.value)
    assert message in text and "--overwrite" in text and "\n" not in text


def test_a_finding_of_another_version_is_left_to_the_fresh_diagnosis(run_copy):
    summary = _summary(run_copy)
    summary["diagnoses"] = [{"code": "from-a-later-version", "severity": "problem"}]
    (run_copy / "summary.json").write_text(json.dumps(summary))
    assert all(f.code != "from-a-later-version" for f in doctor_path(run_copy)[str(run_copy)])


def test_study_folder_reports_good_runs_and_names_the_damaged_one(good_run, tmp_path, capsys):
    study = tmp_path / ("a-folder-whose-name-is-long-" * 3) / "study"  # its path stays whole
    for name in ("a", "b", "c"):
        shutil.copytree(good_run, study / "runs" / name)
    (study / "runs" / "b" / "metrics.csv").write_text("epoch,train_loss\n1,abc\n")
    report = doctor_path(study)
    assert set(report) == {str(study / "runs" / n) for n in "abc"}
    damaged = report[str(study / "runs" / "b")]
    assert [(f.code, f.severity) for f in damaged] == [("damaged-run", "problem")]
    assert "metrics.csv: damaged (no train_acc_running, train_acc_eval, val_loss, val_acc " \
           "column)" in damaged[0].text()["evidence"]
    assert all(f.code != "damaged-run" for n in "ac" for f in report[str(study / "runs" / n)])
    # the CLI prints every run and exits 1 (a problem was found), in both languages
    assert main(["doctor", str(study), "--lang", "es"]) == 1
    out = capsys.readouterr().out
    assert "Carpeta de ejecución ilegible" in out and str(study / "runs" / "a") in out


@pytest.mark.parametrize("store, damage, fix", [
    ("study.db", "model.pt", "Run the same `mnistlab study` command again: it writes this run's "
     "files again from the study's store (which keeps its numbers for results.csv and the "
     "report), or trains the run again where its model is lost."),
    ("study.db", "config.toml", "Run the same `mnistlab study` command again"),
    ("tune.db", "model.pt", "Run the same `mnistlab tune` command again: it trains this "
     "retrained run again in its place.")])
def test_a_damaged_run_of_a_study_or_search_is_told_what_mends_it(good_run, tmp_path, store,
                                                                   damage, fix):
    """A study's damaged run was told to train again "with --overwrite", which neither the
    study nor the search command has, and train refuses a folder inside them (hunt). A
    search retrains its runs in place; a study mends them from its store, or retrains them
    where the model is lost (test_study.py)."""
    job = tmp_path / "job"
    shutil.copytree(good_run, job / "runs" / "a")
    (job / store).write_bytes(b"")  # what makes the folder the job's
    if damage == "config.toml":  # nothing left to read the settings from
        (job / "runs" / "a" / "config.toml").write_text("lr = [\n")
        (job / "runs" / "a" / "checkpoint.pt").unlink(missing_ok=True)
    (job / "runs" / "a" / "model.pt").unlink()
    (finding,) = doctor_path(job)[str(job / "runs" / "a")]
    said = finding.text()
    assert "--overwrite" not in said["evidence"] + said["fix"]
    assert said["fix"].startswith(fix.format(run=job / "runs" / "a"))


def test_the_doctor_takes_several_folders_at_once(good_run, tmp_path, capsys):
    for name in ("a", "b"):
        shutil.copytree(good_run, tmp_path / name)
    assert main(["doctor", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {str(tmp_path / "a"), str(tmp_path / "b")}


def test_a_folder_that_is_no_run_among_several_leaves_the_others_examined(good_run, tmp_path,
                                                                          capsys):
    """`doctor runs/*` with one empty folder said only that folder's error and examined none
    of the others."""
    shutil.copytree(good_run, tmp_path / "a")
    (tmp_path / "empty").mkdir()
    shutil.copytree(good_run, tmp_path / "b")
    assert main(["doctor", *(str(tmp_path / n) for n in ("a", "empty", "b"))]) == 2
    captured = capsys.readouterr()
    assert str(tmp_path / "a") in captured.out and str(tmp_path / "b") in captured.out
    assert captured.err.strip().splitlines() == [
        f"error: {tmp_path / 'empty'}: no run folders here (looked for summary.json, 4 folders "
        "deep)"]


@pytest.mark.parametrize("written", [
    {"metrics.csv": "epoch,val_loss\n0,0.5\n", "hparams.yaml": "lr: 0.1\n"},  # Lightning
    {"summary.json": '{"accuracy": 0.9}'}, {"summary.json": '{"status": "completed"}'}])
def test_another_tool_s_folder_is_named_as_such_not_as_a_run_to_resume_or_retrain(
        written, good_run, tmp_path, capsys):
    """A Lightning version_0/ was "a run that has not finished ... run the same train command
    again"; another tool's summary.json was "damaged ... train it again with --overwrite"."""
    folder = tmp_path / "theirs"
    folder.mkdir()
    for name, text in written.items():
        (folder / name).write_text(text)
    assert main(["doctor", str(folder)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{folder}: not a run folder mnistlab wrote" in err and "--overwrite" not in err
    shutil.copytree(good_run, tmp_path / "ours")  # beside a run of ours: skipped, not damaged
    assert set(doctor_path(tmp_path)) == {str(tmp_path / "ours")}


def test_a_run_of_ours_that_lost_its_config_and_model_is_still_named_damaged(good_run,
                                                                             tmp_path):
    """Its summary.json and metrics.csv are mnistlab's by their fields: it is not skipped as
    another tool's folder (caught on review)."""
    for name in ("ok", "bad"):
        shutil.copytree(good_run, tmp_path / "runs" / name)
    for name in ("model.pt", "config.toml"):
        (tmp_path / "runs" / "bad" / name).unlink()
    found = doctor_path(tmp_path / "runs")
    assert set(found) == {str(tmp_path / "runs" / n) for n in ("ok", "bad")}
    assert [f.code for f in found[str(tmp_path / "runs" / "bad")]] == ["damaged-run"]
    (tmp_path / "runs" / "bad" / "metrics.csv").unlink()  # its summary.json alone says it too
    assert str(tmp_path / "runs" / "bad") in doctor_path(tmp_path / "runs")
    # our metrics.csv alone: damaged, with the fix train takes (not "resume it": train
    # refuses that folder without --overwrite)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(good_run / "metrics.csv", alone)
    with pytest.raises(MnistlabError, match=r"alone: damaged \(no summary.json nor config.toml"
                                            r".*with --overwrite"):
        doctor_path(alone)


def test_damaged_single_run_on_the_cli_is_exit_2_and_one_line(run_copy, capsys):
    (run_copy / "summary.json").write_text("[]")
    assert main(["doctor", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "summary.json: damaged" in err


# --- model.pt --------------------------------------------------------------------------------
def _payload(run):
    return torch.load(run / "model.pt", weights_only=True)


MODEL_FIELDS = [
    (lambda p: {**p, "config": "mlp"}, "config is not a table of settings"),
    (lambda p: {**p, "config": [1, 2]}, "config is not a table of settings"),
    (lambda p: {**p, "config": {**p["config"], "lr": -1}}, "lr: must be a positive number"),
    (lambda p: {**p, "config": {**p["config"], "hidden": [1_000_000, 1_000]}},
     "not loaded: mlp would have about 1,785,011,010 parameters"),
    (lambda p: {**p, "class_names": "0123456789"}, "class_names is not a list of names"),
    (lambda p: {**p, "class_names": []}, "class_names is not a list of names"),
    (lambda p: {**p, "image_shape": [1, 28]}, "image_shape is not three whole numbers >= 1"),
    (lambda p: {**p, "image_shape": [1, 28, "28"]}, "image_shape is not three whole numbers"),
    (lambda p: {**p, "image_shape": [1, 10**6, 10**6]}, "mlp would have about"),
    (lambda p: {**p, "state_dict": [1, 2]}, "state_dict is not a table of tensors"),
    (lambda p: {**p, "state_dict": {"0.weight": 1.0}}, "state_dict is not a table of tensors"),
    (lambda p: {**p, "state_dict": {}}, "Missing key(s) in state_dict"),
    (lambda p: {**p, "mean": "x"}, "mean and std are not numbers"),
    (lambda p: {k: v for k, v in p.items() if k != "image_shape"}, "image_shape is not three"),
]


@pytest.mark.parametrize("change,message", MODEL_FIELDS, ids=[m[:40] for _, m in MODEL_FIELDS])
def test_model_file_with_wrong_fields_is_one_line(change, message, run_copy):
    torch.save(change(_payload(run_copy)), run_copy / "model.pt")
    with pytest.raises(MnistlabError) as info:
        load_model(run_copy)
    text = str(info.value)
    assert text.startswith(f"{run_copy / 'model.pt'}: ") and message in text
    assert "\n" not in text


def test_good_model_still_loads(run_copy):
    model, payload = load_model(run_copy)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert payload["class_names"] == [f"c{i}" for i in range(10)]


def test_the_doctor_looks_four_folders_deep_and_never_at_the_whole_disk(run_copy, tmp_path):
    """`mnistlab doctor /` walked the whole filesystem and reported on strangers' runs."""
    from mnistlab.runs import run_folders

    deep = tmp_path / "a" / "b" / "c"
    shutil.copytree(run_copy, deep / "run")  # 4 folders below tmp_path: found
    shutil.copytree(run_copy, deep / "d" / "run")  # 5: not looked at
    shutil.copytree(run_copy, tmp_path / ".hidden" / "run")
    assert deep / "run" in run_folders(tmp_path)
    assert deep / "d" / "run" not in run_folders(tmp_path)
    assert not any(".hidden" in str(p) for p in run_folders(tmp_path))
    for whole in ("/", str(Path.home())):
        with pytest.raises(MnistlabError, match="the whole disk or home folder"):
            doctor_path(whole)
