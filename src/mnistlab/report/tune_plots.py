"""Figures of a search, from plain numbers (trial values, parameters, importances).

Drawn here rather than with optuna.visualization so every label can be given in the report's
language; nothing is saved here (callers use `files.save_figure`). No text is smaller than FONT
points, so labels stay readable in the saved PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator, NullFormatter

from ..figures import PERCENT, drawn, in_percent, subplots
from ..messages import number

FONT = 9  # points: tick labels, legends, axis labels
TITLE = 10  # points: panel titles, parameter names, colour bar labels
# past these many choices, a categorical axis labels every k-th (parallel axis, slice panel)
MAX_AXIS_LABELS = 30
MAX_SLICE_LABELS = 12


@dataclass(frozen=True)
class Scale:
    """How one searched setting is drawn: a categorical one as its choices, evenly spaced in
    the space's order; a numeric one over its searched range (low .. high), on a log scale when
    searched on one, with whole-number ticks for integers. The default reads the values."""

    categories: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    whole: bool = False



SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                                           "\u2076\u2077\u2078\u2079")


@drawn
def history(numbers: Sequence[int], values: Sequence[float], pruned: Sequence[bool],
            labels: dict[str, str], lang: str = "en") -> Any:
    """Each trial's validation accuracy by trial number (pruned ones at their last reported
    epoch, as crosses) and the best so far among complete trials."""
    fig, ax = subplots(figsize=(7, 3.8), layout="constrained")
    done = [(n, v) for n, v, p in zip(numbers, values, pruned) if not p and math.isfinite(v)]
    cut = [(n, v) for n, v, p in zip(numbers, values, pruned) if p and math.isfinite(v)]
    if done:
        ax.scatter(*zip(*done), c="tab:blue", s=22, zorder=3, label=labels["complete"])
    if cut:
        ax.scatter(*zip(*cut), c="tab:gray", marker="x", s=22, zorder=3, label=labels["pruned"])
    best, xs, ys = -math.inf, [], []
    for n, v in sorted(done):
        best = max(best, v)
        xs.append(n)
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="tab:red", label=labels["best"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers: no 0.25
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    in_percent(ax.yaxis, lang)
    ax.grid(alpha=0.3)
    # below the axes: in the corner "best" chose, it hid the best-so-far line it names
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3,
               fontsize=FONT)
    return fig


@drawn
def importances(names: Sequence[str], means: Sequence[float], sds: Sequence[float],
                xlabel: str) -> Any:
    """Horizontal bars, most important on top, with ±1 sd over the fANOVA repeats."""
    order = np.argsort(means)
    fig, ax = subplots(figsize=(6.4, 0.45 * len(names) + 1.4), layout="constrained")
    y = np.arange(len(names))
    ax.barh(y, np.asarray(means)[order], xerr=np.nan_to_num(np.asarray(sds)[order]),
            color="tab:blue", ecolor="gray", capsize=3)
    ax.set_yticks(y, [names[i] for i in order])
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return fig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _categories(values: Sequence[Any], scale: Scale) -> list[str] | None:
    """A categorical axis's labels in order (the space's choices, then anything else drawn), or
    None for a numeric axis."""
    if not scale.categories and all(_is_number(v) for v in values if v is not None):
        return None
    present = [str(v) for v in values if v is not None]
    listed = list(scale.categories)
    return listed + sorted(set(present) - set(listed))


def _span(values: Sequence[Any], scale: Scale) -> tuple[float, float]:
    """A numeric axis's ends in axis units (log10 on a log scale): the searched range and every
    value drawn; a single value sits in the middle of a unit-wide axis."""
    ends = [float(v) for v in values if v is not None]
    ends += [float(x) for x in (scale.low, scale.high) if x is not None]
    if scale.log:
        ends = [math.log10(x) for x in ends if x > 0]
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _numeric_ticks(lo: float, hi: float, scale: Scale, lang: str) -> list[tuple[float, str]]:
    """Round values inside [lo, hi] (axis units) with their labels in `lang`'s decimal mark:
    powers of ten on a log scale (1-2-5 steps, or else the ends, when fewer than two fall
    inside), else 3-5 round numbers (whole ones for integer settings)."""
    slack = (hi - lo) * 1e-9
    if scale.log:
        first, last = math.floor(lo) - 1, math.ceil(hi) + 1
        decades = [float(k) for k in range(first, last + 1) if lo - slack <= k <= hi + slack]
        if len(decades) >= 2:
            step = math.ceil(len(decades) / 6)
            # superscripts as text: math text is off (figures.py), labels are users' text
            return [(k, "10" + str(int(k)).translate(SUPERSCRIPT)) for k in decades[::step]]
        steps = [k + math.log10(m) for k in range(first, last + 1) for m in (1, 2, 5)]
        inside = [s for s in steps if lo - slack <= s <= hi + slack]
        return [(s, number(10 ** s, ".3g", lang))
                for s in (inside if len(inside) >= 2 else [lo, hi])]
    locator = MaxNLocator(nbins=4, integer=scale.whole, min_n_ticks=1, steps=[1, 2, 2.5, 5, 10])
    ticks = [v for v in locator.tick_values(lo, hi) if lo - slack <= v <= hi + slack]
    return [(v, number(v + 0.0, ".4g", lang)) for v in ticks]  # + 0.0: no "-0"


def _column(values: Sequence[Any], scale: Scale,
            lang: str) -> tuple[list[float], list[tuple[float, str]]]:
    """One parallel axis: each trial's height in [0, 1] (nan where the setting was not
    suggested) and the axis's ticks as (height, label)."""
    labels = _categories(values, scale)
    if labels is not None:
        place = {c: i / (len(labels) - 1) if len(labels) > 1 else 0.5
                 for i, c in enumerate(labels)}
        return ([place[str(v)] if v is not None else math.nan for v in values],
                [(place[c], c) for c in labels])
    lo, hi = _span(values, scale)
    heights = []
    for v in values:
        if v is None or (scale.log and v <= 0):
            heights.append(math.nan)
        else:
            heights.append(((math.log10(v) if scale.log else float(v)) - lo) / (hi - lo))
    return heights, [((v - lo) / (hi - lo), text)
                     for v, text in _numeric_ticks(lo, hi, scale, lang)]


