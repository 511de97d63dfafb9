"""The run's and the study's figures at their edges (hunt: 26 classes, long class names, no
validation set, a blow-up, equal curves, eleven values, one seed)."""

import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mnistlab import figures
from mnistlab.records import EpochRecord

NAN = math.nan


def _epoch(epoch: int, **values: float) -> EpochRecord:
    record = dict(epoch=epoch, train_loss=1.0 / epoch, train_accuracy_running=0.8,
                  train_accuracy_eval=0.85, val_loss=0.5, val_accuracy=0.8, val_metric=0.8,
                  train_metric_running=0.8, lr=0.01, seconds=1.0, train_loss_eval=0.9 / epoch)
    return EpochRecord(**{**record, **values})


def _legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_curves_without_validation_name_no_validation_line():
    """`--val-size 0`: the legend named a green validation line that was not drawn."""
    fig = figures.learning_curves([_epoch(1, val_loss=NAN, val_accuracy=NAN),
                                   _epoch(2, val_loss=NAN, val_accuracy=NAN)])
    assert len(_legend_texts(fig)) == 2 and "validation" not in _legend_texts(fig)
    assert "validation" in _legend_texts(figures.learning_curves([_epoch(1), _epoch(2)]))


def test_a_loss_that_blew_up_is_drawn_on_a_log_axis():
    """A diverged run's 1740 read as 0.0 beside 1.5e8 on a linear axis."""
    loss_axis = figures.learning_curves([_epoch(1, train_loss=1740.0),
                                         _epoch(2, train_loss=1.5e8)]).axes[0]
    assert loss_axis.get_yscale() == "log"
    assert figures.learning_curves([_epoch(1), _epoch(2)]).axes[0].get_yscale() == "linear"
    # a long healthy run falls by that much, and stays linear (review)
    falling = [_epoch(e, train_loss_eval=10.0 ** -e) for e in range(1, 7)]
    assert figures.learning_curves(falling).axes[0].get_yscale() == "linear"


def test_equal_curves_are_one_line_named_for_all_and_eleven_values_keep_apart():
    """Weight decays 0, 0.0001 and 0.0005 at the same accuracy every epoch: three names in
    the legend, one line showing; an eleventh value took the first one's colour and style."""
    curves = {f"{v:g}": [[0.5, 0.6 + 0.01 * i]] for i, v in enumerate(
        [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.5])}
    curves["0"] = curves["0.0001"]
    fig = figures.experiment_curves(curves, "learning rate")
    assert _legend_texts(fig)[0] == "0.0001, 0" and len(fig.axes[0].lines) == 11
    styles = {(line.get_color(), line.get_linestyle()) for line in fig.axes[0].lines}
    assert len(styles) == 11
    legend = fig.axes[0].get_legend()  # beside the axes, not on the lines
    FigureCanvasAgg(fig).draw()
    assert legend.get_window_extent().x0 >= fig.axes[0].get_window_extent().x1


def test_long_class_names_are_cut_in_their_middle_to_stay_apart():
    names = [f"a rather long class name no {i:02d}" for i in range(26)]
    cut = [figures.shortened(name, 20) for name in names]
    assert len(set(cut)) == 26 and all(len(c) == 20 for c in cut)
    assert cut[3] == "a rather …name no 03" and figures.shortened("coat", 20) == "coat"
    fig = figures.misclassified_grid(np.zeros((3, 28, 28)), names[:3], names[3:6], "")
    titles = [text.get_text() for text in fig.axes[0].texts]
    short = [figures.shortened(name, 22) for name in (names[0], names[3])]
    assert titles[0] == f"{short[0]}\n→{short[1]}"
    bars = figures.per_class_bars(names, [0.9] * 26, "")
    assert [label.get_text() for label in bars.axes[0].get_xticklabels()] == cut
    assert bars.get_figwidth() > 6.4


