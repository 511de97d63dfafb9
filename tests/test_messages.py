"""The message catalogue: every message in both languages with the same placeholders, and
numbers written each language's way."""


import pytest
from conftest import run_python

from mnistlab.messages import LANGS, catalogue, class_names, number, placeholders, t


@pytest.mark.parametrize("key", sorted(catalogue()))
def test_every_message_is_in_every_language_with_the_same_placeholders(key):
    entry = catalogue()[key]
    assert set(entry) == set(LANGS), key
    assert all(entry[lang].strip() for lang in LANGS)
    assert placeholders(entry["en"]) == placeholders(entry["es"])


def test_numbers_are_written_the_languages_way():
    assert t("en", "method.seeds", n=3, seeds="0, 1, 2", together="", spread="").startswith(
        "Each configuration")
    assert "10,000 training images" in t("en", "method.data", dataset="mnist", train=10000,
                                         val=1000, val_where="x", test=10000, test_use="x")
    assert "10.000 imágenes" in t("es", "method.data", dataset="mnist", train=10000, val=1000,
                                  val_where="x", test=10000, test_use="x")
    assert number(89.156, ".2f", "es") == "89,16" and number(89.156, ".2f", "en") == "89.16"
    assert number(1234567.5, ",.1f", "es") == "1.234.567,5"
    # a difference that rounds to zero is zero, signed as the spec asks ("-0,00" in a table)
    assert number(-0.001, "+.2f", "es") == "+0,00" and number(-0.001, ".2f", "en") == "0.00"
    assert number(-0.01, "+.2f", "en") == "-0.01" and number(float("-inf"), ".2f", "en") == "-inf"
    # also where a sentence formats it (the report's intervals and conclusions)
    assert t("es", "recommended.why_ci", low=-0.001, high=0.3) == ("intervalo del 95% de "
                                                                   "+0,00 a +0,30")
    # text placeholders are left alone, even when they hold digits and dots
    assert "lr=0.001" in t("es", "method.base", base="lr=0.001")


def test_spanish_settings_read_alike_in_every_cell_and_stay_whole_in_lists():
    """A reader pass (hunt): a Spanish grid's cells read "dropout 0, tamaño de lote 32" beside
    "dropout 0,3; tamaño de lote 32", and a list of them apart with semicolons read "dropout
    0,3" as a run of its own."""
    from mnistlab.messages import in_list, settings_text

    cells = [settings_text({"dropout": d, "batch_size": 32}, "es") for d in (0, 0.3)]
    assert cells == ["dropout 0; tamaño de lote 32", "dropout 0,3; tamaño de lote 32"]
    assert "; ".join(in_list(c, "es") for c in cells) == (
        "«dropout 0; tamaño de lote 32»; «dropout 0,3; tamaño de lote 32»")
    assert in_list("lr=0.1, batch_size=32", "en") == "lr=0.1, batch_size=32"  # no ; inside
    # the doctor's evidence in percent beside its margin in points (it mixed 0.1886 with them)
    assert t("en", "finding.val-above-train.evidence", running=0.1643, val=0.1934,
             train_eval=0.1886, margin=1.58).startswith(
        "running train accuracy 16.43% < validation 19.34%, but train accuracy in eval mode is "
        "18.86% (two samples of these sizes differ by less than 1.58 points")


def test_a_setting_s_word_and_count_read_in_the_sentence_s_language():
    """The Spanish base line said "programa de la tasa constant" and "tamaño de validación
    5000" beside "5.000 de validación"; English keeps what a flag takes."""
    from mnistlab.messages import settings_text

    values = {"schedule": "constant", "val_size": 5000, "hidden": [128, 64], "seed": 7}
    assert settings_text(values, "es") == ("programación de la tasa constante; tamaño de "
                                           "validación 5.000; capas ocultas 128-64; semilla 7")
    assert settings_text(values, "en") == "schedule=constant, val_size=5000, hidden=128-64, seed=7"
    # a one-factor variant's name and label too (review: "programación de la tasa cosine")
    from mnistlab.study.spec import parse_study

    spec = parse_study({"name": "s", "base": {"model": "mlp"}, "experiment": [
        {"name": "a", "factor": "schedule", "values": ["cosine"]},
        {"name": "b", "factor": "val_size", "values": [10000]}]})
    assert [e.run_name(e.variants[0].label, "es") for e in spec.experiments] == [
        "programación de la tasa coseno", "tamaño de validación 10.000"]
    assert [e.run_name(e.variants[0].label, "en") for e in spec.experiments] == [
        "schedule=cosine", "val_size=10000"]


