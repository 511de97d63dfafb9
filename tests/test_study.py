"""Studies end to end on a small real-data study: plan, dedupe, prefixes, stats, report, resume."""

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_python
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from spanish import english_in
from tiny_study import write_tiny_study

import mnistlab
from mnistlab import StudyOptions, run_study
from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.messages import number
from mnistlab.progress import StudyProgress
from mnistlab.report.document import to_markdown
from mnistlab.report.study import build_document
from mnistlab.study import list_presets, load_study, parse_study
from mnistlab.study.backends import LocalBackend
from mnistlab.study.plan import plan_experiments, plan_final
from mnistlab.study.run import train_study
from mnistlab.study.stats import welch
from mnistlab.study.store import Store


@pytest.fixture()
def tiny_study(tmp_path, shared_datasets):
    return write_tiny_study(tmp_path / "tiny.toml", shared_datasets)


EPOCHS_EXPERIMENT = """[[experiment]]
name = "epochs"
factor = "epochs"
values = [1, 3]"""


def _without_original(tiny_study: Path) -> str:
    """The tiny study's text without the original figures of its lr 0.05 (for a test that
    drops that value: figures under a label no variant has are refused)."""
    text = tiny_study.read_text()
    line = 'original = { "0.05" = { train = 70.0, val = 71.0 } }\n'
    assert line in text
    return text.replace(line, "")


def _epochs_replaced_by(tiny_study: Path, experiments: str) -> str:
    """The tiny study's text with its epochs experiment replaced by `experiments`."""
    return tiny_study.read_text().replace(EPOCHS_EXPERIMENT, experiments)


def test_plan_dedupes_the_base_and_shares_prefixes(tiny_study):
    plan = plan_experiments(load_study(str(tiny_study)))
    # per seed: lr 0.01, lr 0.05 (= base = epochs 3), epochs 1 (prefix of base) -> 3 distinct
    assert len(plan.runs) == 6
    assert len(plan.cells) == 8
    assert len(plan.snapshots) == 2 and all(r.snapshot_epoch == 1 for r in plan.snapshots)
    assert sum(c.is_base for c in plan.cells) == 4


def test_cosine_schedule_is_not_a_prefix(tiny_study):
    text = tiny_study.read_text().replace('schedule = "constant"', 'schedule = "cosine"')
    tiny_study.write_text(text)
    plan = plan_experiments(load_study(str(tiny_study)))
    assert plan.snapshots == []


def test_a_run_scored_with_test_time_augmentation_is_not_read_as_a_prefix(tiny_study):
    """Its summary is scored over the augmented views, its history without them: the shorter
    rows mixed the two kinds of figure, ones no run of those settings gives."""
    text = tiny_study.read_text().replace('schedule = "constant"',
                                          'schedule = "constant"\ntta = true\n'
                                          'augment = "shift=0.1"')
    tiny_study.write_text(text)
    plan = plan_experiments(load_study(str(tiny_study)))
    assert plan.snapshots == []


def test_study_results_report_and_final(tiny_study, tmp_path):
    result = run_study(load_study(str(tiny_study)), tmp_path / "S",
                       options=StudyOptions(lang="es"))
    spanish = (tmp_path / "S" / "report.md").read_text()
    assert english_in(spanish) == [] and "## Conclusiones" in spanish
    # values read with the decimal comma, settings apart with semicolons
    assert "| 0,01 |" in spanish and "| 0.01 |" not in spanish
    assert "tasa de aprendizaje 0,05; " in spanish and "lr=0" not in spanish  # names too
    # factors by their names, the key beside them (they were `lr` and `epochs` alone)
    assert "Factor tasa de aprendizaje (`lr`), valores variados" in spanish
    assert "Factor `" not in spanish and "\n- `" not in spanish.split("## Conclusiones")[0]
    rows = list(csv.DictReader((tmp_path / "S" / "results.csv").open()))
    assert len(rows) == 8  # 6 distinct experiment runs + 2 final seeds
    base_rows = [r for r in rows if r["experiment"] == "base"]
    assert len(base_rows) == 2 and [r for r in rows if r["base"] == "true"] == base_rows
    final_rows = [r for r in rows if r["experiment"] == "final"]
    assert all(r["test_acc"] for r in final_rows)
    assert not any(r["test_acc"] for r in rows if r["experiment"] != "final")
    snap = [r for r in rows if r["experiment"] == "epochs" and r["value"] == "1"]
    assert len(snap) == 2 and all(r["epochs"] == "1" for r in snap)
    # every row names a run folder that is there: a prefix row names the run it was read off
    assert all((tmp_path / "S" / "runs" / r["run"] / "summary.json").is_file() for r in rows)
    for r in rows:
        gap = float(r["train_acc_eval"]) - float(r["val_acc"])
        assert float(r["gap"]) == pytest.approx(gap, abs=1e-5)
    # the final config combines the best value of each experiment, with epochs overridden,
    # and the report says so (it named only the best values: epochs 2 was never tried)
    assert result.final_config.epochs == 2
    assert ("y después los ajustes de [final] del archivo del estudio, que prevalecen sobre "
            "ellos: épocas 2.") in spanish
    report = (tmp_path / "S" / "report.md").read_text()
    for heading in ("## Método", "## Resumen", "## Modelo final", "## Conclusiones",
                    "exact. validación", "Δ frente a la base (IC 95%)"):
        assert heading in report
    assert "Method" not in report and "Summary" not in report
    # the original's column where the study gives its figures (lr 0.05), none where it does not
    lr, epochs = (report.split(f"## Experimento: {name}")[1].split("\n## ")[0]
                  for name in ("learning-rate", "epochs"))
    assert "original (entren. / valid.)" in lr and "original" not in epochs
    html = (tmp_path / "S" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    for name in ("learning-rate-points.png", "final-confusion.png", "final-misclassified.png",
                 "final-per-class.png", "final-curves.png"):
        assert (tmp_path / "S" / "plots" / name).is_file(), name
    # a value that ties with the base is not named best over it ("epochs | 2 | +0.00")
    from mnistlab.report.study import _summary_line
    from mnistlab.study.run import base_rows

    epochs = next(e for e in result.spec.experiments if e.name == "epochs")
    base = [r for r in base_rows(result.rows) if r.experiment == "epochs"]
    tied = welch([r.val_accuracy for r in base], [r.val_accuracy for r in base])
    for items in ([("1", tied, base), ("3", None, base)], [("3", None, base), ("1", tied, base)]):
        row, *_ = _summary_line(result, epochs, items, base_rows(result.rows), "en")
        assert row[1] == "3", row
    # the per-epoch curves mark the base value, as the table and the point chart do
    from unittest import mock

    from mnistlab import figures as drawn

    keys = []
    real = drawn.experiment_curves
    with mock.patch.object(drawn, "experiment_curves",
                           lambda curves, *a, **k: keys.append(list(curves)) or real(curves, *a,
                                                                                      **k)):
        build_document(result)
    assert ["0.01", "0.05 (base)"] in keys, keys
    # the runs read off longer ones and those trained, counted as the command counts them
    # (the report said "6 distinct runs", the command "8 runs", the bar "6/6")
    english = to_markdown(build_document(result))
    assert ("(6 distinct runs for 8 table cells). With a constant learning rate, a "
            "shorter run is read off a longer run's history (2 runs read this way), so 4 runs are "
            "trained for these tables, the final model's apart.") in english, english
    assert ("(2 ejecuciones leídas así), así que 4 ejecuciones se entrenan para estas tablas, "
            "sin contar el modelo final.") in report
    # the test set's size as the final runs scored it, else not said: a folder's was
    # "the test set (0 images)" beside a test accuracy measured on 700
    assert "y el conjunto de prueba (10.000 imágenes)" in report
    seventy_each = [[70 * (i == j) for j in range(10)] for i in range(10)]
    for key, summary in list(result.summaries.items()):
        result.summaries[key] = dataclasses.replace(summary, dataset="/data/digits",
                                                    test_confusion=seventy_each)
    assert "and the test set (700 images), which" in to_markdown(build_document(result))
    for key, summary in list(result.summaries.items()):
        result.summaries[key] = dataclasses.replace(summary, test_confusion=None)
    assert "and the test set, which only" in to_markdown(build_document(result))


def test_single_seed_says_there_is_no_noise_estimate(tiny_study, tmp_path):
    spec = load_study(str(tiny_study))
    import dataclasses

    spec = dataclasses.replace(spec, seeds=1)
    run_study(spec, tmp_path / "S1")
    report = (tmp_path / "S1" / "report.md").read_text()
    assert "no noise estimate" in report
    assert "Validation accuracy per value (one run each: no noise estimate)" in report  # figures
    # a recommendation needs an interval: with one seed the report says so, and how to get one
    recommended = report.split("### Recommended configuration")[1].split("\n## ")[0]
    assert "No recommendation can be made from 1 seed" in recommended
    assert "`--seeds 3`" in recommended and "points over the base" not in recommended


def _rows_without_seconds(path: Path) -> list[dict]:
    rows = list(csv.DictReader(path.open()))
    return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in rows),
                  key=lambda r: (r["run"], r["experiment"]))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigkill_then_resume_gives_the_same_results(tiny_study, study_reference, tmp_path,
                                                    workers):
    """SIGKILL to the study and its workers (the whole process group) mid-run, then resume."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mnistlab", "study", str(tiny_study), "--quiet",
           "--workers", workers]
    reference = study_reference(workers).parent
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once some epoch checkpoint exists
        if list(killed.glob("*/*/checkpoint.pt")) and (killed / "study.db").exists():
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.csv").exists()
    for path in killed.rglob("*.json"):  # whatever was written is whole (write-then-rename)
        json.loads(path.read_text())
    for path in killed.rglob("*.pt"):
        torch.load(path, weights_only=True)
    subprocess.run(cmd + ["--out", str(killed)], check=True, env=env, capture_output=True)
    assert not list(killed.rglob("*.tmp"))  # temporaries of the killed writes are cleaned up
    assert _rows_without_seconds(killed / "results.csv") == _rows_without_seconds(
        reference / "results.csv")
    # and a third run on the finished folder trains nothing
    started = time.time()
    subprocess.run(cmd + ["--out", str(killed)], check=True, env=env, capture_output=True)
    assert _rows_without_seconds(killed / "results.csv") == _rows_without_seconds(
        reference / "results.csv")
    assert time.time() - started < 60


def test_a_second_study_on_the_same_folder_is_refused(tiny_study, tmp_path):
    from mnistlab import files

    with files.exclusive(tmp_path / "s" / "study.lock", "this study"):
        result = subprocess.run([sys.executable, "-m", "mnistlab", "study", str(tiny_study),
                                 "--quiet", "--out", str(tmp_path / "s")],
                                capture_output=True, text=True)
    assert result.returncode == 2
    assert "another process is running this study" in result.stderr
    assert "Traceback" not in result.stderr


def test_presets_parse_and_quick_forms_are_smaller():
    assert {"fashion-hparams", "lenet-challenge"} <= set(list_presets())
    fashion = load_study("fashion-hparams")
    assert fashion.base.optimizer == "sgd" and fashion.base.lr == 0.001
    assert fashion.base.batch_size == 100 and fashion.base.hidden == (128, 64)
    assert [len(e.variants) for e in fashion.experiments] == [3, 2, 4, 4, 5, 5]
    assert fashion.final.settings["batch_size"] == 32 and fashion.final.original["val"] == 87.99
    quick = fashion.with_quick()
    assert quick.base.train_subset == 10000
    assert fashion.text("title", "es").startswith("Fashion-MNIST con MLP")
    assert [e.text("title", "es") for e in fashion.experiments][:2] == [
        "tasa de aprendizaje", "optimizador"]
    assert fashion.experiments[0].text("title", "en") == "learning rate"
    assert quick.text("title", "es") == fashion.text("title", "es")
    assert [e.text("title", "es") for e in quick.experiments] == [
        e.text("title", "es") for e in fashion.experiments]  # translations kept
    lenet = load_study("lenet-challenge").with_quick()
    assert max(v.changes.get("epochs", 0) for e in lenet.experiments for v in e.variants) <= 3


EXP = "[base]\n[[experiment]]\nname = 'x'\n"
TEN = "[" + ", ".join(str(i) for i in range(10)) + "]"


@pytest.mark.parametrize("text,message", [
    ("seeds = 0\n[base]\n", "seeds must be a whole number from 1 to 1,000, got 0"),
    ("seeds = 1000000000\n[base]\n", "seeds must be a whole number from 1 to 1,000"),
    ("seeds = 2.5\n[base]\n", "seeds must be a whole number, got 2.5"),
    ("seeds = 5\n[base]\nseed = 4611686018427387900\n", "past the largest seed (2**62 - 1)"),
    # a value or a label with a line break stays one line (found by the property test)
    (EXP + "factor = 'lr'\nvalues = [\"\\n\"]\n", "study [[experiment]] #1 (x): '\\n': lr: "),
    (EXP + "variants = [{label = \"a\\nb\"}]\n", "label 'a\\nb' holds a line break"),
    # an ensemble of N takes N seeds per replicate, here in a variant: 2 × 3 from 2**62 - 5
    ("seeds = 2\n[base]\nseed = 4611686018427387899\n[[experiment]]\nname = 'x'\n"
     "variants = [{label = 'e', ensemble = 3}]\n",
     "to 4,611,686,018,427,387,904 (3 networks per ensemble), past the"),
    ("[base]\nseed = 4611686018427387904\n", "seed: must be below 2**62"),
    # plan size: counted from the list sizes, before any grid cell is made
    ("seeds = 100\n" + EXP + "factor = 'lr'\nvalues = " + "[" + ", ".join(
        f"0.{i + 1}" for i in range(101)) + "]\n", "100 seeds × 101 settings would plan 10,100"),
    (EXP + "grid = { " + ", ".join(f"f{i} = {TEN}" for i in range(12)) + " }\n",
     "3 seeds × 1,000,000,000,000 settings would plan 3,000,000,000,000 runs, above the limit"),
    # shapes of tables and values
    ("experiment = 'x'\n[base]\n", "experiment must be an array of tables"),
    ("experiment = [1]\n[base]\n", "experiment must be an array of tables"),
    ("final = 'best'\n[base]\n", "final must be a table"),
    ("base = 5\n", "base must be a table"),
    ("quick = [1]\n[base]\n", "quick must be a table"),
    (EXP + "factor = 'lr'\nvalues = 0.1\n", "values must be a non-empty list"),
    (EXP + "factor = 'lr'\nvalues = []\n", "values must be a non-empty list"),
    (EXP + "grid = [1, 2]\n", "grid must be a table"),
    (EXP + "grid = {}\n", "grid is empty"),
    (EXP + "grid = { lr = 0.1 }\n", "grid: lr must be a non-empty list"),
    (EXP + "variants = [1, 2]\n", "variants must be an array of tables"),
    (EXP + "variants = { lr = 0.1 }\n", "variants must be an array of tables"),
    (EXP + "factor = 5\nvalues = [1]\n", "factor must be text"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\noriginal = 5\n", "original must be a table"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\noriginal = { '0.1' = 5 }\n",
     "original: 0.1 must be a table of numbers"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\noriginal = { '0.1' = { val = 'high' } }\n",
     "original: 0.1 must be a table of numbers"),
    (EXP + "variants = [{ label = 'a', original = 5 }]\n",
     "variant 1: original must be a table of numbers"),
    (EXP + "variants = [{ label = 3 }]\n", "variant 1: label must be text"),
    (EXP + "variants = [{ label = 'a' }]\noriginal = { a = { val = 1 } }\n",
     "original goes inside each variant"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\ntest = 'yes'\n", "test must be true or false"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\ntitle = 1\n", "title must be text"),
    (EXP + "factor = 'lr'\nvalues = [0.1]\nfactr = 'lr'\n", "unknown key(s) factr"),
    ("[base]\n[[experiment]]\nname = 3\nfactor = 'lr'\nvalues = [1]\n", "name must be text"),
    ("[base]\n[[experiment]]\nname = '../up'\nfactor = 'lr'\nvalues = [1]\n",
     "a slash would make it a path"),
    ("[base]\n[quick]\nmax_epochs = 'x'\n", "[quick]: max_epochs must be a whole number"),
    ("[base]\n[quick]\nmax_epochs = 2.5\n", "[quick]: max_epochs must be a whole number"),
    ("[base]\n[quick]\nmax_epochs = 0\n", "[quick]: max_epochs must be a whole number >= 1"),
    ("[base]\n[final]\nchoose = 'best'\nsettings = 3\n", "[final]: settings must be a table"),
    ("[base]\n[final]\nchoose = 3\n", "[final]: choose must be text"),
    ("[base]\n[final]\nchoose = 'best'\nbest = 1\n", "[final]: unknown key(s) best"),
    ("[base]\n[final]\noriginal = { val = 'x' }\n", "[final]: original must be a table of"),
    ("original_base = 3\n[base]\n", "original_base must be a table of numbers"),
    ("name = 3\n[base]\n", "name must be text"),
    ("title = 3\n[base]\n", "title must be text"),
    ("description = [1]\n[base]\n", "description must be text"),
    ("original_source = 1\n[base]\n", "original_source must be text"),
    # the name is the default folder (studies/<name>)
    ("name = 'a b'\n[base]\n", "(it holds spaces)"),
    ("name = 'a/b'\n[base]\n", "(a slash would make it a path)"),
    ("name = '.'\n[base]\n", "(it starts with a dot"),
    ("name = '..'\n[base]\n", "(it starts with a dot"),
    ("name = '.hidden'\n[base]\n", "(it starts with a dot"),
    ("name = \"nul\\u0000\"\n[base]\n", "(it holds control characters)"),
    ("name = ''\n[base]\n", "(it is empty)"),
    # sizes: every configuration the file would make, on nominal 28x28 images
    ("[base]\nmodel = 'mlp'\nhidden = [10000000]\n",
     "[base]: mlp would have about 7,950,000,010 parameters"),
    ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'x'\nfactor = 'hidden'\n"
     "values = [[64], [1000000, 1000]]\n", "1000000-1000: mlp would have about"),
    ("[base]\nmodel = 'cnn'\n[[experiment]]\nname = 'x'\n"
     "grid = { filters = [[8], [4096, 4096, 4096]], dense = [[16]] }\n",
     "filters=4096-4096-4096, dense=16: cnn would have about"),
    ("[base]\nmodel = 'mlp'\n[final]\nchoose = 'explicit'\nsettings = { hidden = [200000000] }\n",
     "[final]: mlp would have about"),
    ("[base]\nmodel = 'mlp'\n[quick]\nhidden = [200000000]\n", "[quick]: mlp would have about"),
    ("[base]\nmodel = 'cnn'\nbatch_size = 1000000000\n",
     "training cnn needs about"),
    ("[base]\nlr = -1\n", "lr: must be a positive number"),
    ("[base]\n[[experiment]]\nname = 'x'\nvalues = [1]\n", "values need a factor"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'dropout'\nvalues = [1.5]\n",
     "dropout: must be in [0, 1)"),
    ("[base]\n[[experiment]]\nfactor = 'lr'\nvalues = [1]\n", "needs a name"),
    ("colour = 1\n[base]\n", "unknown key(s) colour"),
    ("[base]\n[final]\nchoose = 'magic'\n", "choose must be explicit, best or none"),
    ("es = { colour = 'rojo' }\n[base]\n", "[es] may only give text for description, title"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [1]\nes = { title = 3 }\n",
     "[es] may only give text for note, title"),
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = [{ label = 'a', es = { title = 'b' } }]\n",
     "variant 1: [es] may only give text for label"),
    # rows and the final choice are found by label: each once; the seed is the study's
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = []\n", "(x): variants is empty"),
    ("", "nothing to train; add an [[experiment]]"),
    ("[base]\n[final]\nchoose = 'none'\n", "nothing to train"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'colour'\nvalues = [1, 2]\n",
     "(x): factor: no setting is named 'colour'"),
    ("[base]\n[[experiment]]\nname = 'x'\ngrid = { lrr = [0.1], epochs = [1, 2] }\n",
     "(x): grid: no setting is named 'lrr' (did you mean lr?)"),
    ("[base]\n[[experiment]]\nname = 'x'\ngrid = { batch-size = [32], batch_size = [64] }\n",
     "grid: batch-size and batch_size are one setting, given twice; keep one"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1, 0.2]\n[final]\n"
     "choose = 'none'\nsettings = { epochs = 3 }\n", "[final]: settings are for a final model, "
     "and choose = \"none\" trains none"),
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = [{ label = 'b', lr = 0.1 }, "
     "{ label = 'b', lr = 0.001 }]\n", "'b' is listed twice; give each variant its own label"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.01, 0.01]\n",
     "'0.01' is listed twice; give each value once"),
    # one value in two forms: it was told "both labelled '32'... give values that differ"
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'hidden'\nvalues = [[32], 32, [16]]\n",
     "'32' is listed twice; give each value once"),
    # both spellings of one setting: the later was taken without a word (hunt)
    ("[base]\nbatch-size = 32\nbatch_size = 64\n[[experiment]]\nname = 'x'\nfactor = 'lr'\n"
     "values = [0.1]\n", "[base]: batch-size and batch_size are one setting, given twice"),
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = [{ label = 'a', batch-size = 32, "
     "batch_size = 64 }]\n", "variant 1: batch-size and batch_size are one setting, given "
     "twice"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n[final]\n"
     "settings = { batch-size = 32, batch_size = 64 }\n",
     "[final]: batch-size and batch_size are one setting, given twice"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'momentum'\nvalues = [0.0, -0.0]\n",
     "'0' is listed twice; give each value once"),
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = [{ label = ' ', lr = 0.1 }]\n",
     "variant 1: label is empty; give the variant a label"),
    ("[base]\n[[experiment]]\nname = 'o'\nfactor = 'hidden'\nvalues = [[], [16]]\n",
     "(o): '': hidden: [] must list one or more"),
    # it said they were two values 6 significant digits could not tell apart
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1, '0.1']\n",
     "lr=0.1 and lr='0.1': one is text in quotes; write numbers without quotes"),
    # a study's key below [base] was told "(did you mean seed?)"
    ("[base]\nseeds = 5\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n",
     "[base]: seeds is the study's, not a setting: write it above the first [table]"),
    ("[base]\n[quick]\nseeds = 1\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n",
     "[quick]: seeds is the study's, not a setting: write it above the first [table] (TOML "
     "puts every key after [quick] in that table)"),
    ("[base]\n[quick]\nmax-epochs = 0\n[[experiment]]\nname = 'x'\nfactor = 'lr'\n"
     "values = [0.1]\n", "[quick]: max_epochs must be a whole number >= 1, got 0"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'seed'\nvalues = [1, 2]\n",
     "seed cannot vary in an experiment"),
    ("[base]\n[[experiment]]\nname = 'x'\nvariants = [{ label = 'five', seed = 5 }]\n",
     "seed cannot vary in an experiment"),
    ("[base]\n[final]\nsettings = { seed = 5 }\n", "seed cannot be set for the final model"),
    # runs are compared by validation accuracy: without validation images, tables of NaN
    ("[base]\nval_size = 0\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n",
     "[base]: val_size must be > 0: a study compares its runs by their validation accuracy"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'val_size'\nvalues = [1000, 0]\n",
     "(x): 0: val_size must be > 0"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n[quick]\n"
     "val_size = 0\n", "[quick]: val_size must be > 0"),
    # a run's config.toml given to study: "unknown key(s)" and some 36 names
    ("model = 'mlp'\nlr = 0.1\nbatch-size = 32\n", "study: one run's settings, not a study; "
     "train them with `mnistlab train --config study`, or put them under [base]"),
    # published figures under a label no variant has, or a key no table shows: dropped, silent
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.01, 0.1]\n"
     "original = { '0.10' = { val = 88.0 } }\n", "original: no variant is labelled '0.10'; "
     "the labels are '0.01', '0.1'"),
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.01, 0.1]\n"
     "original = { '0.01' = { vall = 80.0 } }\n", "original '0.01': unknown key(s) vall; the "
     "figures shown are train and val (percent)"),
    ("[base]\n[[experiment]]\nname = 'x'\ngrid = { lr = [0.1], epochs = [1, 2] }\n"
     "original = { 'lr=0.1, epochs=3' = { val = 88.0 } }\n", "no variant is labelled "
     "'lr=0.1, epochs=3'; the labels are 'lr=0.1, epochs=1', 'lr=0.1, epochs=2'"),
    # distinct values that read alike: "'0.123457' is listed twice" of values given once
    ("[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1234567, 0.1234568]\n",
     "(x): lr=0.1234567 and lr=0.1234568 are both labelled '0.123457' (6 significant digits "
     "name a value's rows); give values that differ within them"),
    # labels that differ only in spaces read alike in every table
    (EXP + "variants = [{ label = 'a', lr = 0.1 }, { label = 'a ', lr = 0.2 }]\n",
     "(x): 'a' and 'a ' differ only in spaces, so tables and figures would show them alike; "
     "give each variant a label of its own"),
    # the same settings twice: two rows of one run, a made-up interval between them (hunt)
    ("[base]\nmodel = 'mlp'\nhidden = [32, 16]\n[[experiment]]\nname = 'x'\n"
     "factor = 'hidden'\nvalues = ['32,16', [32, 16], [16, 8]]\n",
     "(x): '32,16' and '32-16' are the same settings (one network, trained once); give each "
     "once"),
    (EXP + "variants = [{ label = 'plain' }, { label = 'again', lr = 0.001 }]\n",
     "(x): 'plain' and 'again' are the same settings"),
    # a device the base has is no difference: the plan trains the two as one run (review)
    ("[base]\ndevice = 'cpu'\n[[experiment]]\nname = 'x'\nvariants = [{ label = 'cpu' }, "
     "{ label = 'auto', device = 'auto' }]\n", "(x): 'cpu' and 'auto' are the same settings"),
    # a variant's original figures are those its table shows: vall, or val under test = true
    # (left out of the trials' table while the conclusions compared it), were kept (hunt)
    (EXP + "variants = [{ label = 'a', lr = 0.1, original = { val = 88.0, vall = 3 } }]\n",
     "(x) original 'a': unknown key(s) vall; the figures shown are train and val (percent)"),
    (EXP + "test = true\nvariants = [{ label = 'a', original = { val = 88.0 } }]\n",
     "(x) original 'a': unknown key(s) val; a test experiment's table shows acc and loss "
     "together, as fractions; train and val are for experiments without test = true"),
    (EXP + "test = true\nvariants = [{ label = 'a', original = { acc = 0.9 } }]\n",
     "(x) original 'a': acc alone; a test experiment's table shows acc and loss together"),
    (EXP + "variants = [{ label = 'a', original = { acc = 0.9, loss = 0.33 } }]\n",
     "(x) original 'a': unknown key(s) acc, loss; the figures shown are train and val "
     "(percent); acc and loss are for experiments with test = true"),
    ("[base]\n[[experiment]]\nname = 'x'\ntest = true\nfactor = 'lr'\nvalues = [0.1, 0.2]\n"
     "original = { '0.1' = { train = 90.0 } }\n", "(x) original '0.1': unknown key(s) train; "
     "a test experiment's table shows acc and loss"),
    # settings that differ in the file but not in the network trained (last stop's gaps)
    ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'x'\n"
     "grid = { model = ['mlp', 'cnn'], filters = ['8,16', '16,32'] }\n",
     "(x): 'model=mlp, filters=8,16' and 'model=mlp, filters=16,32' train the same network "
     "(filters: model mlp; only cnn and resnet read it); list the cells that differ as variants "
     "instead of a "
     "grid"),
    ("[base]\nmodel = 'lenet5'\nvariant = 'modern'\n[[experiment]]\nname = 'x'\n"
     "factor = 'activation'\nvalues = ['', 'relu', 'tanh']\n",
     "(x): '' and 'relu' train the same network (activation \"\" is lenet5's own, relu); give "
     "each once"),
    ("[base]\nmodel = 'lenet5'\nvariant = 'classic'\n[[experiment]]\nname = 'x'\n"
     "factor = 'activation'\nvalues = ['tanh', '', 'relu']\n",
     "(x): 'tanh' and '' train the same network (activation \"\" is lenet5's own, tanh)"),
    ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'x'\nfactor = 'augment'\n"
     "values = ['rotate=10', 'rotate=10.0,shift=0']\n", "(x): 'rotate=10' and "
     "'rotate=10.0,shift=0' train the same network (augment gives the same augmentation, "
     "written two ways)"),
    (EXP + "variants = [{ label = 'a', optimizer = 'adam', momentum = 0.5 }, "
     "{ label = 'b', optimizer = 'adam', momentum = 0.9 }, "
     "{ label = 'c', optimizer = 'sgd', momentum = 0.9 }]\n",
     "(x): 'a' and 'b' train the same network (momentum: optimizer adam; only sgd reads it)"),
    # label smoothing beside the binary loss, val_size where validation is the test set
    # (review): one network each, and in a grid the bce cells
    ("[base]\nloss = 'bce'\nmetric = 'binary-accuracy'\n[[experiment]]\nname = 'x'\n"
     "factor = 'label_smoothing'\nvalues = [0.0, 0.1]\n", "(x): label_smoothing does nothing "
     "here (loss bce; only ce and ce-on-softmax smooth labels): every value would train the "
     "same network; leave it out, or give it where loss = \"ce\""),
    ("[base]\nval_from = 'test'\n[[experiment]]\nname = 'x'\nfactor = 'val_size'\n"
     "values = [5000, 10000]\n", "(x): val_size does nothing here (val_from test validates on "
     "the test set)"),
    ("[base]\n[[experiment]]\nname = 'x'\ngrid = { loss = ['ce', 'bce'], "
     "label_smoothing = [0.0, 0.1] }\n", "(x): 'loss=bce, label_smoothing=0' and 'loss=bce, "
     "label_smoothing=0.1' train the same network (label_smoothing: loss bce; only ce and "
     "ce-on-softmax smooth labels)"),
    # a setting no run of the experiment reads: identical networks, read as "no effect" (hunt)
    ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'x'\nfactor = 'filters'\n"
     "values = [[8, 16], [16, 32]]\n", "(x): filters does nothing here (model mlp; only "),
    ("[base]\nmodel = 'mlp'\noptimizer = 'adam'\n[[experiment]]\nname = 'x'\n"
     "factor = 'momentum'\nvalues = [0.5, 0.9]\n", "(x): momentum does nothing here "
     "(optimizer adam; only sgd reads it): every value would train the same network; leave "
     "it out, or give it where optimizer = \"sgd\""),
    ("[base]\nmodel = 'mlp'\noptimizer = 'sgd'\nschedule = 'onecycle'\n[[experiment]]\n"
     "name = 'x'\nfactor = 'momentum'\nvalues = [0.5, 0.9]\n", "(x): momentum does nothing "
     "here (schedule onecycle cycles SGD's momentum from 0.95 to 0.85 and back itself)"),
    # [quick]'s own key: max_epoch was "did you mean epochs?", which changes the study (hunt)
    ("[base]\n[quick]\nmax_epoch = 3\n", "[quick]: unknown setting 'max_epoch' (did you mean "
     "max_epochs?)"),
])
def test_bad_study_files(text, message):
    from mnistlab.config import tomllib

    with pytest.raises(MnistlabError) as info:
        parse_study(tomllib.loads(text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_problem_in_each_of_several_experiments_is_said_at_once():
    """A student's file with a mistake in three experiments was told one per run of the
    command (last stop's leftover); one problem is said as before."""
    from mnistlab.config import tomllib

    text = ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'a'\nfactor = 'lr'\n"
            "values = [0.1, '0.1']\n[[experiment]]\nname = 'b'\nfactor = 'filters'\n"
            "values = [[8], [16]]\n[[experiment]]\nname = 'c'\nfactor = 'dropout'\n"
            "values = [0.1, 0.2]\n[[experiment]]\nname = 'c'\nfactor = 'dropout'\n"
            "values = [0.3]\n")
    with pytest.raises(MnistlabError) as info:
        parse_study(tomllib.loads(text), where="s.toml")
    assert str(info.value) == (
        "s.toml: 3 problems: (1) [[experiment]] #1 (a): lr=0.1 and lr='0.1': one is text in "
        "quotes; write numbers without quotes | (2) [[experiment]] #2 (b): filters does nothing "
        "here (model mlp; only cnn and resnet read it): every value would train the same "
        "network; leave it out, or give it beside a model that reads it | (3) [[experiment]] "
        "#4: the name 'c' is #3's too; give each experiment a name of its own")
    # a name given three times, the first with a problem of its own, is said twice (review)
    thrice = text.replace("name = 'b'", "name = 'a'").replace("name = 'c'", "name = 'a'")
    with pytest.raises(MnistlabError) as info:
        parse_study(tomllib.loads(thrice), where="s.toml")
    assert str(info.value).count("the name 'a' is #1's too") == 3
    with pytest.raises(MnistlabError) as info:  # one problem: its line as it was
        parse_study(tomllib.loads(text.split("[[experiment]]\nname = 'b'")[0]), where="s.toml")
    assert str(info.value) == ("s.toml [[experiment]] #1 (a): lr=0.1 and lr='0.1': one is text "
                               "in quotes; write numbers without quotes")


def test_a_study_file_s_own_texts_without_a_translation_are_said():
    """A Spanish report of a study file without `es` texts mixed English in without a word;
    values' and grid cells' labels are put into words by the report, and not named."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(
        "title = 'My study'\n[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'v'\n"
        "title = 'Variants'\nvariants = [{ label = 'a', lr = 0.1 }, { label = 'b', lr = 0.2, "
        "es = { label = 'be' } }]\n[[experiment]]\nname = 'lr'\nfactor = 'lr'\n"
        "values = [0.1, 0.3]\n"))
    assert spec.untranslated("es") == ["its title", "the title of experiment 'v'",
                                       "the variant label 'a' of experiment 'v'"]
    with pytest.warns(UserWarning, match=r"^--lang es: the study file gives no es text for its "
                                         r"title, the title of experiment 'v', the variant "
                                         r"label 'a' of experiment 'v'; the report shows them"):
        StudyOptions(lang="es").apply(spec)
    assert load_study("fashion-hparams").untranslated("es") == []
    assert load_study("lenet-challenge").untranslated("es") == []


def test_no_augmentation_is_named_not_left_blank():
    """Hunt: augment "" (train's default) was an empty row label, point-chart tick and summary
    cell; activation "" is the model's own."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(
        "[base]\nmodel = 'cnn'\n[[experiment]]\nname = 'a'\nfactor = 'augment'\n"
        "values = ['', 'shift=0.1']\n[[experiment]]\nname = 'f'\nfactor = 'activation'\n"
        "values = ['', 'gelu']\n"))
    shown = [[(v.label, v.text("label", "en"), v.text("label", "es")) for v in e.variants]
             for e in spec.experiments]
    assert shown == [[("", "none", "ninguno"), ("shift=0.1", "shift=0.1", "shift=0.1")],
                     [("", "the model's own", "la propia del modelo"),
                      ("gelu", "gelu", "gelu")]]


def test_a_quick_setting_an_experiment_varies_is_refused():
    """Hunt: [quick] train_subset = 2000 beside a train_subset factor left each variant at its
    own 20,000 and 50,000 images, and the quick base's value in no run."""
    from mnistlab.config import tomllib

    study = ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'size'\nfactor = 'train_subset'\n"
             "values = [20000, 50000]\n[quick]\n{quick}\n")
    with pytest.raises(MnistlabError, match=r"^study \[quick\]: train_subset is what experiment "
                                            r"'size' varies, so --quick would train its values as "
                                            r"they are and train_subset = 2000 in no run; leave "
                                            r"train_subset out of \[quick\]$"):
        parse_study(tomllib.loads(study.format(quick="train_subset = 2000")))
    assert parse_study(tomllib.loads(study.format(quick="val_size = 500"))).quick
    # review: a named variant setting it keeps its own, the others take [quick]'s
    named = ("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'tr'\nvariants = [{label = 'a', "
             "lr = 0.01}, {label = 'b', lr = 0.1, train_subset = 800}]\n[quick]\n"
             "train_subset = 500\n")
    assert parse_study(tomllib.loads(named)).quick == {"train_subset": 500}


def test_a_base_or_final_setting_no_run_reads_is_said():
    """Hunt: momentum beside Adam and filters beside an mlp, in [base] or in [final] settings,
    passed without a word (train says it of a flag; an experiment varying it is refused). A
    setting some run reads (momentum where an experiment tries sgd) is not said."""
    from mnistlab.config import tomllib

    study = ("[base]\nmodel = 'mlp'\noptimizer = 'adam'\nmomentum = 0.9\nfilters = [8, 16]\n"
             "[[experiment]]\nname = 'lr'\nfactor = 'lr'\nvalues = [0.01, 0.02]\n"
             "[final]\nchoose = 'best'\nsettings = { momentum = 0.8 }\n")
    with pytest.warns(UserWarning) as said:
        parse_study(tomllib.loads(study))
    assert [str(w.message) for w in said] == [
        "study [base]: momentum = 0.9 does nothing in any run of this study (optimizer adam; "
        'only sgd reads it); leave it out, or give it where optimizer = "sgd"',
        "study [base]: filters = [8, 16] does nothing in any run of this study (model mlp; only "
        "cnn and resnet read it); leave it out, or give it beside a model that reads it",
        "study [final] settings: momentum = 0.8 does nothing in any run of this study "
        '(optimizer adam; only sgd reads it); leave it out, or give it where optimizer = "sgd"']
    tried = study.replace("factor = 'lr'\nvalues = [0.01, 0.02]",
                          "factor = 'optimizer'\nvalues = ['adam', 'sgd']")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_study(tomllib.loads(tried.replace("filters = [8, 16]\n", "")))
        # review: read by the final model alone, explicit or the best of each experiment
        parse_study(tomllib.loads(study.replace("filters = [8, 16]\n", "").replace(
            "choose = 'best'\nsettings = { momentum = 0.8 }", "settings = { optimizer = 'sgd' }")))
        parse_study(tomllib.loads(
            "[base]\nmodel = 'mlp'\noptimizer = 'adam'\nschedule = 'onecycle'\nmomentum = 0.5\n"
            "[[experiment]]\nname = 'o'\nfactor = 'optimizer'\nvalues = ['adam', 'sgd']\n"
            "[[experiment]]\nname = 's'\nfactor = 'schedule'\nvalues = ['onecycle', 'cosine']\n"
            "[final]\nchoose = 'best'\n"))  # only sgd beside cosine, both best, reads it
    # review: past the combinations looked through, [base] was not checked at all
    many = "".join(f"[[experiment]]\nname = 'e{n}'\nfactor = '{f}'\nvalues = {v}\n"
                   for n, (f, v) in enumerate([("lr", [0.1, 0.01, 0.001]),
                                               ("dropout", [0.1, 0.2, 0.3]),
                                               ("batch_size", [32, 64, 128]),
                                               ("epochs", [1, 2, 3]),
                                               ("weight_decay", [0.0, 1e-4, 1e-3])]))
    with pytest.warns(UserWarning, match=r"\[base\]: momentum = 0.9 does nothing"):
        parse_study(tomllib.loads("[base]\nmodel = 'mlp'\noptimizer = 'adam'\nmomentum = 0.9\n"
                                  + many + "[final]\nchoose = 'best'\n"))
    # review: and not said where two of them together read it (sgd beside cosine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_study(tomllib.loads(
            "[base]\nmodel = 'mlp'\noptimizer = 'adam'\nschedule = 'onecycle'\nmomentum = 0.5\n"
            "[[experiment]]\nname = 'o'\nfactor = 'optimizer'\nvalues = ['adam', 'sgd']\n"
            "[[experiment]]\nname = 's'\nfactor = 'schedule'\nvalues = ['onecycle', 'cosine']\n"
            + many + "[final]\nchoose = 'best'\n"))


def test_the_unread_check_of_a_study_of_many_experiments_looks_at_each_kind_once(monkeypatch):
    """Hunt: 200 experiments of two values with choose = "best" took 50 s to read (and 556 MB),
    the check building every pair of experiments' configs, 180,000, and looking at each once
    per key of [base]; here they all read the same settings."""
    from mnistlab import models
    from mnistlab.config import tomllib

    looked = []
    real = models.settings_unread
    monkeypatch.setattr(models, "settings_unread", lambda c: looked.append(c) or real(c))
    many = "".join(f"[[experiment]]\nname = 'e{n}'\nfactor = 'lr'\nvalues = [{n + 1}e-4, 0.5]\n"
                   for n in range(200))
    with pytest.warns(UserWarning, match=r"\[base\]: momentum = 0.9 does nothing"):
        parse_study(tomllib.loads("[base]\nmodel = 'mlp'\noptimizer = 'adam'\nmomentum = 0.9\n"
                                  "dropout = 0.1\n" + many + "[final]\nchoose = 'best'\n"))
    assert len(looked) < 10 * 200  # a few per experiment (each checks its own), not a pair's


def test_what_a_run_leaves_unread_turns_on_the_settings_named_for_it_alone():
    """The study's check looks at one config of each kind by models.UNREAD_DECIDED_BY: a
    setting outside it that changed what settings_unread finds would go unseen there."""
    from mnistlab.config import TrainConfig
    from mnistlab.models import UNREAD_DECIDED_BY, settings_unread

    others = dict(lr=0.3, hidden=[7], filters=[3], dense=[5], epochs=4, dropout=0.4,
                  momentum=0.5, weight_decay=0.01, label_smoothing=0.2, val_size=77,
                  batch_size=9, activation="tanh", ema=0.9, ensemble=2, augment="rotate=5")
    assert not set(others) & set(UNREAD_DECIDED_BY)
    for decided in (dict(model="mlp"), dict(model="cnn", optimizer="sgd", schedule="onecycle"),
                    dict(model="resnet", optimizer="adam", loss="bce", val_from="test")):
        plain = TrainConfig(**decided)
        assert settings_unread(plain) == settings_unread(plain.replace(**others))


def test_quick_settings_that_make_values_alike_are_said():
    """[quick] max_epochs = 3 makes epochs 5 and 10 one network, a quick mlp makes filters 8
    and 16 one: the quick form runs (it is a smoke test), but says why those rows cannot
    differ, naming [quick]'s settings, every group of them (review)."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(
        "[base]\nmodel = 'cnn'\n[[experiment]]\nname = 'x'\nfactor = 'epochs'\n"
        "values = [2, 5, 10]\n[[experiment]]\nname = 'f'\nfactor = 'filters'\n"
        "values = [[8], [16]]\n[[experiment]]\nname = 'g'\n"
        "grid = { epochs = [4, 6], lr = [0.01, 0.1] }\n[quick]\nmax_epochs = 3\n"))
    with pytest.warns(UserWarning) as said:
        spec.with_quick()
    assert [str(w.message) for w in said] == [
        "--quick: in experiment x, [quick] (max_epochs = 3) makes '5' and '10' train the same "
        "network, so the quick form cannot tell them apart",
        "--quick: in experiment g, [quick] (max_epochs = 3) makes 'epochs=4, lr=0.01' and "
        "'epochs=6, lr=0.01' | 'epochs=4, lr=0.1' and 'epochs=6, lr=0.1' train the same network, "
        "so the quick form cannot tell them apart"]
    quick_mlp = dataclasses.replace(spec, quick={"model": "mlp"})  # no epoch cap at all
    with pytest.warns(UserWarning, match=r"experiment f, \[quick\] \(model = 'mlp'\) makes '8' "
                                         r"and '16' train the same network"):
        quick_mlp.with_quick()
    spec = dataclasses.replace(spec, quick={"max_epochs": 10})  # a cap that merges none
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [v.changes for v in spec.with_quick().experiments[0].variants] == [
            {"epochs": 2}, {"epochs": 5}, {"epochs": 10}]


@pytest.mark.filterwarnings("error:.*does nothing in any run")  # needed or zero: unsaid
def test_nesterov_under_one_cycle_is_a_setting_of_its_own():
    """One-cycle cycles SGD's momentum but still takes the Nesterov step: a study of it was
    refused with "nesterov: needs --optimizer sgd and --momentum > 0" (review)."""
    from mnistlab.config import tomllib

    base = ("[base]\nmodel = 'mlp'\noptimizer = 'sgd'\nmomentum = 0.9\nnesterov = true\n"
            "schedule = 'onecycle'\n[[experiment]]\nname = 'x'\n")
    for experiment in ("factor = 'lr'\nvalues = [0.05, 0.1]\n",
                       "factor = 'nesterov'\nvalues = [false, true]\n",
                       "factor = 'schedule'\nvalues = ['cosine', 'onecycle']\n"):
        assert len(parse_study(tomllib.loads(base + experiment)).experiments[0].variants) == 2


def test_a_factor_beside_a_grid_or_variants_is_said_to_be_unused():
    """It was passed over without a word (a warning, not a refusal: such files loaded)."""
    from mnistlab.config import tomllib

    for names, listed in (("a grid names its", "grid = { epochs = [1, 2] }"),
                          ("variants name their", "variants = [{ label = 'a', lr = 0.1 }]")):
        with pytest.warns(UserWarning, match=f"\\(x\\): factor is read with values only; "
                          f"{names} own settings, so this factor is not used"):
            parse_study(tomllib.loads(f"[base]\n[[experiment]]\nname = 'x'\nfactor = 'lr'\n"
                                      f"{listed}\n"))


def test_a_label_with_a_no_break_space_is_one_line():
    """Only line breaks and control characters are refused (isprintable refused U+00A0)."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(EXP + 'variants = [{label = "lr\u00a00.1", lr = 0.1}]\n'))
    assert spec.experiments[0].variants[0].label == "lr\u00a00.1"


# any TOML value (TOML has no null, but dates) at any key of a valid study
TOML_VALUES = st.recursive(
    st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["a", "lr", "val", "label", "name", "0.1"]), inner, max_size=2),
    max_leaves=6)
STUDY = {"name": "s", "seeds": 2, "base": {"model": "mlp", "hidden": [16]},
         "experiment": [{"name": "a", "factor": "lr", "values": [0.1, 0.01],
                         "original": {"0.1": {"val": 1.0}}},
                        {"name": "g", "grid": {"lr": [0.1], "optimizer": ["sgd", "adam"]}},
                        {"name": "v", "variants": [{"label": "x", "original": {"val": 3}}]}],
         "final": {"choose": "best", "settings": {"epochs": 2}, "original": {"val": 2.0}},
         "quick": {"train_subset": 100, "max_epochs": 1}}
STUDY_PATHS = [("name",), ("title",), ("seeds",), ("base",), ("base", "hidden"), ("experiment",),
               ("experiment", 0), ("experiment", 0, "name"), ("experiment", 0, "factor"),
               ("experiment", 0, "values"), ("experiment", 0, "values", 0),
               ("experiment", 0, "original"), ("experiment", 0, "original", "0.1"),
               ("experiment", 1, "grid"), ("experiment", 1, "grid", "lr"),
               ("experiment", 2, "variants"), ("experiment", 2, "variants", 0),
               ("experiment", 2, "variants", 0, "label"), ("experiment", 2, "test"),
               ("final",), ("final", "choose"), ("final", "settings"), ("final", "original"),
               ("quick",), ("quick", "max_epochs"), ("es",), ("original_base",)]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(STUDY_PATHS), value=TOML_VALUES)
def test_any_value_at_any_key_is_a_study_or_one_line(path, value):
    import copy

    data = copy.deepcopy(STUDY)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        spec = parse_study(data, where="s.toml")
    except MnistlabError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("s.toml")
        return
    plan_experiments(spec.with_quick())


def test_a_quick_one_seed_report_of_one_s_own_study_says_only_what_it_measured(tiny_study,
                                                                               tmp_path):
    """A reader pass (hunt): a study with no original was told its quick form is "not
    comparable with the original"; one seed still described 95% intervals in the method, the
    headers and the captions; a value the quick form trained as the base's own runs had a
    +-31-point interval against itself."""
    text = tiny_study.read_text().replace(
        'original = { "0.05" = { train = 70.0, val = 71.0 } }\n', "")
    (tmp_path / "own.toml").write_text(text.replace('name = "tiny"', 'name = "own"')
                                       + "[quick]\ntrain_subset = 1000\nmax_epochs = 1\n")
    with pytest.warns(UserWarning, match="makes '1' and '3' train the same network"):
        run_study(str(tmp_path / "own.toml"), tmp_path / "Q",
                  options=StudyOptions(quick=True, seeds=1, workers=1))
    report = (tmp_path / "Q" / "report.md").read_text()
    assert "**Quick form.** These runs use" in report and "the original" not in report
    assert "This is the quick form, on" in report and "lower than a full run's" in report
    assert "95% t interval" not in report and "(95% CI)" not in report
    assert "| Δ vs base |" in report
    assert "mean over seeds" not in report and "(one seed)" in report
    assert "| +0.00 (the same runs: one network in the quick form) |" in report


def test_a_study_without_a_name_takes_its_file_stem_made_valid(tmp_path):
    path = tmp_path / "my first study.toml"
    path.write_text("[base]\nmodel = 'mlp'\n[final]\nchoose = 'explicit'\n")
    assert load_study(str(path)).name == "my-first-study"


@pytest.mark.parametrize("seeds,message", [
    (1_000_000_000, "seeds must be a whole number from 1 to 1,000"),
    (0, "seeds must be a whole number from 1 to 1,000"),
    (500, "500 seeds × 24 settings would plan 12,000 runs, above the limit of 10,000"),
])
def test_replacing_seeds_is_held_to_the_same_limits(seeds, message):
    import dataclasses

    spec = load_study("fashion-hparams")
    with pytest.raises(MnistlabError, match=message):
        dataclasses.replace(spec, seeds=seeds)


def test_cli_seeds_flag_is_one_line_and_writes_nothing(tmp_path, capsys):
    from mnistlab.cli import main

    out = tmp_path / "S"
    assert main(["study", "fashion-hparams", "--seeds", "1000000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "seeds must be a whole number from 1 to 1,000" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_study_command_without_a_study_lists_them_and_says_what_is_missing(capsys):
    from mnistlab.cli import main

    assert main(["study"]) == 2
    out, err = capsys.readouterr()
    assert "fashion-hparams" in out and err.strip() == ("error: give a study: a preset above "
                                                        "or a .toml file")
    assert main(["study", "--list"]) == 0 and capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["study", "tune"])
def test_the_lists_of_presets_follow_lang(command, capsys):
    """`study --list --lang es` printed the English table and titles, where each preset has
    its Spanish title."""
    from mnistlab.cli import main

    assert main([command, "--lang", "es"]) == 2  # no study or space given: the list, and why
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("error: indica un"), said
    assert main([command, "--list", "--lang", "es"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "incluidos" in out and "uno a uno" * (command == "study") in out
    assert not english_in(out), english_in(out)


def test_unknown_preset_lists_presets():
    with pytest.raises(MnistlabError, match="presets: fashion-hparams, lenet-challenge"):
        load_study("cifar-study")


def test_a_folder_named_as_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    """`study fashion-hparams --out fashion-hparams`, stopped, then the same command to resume:
    "fashion-hparams: a folder, not a file" (the same for tune's presets)."""
    from mnistlab.tune.space import load_space

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fashion-hparams").mkdir()
    (tmp_path / "fashion-mlp").mkdir()
    assert load_study("fashion-hparams").name == "fashion-hparams"
    assert load_space("fashion-mlp").name == "fashion-mlp"
    (tmp_path / "mine").mkdir()  # a folder that is no preset is still said to be a folder
    with pytest.raises(MnistlabError, match="mine: a folder, not a file"):
        load_study("mine")


def test_the_quick_form_in_spanish_is_spanish_throughout(tiny_study, tmp_path):
    quick = tiny_study.read_text() + "[quick]\ntrain_subset = 1000\nmax_epochs = 1\n"
    (tmp_path / "quick.toml").write_text(quick.replace('name = "tiny"', 'name = "tiny-q"'))
    with pytest.warns(UserWarning, match=r"max_epochs = 1\) makes '1' and '3' train the same"):
        result = run_study(str(tmp_path / "quick.toml"), tmp_path / "Q",
                           options=StudyOptions(quick=True, seeds=1, lang="es", workers=1))
    report = (tmp_path / "Q" / "report.md").read_text()
    assert result.spec.is_quick and "versión rápida" in report
    # the notice and the conclusions say the same of it (the conclusions left the epochs out)
    less = ("un subconjunto de las imágenes de entrenamiento y como mucho 1 época (las "
            "etiquetas nombran los ajustes del estudio completo)")
    assert f"Estas ejecuciones usan {less}, así" in report
    assert f"Esta es la versión rápida, con {less}: sus" in report
    assert english_in(report) == []
    # said first, under the line naming the version and the command that remakes the report
    head = report.split("\n## ")[0]
    command = (f"mnistlab study {tmp_path / 'quick.toml'} --out {tmp_path / 'Q'} --seeds 1 "
               "--quick --lang es --workers 1")
    assert f"Hecho con mnistlab {mnistlab.__version__}. Para rehacerlo: `{command}`" in head
    assert "**Versión rápida: no comparable con el original.**" in head
    # the cap it has, said as it is (a quick form without max_epochs trains the full epochs)
    assert "subconjunto de las imágenes de entrenamiento y como mucho 1 época (las" in head
    assert "original (entren. / valid.)" not in report  # full-data numbers stay out


MICRO = """name = "micro"
seeds = 1
[base]
dataset = "{data}"
model = "mlp"
hidden = [16]
epochs = 1
val_size = 100
eval_train_size = 100
device = "cpu"
[[experiment]]
name = "lr"
factor = "lr"
values = [0.01, 0.05]
[final]
choose = "{choose}"
settings = {{ lr = 0.02 }}
"""


@pytest.mark.parametrize("choose", ["best", "explicit"])
def test_the_study_bar_ends_complete_when_resumed_with_nothing_to_do(choose, tmp_path,
                                                                     tiny_idx_dir):
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(MICRO.format(data=tiny_idx_dir, choose=choose)))

    def bar_after_a_study() -> tuple[int, int, float, float]:
        progress = StudyProgress(Console(file=io.StringIO(), width=100))
        train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1), progress=progress)
        task = progress.progress.tasks[0]  # the run bars are gone, the study's stays
        return progress.done, progress.total, task.completed, task.total

    assert bar_after_a_study() == (3, 3, 3, 3)  # two learning rates and the final model
    assert bar_after_a_study() == (3, 3, 3, 3)  # nothing left to train: still 3/3, not 2/3


def test_a_notebook_without_widgets_gets_a_line_per_run_not_a_bar(tmp_path, tiny_idx_dir,
                                                                   monkeypatch):
    """Hunt: in Jupyter without ipywidgets rich warned "install ipywidgets" and drew nothing
    for the whole study; with them, its last frame read 0/2."""
    from mnistlab import progress as bars
    from mnistlab.config import tomllib

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed
    assert bars.live_drawn(types.SimpleNamespace(is_jupyter=False))
    assert not bars.live_drawn(types.SimpleNamespace(is_jupyter=True))
    monkeypatch.setattr(bars, "live_drawn", lambda console: False)
    shown = io.StringIO()
    progress = StudyProgress(Console(file=shown, width=100))
    spec = parse_study(tomllib.loads(MICRO.format(data=tiny_idx_dir, choose="best")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1), progress=progress)
        progress.stop()
    lines = shown.getvalue().splitlines()
    assert [line.split(" last:")[0] for line in lines] == ["study 1/3", "study 2/3", "study 3/3"]
    assert "━" not in shown.getvalue()


def test_an_experiment_s_note_stands_under_its_heading(tmp_path, tiny_idx_dir):
    """Hunt: `note` was shown for test = true experiments alone; a factor's was dropped, and
    --lang es still asked for its Spanish."""
    from mnistlab.config import tomllib

    text = MICRO.format(data=tiny_idx_dir, choose="none").replace(
        'factor = "lr"', 'factor = "lr"\nnote = "Steps too large overshoot."\n'
                         'es = { note = "Los pasos grandes se pasan." }').replace(
        "settings = { lr = 0.02 }\n", "")
    result = train_study(parse_study(tomllib.loads(text)), tmp_path / "S",
                         backend=LocalBackend(workers=1))
    english = to_markdown(build_document(result))
    assert "# Experiment" in english.split("Steps too large overshoot.")[0]
    assert "Los pasos grandes se pasan." in to_markdown(build_document(result, lang="es"))


def test_the_study_bar_speaks_the_study_s_language(tmp_path, tiny_idx_dir):
    """The bar read "study ... last: val 0.8682" under a Spanish report."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads(MICRO.format(data=tiny_idx_dir, choose="best")))
    shown = io.StringIO()
    progress = StudyProgress(Console(file=shown, width=100), lang="es")
    train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1), progress=progress)
    progress.stop()
    assert re.search(r"estudio .* 3/3 última: val\. \d,\d{4}", shown.getvalue())
    assert english_in(shown.getvalue()) == [] and "last:" not in shown.getvalue()
    # the bars of the runs as they train, gone once they end
    from mnistlab.config import TrainConfig

    run = types.SimpleNamespace(config=TrainConfig(model="mlp", seed=3), test=True)
    assert progress.reporter_for(run, members=2).label == "  cohorte de 2 mlp (modelo final)"
    assert progress.reporter_for(run).label == "  mlp semilla 3 (modelo final)"


# the final model alone, its seeds in a cohort, and the best variant's run scored on the test set
@pytest.mark.parametrize("choose,seeds", [("explicit", 1), ("explicit", 2), ("best", 1)])
def test_a_spanish_study_s_final_model_draws_its_figures_in_spanish(choose, seeds, tmp_path,
                                                                   tiny_idx_dir, monkeypatch):
    """The final model's run folders held English curves and confusion matrices under a
    Spanish report: the study's language did not reach the runs it trained, nor a variant's
    run scored as the final model (review)."""
    import dataclasses

    from mnistlab import figures
    from mnistlab.config import tomllib

    langs: list[tuple[str, str]] = []
    for name in ("learning_curves", "confusion"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *a, _n=name, _r=real, **k: langs.append(
            (_n, k.get("lang", a[-1]))) or _r(*a, **k))
    text = MICRO.format(data=tiny_idx_dir, choose=choose)
    if choose == "best":  # the best learning rate's run is the final model: scored, not trained
        text = text.replace("settings = { lr = 0.02 }\n", "")
    spec = parse_study(tomllib.loads(text))
    train_study(dataclasses.replace(spec, seeds=seeds), tmp_path / "S",
                backend=LocalBackend(workers=1), lang="es")
    assert (choose == "best") == any(
        "scored_from" in (run / "summary.json").read_text()
        for run in (tmp_path / "S" / "runs").iterdir())
    assert sorted(langs) == sorted([("confusion", "es"), ("learning_curves", "es")] * seeds)


def test_fewer_seeds_than_the_folder_holds_says_the_others_are_there(tmp_path, tiny_idx_dir,
                                                                     capsys):
    """--seeds 1 on a folder holding 3 seeds reported one seed and advised `--seeds 3`, not
    saying that those runs were there already: the report and the command now say so."""
    study = tmp_path / "micro.toml"
    study.write_text(MICRO.replace("seeds = 1", "seeds = 3").format(data=tiny_idx_dir,
                                                                     choose="explicit"))
    out = str(tmp_path / "S")
    assert main(["study", str(study), "--quiet", "--workers", "1", "--out", out]) == 0
    assert "note:" not in capsys.readouterr().err  # the folder holds what was asked for
    for seeds, stored in (("1", "This folder already holds 3 seeds of every configuration: run "
                                "again with `--seeds 3` to report them all, reusing the runs"),
                          ("2", "This folder holds 3 seeds of every configuration; this report "
                                "shows the first 2: run again with `--seeds 3`")):
        assert main(["study", str(study), "--quiet", "--seeds", seeds, "--out", out]) == 0
        assert ("note: this folder holds 3 seeds of every configuration; --seeds 3 reports "
                "them all, reusing the runs already trained") in capsys.readouterr().err
        report = (tmp_path / "S" / "report.md").read_text()
        assert stored in report and "Run with `--seeds 3` or more" not in report
        # results.csv holds this report's runs: "Every run is in results.csv" was not true
        assert "Every run is in" not in report and "the folder's runs of 3 seeds are there " \
            "once it is run again with `--seeds 3`" in report
    assert main(["study", str(study), "--quiet", "--seeds", "3", "--lang", "es", "--out",
                 out]) == 0
    said = capsys.readouterr()
    assert "note:" not in said.err and "nota:" not in said.err
    # the command's last line is in the report's language too (it was English)
    from spanish import english_in

    assert said.out.startswith("carpeta del estudio: ") and "ejecuciones" in said.out
    assert english_in(said.out) == [], said.out
    assert main(["study", str(study), "--quiet", "--seeds", "1", "--lang", "es", "--out",
                 out]) == 0
    assert capsys.readouterr().err.startswith("nota: esta carpeta guarda 3 semillas de cada "
                                              "configuración; --seeds 3 las incluye todas")


def test_an_old_folder_holding_only_cohort_checkpoints_keeps_its_keys(tiny_study, tmp_path):
    # made before keys left out placement, stopped before any run finished: no store rows, no
    # run folders, only cohorts/<digest of the members' keys>/checkpoint.pt
    from mnistlab.study.placement import key_placement
    from mnistlab.study.plan import UNPLACED, run_key
    from mnistlab.training import cohort

    spec = load_study(str(tiny_study))
    old = spec.base.placement()  # device "cpu" and a data_dir: what the old keys hashed
    assert old != UNPLACED
    members = [r.config for r in plan_experiments(spec).to_train][:2]
    folder = cohort.checkpoint_dir(tmp_path / "S", [run_key(c, False, old) for c in members])
    folder.mkdir(parents=True)
    torch.save({"format": "cohort", "configs": [c.to_dict() for c in members]},
               folder / "checkpoint.pt")
    elsewhere = StudyOptions(device="auto", data_dir=str(tmp_path)).apply(spec)
    with Store(tmp_path / "S" / "study.db") as store:
        assert key_placement(store, tmp_path / "S", elsewhere) == old
        assert store.key_placement() == old  # recorded: decided once


def test_a_store_that_cannot_be_written_is_one_line(tmp_path):
    import sqlite3


    with Store(tmp_path / "study.db") as store:
        store._db.close()  # as if the file were read-only, or its disk full
        store._db = sqlite3.connect(f"file:{tmp_path / 'study.db'}?mode=ro", uri=True)
        for write in (lambda: store.set_identity("x"), lambda: store.set_key_placement({})):
            with pytest.raises(MnistlabError, match="study.db: cannot record .*; free space or "
                                                    "fix the permissions") as info:
                write()
            assert info.value.exit_code == 1


@pytest.mark.parametrize("sql, read", [
    ("UPDATE meta SET value = 'abc' WHERE name = 'identity'", "identity"),
    ("UPDATE meta SET value = '[1]' WHERE name = 'key_placement'", "key_placement"),
    ("UPDATE runs SET summary = '{bad'", "finished"),
    ("UPDATE runs SET history = '[[1, 2]]'", "finished"),
    ("UPDATE runs SET config = '3'", "entries"),
    ("DROP TABLE runs; CREATE TABLE runs (a, b)", "finished"),
])
def test_a_hand_edited_store_is_one_line_naming_it(tmp_path, sql, read):
    from mnistlab.config import TrainConfig
    from mnistlab.records import EpochRecord, RunSummary

    with Store(tmp_path / "study.db") as store:
        store.set_identity("abc123")
        store.set_key_placement({"device": "cpu"})
        store.record("k", TrainConfig(), False, RunSummary(status="completed"),
                     [EpochRecord.from_row({"epoch": 1})])
        store._db.executescript(sql)
        with pytest.raises(MnistlabError, match="study.db: a damaged study database .*; move "
                                                "this file away") as info:
            getattr(store, read)()
    assert "\n" not in str(info.value)


def test_a_read_only_study_folder_is_not_called_damaged(tmp_path):
    from test_folders import tmpfs


    with tmpfs(tmp_path / "mnt", "size=1m") as mount:
        Store(mount / "S" / "study.db").close()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        with pytest.raises(MnistlabError, match="cannot be opened for writing .*fix the "
                                                "permissions") as info:
            Store(mount / "S" / "study.db")
        assert "damaged" not in str(info.value) and info.value.exit_code == 1


def test_a_cohort_cut_short_resumes_as_it_was_when_more_seeds_regroup_the_rest(tiny_study,
                                                                               tmp_path):
    from mnistlab import interrupt
    from mnistlab.data.cache import DataCache
    from mnistlab.progress import Reporter
    from mnistlab.study.backends import plan_units
    from mnistlab.training import cohort

    class StopAfterTheFirstEpoch(Reporter):
        def epoch_ended(self, record):
            interrupt.request(signal.SIGTERM)

    two = load_study(str(tiny_study))  # 2 seeds: one cohort of 4 runs
    (unit,) = plan_units(plan_experiments(two).to_train, True)
    out = tmp_path / "S"
    checkpoint = cohort.checkpoint_dir(out, [r.key for r in unit]) / "checkpoint.pt"
    try:
        with pytest.raises(KeyboardInterrupt):  # as a study stopped during its first epoch
            cohort.train_cohort([r.config for r in unit],
                                splits=DataCache().splits(unit[0].config),
                                outs=[out / "runs" / r.key for r in unit],
                                tests=[r.test for r in unit], checkpoint=checkpoint,
                                reporter=StopAfterTheFirstEpoch())
    finally:
        interrupt.flag().clear()
    assert checkpoint.is_file()
    tiny_study.write_text(tiny_study.read_text().replace("seeds = 2", "seeds = 3"))
    three = load_study(str(tiny_study))
    planned = plan_experiments(three).to_train
    assert [len(u) for u in plan_units(planned, True)] == [6]  # grouped anew: another cohort
    resumed = plan_units(planned, True, out)
    assert [r.key for r in resumed[0]] == [r.key for r in unit] and len(resumed) == 2
    train_study(three, out, backend=LocalBackend(workers=1))
    assert not checkpoint.parent.exists()  # resumed and finished
    train_study(three, tmp_path / "fresh", backend=LocalBackend(workers=1))
    assert _rows_without_seconds(out / "results.csv") == \
        _rows_without_seconds(tmp_path / "fresh" / "results.csv")


def test_an_old_folder_holding_only_final_runs_keeps_its_keys(tiny_study, tmp_path):
    from mnistlab.records import RunSummary
    from mnistlab.study.placement import key_placement
    from mnistlab.study.plan import plan_final, run_key

    spec = load_study(str(tiny_study))
    old = spec.base.placement()
    final = plan_final(spec, spec.base.replace(epochs=2))  # keyed the new way: not these
    with Store(tmp_path / "S" / "study.db") as store:
        for run in final:  # finished runs of a final model, keyed the old way
            store.record(run_key(run.config, True, old), run.config, True,
                         RunSummary(status="completed"), [])
        elsewhere = StudyOptions(device="auto", data_dir=str(tmp_path)).apply(spec)
        assert key_placement(store, tmp_path / "S", elsewhere) == old


def test_labels_read_in_spanish_are_stored_in_english():
    spec = parse_study({"name": "s", "base": {"model": "mlp"}, "experiment": [
        {"name": "lr", "factor": "lr", "values": [0.001, 1e-05, 2]},
        {"name": "g", "grid": {"lr": [0.5], "optimizer": ["adam"], "hidden": [[16, 8]]}},
        {"name": "o", "factor": "optimizer", "values": ["sgd"]},
        {"name": "t", "variants": [{"label": "trial 1", "es": {"label": "prueba 1"},
                                    "dropout": 0.5}]}]})
    lr, grid, optimizer, trials = spec.experiments
    assert [v.label for v in lr.variants] == ["0.001", "1e-05", "2"]
    assert [v.text("label", "es") for v in lr.variants] == ["0,001", "1e-05", "2"]
    assert grid.variants[0].label == "lr=0.5, optimizer=adam, hidden=16-8"
    assert grid.shown(grid.variants[0].label, "es") == ("tasa de aprendizaje 0,5; optimizador "
                                                        "adam; capas ocultas 16-8")
    assert optimizer.variants[0].translations == {}
    assert trials.variants[0].changes == {"dropout": 0.5}  # `es` is not a setting
    assert trials.shown("trial 1", "es") == "prueba 1" and trials.shown("trial 1", "en") == \
        "trial 1"
    quick = dataclasses.replace(spec, quick={"max_epochs": 1}).with_quick()
    assert quick.experiments[3].shown("trial 1", "es") == "prueba 1"


def test_a_study_of_devices_keeps_its_variants_apart():
    from mnistlab.study.plan import plan_experiments
    from mnistlab.study.spec import parse_study

    spec = parse_study({"name": "devices", "seeds": 1, "base": {"model": "mlp"},
                        "experiment": [{"name": "device", "factor": "device",
                                        "values": ["cpu", "auto"]}],
                        "final": {"choose": "none"}})
    assert len(plan_experiments(spec).runs) == 2  # cpu and auto: two runs, not one


def test_cohorts_trained_but_never_recorded_are_read_back_not_trained_again(tiny_study,
                                                                            tmp_path,
                                                                            monkeypatch):
    from mnistlab.study import backends

    spec = load_study(str(tiny_study))
    train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1))
    first = _rows_without_seconds(tmp_path / "S" / "results.csv")
    # the store lost (moved away, as its damaged-file error says), the run folders kept
    (tmp_path / "S" / "study.db").rename(tmp_path / "study.db.moved")
    trained = []
    real = backends.cohort.train_cohort
    monkeypatch.setattr(backends.cohort, "train_cohort",
                        lambda configs, **kw: trained.append(configs) or real(configs, **kw))
    train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1))
    assert trained == []
    assert _rows_without_seconds(tmp_path / "S" / "results.csv") == first


def test_runs_written_but_not_recorded_are_read_back_when_their_cohort_grows(tiny_study,
                                                                            tmp_path,
                                                                            monkeypatch):
    """More seeds with study.db moved away: the cohorts now hold new members beside written
    ones; only the new ones train (every finished run was trained again)."""
    import dataclasses

    from mnistlab.study import backends

    spec = load_study(str(tiny_study))
    train_study(dataclasses.replace(spec, seeds=1), tmp_path / "S",
                backend=LocalBackend(workers=1))
    (tmp_path / "S" / "study.db").rename(tmp_path / "study.db.moved")
    trained = []
    real_cohort, real_train = backends.cohort.train_cohort, backends.train
    monkeypatch.setattr(backends.cohort, "train_cohort",
                        lambda configs, **kw: trained.extend(configs) or real_cohort(configs, **kw))
    monkeypatch.setattr(backends, "train",
                        lambda config, **kw: trained.append(config) or real_train(config, **kw))
    train_study(dataclasses.replace(spec, seeds=2), tmp_path / "S",
                backend=LocalBackend(workers=1))
    assert trained and {config.seed for config in trained} == {1}


def test_a_cut_cohort_that_can_never_resume_is_removed_once_the_study_is_done(tiny_study,
                                                                              tmp_path):
    """Stopped at 2 seeds, finished with 1: seed 0 trained alone, and the 2-seed cohort's
    checkpoint (tens of MB for a conv net) was left for ever; a cohort none of whose members
    finished stays, to resume."""
    import dataclasses

    from mnistlab.study.plan import run_key
    from mnistlab.training import cohort

    spec = load_study(str(tiny_study))
    planned = [r.config for r in plan_experiments(spec).to_train]
    dead = [c for c in planned if c.lr == 0.01]  # seeds 0 and 1 of one configuration
    alive = [c for c in planned if c.lr == 0.05]
    alive = [alive[1], alive[1].replace(seed=2)]  # seeds 1 and 2: neither planned with 1 seed
    folders = []
    for members in (dead, alive):
        folder = cohort.checkpoint_dir(tmp_path / "S", [run_key(c, False) for c in members])
        folder.mkdir(parents=True)
        torch.save({"format": "cohort", "configs": [c.to_dict() for c in members]},
                   folder / "checkpoint.pt")
        folders.append(folder)
    assert len(dead) == 2 and len(alive) == 2
    train_study(dataclasses.replace(spec, seeds=1), tmp_path / "S",
                backend=LocalBackend(workers=1))
    assert not folders[0].exists() and (folders[1] / "checkpoint.pt").exists()


def test_run_names_and_study_identity_outlive_new_settings():
    # figures computed by mnistlab 0.1.0: folders it made keep their run names and identity,
    # so they resume; a new setting changes the name only once it leaves its default
    from mnistlab.config import TrainConfig
    from mnistlab.study.plan import run_key
    from mnistlab.study.run import study_identity

    assert run_key(TrainConfig(), False) == "3b2756fd36c5"
    assert run_key(TrainConfig(model="cnn", lr=0.01), True) == "03bc7673164f"
    assert study_identity(load_study("fashion-hparams")) == "4d64e68fa4b0bf0d"
    assert run_key(TrainConfig(ema=0.999), False) != "3b2756fd36c5"


def test_a_run_key_leaves_out_where_the_run_trains_unless_the_folder_is_keyed_there():
    from mnistlab.config import TrainConfig
    from mnistlab.study.plan import run_key

    placed = TrainConfig(device="cpu", data_dir="/data/mnist")
    assert run_key(placed, False) == run_key(TrainConfig(), False) == "3b2756fd36c5"
    # figures computed by the version before, which hashed the placement: its folders keep them
    assert run_key(placed, False, {"device": "cpu", "data_dir": "/data/mnist"}) == "573adf06c387"
    assert run_key(TrainConfig(model="cnn", lr=0.01), True,
                   {"device": "cpu", "data_dir": None}) == "21e6170cefa8"


def test_a_study_resumed_with_another_device_and_data_folder_trains_nothing_again(
        tiny_study, shared_datasets, tmp_path, monkeypatch):
    from mnistlab.study import run as study_run
    from mnistlab.study.plan import UNPLACED

    spec = load_study(str(tiny_study))
    elsewhere = StudyOptions(data_dir=str(tmp_path / "same-files"), device="auto")
    (tmp_path / "same-files").symlink_to(shared_datasets)

    def trained(out, options=None):
        names = []
        train_study(options.apply(spec) if options else spec, out,
                    on_run=lambda key, label, folder: names.append(key))
        return names

    # a folder made before keys left out placement: its keys hashed the data_dir and device
    with monkeypatch.context() as patched:
        patched.setattr(study_run, "key_placement", lambda store, out, spec: spec.base.placement())
        first = trained(tmp_path / "old")
    assert len(first) == 6 and sorted(os.listdir(tmp_path / "old" / "runs")) == sorted(first)
    assert trained(tmp_path / "old", elsewhere) == []  # it keeps them, wherever it resumes
    with Store(tmp_path / "old" / "study.db") as store:
        assert store.key_placement() == spec.base.placement()
    # a new study is keyed at the defaults: other names, and the same nothing-to-train
    new = trained(tmp_path / "new", elsewhere)
    assert len(new) == 6 and set(new).isdisjoint(first)
    assert trained(tmp_path / "new") == []
    with Store(tmp_path / "new" / "study.db") as store:
        assert store.key_placement() == UNPLACED


@pytest.mark.parametrize("workers, where", [(None, "here"), (1, "here"), (3, "workers")])
def test_on_a_gpu_one_process_trains_unless_workers_are_asked_for(workers, where, monkeypatch):
    from mnistlab.config import TrainConfig
    from mnistlab.study import backends
    from mnistlab.study.plan import PlannedRun

    # two units that cannot share a cohort (different optimizers), as if on a GPU
    runs = [PlannedRun(str(i), TrainConfig(model="mlp", device="cpu", optimizer=o), False)
            for i, o in enumerate(("sgd", "adam"))]
    monkeypatch.setattr(backends, "_on_gpu", lambda planned: True)
    monkeypatch.setattr(backends, "default_workers", lambda: 4)
    used = []
    monkeypatch.setattr(backends, "train_unit", lambda unit, *rest: used.append("here") or [])
    monkeypatch.setattr(LocalBackend, "_execute_in_workers",
                        lambda self, units, *rest: used.append("workers"))
    LocalBackend(workers=workers).execute(runs, Path("unused"), lambda *a: None,
                                          lambda *a: None)
    assert set(used) == {where}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_experiment_without_the_base_value_compares_against_its_first_not_a_false_base(
        tiny_study, tmp_path, lang):
    """Its first value was marked "(base)" and the recommendation said to keep "the base value"
    it was not."""
    tiny_study.write_text(_without_original(tiny_study).replace("values = [0.01, 0.05]",
                                                                "values = [0.01, 0.2]"))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S",
                       options=StudyOptions(lang=lang))
    report = (tmp_path / "S" / "report.md").read_text()
    section = report.split("learning-rate")[1].split("\n#")[0]
    first = "0.01" if lang == "en" else "0,01"
    assert f"| {first} {'(reference)' if lang == 'en' else '(referencia)'} |" in section
    assert "(base)" not in section
    assert ("Δ vs reference" if lang == "en" else "Δ frente a la referencia") in section
    assert ("is not among these values" if lang == "en" else "no está entre estos valores") \
        in section
    # the summary measures against the base's own runs, which the epochs experiment ran: its
    # "Δ vs base" column held the difference from 0.01 (and the final took a worse lr)
    lr = [r for r in result.rows if r.experiment == "learning-rate"]
    best = max(("0.01", "0.2"), key=lambda v: sum(r.val_accuracy for r in lr if r.value == v))
    base = {r.seed: r.val_accuracy for r in result.rows if r.is_base}
    diff = welch([r.val_accuracy for r in lr if r.value == best], list(base.values()))
    summary = report.split("\n## Summary" if lang == "en" else "\n## Resumen")[1]
    [row] = [line for line in summary.splitlines() if line.startswith("| learning-rate |")]
    assert number(diff.delta * 100, "+.2f", lang) in row.split("|")[4]
    named = "- `lr`" if lang == "en" else "- tasa de aprendizaje (`lr`)"
    [line] = [line for line in report.splitlines() if line.startswith(named)]
    assert "0.05" in line or "0,05" in line  # the base's value, not "the first listed"
    assert "first listed" not in line and "primero de la lista" not in line
    assert (result.final_config.lr == 0.05) == (diff.delta <= 0)


def test_the_doctor_section_and_the_conclusions_count_the_same_runs(tiny_study, tmp_path):
    """One-epoch runs: the running train accuracy is below validation in (nearly) all of
    them, the final model's included; the conclusions counted the experiments' runs only,
    so the two counts of one report differed (21 and 18 in the bug hunt's study)."""
    import re

    tiny_study.write_text(tiny_study.read_text().replace("epochs = 3", "epochs = 1\ndropout = 0.5")
                          .replace("settings = { epochs = 2 }", "settings = { epochs = 1 }"))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S", options=StudyOptions())
    report = (tmp_path / "S" / "report.md").read_text()
    [doctor] = re.findall(r"\(`val-above-train`\) in (\d+) runs?", report)
    [concluded] = re.findall(r"In (\d+) trained runs? \(each at its last epoch", report)
    assert doctor == concluded and any(
        "val-above-train" in [d.code for d in result.summaries[r.key].diagnoses]
        for r in result.final_rows)
    # a run whose numbers fit the rule but that the doctor gave another finding (a diverged
    # run gets only `diverged`) was counted by the conclusions all the same
    def found(key: str) -> bool:
        return "val-above-train" in [d.code for d in result.summaries[key].diagnoses]

    key = next(r.key for r in result.rows if found(r.key))
    result.summaries[key] = dataclasses.replace(result.summaries[key], diagnoses=[])
    report = to_markdown(build_document(result))
    [now] = re.findall(r"\(`val-above-train`\) in (\d+) runs?", report)
    [concluded] = re.findall(r"In (\d+) trained runs? \(each at its last epoch", report)
    assert now == concluded == str(int(doctor) - 1)
    assert "the original's 'validation beats training'" in report
    # a study with no original's figures quotes no original
    for variant in (v for e in result.spec.experiments for v in e.variants):
        variant.original.clear()
    assert "the original's" not in to_markdown(build_document(result))
    assert "'validation beats training' there is a measurement artefact" in to_markdown(
        build_document(result))


def test_trial_curves_keep_every_variant_when_short_labels_would_collide(tiny_study, tmp_path,
                                                                         monkeypatch):
    from mnistlab import figures

    drawn = {}
    real = figures.experiment_curves
    monkeypatch.setattr(figures, "experiment_curves",
                        lambda curves, *a, **k: drawn.update({a[0]: list(curves)})
                        or real(curves, *a, **k))
    text = _epochs_replaced_by(tiny_study, '''[[experiment]]
name = "trials"
test = true
variants = [{ label = "mlp: small" }, { label = "mlp: wide", hidden = [64] }]
[[experiment]]
name = "numbered trials"
test = true
variants = [{ label = "trial 1: small" }, { label = "trial 2: wide", hidden = [64] }]''')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1"))
    run_study(load_study(str(tiny_study)), tmp_path / "S")
    assert drawn["trials"] == ["mlp: small", "mlp: wide"]  # one line each, not one "mlp"
    assert drawn["numbered trials"] == ["trial 1", "trial 2"]  # short where that stays unique
    # a name with a space: its figure's path has none (Markdown showed the image as text)
    assert "(plots/numbered-trials-curves.png)" in (tmp_path / "S" / "report.md").read_text()
    assert (tmp_path / "S" / "plots" / "numbered-trials-curves.png").is_file()


def test_a_damaged_final_model_is_trained_again_and_its_figure_drawn(tiny_study, tmp_path):
    """It stopped every re-run with a fix naming --overwrite, which study does not take; then
    the report left the grid of mistakes out and told `train --out` into the study's run
    folder, which train refuses (review). The study run again mends it: a model that is not
    torch's file is trained again, and the report draws its grid."""
    from mnistlab.cli import main

    out = tmp_path / "my study"
    run_study(load_study(str(tiny_study)), out)
    first = next(r for r in csv.DictReader((out / "results.csv").open())
                 if r["experiment"] == "final" and r["seed"] == "0")["run"]
    for junk in (b"junk", _zip_of(b"not torch's")):  # cut short; a zip, but not a model
        (out / "runs" / first / "model.pt").write_bytes(junk)
        with pytest.warns(UserWarning, match=rf"runs/{first} \(its model.pt unreadable: "
                          r"trained again\)"):
            assert main(["study", str(tiny_study), "--out", str(out), "--quiet"]) == 0
        report = (out / "report.md").read_text()
        assert "left out" not in report and "final-misclassified.png" in report
    # where it cannot be read all the same, the rest of the report stands
    from mnistlab.report import study as study_report

    result = train_study(load_study(str(tiny_study)), out)
    (out / "runs" / first / "model.pt").write_bytes(b"junk")
    study_report.write_study_report(result, "en")
    assert f"The images the final model gets wrong are left out: {out}/runs/{first}/model.pt: " \
           "damaged" in (out / "report.md").read_text()
    assert "Run this command again: it trains the final model again in its folder." in \
        " ".join((out / "report.md").read_text().split())
    # in Spanish, the tool's own English words are said to be a quotation, not the report's
    study_report.write_study_report(result, "es")
    assert ("clasifica mal; el motivo, tal como lo dan los mensajes de mnistlab (en inglés): "
            f"«{out}/runs/{first}/model.pt: damaged") in (out / "report.md").read_text()


def _zip_of(data: bytes) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", data)
    return buffer.getvalue()


def test_diverged_runs_are_marked_in_the_tables_and_a_diverged_final_fails_the_command(
        tiny_study, tmp_path, capsys):
    from mnistlab.cli import main

    text = tiny_study.read_text().replace("values = [0.01, 0.05]", "values = [0.05, 50.0]")
    tiny_study.write_text(text.replace("settings = { epochs = 2 }",
                                       "settings = { epochs = 2, lr = 50.0 }")
                          .replace('choose = "best"', 'choose = "explicit"'))
    out = tmp_path / "S"
    assert main(["study", str(tiny_study), "--out", str(out), "--quiet"]) == 1
    assert "the final model diverged" in capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "| 50 (diverged in 2 of 2 runs) |" in report
    assert "**The final model diverged** in 2 of 2 runs" in report
    assert not (out / "plots" / "final-misclassified.png").exists()
    # the doctor names each setting once, its seeds after it
    section = report.split("## Training doctor")[1].split("\n## ")[0]
    assert "lr=50 (seeds 0, 1); the final model (seeds 0, 1)" in section, section
    # `mnistlab doctor STUDY` names each run as the report does, not by its key alone (the
    # base's folder also holds the 1-epoch run, read off its history)
    capsys.readouterr()
    assert main(["doctor", str(out)]) == 1
    said = capsys.readouterr().out
    for name in ("lr=50, seed 1", "the final model, seed 0", "the base, seed 1"):
        assert f"({name})" in said, said
    assert main(["doctor", str(out), "--lang", "es"]) == 1
    assert "(tasa de aprendizaje 50, semilla 0)" in capsys.readouterr().out
    # fewer seeds than before: the doctor names only the runs this report shows, by name
    assert main(["study", str(tiny_study), "--out", str(out), "--quiet", "--seeds", "1"]) == 1
    section = (out / "report.md").read_text().split("## Training doctor")[1].split("\n## ")[0]
    keys = {row["run"] for row in csv.DictReader((out / "results.csv").open())}
    stored = {p.name for p in (out / "runs").iterdir()}
    assert stored - keys and not [key for key in stored if key in section]
    assert "seed 1" not in section


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("best, which", [("0.05", "base"), ("0.2", "reference")])
def test_a_single_seed_conclusion_names_the_best_value_even_when_it_is_the_reference(
        tiny_study, tmp_path, lang, best, which):
    """With one seed the conclusion picked the best of the values *other than* the reference
    (the base's, 0.05, or the first where the base's is not among them): "best value 1e-06
    (-60 points over the base)", for the worse value."""
    text = _without_original(tiny_study).replace("values = [0.01, 0.05]",
                                                 f"values = [{best}, 1e-06]")
    # and a final model on every training image: its report said "Validation accuracy —%"
    tiny_study.write_text(text.replace("{ epochs = 2 }", "{ epochs = 2, val_size = 0 }"))
    spec = dataclasses.replace(load_study(str(tiny_study)), seeds=1)
    run_study(spec, tmp_path / "S", options=StudyOptions(lang=lang))
    report = (tmp_path / "S" / "report.md").read_text()
    [line] = [line for line in report.split("\n## ")[-1].splitlines()
              if line.startswith("- **learning-rate**")]
    words = {"base": "the base", "reference": "the reference"} if lang == "en" else \
        {"base": "la base", "reference": "la referencia"}
    shown = best if lang == "en" else best.replace(".", ",")
    assert line.startswith(f"- **learning-rate**: {'best value' if lang == 'en' else 'mejor valor'}"
                           f" {shown}, {words[which]} (")
    assert "1e-06" not in line
    assert ("No validation accuracy: it trained on all of its 2,000 training images"
            if lang == "en" else
            "Sin exactitud de validación: se entrenó con todas sus 2.000 imágenes") in report
    assert "—%" not in report


def test_a_conclusion_beyond_the_noise_says_what_it_was_measured_against(tiny_study, tmp_path):
    """For an experiment without the base value the differences are measured against its first
    value; the line said only "changed validation accuracy beyond the noise (+2.67 points)",
    read as against the base, which the summary table showed within the noise."""
    tiny_study.write_text(_without_original(tiny_study).replace("values = [0.01, 0.05]",
                                                                "values = [0.2, 1e-06]"))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    for lang, said in (("en", "- **learning-rate**: 1e-06 changed validation accuracy beyond "
                              "the noise, against the reference (0.2) (1e-06: -"),
                       ("es", "- **learning-rate**: la exactitud de validación cambió fuera del "
                              "ruido con 1e-06, frente a la referencia (0,2) (1e-06: -")):
        assert said in to_markdown(build_document(result, lang)), lang


@pytest.mark.filterwarnings("error:.*does nothing in any run")  # needed or zero: unsaid
def test_validating_on_the_test_set_needs_no_images_held_out():
    """val_from = "test" with val_size 0 was refused as "no validation"; and the final model may
    train on every training image (its report says so instead of "—%")."""
    from mnistlab.config import tomllib

    spec = parse_study(tomllib.loads("[base]\nval_from = 'test'\nval_size = 0\n[[experiment]]\n"
                                     "name = 'x'\nfactor = 'lr'\nvalues = [0.1]\n[final]\n"
                                     "choose = 'best'\nsettings = { val_size = 0 }\n"))
    assert spec.base.val_size == 0 and spec.final.settings == {"val_size": 0}


@pytest.mark.parametrize("experiment, varied", [
    ("factor = 'val_from'\nvalues = ['train', 'test']", "val_from"),
    ("factor = 'val_size'\nvalues = [300, 500]", "val_size"),
    ("variants = [{ label = 'a' }, { label = 'b', dataset = 'fashion-mnist' }]", "dataset"),
    ("grid = { data_seed = [0, 1], lr = [0.1] }", "data_seed"),
    # spelt with a dash in a variant: it went past the check, the final model chosen by its
    # test score (hunt)
    ("variants = [{ label = 'a', lr = 0.1, \"val-from\" = 'test' }]", "val_from"),
    ("variants = [{ label = 'a', \"data-seed\" = 3 }]", "data_seed"),
    # trials scored on the test set are chosen among too (review)
    ("test = true\nfactor = 'val_from'\nvalues = ['train', 'test']", "val_from")])
def test_the_best_is_not_chosen_among_variants_judged_on_other_measures(experiment, varied):
    """An experiment varying val_from with [final] choose = "best": its "test" variant's
    validation accuracy was its test score, compared with the others', and the final model
    took val_from = "test". Refused as a search refuses it; chosen by hand, it may."""
    from mnistlab.config import tomllib

    text = ("[base]\nval_size = 300\n[[experiment]]\nname = 'x'\n" + experiment +
            "\n[final]\nchoose = 'best'\n")
    with pytest.raises(MnistlabError, match=f"experiment 'x' varies {varied}, and \\[final\\] "
                       "choose = \"best\" picks by validation accuracy: each must "):
        parse_study(tomllib.loads(text))
    parse_study(tomllib.loads(text.replace("'best'", "'explicit'\nsettings = { lr = 0.1 }")))


def test_experiments_whose_figures_would_share_a_file_get_files_of_their_own():
    """"lr 1" and "lr-1" both drew plots/lr-1-points.png: the first section showed the
    second's plots. Names differing in case share a file where the disk ignores case, and
    an experiment named final the final model's curves."""
    from mnistlab.config import tomllib

    names = ["lr 1", "lr-1", "LR-1", "final", "a b"]
    spec = parse_study(tomllib.loads("[base]\nval_size = 300\n" + "".join(
        f"[[experiment]]\nname = '{name}'\nfactor = 'lr'\nvalues = [0.1]\n" for name in names)))
    assert spec.figure_stems() == {"lr 1": "lr-1", "lr-1": "lr-1-2", "LR-1": "LR-1-3",
                                   "final": "final-2", "a b": "a-b"}


def test_a_final_model_that_is_a_variant_keeps_its_rows_in_results_csv(tiny_study, tmp_path):
    """[final] settings that make a trial's run (a test experiment's, lr 0.01 here): the final
    model is that run, and results.csv, one row per distinct run, kept the trial's rows and
    lost the final's."""
    text = _epochs_replaced_by(tiny_study, '[[experiment]]\nname = "trials"\ntest = true\n'
                               'variants = [{ label = "slow", lr = 0.01 }]')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1").replace(
        'choose = "best"\nsettings = { epochs = 2 }', 'choose = "explicit"\n'
        'settings = { lr = 0.01 }'))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    [final] = result.final_rows
    assert final.key in {r.key for r in result.rows if r.value == "slow"}  # one run, two roles
    rows = list(csv.DictReader((tmp_path / "S" / "results.csv").open()))
    assert [(r["experiment"], r["value"]) for r in rows if r["run"] == final.key] == [
        ("trials", "slow"), ("final", "final")]
    # `doctor` names that run as the final model, and the base's by name, also where only
    # one experiment holds the base's runs (results.csv then keeps its experiment's row)
    from mnistlab.study.run import run_names

    names = run_names(tmp_path / "S", "en")
    assert names[final.key] == "the final model, seed 0"
    [base] = {r.key for r in result.rows if r.is_base}
    assert names[base] == "the base, seed 0"


def test_a_best_final_the_experiments_trained_is_scored_not_trained_again(tiny_study, tmp_path,
                                                                          capsys):
    """[final] choose = "best" whose settings a variant's run has (here the best learning
    rate, the only experiment): the final model's runs are those runs scored on the test set
    as `mnistlab evaluate` scores them, not the same network trained a second time (one run
    per seed saved); the report says so."""
    text = _epochs_replaced_by(tiny_study, "")
    tiny_study.write_text(text.replace('settings = { epochs = 2 }\n', ""))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    assert len(result.final_rows) == 2
    for final in result.final_rows:
        summary = result.summaries[final.key]
        [source] = [r for r in result.rows if r.key == summary.scored_from]
        assert source.seed == final.seed and result.final_config is not None
        assert source.experiment == "learning-rate"
        assert float(source.value) == result.final_config.lr
        runs_dir = tmp_path / "S" / "runs"
        assert ((runs_dir / final.key / "metrics.csv").read_text()
                == (runs_dir / source.key / "metrics.csv").read_text())
        assert final.val_accuracy == source.val_accuracy and source.test_accuracy is None
        assert main(["evaluate", str(runs_dir / source.key), "--json"]) == 0
        assert final.test_accuracy == json.loads(capsys.readouterr().out)["accuracy"]
        assert (runs_dir / final.key / "confusion.png").is_file()
    report = (tmp_path / "S" / "report.md").read_text()
    assert ("which the experiments had trained already: the final model's 2 runs are those "
            "runs, each scored on the test set once chosen") in report
    # the conclusions count a network once: its scored copies are not more trained runs
    gap = {r.key for r in result.rows + result.final_rows
           if any(f.code == "val-above-train" for f in result.summaries[r.key].diagnoses)}
    scored = {r.key for r in result.final_rows if result.summaries[r.key].scored_from}
    assert gap & scored and f"In {len(gap - scored)} trained runs" in report
    # and the doctor's section names each network once: as the variant it was trained as
    doctor = report.split("## Training doctor")[1].split("\n## ")[0]
    assert "val-above-train" in doctor and "the final model" not in doctor
    assert ", the final model's apart" not in report  # no run was trained for it


def test_an_explicit_final_a_variant_trains_waits_for_it_and_is_scored(tiny_study, tmp_path):
    """[final] choose = "explicit" with a variant's settings (lr 0.01): the final model used to
    train beside the experiments, the same network twice; it now waits for the variant's run
    and is that run scored on the test set."""
    text = _epochs_replaced_by(tiny_study, "").replace("seeds = 2", "seeds = 1")
    tiny_study.write_text(text.replace('choose = "best"\nsettings = { epochs = 2 }',
                                       'choose = "explicit"\nsettings = { lr = 0.01 }'))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    [final] = result.final_rows
    [variant] = [r for r in result.rows if r.experiment == "learning-rate" and r.value == "0.01"]
    assert result.summaries[final.key].scored_from == variant.key != final.key
    assert final.val_accuracy == variant.val_accuracy and final.test_accuracy is not None
    assert ("the final model's 1 run is that run, scored on the test set once chosen"
            in (tmp_path / "S" / "report.md").read_text())


def test_trial_conclusions_quote_the_trials_table_means(tiny_study, tmp_path):
    """The lenet-challenge report said 'every trial reaches at least 93.32%' (one seed's figure)
    under a table of means whose lowest was 95.08 ± 1.75, and 'the correct trials reach 96.82%'
    where no mean reached 96.6. Both now quote the table's means: the lowest of the trials the
    original ran (those with an `original`), and the best of all trials trained right."""
    text = _epochs_replaced_by(tiny_study, '''[[experiment]]
name = "trials"
test = true
variants = [{ label = "trial 0: tiny" },
            { label = "trial 1: wide", hidden = [64], original = { acc = 0.9, loss = 0.33 } }]
[[experiment]]
name = "failure"
test = true
variants = [{ label = "x", loss = "bce", metric = "binary-accuracy", shuffle_labels = true }]''')
    # the trials alone: no other experiment's runs, no final model
    text = text.replace("values = [0.01, 0.05]", "values = [0.05]")
    tiny_study.write_text(text.replace('choose = "best"\nsettings = { epochs = 2 }',
                                       'choose = "none"'))
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    means = {value: statistics.mean(r.test_accuracy for r in result.rows
                                    if r.experiment == "trials" and r.value == value)
             for value in ("trial 0: tiny", "trial 1: wide")}
    best = max(means, key=means.get)
    report = (tmp_path / "S" / "report.md").read_text()
    # the trials table's caption: "Accuracies in %." over a metric of 0.8705 and a loss
    assert "*Train, validation and test accuracies in %; the reported metric" in report
    conclusions = report.split("## Conclusions")[1]
    assert f"reach up to {means[best] * 100:.2f}% mean test accuracy ({best})" in conclusions
    true = statistics.mean(r.val_accuracy for r in result.rows if r.experiment == "failure")
    assert f"while its true accuracy is {true:.4f}" in conclusions  # the seeds' mean, not one
    assert ("Each trial the original ran, trained right here, reaches at least "
            f"{means['trial 1: wide'] * 100:.2f}% mean test accuracy (lowest: trial 1: wide)"
            ) in conclusions


def test_the_method_names_only_the_layer_sizes_the_base_model_has():
    """A LeNet-5 base was described with 'hidden=128-64', a setting it does not use."""
    from mnistlab.config import TrainConfig
    from mnistlab.report.study import _config_text

    assert "hidden" not in _config_text(TrainConfig(model="lenet5"), "en")
    cnn = _config_text(TrainConfig(model="cnn"), "en")
    assert "filters=32-64-128" in cnn and "dense=256-128" in cnn and "hidden" not in cnn
    assert "hidden=128-64" in _config_text(TrainConfig(model="mlp"), "en")


@pytest.mark.parametrize(("preset", "said"), [
    ("fashion-hparams", "epochs=10, activation=relu, schedule=constant"),
    ("lenet-challenge", "epochs=5, variant=classic, schedule=constant")])
def test_the_method_names_every_base_setting_that_differs_from_train_s_defaults(preset, said):
    """The base line left out the study's constant schedule (train anneals by default) and
    LeNet-5's classic variant: read as train flags, it trained another network (42.92% where
    the study's base had 50.66%)."""
    from mnistlab.report.study import _config_text

    spec = load_study(preset)
    assert _config_text(spec.base, "en").endswith(said)
    assert "seed" not in _config_text(spec.base.replace(seed=3, device="cpu"), "en")
    # nor what the model or the optimizer does not read (review: "hidden=32" of a cnn)
    from mnistlab.config import TrainConfig

    shown = _config_text(TrainConfig(model="cnn", hidden=(32,), optimizer="adam",
                                     momentum=0.5), "en")
    assert "hidden" not in shown and "momentum" not in shown, shown
    assert "filters" not in _config_text(TrainConfig(model="mlp", filters=(8, 16)), "en")


def test_the_report_s_doctor_names_the_base_s_runs_as_the_base(study_reference, tmp_path):
    """The base's runs were named after the last experiment that lists them ("epochs=3")."""
    import shutil

    from mnistlab.records import Finding

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    keys = {r.key for r in result.rows if r.is_base}
    assert keys and keys <= set(result.summaries)
    for key in keys:
        result.summaries[key] = dataclasses.replace(result.summaries[key], diagnoses=[
            Finding("too-slow", "warning", {"lr": 0.05, "slow_lr": 0.1})])
    section = to_markdown(build_document(result)).split("## Training doctor")[1]
    assert "in 2 runs: the base (seeds 0, 1)" in section and "epochs=3" not in section, section


def test_a_value_s_difference_from_the_base_is_measured_seed_by_seed(study_reference,
                                                                      tmp_path):
    """Seed k of a value and of the base start alike: the table's interval is the paired one
    (Welch's, for independent samples, called a difference every seed showed noise)."""
    import shutil

    from mnistlab.study.stats import paired

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    lr = [r for r in result.rows if r.experiment == "learning-rate" and r.value == "0.01"]
    base = {r.seed: r.val_accuracy for r in result.rows if r.is_base}
    diff = paired({r.seed: r.val_accuracy for r in lr}, base)
    assert diff.paired and diff.has_interval
    section = to_markdown(build_document(result)).split("learning-rate")[1].split("\n#")[0]
    [row] = [line for line in section.splitlines() if line.startswith("| 0.01 |")]
    assert f"[{diff.low * 100:+.2f}, {diff.high * 100:+.2f}]" in row, row
    assert "seed-by-seed differences" in to_markdown(build_document(result))


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_final_model_s_train_accuracy_and_gap_are_given(study_reference, tmp_path, lang):
    """The final model's section gave validation and test only: its train accuracy and its
    gap, which every experiment's table gives, were in results.csv alone."""
    import shutil

    from mnistlab.study.stats import summarize

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    rows = result.final_rows
    final = to_markdown(build_document(result, lang)).split(
        "\n## Final model" if lang == "en" else "\n## Modelo final")[1].split("\n## ")[0]
    figures = [summarize([getattr(r, name) for r in rows]).format(lang=lang)
               for name in ("train_accuracy_eval", "train_accuracy_running", "gap")]
    said = ("Train accuracy {}% in eval mode and {}% running" if lang == "en" else
            "Exactitud de entrenamiento {}% en modo evaluación y {}% en marcha")
    assert said.format(*figures[:2]) in final, final
    assert (f"is {figures[2]} points" if lang == "en" else f"es de {figures[2]} puntos") in final


@pytest.mark.parametrize("choose", ["explicit", "best"])
@pytest.mark.parametrize("better", [("0.01",), ("0.01", "1")])
def test_changes_recommended_together_are_said_to_be_untried_together(study_reference,
                                                                      tmp_path, better, choose):
    """The recommendations combined one-factor winners (lr 0.01, measured with SGD, beside
    Adam) without a word that they were never trained together; where the final model takes
    the best values (choose = "best"), it trains them together, and nothing is said."""
    import shutil

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    base = {r.seed: r.val_accuracy for r in result.rows if r.is_base}
    rows = [dataclasses.replace(r, val_accuracy=base[r.seed] + 0.05 + 0.002 * r.seed)
            if not r.is_base and r.value in better else r for r in result.rows]
    spec = dataclasses.replace(result.spec, final=dataclasses.replace(result.spec.final,
                                                                      choose=choose))
    result = dataclasses.replace(result, rows=rows, spec=spec)
    report = to_markdown(build_document(result))
    recommended = report.split("### Recommended configuration")[1].split("\n## ")[0]
    assert recommended.count(" points over the base (") == len(better), recommended
    assert ("together they were never trained" in recommended) == (
        len(better) > 1 and choose == "explicit")


def test_the_report_s_doctor_tells_a_finding_once_per_fix(study_reference, tmp_path):
    """Runs sharing a finding's code were told with the first one's words: a collapse from
    labels shuffled on purpose and one from a learning rate too high got the same fix."""
    import shutil

    from mnistlab.records import Finding

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    keys = sorted(result.summaries)[:3]
    for key, cause in zip(keys, ({}, {"cause": "shuffled"}, {"cause": "shuffled"})):
        result.summaries[key] = dataclasses.replace(result.summaries[key], diagnoses=[
            Finding("collapse", "problem", {"share": 0.97, "cls": "3", **cause})])
    section = to_markdown(build_document(result)).split("## Training doctor")[1]
    items = [line for line in section.splitlines() if "(`collapse`)" in line]
    assert len(items) == 2, section
    assert sum("--shuffle-labels" in item for item in items) == 1
    assert sum("in 2 runs" in item for item in items) == 1, items


def test_the_original_s_claims_are_quoted_only_where_the_study_makes_them(study_reference,
                                                                           tmp_path):
    """Any `original` figures made the conclusions say "The original validated on the test
    set" and quote its "validation beats training", which a user's original may not have
    said (its validation 70 below its training 71). The first needs the study's word
    (original_val_from = "test", as fashion-hparams gives); the second, figures that show it."""
    import shutil

    from mnistlab.records import Finding

    assert load_study("fashion-hparams").original_val_from == "test"
    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    key = next(iter(result.summaries))  # a run with the finding, so the line is written
    result.summaries[key] = dataclasses.replace(result.summaries[key], diagnoses=[
        Finding("val-above-train", "warning", {"running": 0.5, "val": 0.6, "eval": 0.7})])
    report = to_markdown(build_document(result))  # the tiny original: val 71 above train 70
    assert "the original's 'validation beats training'" in report
    # hunt: the quick form, which leaves the original's figures out, quoted its claim still
    quick = to_markdown(build_document(dataclasses.replace(
        result, spec=dataclasses.replace(result.spec, is_quick=True))))
    assert "the original's 'validation beats training'" not in quick
    assert "'validation beats training' there is a measurement artefact" in quick
    assert "The original validated on the test set" not in report
    [variant] = [v for e in result.spec.experiments for v in e.variants if v.original]
    variant.original.update(val=70.0, train=71.0)
    said = to_markdown(build_document(dataclasses.replace(result, spec=dataclasses.replace(
        result.spec, original_val_from="test"))))
    assert "the original's 'validation" not in said and "there is a measurement artefact" in said
    assert "The original validated on the test set" in said


def test_the_doctor_names_a_study_s_runs_as_its_report_does(study_reference, capsys):
    """`mnistlab doctor STUDY --lang es` named a run "tasa de aprendizaje 0.01": its label
    as results.csv stores it, where the report reads 0,01."""
    from mnistlab.cli import main

    main(["doctor", str(study_reference("1").parent), "--lang", "es"])
    said = capsys.readouterr().out
    assert "(tasa de aprendizaje 0,01, semilla 0)" in said, said
    assert "(el modelo final, semilla 1)" in said and "(la base, semilla 1)" in said


def test_rows_far_from_the_original_are_named_as_the_report_names_their_experiment(
        study_reference, tmp_path):
    """The conclusion listing rows more than 3 points from the original's named them by the
    experiment's key (`learning-rate=0,05`), English in a Spanish report; it now reads as the
    experiment's heading does."""
    import shutil

    finished = study_reference("1").parent
    text = (finished.parent / "tiny.toml").read_text()
    text = text.replace('name = "learning-rate"', 'name = "learning-rate"\n'
                        'title = "learning rate"\nes = { title = "tasa de aprendizaje" }')
    (tmp_path / "tiny.toml").write_text(text.replace("val = 71.0", "val = 1.5"))
    shutil.copytree(finished, tmp_path / "S")
    lines = {}
    for lang in ("en", "es"):  # finished: only the report is written
        run_study(str(tmp_path / "tiny.toml"), tmp_path / "S",
                  options=StudyOptions(workers=1, lang=lang))
        report = (tmp_path / "S" / "report.md").read_text()
        [lines[lang]] = [line for line in report.splitlines()
                         if line.startswith(("- Where our numbers", "- Donde nuestros"))]
    assert ": learning rate 0.05 (" in lines["en"] and "vs 1.50)." in lines["en"]
    assert ": tasa de aprendizaje 0,05 (" in lines["es"] and "frente a 1,50)." in lines["es"]


def test_an_original_validation_figure_alone_is_in_its_table(study_reference, tmp_path):
    """`original = { val = 71.0 }`, the form docs/studies.md gives, was left out of the table
    ("—") where it was drawn in the plot and counted in the conclusions (hunt)."""
    import shutil

    finished = study_reference("1").parent
    text = (finished.parent / "tiny.toml").read_text()
    (tmp_path / "tiny.toml").write_text(text.replace("train = 70.0, val = 71.0", "val = 71.0"))
    shutil.copytree(finished, tmp_path / "S")
    run_study(str(tmp_path / "tiny.toml"), tmp_path / "S", options=StudyOptions(workers=1))
    report = (tmp_path / "S" / "report.md").read_text()
    [row] = [line for line in report.splitlines() if line.startswith("| 0.05")]
    assert row.endswith("| — / 71.00 |"), row


def test_a_folder_whose_study_db_is_gone_still_refuses_another_study(study_reference,
                                                                       tmp_path):
    """With study.db deleted (or moved aside, as the damaged-store error advises), another
    study trained into the folder and replaced its report and results.csv."""
    import shutil

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    (tmp_path / "S" / "study.db").unlink()
    results = (tmp_path / "S" / "results.csv").read_text()
    other = (finished.parent / "tiny.toml").read_text().replace('name = "tiny"',
                                                                 'name = "other"')
    (tmp_path / "other.toml").write_text(other)
    with pytest.raises(MnistlabError, match="holds another study \\('tiny'\\); use another "
                       "--out"):
        run_study(str(tmp_path / "other.toml"), tmp_path / "S", options=StudyOptions(workers=1))
    (tmp_path / "changed.toml").write_text((finished.parent / "tiny.toml").read_text()
                                           .replace("epochs = 3", "epochs = 4", 1))
    with pytest.raises(MnistlabError, match="holds this study made from other settings "
                       "\\(base epochs 3 -> 4\\)"):
        run_study(str(tmp_path / "changed.toml"), tmp_path / "S",
                  options=StudyOptions(workers=1))
    assert (tmp_path / "S" / "results.csv").read_text() == results
    assert not (tmp_path / "S" / "study.db").exists()
    # its own study takes it back, from its runs
    run_study(str(finished.parent / "tiny.toml"), tmp_path / "S", options=StudyOptions(workers=1))
    assert (tmp_path / "S" / "results.csv").read_text() == results


@pytest.mark.parametrize("where,said", [
    ("variant", "experiment 'learning-rate', variant 0.05: device: {device} was asked for but "),
    ("final", "[final] settings: device: {device} was asked for")])
def test_a_device_a_run_asks_for_and_this_machine_lacks_is_refused_before_any_run(
        tiny_study, tmp_path, where, said, missing_device):
    """A variant's device = "cuda" failed after the other variants had trained; the file
    mended was then refused as another study, and the runs were stranded."""
    said = said.format(device=missing_device)
    text = tiny_study.read_text()
    text = (text.replace('factor = "lr"\nvalues = [0.01, 0.05]',
                         'variants = [{ label = "0.01", lr = 0.01 }, '
                         f'{{ label = "0.05", lr = 0.05, device = "{missing_device}" }}]')
            if where == "variant" else text.replace(
                "{ epochs = 2 }", f'{{ epochs = 2, device = "{missing_device}" }}'))
    tiny_study.write_text(text.replace('original = { "0.05" = { train = 70.0, val = 71.0 } }\n',
                                       ""))
    with pytest.raises(MnistlabError) as info:
        run_study(load_study(str(tiny_study)), tmp_path / "S")
    assert str(info.value).startswith(f"study tiny: {said}"), info.value
    assert not (tmp_path / "S").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("where", ["base", "variant", "final"])
def test_a_dataset_not_found_is_refused_before_the_folder_is_written(tiny_study, tmp_path,
                                                                      where, monkeypatch):
    """A study on MNIST missing from --data-dir wrote study.db and study.json; the mended
    command, or another study there, was then refused as "holds another study" (hunt)."""
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))  # no copy to fall back on
    text = tiny_study.read_text().replace('original = { "0.05" = { train = 70.0, val = 71.0 } }\n',
                                          "")
    nothing = tmp_path / "nothing"
    if where == "base":
        text = re.sub(r'data_dir = ".*"', f'data_dir = "{nothing}"', text)
    elif where == "variant":
        text = text.replace('factor = "lr"\nvalues = [0.01, 0.05]',
                            'variants = [{ label = "0.01", lr = 0.01 }, { label = "elsewhere", '
                            f'lr = 0.05, data_dir = "{nothing}" }}]')
    else:
        text = text.replace("{ epochs = 2 }", f'{{ epochs = 2, dataset = "{tmp_path / "mine"}" }}')
    tiny_study.write_text(text)
    said = (r"dataset: '.*mine' is neither a known dataset" if where == "final" else
            r"fashion-mnist not found in .*nothing/fashion-mnist \(--data-dir names a folder that "
            r"does not exist\)")
    with pytest.raises(MnistlabError, match=said):
        run_study(load_study(str(tiny_study)), tmp_path / "S")
    assert not (tmp_path / "S").exists()  # nothing trained, nothing written


def test_a_base_dataset_no_run_reads_is_not_asked_for(tiny_idx_dir, tmp_path, monkeypatch):
    """Review: a study comparing two datasets of its own, with [base] on the default mnist,
    was refused because mnist was not there, though no run reads it."""
    from mnistlab.study.run import check_data

    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    shutil.copytree(tiny_idx_dir, tmp_path / "tiny2")
    spec = parse_study({"base": {"model": "mlp"}, "experiment": [
        {"name": "data", "factor": "dataset", "values": [str(tiny_idx_dir),
                                                         str(tmp_path / "tiny2")]}]})
    check_data(spec)  # nothing said
    with pytest.raises(MnistlabError, match="mnist not found"):  # one that reads it is
        check_data(dataclasses.replace(spec, final=dataclasses.replace(
            spec.final, choose="explicit", settings={"epochs": 2})))


def _as_cpu(monkeypatch, device: str) -> None:
    """Every module of ours that resolves devices takes `device` for this CPU: a study can
    then be finished here as it would be on a machine that has it."""
    import mnistlab.device

    real = mnistlab.device.resolve_device
    for module in [m for name, m in sys.modules.items() if name.startswith("mnistlab")]:
        if getattr(module, "resolve_device", None) is real:
            monkeypatch.setattr(module, "resolve_device",
                                lambda name: torch.device("cpu") if name == device else real(name))


def test_a_study_finished_on_a_gpu_rebuilds_its_report_without_one(tiny_study, tmp_path,
                                                                  monkeypatch, missing_device):
    """Devices were checked before the study knew what was left to train: a study finished
    with a `device = "cuda"` variant could not rebuild its report on a CPU machine. Only the
    runs still missing are asked for their device, and before any of them trains."""
    tiny_study.write_text(_without_original(tiny_study).replace(
        'factor = "lr"\nvalues = [0.01, 0.05]', 'variants = [{ label = "0.01", lr = 0.01 }, '
        f'{{ label = "0.05", lr = 0.05, device = "{missing_device}" }}]'))
    with monkeypatch.context() as gpu_machine:
        _as_cpu(gpu_machine, missing_device)
        run_study(str(tiny_study), tmp_path / "S", options=StudyOptions(workers=1))
    (tmp_path / "S" / "report.md").unlink()
    shutil.copytree(tmp_path / "S", tmp_path / "S2")
    run_study(str(tiny_study), tmp_path / "S", options=StudyOptions(workers=1))
    assert (tmp_path / "S" / "report.md").exists()  # rebuilt without a GPU

    def lose(study: Path, which) -> list[str]:
        """Runs lost since (their records and folders), by (settings, scored test)."""
        with Store(study / "study.db") as store:
            keys = [k for k, c, test in store.entries() if which(c, test)]
        with sqlite3.connect(study / "study.db") as db:
            db.executemany("DELETE FROM runs WHERE key = ?", [(k,) for k in keys])
        for key in keys:
            shutil.rmtree(study / "runs" / key)
        return keys

    # a GPU run lost since is asked for before anything trains
    lose(tmp_path / "S", lambda c, test: c["device"] == missing_device)
    results = (tmp_path / "S" / "results.csv").read_text()
    with pytest.raises(MnistlabError, match=f"^study tiny: experiment 'learning-rate', variant "
                       f"0.05: device: {missing_device} was asked for but "):
        run_study(str(tiny_study), tmp_path / "S", options=StudyOptions(workers=1))
    assert (tmp_path / "S" / "results.csv").read_text() == results
    # a CPU run and the final model lost: the final model may take the GPU variant's device,
    # so that is asked for before the CPU run trains (it trained, then the study stopped)
    cpu = lose(tmp_path / "S2", lambda c, test: c["lr"] == 0.01 or test)
    with pytest.raises(MnistlabError, match=f"variant 0.05: device: {missing_device} was asked "
                       r".* \(the final model, still to train, takes the best variants'"):
        run_study(str(tiny_study), tmp_path / "S2", options=StudyOptions(workers=1))
    assert not any((tmp_path / "S2" / "runs" / key).exists() for key in cpu)


def test_quick_on_a_study_without_a_quick_form_says_it_runs_at_full_size(tiny_study):
    """`study FILE --quick` on a file without [quick] trained at full size without a word."""
    spec = load_study(str(tiny_study))
    with pytest.warns(UserWarning, match=r"--quick: study tiny has no \[quick\] table, so it "
                      r"runs at full size; add one to its file"):
        assert StudyOptions(quick=True).apply(spec).base == spec.base
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a study with a quick form, or applied once already
        quick = StudyOptions(quick=True).apply(load_study("fashion-hparams"))
        StudyOptions(quick=True).apply(quick)


def test_warnings_from_study_workers_are_one_line_each(tiny_study, tmp_path):
    """A spawned worker started with Python's two-line format ('…/cache.py:31: UserWarning:'
    and a source line), where the CLI says `warning: …`."""
    text = tiny_study.read_text().replace('device = "cpu"', 'device = "cpu"\nval_from = "test"')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1").replace("epochs = 3",
                                                                          "epochs = 1"))
    done = subprocess.run([sys.executable, "-m", "mnistlab", "study", str(tiny_study), "--out",
                           str(tmp_path / "s"), "--workers", "2", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning: val-from=test: validating on the test set" in done.stderr
    assert "UserWarning" not in done.stderr


def test_replicates_of_an_ensemble_share_no_member(tiny_study):
    """Seeds 0 and 1 of a 3-network ensemble trained members 0-2 and 1-3: two of three the
    same networks, so the spread between seeds (and every noise mark) was too small."""
    text = tiny_study.read_text().replace('device = "cpu"', 'device = "cpu"\nensemble = 3')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 3"))
    spec = load_study(str(tiny_study))
    plan = plan_experiments(spec)
    base = [c for c in plan.cells if c.is_base and c.experiment == "learning-rate"]
    assert [c.seed for c in base] == [0, 1, 2]  # the replicate, as tables show it
    members = [set(range(plan.runs[c.key].config.seed, plan.runs[c.key].config.seed + 3))
               for c in base]
    assert members == [{0, 1, 2}, {3, 4, 5}, {6, 7, 8}]
    finals = plan_final(spec, spec.base.replace(ensemble=2))
    assert [r.config.seed for r in finals] == [0, 2, 4]
    # the seed a run is labelled with (MLflow, TensorBoard folders) is its tables' seed
    assert all(plan.runs[c.key].config.replicate_seed(0) == c.seed for c in plan.cells)
    assert [r.config.replicate_seed(0) for r in finals] == [0, 1, 2]


def test_two_experiments_setting_one_setting_give_the_final_the_better_value(tiny_study):
    """An lr factor whose best is 0.05 (val 0.60) and a one-variant experiment with lr 0.0005
    (val 0.29): the later experiment's lr replaced the better one without a word."""
    from mnistlab.study.run import Row, _choose_final

    tiny_study.write_text(_epochs_replaced_by(tiny_study, '[[experiment]]\nname = "slow"\n'
                                              'variants = [{ label = "slow", lr = 0.0005, '
                                              'schedule = "cosine" }]'))
    spec = load_study(str(tiny_study))

    def row(experiment: str, value: str, val: float) -> Row:
        return Row(experiment, "", value, 0, "k", False, 3, val, val, val, 1.0, None, None, 1.0,
                   "completed")

    rows = [row("learning-rate", "0.01", 0.5), row("learning-rate", "0.05", 0.6),
            row("slow", "slow", 0.29)]
    final = _choose_final(spec, rows)
    assert (final.lr, final.schedule) == (0.05, "cosine")  # the better lr; the rest combined
    rows[-1] = row("slow", "slow", 0.7)
    assert _choose_final(spec, rows).lr == 0.0005
    # an experiment without the base value whose best is below the base's own runs changes
    # nothing: its best was taken, and the final trained worse than the base (bug hunt)
    rows = [dataclasses.replace(row("learning-rate", "0.05", 0.6), is_base=True),
            row("learning-rate", "0.01", 0.5), row("slow", "slow", 0.55)]
    final = _choose_final(spec, rows)
    assert (final.lr, final.schedule) == (0.05, "constant")


def test_the_final_model_s_configuration_names_what_it_changed_from_the_base():
    """It listed model, sizes, dropout, optimizer, lr, batch size and epochs only: a final
    model with another schedule, label smoothing or an ensemble read as the base."""
    from mnistlab.config import TrainConfig
    from mnistlab.report.study import _config_text

    base = TrainConfig(model="mlp", hidden=(16,))
    final = base.replace(schedule="constant", label_smoothing=0.3, ensemble=2, seed=4)
    text = _config_text(final, "en", base)
    assert text.startswith("model=mlp, hidden=16, dropout=")
    assert text.endswith("label_smoothing=0.3, schedule=constant, ensemble=2")
    assert "seed" not in text and _config_text(base, "en", base) == _config_text(base, "en")
    assert "suavizado de etiquetas 0,3" in _config_text(final, "es", base)


def test_the_progress_relay_draws_what_arrived_before_it_was_stopped():
    """A unit's last events (its bar's end) can come after its result; the relay stopped
    without them and a bar stood at 375/500 under a finished study (seen on Ray)."""
    import queue
    import threading

    from mnistlab.progress import Reporter
    from mnistlab.study.backends import start_relay

    seen: list[str] = []

    class Recording(Reporter):
        def step_progress(self, steps: int, loss: float, accuracy: float) -> None:
            seen.append(f"step {steps}")

        def run_ended(self, status: str) -> None:
            seen.append(status)

    events: queue.Queue = queue.Queue()
    for steps in (100, 200):
        events.put((0, "step_progress", (steps, 0.5, 0.9), {}))
    events.put((0, "run_ended", ("completed",), {}))
    stop = threading.Event()
    stop.set()  # the study ended before the relay read anything
    relay = start_relay(events, [[object()]], lambda run, n: Recording(), stop)
    relay.join(timeout=5)
    assert not relay.is_alive() and seen == ["step 100", "step 200", "completed"]


def test_dashed_keys_in_variants_final_and_quick_tables_are_settings():
    """Merged over the base's batch_size, a variant's batch-size was refused as 'given twice'
    (a regression of one refusal meant for a file giving both spellings itself)."""
    from mnistlab.config import tomllib
    from mnistlab.study.spec import parse_study

    spec = parse_study(tomllib.loads(
        "[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'bs'\nvariants = [{ label = 'small', "
        "batch-size = 50 }]\n[final]\nchoose = 'explicit'\nsettings = { batch-size = 40 }\n"
        "[quick]\ntrain-subset = 500\n"))
    assert {r.config.batch_size for r in plan_experiments(spec).runs.values()} == {50}
    assert spec.with_quick().base.train_subset == 500
    assert spec.final.settings == {"batch_size": 40}
    assert [v.changes for e in spec.experiments for v in e.variants] == [{"batch_size": 50}]


def test_a_grid_cell_s_run_is_named_by_its_label_alone(tiny_study):
    """MLflow and TensorBoard named it 'optimizer×hidden=optimizer=adam, hidden=16 seed 0'
    (its folder optimizer-hidden=optimizer=adam-hidden=16-seed-0-…)."""
    from mnistlab.study.run import run_label
    from mnistlab.tracking.jobs import run_folder_name

    tiny_study.write_text(_epochs_replaced_by(tiny_study, '[[experiment]]\nname = "grid"\n'
                                              'grid = { optimizer = ["adam"], hidden = [[16]] }'))
    spec = load_study(str(tiny_study))
    plan = plan_experiments(spec)
    [cell] = [c for c in plan.cells if c.experiment == "grid" and c.seed == 0]
    assert str(run_label(spec, plan, cell.key, 0)) == "optimizer=adam, hidden=16 seed 0"
    assert run_folder_name(str(run_label(spec, plan, cell.key, 0)), cell.key).startswith(
        "optimizer=adam-hidden=16-seed-0-")
    lr = next(c for c in plan.cells if c.experiment == "learning-rate" and not c.is_base)
    assert str(run_label(spec, plan, lr.key, 1)) == "lr=0.01 seed 1"
    # a grid of one factor: its label names the setting already ("epochs=epochs=3")
    tiny_study.write_text(tiny_study.read_text().replace(
        'grid = { optimizer = ["adam"], hidden = [[16]] }', 'grid = { epochs = [1, 2] }'))
    spec = load_study(str(tiny_study))
    plan = plan_experiments(spec)
    [cell] = [c for c in plan.cells if c.experiment == "grid" and c.seed == 0
              and c.label == "epochs=2"]
    assert str(run_label(spec, plan, cell.key, 0)) == "epochs=2 seed 0"


def _values_replaced(tiny_study: Path, old: str, new: str) -> Path:
    tiny_study.write_text(tiny_study.read_text().replace(f"values = {old}", f"values = {new}")
                          .replace('original = { "0.05" = { train = 70.0, val = 71.0 } }\n', ""))
    return tiny_study


def test_a_tie_for_the_best_value_goes_to_the_base_as_in_the_summary(tiny_study):
    """Two values of one mean: the summary said "keep the base value" and the final model
    was trained with the other (the first listed)."""
    from mnistlab.study.run import Row, best_variants

    spec = load_study(str(tiny_study))

    def row(value: str, seed: int, val: float) -> Row:
        return Row("learning-rate", "lr", value, seed, f"{value}-{seed}", value == "0.05", 3,
                   0.8, 0.8, val, 0.5, None, None, 1.0, "completed")

    rows = [row("0.01", 0, 0.6), row("0.01", 1, 0.7), row("0.05", 0, 0.7), row("0.05", 1, 0.6)]
    assert best_variants(spec, rows)["learning-rate"][0] == "0.05"  # the base's, listed second
    rows[0] = row("0.01", 0, 0.61)
    assert best_variants(spec, rows)["learning-rate"][0] == "0.01"  # a better one still wins
    # without the base value among an experiment's, its best against the base's own runs
    # (the epochs experiment's base): a tie took the variant, the summary kept the base
    from mnistlab.study.run import _choose_final

    spec = load_study(str(_values_replaced(tiny_study, "[0.01, 0.05]", "[0.01, 0.2]")))
    rows = [row("0.01", 0, 0.6), row("0.01", 1, 0.7), row("0.2", 0, 0.5), row("0.2", 1, 0.5)]
    for r in rows:
        r.is_base = False
    rows += [dataclasses.replace(r, experiment="epochs", factor="epochs", value="3",
                                 is_base=True, key=f"base-{r.seed}")
             for r in (row("3", 0, 0.7), row("3", 1, 0.6))]
    assert _choose_final(spec, rows).lr == 0.05
    rows[0] = row("0.01", 0, 0.61)
    rows[0].is_base = False
    assert _choose_final(spec, rows).lr == 0.01


def test_results_csv_marks_the_base_also_where_one_experiment_holds_it():
    """The base was told apart only where several experiments shared it (its rows were then
    relabelled "base"); a study of one factor wrote its base as a variant like the others."""
    from mnistlab.study.run import Row, StudyResult, results_csv

    def row(value: str, seed: int) -> Row:
        return Row("learning-rate", "lr", value, seed, f"{value}-{seed}", value == "0.05", 3,
                   0.8, 0.8, 0.7, 0.5, None, None, 1.0, "completed")

    result = StudyResult(None, Path("S"), None, [row(v, s) for v in ("0.01", "0.05")
                                                 for s in (0, 1)], [], None, {})
    written = list(csv.DictReader(io.StringIO(results_csv(result.distinct_rows()))))
    assert [(r["value"], r["base"]) for r in written] == [
        ("0.01", "false"), ("0.01", "false"), ("0.05", "true"), ("0.05", "true")]


def test_a_tie_in_single_runs_names_the_reference_as_the_summary_table_does():
    """With one seed, two values scoring alike: the summary table gave the reference (a tie
    goes to it), the conclusions "best value 16-32 (+0.00 points over the reference)" (hunt)."""
    import math

    from mnistlab.report.study import _factor_conclusion
    from mnistlab.study.run import Row, StudyResult
    from mnistlab.study.spec import Experiment, Variant
    from mnistlab.study.stats import Difference

    def row(value: str) -> Row:
        return Row("a", "filters", value, 0, value, False, 1, 0.634, 0.634, 0.634, 1.5, None,
                   None, 1.0, "completed")

    exp = Experiment("a", "filters", (Variant("8-16", {}), Variant("16-32", {})))
    result = StudyResult(None, Path("S"), None, [row("8-16"), row("16-32")], [], None, {})
    said = _factor_conclusion(result, exp, [("8-16", None, [row("8-16")]),
                                            ("16-32", Difference(0.0, *[math.nan] * 3),
                                             [row("16-32")])], "en")
    assert said.startswith("**a**: best value 8-16, the reference (no other value scored "
                           "higher"), said
    # two seeds each, every seed alike on both sides: "seeds alike", not "n=1" and "single
    # runs" (review)
    from mnistlab.report.study import _delta_cell

    def seeded(value: str, seed: int, accuracy: float) -> Row:
        return Row("a", "filters", value, seed, value, False, 1, accuracy, accuracy, accuracy,
                   1.5, None, None, 1.0, "completed")

    ref = [seeded("8-16", s, 0.676) for s in (0, 1)]
    other = [seeded("16-32", s, 0.678) for s in (0, 1)]
    cell, diff = _delta_cell("en", other, ref, False)
    assert cell == "+0.20 (seeds alike, no noise estimate)"
    said = _factor_conclusion(result, exp, [("8-16", None, ref), ("16-32", diff, other)], "es")
    assert "con todas las semillas iguales; sin estimación del ruido" in said, said


def test_the_report_s_doctor_example_is_the_same_whichever_run_finished_first(study_reference,
                                                                               tmp_path):
    """The example quoted was the first run with the finding in the order the store returned
    them, which is the order the workers finished in: two runs of one study quoted two runs'
    numbers."""
    from mnistlab.records import Finding

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    result = train_study(load_study(str(finished.parent / "tiny.toml")), tmp_path / "S")
    keys = [r.key for r in result.rows if r.key in result.summaries][:3]  # not snapshots
    for n, key in enumerate(keys):
        result.summaries[key] = dataclasses.replace(result.summaries[key], diagnoses=[
            Finding("val-above-train", "info", {"running": 0.5 + n / 100, "val": 0.6,
                                                "train_eval": 0.61, "margin": 1.0})])

    def section(summaries: dict) -> str:
        report = to_markdown(build_document(dataclasses.replace(result, summaries=summaries)))
        return report.split("## Training doctor")[1].split("\n## ")[0]

    first = section(result.summaries)
    assert first == section(dict(reversed(result.summaries.items())))
    assert "running train accuracy 50.00%" in first  # the plan's first run


def test_a_study_s_report_tells_its_runs_findings_as_the_doctor_does(study_reference, tmp_path):
    """The report told only the findings stored when each run trained, the doctor those
    merged with a fresh diagnosis: a folder trained by an earlier version (whose collapse
    did not yet name labels shuffled on purpose) got one fix in its report and another from
    `mnistlab doctor`."""
    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    spec = load_study(str(finished.parent / "tiny.toml"))
    told = {key: [f.code for f in s.diagnoses]
            for key, s in train_study(spec, tmp_path / "S").summaries.items()}
    assert any(told.values())
    with sqlite3.connect(tmp_path / "S" / "study.db") as db:  # as an earlier version stored it
        for key, summary in db.execute("SELECT key, summary FROM runs").fetchall():
            db.execute("UPDATE runs SET summary = ? WHERE key = ?",
                       (json.dumps({**json.loads(summary), "diagnoses": []}), key))
    again = train_study(spec, tmp_path / "S")
    assert {key: [f.code for f in s.diagnoses] for key, s in again.summaries.items()} == told


def test_the_doctor_on_a_study_that_has_not_finished_says_so(study_reference, tmp_path,
                                                             capsys):
    """On a study stopped part way the doctor told the runs it had trained, "nothing wrong"
    and exit 0, and not a word of the runs it had not started."""
    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    capsys.readouterr()
    main(["doctor", str(tmp_path / "S")])
    assert "has not finished" not in capsys.readouterr().err
    (tmp_path / "S" / "results.csv").unlink()  # as a study stopped before its end leaves it
    main(["doctor", str(tmp_path / "S"), "--lang", "es"])
    said = capsys.readouterr().err
    assert f"nota: {tmp_path / 'S'} es un estudio sin terminar" in " ".join(said.split())


def test_the_doctor_on_a_study_stopped_while_writing_its_report_says_so(study_reference,
                                                                       tmp_path, capsys):
    """Killed (or out of disk) while writing its report, a study has results.csv and no
    report: the doctor said "nothing wrong found" and exit 0 (hunt)."""
    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    (tmp_path / "S" / "report.html").unlink()
    capsys.readouterr()
    main(["doctor", str(tmp_path / "S")])
    said = " ".join(capsys.readouterr().err.split())
    assert f"note: {tmp_path / 'S'} is a study stopped while writing its report" in said


def test_the_report_is_written_while_the_study_s_folder_is_still_held(study_reference,
                                                                       tmp_path, monkeypatch):
    """The folder's lock was let go after results.csv and taken again for the report:
    another study command in between wrote results.csv for 2 seeds, and this one's report
    of 1 seed over it. Both are written in one hold now."""
    import contextlib

    import mnistlab.report.study as report_module
    from mnistlab import files

    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    lock = tmp_path / "S" / "study.lock"
    holds, exclusive = [], files.exclusive

    @contextlib.contextmanager
    def counted(path, *args, **kwargs):
        with exclusive(path, *args, **kwargs):
            holds.append(Path(path) == lock)
            yield

    monkeypatch.setattr(files, "exclusive", counted)
    held = []
    write = report_module.write_study_report
    monkeypatch.setattr(report_module, "write_study_report", lambda result, **kw: (
        held.append(files.held(lock)), write(result, **kw))[1])
    run_study(str(finished.parent / "tiny.toml"), tmp_path / "S")
    assert held == [True] and holds.count(True) == 1


def test_minus_zero_is_the_run_zero_is():
    """A variant's -0.0 was labelled 0 but named another run: JSON hashed "-0.0", and the
    base configuration trained twice."""
    from mnistlab.config import TrainConfig
    from mnistlab.study.plan import run_key

    assert run_key(TrainConfig(momentum=-0.0), False) == run_key(TrainConfig(momentum=0.0), False)
    assert run_key(TrainConfig(momentum=0.9), False) != run_key(TrainConfig(momentum=0.0), False)


def test_a_script_without_a_main_guard_is_told_to_add_one(tmp_path, tiny_idx_dir):
    """The README's `run_study` run as a plain script: each worker process imports it and
    starts the study again, and the user read "a worker process died (killed, or out of
    memory?)" with no word of the guard."""
    study = tmp_path / "micro.toml"
    study.write_text(MICRO.format(data=tiny_idx_dir, choose="none").replace(
        "[final]\nchoose = \"none\"\nsettings = { lr = 0.02 }\n", ""))
    script = tmp_path / "mine.py"
    script.write_text("import mnistlab\nfrom mnistlab import StudyOptions\n"
                      f"mnistlab.run_study({str(study)!r}, {str(tmp_path / 'S')!r}, "
                      "options=StudyOptions(workers=2, cohorts=False))\n")
    done = run_python(str(script))
    assert done.returncode != 0
    assert ("if mine.py starts the study outside `if __name__ == \"__main__\":`, put that call "
            "under it" in done.stderr), done.stderr[-2000:]
    # the worker that imported the script says it itself
    assert "run_study: a worker process imported the script that calls it" in done.stderr


def test_a_script_read_from_standard_input_is_told_to_be_a_file(tmp_path, tiny_idx_dir):
    """`python - < script.py` with workers: they cannot import <stdin>, and the user was
    told to add a main guard the script already had (hunt)."""
    study = tmp_path / "micro.toml"
    study.write_text(MICRO.format(data=tiny_idx_dir, choose="none").replace(
        "[final]\nchoose = \"none\"\nsettings = { lr = 0.02 }\n", ""))
    script = ("import mnistlab\nfrom mnistlab import StudyOptions\n"
              "if __name__ == '__main__':\n"
              f"    mnistlab.run_study({str(study)!r}, {str(tmp_path / 'S')!r}, "
              "options=StudyOptions(workers=2, cohorts=False))\n")
    done = run_python("-", input=script, cwd=tmp_path)
    assert done.returncode != 0
    assert ("worker processes import the script that started them, and <stdin> is no file: "
            "save the script to a file and run that, or use workers=1") in done.stderr, \
        done.stderr[-2000:]


def test_the_python_api_takes_a_path_and_says_what_else_it_takes(tmp_path, tiny_idx_dir):
    """run_study(Path("study.toml")) raised "'PosixPath' object has no attribute 'base'", and
    options={"workers": 1} "'dict' object has no attribute 'apply'"."""
    study = tmp_path / "micro.toml"
    study.write_text(MICRO.format(data=tiny_idx_dir, choose="none").replace(
        "[final]\nchoose = \"none\"\nsettings = { lr = 0.02 }\n", ""))
    result = run_study(study, tmp_path / "S", options=StudyOptions(workers=1))
    assert len(result.rows) == 2 and (tmp_path / "S" / "report.md").is_file()
    with pytest.raises(MnistlabError, match="options: give StudyOptions"):
        run_study(study, tmp_path / "S", options={"workers": 1})
    with pytest.raises(MnistlabError, match="give a study: a preset's name, a study file, a "
                                            "StudySpec or a dict of its keys, not int 3"):
        run_study(3, tmp_path / "S")
    # a dict is read as its file would be; a folder that is none is one line (hunt)
    from mnistlab.config import tomllib

    as_dict = run_study(tomllib.loads(study.read_text()), tmp_path / "S",
                        options=StudyOptions(workers=1))
    assert as_dict.rows == result.rows  # the same study: read back, nothing trained
    with pytest.raises(MnistlabError, match=r"^out: give a folder \(text or a pathlib.Path\), "
                                            r"not int 123$"):
        run_study(study, 123)
    with pytest.raises(MnistlabError, match="study: a study is a table of keys"):
        parse_study([1, 2])
    # True is 1 to Python: it was one seed, one trial
    from mnistlab import TuneOptions

    with pytest.raises(MnistlabError, match="seeds: must be a whole number >= 1, got True"):
        StudyOptions(seeds=True)
    with pytest.raises(MnistlabError, match="trials: must be a whole number >= 1, got True"):
        TuneOptions(trials=True)


def test_the_misclassified_grid_of_a_tta_final_model_shows_what_that_model_gets_wrong(
        tiny_study, tmp_path, monkeypatch):
    """The final model's grid of "misclassified test images" is the model the report scores:
    with --tta, its predictions averaged over the views (it re-scored the plain model, and
    showed images the final model gets right, under predictions it does not make)."""
    import tomllib

    from mnistlab.config import TrainConfig
    from mnistlab.data import load_dataset
    from mnistlab.report import study as report_study
    from mnistlab.runs import load_model
    from mnistlab.training.evaluation import scored_logits

    tiny_study.write_text(tiny_study.read_text().replace(
        "settings = { epochs = 2 }", "settings = { epochs = 1, tta = true }"))
    shown: list[tuple[list[str], list[str]]] = []
    drawn = report_study.plots.misclassified_grid
    monkeypatch.setattr(report_study.plots, "misclassified_grid",
                        lambda images, truth, predicted, title: (
                            shown.append((truth, predicted)) or drawn(images, truth, predicted,
                                                                       title)))
    out = tmp_path / "S"
    assert main(["study", str(tiny_study), "--out", str(out), "--quiet", "--seeds", "1"]) == 0
    first = next(r for r in csv.DictReader(io.StringIO((out / "results.csv").read_text()))
                 if r["experiment"] == "final")["run"]
    run = out / "runs" / first
    config = TrainConfig.from_dict(tomllib.loads((run / "config.toml").read_text()))
    model, payload = load_model(run)
    test = load_dataset(config.dataset, data_dir=config.data_dir)
    images, labels = test.test_images[:2000].unsqueeze(1), test.test_labels[:2000]
    with torch.no_grad():
        predicted = scored_logits(model, images, config, payload["mean"], payload["std"],
                                  True).argmax(dim=1)
    wrong = (predicted != labels).nonzero().flatten()[:32]
    names = payload["class_names"]
    assert shown == [([names[int(i)] for i in labels[wrong]],
                      [names[int(i)] for i in predicted[wrong]])]


def test_a_final_original_figure_the_report_does_not_show_is_refused():
    base = {"name": "x", "base": {"model": "mlp", "hidden": [8]},
            "experiment": [{"name": "lr", "factor": "lr", "values": [0.01, 0.1]}]}
    parse_study({**base, "final": {"original": {"train": 90.0, "val": 88.0}}})
    with pytest.raises(MnistlabError, match=r"\[final\] original: unknown key\(s\) test, vall"):
        parse_study({**base, "final": {"original": {"vall": 88.0, "test": 87.0}}})


def test_the_method_gives_the_base_s_split_when_the_final_model_finished_first(tiny_study,
                                                                               tmp_path):
    """A final model with a split of its own (train_subset, val_size) that finished before the
    experiments' runs gave the Method's "N training images, M validation images"."""
    tiny_study.write_text(tiny_study.read_text().replace(
        'choose = "best"\nsettings = { epochs = 2 }',
        'choose = "explicit"\nsettings = { epochs = 1, train_subset = 500, val_size = 100 }'))
    result = train_study(dataclasses.replace(load_study(tiny_study), seeds=1), tmp_path / "S")
    final = {r.key for r in result.final_rows}
    # as the store hands them back where the final model was recorded first
    result.summaries = {**{k: v for k, v in result.summaries.items() if k in final},
                        **{k: v for k, v in result.summaries.items() if k not in final}}
    english = to_markdown(build_document(result))
    assert "2,000 training images, 1,000 validation images held out" in english, english


def test_a_study_validated_on_the_test_set_says_so_and_not_that_the_test_set_was_kept(
        tiny_study, tmp_path):
    """`val_from = "test"` in the base: the report said the test set was one "which only the
    final models touch", and that the final's test accuracy was "the only time the test set
    was used", where every run had been scored on it; and "as the original did" of a study
    whose original was never said to."""
    text = _epochs_replaced_by(tiny_study, "").replace("val_size = 1000", 'val_from = "test"')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1"))
    with pytest.warns(UserWarning, match="val-from=test: validating on the test set"):
        run_study(load_study(str(tiny_study)), tmp_path / "S")
    report = (tmp_path / "S" / "report.md").read_text()
    assert "validated on the test set itself (10,000 images): every run is scored" in report
    assert "on the test set itself here: the **test accuracy" in report
    assert "only the final models touch" not in report
    assert "the only time the test set was used" not in report
    assert "as the original did" not in report


def test_a_study_without_results_csv_names_its_runs_by_their_settings(tiny_study, tmp_path):
    """`doctor` on a study stopped before it wrote results.csv (the one a user examines) named
    its runs by their keys alone: they are now named from their config.toml, as results.csv
    names them, the final model's too (test-scored: its key says so)."""
    from mnistlab.study.run import run_names

    tiny_study.write_text(tiny_study.read_text().replace('[final]\nchoose = "best"\nsettings '
                                                          '= { epochs = 2 }', '[final]\n'
                                                          'choose = "explicit"\nsettings = '
                                                          '{ lr = 0.01 }'))
    run_study(load_study(str(tiny_study)), tmp_path / "S")
    for lang in ("en", "es"):
        listed = run_names(tmp_path / "S", lang)
        (tmp_path / "S" / "results.csv").rename(tmp_path / "results.csv")
        assert run_names(tmp_path / "S", lang) == listed
        (tmp_path / "results.csv").rename(tmp_path / "S" / "results.csv")
    assert sorted(listed.values()) == sorted(
        f"{name}, semilla {seed}" for seed in (0, 1)
        for name in ("la base", "el modelo final", "tasa de aprendizaje 0,01"))


def test_doctor_names_a_study_file_s_own_variants_in_the_study_s_language(tmp_path,
                                                                        tiny_idx_dir):
    """`doctor --lang es` on a study folder named a study file's own variants by their English
    labels ("trial wide, semilla 0"): study.json kept no translation of them. It keeps them
    now, apart from the identity (a mended translation is the same study)."""
    import json

    from mnistlab.config import tomllib
    from mnistlab.study.run import check_study_folder, run_names

    text = MICRO.format(data=tiny_idx_dir, choose="none").replace(
        '[[experiment]]\nname = "lr"\nfactor = "lr"\nvalues = [0.01, 0.05]\n',
        '[[experiment]]\nname = "width"\n[[experiment.variants]]\nlabel = "wide"\n'
        'hidden = [32]\nes = { label = "ancha" }\n').split("[final]")[0]
    spec = parse_study(tomllib.loads(text))
    train_study(spec, tmp_path / "S", backend=LocalBackend(workers=1))
    assert list(run_names(tmp_path / "S", "es").values()) == ["ancha, semilla 0"]
    (tmp_path / "S" / "results.csv").unlink()  # named by their settings: the same words
    assert "ancha, semilla 0" in run_names(tmp_path / "S", "es").values()
    kept = json.loads((tmp_path / "S" / "study.json").read_text())
    kept["labels"] = {"width": {"wide": {"es": ["ancha"]}}, "lr": 3}  # edited by hand
    (tmp_path / "S" / "study.json").write_text(json.dumps(kept))
    assert "wide, semilla 0" in run_names(tmp_path / "S", "es").values()
    check_study_folder(tmp_path / "S", parse_study(tomllib.loads(text.replace("ancha", "amplia"))))


def test_a_final_trained_before_is_kept_and_the_report_says_which_runs_were_scored(
        tiny_study, tmp_path, monkeypatch):
    """A final model trained (by a version before scoring variants' runs) whose record was lost
    (a stop between its folder's write and study.db's) was scored again from the variant's
    run, its folder rewritten; and with more seeds, the report said every final run was
    scored where one of two had been trained."""
    import mnistlab.study.run as study_run

    text = _epochs_replaced_by(tiny_study, "").replace('settings = { epochs = 2 }\n', "")
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1"))
    with monkeypatch.context() as patch:  # trained, as before
        patch.setattr(study_run, "_score_trained", lambda missing, *_: missing)
        first = run_study(load_study(str(tiny_study)), tmp_path / "S")
    [final] = first.final_rows
    summary = tmp_path / "S" / "runs" / final.key / "summary.json"
    kept = summary.read_text()
    with sqlite3.connect(tmp_path / "S" / "study.db") as db:
        db.execute("delete from runs where key = ?", (final.key,))
    tiny_study.write_text(tiny_study.read_text().replace("seeds = 1", "seeds = 2"))
    again = run_study(load_study(str(tiny_study)), tmp_path / "S")
    assert summary.read_text() == kept and "scored_from" not in kept
    assert [again.summaries[r.key].scored_from is not None for r in again.final_rows] == [
        False, True]
    report = (tmp_path / "S" / "report.md").read_text()
    assert ("of the final model's 2 runs, 1 is that run, scored on the test set once chosen, "
            "not trained a second time; 1 other run was trained for it") in report


def test_the_method_says_what_two_seeds_can_measure_and_which_runs_use_the_test_set(
        tiny_study, tmp_path):
    """With two seeds a paired interval has one degree of freedom: +32 points in both seeds was
    "within noise", and the recommendation kept the base without a word on why. And a study
    of trials scored on test, without a final model, was said to keep its test set for "the
    final models"; a study without one said results.csv held "the final model's rows"."""
    text = _epochs_replaced_by(tiny_study, '[[experiment]]\nname = "trials"\ntest = true\n'
                               'variants = [{ label = "slow", lr = 0.01 }]')
    tiny_study.write_text(text.replace('choose = "best"\nsettings = { epochs = 2 }',
                                       'choose = "none"'))
    run_study(load_study(str(tiny_study)), tmp_path / "S")
    report = (tmp_path / "S" / "report.md").read_text()
    assert "With two seeds each paired interval rests on one degree of freedom" in report
    assert "on which the trials are scored (their tables' test column)." in report
    assert "only the final models" not in report and "final model's rows" not in report
    assert "(one row per distinct run)." in report
    assert "so MLP runs that differ only in seed can train together" in report
    assert "the final model's apart" not in report
    result = run_study(load_study(str(tiny_study)), tmp_path / "S")
    stored = to_markdown(build_document(dataclasses.replace(result, seeds_stored=3)))
    assert "(one row per distinct run, with 2 seeds);" in stored
    # one seed read "de sus 1 semilla" in Spanish (hunt)
    one = to_markdown(build_document(dataclasses.replace(
        result, seeds_stored=3, spec=dataclasses.replace(result.spec, seeds=1)), lang="es"))
    assert "(una fila por ejecución distinta, con 1 semilla);" in one


def test_keeping_the_base_with_two_seeds_says_the_difference_was_not_measurable():
    """Hunt: "optimizer: keep the base value sgd" beside Adam 32 points ahead in both seeds,
    its paired interval at one degree of freedom covering zero; the Method's caveat stood
    far from the recommendation a student reads."""
    from mnistlab.config import tomllib
    from mnistlab.report.study import _recommendation
    from mnistlab.study.stats import Difference

    spec = parse_study(tomllib.loads("[base]\nmodel = 'mlp'\n[[experiment]]\nname = 'o'\n"
                                     "factor = 'optimizer'\nvalues = ['sgd', 'adam']\n"))
    wide = Difference(delta=0.3199, low=-0.1795, high=0.8193, df=1, paired=True)
    said = _recommendation(spec.experiments[0], "sgd", "adam", wide, "en", two_seeds=True)
    assert said.endswith("With two seeds that says little: its +31.99 points were not "
                         "measurable, not shown to be noise; run with `--seeds 3` or more to "
                         "tell.")
    assert "no se pudieron medir" in _recommendation(spec.experiments[0], "sgd", "adam", wide,
                                                     "es", two_seeds=True)
    three = Difference(delta=0.3199, low=-0.01, high=0.65, df=2, paired=True)
    assert "two seeds" not in _recommendation(spec.experiments[0], "sgd", "adam", three, "en")
    # review: +32 in both seeds differ alike, Welch's at 2 degrees of freedom, and went unsaid
    from mnistlab.study.stats import paired

    alike = paired({0: 0.82, 1: 0.52}, {0: 0.50, 1: 0.20})
    assert "With two seeds" in _recommendation(spec.experiments[0], "sgd", "adam", alike, "en",
                                               two_seeds=True)


@pytest.mark.parametrize("lang, line", [
    ("en", "interrupted; what was finished is kept (run the same command again to continue)"),
    ("es", "interrumpido; lo terminado se conserva (vuelve a ejecutar el mismo comando para "
           "continuar)")])
def test_the_interrupted_line_is_in_the_job_s_language(tiny_study, tmp_path, capsys,
                                                       monkeypatch, lang, line):
    """A study or search stopped under --lang es said so in English, where its closing line
    would have been Spanish."""
    import mnistlab.api

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnistlab.api, "run_study", stopped)
    code = main(["study", str(tiny_study), "--lang", lang, "--out", str(tmp_path / "S")])
    assert code == 130 and capsys.readouterr().err.strip() == line


def test_named_variants_and_a_diverged_final_are_said_in_their_own_words(tiny_study, tmp_path):
    """Hunt (Spanish report): an experiment of named variants without the base was "Factor
    `trial`, values varied" and "`trial`: keep the base value the base"; a diverged final's
    test accuracy read "—%", its curves had no title, and one run was "1 of 1 runs"."""
    text = _epochs_replaced_by(tiny_study, '''[[experiment]]
name = "es"
title = "early stop"
es = { title = "parada temprana" }
variants = [{ label = "early", es = { label = "temprana" }, early_stopping = 1, epochs = 2 }]
''').replace("seeds = 2", "seeds = 1")
    tiny_study.write_text(text.replace('choose = "best"\nsettings = { epochs = 2 }',
                                       'choose = "explicit"\nsettings = { lr = 50.0 }')
                          .replace("values = [0.01, 0.05]", "values = [0.01, 0.05, 50.0]")
                          .replace("eval_train_size = 1000", "eval_train_size = 5000"))
    from unittest import mock

    from mnistlab import figures
    from mnistlab.messages import t

    titles, points, curves = [], [], []
    real, real_points, real_curves = (figures.learning_curves, figures.point_chart,
                                      figures.experiment_curves)
    with mock.patch.object(figures, "learning_curves",
                           lambda history, title="", *a, **k: titles.append(title)
                           or real(history, title, *a, **k)), \
            mock.patch.object(figures, "point_chart", lambda labels, *a, **k: points.append(
                (list(labels), list(k["diverged"]))) or real_points(labels, *a, **k)), \
            mock.patch.object(figures, "experiment_curves", lambda c, *a, **k: curves.append(
                list(c)) or real_curves(c, *a, **k)):
        result = run_study(load_study(str(tiny_study)), tmp_path / "S",
                           options=StudyOptions(lang="es"))
    # the diverged value is marked in the figures as in the table (it had no point, unsaid)
    assert (["0,01", "0,05", "50"], [False, False, True]) in points
    assert any(f"50 {t('es', 'diverged_mark.one')}" in c for c in curves), curves
    assert [r.status for r in result.final_rows] == ["diverged"]
    assert t("es", "plot.final_diverged") in titles  # the report's curves of the final model
    report = (tmp_path / "S" / "report.md").read_text()
    assert "`trial`" not in report and "—%" not in report
    assert t("es", "factor.variants") in report
    assert ("La configuración base no está entre estas variantes: las diferencias se miden "
            "frente a la primera, temprana.") in report
    assert "**El modelo final divergió** (su única ejecución:" in report
    # not "test accuracy — (n = 1, the only time the test set was used)": it was not used
    assert "**sin exactitud de prueba**: el modelo final divergió" in report
    conclusions = report.split("## Conclusiones")[1]  # and said again where readers look last
    assert t("es", "concl.final_diverged") in conclusions
    assert "la única vez que se usó el conjunto de prueba" not in report
    # the eval-mode sample is at most the 2,000 training images (it said the 5,000 asked for)
    assert "muestra fija de 2.000 imágenes de entrenamiento" in report
    assert "(divergió: su única ejecución)" in report and " de 1 ejecuciones" not in report


def test_the_final_model_s_running_accuracy_names_the_epoch_it_is_of():
    """An early-stopped final's running figure was said to be of "the last epoch" where it is
    the kept epoch's; seeds of both kinds are each of their own."""
    from types import SimpleNamespace

    from mnistlab.report.study import _kept_epoch_key

    def rows(*statuses):
        return [SimpleNamespace(status=s) for s in statuses]

    assert _kept_epoch_key(rows("completed", "completed")) == "final.train.last"
    assert _kept_epoch_key(rows("early-stopped")) == "final.train.kept"
    assert _kept_epoch_key(rows("early-stopped", "completed")) == "final.train.mixed"
    assert _kept_epoch_key(rows("early-stopped", "diverged")) == "final.train.kept"


def test_a_variants_experiment_s_recommendations_speak_of_variants():
    """Named variants without the base were "the base value is not among them" (and in
    Spanish "el primero", of a variante)."""
    from types import SimpleNamespace

    from mnistlab.report.study import _recommendation

    exp = SimpleNamespace(factor="trial", heading=lambda lang: "early stop")
    better = SimpleNamespace(delta=0.02, low=0.01, high=0.03, has_interval=True,
                             within_noise=False)
    said = _recommendation(exp, "early", "late", better, "en", is_base=False)
    assert said.startswith("early stop = late: +2.00 points over early, the first listed")
    assert said.endswith("the base configuration is not among them.")
    spanish = _recommendation(exp, "temprana", "tardía", better, "es", is_base=False)
    assert "la primera de la lista" in spanish and "la configuración base" in spanish
    single = SimpleNamespace(delta=0.02, has_interval=False, within_noise=False,
                             seeds_alike=False)
    assert "la primera de la lista, en ejecuciones únicas" in _recommendation(
        exp, "temprana", "tardía", single, "es", is_base=False)
    # the best-scoring value within the noise: "no value beat it" was said beside a table where
    # a lower-scoring value beat the base beyond the noise (hunt); it names the best one now
    within = SimpleNamespace(delta=0.037, low=-0.01, high=0.08, has_interval=True,
                             within_noise=True, df=4)
    lr = SimpleNamespace(factor="lr", heading=lambda lang: "learning rate")
    assert _recommendation(lr, "0.01", "0.013", within, "en") == (
        "`lr`: keep the base value 0.01 (the best-scoring value, 0.013, did not beat "
        "it beyond the noise).")
    assert _recommendation(lr, "0.01", "0.01", None, "en").endswith(
        "(no value beat it beyond the noise).")  # the base scored best: true as it was
    assert "la variante con mejor media, tardía, no superó a temprana" in _recommendation(
        exp, "temprana", "tardía", within, "es", is_base=False)


def test_a_study_run_again_mends_its_run_folders_damaged_or_gone(study_reference, tmp_path):
    """A run folder deleted by hand, or its summary.json, config.toml or model.pt, went
    unnoticed by the study run again (its report quietly dropped the final model's grid of
    mistakes) and by `doctor` on the study. The text files are written again from study.db;
    a run whose model is lost is trained again."""
    from mnistlab.runs import examine, not_whole

    finished = study_reference("1").parent
    study = tmp_path / "S"
    shutil.copytree(finished, study)
    rows = list(csv.DictReader(io.StringIO((study / "results.csv").read_text())))
    final = next(r["run"] for r in rows if r["experiment"] == "final")
    kept, junk, lost = sorted({r["run"] for r in rows} - {final})[:3]
    summary = (study / "runs" / kept / "summary.json").read_text()
    shutil.rmtree(study / "runs" / final)
    (study / "runs" / kept / "summary.json").unlink()
    (study / "runs" / junk / "config.toml").write_text("lr = [\n")
    (study / "runs" / lost / "model.pt").unlink()
    (study / "runs" / lost / "config.toml").unlink()  # nothing there says its settings
    found = examine(study)
    for key in (final, kept, lost):  # the summary lost, the folder gone, the model lost
        assert [f.code for f in found[str(study / "runs" / key)]] == ["damaged-run"], key
    assert "`mnistlab study` command again" in found[str(study / "runs" / final)][0].text()["fix"]
    with pytest.warns(UserWarning) as said:
        train_study(load_study(str(finished.parent / "tiny.toml")), study)
    # the experiments' runs at the start, the final model's once chosen: each said once
    experiments, finals = [str(w.message) for w in said if "not whole" in str(w.message)]
    assert "3 run folders of this study not whole" in experiments
    assert f"1 run folder of this study not whole, mended: runs/{final} (gone: trained " \
           "again); a run trained again replaces its numbers in study.db" in finals
    for key, how in ((final, "gone: trained again"), (kept, "summary.json: written again"),
                     (junk, "config.toml: written again"), (lost, "model.pt missing: trained")):
        warning = experiments + finals
        assert f"runs/{key} (" in warning and how in warning.split(f"runs/{key} (")[1], key
        assert not_whole(study / "runs" / key) == [], key
    assert (study / "runs" / kept / "summary.json").read_text() == summary  # from study.db
    assert not any(f.code == "damaged-run" for fs in examine(study).values() for f in fs)
    again = list(csv.DictReader(io.StringIO((study / "results.csv").read_text())))
    untouched = {kept, junk}  # their numbers are study.db's, as they were
    assert [r for r in again if r["run"] in untouched] == [r for r in rows if r["run"] in untouched]


def test_a_final_run_that_lost_its_model_beside_its_figures_is_trained_again(study_reference,
                                                                             tmp_path):
    """Its figures (curves.png, confusion.png) stayed when its files went, and the folder was
    then refused as one "changed by hand" on every later run (review)."""
    from mnistlab.runs import examine, not_whole

    study = tmp_path / "S"
    shutil.copytree(study_reference("1").parent, study)
    rows = list(csv.DictReader(io.StringIO((study / "results.csv").read_text())))
    final = next(r["run"] for r in rows if r["experiment"] == "final")
    (study / "runs" / final / "model.pt").unlink()
    with pytest.warns(UserWarning, match=rf"runs/{final} \(its model.pt missing: trained"):
        train_study(load_study(str(study_reference("1").parent.parent / "tiny.toml")), study)
    assert not_whole(study / "runs" / final, load=True) == []
    assert not any(f.code == "damaged-run" for fs in examine(study).values() for f in fs)


def test_a_run_folder_edited_by_hand_is_refused_and_its_model_kept(study_reference, tmp_path):
    """A config.toml edited by hand beside a lost summary.json: its model, which loads, was
    deleted as "unreadable" and the run trained again with the study's settings (review).
    It is refused as before: put it back, or delete the folder."""
    study = tmp_path / "S"
    shutil.copytree(study_reference("1").parent, study)
    key = next(r["run"] for r in csv.DictReader(io.StringIO((study / "results.csv").read_text()))
               if r["experiment"] != "final")
    config = study / "runs" / key / "config.toml"
    config.write_text(re.sub(r"(?m)^lr = .*$", "lr = 0.5", config.read_text()))
    (study / "runs" / key / "summary.json").unlink()
    model = (study / "runs" / key / "model.pt").read_bytes()
    with pytest.raises(MnistlabError, match="so its config.toml was changed by hand; put it "
                                            "back, or delete that folder"):
        train_study(load_study(str(study_reference("1").parent.parent / "tiny.toml")), study)
    assert (study / "runs" / key / "model.pt").read_bytes() == model


def test_the_doctor_names_a_study_s_runs_when_none_has_a_summary(study_reference, tmp_path):
    """Every run folder gone, or every summary.json deleted: the doctor said the study had
    stopped before its first run finished, where study.db records them all (review)."""
    from mnistlab.runs import examine

    for how in ("gone", "summaries"):
        study = tmp_path / how
        shutil.copytree(study_reference("1").parent, study)
        for folder in (study / "runs").iterdir():
            if how == "gone":
                shutil.rmtree(folder)
            else:
                (folder / "summary.json").unlink()
        found = examine(study)
        assert found and all([f.code for f in fs] == ["damaged-run"] for fs in found.values())


def test_a_study_run_with_fewer_seeds_logs_only_the_runs_it_reports(study_reference, tmp_path):
    """The runs an earlier go left that this one does not report (more seeds, a final model
    since chosen otherwise) were handed to tracking as "final, seed 0": TensorBoard logged a
    run twice, MLflow named a seed-1 run seed 0 (hunt)."""
    finished = study_reference("1").parent
    shutil.copytree(finished, tmp_path / "S")
    spec = load_study(str(finished.parent / "tiny.toml"))
    result = train_study(dataclasses.replace(spec, seeds=1), tmp_path / "S")
    assert len(result.summaries) > len(result.plan.to_train) + len(result.final_rows)
    logged = result.trained_runs()
    assert {key for key, _, _ in logged} == ({r.key for r in result.plan.to_train}
                                              | {r.key for r in result.final_rows})
    assert {label.seed for _, label, _ in logged} == {0}


def test_a_reproduced_failure_on_three_classes_names_its_own_plateau(tmp_path):
    """The conclusions called any binary-accuracy failure "the 0.9000 plateau of the
    original": 1 − 1/K is 0.6667 for three classes, and a study of one's own has no
    original (hunt)."""
    from conftest import make_dataset_folder

    data = make_dataset_folder(tmp_path / "k3", 300, 100, k=3)
    study = tmp_path / "bce3.toml"
    study.write_text(f"""name = "bce3"
seeds = 1
[base]
dataset = "{data}"
model = "mlp"
hidden = [16]
lr = 0.01
epochs = 3
val_size = 60
batch_size = 32
[[experiment]]
name = "trials"
test = true
variants = [{{ label = "bce", loss = "bce", metric = "binary-accuracy", shuffle_labels = true }},
            {{ label = "ce" }}]
""")
    assert main(["study", str(study), "--quiet", "--workers", "1", "--out",
                 str(tmp_path / "S")]) == 0
    said = " ".join((tmp_path / "S" / "report.md").read_text().split())
    assert "the 0.6667 plateau (1 − 1/K, K = 3) of a network that answers alike for every " \
           "class." in said
    assert "0.9000" not in said and "original" not in said
    # its eval-mode train accuracy is on at most its 240 training images (it said 10,000)
    assert "on a fixed sample of 240 training images" in said


def _gap_study(tmp_path: Path) -> Path:
    """A tiny study of two lr values on a dataset whose labels are 0, 5 and 9 (a warning)."""
    from conftest import make_idx_files, tiny_arrays

    data = tmp_path / "gaps"
    for prefix, n, seed in (("train", 300, 0), ("t10k", 90, 1)):
        images, labels = tiny_arrays(n, seed, k=3)
        make_idx_files(data, images, np.choose(labels, [0, 5, 9]).astype(np.uint8), prefix)
    study = tmp_path / "gaps.toml"
    study.write_text(f"""name = "gaps"
seeds = 1
[base]
dataset = "{data}"
model = "mlp"
hidden = [8]
epochs = 1
val_size = 30
[[experiment]]
name = "lr"
factor = "lr"
values = [0.01, 0.02]
[final]
choose = "best"
""")
    return study


def test_a_dataset_s_warning_is_said_once_by_a_study_with_workers(tmp_path):
    """Labels that skip values were warned about by each worker, then by the final model's
    scoring and by the report's reading of the data: three times in one command (hunt)."""
    study = _gap_study(tmp_path)
    done = run_python("-m", "mnistlab", "study", str(study), "--quiet", "--workers", "2",
                      "--one-by-one", "--out", str(tmp_path / "S"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("labels run from 0 to 9") == 1, done.stderr


def test_workers_warnings_follow_the_caller_s_filters_once_per_study(tmp_path):
    """A worker's warning said here: once per study (a second study in one process said
    nothing), under the user's filters: one that ignores mnistlab's module was not heard,
    and one that makes it an error ended the thread that draws the bars, and the study went
    on (review)."""
    study = load_study(str(_gap_study(tmp_path)))
    options = StudyOptions(workers=2, cohorts=False)
    for out in ("S1", "S2"):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            run_study(study, tmp_path / out, options=options)
        assert sum("labels run from 0 to 9" in str(w.message) for w in said) == 1, out
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", module="mnistlab")
        run_study(study, tmp_path / "S3", options=options)
    assert not [w for w in said if "labels run from" in str(w.message)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*labels run from")
        with pytest.raises(UserWarning, match="labels run from 0 to 9"):
            run_study(study, tmp_path / "S4", options=options)


def test_studies_started_from_threads_leave_no_worker_mark_behind():
    """Two studies' worker starts overlapping (threads): the first to end took the mark from
    the other's workers, and the last left it set for good, so the user's own Pool's workers
    refused their script again (review)."""
    import contextlib

    from mnistlab.device import WORKER_MARK
    from mnistlab.study.backends import _marked_as_workers

    assert WORKER_MARK not in os.environ
    a, b = contextlib.ExitStack(), contextlib.ExitStack()
    a.enter_context(_marked_as_workers())
    b.enter_context(_marked_as_workers())
    a.close()
    assert os.environ.get(WORKER_MARK) == "1"  # b's workers still start marked
    b.close()
    assert WORKER_MARK not in os.environ


def test_each_call_keeps_its_own_record_of_warnings_said_in_its_thread():
    """Two calls at once in two threads shared one record: the first to end cleared the
    other's, and one's warning silenced the other's (review)."""
    import threading

    from mnistlab.errors import each_warning_once, first_time

    both = threading.Barrier(2)
    firsts = []

    def call() -> None:
        with each_warning_once():
            both.wait()
            firsts.append(first_time("x"))
            both.wait()
            firsts.append(first_time("x"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(firsts) == [False, False, True, True]


def test_a_study_reads_its_training_images_once_and_a_rerun_not_at_all(tiny_study, tmp_path,
                                                                       monkeypatch):
    """On 1,000,000 images (784 MB) a study read them three times in its own process, holding
    each: training, scoring the final model where a variant trained its settings, and the
    report's grid of mistakes (hunt: 2.6 GB against 1.2 GB for one train); a finished study
    run again read them for that grid alone."""
    from mnistlab.data import dataset

    read = []
    real = dataset._read_split
    monkeypatch.setattr(dataset, "_read_split",
                        lambda folder, split, spec: read.append(split) or real(folder, split,
                                                                                 spec))
    options = StudyOptions(seeds=1, workers=1)
    text = tiny_study.read_text()
    assert "settings = { epochs = 2 }" in text  # the final model: the best variant, scored
    tiny_study.write_text(text.replace("settings = { epochs = 2 }", ""))
    run_study(tiny_study, tmp_path / "S", options=options)
    assert read.count("train") == 1
    assert (tmp_path / "S" / "plots" / "final-misclassified.png").is_file()
    read.clear()
    run_study(tiny_study, tmp_path / "S", options=options)
    assert read == ["t10k"]


def test_the_test_split_alone_is_the_datasets_own(shared_datasets, tmp_path):
    from conftest import make_dataset_folder

    from mnistlab.data import load_dataset, load_test_split

    folder = make_dataset_folder(tmp_path / "own", 40, 12, k=3)
    for name, data_dir in (("mnist", shared_datasets), (str(folder), None)):
        whole = load_dataset(name, data_dir=data_dir)
        images, labels = load_test_split(name, data_dir=data_dir)
        assert torch.equal(images, whole.test_images) and torch.equal(labels, whole.test_labels)


def test_a_relative_dataset_path_is_held_to_the_data_the_study_first_read(tmp_path,
                                                                          monkeypatch):
    """Run again from a folder where "digits" was Fashion-MNIST, an MNIST study trained its
    new seeds there and reported both together, "Dataset mnist" (hunt). Other data there is
    refused; the same files copied, or the study moved with its data, go on."""
    import shutil

    from conftest import make_dataset_folder

    make_dataset_folder(tmp_path / "a" / "digits", 300, 100)
    make_dataset_folder(tmp_path / "b" / "digits", 300, 100, k=4)
    make_dataset_folder(tmp_path / "copy" / "digits", 300, 100, gz=False)  # a's, not gzipped
    (tmp_path / "rel.toml").write_text(MICRO.format(data="digits", choose="best"))
    spec = load_study(str(tmp_path / "rel.toml"))

    def study(seeds: int, out: Path):
        return train_study(dataclasses.replace(spec, seeds=seeds), out,
                           backend=LocalBackend(workers=1))

    monkeypatch.chdir(tmp_path / "a")
    study(1, tmp_path / "a" / "S")
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(MnistlabError, match=r"dataset 'digits': a relative path, read from the "
                                            r"folder the command runs in, is .*b/digits here, "
                                            r"but this study's runs read .*a/digits, which "
                                            r"holds other files"):
        study(2, tmp_path / "a" / "S")
    monkeypatch.chdir(tmp_path / "copy")  # the same data elsewhere, raw where it was gzipped
    study(2, tmp_path / "a" / "S")
    shutil.rmtree(tmp_path / "copy")  # the folder last read gone: the data moved
    shutil.move(tmp_path / "a", tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved")
    assert len(study(3, tmp_path / "moved" / "S").rows) == 6
    with Store(tmp_path / "moved" / "S" / "study.db") as store:
        assert store.dataset_folders() == {"digits": str(tmp_path / "moved" / "digits")}
    # a run of it evaluated from another folder reads the data it was trained on (it said
    # "trained on the data in digits, which is not there now"; where that folder's "digits"
    # is other data, it read that: review)
    monkeypatch.chdir(tmp_path / "b")
    run = next((tmp_path / "moved" / "S" / "runs").iterdir())
    assert main(["evaluate", str(run), "--json"]) == 0


def test_a_relative_data_dir_is_kept_absolute_in_a_study(tiny_study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = StudyOptions(data_dir="data2").apply(load_study(str(tiny_study)))
    assert spec.base.data_dir == str(tmp_path / "data2")
    # the study file's own: as the flag's (it stayed relative)
    text, changed = re.subn(r'data_dir = ".*"', 'data_dir = "data3"', tiny_study.read_text())
    (tmp_path / "own.toml").write_text(text)
    spec = StudyOptions().apply(load_study(str(tmp_path / "own.toml")))
    assert changed == 1 and spec.base.data_dir == str(tmp_path / "data3")


def test_relative_folders_tell_other_data_from_the_same_read_otherwise(tmp_path, monkeypatch):
    """The review: class names with other line ends, a copy that cannot be read (not "other
    files": reading it says why) and a record edited into another shape."""
    from conftest import make_dataset_folder

    from mnistlab.data.dataset import relative_folders

    first = make_dataset_folder(tmp_path / "a" / "digits", 60, 20)
    (first / "classes.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    same = make_dataset_folder(tmp_path / "b" / "digits", 60, 20, gz=False)
    (same / "classes.txt").write_bytes("\r\n".join(f"c{i}" for i in range(10)).encode())
    cut = make_dataset_folder(tmp_path / "c" / "digits", 60, 20)
    (cut / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08")
    recorded = {"digits": str(first.resolve()), "other": 5}
    for place in ("b", "c"):
        monkeypatch.chdir(tmp_path / place)
        assert relative_folders(["digits"], recorded, "study") == {
            "digits": str((tmp_path / place / "digits").resolve())}
    (same / "classes.txt").write_text("\n".join(f"d{i}" for i in range(10)))
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(MnistlabError, match="which holds other files"):
        relative_folders(["digits"], recorded, "study")


def test_a_folder_kept_with_a_variant_s_dashed_spelling_resumes(tiny_study, tmp_path):
    """A variant's "batch-size" is now kept as batch_size: a folder made before, whose
    identity kept the dash, is the same study and resumes, training nothing again."""
    import json

    from mnistlab.study.run import IDENTITY_FILE, study_identity

    text = _epochs_replaced_by(tiny_study, '[[experiment]]\nname = "bs"\nvariants = '
                               '[{ label = "small", "batch-size" = 50 }]')
    tiny_study.write_text(text.replace("seeds = 2", "seeds = 1"))
    spec = load_study(str(tiny_study))
    out = tmp_path / "s"
    train_study(spec, out)
    with Store(out / "study.db") as store:  # as the version before kept it
        settings = store.identity_settings()
        [variant] = [v for e in settings[2] if e[0] == "bs" for v in e[3]]
        variant[1] = {"batch-size": 50}
        store.set_identity("0123456789abcdef", settings)
    kept = json.loads((out / IDENTITY_FILE).read_text())
    (out / IDENTITY_FILE).write_text(json.dumps({**kept, "identity": "0123456789abcdef",
                                                 "settings": settings}))
    trained = []
    train_study(spec, out, on_run=lambda key, label, folder: trained.append(key))
    assert trained == []
    with Store(out / "study.db") as store:
        assert store.identity() == study_identity(spec)
    variant[1] = {"batch-size": 60}  # another value is another study still
    with Store(out / "study.db") as store:
        store.set_identity("0123456789abcdef", settings)
    with pytest.raises(MnistlabError, match="holds this study made from other settings"):
        train_study(spec, out)


def test_the_python_api_takes_true_for_a_display_and_says_what_it_got(tiny_study, tmp_path,
                                                                      capsys):
    """A notebook's guesses (hunt): progress=True was "'bool' object has no attribute
    'start'" seven frames down; out="" put the study's files in the working folder;
    load_study(3) was pathlib's TypeError; the result's repr ran to 59,000 characters."""
    with pytest.raises(MnistlabError, match=r"^progress: give True \(the command's display\), "
                                            r"False, or a progress.StudyProgress; got str"):
        run_study(str(tiny_study), tmp_path / "S", progress="bar")
    with pytest.raises(MnistlabError, match=r"^out: an empty path; give a folder, or None"):
        run_study(str(tiny_study), "")
    with pytest.raises(MnistlabError, match=r"^study: give a preset's name or a \.toml file's "
                                            r"path, not int 3$"):
        load_study(3)
    result = run_study(str(tiny_study), tmp_path / "S", progress=True,
                       options=StudyOptions(workers=1))
    assert "━" in capsys.readouterr().err  # the command's bars
    assert len(repr(result)) < 200 and repr(result).startswith("StudyResult(name='tiny'")


@pytest.mark.parametrize("rises, said", [((0.04, 0.03, 0.02), True),
                                         ((0.04, 0.03, 0.005), False), ((0.0, 0.0, 0.0), False)])
def test_a_base_still_learning_at_its_end_is_said_in_the_conclusions(rises, said):
    """Hunt: Fashion's base (SGD at lr 0.001, 10 epochs) still rose 2-4 points in its last
    epochs, and the report read the six factors' wins as six effects, where a base stopped
    early makes anything that learns faster win."""
    from types import SimpleNamespace

    from mnistlab.messages import t
    from mnistlab.records import EpochRecord
    from mnistlab.report.study import _base_still_learning
    from mnistlab.study.run import Row

    def row(seed, rise, is_base=True):
        history = [EpochRecord(e, 1.0, 0.5, 0.5, 1.0, 0.5, 1.0, 0.5 + rise * max(0, e - 8) / 2,
                               0.5, 0.001, 1.0) for e in range(1, 11)]
        return Row("lr", "lr", "0.001", seed, f"k{seed}{is_base}", is_base, 10, 0.5, 0.5,
                   history[-1].val_accuracy, 1.0, None, None, 1.0, "completed", history)

    result = SimpleNamespace(rows=[row(s, r) for s, r in enumerate(rises)] + [row(0, 0.0, False)])
    found = _base_still_learning(result)
    assert (found is not None) is said
    if said:
        assert found[1:] == (2, 3) and found[0] == pytest.approx(0.03)
        assert "rose 3.00 points over its last 2 epochs (3 seeds)" in t(
            "en", "concl.base_learning", gain=found[0] * 100, k=found[1], n=found[2])
        assert "subió 3,00 puntos en sus últimas 2 épocas (3 semillas)" in t(
            "es", "concl.base_learning", gain=found[0] * 100, k=found[1], n=found[2])


def test_a_base_still_learning_is_not_said_where_nothing_beat_it(tmp_path, shared_datasets):
    """Review: "a value that beat it ... the gains above" was said of a study whose one other
    value lost 50 points to a base still learning."""
    from mnistlab.config import tomllib

    study = (f"name = 'learn'\nseeds = 2\n[base]\ndataset = 'mnist'\n"
             f"data_dir = '{shared_datasets}'\nmodel = 'mlp'\nhidden = [16]\nepochs = 5\n"
             "train_subset = 300\nval_size = 500\neval_train_size = 200\nlr = 0.01\n"
             "device = 'cpu'\n[[experiment]]\nname = 'lr'\nfactor = 'lr'\nvalues = [{v}]\n")
    from mnistlab.report.study import _base_still_learning

    result = train_study(parse_study(tomllib.loads(study.format(v="0.01, 0.1"))),
                         tmp_path / "S", backend=LocalBackend(workers=1))
    assert _base_still_learning(result) is not None  # it was still learning
    assert "The base was still learning" not in to_markdown(build_document(result))