def _draw_axis(ax: Any, x: float, ticks: list[tuple[float, str]]) -> None:
    """A vertical axis with tick marks, and labels to its right on a pale backing so the lines
    behind them do not hide them; past MAX_AXIS_LABELS categories every k-th is labelled."""
    ax.axvline(x, color="0.3", linewidth=0.9, zorder=3)
    step = math.ceil(len(ticks) / MAX_AXIS_LABELS)
    for k, (height, text) in enumerate(ticks):
        ax.plot([x - 0.04, x], [height, height], color="0.3", linewidth=0.9, zorder=3)
        if k % step == 0:
            ax.text(x + 0.05, height, text, ha="left", va="center", fontsize=FONT, zorder=4,
                    bbox={"boxstyle": "round,pad=0.12", "facecolor": "white",
                          "edgecolor": "none", "alpha": 0.8})


@drawn
def parallel(params: dict[str, list[Any]], values: Sequence[float], scales: dict[str, Scale],
             objective: str, lang: str = "en") -> Any:
    """Parallel coordinates: one line per complete trial through every parameter (categories
    evenly spaced, numbers over their searched range, log ranges on a log scale) and the
    objective, coloured by the objective (its colour bar on the right). A trial's line breaks
    at the axes of settings it was not given (momentum of an Adam trial): drawn through, it
    crossed them at heights that read as values it never had."""
    titles = [*params, objective]
    columns = [_column(raw, scales.get(name, Scale()), lang) for name, raw in params.items()]
    heights, ticks = _column([v * 100 for v in values], Scale(), lang)  # in percent
    columns.append((heights, [(h, text + PERCENT) for h, text in ticks]))
    most = max(len(ticks) for _, ticks in columns)
    fig, ax = subplots(figsize=(min(12.0, 1.6 + 0.9 * len(titles)),
                                min(12.0, max(4.2, 1.8 + 0.3 * min(most, MAX_AXIS_LABELS)))),
                       layout="constrained")
    norm = Normalize(min(values), max(values))
    cmap = matplotlib.colormaps["viridis"]
    for i in np.argsort(values):  # best trials drawn last, on top
        ys = np.array([col[i] for col, _ in columns], dtype=float)  # NaN: not given: a gap
        ax.plot(range(len(columns)), ys, color=cmap(norm(values[i])), alpha=0.8,
                linewidth=1.3, zorder=2, marker="o", markersize=2)
    for x, (_, ticks) in enumerate(columns):
        _draw_axis(ax, x, ticks)
    ax.set_xticks(range(len(titles)), titles, rotation=25, ha="right", rotation_mode="anchor",
                  fontsize=TITLE)
    ax.tick_params(axis="x", length=0)
    ax.set_yticks([])
    ax.set_xlim(-0.3, len(titles) - 0.35)
    ax.set_ylim(-0.04, 1.04)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.03, pad=0.01)
    bar.set_label(objective, fontsize=TITLE)
    bar.ax.tick_params(labelsize=FONT)
    in_percent(bar.ax.yaxis, lang)
    return fig


