"""Optuna search: space parsing and its errors, conditional parameters, a real search with its
report, resuming, two workers on the SQLite default, and two workers on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

optuna = pytest.importorskip("optuna", reason="the tune extra is not installed")

from conftest import eight_pixel_folder  # noqa: E402
from spanish import english_in  # noqa: E402

from mnistlab import TrainConfig, TuneOptions  # noqa: E402
from mnistlab.api import run_tune  # noqa: E402
from mnistlab.cli import main  # noqa: E402
from mnistlab.errors import MnistlabError  # noqa: E402
from mnistlab.tune import list_presets, load_space, parse_space  # noqa: E402
from mnistlab.tune.search import (  # noqa: E402
    open_study,
    retrain_jobs,
    spec_toml,
    suggest,
    trial_config,
    with_driver,
)
from mnistlab.tune.space import encode_choice  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def space_dict(data_dir: str = "fashion-mnist") -> dict:
    return {
        "name": "tiny",
        "base": {"dataset": data_dir, "model": "mlp", "hidden": [16], "val_size": 100,
                 "eval_train_size": 100, "epochs": 2, "batch_size": 50, "device": "cpu",
                 "schedule": "constant"},
        "space": {
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
            "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "momentum": {"type": "float", "low": 0.0, "high": 0.9,
                         "when": {"optimizer": "sgd"}},
            "hidden": {"type": "categorical", "choices": [[16], [32, 16]]},
            "epochs": {"type": "int", "low": 1, "high": 3},
        },
        "compare": {"label": "plain sgd", "settings": {"optimizer": "sgd", "lr": 0.01},
                    "val": 50.0},
    }


SPACE_TOML = """
name = "tiny"
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
[space.optimizer]
type = "categorical"
choices = ["sgd", "adam"]
[space.lr]
type = "float"
low = 0.001
high = 0.1
log = true
[space.momentum]
type = "float"
low = 0.0
high = 0.9
when = {{ optimizer = "sgd" }}
[space.hidden]
type = "categorical"
choices = [[16], [32, 16]]
[space.epochs]
type = "int"
low = 1
high = 3
[compare]
label = "plain sgd"
settings = {{ optimizer = "sgd", lr = 0.01 }}
val = 50.0
"""


@pytest.fixture()
def space_file(tmp_path, tiny_idx_dir) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE_TOML.format(data=tiny_idx_dir))
    return path


def _with(change):
    data = space_dict()
    change(data)
    return data


# --- parsing ---------------------------------------------------------------------------------
BAD_SPACES = [
    (lambda d: d.update(extra=1), "unknown key(s) extra"),
    (lambda d: d.update(es={"titel": "x"}), "[es] may only give text for compare_label"),
    (lambda d: d.update(space={}), "[space] is empty"),
    (lambda d: d["space"].update(lr_max={"type": "float", "low": 0, "high": 1}),
     "space.lr_max: not a training setting: 'lr_max'"),
    (lambda d: d["space"]["lr"].update(type="number"), "space.lr: type must be one of"),
    # a misspelt key: named, not "got None" (hunt)
    (lambda d: d["space"]["lr"].update(typ=d["space"]["lr"].pop("type")),
     'space.lr: no type; give type = "float" | "int" | "categorical"; typ is not a key here '
     "(did you mean type?)"),
    (lambda d: d["space"]["lr"].pop("high"), "space.lr: float needs low and high"),
    (lambda d: d["space"]["lr"].update(low=0.5, high=0.1), "space.lr: low (0.5) is above high"),
    (lambda d: d["space"]["lr"].update(low=0.0), "space.lr: log = true needs low > 0"),
    (lambda d: d["space"]["lr"].update(low="a"), "space.lr.low: must be a number"),
    (lambda d: d["space"]["lr"].update(steps=2), "space.lr: unknown key(s) steps"),
    (lambda d: d["space"]["lr"].update(step=0.01), "cannot be combined with step"),
    (lambda d: d["space"]["epochs"].update(low=1.5), "space.epochs.low: must be a whole number"),
    (lambda d: d["space"]["epochs"].update(step=0), "space.epochs.step: must be > 0"),
    (lambda d: d["space"].update(dropout={"type": "float", "low": 0.0, "high": 1.0}),
     "space.dropout high=1.0: dropout: must be in [0, 1)"),
    (lambda d: d["space"].update(batch_size={"type": "float", "low": 1.0, "high": 2.0}),
     "space.batch_size: type float does not fit"),
    (lambda d: d["space"]["optimizer"].update(choices=["sgd", "rmsprop"]),
     "space.optimizer choice 'rmsprop': optimizer: unknown value"),
    (lambda d: d["space"]["optimizer"].update(choices=[]), "space.optimizer: choices must be"),
    (lambda d: d["space"]["optimizer"].update(choices=["sgd", "sgd"]), "choices repeat"),
    (lambda d: d["space"]["hidden"].update(choices=[[16], ["a"]]),
     "space.hidden: list choices must be lists of whole numbers"),
    (lambda d: d["space"]["momentum"].update(when={"optimiser": "sgd"}),
     "space.momentum.when: 'optimiser' is not a parameter searched above"),
    (lambda d: d["space"]["momentum"].update(when={"lr": 0.01}),
     "space.momentum.when: 'lr' is a float range"),
    (lambda d: d["space"]["momentum"].update(when={"optimizer": "adamw"}),
     "space.momentum.when: optimizer = 'adamw' is not one of its choices"),
    (lambda d: d["space"]["momentum"].update(when="sgd"), "space.momentum.when: must be a table"),
    (lambda d: d["base"].update(val_size=0), "[base]: val_size must be > 0"),
    (lambda d: d.update(quick={"val_size": 0}), "[quick]: val_size must be > 0: trials are"),
    (lambda d: d.update(quick={"val_from": "test"}), "[quick]: val_from = \"test\" would tune"),
    (lambda d: d["base"].update(val_from="test"), "would tune on the test set"),
    # settings a search must hold still: the same validation set, data and seeds for every trial
    (lambda d: d["space"].update(val_from={"type": "categorical", "choices": ["test"]}),
     "space.val_from: 'val_from' cannot be searched: every trial must be judged on the same "
     "validation set, held out of the training set; set it in [base]"),
    (lambda d: d["space"].update(val_size={"type": "int", "low": 0, "high": 100}),
     "space.val_size: 'val_size' cannot be searched"),
    (lambda d: d["space"].update(dataset={"type": "categorical", "choices": ["mnist", "x"]}),
     "every trial must learn the same data"),
    (lambda d: d["space"].update(seed={"type": "int", "low": 0, "high": 9}),
     "searching seeds picks luck"),
    (lambda d: d["base"].update(lr="fast"), "[base]"),
    (lambda d: d["compare"].update(settings={"optimizer": "nadam"}), "[compare]"),
    (lambda d: d["compare"].update(val=120), "[compare].val"),
    (lambda d: d.update(name="two words"), "name must be a word"),
    (lambda d: d.update(quick={"max_epochs": 0}), "[quick]: max_epochs"),
    # names are folders (tunes/<name>): the same rule as study names
    (lambda d: d.update(name=".."), "name must be a word without spaces or slashes"),
    (lambda d: d.update(name="."), "(it starts with a dot"),
    (lambda d: d.update(name="a\x00b"), "(it holds control characters)"),
    (lambda d: d.update(name=5), "name must be text"),
    (lambda d: d.update(title=["x"]), "title must be text"),
    (lambda d: d.update(description=1), "description must be text"),
    # steps: a grid of more than MAX_STEPS values, or one that does not end on high
    (lambda d: d["space"]["lr"].update(log=False, low=0.0001, high=0.1, step=1e-12),
     "space.lr: 0.0001 .. 0.1 in steps of 1e-12 is 99,900,000,001 values, above the limit of "
     "1,000,000; use a larger step"),
    (lambda d: d["space"]["epochs"].update(low=1, high=10**12),
     "space.epochs: 1 .. 1000000000000 in steps of 1 is 1,000,000,000,000 values"),
    (lambda d: d["space"]["lr"].update(log=False, low=0.001, high=0.1, step=0.007),
     "space.lr: 0.001 .. 0.1 is not a whole number of steps of 0.007; set high = 0.099"),
    (lambda d: d["space"]["epochs"].update(low=1, high=10, step=4),
     "space.epochs: 1 .. 10 is not a whole number of steps of 4; set high = 9"),
    (lambda d: d["space"].update(batch_size={"type": "categorical",
                                             "choices": list(range(1, 1002))}),
     "space.batch_size: 1,001 choices, above the limit of 1,000; search a range"),
    # sizes: every choice and both ends of every range, on nominal 28x28 images
    (lambda d: d["space"]["hidden"].update(choices=[[16], [10_000_000]]),
     "space.hidden choice (10000000,): mlp would have about 7,950,000,010 parameters"),
    (lambda d: d["space"].update(batch_size={"type": "int", "low": 1000, "high": 10**9,
                                            "step": 1000}),
     "space.batch_size high=1000000000"),
    (lambda d: d["base"].update(hidden=[500_000, 500]), "[base]: mlp would have about"),
    (lambda d: d["compare"]["settings"].update(hidden=[10**8]), "[compare]: mlp would have"),
    # hunt: a condition listing no value (never drawn; the report failed with an IndexError)
    (lambda d: d["space"]["momentum"].update(when={"optimizer": []}),
     "space.momentum.when: optimizer = [] lists no value; give one or more of its choices"),
    # hunt: a comparison on other data, validation or seeds, set beside the best as alike
    (lambda d: d["compare"]["settings"].update({"val-from": "test"}),
     "[compare]: settings give val_from = 'test', where [base] has 'train': the comparison is "
     "set beside the best configuration's retrained runs, and both must be judged on the same "
     "validation set"),
    (lambda d: d["compare"]["settings"].update(dataset="mnist"),
     "both must learn the same data; leave it out"),
    (lambda d: d["compare"]["settings"].update(seed=5), "it is retrained with the best's seeds"),
    # hunt: one setting in two spellings, whichever the merge put last taken
    (lambda d: d["base"].update({"batch-size": 64, "batch_size": 32}),
     "[base]: batch_size and batch-size are one setting, given twice; keep one"),
    (lambda d: d["compare"]["settings"].update({"batch-size": 16, "batch_size": 64}),
     "[compare] settings: batch-size and batch_size are one setting"),
    (lambda d: d.update(quick={"val-size": 100, "val_size": 150}),
     "[quick]: val-size and val_size are one setting"),
    # hunt: one value in two forms, trained twice under two names
    (lambda d: d["space"]["hidden"].update(choices=[[16], 16, [32, 16]]),
     "space.hidden: choices [16] and 16 are one value, as a run takes it; give each once"),
    (lambda d: d["space"].update(batch_size={"type": "categorical", "choices": [32, 32.0]}),
     "space.batch_size: choices 32 and 32.0 are one value"),
    # hunt: settings every trial trained alike
    (lambda d: (d["base"].update(loss="bce"), d["space"].update(
        label_smoothing={"type": "float", "low": 0.0, "high": 0.2})),
     "space.label_smoothing: no loss drawn reads it (bce; only ce and ce-on-softmax do)"),
    (lambda d: d["space"].update(metric={"type": "categorical",
                                         "choices": ["accuracy", "binary-accuracy"]}),
     "'metric' cannot be searched: it changes what a run reports, not what it learns"),
]


@pytest.mark.parametrize("change, message", BAD_SPACES)
def test_bad_spaces_are_one_line_errors_naming_the_key(change, message):
    with pytest.raises(MnistlabError) as err:
        parse_space(_with(change), where="s.toml")
    text = str(err.value)
    assert message in text
    assert "\n" not in text and text.startswith("s.toml")


TOML_VALUES = st.recursive(
    st.booleans() | st.integers() | st.floats() | st.text(max_size=4) | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "low", "high", "step", "choices", "optimizer", "lr"]), inner,
        max_size=2), max_leaves=6)
SPACE_PATHS = [("name",), ("title",), ("base",), ("base", "lr"), ("space",),
               ("space", "optimizer"), ("space", "optimizer", "choices"),
               ("space", "optimizer", "choices", 0), ("space", "lr", "low"),
               ("space", "lr", "high"), ("space", "lr", "log"), ("space", "lr", "step"),
               ("space", "epochs", "step"), ("space", "epochs", "high"),
               ("space", "momentum", "when"), ("space", "momentum", "when", "optimizer"),
               ("space", "hidden", "choices"), ("space", "hidden", "choices", 1),
               ("compare",), ("compare", "settings"), ("compare", "val"), ("quick",),
               ("quick", "max_epochs"), ("es",)]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(SPACE_PATHS), value=TOML_VALUES)
def test_any_value_at_any_key_is_a_space_or_one_line(path, value):
    data = space_dict()
    data["quick"] = {"train_subset": 300, "max_epochs": 2}
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        spec = parse_space(data, where="s.toml")
    except MnistlabError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("s.toml")
        return
    quick = spec.with_quick()
    spec_toml(quick)
    assert [p.describe() for p in quick.params] and quick.fingerprint()


def test_space_parses_types_lists_and_conditions():
    spec = parse_space(space_dict())
    by = {p.name: p for p in spec.params}
    assert [p.name for p in spec.params] == ["optimizer", "lr", "momentum", "hidden", "epochs"]
    assert by["lr"].log and by["lr"].type == "float"
    assert by["epochs"].step == 1 and by["epochs"].type == "int"
    assert by["hidden"].encoded_choices == ("16", "32-16")
    assert by["hidden"].decode("32-16") == [32, 16]
    assert by["momentum"].when == {"optimizer": ("sgd",)}
    # hyphenated names are the flags' spelling of the same settings
    data = space_dict()
    data["space"]["batch-size"] = {"type": "categorical", "choices": [32, 64]}
    assert parse_space(data).params[-1].name == "batch_size"


def test_conditional_parameter_is_suggested_only_when_its_condition_holds():
    spec = parse_space(space_dict())
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        values = suggest(spec, trial)
        config = spec.config_for(values)
        seen.add(values["optimizer"])
        assert ("momentum" in values) == (values["optimizer"] == "sgd")
        assert ("momentum" in trial.params) == (values["optimizer"] == "sgd")
        assert config.hidden in ((16,), (32, 16))  # "32-16" came back as a list
        assert isinstance(values["hidden"], list)
        study.tell(trial, 0.5)
        assert trial_config(spec, study.trials[-1]) == config
    assert seen == {"sgd", "adam"}


def test_conditions_accept_lists_and_list_valued_choices():
    data = space_dict()
    data["space"]["optimizer"]["choices"] = ["sgd", "adam", "adamw"]
    data["space"]["momentum"]["when"] = {"optimizer": ["sgd", "adamw"]}
    data["space"]["dropout"] = {"type": "float", "low": 0.0, "high": 0.5,
                                "when": {"hidden": [32, 16]}}
    by = {p.name: p for p in parse_space(data).params}
    assert by["momentum"].when == {"optimizer": ("sgd", "adamw")}
    assert by["dropout"].when == {"hidden": ("32-16",)}
    assert by["dropout"].active({"hidden": "32-16"}) and not by["dropout"].active({"hidden": "16"})


def test_the_method_names_each_kind_of_unfinished_trial_and_writes_conditions_in_the_language(
        tmp_path):
    """A Ctrl-C is not a failure: the counts line names failed, interrupted and unfinished
    trials apart and leaves out kinds with none; a condition on a number has a decimal comma
    in Spanish."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from mnistlab.report.document import Document, to_markdown
    from mnistlab.report.tune import _method
    from mnistlab.tune.search import CUT, TuneResult

    data = space_dict()
    data["space"]["dropout"] = {"type": "categorical", "choices": [0.2, 0.5]}
    data["space"]["weight_decay"] = {"type": "float", "low": 0.0, "high": 0.01,
                                     "when": {"dropout": [0.2, 0.5]}}
    data["space"]["batchnorm"] = {"type": "categorical", "choices": [True, False]}
    data["base"]["model"] = "lenet5"  # which reads batchnorm (and not hidden)
    del data["space"]["hidden"]
    data["space"]["label_smoothing"] = {"type": "float", "low": 0.0, "high": 0.2,
                                        "when": {"batchnorm": True}}
    spec = parse_space(data)
    dist = {"dropout": CategoricalDistribution([0.2, 0.5])}

    def trial(state, cut=False):
        return create_trial(state=state, params={"dropout": 0.2}, distributions=dist,
                            # this version names a crash's error on its trial; a failed
                            # one with no mark but its worker is an older version's cut
                            user_attrs={CUT: True} if cut else {"worker": "here",
                                                                "error": "RuntimeError: oom"},
                            value=0.5 if state == TrialState.COMPLETE else None)

    states = [TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.FAIL]
    result = TuneResult(spec, tmp_path, "sqlite:///tune.db", "tiny", 0, "median", 4,
                        [trial(s) for s in states] + [trial(TrialState.FAIL, cut=True)] * 2,
                        None, None)

    def method(lang):
        doc = Document("t", lang)
        _method(doc, result, lang)
        return to_markdown(doc)

    english, spanish = method("en"), method("es")
    assert "7 trials: 3 complete, 1 pruned, 1 failed, 2 interrupted; 4 finished" in english
    assert "unfinished" not in english
    assert ("7 ensayos: 3 completos, 1 podado, 1 fallido, 2 interrumpidos; el objetivo era"
            in spanish)
    assert "only when dropout ∈ {0.2, 0.5}" in english
    assert "solo si dropout ∈ {0,2; 0,5}" in spanish
    # true and false as a space file writes them in English, not Python's True and False;
    # in Spanish the settings' names and words (they were the English keys and words)
    assert "| batchnorm | choice | true, false |" in english and "True" not in english
    assert ("| normalización por lotes (`batchnorm`) | opción | sí, no |" in spanish
            and "True" not in spanish and "true" not in spanish)
    assert "only when batchnorm = true" in english
    assert "solo si normalización por lotes = sí" in spanish
    # the data it trained and judged on, where not the default (it did not say so)
    assert "Base configuration (settings not searched): dataset=fashion-mnist, val_size=100, " \
        "eval_train_size=100, model=lenet5" in english
    assert "tamaño de validación 100" in spanish and "train_subset" not in english
    # trials.csv calls a Ctrl-C's trial what the report does (it said fail)
    from mnistlab.tune.search import trials_csv

    states = [line.split(",")[1] for line in trials_csv(result).splitlines()[1:]]
    assert states == ["complete"] * 3 + ["pruned", "fail", "interrupted", "interrupted"]
    result.trials = [trial(TrialState.COMPLETE), trial(TrialState.RUNNING)]
    assert "1 complete, 0 pruned, 1 unfinished (running or waiting);" in method("en")


