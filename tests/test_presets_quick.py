"""The built-in presets, quick forms, on real data: healthy runs raise no problem, and the
reproduced LeNet-challenge failure is named the binary-accuracy illusion first."""

import dataclasses
import re

import pytest
from spanish import english_in

from mnistlab import StudyOptions, run_study
from mnistlab.report.study import write_study_report
from mnistlab.study import load_study, train_study

pytestmark = pytest.mark.slow


def _quick(name, shared_datasets, **changes):
    spec = load_study(name).with_quick()
    base = spec.base.replace(data_dir=str(shared_datasets), device="cpu")
    return dataclasses.replace(spec, base=base, seeds=1, **changes)


def _problems(result, key):
    planned = result.plan.runs.get(key)
    key = planned.snapshot_of or key if planned else key  # a prefix reads its longer run
    return [f.code for f in result.summaries[key].diagnoses if f.severity == "problem"]


def test_lenet_challenge_quick(shared_datasets, tmp_path, capsys):
    result = run_study(_quick("lenet-challenge", shared_datasets), tmp_path / "L",
                       options=StudyOptions())
    failure = [r for r in result.rows if r.experiment == "original-failure"]
    trials = [r for r in result.rows if r.experiment == "trials"]
    assert len(failure) == 1 and len(trials) == 5
    f = failure[0]
    assert f.reported_metric == pytest.approx(0.900, abs=0.005)
    assert f.val_loss == pytest.approx(0.325, abs=0.01)
    assert f.val_accuracy < 0.2  # the true accuracy printed beside it
    diagnoses = result.summaries[f.key].diagnoses
    assert diagnoses[0].code == "binary-accuracy-illusion"
    assert "--loss ce" in diagnoses[0].text()["fix"]
    for r in trials:
        assert _problems(result, r.key) == [], r.value
        assert r.test_accuracy is not None
    report = (tmp_path / "L" / "report.md").read_text()
    assert "Binary-accuracy illusion" in report and "0.9000" in report
    assert "the 0.9000 plateau (1 − 1/K, K = 10) of a network that answers alike for every " \
           "class, as the original's." in " ".join(report.split())
    # its train accuracy is against the labels it trained on; the Method says which runs use
    # the test set (it said "which only the final models touch" of a study without one)
    assert "measured against the shuffled labels it trained on" in report
    assert "on which the trials are scored (their tables' test column)." in report
    assert "final model" not in report.split("## Method")[1].split("\n## ")[0]
    # the quick form's notice: not "every accuracy here is lower" beside a run at chance
    assert "lower than a full run's (a run at chance stays at chance)" in report
    # the failure's figure draws the metric it reports beside its accuracy; the trials' not
    assert report.count("![Validation accuracy and the metric the run reports, per epoch") == 1
    # the trials' curves, of one seed: not a "mean over seeds" of one run (hunt)
    assert "![Validation accuracy per epoch (one seed)" in report
    assert "mean test accuracy" not in report and "test accuracy (trial" in report
    # hunt: its Method promised running and gap columns its trials' tables do not have
    assert "reported twice" not in report and "Train accuracy is measured in **eval" in report
    # the conclusion counts the runs the doctor names (their margins differed: 0.005 and 0.01)
    named = sum("val-above-train" in [d.code for d in s.diagnoses]
                for s in result.summaries.values())
    assert named and f"In {named} trained runs (each at its last epoch" in report
    write_study_report(result, "es")
    spanish = (tmp_path / "L" / "report.md").read_text()
    assert english_in(spanish) == [] and "Ilusión de la exactitud binaria" in spanish
    assert "contra las etiquetas barajadas con las que entrenó" in spanish
    # the failure's note says where 0.9000 and 0.3251 come from; its base line is Spanish
    # ("variante classic"); no line counts "18 distinct configurations for 18 table cells"
    assert "−(0,1 ln 0,1 + 0,9 ln 0,9) = 0,3251" in spanish and "variante clásica" in spanish
    assert "ejecuciones distintas para" not in spanish and "pérdida de entrenamiento" \
        in spanish
    assert "Δ frente a la base" not in spanish  # defined only where a table has that column
    assert "ensayo 4: tasa 0,0005" in spanish and "red del ensayo 4" in spanish
    assert not re.search(r"\btrials?\b(?!-curves\.png)", spanish)  # the labels are Spanish too
    # `mnistlab doctor` names the study's runs as the report does, in the preset's own words
    from mnistlab.cli import main

    capsys.readouterr()
    assert main(["doctor", str(tmp_path / "L"), "--lang", "es"]) == 1  # the illusion
    said = capsys.readouterr().out
    assert "(red del ensayo 4, BCE + exactitud binaria, etiquetas barajadas, semilla 0)" \
        in said and "(ensayo 1: ReLU, Adam, 10 épocas" in said, said
    # trial 0 has the base's settings, but is a run of its own (scored on test), as the
    # report names it: it was called "the base"
    assert "(ensayo 0: la LeNet-5 clásica (tanh, SGD), semilla 0)" in said, said


def test_fashion_hparams_quick_in_spanish(quick_fashion_study, monkeypatch, shared_datasets,
                                          tmp_path):
    import shutil

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    shutil.copytree(quick_fashion_study, tmp_path / "S")  # the shared folder keeps English
    spec = StudyOptions(quick=True, seeds=1).apply(load_study("fashion-hparams"))
    write_study_report(train_study(spec, tmp_path / "S"), "es")  # read back: nothing trained
    spanish = (tmp_path / "S" / "report.md").read_text()
    assert english_in(spanish) == []
    assert "| 0,0001 |" in spanish and "tasa de aprendizaje 0,001; tamaño de lote 100" in spanish
    # the conclusion counts the runs the doctor names: it counted epochs read off longer runs
    # too, which the doctor never examines (44 against 34)
    named = re.search(r"\(`val-above-train`\) en (\d+) ejecuciones", spanish)
    counted = re.search(r"En (\d+) ejecuciones entrenadas \(", spanish)
    assert named and counted and named.group(1) == counted.group(1)


def test_fashion_hparams_quick_healthy_runs(quick_fashion_study, monkeypatch, shared_datasets,
                                           tmp_path):
    import shutil

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    spec = StudyOptions(quick=True, seeds=1).apply(load_study("fashion-hparams"))
    shutil.copytree(quick_fashion_study, tmp_path / "S")  # other tests read the shared one
    result = train_study(spec, tmp_path / "S")  # finished: read back, nothing trained
    for row in result.distinct_rows():
        found = _problems(result, row.key)
        if row.experiment == "learning-rate" and row.value == "0.0001":
            assert found == ["too-slow"]  # the original's first row: SGD at 0.0001
        else:
            assert found == [], (row.experiment, row.value, found)