def test_a_confusion_matrix_of_26_classes_shows_its_counts():
    """Past 20 classes the counts were left out, and errors of 1 to 5 were near-white cells."""
    matrix = np.eye(26, dtype=int) * 90 + 1
    fig = figures.confusion(matrix.tolist(), [chr(65 + i) for i in range(26)])
    assert len(fig.axes[0].texts) == 26 * 26
    # an empty cell stays blank there: 47 classes' 2,209 labels took 8-13 s of a 33 s run
    matrix[0, 1:] = 0
    texts = figures.confusion(matrix.tolist(), [chr(65 + i) for i in range(26)]).axes[0].texts
    assert len(texts) == 26 * 26 - 25 and {x.get_text() for x in texts} == {"1", "91"}
    small = figures.confusion([[5, 0], [0, 5]], ["a", "b"]).axes[0].texts  # a 0 said there
    assert [x.get_text() for x in small] == ["5", "0", "0", "5"]


def test_a_long_class_name_is_cut_on_the_confusion_matrix():
    """Hunt: a 56-character name shrank the matrix to a thumbnail in a corner."""
    long = "Pullover with long sleeves and a round collar (knitted)"
    fig = figures.confusion(np.eye(3, dtype=int) * 20, ["Dress", long, "Bag"])
    ticks = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert ticks == ["Dress", figures.shortened(long, 24), "Bag"] and len(ticks[1]) == 24


def test_one_seed_draws_no_error_bars():
    fig = figures.point_chart(["0.1", "0.2"], [0.8, 0.81], [NAN, NAN], "dropout", seeds=1)
    assert not fig.axes[0].containers  # caps of no height were dashes through the dots


def test_an_early_stopped_run_marks_the_epoch_it_keeps():
    """The curve ran on to epoch 5 at 86.9% where the summary gave epoch 4's 0.8721, and
    nothing on the figure said which epoch the model is."""
    history = [_epoch(e) for e in range(1, 6)]
    fig = figures.learning_curves(history, lang="es", kept_epoch=4)
    assert "conservada: época 4 (mejor validación)" in _legend_texts(fig)
    assert all(len(ax.lines) >= 3 for ax in fig.axes)
    assert not any("kept" in text for text in _legend_texts(
        figures.learning_curves(history, kept_epoch=5)))  # the last epoch: nothing to mark


def test_long_value_names_put_the_legend_below_and_a_merged_reported_line_keeps_its_word():
    """lenet-challenge's failure trial, 80 characters of name, beside the axes: the plot was
    a quarter of the figure and its title cut (review). Below them it leaves the width."""
    long = "trial 4 network, BCE + binary accuracy, labels shuffled on purpose"
    curves = {"trial 0": [[0.5, 0.6]], long: [[0.5, 0.6]]}
    fig = figures.experiment_curves(curves, "the original failure", reported={long: [[0.9, 0.9]]},
                                    chance=0.1)
    assert fig.legends and fig.axes[0].get_legend() is None
    assert " ".join(_legend_texts(fig)[0].split()) == f"trial 0, {long}: accuracy"  # wrapped
    FigureCanvasAgg(fig).draw()
    assert fig.axes[0].get_window_extent().width > 0.7 * fig.bbox.width


def test_per_class_bars_of_ten_digits_keep_their_height():
    assert figures.per_class_bars([str(k) for k in range(10)], [0.99] * 10, "").get_figheight() \
        == 3.6


@pytest.mark.parametrize("lang, said", [("en", "no test images"),
                                         ("es", "sin imágenes de prueba")])
def test_a_class_without_test_images_has_no_bar_and_says_so(lang, said):
    """A class only in the training set was drawn as a 0% bar, a class never got right, and
    took the axis down to 0 (hunt)."""
    fig = figures.per_class_bars(["a", "b", "c"], [0.95, 0.9, None], "", lang)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == [0.95, 0.9] and math.isnan(heights[2])
    assert ax.get_ylim()[0] >= 0.8  # the axis starts near the lowest measured bar
    assert [x.get_text() for x in ax.texts] == [said]


