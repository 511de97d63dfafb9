"""The search's figures: readable text, a colour bar on the parallel and slice plots, every
category labelled in the space's order, round ticks on numeric and log axes."""

import math
from itertools import combinations

import matplotlib.text
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mnistlab.report import tune_plots as plots
from mnistlab.report.tune_plots import SUPERSCRIPT, Scale

HIDDEN = ("128-64", "256-128", "512-256", "256", "512")
# a fashion-mlp-like search: momentum only for sgd, a constant epochs axis, long category names
PARAMS = {
    "optimizer": ["adam", "sgd", "adam", "sgd", "adam"],
    "lr": [1e-4, 3e-3, 0.08, 5e-4, 0.01],
    "momentum": [None, 0.4, None, 0.9, None],
    "dropout": [0.05, 0.21, 0.47, 0.3, 0.1],
    "hidden": ["512", "512-256", "512", "128-64", "512"],  # 256-128 and 256 never drawn
    "batch_size": [64, 32, 256, 64, 128],
    "epochs": [3, 3, 3, 3, 3],
    "weight_decay": [1e-6, 3e-6, 8e-4, 2e-5, 1e-4],
    "schedule": ["cosine", "constant", "cosine", "constant", "constant"],
}
SCALES = {
    "optimizer": Scale(categories=("sgd", "adam")),
    "lr": Scale(low=1e-4, high=0.1, log=True),
    "momentum": Scale(low=0.0, high=0.95),
    "dropout": Scale(low=0.0, high=0.5),
    "hidden": Scale(categories=HIDDEN),
    "batch_size": Scale(categories=("32", "64", "128", "256")),
    "epochs": Scale(low=3, high=3, whole=True),
    "weight_decay": Scale(low=1e-6, high=1e-3, log=True),
    "schedule": Scale(categories=("constant", "cosine")),
}
VALUES = [0.83, 0.58, 0.78, 0.76, 0.81]
NUMBERS = [0, 2, 5, 6, 9]  # complete trials' numbers (1, 3, 4, 7, 8 were pruned)


@pytest.fixture(scope="module")
def parallel():
    return _drawn(plots.parallel(PARAMS, VALUES, SCALES, "validation accuracy"))


@pytest.fixture(scope="module")
def slices():
    return _drawn(plots.slices(PARAMS, VALUES, NUMBERS, SCALES,
                               {"y": "validation accuracy", "colour": "trial number"}))


def _drawn(fig):
    """The figure drawn as it is saved: tick labels and layout are only settled by drawing
    (the plots close their figures, so they get a canvas back first)."""
    FigureCanvasAgg(fig).draw()
    return fig


def _texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible()
            and t.get_text().strip() and (t.axes is None or t.axes.get_visible())]


def _colour_bar(fig):
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert len(bars) == 1, "one colour bar"
    return bars[0]._colorbar


def _axis_labels(fig) -> dict[float, list[tuple[float, str]]]:
    """The parallel plot's axis labels: x of each axis -> [(height, text)] bottom to top."""
    ax = fig.axes[0]
    found: dict[float, list[tuple[float, str]]] = {}
    for text in ax.texts:
        x, y = text.get_position()
        found.setdefault(round(x - 0.05, 6), []).append((y, text.get_text()))
    return {x: sorted(labels) for x, labels in sorted(found.items())}


@pytest.mark.parametrize("figure", ["parallel", "slices"])
def test_no_text_is_smaller_than_nine_points(figure, request):
    fig = request.getfixturevalue(figure)
    texts = _texts(fig)
    assert len(texts) > 30
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 9]
    assert small == []


def test_history_legend_is_readable():
    fig = _drawn(plots.history([0, 1, 2], [0.5, 0.7, 0.6], [False, False, True],
                        {"complete": "c", "pruned": "p", "best": "b", "x": "x", "y": "y"}))
    assert min(t.get_fontsize() for t in _texts(fig)) >= 9
    # below the axes: in the corner it hid the best-so-far line (hunt)
    assert len(fig.legends) == 1 and fig.axes[0].get_legend() is None


def test_parallel_has_a_colour_bar_for_the_objective(parallel):
    bar = _colour_bar(parallel)
    assert bar.ax.get_ylabel() == "validation accuracy"
    assert (bar.norm.vmin, bar.norm.vmax) == (min(VALUES), max(VALUES))
    # the best trial's line has the colour bar's top colour
    best = [line for line in parallel.axes[0].lines if len(line.get_xdata()) > 2][-1]
    assert best.get_color() == bar.cmap(1.0)


def test_parallel_labels_every_category_in_the_space_order(parallel):
    axes = list(_axis_labels(parallel).values())
    names = [t.get_text() for t in parallel.axes[0].get_xticklabels()]
    assert names == [*PARAMS, "validation accuracy"]
    by_name = dict(zip(names, axes))
    assert [text for _, text in by_name["hidden"]] == list(HIDDEN)  # never-drawn ones too
    assert [text for _, text in by_name["optimizer"]] == ["sgd", "adam"]
    assert [text for _, text in by_name["batch_size"]] == ["32", "64", "128", "256"]
    assert [text for _, text in by_name["lr"]] == ["10⁻⁴", "10⁻³", "10⁻²", "10⁻¹"]
    assert [text for _, text in by_name["weight_decay"]] == [
        "10" + str(k).translate(SUPERSCRIPT) for k in (-6, -5, -4, -3)]
    assert [text for _, text in by_name["dropout"]] == ["0", "0.2", "0.4"]
    assert [text for _, text in by_name["epochs"]] == ["3"]  # whole numbers only
    heights = [y for y, _ in by_name["hidden"]]
    assert heights[0] == 0 and heights[-1] == 1


def test_parallel_labels_do_not_overlap_each_other_or_a_frame(parallel):
    renderer = parallel.canvas.get_renderer()
    ax = parallel.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert not [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]
    # the names are parallel slanted lines ending under their axes: apart by spacing x sin(angle)
    names = ax.get_xticklabels()
    spacing = min(np.diff(ax.transData.transform([(x, 0) for x in ax.get_xticks()])[:, 0]))
    line_height = max(t.get_fontsize() for t in names) * parallel.dpi / 72 * 1.2
    assert spacing * math.sin(math.radians(names[0].get_rotation())) > line_height
    assert not any(spine.get_visible() for spine in ax.spines.values())
    figure_box = parallel.bbox
    assert all(figure_box.x0 <= b.x0 and b.x1 <= figure_box.x1 for b in boxes)


def test_parallel_line_breaks_at_a_setting_the_trial_was_not_given(parallel):
    """Drawn straight from lr to dropout, an Adam trial's line crossed the momentum axis at a
    height that read as a momentum it never had: the line has a gap there now."""
    lines = [line for line in parallel.axes[0].lines if len(line.get_xdata()) == 10]
    assert len(lines) == 5
    gaps = sorted(int(np.isnan(np.asarray(line.get_ydata(), dtype=float)).sum())
                  for line in lines)
    assert gaps == [0, 0, 1, 1, 1]  # the three Adam trials, at momentum (axis 2)
    assert all(math.isnan(line.get_ydata()[2]) for line in lines
               if np.isnan(np.asarray(line.get_ydata(), dtype=float)).any())


def test_slices_colour_by_trial_number_with_a_colour_bar(slices):
    bar = _colour_bar(slices)
    assert bar.ax.get_ylabel() == "trial number"
    assert (bar.norm.vmin, bar.norm.vmax) == (0, 9)
    panels = [ax for ax in slices.axes if ax.get_visible() and ax is not bar.ax]
    by_title = {ax.get_title(): ax for ax in panels}
    momentum = by_title["momentum"].collections[0]
    assert list(momentum.get_array()) == [2, 6]  # the sgd trials, by their numbers
    assert list(by_title["lr"].collections[0].get_array()) == NUMBERS


def test_slices_label_every_category_and_round_numbers(slices):
    by_title = {ax.get_title(): ax for ax in slices.axes if ax.get_title()}

    def ticks(name):
        return [t.get_text() for t in by_title[name].get_xticklabels()]

    assert ticks("hidden") == list(HIDDEN)
    assert ticks("schedule") == ["constant", "cosine"]
    assert ticks("lr") == ["10" + str(k).translate(SUPERSCRIPT) for k in (-4, -3, -2, -1)]
    assert ticks("epochs") == ["3"]
    assert ticks("dropout") == ["0", "0.2", "0.4"]


def test_many_categories_are_thinned_not_piled_up():
    choices = tuple(f"c{i}" for i in range(45))
    fig = plots.parallel({"many": ["c0", "c20", "c44"]}, [0.1, 0.5, 0.9],
                         {"many": Scale(categories=choices)}, "val")
    labels = [text for _, text in next(iter(_axis_labels(fig).values()))]
    assert labels[0] == "c0" and 15 <= len(labels) <= plots.MAX_AXIS_LABELS
    fig = plots.slices({"many": ["c0", "c20", "c44"]}, [0.1, 0.5, 0.9], [0, 1, 2],
                       {"many": Scale(categories=choices)}, {"y": "val", "colour": "n"})
    assert len(fig.axes[0].get_xticks()) <= plots.MAX_SLICE_LABELS


def test_spanish_figures_write_numbers_with_the_decimal_comma():
    """The parallel and slice axes read '0.25', '0.75' and '0.8' in a Spanish report (the
    report localises matplotlib's own axes; the searched settings' ticks are drawn here)."""
    import re

    from mnistlab.figures import localised

    figures = [plots.parallel(PARAMS, VALUES, SCALES, "exactitud", "es"),
               plots.slices(PARAMS, VALUES, NUMBERS, SCALES,
                            {"y": "exactitud", "colour": "ensayo"}, "es")]
    for fig in figures:
        texts = [t.get_text() for t in _texts(_drawn(localised(fig, "es")))]
        assert not [t for t in texts if re.search(r"\d\.\d", t)], texts
        assert [t for t in texts if re.fullmatch(r"0,\d+", t)], texts


def test_the_history_axis_counts_whole_trials():
    """Two trials drew ticks at 0.25, 0.5, 0.75 between them."""
    fig = _drawn(plots.history([0, 1], [0.8, 0.7], [False, False],
                               {"complete": "c", "pruned": "p", "best": "b", "x": "trial",
                                "y": "val"}))
    ticks = fig.axes[0].get_xticks()
    assert all(float(tick).is_integer() for tick in ticks), ticks