def test_the_conclusions_name_no_setting_held_at_one_value_as_the_most_important(tmp_path):
    """The importances section said none could be estimated (every searched setting held at
    one value), and the conclusions then named `optimizer` the most important (1.00 ± 0.00);
    the Spanish named the setting by its English key beside the table's Spanish names."""
    from mnistlab.report.document import Document, to_markdown
    from mnistlab.report.tune import _conclusions
    from mnistlab.tune.search import TuneResult

    data = space_dict()
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["adam"]},
                     "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}
    spec = parse_space(data)
    result = TuneResult(spec, tmp_path, "sqlite:///tune.db", "tiny", 0, "median", 4, [],
                        None, None, importances={"optimizer": [1.0, 1.0]})

    def conclusions(lang):
        doc = Document("t", lang)
        _conclusions(doc, result, lang)
        return to_markdown(doc)

    assert "most important" not in conclusions("en")
    result.importances = {"optimizer": [1.0], "lr": [0.6, 0.7]}
    # from few trials, a rough ranking: 8 trials named one at 0.45 +- 0.08 and a ninth moved
    # it to 0.55, and two others past each other (hunt)
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    result.trials = [create_trial(state=TrialState.COMPLETE, params={"lr": 0.01},
                                  distributions={"lr": FloatDistribution(1e-4, 0.1, log=True)},
                                  value=0.5)] * 8
    assert ("`lr` ranked first by fANOVA (0.65 ± 0.07), from only 8 scored trials: a rough "
            "ranking, which more trials may change") in conclusions("en")
    assert "con solo 8 ensayos puntuados: una clasificación aproximada" in conclusions("es")
    result.trials = result.trials * 4  # 32
    assert "The most important setting was `lr` (fANOVA 0.65" in conclusions("en")
    assert ("El ajuste más importante: tasa de aprendizaje (`lr`), con fANOVA 0,65"
            in conclusions("es"))


def test_a_spanish_search_s_figures_name_choices_in_spanish():
    """The slice and parallel plots labelled a Spanish report's categories "constant",
    "cosine" and "True", where its tables said "constante" and "sí"."""
    from mnistlab.report.tune import _drawn, _scale

    data = space_dict()
    data["space"] = {"schedule": {"type": "categorical", "choices": ["constant", "cosine"]},
                     "batchnorm": {"type": "categorical", "choices": [True, False]}}
    data["base"]["model"] = "lenet5"  # which reads batchnorm
    schedule, batchnorm = parse_space(data).params
    assert _scale(schedule, "es").categories == ("constante", "coseno")
    assert _scale(batchnorm, "es").categories == ("sí", "no")
    assert _scale(batchnorm, "en").categories == ("true", "false")
    assert _drawn(schedule, "cosine", "es") in _scale(schedule, "es").categories
    assert _drawn(batchnorm, True, "en") == "true"


@settings(max_examples=40, deadline=None)
@given(low=st.floats(1e-6, 1.0), span=st.floats(1.0, 1000.0), log=st.booleans(),
       epochs=st.lists(st.integers(1, 50), min_size=1, max_size=5, unique=True))
def test_written_space_reads_back_the_same(low, span, log, epochs):
    data = space_dict()
    data["space"]["lr"] = {"type": "float", "low": low, "high": low * span, "log": log}
    data["space"]["epochs"] = {"type": "categorical", "choices": epochs}
    spec = parse_space(data)
    from mnistlab.config import tomllib

    again = parse_space(tomllib.loads(spec_toml(spec)))
    assert again.fingerprint() == spec.fingerprint()
    assert again.compare == spec.compare


def test_the_written_space_keeps_its_spanish_texts():
    """space.toml left out the [es] table: a Spanish report made from it was titled in
    English and read "Frente a the reference reentrenada"."""
    from mnistlab.config import tomllib

    data = space_dict()
    data["es"] = {"title": "Búsqueda mínima", "compare_label": "la de referencia"}
    spec = parse_space(data)
    again = parse_space(tomllib.loads(spec_toml(spec)))
    assert again.translations == spec.translations == {"es": data["es"]}
    assert again.fingerprint() == spec.fingerprint()


def test_fashion_mlp_preset_and_its_quick_form():
    assert "fashion-mlp" in list_presets()
    spec = load_space("fashion-mlp")
    by = {p.name: p for p in spec.params}
    assert set(by) >= {"lr", "optimizer", "momentum", "dropout", "hidden", "batch_size",
                       "epochs", "weight_decay"}
    assert by["lr"].log and by["momentum"].when == {"optimizer": ("sgd",)}
    assert spec.base.dataset == "fashion-mnist" and spec.base.model == "mlp"
    assert spec.compare.val == 87.99 and spec.compare_config().batch_size == 32
    quick = spec.with_quick()
    assert quick.is_quick and quick.name == "fashion-mlp-quick"
    assert quick.base.train_subset > 0 and quick.base.epochs <= 3
    assert {p.name: p for p in quick.params}["epochs"].high <= 3
    assert quick.compare_config().epochs <= 3
    assert quick.fingerprint() != spec.fingerprint()
    assert quick.text("title", "es").startswith("Fashion-MNIST con MLP")
    assert spec.text("compare_label", "es") == "la configuración final del original"
    assert spec.text("compare_label", "en") == spec.compare.label


# --- searching -------------------------------------------------------------------------------
def _states(study):
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_search_writes_report_files_and_is_reproducible(space_file, tmp_path):
    spec = load_space(str(space_file))
    result = run_tune(spec, tmp_path / "a",
                      options=TuneOptions(trials=7, retrain_seeds=2, seed=3))
    out = tmp_path / "a"
    for name in ("tune.db", "trials.csv", "best.toml", "space.toml", "report.md",
                 "report.html", "plots/history.png", "plots/importances.png",
                 "plots/parallel.png", "plots/slices.png"):
        assert (out / name).is_file(), name
    assert len(result.by_state("COMPLETE")) + len(result.by_state("PRUNED")) == 7
    assert result.best is not None and result.best.value == max(
        t.value for t in result.by_state("COMPLETE"))
    assert [r.config.seed for r in result.retrained] == [1, 2]
    assert all(r.summary.test_accuracy is not None for r in result.retrained + result.compared)
    assert len(result.compared) == 2
    # whole run folders, as the Ray backend writes them (they lacked their plots here)
    assert all((r.out / name).is_file() for r in result.retrained + result.compared
               for name in ("curves.png", "confusion.png"))
    # importances: several fANOVA evaluations per parameter, normalised per evaluation
    assert result.importances and all(len(v) == 5 for v in result.importances.values())
    report = (out / "report.md").read_text()
    for heading in ("## Best trial", "## Trials", "## Optimisation history",
                    "## Parameter importances", "## Parallel coordinates", "## Slice plots",
                    "## Best configuration, retrained", "plain sgd, published"):
        assert heading in report
    assert f"Trial {result.best.number} reached" in report
    # both configurations scored on the test set: it said "used once, by the best" (hunt)
    assert "The test set is used once by each of two configurations" in report
    assert "The test set is used once, by the retrained best" not in report
    # the command names best.toml where it is from where the search ran (it said best.toml)
    assert f"`mnistlab train --config {out / 'best.toml'}`, run where this search was" in report
    assert "(mean ± sd over n = 2 retrained seeds)" in report
    # words (state, the trial's settings) read from the left, numbers line up on the right
    assert ("| trial | state | val acc | epochs | training s | settings |\n"
            "|:---|:---|---:|---:|---:|:---|") in report
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    # the settings: a column of prose that keeps its room on a phone
    assert '<td class=\'prose\' style="text-align:left">optimizer=' in html
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == 8 and csv_lines[0].startswith("number,state,val_acc")
    # the same seed on a fresh storage proposes the same trials
    again = run_tune(spec, tmp_path / "b",
                     options=TuneOptions(trials=3, retrain_seeds=0, report=False, seed=3))
    assert [t.params for t in again.trials] == [t.params for t in result.trials[:3]]


def test_a_spanish_search_s_retrained_runs_draw_their_figures_in_spanish(space_file, tmp_path,
                                                                        monkeypatch):
    """The retrained runs' folders held English curves and confusion matrices under a Spanish
    report: --lang did not reach the runs the search retrained."""
    from mnistlab import figures

    langs: list[tuple[str, str]] = []
    for name in ("learning_curves", "confusion"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *a, _n=name, _r=real, **k: langs.append(
            (_n, k.get("lang", a[-1]))) or _r(*a, **k))
    run_tune(load_space(str(space_file)), tmp_path / "a",
             options=TuneOptions(trials=2, retrain_seeds=1, seed=3, lang="es"))
    # the best configuration and the comparison, one seed each
    assert sorted(langs) == sorted([("confusion", "es"), ("learning_curves", "es")] * 2)


def test_the_comparison_leads_with_the_test_set_and_a_test_published_figure_meets_it(
        space_file, tmp_path):
    """A reader pass (hunt): the only interval was the validation difference, on the set the
    search chose the configuration on; the test difference, the fair one, had none. A
    published figure measured on the test set was set beside our validation accuracy. Rerun
    in Spanish, the retrained runs kept their English figures."""
    from mnistlab import files

    space_file.write_text(space_file.read_text() + 'val_from = "test"\n')
    result = run_tune(load_space(str(space_file)), tmp_path / "a",
                      options=TuneOptions(trials=2, retrain_seeds=2, seed=3))
    report = (tmp_path / "a" / "report.md").read_text()
    said = report.split("Against plain sgd retrained here with the same seeds: ")[1]
    assert re.match(r"[+-]\d+\.\d\d points of test accuracy \(\d+\.\d\d% vs \d+\.\d\d%; "
                    r"95% interval [+-]", said), said[:200]
    assert "which favours it there: the test figure is the fair one." in said
    test_mean = statistics.mean(r.summary.test_accuracy for r in result.retrained) * 100
    assert (f"Against the published 50.00% of plain sgd, measured on the test set, our test "
            f"accuracy: {test_mean - 50:+.2f} points.") in report
    assert "| plain sgd, published | — | — | 50.00 |" in report
    run_tune(load_space(str(space_file)), tmp_path / "a",
             options=TuneOptions(trials=2, retrain_seeds=2, seed=3, lang="es"))
    assert {files.figure_language(r.out / name) for r in result.retrained + result.compared
            for name in ("curves.png", "confusion.png")} == {"es"}