def test_a_long_legend_below_grows_the_figure_and_the_axis_title_fits():
    """LeNet's failure figure in Spanish: eleven legend lines below left the axes an inch
    high and cut "exactitud de validación / métrica declarada" at "declarad"."""
    curves = {f"ensayo {i}: con ReLU y Adam": [[0.1, 0.1 + i / 1000, 0.1]] for i in range(5)}
    fig = figures.experiment_curves(curves, "fallo", "es", reported={
        label: [[0.9, 0.9, 0.9]] for label in curves}, chance=0.1)
    FigureCanvasAgg(fig).draw()
    axes = fig.axes[0]
    assert axes.get_position().height * fig.get_figheight() > 2.5  # inches of plot
    label = axes.yaxis.label.get_window_extent()
    assert label.y0 >= 0 and label.y1 <= fig.bbox.height  # inside the figure
    # equal curves' merged names wrap rather than run past the figure's edge
    same = {f"trial {i}: with a long label here": [[0.1, 0.1, 0.1]] for i in range(5)}
    merged = figures.experiment_curves(same, "merged", "en")
    FigureCanvasAgg(merged).draw()
    legend = merged.legends[0].get_window_extent()
    assert legend.x0 >= 0 and legend.x1 <= merged.bbox.width


def test_equal_curves_read_off_a_longer_run_are_one_marker_named_for_both():
    """Two values whose runs are the same first epochs of a longer run drew two markers at
    one spot, the legend naming two of them."""
    fig = figures.experiment_curves({"30": [[0.8, 0.85, 0.9, 0.91]], "2a": [[0.8, 0.85]],
                                     "2b": [[0.8, 0.85]], "3": [[0.8, 0.85, 0.9]]}, "epochs")
    assert [t for t in _legend_texts(fig) if "end of" in t] == [
        "2a, 2b: end of the 30 line", "3: end of the 30 line"]
    assert len(fig.axes[0].collections) == 2


def test_a_run_that_diverged_in_its_first_epoch_is_drawn_on_a_log_axis():
    """One epoch, running loss 430.8 beside eval and validation losses of 1e7: on a linear
    axis the 430.8 sat on 0 (the check only compared a loss with its own earlier epochs)."""
    one = [_epoch(1, train_loss=430.8, train_loss_eval=1.03e7, val_loss=1.045e7)]
    assert figures.learning_curves(one).axes[0].get_yscale() == "log"
    # a healthy run whose eval-mode loss fell to 1e-5 beside a validation loss of 0.05 is not
    healthy = [_epoch(1, train_loss=0.01, train_loss_eval=1e-5, val_loss=0.05)]
    assert figures.learning_curves(healthy).axes[0].get_yscale() == "linear"


def test_a_long_legend_entry_wraps_whole_with_its_suffix():
    """The Spanish failure trial's accuracy line wrapped before its suffix and its longer
    reported-metric line ran on, on one line."""
    name = "ensayo 4 red, BCE + exactitud binaria, etiquetas barajadas"
    fig = figures.experiment_curves({name: [[0.1, 0.1]]}, "fallo", "es",
                                    reported={name: [[0.9, 0.9]]}, chance=0.1)
    assert all(max(map(len, text.split("\n"))) <= 60 for text in _legend_texts(fig))


def test_a_grid_s_long_labels_stand_on_lines_of_their_own_and_the_legend_below():
    """A Spanish grid's labels ("dropout 0,3; decaimiento de pesos 0,001"), slanted, left the
    axes under half the figure, and the legend inside them covered an error bar (hunt)."""
    from mnistlab.figures import point_chart, wrapped_label

    labels = ["dropout 0; decaimiento de pesos 0", "dropout 0,3; decaimiento de pesos 0,001"]
    fig = point_chart(labels, [0.8, 0.81], [0.01, 0.01], "dropout × decaimiento de pesos",
                      base_label=labels[0], lang="es", seeds=2)
    ticks = fig.axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == [wrapped_label(label) for label in labels]
    assert ticks[1].get_text() == "dropout 0,3\ndecaimiento de\npesos 0,001"
    assert ticks[0].get_rotation() == 0
    assert fig.axes[0].get_legend() is None and len(fig.legends) == 1
    assert wrapped_label("0,001") == "0,001" and wrapped_label("lr=0.01, optimizer=adam") == \
        "lr=0.01\noptimizer=adam"


def test_a_crowded_grid_s_labels_slant_and_keep_their_numbers_whole():
    """Review: "weight_decay=0.0001" was broken into "weight_decay=0." and "0001", and nine
    upright labels of a 3 x 3 grid ran into each other."""
    import itertools

    from mnistlab.figures import point_chart, wrapped_label

    assert wrapped_label("weight_decay=0.0001, batch_size=128") == \
        "weight_decay=0.0001\nbatch_size=128"
    assert wrapped_label("learning_rate=0.0001") == "learning_rate=0.0001"
    labels = [f"lr={a}, weight_decay={b}" for a, b in
              itertools.product([0.001, 0.01, 0.1], [0, 0.0001, 0.001])]
    fig = point_chart(labels, [0.8] * 9, [0.01] * 9, "lr×weight_decay", lang="en", seeds=2)
    ticks = fig.axes[0].get_xticklabels()
    assert {t.get_rotation() for t in ticks} == {30}
    assert all("=0.\n" not in t.get_text() for t in ticks)


def test_a_confusion_matrix_of_many_classes_stays_a_figure_one_can_open():
    """256 classes made a 15,708 x 14,137-pixel PNG in 40 s that PIL refuses to open (hunt)."""
    import numpy as np

    from mnistlab.figures import CONFUSION_MAX_INCHES, confusion

    k = 256
    fig = confusion(np.eye(k, dtype=int) * 5, [f"c{i}" for i in range(k)])
    assert max(fig.get_size_inches()) <= CONFUSION_MAX_INCHES
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(ticks) <= 64 and ticks[:2] == ["c0", "c4"]
    assert not fig.axes[0].texts  # no counts in cells too small for them


def test_a_character_no_font_has_is_said_once_in_a_line(tmp_path, monkeypatch):
    """Hunt: a class named in Chinese printed a warning a character on every figure; the
    figures now fall back to a font installed for that script, and what none has is said once."""
    import warnings
    from types import SimpleNamespace

    from matplotlib import font_manager

    from mnistlab import files

    odd = "\U0001d800\U0001d801"  # Sutton SignWriting: in no font the figures know
    monkeypatch.setattr(files, "_GLYPHS_SAID", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as Python shows warnings: once where raised
        for attempt in range(2):
            fig = figures.confusion(np.eye(2, dtype=int), [odd, "b"])
            files.save_figure(tmp_path / f"c{attempt}.png", fig)
    [line] = [str(w.message) for w in caught]  # said once in a line, not per character
    assert f"has no {odd}: drawn as empty boxes; install a font that has them" in line
    # a font for another script is used where installed, after DejaVu Sans
    fonts = [SimpleNamespace(name=n) for n in ("DejaVu Sans", "WenQuanYi Zen Hei", "Other")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", fonts)
    figures.fonts.cache_clear()
    try:
        assert figures.fonts() == ["DejaVu Sans", "WenQuanYi Zen Hei"]
    finally:
        figures.fonts.cache_clear()


def test_saving_from_threads_leaves_warnings_and_fonts_as_they_were(tmp_path, monkeypatch):
    """Review: saves in threads at once left the process's warnings off for good (each
    swapped the warning state) and the font family changed (an rc_context put back another
    thread's snapshot); and matplotlib's own warnings were said on every figure, twice."""
    import threading
    import warnings

    import matplotlib
    from matplotlib.figure import Figure

    from mnistlab import files

    filters, family = list(warnings.filters), list(matplotlib.rcParams["font.family"])

    def work(i):
        for j in range(6):
            files.save_figure(tmp_path / f"{i}-{j}.png",
                              figures.confusion(np.eye(3, dtype=int), ["a", "猫", "c"]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == filters and matplotlib.rcParams["font.family"] == family
    with pytest.warns(UserWarning, match="still said"):
        warnings.warn("still said", stacklevel=1)

    def squeezed():  # a figure matplotlib warns of each time it is drawn
        fig = Figure(figsize=(0.3, 0.3), layout="constrained")
        fig.add_subplot().set_ylabel("x" * 400)
        return fig

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for n in range(3):
            files.save_figure(tmp_path / f"s{n}.png", squeezed())
    assert len([w for w in caught if "constrained_layout" in str(w.message)]) == 1
    # review: the user's own filters still rule each save ("error" raised on the first only)
    from matplotlib.ticker import FuncFormatter

    def warned(value, position):
        warnings.warn("a formatter of the user's warns", UserWarning, stacklevel=1)
        return str(value)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(2):
            fig = Figure(figsize=(2, 2))
            fig.add_subplot().xaxis.set_major_formatter(FuncFormatter(warned))
            with pytest.raises(UserWarning, match="formatter of the user's"):
                files.save_figure(tmp_path / f"w{n}.png", fig)