def test_counts_take_their_noun_in_the_right_number():
    assert t("es", "status_note", n=1, runs="a") == "1 ejecución no terminó con normalidad: a."
    assert t("es", "status_note", n=2, runs="a; b").startswith("2 ejecuciones no terminaron")
    parts = dict(together="", spread="")
    assert t("en", "method.seeds", n=1, seeds="0", **parts).startswith(
        "Each configuration was trained with 1 seed (0)")
    assert "with 1,000 seeds" in t("en", "method.seeds", n=1000, seeds="0", **parts)
    assert not [key for key, texts in catalogue().items() for lang, text in texts.items()
                if "(s)" in text or "(es)" in text]  # "seed(s)", "ejecución(es)": say which


def test_fashion_mnist_classes_are_named_in_the_report_s_language():
    english = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    assert class_names(english, "es")[0] == "Camiseta/top" and len(class_names(english, "es")) == 10
    assert class_names(english, "en") == english
    assert class_names([str(d) for d in range(10)], "es") == [str(d) for d in range(10)]


def test_figures_in_spanish_have_no_english_words():
    import matplotlib.text
    from spanish import english_in

    from mnistlab import figures
    from mnistlab.records import EpochRecord

    history = [EpochRecord(e, 1.0, 0.8, 0.8, 0.9, 0.85, 0.95, 0.84, 0.84, 0.001, 1.0)
               for e in (1, 2, 3)]
    made = [figures.learning_curves(history, lang="es"),
            figures.confusion([[5, 1], [0, 6]], ["a", "b"], lang="es"),
            figures.experiment_curves({"0.1": [[0.5, 0.6]]}, "lr", "es"),
            figures.point_chart(["0.1", "0.01"], [0.8, 0.85], [0.01, 0.02], "lr", "0.1",
                                [0.79, None], "es"),
            figures.per_class_bars(["a", "b"], [0.9, 0.95], "x", "es")]
    words = " | ".join(t.get_text() for fig in made for t in fig.findobj(matplotlib.text.Text))
    assert "época" in words and "validación" in words
    assert english_in(words) == [] and "epoch" not in words.split()


@pytest.mark.parametrize("epochs", [1, 2, 30])
def test_epoch_axes_tick_whole_epochs_also_for_one_epoch(epochs):
    """A one-epoch run's curves.png ticked 0.945, 0.960 ... 1.050 around its one point."""
    from mnistlab import figures
    from mnistlab.records import EpochRecord

    history = [EpochRecord(e, 1.0, 0.8, 0.8, 0.9, 0.85, 0.95, 0.84, 0.84, 0.001, 1.0)
               for e in range(1, epochs + 1)]
    for fig in (figures.learning_curves(history),
                figures.experiment_curves({"0.1": [[0.5] * epochs]}, "lr", "en")):
        fig.canvas.draw()
        for ax in fig.axes:
            low, high = ax.get_xlim()
            shown = [x for x in ax.get_xticks() if low <= x <= high]
            assert shown and all(float(x).is_integer() for x in shown), (epochs, shown)


def test_a_trial_that_reports_another_metric_is_drawn_beside_its_accuracy():
    """The LeNet failure's figure drew only its true accuracy, zoomed to 0.06-0.16: a run at
    chance throughout read as a collapse, and the 0.9000 plateau of its section was not there."""
    from mnistlab import figures

    fig = figures.experiment_curves({"trial 4 net": [[0.156, 0.09, 0.065]]}, "failure",
                                    reported={"trial 4 net": [[0.9, 0.9, 0.9]]}, chance=0.1)
    (ax,) = fig.axes
    assert ax.get_ylim() == (0, 1.02)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["trial 4 net: accuracy", "trial 4 net: the metric it reports",
                      "chance (1/10)"], labels
    solid, dashed = ax.lines[:2]
    assert solid.get_color() == dashed.get_color()  # a pair, told apart by its dashes
    assert " ".join(ax.get_ylabel().split()) == "validation accuracy / reported metric"
    plain = figures.experiment_curves({"a": [[0.5, 0.6]]}, "x")  # no other metric: as before
    assert plain.axes[0].get_ylim() != (0, 1.02)


def test_doctor_in_spanish_says_everything_in_spanish(tmp_path, capsys):
    from spanish import english_in
    from synth import blobs

    from mnistlab import TrainConfig, train
    from mnistlab.cli import main

    train(TrainConfig(model="mlp", hidden=(16,), epochs=3, lr=50.0, optimizer="sgd",
                      val_size=200, eval_train_size=200, device="cpu"), dataset=blobs(),
          out=tmp_path / "run")
    assert main(["doctor", str(tmp_path / "run"), "--lang", "es"]) == 1
    said = capsys.readouterr().out
    assert "PROBLEMA" in said and "Solución:" in said and "diverg" in said
    assert english_in(said) == [], english_in(said)


def test_numbers_on_spanish_figures_have_a_decimal_comma():
    from mnistlab import figures

    def ticks(fig):
        fig.canvas.draw()  # tick labels are made when the figure is drawn
        return [label.get_text() for ax in fig.axes for label in ax.get_yticklabels()]

    made = {lang: figures.point_chart(["0.1", "0.01"], [0.8, 0.85], [0.01, 0.02], "lr", "0.1",
                                      None, lang) for lang in ("en", "es")}
    # accuracies in percent, as the tables write them (the figures said 0.80)
    assert "80%" in ticks(made["en"]) and "80%" in ticks(made["es"])  # as the text writes it
    top = figures.point_chart(["a", "b"], [0.99, 1.0], [0, 0], "x")  # no "102%" above a 1.0
    assert "100.0%" in ticks(top) and "" in ticks(top)
    assert all(float(text.rstrip("%")) <= 100 for text in ticks(top) if text)
    narrow = figures.point_chart(["a", "b"], [0.9912, 0.9925], [0, 0], "x", lang="es")
    assert any(text.startswith("99,1") and text.endswith("%") for text in ticks(narrow))
    assert not any("." in text for text in ticks(made["es"]))
    # category labels are data (the values tried) and stay as written
    assert [x.get_text() for x in made["es"].axes[0].get_xticklabels()] == ["0.1", "0.01"]


def test_point_chart_legends_say_how_many_seeds_their_bars_spread_over():
    """The legend said "ours (mean ± sd)" also for one seed, where there are no bars, and the
    bars of two seeds read as a test the tables' 95% intervals then contradicted."""
    from mnistlab import figures

    def legend(seeds):
        fig = figures.point_chart(["0.1", "0.01"], [0.8, 0.85], [0.01, 0.02], "lr", "0.1",
                                  seeds=seeds)
        return fig.axes[0].get_legend_handles_labels()[1]

    assert legend(2) == ["ours (mean ± sd over 2 seeds)", "base value (mean ± sd over 2 seeds)"]
    assert legend(1) == ["ours (one run)", "base value (one run)"]
    # the original's crosses where their values' points are, also where values are placed
    # by their size (the crosses kept even gaps: review)
    fig = figures.point_chart(["5", "10", "30"], [0.9, 0.95, 0.97], [0.01] * 3, "e", "10",
                              original=[0.91, None, 0.975], seeds=3)
    ours, base, crosses = fig.axes[0].collections[1:]
    assert [x for x, _ in crosses.get_offsets()] == [x for x, _ in ours.get_offsets()]


def test_the_running_curve_names_dropout_and_augmentation_only_where_the_run_has_them():
    """curves.png said "train (running, dropout/augmentation on)" of mnist-fast, which has
    neither."""
    from mnistlab import figures
    from mnistlab.config import TrainConfig
    from mnistlab.records import EpochRecord

    history = [EpochRecord(1, 1.0, 0.8, 0.8, 0.9, 0.85, 0.95, 0.84, 0.84, 0.001, 1.0)]
    for config, said in ((TrainConfig(dropout=0.0), "train (running, over the epoch)"),
                         (TrainConfig(dropout=0.2), "train (running, dropout/augmentation on)"),
                         (TrainConfig(dropout=0.0, augment="rotate=10"),
                          "train (running, dropout/augmentation on)")):
        fig = figures.learning_curves(history, regularised=config.regularised)
        assert said in fig.axes[1].get_legend_handles_labels()[1]


def test_search_figures_name_settings_in_the_report_s_language():
    """The Spanish search report's parallel, slice and importance figures named their axes
    batch_size, weight_decay ... where its tables said "tamaño de lote"."""
    from mnistlab.messages import setting_label

    assert setting_label("batch_size", "es") == "tamaño de lote"
    assert setting_label("batch_size", "en") == "batch_size"  # the space file's key
    assert setting_label("no_such_setting", "es") == "no_such_setting"


def test_point_charts_place_numbers_by_their_size():
    """Epochs 5, 10, 15, 20, 30 sat at even gaps, so the trend read as a straight line."""
    from mnistlab.figures import _positions

    assert list(_positions(["5", "10", "15", "20", "30"])) == pytest.approx([0, 0.8, 1.6, 2.4, 4])
    assert list(_positions(["0.0001", "0.001", "0.01"])) == pytest.approx([0, 1, 2])  # log
    assert list(_positions(["0,0001", "0,001", "0,01"], "es")) == pytest.approx([0, 1, 2])
    # Spanish counts group thousands with a point (1.000 is a thousand, not one)
    assert list(_positions(["500", "1.000", "2.000"], "es")) == pytest.approx([0, 2 / 3, 2])
    # a label left as written (a trial's, no Spanish form) keeps its decimal point (review)
    assert list(_positions(["0.1", "0.25", "0.5"], "es")) == pytest.approx([0, 0.75, 2])
    for evenly in (["64-32", "128-64"], ["sgd", "adam"], ["0", "0.2", "0.4"],
                   ["1", "1.1", "50"]):  # words, a zero, labels that would collide
        assert list(_positions(evenly)) == list(range(len(evenly)))


def test_a_figure_stored_as_null_is_a_dash_not_a_crash():
    """A finding read back from JSON may hold null where a number was (NaN is written so):
    formatting it with :.4f raised, and the run was called damaged."""
    from mnistlab.records import Finding

    assert t("en", "finding.diverged.evidence.exploded", first=None, value=None, step=3) \
        .count("—") == 2
    for code, values in (("too-slow", {"drop": None, "first": None, "last": None}),
                         ("diverged", {"kind": "exploded", "first": None, "value": 1e9,
                                       "step": 3})):
        for lang in LANGS:
            assert "—" in " ".join(Finding(code, "problem", values).text(lang).values())


def test_json_takes_numpy_and_torch_scalars():
    import json

    import numpy as np
    import torch

    from mnistlab.files import json_text

    data = {"a": np.float32(0.5), "b": np.float32("nan"), "c": np.int64(3),
            "d": [torch.tensor(2.5), np.bool_(True)]}
    assert json.loads(json_text(data)) == {"a": 0.5, "b": None, "c": 3, "d": [2.5, True]}


def test_lists_of_numbers_with_a_decimal_comma_are_kept_apart():
    """'cambió fuera del ruido con 0,0001, 0,01' read as three numbers or as one."""
    from mnistlab.messages import listed

    assert listed(["0,0001", "0,01"]) == "0,0001; 0,01"
    assert listed(["5", "20", "30"]) == "5, 20, 30"
    assert listed(["0.0001", "0.01"]) == "0.0001, 0.01"


def test_a_list_in_a_sentence_ends_with_its_conjunction():
    """'cambió fuera del ruido con 0,0001; 0,01' and 'con 5, 20, 30': a list a sentence
    says ends with 'y' (and 'and')."""
    from mnistlab.messages import in_words

    assert in_words(["0,0001", "0,01"], "es") == "0,0001 y 0,01"
    assert in_words(["0,0001", "0,01", "0,1"], "es") == "0,0001; 0,01 y 0,1"
    assert in_words(["5", "20", "30"], "es") == "5, 20 y 30"
    assert in_words(["5", "20", "30"], "en") == "5, 20 and 30"
    assert in_words(["0.01"], "en") == "0.01"


def test_spanish_speaks_to_the_reader_as_tu_throughout():
    """Two messages said 'Baje' and 'ejecute' (usted) where every other one says 'baja',
    'ejecuta', 'usa' (tú)."""
    import re

    from mnistlab.messages import catalogue

    usted = re.compile(r"\b(ejecute|baje|elija|pruebe|vuelva|instale|compruebe|revise|añada|"
                       r"quite|mueva|guarde|escriba|busque|compare)\b", re.IGNORECASE)
    found = {key: m.group(0) for key, texts in catalogue().items()
             if (m := usted.search(texts.get("es", "")))}
    assert found == {}


def test_an_experiment_s_figures_name_what_their_values_are():
    """The points chart's value axis had no label, and the curves' legend read "30" alone
    (the epochs factor's one line) with nothing to say 30 of what."""
    from mnistlab import figures

    points = figures.point_chart(["0.1", "0.01"], [0.8, 0.85], [0.01, 0.02], "learning rate",
                                 "0.1", seeds=2)
    assert points.axes[0].get_xlabel() == "learning rate"
    curves = figures.experiment_curves({"30": [[0.5, 0.6, 0.7]], "10": [[0.5, 0.6]]}, "epochs")
    assert curves.axes[0].get_legend().get_title().get_text() == "epochs"


def test_drawing_changes_nothing_for_the_user_s_own_plots(tmp_path):
    """Importing mnistlab's figures chose the Agg backend and turned math text off for the
    whole process: in a notebook the inline backend was gone (plt.show() showed nothing) and
    the user's "$x$" labels were printed as written. A "$" in our labels is still text."""
    code = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np
from mnistlab import figures, files
from mnistlab.report import tune_plots
fig = figures.confusion(np.eye(2, dtype=int), ["$^$", "a$b$c"])
files.save_figure({str(tmp_path / "c.png")!r}, fig)
files.save_figure({str(tmp_path / "h.png")!r}, tune_plots.history(
    [0, 1], [0.5, 0.6], [False, False],
    {{"complete": "$c", "pruned": "p", "best": "b$", "x": "x", "y": "y"}}))
print(matplotlib.get_backend(), matplotlib.rcParams["text.parse_math"])
"""
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "True"]
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_a_setting_held_by_overlapping_calls_is_put_back_by_the_last():
    """Each call saved and restored Optuna's level (and matplotlib's math text) itself: two
    calls overlapping in threads put them back in the wrong order, and left the user's own
    setting changed."""
    import threading

    from mnistlab.held import Held

    store = {"level": "INFO"}
    held = Held(lambda: store["level"], lambda v: store.__setitem__("level", v), "WARNING")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with held():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with held():
            second_in.set()
            first_out.wait(5)
            seen.append(store["level"])  # the first has left: still held for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == ["WARNING"] and store["level"] == "INFO"


def test_a_finding_names_a_known_class_as_the_language_does():
    """The Spanish doctor said "las predicciones ... son la clase 'Trouser'" beside a report
    whose figures name it Pantalón; a user's own class stays as written, also one called as
    one of Fashion-MNIST's ("Bag" of Bag, Box, Cup is theirs: the figures keep it)."""
    from mnistlab.doctor import collapse
    from mnistlab.records import Finding

    fashion = catalogue()["classes.fashion-mnist"]["en"].split("|")
    for names, english, spanish in ((fashion, "Trouser", "Pantalón"),
                                    (["Box", "Trouser", "Cup"], "Trouser", "Trouser")):
        found = _collapsed_on(collapse, names, 1)
        assert f"'{english}'" in found.text("en")["evidence"]
        assert f"la clase '{spanish}'" in found.text("es")["evidence"]
        assert class_names(names, "es")[1] == spanish  # as the figures name it
    older = Finding("collapse", "problem", {"share": 0.93, "cls": "Trouser"})  # before cls_of
    assert "'Trouser'" in older.text("es")["evidence"]


def _collapsed_on(rule, names: list[str], top: int):
    from mnistlab.config import TrainConfig
    from mnistlab.doctor import Case
    from mnistlab.records import EpochRecord, Observation

    k = len(names)
    record = EpochRecord(epoch=1, train_loss=2.0, train_accuracy_running=0.1,
                         train_accuracy_eval=0.1, val_loss=2.0, val_accuracy=0.1,
                         val_metric=0.1, train_metric_running=0.1, lr=0.01, seconds=1.0,
                         train_loss_eval=2.0)
    seen = Observation("completed", names, [], [100] * k, [1000 * (i == top) for i in range(k)],
                       0.1, 2.0, 0.1, 1000)
    return rule(Case(TrainConfig(), [record], seen, k, 1 / k), [])


@pytest.mark.parametrize("lang, said", [("en", "Fix: Raise the learning rate"),
                                         ("es", "Solución: sube la tasa de aprendizaje")])
def test_a_fix_after_its_label_goes_on_as_each_language_writes(lang, said):
    """«Solución: Sube ...»: Spanish goes on in lower case after a colon (reader pass)."""
    from rich.console import Console

    from mnistlab.cli.common import print_findings
    from mnistlab.records import Finding

    console = Console(record=True, width=200)
    print_findings([Finding("too-slow", "warning", {"lr": 0.001, "slow_lr": 0.01})], lang,
                   console)
    assert said in console.export_text()


def test_spanish_quotes_words_with_angle_quotes():
    """Hunt: 'no', 'buena generalización' and (la 'accuracy' de Keras) beside «aciertan»:
    Spanish quotes with « » throughout, in the catalogue and in the presets' texts."""
    import re
    from pathlib import Path

    import mnistlab

    straight = re.compile(r"(?<!\w)'[^'\n]+'(?!\w)")
    quoted = {key: entry["es"] for key, entry in catalogue().items()
              if straight.search(entry["es"])}
    assert quoted == {}
    for preset in Path(mnistlab.__file__).parent.glob("*/presets/*.toml"):
        for line in preset.read_text("utf-8").splitlines():
            if line.startswith("es = "):
                assert not straight.search(line), (preset.name, line[:80])