def test_the_best_configuration_names_what_it_reads_and_true_as_files_write_it():
    """A reader pass (hunt): the best trial's full configuration showed momentum=0.5 beside
    Adam, which does not read it; the English trials table wrote nesterov=False."""
    from mnistlab.report.tune import _key_settings, _read_settings, _settings

    adam = TrainConfig(optimizer="adam", momentum=0.5)
    assert "momentum" not in _read_settings(adam)
    assert "momentum" in _read_settings(adam.replace(optimizer="sgd"))
    # a search's base names what its trials may draw beside it (review: an Adam base with sgd
    # searched lost its momentum, one with cnn searched its filters)
    assert {"momentum", "filters"} <= set(_key_settings(adam, "mlp", "cnn"))
    assert _settings({"nesterov": False, "lr": 0.01}, "en") == "nesterov=false, lr=0.01"
    # an ensemble and label smoothing were left out of the base and the best configuration
    # (hunt), and a searched setting at its default from the best one; the seed and where it
    # trains stay out
    two = adam.replace(ensemble=2, label_smoothing=0.1, seed=7, device="cpu")
    assert {"ensemble", "label_smoothing"} <= set(_key_settings(two, "mlp"))
    assert not {"seed", "device"} & set(_key_settings(two, "mlp"))
    assert "ensemble" in _read_settings(adam, ["ensemble"])


def test_a_space_without_spanish_texts_is_said_and_its_default_label_is_ours():
    """A Spanish report of a space file without `es` texts read "Frente a the reference
    reentrenada" and "# Hunt space" without a word (hunt): the file's own texts are named
    in a warning, and a [compare] without a label is named in the report's language."""
    data = space_dict()
    data.update(title="Hunt space")
    data["compare"] = {"settings": {"lr": 0.01}}
    spec = parse_space(data)
    assert spec.text("compare_label", "es") == "la configuración de referencia"
    assert spec.text("compare_label", "en") == "the reference configuration"
    assert spec.untranslated("es") == ["title"] and spec.untranslated("en") == []
    with pytest.warns(UserWarning, match=r"--lang es: the space file gives no es text for "
                                         r"title; the report shows them as written"):
        TuneOptions(lang="es").apply(spec)
    data["es"] = {"title": "Búsqueda"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TuneOptions(lang="es").apply(parse_space(data))
    # what earlier versions wrote into space.toml for no label is no label (review)
    data["compare"]["label"] = "reference configuration"
    assert parse_space(data).text("compare_label", "es") == "la configuración de referencia"


def test_a_conditional_setting_is_checked_where_it_is_drawn():
    """`nesterov` drawn only beside sgd, with momentum searched, was refused on an Adam base
    with no momentum: "needs --optimizer sgd and --momentum > 0" (hunt); where nothing drawn
    makes it valid, it still is."""
    data = space_dict()
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "momentum": {"type": "float", "low": 0.1, "high": 0.95,
                                  "when": {"optimizer": "sgd"}},
                     "nesterov": {"type": "categorical", "choices": [False, True],
                                  "when": {"optimizer": "sgd"}}}
    data["base"].update(optimizer="adam", momentum=0.0)
    assert [p.name for p in parse_space(data).params] == ["optimizer", "momentum", "nesterov"]
    # whatever the order of the choices and `when` values (review: one order was accepted,
    # the other refused)
    for order in (["sgd", "adam"], ["adam", "sgd"]):
        data["space"]["optimizer"]["choices"] = order
        data["space"]["nesterov"]["when"] = {"optimizer": order}
        assert [p.name for p in parse_space(data).params][-1] == "nesterov"
    del data["space"]["momentum"]  # nothing drawn gives it momentum: refused
    with pytest.raises(MnistlabError, match="nesterov: needs --optimizer sgd and --momentum"):
        parse_space(data)


def test_a_choice_that_never_goes_with_one_choice_above_it_is_told_its_when():
    """`nesterov` searched beside `optimizer = ["sgd", "adam"]` on a base with momentum: each
    trial that drew true with adam failed, one by one (hunt). Refused with the `when` that
    draws it only beside sgd, which is then taken."""
    data = space_dict()
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "nesterov": {"type": "categorical", "choices": [False, True]}}
    data["base"].update(optimizer="sgd", momentum=0.9)
    with pytest.raises(MnistlabError) as info:
        parse_space(data)
    assert str(info.value) == (
        'space space.nesterov: true cannot go with optimizer = "adam" (nesterov: needs '
        "--optimizer sgd and --momentum > 0); draw it only beside the others: when = "
        '{ optimizer = ["sgd"] }')
    data["space"]["nesterov"]["when"] = {"optimizer": ["sgd"]}
    assert [p.name for p in parse_space(data).params] == ["optimizer", "nesterov"]
    # review: drawn beside momentum 0.9, itself drawn beside sgd alone, it never meets adam
    # (it was refused, and each `when` pasted sent the user to the other); a `when` of its
    # own is kept in the one told
    data["base"].update(momentum=0.0)
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "momentum": {"type": "categorical", "choices": [0.0, 0.9],
                                  "when": {"optimizer": "sgd"}},
                     "nesterov": {"type": "categorical", "choices": [True, False],
                                  "when": {"momentum": 0.9}}}
    assert [p.name for p in parse_space(data).params][-1] == "nesterov"
    del data["space"]["momentum"]["when"]
    with pytest.raises(MnistlabError, match=r"draw it only beside the others: when = "
                                            r"\{ momentum = \[0.9\], optimizer = \[\"sgd\"\] \}$"):
        parse_space(data)
    data["space"]["nesterov"]["when"] = {"momentum": [0.9], "optimizer": ["sgd"]}
    assert [p.name for p in parse_space(data).params][-1] == "nesterov"
    # review: momentum drawn beside sgd and adam, nesterov beside momentum 0.9 alone, was let
    # through (the chain's settings went unchecked) and its adam trials failed
    data["space"]["optimizer"]["choices"] = ["sgd", "adam", "adamw"]
    data["space"]["momentum"]["when"] = {"optimizer": ["sgd", "adam"]}
    data["space"]["nesterov"]["when"] = {"momentum": [0.9]}
    with pytest.raises(MnistlabError, match=r'cannot go with optimizer = "adam" .*when = '
                                            r'\{ momentum = \[0.9\], optimizer = \["sgd"\] \}$'):
        parse_space(data)
    # review: two settings never drawn together are not checked against each other
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "nesterov": {"type": "categorical", "choices": [False, True],
                                  "when": {"optimizer": "sgd"}},
                     "label_smoothing": {"type": "categorical", "choices": [0.0, 0.2],
                                         "when": {"optimizer": "adam"}}}
    data["base"].update(momentum=0.9)
    assert [p.name for p in parse_space(data).params][-1] == "label_smoothing"


def test_a_when_that_never_holds_through_the_chain_is_refused():
    """Hunt: nesterov drawn beside adam and momentum 0.9, momentum drawn beside sgd alone, was
    taken, and the search never drew nesterov at all, without a word."""
    data = space_dict()
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "momentum": {"type": "categorical", "choices": [0.0, 0.9],
                                  "when": {"optimizer": "sgd"}},
                     "nesterov": {"type": "categorical", "choices": [False, True],
                                  "when": {"optimizer": "adam", "momentum": [0.9]}}}
    with pytest.raises(MnistlabError) as info:
        parse_space(data)
    assert str(info.value) == (
        "space space.nesterov.when: never holds, so this setting would never be drawn: it asks "
        'for optimizer = ["adam"], and momentum (which it is drawn beside) is drawn only where '
        'optimizer = ["sgd"]; give them a value in common')
    data["space"]["nesterov"]["when"]["optimizer"] = ["sgd", "adam"]
    assert [p.name for p in parse_space(data).params][-1] == "nesterov"
    # review: a setting of the chain that takes the value asked is no part of the clash
    data["space"] = {
        "batch_size": {"type": "categorical", "choices": [64, 128]},
        "dropout": {"type": "categorical", "choices": [0.0, 0.2],
                    "when": {"batch_size": [64, 128]}},
        "label_smoothing": {"type": "categorical", "choices": [0.0, 0.1],
                            "when": {"batch_size": [64]}},
        "weight_decay": {"type": "categorical", "choices": [0.0, 0.001],
                         "when": {"dropout": [0.2], "label_smoothing": [0.1], "batch_size": [128]}}}
    with pytest.raises(MnistlabError, match=r"it asks for batch_size = \[128\], and "
                                            r"label_smoothing \(which it is drawn beside\) is "
                                            r"drawn only where batch_size = \[64\]; give"):
        parse_space(data)


def test_a_value_valid_only_beside_two_searched_settings_is_accepted():
    """nesterov = true needs sgd and momentum > 0 at once: searched beside both, without a
    `when`, it was refused, each checked alone (a trial that draws it with adam fails, named,
    as before); where no combination makes it valid, it still is refused."""
    data = space_dict()
    data["space"] = {"optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
                     "momentum": {"type": "float", "low": 0.0, "high": 0.9},
                     "nesterov": {"type": "categorical", "choices": [False, True]}}
    data["base"].update(optimizer="adam", momentum=0.0)
    assert [p.name for p in parse_space(data).params] == ["optimizer", "momentum", "nesterov"]
    # settings searched above, with many values, do not crowd out the pair that matters
    # (review: five of ten choices each; a thousand batch sizes)
    data["space"] = {**{name: {"type": "categorical", "choices": choices} for name, choices in (
        ("lr", [0.001 * (i + 1) for i in range(10)]), ("dropout", [i / 20 for i in range(10)]),
        ("weight_decay", [i / 1000 for i in range(10)]), ("epochs", list(range(1, 11))),
        ("batch_size", list(range(1, 1001))))}, **data["space"]}
    assert parse_space(data).params[-1].name == "nesterov"
    # a `when` of 4 x 4 x 4 values beside eleven more searched settings (review: the first
    # groups of settings beside each of its combinations used the whole budget)
    data["space"] = {**{name: {"type": "categorical", "choices": choices} for name, choices in (
        ("batch_size", [16, 32, 64, 128]), ("dropout", [0.0, 0.1, 0.2, 0.3]),
        ("label_smoothing", [0.0, 0.05, 0.1, 0.2]), ("epochs", [1, 2]),
        ("weight_decay", [0.0, 1e-4]), ("ema", [0.0, 0.99]), ("tta", [False, True]),
        ("activation", ["relu", "gelu"]), ("schedule", ["constant", "cosine"]),
        ("lr", [0.01, 0.1]), ("eval_train_size", [100, 200]),
        ("optimizer", ["adam", "sgd"]), ("momentum", [0.0, 0.9]))},
        "nesterov": {"type": "categorical", "choices": [False, True], "when": {
            "batch_size": [16, 32, 64, 128], "dropout": [0.0, 0.1, 0.2, 0.3],
            "label_smoothing": [0.0, 0.05, 0.1, 0.2]}}}
    assert parse_space(data).params[-1].name == "nesterov"
    data["space"]["optimizer"]["choices"] = ["adam", "adamw"]
    with pytest.raises(MnistlabError, match="nesterov: needs --optimizer sgd and --momentum"):
        parse_space(data)


def test_rerun_resumes_and_adds_only_missing_trials(space_file, tmp_path):
    spec = load_space(str(space_file))
    out = tmp_path / "search"
    first = run_tune(spec, out, options=TuneOptions(trials=3, report=False))
    assert first.ran_here == 3
    more = run_tune(spec, out, options=TuneOptions(trials=5, report=False))
    assert more.ran_here == 2 and len(more.trials) == 5
    assert [t.params for t in more.trials[:3]] == [t.params for t in first.trials]
    assert run_tune(spec, out, options=TuneOptions(trials=5, report=False)).ran_here == 0
    # a worker with another device is a worker of the same search
    assert run_tune(spec, out, options=TuneOptions(trials=5, report=False,
                                                   device="auto")).ran_here == 0
    # the space as a dict is the same search (read as its file would be; hunt: "not dict")
    from mnistlab.config import tomllib

    as_dict = tomllib.loads(space_file.read_text())
    assert run_tune(as_dict, out, options=TuneOptions(trials=5, report=False)).ran_here == 0
    with pytest.raises(MnistlabError, match=r"^out: give a folder"):
        run_tune(as_dict, 12.5)
    # a changed space must not be mixed into the stored study
    changed = parse_space({**space_dict(str(spec.base.dataset)),
                           "space": {"lr": {"type": "float", "low": 0.01, "high": 0.1}}})
    with pytest.raises(MnistlabError, match="different search space"):
        run_tune(changed, out, options=TuneOptions(trials=6, report=False))


def test_a_search_resumes_only_with_the_seed_and_pruner_it_started_with(space_file, tmp_path):
    """Resumed with others, it mixed two ways of drawing trials, and the report named the new
    ones as how the whole search ran."""
    spec = load_space(str(space_file))
    out = tmp_path / "search"
    run_tune(spec, out, options=TuneOptions(trials=1, report=False, retrain_seeds=0))
    for other in (dict(seed=5), dict(pruner="hyperband")):
        # on a shared storage another --out alone did not do (hunt): the advice says so, the
        # name first (a new --out was told to use another --out: hunt)
        with pytest.raises(MnistlabError, match="started with --seed 0 --pruner median; resume "
                                                "it with those, or give a new search another "
                                                "--study-name \\(in a shared --storage\\) or "
                                                "another --out$"):
            run_tune(spec, out, options=TuneOptions(trials=2, report=False, retrain_seeds=0,
                                                    **other))
    assert run_tune(spec, out, options=TuneOptions(trials=2, report=False,
                                                   retrain_seeds=0)).ran_here == 1


def test_a_study_stopped_before_its_first_trial_takes_the_mended_space(tmp_path):
    """A search that stopped before its first trial (its data not there on a cluster) left a
    study the mended space file was refused ("made from a different search space"): with no
    trial in it there is nothing to mix. One trial in it, and a changed space is refused."""
    spec = parse_space(space_dict())
    mended = dataclasses.replace(spec, base=spec.base.replace(lr=0.02))
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    open_study(spec, url, study_name="s")
    study = open_study(mended, url, study_name="s")
    assert study.user_attrs["mnistlab_space"] == mended.fingerprint()
    study.optimize(lambda trial: trial.suggest_float("lr", 0.001, 0.1), n_trials=1)
    with pytest.raises(MnistlabError, match="different search space"):
        open_study(spec, url, study_name="s")


def test_a_search_fingerprinted_with_its_device_resumes_there_once_and_then_anywhere(tmp_path):
    import optuna

    spec = parse_space(space_dict())  # device = "cpu"
    elsewhere = dataclasses.replace(spec, base=spec.base.placed(device="auto"))
    assert elsewhere.fingerprint() == spec.fingerprint() != spec.fingerprint(placed=True)
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    made_before = optuna.create_study(storage=url, study_name="s")
    made_before.set_user_attr("mnistlab_space", spec.fingerprint(placed=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made_before.optimize(lambda trial: trial.suggest_float("lr", 0.001, 0.1), n_trials=1)
    # its fingerprint hashed "cpu": until it is resumed there, another device cannot tell it
    # from another search
    with pytest.raises(MnistlabError, match="different search space"):
        open_study(elsewhere, url, study_name="s")
    open_study(spec, url, study_name="s")
    assert open_study(elsewhere, url, study_name="s").user_attrs["mnistlab_space"] == \
        spec.fingerprint()


@pytest.mark.parametrize("placed", [False, True])
def test_a_search_of_the_first_release_resumes(tmp_path, placed):
    """Hunt: a search made by 0.1.0 was refused as "made from a different search space", its
    space file the same: the fingerprint now hashes the settings added since (ensemble, ema,
    tta, precision, blocks), at their defaults there."""
    import optuna

    spec = parse_space(space_dict())
    first = spec.fingerprint(placed=placed, first_release=True)
    assert first != spec.fingerprint()
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    made_before = optuna.create_study(storage=url, study_name="s")
    made_before.set_user_attr("mnistlab_space", first)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made_before.optimize(lambda trial: trial.suggest_float("lr", 0.001, 0.1), n_trials=1)
    assert open_study(spec, url, study_name="s").user_attrs["mnistlab_space"] == \
        spec.fingerprint()


@pytest.mark.parametrize("typed", ["data", "data/", "./data"])
def test_a_search_fingerprinted_with_a_relative_data_dir_resumes_with_it(tmp_path, monkeypatch,
                                                                         typed):
    """--data-dir data is kept absolute now (its runs' config.toml named it relative, and
    `evaluate` from elsewhere missed it: hunt); a search made before placement left the
    fingerprint hashed "data", and was refused as another space (review)."""
    import optuna

    monkeypatch.chdir(tmp_path)
    spec = parse_space(space_dict())
    before = dataclasses.replace(spec, base=spec.base.placed(data_dir=typed))
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    made_before = optuna.create_study(storage=url, study_name="s")
    made_before.set_user_attr("mnistlab_space", before.fingerprint(placed=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made_before.optimize(lambda trial: trial.suggest_float("lr", 0.001, 0.1), n_trials=1)
    now = TuneOptions(data_dir=typed).apply(spec)
    assert now.base.data_dir == str(tmp_path / "data")
    assert open_study(now, url, study_name="s").user_attrs["mnistlab_space"] == \
        spec.fingerprint()


def _nesterov_space(data_dir, momenta: list[float], nesterov: list[bool]):
    data = space_dict(data_dir)
    data["base"].update(optimizer="sgd", momentum=0.9, epochs=1)
    data["space"] = {"momentum": {"type": "categorical", "choices": momenta},
                     "nesterov": {"type": "categorical", "choices": nesterov}}
    del data["compare"]
    return parse_space(data)  # each value is fine alone; nesterov without momentum is not


def test_settings_that_cannot_go_together_fail_their_trial_and_the_search_goes_on(
        tiny_idx_dir, tmp_path, caplog):
    import logging

    spec = _nesterov_space(str(tiny_idx_dir), [0.0], [False, True])
    seen = []  # Optuna's own handler writes to the terminal; a handler of ours sees the same
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger("optuna").addHandler(handler)
    try:
        result = run_tune(spec, tmp_path / "s", options=TuneOptions(trials=3, report=False))
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    # the trial's row says why; Optuna's "[W ...] Trial 0 failed with value None." did too
    assert not [m for m in seen if "failed" in m], seen
    assert len(result.by_state("COMPLETE")) + len(result.by_state("PRUNED")) == 3
    failed = result.by_state("FAIL")
    assert failed and all(t.params["nesterov"] for t in failed)
    assert all("nesterov: needs --optimizer sgd and --momentum > 0" in t.user_attrs["error"]
               for t in failed)
    assert "Traceback" not in caplog.text


def test_a_space_whose_draws_never_go_together_stops_in_one_line(tiny_idx_dir, tmp_path,
                                                                caplog):
    from mnistlab.tune.search import INVALID_IN_A_ROW

    spec = _nesterov_space(str(tiny_idx_dir), [0.0], [True])
    with pytest.raises(MnistlabError, match=f"{INVALID_IN_A_ROW} trials in a row drew settings "
                                            "that cannot go together .*; narrow the space"):
        run_tune(spec, tmp_path / "s", options=TuneOptions(trials=3, report=False))
    assert "Traceback" not in caplog.text


def test_a_model_the_images_are_too_small_for_is_refused_or_fails_its_trial(tmp_path):
    """lenet5 drawn for 8x8 images stopped the search at its trial, on every rerun (the study
    then held FAIL, FAIL, COMPLETE, FAIL and could not get past them). Among the choices, or
    as the base, it is now refused before the folder is made (TPE, which does not see failed
    trials, would draw it on every trial once its start is over); where a setting that shapes
    it is searched too, its trials fail alone and the search draws on."""
    data = space_dict(str(eight_pixel_folder(tmp_path / "eight")))
    data["base"].update(model="mlp", hidden=[16], epochs=1, val_size=150)
    data["space"] = {"model": {"type": "categorical", "choices": ["mlp", "lenet5"]},
                     "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}}
    del data["compare"]
    with pytest.raises(MnistlabError, match="tiny space.model: lenet5 needs images of "
                       "at least 12x12 .* these are 8x8; use cnn or mlp or resnet; leave it out of "
                       "the choices"):
        run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(trials=3,
                                                                         report=False))
    assert not (tmp_path / "s").exists()
    base = {**data, "base": {**data["base"], "model": "lenet5"},
            "space": {"lr": data["space"]["lr"]}}
    with pytest.raises(MnistlabError, match=r"tiny \[base\]: lenet5 needs images"):
        run_tune(parse_space(base), tmp_path / "s", options=TuneOptions(trials=3,
                                                                         report=False))
    # lenet5's variant does not change its depth: still refused (review: TPE drew it on
    # every trial after its start where a setting of the model was searched beside it)
    data["space"]["variant"] = {"type": "categorical", "choices": ["classic", "modern"]}
    with pytest.raises(MnistlabError, match="tiny space.model: lenet5 needs images"):
        run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(trials=3,
                                                                         report=False))
    # on an existing folder too (an empty one given as --out)
    (tmp_path / "s").mkdir()
    with pytest.raises(MnistlabError, match="tiny space.model: lenet5 needs images"):
        run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(trials=3,
                                                                         report=False))


def test_trials_in_a_row_whose_model_does_not_fit_stop_the_search_saying_so():
    """Where only some drawn depths do not fit, such trials fail alone; ten in a row stop
    the search, named as what they are (they were "settings that cannot go together")."""
    from mnistlab.models import DoesNotFit
    from mnistlab.tune.search import INVALID_IN_A_ROW, InvalidTrial, count_invalid

    counted = [INVALID_IN_A_ROW - 2]
    assert isinstance(count_invalid(DoesNotFit("too small"), counted, does_not_fit=True),
                      InvalidTrial)
    stop = count_invalid(DoesNotFit("too small"), counted, does_not_fit=True)
    assert str(stop).startswith(f"tune: {INVALID_IN_A_ROW} trials in a row drew a model the "
                                "data does not fit (last: too small)")


def test_data_that_fails_every_trial_is_said_before_the_folder_is_made(tmp_path):
    """A validation split too large for the data failed the first trial after tune.db was
    made: the same command with the file mended was "made from a different search space"."""
    data = space_dict(str(eight_pixel_folder(tmp_path / "eight")))
    data["base"].update(model="mlp", hidden=[16], epochs=1, val_size=10_000)
    del data["compare"]
    with pytest.raises(MnistlabError, match=r"tiny \[base\] val_size = 10,000 is out of range "
                       r"for 600 training images in 3 classes; use from 3 \(one per class\)"):
        run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(trials=2,
                                                                         report=False))
    assert not (tmp_path / "s").exists()
    # --quick's own 1,000: said as the quick form's, not as a flag tune has not (hunt)
    with pytest.raises(MnistlabError, match=r"tiny-quick \[quick\] val_size = 1,000 is out"):
        run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(
            trials=2, report=False, quick=True))
    data["base"]["val_size"] = 150
    assert len(run_tune(parse_space(data), tmp_path / "s", options=TuneOptions(
        trials=2, report=False)).by_state("COMPLETE")) >= 1


def test_two_searches_started_together_on_one_new_folder_are_one_refused(space_file, tmp_path,
                                                                         monkeypatch):
    """Both were taken (the folder's check came before either had written anything): its
    tune.db then held two studies, space.toml named one and search.json the other, and
    neither search could be resumed or reported again. Here the second starts while the
    first is opening its study."""
    import importlib
    import threading
    import time

    search_module = importlib.import_module("mnistlab.tune.search")  # the package's name is
    spec = load_space(str(space_file))  # its function's
    other = parse_space({**space_dict(str(spec.base.dataset)), "name": "other"})
    out = tmp_path / "search"
    url = search_module.default_storage(out)
    opening, go = threading.Event(), threading.Event()
    real = search_module.open_study

    def slow_for_the_first(space, *args, **kwargs):
        if space.name == "tiny" and not opening.is_set():
            opening.set()
            go.wait(20)
        return real(space, *args, **kwargs)

    monkeypatch.setattr(search_module, "open_study", slow_for_the_first)
    said: dict[str, object] = {}
    heard: dict[str, list[str]] = {"first": [], "second": []}

    def start(space, key):
        try:
            search_module.check_same_search(out, space, url, space.name)  # as search() does
            search_module._start(space, out, url, space.name, 0, "median",
                                 on_wait=heard[key].append, lang="es")  # as --lang es
            said[key] = "started"
        except MnistlabError as exc:
            said[key] = str(exc)

    first = threading.Thread(target=start, args=(spec, "first"))
    first.start()
    assert opening.wait(20)
    second = threading.Thread(target=start, args=(other, "second"))
    second.start()
    time.sleep(1.0)  # the second reaches the folder's start while the first is in it
    go.set()
    first.join(30)
    second.join(30)
    assert said["first"] == "started"
    assert f"--out {out}: holds the search 'tiny', not 'other'" in str(said["second"])
    assert "name = \"tiny\"" in (out / "space.toml").read_text()
    assert json.loads((out / "search.json").read_text())["study"] == "tiny"
    # the wait is said (on a slow remote storage it lasted minutes in silence)
    assert heard == {"first": [], "second": [f"{out}: otro proceso está abriendo esta "
                                             f"búsqueda ({url}); esperándolo"]}


def test_a_folder_of_another_search_is_refused(space_file, tmp_path, monkeypatch):
    spec = load_space(str(space_file))
    out = tmp_path / "search"
    run_tune(spec, out, options=TuneOptions(trials=1, report=False))
    before = (out / "space.toml").read_text()
    with pytest.raises(MnistlabError, match=f"--out {out}: holds the search 'tiny', not "
                                            "'tiny-quick'; use another --out"):
        run_tune(spec, out, options=TuneOptions(trials=1, report=False, quick=True))
    assert (out / "space.toml").read_text() == before
    # another study or storage: the report, trials.csv and best.toml were replaced by its
    # search's, the folder's tune.db kept (a bug hunt)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    for flags, held in (({"study_name": "other"}, "'other' in the folder's tune.db"),
                        ({"storage": other}, f"'tiny' in {other}")):
        with pytest.raises(MnistlabError, match=f"--out {out}: holds the study 'tiny' in the "
                           f"folder's tune.db, not {held}; use another --out"):
            run_tune(spec, out, options=TuneOptions(trials=1, report=False, **flags))
    # a damaged space.toml is no other search: the search resumes, and writes it again
    (out / "space.toml").write_text(before[:20])
    assert run_tune(spec, out, options=TuneOptions(trials=1, report=False)).ran_here == 0
    assert (out / "space.toml").read_text() == before
    # the folder moved: its own tune.db is still its own, however its URL is written
    moved = out.rename(tmp_path / "moved")
    assert run_tune(spec, moved, options=TuneOptions(trials=1, report=False)).ran_here == 0
    monkeypatch.chdir(tmp_path)
    relative = TuneOptions(trials=1, report=False, storage="sqlite:///moved/tune.db")
    assert run_tune(spec, moved, options=relative).ran_here == 0
    # a folder that recorded postgres:// (before it was read as postgresql://) is that server
    from mnistlab.files import write_json
    from mnistlab.tune.search import _search_record, check_same_search

    (tmp_path / "pg").mkdir()
    write_json(tmp_path / "pg" / "search.json", {"study": spec.name,
                                                 "storage": "postgres://me:***@db/t"})
    check_same_search(tmp_path / "pg", spec, "postgres://me:pw@db/t", spec.name)
    # one server, with its driver named or not
    assert _search_record(moved, "postgresql+psycopg2://me:pw@db/t", "x") == _search_record(
        moved, "postgresql://me:pw@db/t", "x") == _search_record(
        moved, "postgres://me:pw@db/t", "x") == {"study": "x",  # an alias of one server (hunt)
                                                 "storage": "postgresql://me:***@db/t"}
    # a folder made before search.json: the studies its tune.db holds say which it is
    (moved / "search.json").unlink()
    with pytest.raises(MnistlabError, match="holds the study 'tiny' in the folder's tune.db, "
                                            "not 'other' in the folder's tune.db"):
        run_tune(spec, moved, options=TuneOptions(trials=1, report=False, study_name="other"))
    assert run_tune(spec, moved, options=TuneOptions(trials=1, report=False)).ran_here == 0


def test_a_storage_that_stops_taking_writes_is_one_line(space_file, tmp_path, monkeypatch,
                                                       caplog):
    import sqlalchemy.exc

    from mnistlab.tune.search import storage_failure

    def full(self, *args, **kwargs):
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit") \
            from sqlalchemy.exc.OperationalError("COMMIT", {}, "database or disk is full")

    import optuna

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_intermediate_value", full)
    with pytest.raises(MnistlabError) as info:
        run_tune(load_space(str(space_file)), tmp_path / "s",
                 options=TuneOptions(trials=2, report=False))
    assert info.value.exit_code == 1
    assert str(info.value).startswith(f"storage sqlite:///{tmp_path / 's' / 'tune.db'}: cannot "
                                      "write the search (")
    assert "database or disk is full" in str(info.value)
    assert "Traceback" not in caplog.text
    assert storage_failure(ValueError("x"), "sqlite://") is None


def test_the_closing_line_counts_a_diverged_retrain_instead_of_failing(tmp_path):
    from types import SimpleNamespace

    from mnistlab.cli.study import _tune_line

    runs = [SimpleNamespace(summary=SimpleNamespace(test_accuracy=a)) for a in (0.9, None, 0.8)]
    result = SimpleNamespace(trials=[], by_state=lambda state: [], best=None, retrained=runs,
                             seconds=3.0, ran_here=0)
    line = _tune_line(result, tmp_path, report=False)
    assert "retrained test acc 0.8500 (n=2) · 1 retrained run diverged" in line
    spanish = _tune_line(result, tmp_path, report=True, lang="es")  # the report's language
    assert ("reentrenada: exactitud de prueba 0,8500 (n=2) · 1 ejecución reentrenada divergió "
            "· informe: ") in spanish and spanish.startswith("carpeta de la búsqueda: ")
    # a trial still running (another worker's) was counted and not named: 7 = 6 + 0
    def trial(state, status="completed"):
        return SimpleNamespace(state=SimpleNamespace(name=state), user_attrs={"status": status})

    states = {"COMPLETE": [trial("COMPLETE")] * 6, "RUNNING": [trial("RUNNING")]}
    result.trials = [trial for found in states.values() for trial in found]
    result.by_state = lambda state: states.get(state, [])
    assert ("7 trials in the study (6 complete, 0 pruned, 1 unfinished (running or waiting); "
            "0 run here)") in _tune_line(result, tmp_path, report=False)
    # review: two diverged trials were "2 complete"
    states["COMPLETE"][:2] = [trial("COMPLETE", "diverged")] * 2
    assert ("7 trials in the study (4 complete, 0 pruned, 2 diverged, 1 unfinished (running or "
            "waiting); 0 run here)") in _tune_line(result, tmp_path, report=False)
    assert "(4 completos, 0 podados, 2 divergidos, 1 sin terminar" in _tune_line(
        result, tmp_path, report=False, lang="es")


def test_data_that_is_not_there_is_one_line_before_any_trial(tmp_path, caplog):
    import optuna

    spec = parse_space(space_dict(str(tmp_path / "no-such-folder")))
    with pytest.raises(MnistlabError, match="no-such-folder"):
        run_tune(spec, tmp_path / "s", options=TuneOptions(trials=2, report=False))
    # said before the study and its folder are made: the command mended starts afresh
    assert not (tmp_path / "s").exists() and "Traceback" not in caplog.text
    (tmp_path / "s").mkdir()  # a folder of an earlier version's, its study empty
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's' / 'tune.db'}")
    with pytest.raises(MnistlabError, match="no-such-folder"):
        run_tune(spec, tmp_path / "s", options=TuneOptions(trials=2, report=False))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's' / 'tune.db'}")
    assert study.trials == []  # no trial stored as failed


def _damaged_db(path: Path, how: str) -> None:
    import optuna

    if how == "garbage":
        path.write_bytes(b"not a database at all, " * 100)
        return
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="other")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no line per trial
    try:
        study.optimize(lambda trial: trial.suggest_float("a", 0, 1), n_trials=30)
    finally:
        optuna.logging.set_verbosity(verbosity)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        if how == "truncated":
            handle.truncate(size // 2)
        else:  # pages zeroed: "invalid data in the commit", as Optuna put it
            handle.seek(3 * 4096)
            handle.write(b"\0" * 4 * 4096)


@pytest.mark.parametrize("how", ["garbage", "truncated", "zeroed pages"])
def test_a_damaged_storage_file_is_named_at_once(space_file, tmp_path, how):
    out = tmp_path / "s"
    out.mkdir()
    _damaged_db(out / "tune.db", how)
    with pytest.raises(MnistlabError, match="is not a database, or a damaged one; move the file "
                                            "aside, or use another --out or --storage"):
        run_tune(load_space(str(space_file)), out, options=TuneOptions(trials=1, report=False))


def test_a_storage_that_cannot_be_opened_leaves_no_folder_nor_lock_behind(space_file, tmp_path):
    """The folder's start lock stayed in an empty --out given by the user: the next command
    there was told it was "not empty (it holds .start.lock)"."""
    _damaged_db(tmp_path / "bad.db", "garbage")
    options = TuneOptions(trials=1, report=False, storage=f"sqlite:///{tmp_path / 'bad.db'}")
    given = tmp_path / "given"
    given.mkdir()
    for out in (given, tmp_path / "new"):
        with pytest.raises(MnistlabError, match="is not a database"):
            run_tune(load_space(str(space_file)), out, options=options)
    assert list(given.iterdir()) == [] and not (tmp_path / "new").exists()


def test_cli_shows_trials_and_writes_a_spanish_report(space_file, tmp_path, capsys):
    out = tmp_path / "cli"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        code = main(["tune", str(space_file), "--trials", "6", "--out", str(out),
                     "--retrain-seeds", "1", "--lang", "es", "--pruner", "hyperband"])
    captured = capsys.readouterr()
    assert code == 0
    # the trials table in the search's language too (it was English under a Spanish report)
    assert "se quieren 6 ensayos terminados" in captured.err
    assert captured.err.count("completo") + captured.err.count("podado @") >= 6
    # the space's own words without Spanish are said once (twice: the table's spec, then the
    # search's; hunt), in English as errors are
    assert sum("--lang es: the space file gives no es text" in str(w.message)
               for w in said) == 1
    assert english_in(captured.err + captured.out) == []
    assert captured.out.startswith("carpeta de la búsqueda:") and "informe:" in captured.out
    report = (out / "report.md").read_text()
    for heading in ("## Método", "## Mejor ensayo", "## Ensayos", "## Historial de la "
                    "optimización", "## Importancia de los parámetros", "Poda: Hyperband",
                    "| ensayo | estado |", "## Mejor configuración, reentrenada"):
        assert heading in report
    for english in ("Best trial", "Trials", "validation accuracy", "complete |"):
        assert english not in report
    assert english_in(report) == []
    # one retrained seed has no spread: it said "mean ± sd over n = 1", showing neither
    assert "(una sola semilla reentrenada, así que sin dispersión" in report


@pytest.mark.parametrize("argv, message", [
    (["tune", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["tune", "fashion-mpl"], "unknown preset 'fashion-mpl' (did you mean fashion-mlp?)"),
    (["tune", "fashion-hparams"], "unknown preset 'fashion-hparams' (it is a preset of "
     "`mnistlab study`: run `mnistlab study fashion-hparams`)"),
    (["tune", "fashion-mlp", "--trials", "0"], "trials: must be a whole number >= 1"),
    (["tune", "fashion-mlp", "--retrain-seeds", "-1"], "retrain-seeds: must be"),
    (["tune", "fashion-mlp", "--retrain-seeds", "1000000000"],
     "retrain-seeds: must be a whole number from 0 to 1,000, got 1000000000"),
    (["tune", "fashion-mlp", "--storage", "nonsense"], "is not a database URL"),
    # no such database kind: SQLAlchemy's "Can't load plugin: sqlalchemy.dialects:http"
    (["tune", "fashion-mlp", "--storage", "http://x"], "storage: 'http://x' is not a database "
     "URL; use e.g. sqlite:///tune.db"),
    (["tune", "fashion-mlp", "--storage", "sqlite:/x.db"], "storage: 'sqlite:/x.db' is not a "
     "database URL; use e.g. sqlite:///tune.db (three slashes"),
    (["tune", "fashion-mlp", "--seed", "9223372036854775808"],
     "seed: must be a whole number from 0 to 42,848"),
    (["tune", "fashion-mlp", "--seed", "42849"], "seed: must be a whole number from 0 to"),
    (["tune", "fashion-mlp", "--seed", "-1"], "seed: must be a whole number from 0 to"),
    # a port that is no number was a traceback; a password's @ not percent-encoded showed its
    # tail and was told the host name could not be found (hunt)
    (["tune", "fashion-mlp", "--storage", "postgresql://u:secret@127.0.0.1:port/db"],
     "storage: 'postgresql://u:***@127.0.0.1:port/db' cannot be read as a URL: a port is a "
     "number, and a user or password holding @ : / # ? is written percent-encoded (%40 %3A"),
    (["tune", "fashion-mlp", "--storage", "postgresql://u:se@cret@127.0.0.1:5439/db"],
     "storage: 'postgresql://u:***@127.0.0.1:5439/db' holds @ more than once; a user or"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code = main([*argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "cret" not in err


def test_retrain_seeds_past_the_largest_seed_are_refused_before_searching(tmp_path):
    data = space_dict()
    data["base"]["seed"] = 2**62 - 3
    with pytest.raises(MnistlabError, match="from 4,611,686,018,427,387,901 to "
                                            "4,611,686,018,427,387,904, past the largest"):
        run_tune(parse_space(data), tmp_path / "x",
                 options=TuneOptions(trials=1, retrain_seeds=3))
    assert not (tmp_path / "x").exists()


def test_retrain_seeds_of_an_ensemble_count_n_seeds_each(tmp_path):
    """Each retrain of an ensemble of N takes N seeds (search.retrain_jobs): 2 retrains of 3
    networks from 2**62 - 9 reach 2**62 - 1; from 2**62 - 8 they pass it."""
    data = space_dict()
    data["base"]["ensemble"] = 3
    data["base"]["seed"] = 2**62 - 9
    TuneOptions(trials=1, retrain_seeds=2).apply(parse_space(data))
    data["base"]["seed"] = 2**62 - 8
    with pytest.raises(MnistlabError, match=r"to 4,611,686,018,427,387,904, past the largest"):
        TuneOptions(trials=1, retrain_seeds=2).apply(parse_space(data))
    # an ensemble the space can draw, or the comparison's, counts too (caught on review)
    data["base"].update(ensemble=1, seed=2**62 - 9)
    data["space"]["ensemble"] = {"type": "int", "low": 1, "high": 3}
    with pytest.raises(MnistlabError, match=r"past the largest"):
        TuneOptions(trials=1, retrain_seeds=3).apply(parse_space(data))
    del data["space"]["ensemble"]
    data["compare"]["settings"]["ensemble"] = 3
    with pytest.raises(MnistlabError, match=r"past the largest"):
        TuneOptions(trials=1, retrain_seeds=3).apply(parse_space(data))


def test_largest_seed_still_seeds_numpy():
    import numpy as np

    from mnistlab.tune.search import MAX_TUNE_SEED, SEED_STRIDE, make_sampler

    np.random.RandomState(MAX_TUNE_SEED * SEED_STRIDE + 10**7 - 1)
    assert make_sampler(MAX_TUNE_SEED).seed == MAX_TUNE_SEED


def test_a_space_without_a_name_takes_its_file_stem_made_valid(tmp_path):
    data = space_dict()
    del data["name"]
    assert parse_space(data, where=str(tmp_path / "my space.toml")).name == "my-space"


def test_cli_lists_presets(capsys):
    assert main(["tune", "--list"]) == 0
    assert "fashion-mlp" in capsys.readouterr().out


# --- several workers -------------------------------------------------------------------------
def _worker(space_file: Path, out: Path, trials: int, storage: str | None = None):
    argv = [sys.executable, "-m", "mnistlab", "tune", str(space_file), "--trials", str(trials),
            "--out", str(out), "--no-report", "--quiet"]
    if storage:
        argv += ["--storage", storage]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _check_shared_study(storage: str, name: str, trials: int, workers: int) -> None:
    study = optuna.load_study(study_name=name, storage=with_driver(storage))
    all_trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in all_trials]
    assert len(numbers) == len(set(numbers)), "duplicated trial numbers"
    assert set(_states(study)) <= {"COMPLETE", "PRUNED"}, _states(study)
    # each worker stops once the study holds enough; one in flight per other worker may finish
    assert trials <= len(all_trials) <= trials + workers - 1
    assert len({t.user_attrs["worker"] for t in all_trials}) == workers


def _wait(procs, timeout=120):
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err


def test_two_workers_share_the_sqlite_default(space_file, tmp_path):
    out = tmp_path / "shared"
    procs = [_worker(space_file, out, 10) for _ in range(2)]
    _wait(procs)
    _check_shared_study(f"sqlite:///{out / 'tune.db'}", "tiny", 10, 2)


# --- PostgreSQL ------------------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, stopped at teardown even on failure.
    PostgreSQL refuses to run as root: as root the server runs as the `postgres` user."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (Debian: apt-get install -y postgresql); "
                    "the multi-worker PostgreSQL test needs initdb and pg_ctl")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None or shutil.which("runuser") is None:
            pytest.skip("running as root without a postgres/nobody user and runuser")
        as_user = ["runuser", "-u", owner.pw_name, "--"]
    # not under tmp_path: pytest's base folder is private to root, the server user needs in
    root = Path(tempfile.mkdtemp(prefix="mnistlab-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", _free_port()

    def run(*argv: str) -> None:
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{argv[0]} failed: {done.stderr or done.stdout}"

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "tune", "--auth=trust", "--no-sync",
            "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
            "-t", "60", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off", "start")
        started = True
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tune", "tune")
        yield f"postgresql://tune@127.0.0.1:{port}/tune"
    finally:
        if started:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(space_file, tmp_path, postgres_url):
    pytest.importorskip("psycopg2", reason="psycopg2-binary (the tune extra) is not installed")
    procs = [_worker(space_file, tmp_path / f"w{i}", 10, postgres_url) for i in range(2)]
    _wait(procs)
    _check_shared_study(postgres_url, "tiny", 10, 2)
    # a third run against the same server resumes: nothing left to do, and it says so
    spec = load_space(str(space_file))
    again = run_tune(spec, tmp_path / "w3",
                     options=TuneOptions(trials=10, storage=postgres_url, report=False))
    assert again.ran_here == 0 and "tune@127.0.0.1" in again.storage


def test_storage_that_cannot_be_reached_is_one_line(space_file):
    spec = load_space(str(space_file))
    port = _free_port()  # nothing listens there
    with pytest.raises(MnistlabError, match="storage: cannot open") as err:
        open_study(spec, f"postgresql://tune@127.0.0.1:{port}/tune", study_name="x",
                   attempts=1)
    assert "\n" not in str(err.value)


def test_a_password_without_a_user_is_hidden_and_empty_names_are_refused(space_file):
    """libpq takes `postgresql://:pw@host/db` (the system's user name): its password was
    shown in full in the error and in the report's command. An empty --storage or
    --study-name was taken as the default, and the report's command then named ''."""
    spec = load_space(str(space_file))
    url = f"postgresql://:hunter2@127.0.0.1:{_free_port()}/db"
    with pytest.raises(MnistlabError) as err:
        open_study(spec, url, study_name="x", attempts=1)
    assert "hunter2" not in str(err.value) and "://:***@127.0.0.1" in str(err.value)
    assert "hunter2" not in " ".join(TuneOptions(storage=url).flags())
    for flag in ("storage", "study_name"):
        with pytest.raises(MnistlabError, match=f"^{flag.replace('_', '-')}: empty; leave it "
                                                "out for "):
            TuneOptions(**{flag: " "})


def test_encode_choice_is_what_optuna_stores():
    assert encode_choice([128, 64]) == "128-64" and encode_choice(3) == 3
    assert encode_choice("sgd") == "sgd"


@pytest.mark.slow
def test_fashion_mlp_quick_form_end_to_end(shared_datasets, tmp_path, capsys):
    out = tmp_path / "fashion"
    code = main(["tune", "fashion-mlp", "--quick", "--trials", "3", "--retrain-seeds", "1",
                 "--out", str(out), "--data-dir", str(shared_datasets), "--device", "cpu",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "quick form" in report
    assert "| the original's final configuration | 1 |" in report  # retrained beside the best
    assert "not compared with the published 87.99%" in report
    assert "fashion-mlp-quick" in (out / "space.toml").read_text()
    # its epochs are held at one value: no axis, panel or importance bar of one point
    spec = TuneOptions(quick=True).apply(load_space("fashion-mlp"))
    assert [p.name for p in spec.params if p.fixed] == ["epochs"]
    assert "| epochs |" not in report.split("## Parameter importances")[1].split("\n## ")[0]


def test_a_search_whose_settings_are_all_held_at_one_value_still_writes_its_report(
        tmp_path, tiny_idx_dir):
    """Leaving held settings out of the figures left none: the slice plot divided by zero,
    after the whole search and its retrain, and no report was written (review)."""
    space = tmp_path / "held.toml"
    space.write_text(SPACE_TOML.split("[space.optimizer]")[0].format(data=tiny_idx_dir)
                     + "[space.epochs]\ntype = \"int\"\nlow = 1\nhigh = 1\n")
    result = run_tune(load_space(str(space)), tmp_path / "t",
                      options=TuneOptions(trials=3, retrain_seeds=1))
    assert len(result.by_state("COMPLETE")) == 3
    report = (tmp_path / "t" / "report.md").read_text()
    assert "## Parallel coordinates" not in report
    assert ("Importances could not be estimated (every searched setting is held at one value "
            "here)") in report  # it said "fewer than two complete trials" of three


def test_a_search_stopped_in_a_trial_resumes_as_if_never_stopped(space_file, tmp_path,
                                                                 monkeypatch):
    """The cut trial's point is trained first on resume, and later draws are seeded by their
    place among the trials that were not cut: the same trials as a search run straight through
    (it used to draw new points past the cut one)."""
    from mnistlab import interrupt

    search_module = sys.modules["mnistlab.tune.search"]  # the package exports a search()
    spec = load_space(str(space_file))
    options = TuneOptions(trials=4, report=False, retrain_seeds=0)
    straight = run_tune(spec, tmp_path / "straight", options=options)
    real, calls = search_module.train, []

    def stopped_in_the_second(config, **kwargs):
        calls.append(config)
        if len(calls) == 2:
            interrupt.request()  # as a Ctrl-C in the middle of trial 1's training would
        return real(config, **kwargs)

    monkeypatch.setattr(search_module, "train", stopped_in_the_second)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_tune(spec, tmp_path / "cut", options=options)
    finally:
        interrupt.flag().clear()
    resumed = run_tune(spec, tmp_path / "cut", options=options)
    kept = [t for t in resumed.trials if t.state.name != "FAIL"]
    [cut] = [t for t in resumed.trials if t.state.name == "FAIL"]
    assert cut.user_attrs["cut"] and cut.number == 1
    assert kept[1].user_attrs["retry_of"] == 1 and kept[1].params == cut.params
    assert [t.params for t in kept] == [t.params for t in straight.trials]
    assert [t.value for t in kept] == [t.value for t in straight.trials]
    # the report calls it interrupted, not failed, and agrees its numbers in Spanish
    from mnistlab.report.tune import write_tune_report

    report = write_tune_report(resumed, "es").read_text()
    assert f"| 1 | interrumpido (entrenado de nuevo como ensayo {kept[1].number}) |" in report
    assert "fallido |" not in report
    assert "1 interrumpido;" in report and "fallido" not in report  # a Ctrl-C is no failure
    assert "0.001 .. 0.1" not in report and "0,001 .. 0,1" in report  # lr's searched range
    assert "lr=0." not in report  # a setting's decimal comma in Spanish, as in study reports


def test_a_trial_an_older_version_left_cut_is_trained_again(space_file, tmp_path):
    """An older version marked nothing on a trial a Ctrl-C stopped, and queued nothing: this
    one read it as a crash, never trained its point, and the search's best was lost with it
    (hunt: an upgrade in the middle of a search)."""
    import optuna

    spec = load_space(str(space_file))
    options = TuneOptions(trials=4, report=False, retrain_seeds=0)
    straight = run_tune(spec, tmp_path / "straight", options=options)
    out = tmp_path / "old"
    run_tune(spec, out, options=TuneOptions(trials=1, report=False, retrain_seeds=0))
    study = open_study(spec, f"sqlite:///{out / 'tune.db'}", study_name=spec.name)
    second = straight.trials[1]
    study.add_trial(optuna.trial.create_trial(  # as an older version left trial 1: its
        params=second.params, distributions=second.distributions,  # worker named, or not
        state=optuna.trial.TrialState.FAIL, user_attrs={"worker": "vm:7130"}))
    resumed = run_tune(spec, out, options=options)
    kept = [t for t in resumed.trials if t.state.name != "FAIL"]
    assert kept[1].user_attrs["retry_of"] == 1 and kept[1].params == second.params
    assert [t.params for t in kept] == [t.params for t in straight.trials]
    again = run_tune(spec, out, options=TuneOptions(trials=5, report=False, retrain_seeds=0))
    assert sum(t.user_attrs.get("retry_of") == 1 for t in again.trials) == 1  # queued once


def test_a_killed_worker_s_trial_is_trained_again_once_its_heartbeat_is_stale(
        space_file, tmp_path, monkeypatch):
    import time

    search_module = sys.modules["mnistlab.tune.search"]
    monkeypatch.setattr(search_module, "HEARTBEAT_SECONDS", 1)  # stale after 3 s, not 3 min
    spec = load_space(str(space_file))
    out = tmp_path / "search"
    run_tune(spec, out, options=TuneOptions(trials=1, report=False, retrain_seeds=0))
    study = open_study(spec, f"sqlite:///{out / 'tune.db'}", study_name=spec.name)
    with warnings.catch_warnings():  # "heartbeats are meant for optimize()": a worker's are
        warnings.simplefilter("ignore", UserWarning)
        killed = study.ask()  # a worker drew its values, beat once, and was killed (SIGKILL)
    killed.set_user_attr("worker", "there")  # as every trial this version starts is marked
    killed.set_user_attr(search_module.MARKED, 1)
    search_module.suggest(spec, killed)
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(4)
    # the search already complete: the trial was reported running on every rerun (hunt)
    done = run_tune(spec, out, options=TuneOptions(trials=1, report=False, retrain_seeds=0))
    assert [t.state.name for t in done.trials if t.number == killed.number] == ["FAIL"]
    resumed = run_tune(spec, out, options=TuneOptions(trials=3, report=False, retrain_seeds=0))
    [retry] = [t for t in resumed.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.params == killed.params and retry.state.name == "COMPLETE"
    assert [t.state.name for t in resumed.trials if t.number == killed.number] == ["FAIL"]
    # killed, not cut: it keeps its place, and is not queued again as an older version's cut
    # trial (the review found it called interrupted and tried a third time)
    (frozen,) = [t for t in resumed.trials if t.number == killed.number]
    assert not search_module.was_cut(frozen)
    assert not [t for t in resumed.trials if t.user_attrs.get("retry_of") == killed.number]
    # hunt: it read "failed" and counted as a failure, beside the retry that completed it
    from mnistlab.report.document import to_markdown
    from mnistlab.report.tune import build_document
    from mnistlab.tune.search import trials_csv

    states = dict(line.split(",")[:2] for line in trials_csv(resumed).splitlines()[1:])
    assert states[str(killed.number)] == "lost" and "fail" not in states.values()
    report = to_markdown(build_document(resumed))
    assert f"worker lost (trained again as trial {retry.number})" in report
    assert "1 trial whose worker was lost" in report and "failed" not in report
    assert "proceso perdido" in to_markdown(build_document(resumed, lang="es"))


def test_a_storage_that_cannot_be_opened_leaves_no_empty_out_folder(space_file, tmp_path):
    out = tmp_path / "search"
    with pytest.raises(MnistlabError, match="storage: "):
        run_tune(load_space(str(space_file)), out,
                 options=TuneOptions(trials=1, report=False,
                                     storage=f"sqlite:///{tmp_path}/no/such/folder/x.db"))
    assert not out.exists()


def test_searches_in_folders_named_with_url_characters_keep_their_own_tune_db(space_file,
                                                                             tmp_path):
    """The folder was written into the SQLite URL as is: `--out "tunes/lr?a"` put tune.db in
    a file `tunes/lr`, and a second search in `tunes/lr?b` reported the first one's trials
    without training any."""
    from sqlalchemy.engine import make_url

    from mnistlab import files

    for name in ("x?y#z%41", "a b", "é"):
        url = files.sqlite_url(tmp_path / name / "tune.db")
        assert make_url(url).database == str(tmp_path / name / "tune.db")
        assert files.sqlite_path(url) == tmp_path / name / "tune.db"
    spec = load_space(str(space_file))
    for name in ("lr?a", "lr?b"):
        result = run_tune(spec, tmp_path / name, options=TuneOptions(trials=1, report=False))
        assert result.ran_here == 1 and (tmp_path / name / "tune.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("lr")) == [
        "lr?a", "lr?b"]


def test_a_device_this_machine_lacks_is_refused_before_the_folder(space_file, tmp_path,
                                                                  missing_device):
    """`tune --device cuda` without one was one line, but left --out with tune.db and
    space.toml (study and train leave nothing)."""
    with pytest.raises(MnistlabError, match=f"device: {missing_device} was asked for"):
        run_tune(load_space(str(space_file)), tmp_path / "search",
                 options=TuneOptions(trials=1, report=False, device=missing_device))
    assert not (tmp_path / "search").exists()
    # a finished search is not asked: it trains nothing (its report is rebuilt anywhere)
    run_tune(load_space(str(space_file)), tmp_path / "search",
             options=TuneOptions(trials=1, report=False))
    again = run_tune(load_space(str(space_file)), tmp_path / "search",
                     options=TuneOptions(trials=1, report=False, device=missing_device))
    assert again.ran_here == 0


def test_a_trial_that_crashed_is_not_proposed_again_on_resume(space_file, tmp_path,
                                                              monkeypatch):
    """Only cut trials queued again give up their place: a crash (out of memory, say) counted
    as cut made every resume draw the crashing point again."""
    search_module = sys.modules["mnistlab.tune.search"]
    spec = load_space(str(space_file))
    options = TuneOptions(trials=3, report=False, retrain_seeds=0)
    real, calls = search_module.train, []

    def crashing_in_the_second(config, **kwargs):
        calls.append(config)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(config, **kwargs)

    monkeypatch.setattr(search_module, "train", crashing_in_the_second)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_tune(spec, tmp_path / "s", options=options)
    resumed = run_tune(spec, tmp_path / "s", options=options)
    [crashed] = [t for t in resumed.trials if t.state.name == "FAIL"]
    after = [t for t in resumed.trials if t.number > crashed.number]
    assert after and all(t.params != crashed.params for t in after)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:",
                                 "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_storage_is_refused_before_any_trial(url):
    """Its trials vanished when the command ended, and the command still exited 0."""
    from mnistlab.errors import MnistlabError

    search = sys.modules["mnistlab.tune.search"]
    with pytest.raises(MnistlabError, match="in-memory database, lost when the command ends"):
        search.open_study(None, url, study_name="x")


def test_a_sqlite_file_whose_path_holds_at_signs_is_a_storage(space_file, tmp_path):
    """Review: the check for a password's raw @ refused sqlite:////x/a@b/c@d.db."""
    out = tmp_path / "a@b"
    run_tune(load_space(str(space_file)), out, options=TuneOptions(
        trials=1, report=False, retrain_seeds=0, storage=f"sqlite:///{out}/c@d.db"))
    assert (out / "c@d.db").is_file()


def test_a_storage_no_search_can_open_is_refused_when_given():
    """From Python, TuneOptions(storage="bogus://x") was taken, and refused only when the search
    opened it; a mistyped scheme also printed the URL's password."""
    from mnistlab import TuneOptions
    from mnistlab.errors import MnistlabError

    with pytest.raises(MnistlabError, match="storage: 'bogus://x' is not a database URL"):
        TuneOptions(storage="bogus://x")
    with pytest.raises(MnistlabError, match="in-memory database"):
        TuneOptions(storage="sqlite:///:memory:")
    with pytest.raises(MnistlabError) as refused:
        TuneOptions(storage="postgresq://ann:secret@host/db")
    assert "secret" not in str(refused.value) and "ann:***@host" in str(refused.value)
    # a driver need not be installed to be named: it is imported when the storage opens
    assert TuneOptions(storage="mysql://host/db").storage == "mysql://host/db"


@pytest.mark.parametrize("where, said", [
    ("missing/dir/x.db", "the folder {tmp}/missing/dir does not exist: make it (mkdir -p"),
    ("", "{tmp} is a folder: give a file in it, e.g. sqlite:///{tmp}/tune.db")])
def test_an_sqlite_file_that_cannot_be_opened_says_why(tmp_path, monkeypatch, where, said):
    """It said only SQLite's "unable to open database file"."""
    search = sys.modules["mnistlab.tune.search"]
    monkeypatch.setattr(search.time, "sleep", lambda seconds: None)  # the retries
    url = f"sqlite:///{tmp_path / where}" if where else f"sqlite:///{tmp_path}"
    with pytest.raises(MnistlabError) as caught:
        search.open_study(None, url, study_name="x")
    assert said.format(tmp=tmp_path) in str(caught.value)


def test_a_space_is_described_with_the_reader_s_decimal_mark():
    """A Spanish report listed a range as '0.0001 .. 0.1', float choices as '0.1, 0.25' (read
    as three numbers with the decimal comma) and [quick]'s one-value epochs as '3 .. 3 paso 5'."""
    from mnistlab.tune.space import Param

    assert Param("lr", "float", low=1e-4, high=0.1, log=True).describe("paso", "es") == \
        "0,0001 .. 0,1 (log)"
    assert Param("dropout", "categorical", choices=(0.1, 0.25)).describe("paso", "es") == \
        "0,1; 0,25"
    assert Param("epochs", "int", low=3, high=3, step=5).describe("paso", "es") == "3"
    assert Param("epochs", "int", low=5, high=30, step=5).describe() == "5 .. 30 step 5"


def test_retrains_of_an_ensemble_share_no_member_with_the_trial_or_each_other(tmp_path):
    """The trial (seed 0) trained members 0-1; retrains at seeds 1 and 2 trained 1-2 and 2-3,
    each sharing a network with the trial chosen on validation."""
    from mnistlab.config import TrainConfig

    jobs = retrain_jobs(TrainConfig(ensemble=2, seed=0), "best", [1, 2, 3], tmp_path, 0)
    assert [job.seed for job, _ in jobs] == [2, 4, 6]
    assert [folder.name.rsplit("-", 1)[1] for _, folder in jobs] == ["seed2", "seed4", "seed6"]
    single = retrain_jobs(TrainConfig(seed=0), "best", [1, 2, 3], tmp_path, 0)
    assert [job.seed for job, _ in single] == [1, 2, 3]  # one network: as before
    # a [compare] with its own seed steps from the search's base seed too (it went negative)
    compare = retrain_jobs(TrainConfig(ensemble=3, seed=5), "compare", [1, 2, 3], tmp_path, 0)
    assert [job.seed for job, _ in compare] == [3, 6, 9]


def test_a_quick_search_read_back_from_its_space_toml_stays_quick():
    """Resumed from its own space.toml, a --quick search (3,000 images, 2 epochs) was compared
    with the full published figure in its report: the file dropped the quick form."""
    from mnistlab.config import tomllib
    from mnistlab.tune.search import spec_toml

    quick = parse_space(space_dict()).with_quick()
    again = parse_space(tomllib.loads(spec_toml(quick)), where="space.toml")
    assert again.is_quick and again.name == quick.name and again.base == quick.base
    assert again.with_quick() == again  # --quick on it changes nothing
    assert not parse_space(tomllib.loads(spec_toml(parse_space(space_dict())))).is_quick


def test_quick_without_a_quick_table_never_makes_the_data_larger():
    """A space of 1,000 training images and 100 validation ones searched with --quick trained
    on 3,000 and validated on 1,000 (the default [quick]'s sizes)."""
    data = space_dict()
    data["base"]["train_subset"] = 1000
    base = parse_space(data).with_quick().base
    assert (base.train_subset, base.val_size, base.eval_train_size) == (1000, 100, 100)
    assert base.epochs == 2
    whole = parse_space(space_dict()).with_quick().base  # train_subset 0: every image
    assert (whole.train_subset, whole.val_size) == (3000, 100)


def test_the_star_and_the_best_column_are_the_study_s_with_several_workers():
    """Each worker starred its own best: a trial at 0.73 got ★ and "best 0.7300" after another
    worker's trial had reached 0.83, and a later 0.83 was starred again."""
    import io
    from types import SimpleNamespace

    from optuna.trial import TrialState
    from rich.console import Console

    from mnistlab.tune.display import TrialTable

    def trial(number: int, value: float, state: TrialState = TrialState.COMPLETE
              ) -> SimpleNamespace:
        return SimpleNamespace(number=number, value=value, state=state,
                               intermediate_values={1: 0.5 if value is None else value},
                               params={}, user_attrs={})

    shown = io.StringIO()
    table = TrialTable(parse_space(space_dict()), Console(file=shown, width=200))
    other = trial(0, 0.83)  # the other worker's
    rows = []
    for mine, best in ((trial(1, 0.73), other), (trial(3, 0.83), other),
                       (trial(5, None, TrialState.PRUNED), other),
                       (trial(6, None, TrialState.FAIL), other),
                       (trial(7, 0.9), trial(7, 0.9))):
        table.on_trial(mine, mine.number + 1, best)
        rows.append(" ".join(shown.getvalue().split()))
        shown.truncate(0), shown.seek(0)
    assert ["★" in row for row in rows] == [False, False, False, False, True]
    assert [row.split()[1] for row in rows] == ["complete", "complete", "pruned", "fail",
                                                "complete"]
    assert [row.split()[-1] for row in rows] == ["0.8300"] * 4 + ["0.9000"]
    # a row's columns under their headings (rows sat 1 to 4 characters left of them: review)
    table.start(2, 0, None, "sqlite:///x")
    table.on_trial(trial(8, 0.5), 9)
    heading, _, row = shown.getvalue().splitlines()[1:4]
    assert row.index("complete") == heading.index("state")
    assert row.index("0.5000") + len("0.5000") == heading.index("val acc") + len("val acc")
    # at 60 columns, each heading whole, in both languages (hunt: "epoc…", "ensa…")
    for lang, words in (("en", ["trial", "epochs", "training s", "best"]),
                        ("es", ["ensayo", "épocas", "entren.", "mejor"])):
        narrow = io.StringIO()
        table = TrialTable(parse_space(space_dict()), Console(file=narrow, width=60), lang)
        table.start(2, 0, None, "sqlite:///x")
        drawn = trial(8, 0.5)
        drawn.params = {"lr": 0.01}
        table.on_trial(drawn, 9)
        lines = narrow.getvalue().splitlines()
        assert all(word in "".join(lines[1:4]) for word in words), lines
        row, params = [line for line in lines if "0.5000" in line or "0,5000" in line
                       or "lr=" in line]
        assert params.index("lr=") == row.index("comp")  # under the state column


@pytest.mark.parametrize("width", [40, 50, 53, 55, 60, 80, 200])
@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_trial_table_keeps_every_figure_whole_on_a_narrow_terminal(width, lang):
    """Hunt: below 57 columns the fixed widths cut val accuracy and best to "0.…" (English at
    40, Spanish at 50); now the trials go one figure per row there, every figure whole."""
    import io
    from types import SimpleNamespace

    from optuna.trial import TrialState
    from rich.console import Console

    from mnistlab.tune.display import TrialTable

    shown = io.StringIO()
    table = TrialTable(parse_space(space_dict()), Console(file=shown, width=width), lang)
    table.start(3, 0, None, "sqlite:///x")
    for number, value, state in ((0, 0.9538, TrialState.COMPLETE),
                                 (1, None, TrialState.PRUNED), (12, 0.9, TrialState.COMPLETE)):
        table.on_trial(SimpleNamespace(number=number, value=value, state=state,
                                       intermediate_values={1: 0.5, 2: 0.6125},
                                       params={"lr": 0.00123},
                                       user_attrs={"seconds": 1234.5, "epochs": 2}), number + 1)
    text = shown.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    words = text.replace(",", ".").split()  # Spanish decimal commas
    for figure in ("0.9538", "0.6125", "0.9000", "1234.5", "lr=0.00123", "12"):
        assert figure in words, (figure, text)
    assert words.count("0.9538") == 4  # its val, then best in each row
    across = "────" in text  # headings over the figures side by side, else a row each
    assert across == (width >= 53)  # review: 53-55 cut "training s" to "trainin…"
    if not across:  # a Spanish two-line heading is one label
        assert ("exact. val." in text) == (lang == "es")


def test_the_trial_table_draws_failed_trials_after_a_complete_one(tiny_idx_dir, tmp_path):
    """With the study's best passed in, a failed or pruned trial's row raised
    UnboundLocalError inside Optuna's callback, and the search died (caught on review)."""
    import io

    from rich.console import Console

    from mnistlab.tune.display import TrialTable

    spec = _nesterov_space(str(tiny_idx_dir), [0.0], [False, True])
    shown = io.StringIO()
    result = run_tune(spec, tmp_path / "s", options=TuneOptions(trials=3, report=False),
                      display=TrialTable(spec, Console(file=shown, width=200)))
    assert result.by_state("FAIL") and result.by_state("COMPLETE")
    assert shown.getvalue().count("fail") == len(result.by_state("FAIL"))


def test_the_retrained_comparison_pairs_an_ensemble_by_replicate(tmp_path):
    """An ensemble of 3 retrained on seeds 3, 6, 9 beside one network on 1, 2, 3: paired by
    their seeds, they did not pair up and Welch's interval was used, though the report says
    they were retrained on the same seeds (review)."""
    from types import SimpleNamespace

    from mnistlab.config import TrainConfig
    from mnistlab.report.tune import retrained_difference
    from mnistlab.tune.search import retrain_jobs

    def runs(config, values):
        jobs = retrain_jobs(config, "x", [1, 2, 3], tmp_path, 0)
        return [SimpleNamespace(config=job, summary=SimpleNamespace(val_accuracy=v))
                for (job, _), v in zip(jobs, values)]

    best = runs(TrainConfig(model="mlp", ensemble=3), [0.92, 0.87, 0.965])
    assert [r.config.seed for r in best] == [3, 6, 9]
    other = runs(TrainConfig(model="mlp"), [0.89, 0.84, 0.93])
    result = SimpleNamespace(spec=SimpleNamespace(base=TrainConfig(seed=0)), retrained=best,
                             compared=other)
    diff = retrained_difference(result)
    assert diff.paired and diff.within_noise is False  # +3, +3, +3.5 points by seed


def test_a_search_leaves_optuna_s_own_logging_as_it_found_it(space_file, tmp_path):
    """The search set Optuna's verbosity to WARNING for good: the user's own studies in the
    same notebook stopped logging their trials."""
    import logging

    import optuna

    class Kept(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    said: list[str] = []
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    kept = Kept(level=logging.INFO)
    logging.getLogger("optuna").addHandler(kept)
    try:
        run_tune(load_space(str(space_file)), tmp_path / "s",
                 options=TuneOptions(trials=1, retrain_seeds=1))
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        # nor while it ran: the report's "Using an existing study" (review)
        assert said == []
    finally:
        optuna.logging.set_verbosity(before)
        logging.getLogger("optuna").removeHandler(kept)


def test_a_ctrl_c_raised_in_a_trial_is_no_failure_to_log():
    """In Python (no command line holding the signal) Ctrl-C raises in the trial, and Optuna
    logged "Trial 0 failed with value None." and its traceback under the user's
    KeyboardInterrupt."""
    import logging
    import sys as _sys

    from mnistlab.tune.search import _StopRequested

    quiet = _StopRequested()
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        cut = logging.LogRecord("optuna", logging.WARNING, "", 0, "Trial 0 failed with "
                                "parameters: {} because of the following error: "
                                "KeyboardInterrupt().", None, _sys.exc_info())
    value = logging.LogRecord("optuna", logging.WARNING, "", 0, "Trial 0 failed with value "
                              "None.", None, None)
    assert not quiet.filter(cut) and not quiet.filter(value)
    other = logging.LogRecord("optuna", logging.WARNING, "", 0, "Trial 1 failed with value "
                              "None.", None, None)
    assert quiet.filter(other)  # another trial's failure is still said
    assert quiet.filter(value)  # and so is a later study's trial 0, once the first is said


def test_a_stop_asked_for_while_a_retrained_run_is_scored_starts_no_next_seed(tmp_path,
                                                                               tiny_idx_dir):
    """Each retrained run was the outermost call and cleared the stop as it returned: one
    asked for while a run was scored left it complete, and the next seed trained."""
    from mnistlab import TrainConfig, interrupt
    from mnistlab.data.cache import DataCache
    from mnistlab.progress import SilentReporter
    from mnistlab.tune.search import LocalTrials

    class StopWhileScored(SilentReporter):
        def final_scoring(self, views, members):
            interrupt.request()

    config = TrainConfig(dataset=str(tiny_idx_dir), model="mlp", hidden=(8,), epochs=1,
                         val_size=100, eval_train_size=100, device="cpu")
    jobs = [(config.replace(seed=seed), tmp_path / f"seed{seed}") for seed in (1, 2)]
    with pytest.raises(KeyboardInterrupt):
        LocalTrials().retrain(jobs, DataCache(), lambda c: StopWhileScored())
    assert (tmp_path / "seed1" / "summary.json").is_file()
    assert not (tmp_path / "seed2").exists()
    interrupt.flag().clear()


def test_a_condition_on_epochs_follows_the_quick_cap():
    """`lr` searched `when = { epochs = 10 }` with `[quick] max_epochs = 2`: the quick form
    capped the epochs choices to 2 but left the condition at 10, so lr was never searched and
    every quick trial was the same run."""
    spec = parse_space({
        "name": "qe",
        "base": {"dataset": "fashion-mnist", "model": "mlp", "epochs": 10},
        "space": {"epochs": {"type": "categorical", "choices": [5, 10]},
                  "lr": {"type": "float", "low": 0.001, "high": 0.1,
                         "when": {"epochs": 10}}},
        "quick": {"max_epochs": 2},
    })
    epochs, lr = spec.with_quick().params
    assert epochs.choices == (2,)
    assert lr.active({"epochs": 2})


@pytest.mark.parametrize("searched, base, said", [
    ("filters", {"model": "mlp"}, "space.filters: no model drawn reads it (mlp; only cnn and "
     "resnet do): every value would train the same network; leave it out, or search model "
     "with one that reads it among its choices"),
    ("momentum", {"optimizer": "adam"}, "space.momentum: no optimizer drawn reads it (adam; "
     "only sgd does)"),
])
def test_a_searched_setting_no_trial_reads_is_refused(searched, base, said):
    """`filters` searched beside an mlp, `momentum` beside Adam: every trial trained the same
    network (0.4267 twice), and the importances credited the setting with noise."""
    data = space_dict()
    data["base"].update(base)
    values = {"filters": {"type": "categorical", "choices": [[8], [16]]},
              "momentum": {"type": "float", "low": 0.0, "high": 0.9}}
    data["space"] = {searched: values[searched]}
    with pytest.raises(MnistlabError, match=re.escape(said)):
        parse_space(data)
    # where none of the models or optimizers drawn reads it, or its `when` draws it only
    # beside others (review)
    decider, others = (("model", ["mlp", "lenet5"]) if searched == "filters"
                       else ("optimizer", ["adam", "adamw"]))
    data["space"] = {decider: {"type": "categorical", "choices": others},
                     searched: values[searched]}
    with pytest.raises(MnistlabError, match=f"space.{searched}: no {decider} drawn reads it"):
        parse_space(data)
    # beside what reads it, or drawn only there, it is searched
    data["space"] = {"model": {"type": "categorical", "choices": ["mlp", "cnn"]},
                     "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                     searched: {**values[searched], "when": {
                         "model": ["cnn"]} if searched == "filters" else {"optimizer": ["sgd"]}}}
    assert parse_space(data).params[-1].name == searched


def test_momentum_searched_under_onecycle_alone_is_refused():
    """SGD's one-cycle schedule cycles momentum itself: every trial of a momentum searched
    only beside it trained the same network (a study refuses the same)."""
    data = space_dict()
    data["base"].update(optimizer="sgd", schedule="onecycle")
    data["space"] = {"momentum": {"type": "float", "low": 0.5, "high": 0.9}}
    with pytest.raises(MnistlabError, match=re.escape(
            "space.momentum: every schedule drawn is onecycle (schedule onecycle cycles SGD's "
            "momentum from 0.95 to 0.85 and back itself): every value would train the same")):
        parse_space(data)
    # drawn beside another schedule too, it is searched
    data["space"]["schedule"] = {"type": "categorical", "choices": ["onecycle", "cosine"]}
    assert [p.name for p in parse_space(data).params] == ["momentum", "schedule"]
    # or only beside onecycle, by its `when`: refused again
    data["base"]["schedule"] = "cosine"
    data["space"] = {"schedule": {"type": "categorical", "choices": ["onecycle", "cosine"]},
                     "momentum": {"type": "float", "low": 0.5, "high": 0.9,
                                  "when": {"schedule": ["onecycle"]}}}
    with pytest.raises(MnistlabError, match="every schedule drawn is onecycle"):
        parse_space(data)


def test_a_diverged_trial_scores_0_and_says_so(tmp_path, tiny_idx_dir):
    """A trial whose training diverged scored its last finite epoch's accuracy and read as
    an ordinary complete trial: an all-diverged search named one its best, retrained it to
    diverge again, and said nothing of it (hunt)."""
    space = tmp_path / "wild.toml"
    space.write_text(SPACE_TOML.split("[space.optimizer]")[0].format(data=tiny_idx_dir)
                     + "[space.lr]\ntype = \"float\"\nlow = 1e6\nhigh = 1e7\nlog = true\n")
    result = run_tune(load_space(str(space)), tmp_path / "t",
                      options=TuneOptions(trials=2, report=False))
    assert [t.user_attrs["status"] for t in result.trials] == ["diverged"] * 2
    assert [t.value for t in result.trials] == [0.0, 0.0]
    rows = sys.modules["mnistlab.tune.search"].trials_csv(result).splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["diverged", "diverged"]
    # none is the best: nothing is retrained to diverge again, and the report says why
    assert result.best is None and result.best_config is None
    result = run_tune(load_space(str(space)), tmp_path / "t",
                      options=TuneOptions(trials=2, retrain_seeds=1))
    assert result.retrained == [] and not (tmp_path / "t" / "best.toml").exists()
    report = " ".join((tmp_path / "t" / "report.md").read_text().split())
    assert "| diverged (scored 0) |" in report
    assert "Every complete trial diverged (scored 0), so there is no best configuration" \
        in report


def test_a_report_with_diverged_trials_counts_them_alike_everywhere(tmp_path, tiny_idx_dir):
    """Review: the Method said "2 complete, 3 diverged" and the same report "the best of 5
    complete trials", "over the 5 complete trials"."""
    space = tmp_path / "mixed.toml"
    space.write_text(SPACE_TOML.split("[space.optimizer]")[0].format(data=tiny_idx_dir)
                     + "optimizer = \"sgd\"\nmomentum = 0.9\n[space.lr]\n"
                     "type = \"categorical\"\nchoices = [0.01, 1e6]\n")
    result = run_tune(load_space(str(space)), tmp_path / "t",
                      options=TuneOptions(trials=6, retrain_seeds=1))
    gone = sum(t.user_attrs.get("status") == "diverged" for t in result.trials)
    assert 0 < gone < 6
    report = " ".join((tmp_path / "t" / "report.md").read_text().split())
    assert f"{6 - gone} complete, 0 pruned, {gone} diverged" in report
    assert f"best of {6 - gone} complete trials" in report
    if "fANOVA evaluator" in report:
        assert f"over the 6 scored trials (the complete ones, and {gone} that diverged" in report


def test_a_one_trial_search_without_retraining_says_what_it_did(space_file, tmp_path):
    """"chosen as the best of 1 complete trials, so optimistic", and a Method saying the test
    set was used once, in a report that computed no test accuracy (hunt)."""
    import types

    import optuna

    result = run_tune(load_space(str(space_file)), tmp_path / "t",
                      options=TuneOptions(trials=1, retrain_seeds=0))
    report = " ".join((tmp_path / "t" / "report.md").read_text().split())
    assert "(a single run with seed" in report and "the only complete trial)" in report
    assert "The test set is not used: no retraining was asked for." in report
    assert "so optimistic" not in report and "The test set is used once" not in report
    # a trial that stopped part way counts the epochs it reported, as the report does
    trial = optuna.trial.create_trial(
        params={"lr": 0.01}, distributions={"lr": optuna.distributions.FloatDistribution(
            0.001, 0.1, log=True)}, state=optuna.trial.TrialState.PRUNED,
        intermediate_values={1: 0.5, 2: 0.6})
    fake = types.SimpleNamespace(spec=result.spec, trials=[trial])
    (row,) = sys.modules["mnistlab.tune.search"].trials_csv(fake).splitlines()[1:]
    assert row.split(",")[4] == "2"


def test_a_relative_dataset_path_naming_other_data_is_refused(tmp_path, monkeypatch):
    """A search's "digits" run again from a folder where "digits" holds other data added
    trials on that data to the first ones, and read the retrained best back as its (hunt)."""
    from conftest import make_dataset_folder

    for place, k in (("a", 10), ("b", 4)):
        make_dataset_folder(tmp_path / place / "digits", 300, 100, k=k)
    (tmp_path / "space.toml").write_text(SPACE_TOML.format(data="digits"))
    spec = load_space(str(tmp_path / "space.toml"))
    options = TuneOptions(trials=1, retrain_seeds=1)
    monkeypatch.chdir(tmp_path / "a")
    run_tune(spec, tmp_path / "search", options=options)
    recorded = json.loads((tmp_path / "search" / "search.json").read_text())
    assert recorded["dataset_folders"] == {"digits": str(tmp_path / "a" / "digits")}
    monkeypatch.chdir(tmp_path / "b")
    # its retrained best, evaluated here, reads the data it was trained on (review)
    from mnistlab.cli import main

    retrained = list((tmp_path / "search" / "retrain").iterdir())
    assert retrained and all(main(["evaluate", str(run), "--json"]) == 0 for run in retrained)
    with pytest.raises(MnistlabError, match=r"dataset 'digits': a relative path, read from the "
                                            r"folder the command runs in, is .*b/digits here, "
                                            r"but this search's runs read .*a/digits, which "
                                            r"holds other files"):
        run_tune(spec, tmp_path / "search", options=TuneOptions(trials=2, report=False))


@pytest.mark.parametrize("url, fix", [
    ("sqlite:///x/tune.db", "free space or fix the permissions"),
    ("postgresql://me:secret@127.0.0.1:5432/t",
     "check that the database server is running and reachable"),
])
def test_a_storage_that_stops_taking_writes_gets_the_fix_of_its_kind(url, fix):
    """A PostgreSQL server stopped under a search was told to free space or fix permissions
    (hunt)."""
    from mnistlab.tune.search import storage_failure

    class StorageInternalError(Exception):
        pass

    try:
        try:
            raise OSError("connection to server failed: Connection refused")
        except OSError as cause:
            raise StorageInternalError("internal") from cause
    except StorageInternalError as exc:
        error = storage_failure(exc, url)
    assert error is not None and error.exit_code == 1
    assert f"(connection to server failed: Connection refused); {fix} and run the same " \
           "command again (finished trials are kept)" in str(error)
    assert "secret" not in str(error)


def test_a_search_in_a_file_of_its_own_resumes_once_moved_with_it(tmp_path, monkeypatch,
                                                                  space_file):
    """`--storage sqlite:///shared.db` in a folder moved since was refused as another study,
    "holds the study 'tiny' in sqlite:////old/shared.db, not 'tiny' in sqlite:////new/..."
    (hunt); the recorded file gone and this one holding the study, it resumes."""
    import shutil

    spec = load_space(str(space_file))
    (tmp_path / "w").mkdir()
    monkeypatch.chdir(tmp_path / "w")
    options = TuneOptions(trials=1, report=False, storage="sqlite:///shared.db")
    run_tune(spec, Path("out"), options=options)
    recorded = json.loads((tmp_path / "w" / "out" / "search.json").read_text())
    del recorded["file_from_out"]  # as the previous version wrote it (review: then refused)
    (tmp_path / "w" / "out" / "search.json").write_text(json.dumps(recorded))
    shutil.move(tmp_path / "w", tmp_path / "w2")
    monkeypatch.chdir(tmp_path / "w2")
    more = run_tune(spec, Path("out"), options=dataclasses.replace(options, trials=2))
    assert more.ran_here == 1 and len(more.trials) == 2
    recorded = json.loads((tmp_path / "w2" / "out" / "search.json").read_text())
    assert recorded["storage"] == f"sqlite:///{tmp_path / 'w2' / 'shared.db'}"
    # another search of the same space, in a file of its own
    run_tune(spec, Path("out2"), options=dataclasses.replace(options, storage="sqlite:///other.db"))
    for gone in (False, True):  # another file holding a study of that name: not this one,
        if gone:  # even with its own file gone (review: it took another search's over)
            (tmp_path / "w2" / "shared.db").unlink()
        with pytest.raises(MnistlabError, match="holds the study 'tiny' in sqlite:///.*shared"
                                                ".db, not 'tiny' in sqlite:///.*other.db"):
            run_tune(spec, Path("out"), options=dataclasses.replace(
                options, storage="sqlite:///other.db"))



def test_a_relative_data_dir_is_kept_absolute(tmp_path, monkeypatch):
    """--data-dir data2 was kept as typed in the retrained runs' config.toml: `evaluate` from
    another folder said the folder was not there (hunt)."""
    monkeypatch.chdir(tmp_path)
    spec = TuneOptions(data_dir="data2").apply(load_space("fashion-mlp"))
    assert spec.base.data_dir == str(tmp_path / "data2")


def test_a_dashed_max_epochs_caps_the_quick_form():
    """[quick] max-epochs was "unknown setting (did you mean epochs?)", and epochs = 2 there
    capped the base alone, not a searched range (hunt)."""
    data = _with(lambda d: d.update(quick={"max-epochs": 2}))
    data["space"]["epochs"].update(low=1, high=5)
    quick = parse_space(data, where="s.toml").with_quick()
    assert quick.base.epochs == 2
    assert [p.high for p in quick.params if p.name == "epochs"] == [2]


def test_a_condition_on_a_one_layer_choice_takes_its_number():
    """`when = { hidden = 32 }` beside choices [[32], [64]] was "32 is not one of its choices
    (32, 64)" (hunt); [32] was taken, and still is, as are two layers."""
    for when, drawn in (({"hidden": 32}, ("32",)), ({"hidden": [32]}, ("32",)),
                        ({"hidden": [[32], [64]]}, ("32", "64")), ({"hidden": [64, 32]},
                                                                   ("64-32",))):
        data = _with(lambda d: d["space"]["hidden"].update(choices=[[32], [64], [64, 32]]))
        data["space"]["momentum"]["when"] = when
        data["space"] = {k: data["space"][k] for k in ("optimizer", "lr", "hidden", "momentum",
                                                        "epochs")}
        [momentum] = [p for p in parse_space(data, where="s.toml").params
                      if p.name == "momentum"]
        assert momentum.when["hidden"] == drawn, when


def test_run_tune_takes_true_for_its_table_and_reprs_in_a_line(space_file, tmp_path, capsys):
    """display=True was "'bool' object has no attribute 'start'"; a TuneResult's repr held
    every trial (hunt)."""
    with pytest.raises(MnistlabError, match=r"^display: give True \(the command's display\), "
                                            r"False, or a tune.display.TrialTable; got int 1"):
        run_tune(load_space(str(space_file)), tmp_path / "T", display=1)
    result = run_tune(load_space(str(space_file)), tmp_path / "T", display=np.True_,  # review
                      options=TuneOptions(trials=2, report=False, retrain_seeds=0))
    assert "2 finished trials wanted" in capsys.readouterr().err
    assert len(repr(result)) < 200 and repr(result).startswith("TuneResult(name='tiny'")


def test_a_missing_driver_is_told_for_the_database_the_url_names():
    """Hunt: a mysql:// storage without its driver was told to install psycopg2, PostgreSQL's."""
    from mnistlab.errors import MnistlabError

    search = sys.modules["mnistlab.tune.search"]
    pytest.importorskip("optuna")
    with pytest.raises(MnistlabError) as refused:
        search.open_study(None, "mysql://ann:secret@127.0.0.1/db", study_name="x", attempts=1)
    told = str(refused.value)
    assert "needs a database driver" in told and "pymysql" in told
    assert "psycopg2" not in told and "secret" not in told
    # review: a PostgreSQL URL naming another driver was told to install psycopg2
    with pytest.raises(MnistlabError, match=r"install pg8000, the driver the URL names \(pip "
                                            r"install \"pg8000\"\)"):
        search.open_study(None, "postgresql+pg8000://ann@127.0.0.1/db", study_name="x",
                          attempts=1)
    with pytest.raises(MnistlabError, match=r"\(pip install \"mysqlclient\"\)"):  # no mysqldb
        search.open_study(None, "mysql+mysqldb://ann@127.0.0.1/db", study_name="x", attempts=1)
