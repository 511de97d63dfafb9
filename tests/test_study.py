"""Studies end to end on a small real-data study: plan, dedupe, prefixes, stats, report, resume."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_study import write_tiny_study

from mnistlab.errors import MnistlabError
from mnistlab.study import list_presets, load_study, parse_study, run_study
from mnistlab.study.plan import plan_experiments


@pytest.fixture()
def tiny_study(tmp_path, shared_datasets):
    return write_tiny_study(tmp_path / "tiny.toml", shared_datasets)


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


def test_study_results_report_and_final(tiny_study, tmp_path):
    result = run_study(load_study(str(tiny_study)), tmp_path / "S", report_lang="es")
    rows = list(csv.DictReader((tmp_path / "S" / "results.csv").open()))
    assert len(rows) == 8  # 6 distinct experiment runs + 2 final seeds
    base_rows = [r for r in rows if r["experiment"] == "base"]
    assert len(base_rows) == 2
    final_rows = [r for r in rows if r["experiment"] == "final"]
    assert all(r["test_acc"] for r in final_rows)
    assert not any(r["test_acc"] for r in rows if r["experiment"] != "final")
    snap = [r for r in rows if r["experiment"] == "epochs" and r["value"] == "1"]
    assert len(snap) == 2 and all(r["epochs"] == "1" for r in snap)
    for r in rows:
        gap = float(r["train_acc_eval"]) - float(r["val_acc"])
        assert float(r["gap"]) == pytest.approx(gap, abs=1e-5)
    # the final config combines the best value of each experiment, with epochs overridden
    assert result.final_config.epochs == 2
    report = (tmp_path / "S" / "report.md").read_text()
    for heading in ("## Método", "## Resumen", "## Modelo final", "## Conclusiones",
                    "exact. validación", "Δ frente a la base (IC 95%)"):
        assert heading in report
    assert "Method" not in report and "Summary" not in report
    html = (tmp_path / "S" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    for name in ("learning-rate-points.png", "final-confusion.png", "final-misclassified.png",
                 "final-per-class.png", "final-curves.png"):
        assert (tmp_path / "S" / "plots" / name).is_file(), name


def test_single_seed_says_there_is_no_noise_estimate(tiny_study, tmp_path):
    spec = load_study(str(tiny_study))
    import dataclasses

    spec = dataclasses.replace(spec, seeds=1)
    run_study(spec, tmp_path / "S1")
    report = (tmp_path / "S1" / "report.md").read_text()
    assert "no noise estimate" in report


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
    lenet = load_study("lenet-challenge").with_quick()
    assert max(v.changes.get("epochs", 0) for e in lenet.experiments for v in e.variants) <= 3


@pytest.mark.parametrize("text,message", [
    ("seeds = 0\n[base]\n", "seeds must be a whole number >= 1"),
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
])
def test_bad_study_files(text, message):
    from mnistlab.config import tomllib

    with pytest.raises(MnistlabError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        parse_study(tomllib.loads(text))


def test_unknown_preset_lists_presets():
    with pytest.raises(MnistlabError, match="presets: fashion-hparams, lenet-challenge"):
        load_study("cifar-study")