def _slice(ax: Any, raw: Sequence[Any], values: Sequence[float], numbers: Sequence[int],
           scale: Scale, norm: Any, lang: str) -> None:
    """One slice panel: the setting's value against validation accuracy, coloured by trial
    number; categories evenly spaced, all labelled, numbers over the searched range."""
    points = [(x, v, n) for x, v, n in zip(raw, values, numbers) if x is not None]
    if not points:
        ax.set_visible(False)
        return
    xs = [x for x, _, _ in points]
    labels = _categories(xs, scale)
    if labels is not None:
        where = {c: i for i, c in enumerate(labels)}
        positions = [float(where[str(x)]) for x in xs]
        step = math.ceil(len(labels) / MAX_SLICE_LABELS)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, ha="right",
                      rotation_mode="anchor")
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        positions = [float(x) for x in xs]
        lo, hi = _span(xs, scale)
        pad = 0.06 * (hi - lo)
        if scale.log:
            ax.set_xscale("log")
        unit = (lambda v: 10 ** v) if scale.log else (lambda v: v)
        ax.set_xlim(unit(lo - pad), unit(hi + pad))
        ticks = _numeric_ticks(lo, hi, scale, lang)  # the parallel plot's ticks, not log's 2x10^-3
        ax.set_xticks([unit(v) for v, _ in ticks], [text for _, text in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.scatter(positions, [v for _, v, _ in points], c=[n for _, _, n in points],
               cmap="viridis", norm=norm, s=22, zorder=3)
    ax.tick_params(which="both", labelsize=FONT)
    in_percent(ax.yaxis, lang)
    ax.grid(alpha=0.3)


@drawn
def slices(params: dict[str, list[Any]], values: Sequence[float], numbers: Sequence[int],
           scales: dict[str, Scale], labels: dict[str, str], lang: str = "en") -> Any:
    """One panel per parameter: its value against validation accuracy (complete trials; a
    conditional parameter shows only the trials where it was suggested), coloured by trial
    number with one colour bar for all panels. labels: 'y' (the objective), 'colour'."""
    names = list(params)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = subplots(rows, columns, figsize=(3.2 * columns + 1.0, 2.8 * rows),
                         squeeze=False, layout="constrained")
    norm = Normalize(min(numbers), max(numbers))
    for ax, name in zip(axes.ravel(), names):
        _slice(ax, params[name], values, numbers, scales.get(name, Scale()), norm, lang)
        ax.set_title(name, fontsize=TITLE)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(labels["y"], fontsize=FONT)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=axes, fraction=0.03,
                       pad=0.01)
    bar.set_label(labels["colour"], fontsize=TITLE)
    bar.ax.tick_params(labelsize=FONT)
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig
