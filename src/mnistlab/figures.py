"""Matplotlib figures, built from plain data (histories, matrices, tables); nothing is saved here.

Callers save with `files.save_figure` so a figure on disk is never half-written. Every label
comes from the message catalogue in the figure's language (`lang`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter, ScalarFormatter

from .held import Held, font_search_quiet, math_text_off, matplotlib_setting
from .messages import localise, number, t

if TYPE_CHECKING:
    from .records import EpochRecord


# Figures of their own (matplotlib.figure.Figure, not pyplot): no backend is chosen and no
# setting changed for the user's own plots (a notebook's inline backend was replaced by Agg,
# and its "$x$" labels no longer rendered as math). Their text is taken as written while
# they are drawn (held.math_text_off).
F = TypeVar("F", bound=Callable[..., Any])


def drawn(function: F) -> F:
    """A function that builds a figure, its text taken as written (see above), in a font that
    falls back to one installed for the scripts it lacks (`fonts`)."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with math_text_off(), font_search_quiet(), _fallback_fonts()():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# fonts with the scripts matplotlib's own DejaVu Sans lacks (Chinese, Japanese, Korean,
# emoji), each glyph taken from the first that has it where they are installed: a class
# named in Chinese was drawn as empty boxes, with a warning a glyph (hunt)
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
                  "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                  "Droid Sans Fallback", "Microsoft YaHei", "SimHei", "Yu Gothic",
                  "Hiragino Sans", "PingFang SC", "Malgun Gothic", "Noto Emoji",
                  "Segoe UI Emoji")


@functools.cache
def fonts() -> list[str]:
    """DejaVu Sans, then the FALLBACK_FONTS installed here."""
    from matplotlib import font_manager

    have = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in FALLBACK_FONTS if name in have)]


@functools.cache
def _fallback_fonts() -> Callable[[], Any]:
    """`with _fallback_fonts()():` holds the font family at `fonts()` while a figure is built,
    as math text is held (held.Held: threads drawing at once put back the user's own; an
    rc_context put back another thread's snapshot of every setting: review); nothing where no
    fallback is installed."""
    families = fonts()
    if len(families) == 1:
        return contextlib.nullcontext
    family = matplotlib_setting("font.family")
    return Held(family, family, families)


def subplots(*grid: int, figsize: tuple[float, float], layout: str, **kwargs: Any) -> Any:
    """A new figure and its axes (pyplot.subplots' answer, without pyplot's global state)."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*grid, **kwargs)


class _LocalFormatter(ScalarFormatter):
    """Matplotlib's numbers with the language's decimal mark (es: 0,85)."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def __call__(self, x: float, pos: int | None = None) -> str:
        return localise(super().__call__(x, pos), self.lang)


# what follows a percentage, in every language as the reports' sentences and tables write it
# (the RAE's "95 %" with a space is not what the rest of a Spanish report does)
PERCENT = "%"


class _PercentOf1(PercentFormatter):
    """An accuracy (a fraction) in percent, as the reports' tables write it (figures said 0.88
    where the tables said 87.99), with the language's decimal mark (es: 99,5%)."""

    def __init__(self, lang: str) -> None:
        super().__init__(xmax=1.0, symbol=PERCENT)
        self.lang = lang

    def __call__(self, x: float, pos: int | None = None) -> str:
        return localise(super().__call__(x, pos), self.lang)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        """The fewest decimals that write every tick exactly (80%, 82.5%; matplotlib's own
        choice wrote 80.0%)."""
        percents = [100 * v for v in values]
        decimals = next((d for d in range(4) if all(abs(round(p, d) - p) < 1e-6
                                                    for p in percents if p <= 100)), 4)
        return [number(p + 0.0, f".{decimals}f", self.lang) + self.symbol
                if p <= 100 + 1e-9 else "" for p in percents]  # the margin above 100%:
        # matplotlib's room around a point at 1.0, which "104%" labelled as an accuracy


def in_percent(axis: Any, lang: str) -> None:
    """`axis` (of accuracies, as fractions) labelled in percent."""
    axis.set_major_formatter(_PercentOf1(lang))


def localised(fig: Any, lang: str) -> Any:
    """`fig` with every plain numeric axis (colour bars too) written the language's way;
    category labels, which are data, stay as they are."""
    if lang != "en":
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if type(axis.get_major_formatter()) is ScalarFormatter:
                    axis.set_major_formatter(_LocalFormatter(lang))
    return fig


@drawn
def learning_curves(history: Sequence[EpochRecord], title: str = "", lang: str = "en", *,
                    regularised: bool = True, kept_epoch: int | None = None) -> Any:
    """Loss and accuracy per epoch: running train, eval-mode train, validation; one legend for
    both panels, below them, where it covers no curve (inside, it sat on 30 epochs' lines).
    `regularised`: the run trains with dropout or augmentation, which the running figure's
    legend then names (it named them for runs without either).
    `kept_epoch`: an early-stopped run's epoch whose weights it keeps, marked on both panels
    (the curves run on past the figures its summary gives)."""
    epochs = [r.epoch for r in history]
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    size = 6 if len(epochs) <= 15 else 3  # markers that do not merge into a band at 30 epochs
    # the styles (colours in order) of the accuracy panel, whose lines the legend names
    ax_loss.plot(epochs, [r.train_loss for r in history], "o-", markersize=size)
    if not math.isnan(history[0].train_loss_eval):  # older runs did not measure it
        ax_loss.plot(epochs, [r.train_loss_eval for r in history], "s--", markersize=size)
    validated = any(math.isfinite(r.val_accuracy) for r in history)  # --val-size 0: none
    if validated:
        ax_loss.plot(epochs, [r.val_loss for r in history], "^-", markersize=size,
                     color="tab:green")
    ax_loss.set_ylabel(t(lang, "plot.loss"))
    if _blew_up(history):  # 1740 read as 0.0 beside 1.5e8 on a linear axis
        ax_loss.set_yscale("log")
    ax_acc.plot(epochs, [r.train_accuracy_running for r in history], "o-", markersize=size,
                label=t(lang, "plot.train_running_on" if regularised else "plot.train_running"))
    ax_acc.plot(epochs, [r.train_accuracy_eval for r in history], "s--", markersize=size,
                label=t(lang, "plot.train_eval"))
    if validated:  # a legend entry for a line not drawn sent readers looking for it
        ax_acc.plot(epochs, [r.val_accuracy for r in history], "^-", markersize=size,
                    label=t(lang, "plot.validation"), color="tab:green")
    ax_acc.set_ylabel(t(lang, "plot.accuracy"))
    in_percent(ax_acc.yaxis, lang)
    for ax in (ax_loss, ax_acc):
        _epoch_axis(ax, lang)
        ax.grid(alpha=0.3)
        if kept_epoch is not None and kept_epoch < epochs[-1]:
            ax.axvline(kept_epoch, color="gray", linestyle=":",
                       label=t(lang, "plot.kept_epoch", epoch=kept_epoch))
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center",
               ncol=3 if kept_epoch is None else 2)
    if title:
        fig.suptitle(title)
    return localised(fig, lang)


def shortened(name: str, most: int) -> str:
    """`name` cut to `most` characters, its middle an ellipsis (names that differ at their
    end stay apart): a class name of 30 characters ran over its neighbours in a grid or
    under a bar."""
    if len(name) <= most:
        return name
    head = (most - 1) // 2
    return name[:head] + "…" + name[len(name) - (most - 1 - head):]


def _blew_up(history: Sequence[EpochRecord]) -> bool:
    """A loss that rose to over 1000 times a value it had before (a healthy run's falls by
    that much, to 1e-5 in eval mode after long training, and stays on a linear axis)."""
    for name in ("train_loss", "train_loss_eval", "val_loss"):
        low = math.inf
        for value in (getattr(r, name) for r in history):
            if not math.isfinite(value):
                continue
            if value > 1000 * low:
                return True
            low = min(low, value) if value > 0 else low
    # or, within one epoch, a loss over 100 beside one a thousandth of it: a run that diverged
    # in its first epoch (running 430.8, eval 1e7) drew 430.8 as 0 on a linear axis
    for r in history:
        values = [v for v in (r.train_loss, r.train_loss_eval, r.val_loss)
                  if math.isfinite(v) and v > 0]
        if values and max(values) > 100 and max(values) > 1000 * min(values):
            return True
    return False


def _epoch_axis(ax: Any, lang: str) -> None:
    ax.set_xlabel(t(lang, "plot.epoch"))
    # epochs are whole, also where one is drawn (two whole ticks are needed otherwise)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


CONFUSION_MAX_INCHES = 16.0


@drawn
def confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "",
              lang: str = "en") -> Any:
    """Counts with the diagonal readable; rows are the true class."""
    m = np.asarray(matrix)
    k = len(class_names)
    # at most 16 inches: 256 classes made a 15,708-pixel figure in 40 s that PIL refuses to
    # open (hunt); past 64 classes, a name on every 2nd, 3rd... row (7-point at the most)
    size = min(max(5.0, 0.55 * k + 2), CONFUSION_MAX_INCHES)
    fig, ax = subplots(figsize=(size, size * 0.9), layout="compressed")
    image = ax.imshow(m, cmap="Blues")
    every = max(1, math.ceil(k / 64))
    shown = range(0, k, every)
    # cut as the other figures cut them: a name of 56 characters shrank the matrix to a
    # thumbnail in a corner, one of 300 collapsed the axes (hunt)
    names = [shortened(class_names[i], 24) for i in shown]
    small = {"fontsize": 7} if k > 24 else {}
    ax.set_xticks(shown, names, rotation=45 if k <= 64 else 90, ha="right", **small)
    ax.set_yticks(shown, names, **small)
    ax.set_xlabel(t(lang, "plot.predicted"))
    ax.set_ylabel(t(lang, "plot.true"))
    threshold = m.max() / 2 if m.size else 0
    if size / k >= 0.3:  # a third of an inch a cell or more: room for a 7-point count (errors
        # of 1-5 were near-white cells without one past 20 classes); past 20 classes an empty
        # cell stays blank (47 classes: 2,209 labels, 8-13 s of a 33 s run, mostly zeros)
        for i, j in zip(*np.nonzero(m) if k > 20 else np.indices((k, k)).reshape(2, -1)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title or t(lang, "plot.confusion"))
    return localised(fig, lang)


@drawn
def experiment_curves(curves: dict[str, list[list[float]]], title: str,
                      lang: str = "en", *, reported: dict[str, list[list[float]]] | None = None,
                      chance: float | None = None) -> Any:
    """One line per value: the mean over seeds of the per-epoch validation accuracy. A value
    whose curve is the start of a longer one (shorter runs read off a longer run, as for the
    epochs factor) is a marker where it ends on that line, not a hidden line under it.
    `reported`: values whose runs report another metric (binary accuracy), drawn dashed beside
    their accuracy, on a 0-1 axis with `chance` as a dotted line: the 0.9000 plateau and the
    true accuracy at chance under it (the accuracy alone, zoomed, read as a collapse)."""
    means = {label: np.mean([r[:min(map(len, runs))] for r in runs], axis=0)
             for label, runs in curves.items() if runs and min(map(len, runs))}
    fig, ax = subplots(figsize=(7.4, 3.8), layout="constrained")
    ends = {label: _covering(label, means) for label in means}
    reported = reported or {}
    colours = {}
    for i, group in enumerate(_same_curves([label for label in means if ends[label] is None],
                                           means)):
        # equal curves: one line, all named (over several lines where the names run long)
        mean, label = means[group[0]], ", ".join(group)
        (line,) = ax.plot(range(1, len(mean) + 1), mean, marker="o", markersize=3,
                          linestyle=("-", "--", ":", "-.")[i // 10 % 4],  # past 10 colours
                          label=_wrapped(t(lang, "plot.true_accuracy", value=label)
                                         if set(group) & reported.keys() else label))
        colours.update(dict.fromkeys(group, line.get_color()))
    read_off = [label for label in means if ends[label] is not None]
    for group in _same_curves(read_off, means):  # equal ones: one marker, all named
        mean, label = means[group[0]], ", ".join(group)
        ax.scatter([len(mean)], [mean[-1]], s=60, marker="D", zorder=3,
                   edgecolors="black", linewidths=0.6,
                   label=_wrapped(t(lang, "plot.ends_on", value=label, longer=ends[group[0]])))
    for label, runs in reported.items():  # dashed, in its accuracy's colour
        mean = np.nanmean([r[:min(map(len, runs))] for r in runs], axis=0)
        ax.plot(range(1, len(mean) + 1), mean, linestyle="--", marker="s", markersize=3,
                color=colours.get(label), label=_wrapped(t(lang, "plot.reported", value=label)))
    if reported:
        ax.set_ylim(0, 1.02)
        if chance is not None:
            ax.axhline(chance, color="gray", linestyle=":",
                       label=t(lang, "plot.chance", k=round(1 / chance)))
    _epoch_axis(ax, lang)
    # on two lines: beside a legend below the axes, Spanish's one line ran past the figure
    ax.set_ylabel(t(lang, "plot.val_or_reported" if reported else "plot.val").replace(" / ",
                                                                                      " /\n"))
    in_percent(ax.yaxis, lang)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # the values' legend read "30" alone; beside the axes, where "best" placed it on lines,
    # or below them where its names are long (a trial's took three quarters of the width)
    handles, labels = ax.get_legend_handles_labels()
    if max(map(len, labels), default=0) <= 30:
        ax.legend(fontsize=8, title=title, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    else:  # the figure grows by the legend's lines: LeNet's eleven left the axes an inch high
        lines = 1 + sum(label.count("\n") + 1 for label in labels)
        fig.set_size_inches(7.4, 3.8 + 0.2 * lines)
        fig.legend(handles, labels, fontsize=8, title=title, title_fontsize=8,
                   loc="outside lower center")
    return localised(fig, lang)


def _wrapped(label: str) -> str:
    """A legend entry over lines of 60 characters at most, whole (its suffix too: a trial's
    Spanish accuracy line wrapped and its reported-metric line, longer, ran on)."""
    return textwrap.fill(label, 60)


def _same_curves(labels: list[str], means: dict[str, Any]) -> list[list[str]]:
    """`labels` grouped where their curves are equal (weight decays 0, 0.0001 and 0.0005 at
    the same accuracy every epoch: the legend named three lines and one showed)."""
    groups: list[list[str]] = []
    for label in labels:
        twin = next((g for g in groups if len(means[g[0]]) == len(means[label])
                     and np.allclose(means[g[0]], means[label], rtol=0, atol=1e-9)), None)
        if twin is None:
            groups.append([label])
        else:
            twin.append(label)
    return groups


def _covering(label: str, means: dict[str, Any]) -> str | None:
    """The value with the longest curve that starts with `label`'s curve, if any (the one
    line drawn for them all)."""
    mine = means[label]
    longer = [(len(curve), other) for other, curve in means.items()
              if len(curve) > len(mine)
              and np.allclose(curve[:len(mine)], mine, rtol=0, atol=1e-9)]
    return max(longer)[1] if longer else None


@drawn
def point_chart(labels: Sequence[str], means: Sequence[float], sds: Sequence[float],
                title: str, base_label: str | None = None,
                original: Sequence[float | None] | None = None, lang: str = "en", *,
                seeds: int = 2, diverged: Sequence[bool] = ()) -> Any:
    """Mean validation accuracy per value with ±1 sd error bars over `seeds` seeds (none
    with one: the legend says "one run"); the base value in red, the original's figures as
    crosses, each with its legend entry. A value with a run that `diverged` is marked on the
    axis below it (one whose runs all diverged had no point, and nothing said why)."""
    fig, ax = subplots(figsize=(6.4, 3.6), layout="constrained")
    x = _positions(labels, lang)
    if seeds >= 2:  # with one run, caps of no height were dashes through the dots
        ax.errorbar(x, means, yerr=[0 if np.isnan(s) else s for s in sds], fmt="none",
                    ecolor="gray", capsize=4)
    is_base = np.array([label == base_label for label in labels])
    one = "_one" if seeds < 2 else ""
    drawn = np.isfinite(np.asarray(means, dtype=float))  # a value whose runs all diverged: none
    for mask, colour, key in ((~is_base & drawn, "tab:blue", "plot.ours"),
                              (is_base & drawn, "tab:red", "plot.base")):
        if mask.any():
            ax.scatter(x[mask], np.asarray(means)[mask], c=colour, zorder=3,
                       label=t(lang, key + one, n=seeds))
    if not drawn.any():
        ax.set_ylim(0, 1)  # nothing to scale to: the whole range, not ±4% around 0
    if original and any(o is not None for o in original):
        ox = [i for i, o in enumerate(original) if o is not None]
        ax.scatter(x[ox], [original[i] for i in ox], marker="x", c="black", zorder=3,
                   label=t(lang, "plot.original"))
    marked = any(diverged)
    if marked:  # on the axis, whatever its scale: a mark, not a value
        at = x[np.array(diverged, dtype=bool)]
        ax.scatter(at, [0.0] * len(at), transform=ax.get_xaxis_transform(), marker="X",
                   c="tab:red", s=60, zorder=4, clip_on=False,
                   label=t(lang, "plot.diverged_value"))
        pad = 0.08 * (x.max() - x.min()) or 0.5  # a value with no point: not on the edge
        ax.set_xlim(x.min() - pad, x.max() + pad)
    shown = [wrapped_label(label) for label in labels]
    stacked = any("\n" in label for label in shown)  # a grid's cells, in words
    crowded = stacked and len(labels) > 5  # upright, a 3 x 3 grid's ran into each other
    ax.set_xticks(x, shown, rotation=30 if crowded else 0 if stacked else 20,
                  fontsize=8 if stacked else None, ha="right" if crowded else "center",
                  rotation_mode="anchor" if crowded else "default")
    ax.set_xlabel(title)  # the values' axis was unnamed
    ax.set_ylabel(t(lang, "plot.val"))
    in_percent(ax.yaxis, lang)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if marked or stacked:  # below the axes, the figure grown by it: "best" placed it over
        # the mark, or over an error bar where long labels left the axes short (hunt)
        handles, names = ax.get_legend_handles_labels()
        lines = max(label.count("\n") + 1 for label in shown)
        fig.set_size_inches(6.4, 3.6 + 0.2 * len(names) + 0.15 * (lines - 1) * stacked)
        fig.legend(handles, names, fontsize=8, loc="outside lower center")
    else:
        ax.legend(fontsize=8)
    return localised(fig, lang)


def wrapped_label(label: str, width: int = 15) -> str:
    """A value's label as a tick shows it: a grid cell's settings one to a line
    ("dropout 0,3; decaimiento de pesos 0,001", slanted, left the axes under half the
    figure: hunt), other long labels broken between words."""
    if len(label) <= width:
        return label
    apart = next((a for a in (";", ",") if f"{a} " in label), None)
    parts = [p.strip() for p in label.split(apart)] if apart else [label]
    return "\n".join(textwrap.fill(part, width, break_long_words=False,  # 0.0001 whole
                                   break_on_hyphens=False) for part in parts)


def _number_in(label: str, lang: str) -> float:
    """A value's label read as a number: Spanish groups thousands with a point (10.000) and
    writes decimals with a comma (0,5); a label left as written (0.25: a trial's) as is."""
    if lang != "en" and re.fullmatch(r"-?\d{1,3}(\.\d{3})+(,\d+)?", label):
        label = label.replace(".", "")
    return float(label.replace(",", ".") if lang != "en" else label)


def _positions(labels: Sequence[str], lang: str = "en") -> np.ndarray:
    """Where each value sits on a point chart's axis: numbers by their size (epochs 5, 10,
    15, 20, 30 were evenly spaced, so the trend read as straight), on a log scale where
    they span more than a factor of 20 (lr 0.0001 ... 0.01); anything else evenly spaced."""
    try:
        numbers = np.array([_number_in(label, lang) for label in labels])
    except ValueError:
        return np.arange(len(labels), dtype=float)
    if len(numbers) < 2 or len(set(numbers)) < len(numbers) or numbers.min() <= 0:
        return np.arange(len(labels), dtype=float)
    spread = np.log10(numbers) if numbers.max() / numbers.min() > 20 else numbers
    low, high = spread.min(), spread.max()
    placed = (spread - low) / (high - low) * (len(labels) - 1)  # the same width as before
    if np.diff(np.sort(placed)).min() < 0.4:  # labels that would run into each other
        return np.arange(len(labels), dtype=float)
    return placed


@drawn
def per_class_bars(names: Sequence[str], accuracy: Sequence[float | None], title: str,
                   lang: str = "en") -> Any:
    """Test accuracy per class; the axis starts near the lowest bar, and says where. A class
    without test images (None) has no bar but says so: drawn as 0% it read as a class never
    got right, and took the axis down to 0."""
    shown = [shortened(name, 20) for name in names]
    longest = max(map(len, shown), default=0)
    # wider with the classes, taller with their names: 26 names of 30 characters took most
    # of the height and cut the axis title where it says where the axis starts
    fig, ax = subplots(figsize=(max(6.4, 0.3 * len(names) + 2), max(3.6, 2.8 + 0.06 * longest)),
                       layout="constrained")
    measured = [v for v in accuracy if v is not None]
    ax.bar(range(len(names)), [math.nan if v is None else v for v in accuracy],
           color="tab:blue")
    ax.set_xticks(range(len(names)), shown, rotation=45, ha="right")
    ax.set_xlim(-0.7, len(names) - 0.3)  # a last class without a bar is inside, not on the edge
    # a whole percent, so the label's start is the axis's
    low = max(0.0, math.floor((min(measured) - 0.05) * 100) / 100) if measured else 0.0
    ax.set_ylim(low, 1.0)
    for i in (i for i, v in enumerate(accuracy) if v is None):
        ax.text(i, low + 0.02 * (1 - low), t(lang, "plot.no_test_images"), rotation=90,
                ha="center", va="bottom", fontsize=8, color="0.4")
    label = t(lang, "plot.test_accuracy")
    start = number(low * 100, ".0f", lang) + PERCENT
    ax.set_ylabel(t(lang, "plot.axis_from", label=label, low=start) if low > 0 else label)
    in_percent(ax.yaxis, lang)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return localised(fig, lang)


@drawn
def misclassified_grid(images: np.ndarray, true: Sequence[str], predicted: Sequence[str],
                       title: str, columns: int = 8) -> Any:
    """Test images the model got wrong, each titled 'true → predicted': one picture of them
    all on one axes (an axes per image took most of a study report's drawing time)."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    height, width = images.shape[1:3]
    titles = [f"{t}→{p}" for t, p in zip(true, predicted)]
    size = 7 if max(map(len, titles), default=0) <= 18 else 6  # "Ankle boot→T-shirt/top"
    # longer ones on two lines, each name cut to the cell: 60 characters ran over the
    # neighbours and off the figure
    titles = [title if len(title) <= 24 else f"{shortened(t, 22)}\n→{shortened(p, 22)}"
              for title, t, p in zip(titles, true, predicted)]
    lines = 2 if any("\n" in title for title in titles) else 1
    # room for each title, and between the images: Fashion-MNIST's longest titles ran into
    # each other 3 pixels apart
    band, gap = max(2, lines * height // 4), max(2, width // 4)
    cell_h, cell_w = height + band, width + gap
    mosaic = np.full((rows * cell_h, columns * cell_w), np.nan)
    fig, ax = subplots(figsize=(columns * 1.2, rows * (1.1 + 0.25 * lines)),
                       layout="constrained")
    for i in range(n):
        top, left = divmod(i, columns)
        top, left = top * cell_h + band, left * cell_w + gap // 2
        mosaic[top:top + height, left:left + width] = images[i]
        ax.text(left + width / 2, top - 1.5, titles[i], fontsize=size, ha="center",
                va="bottom")
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="white")  # the gaps: NaN
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=max(1.0, float(np.nanmax(mosaic, initial=0))),
              interpolation="nearest", aspect="equal")
    ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig
