"""Figures of a search, from plain numbers (trial values, parameters, importances).

Drawn here rather than with optuna.visualization so every label can be given in the report's
language; nothing is saved here (callers use `files.save_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def history(numbers: Sequence[int], values: Sequence[float], pruned: Sequence[bool],
            labels: dict[str, str]) -> Any:
    """Each trial's validation accuracy by trial number (pruned ones at their last reported
    epoch, as crosses) and the best so far among complete trials."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
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
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def importances(names: Sequence[str], means: Sequence[float], sds: Sequence[float],
                xlabel: str) -> Any:
    """Horizontal bars, most important on top, with ±1 sd over the fANOVA repeats."""
    order = np.argsort(means)
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))
    ax.barh(y, np.asarray(means)[order], xerr=np.nan_to_num(np.asarray(sds)[order]),
            color="tab:blue", ecolor="gray", capsize=3)
    ax.set_yticks(y, [names[i] for i in order])
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    plt.close(fig)
    return fig


def _axis_values(values: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    """Numbers stay numbers; anything else becomes positions with tick labels."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None
    labels = sorted({str(v) for v in values})
    return [float(labels.index(str(v))) for v in values], labels


def slices(params: dict[str, list[Any]], values: Sequence[float], log: dict[str, bool],
           ylabel: str) -> Any:
    """One panel per parameter: its value against validation accuracy (complete trials;
    a conditional parameter shows only the trials where it was suggested)."""
    names = list(params)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.7 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        pairs = [(x, v) for x, v in zip(params[name], values) if x is not None]
        if not pairs:
            ax.set_visible(False)
            continue
        xs, ticks = _axis_values([x for x, _ in pairs])
        ax.scatter(xs, [v for _, v in pairs], c=range(len(pairs)), cmap="viridis", s=16)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, fontsize=7)
        elif log.get(name):
            ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def parallel(params: dict[str, list[Any]], values: Sequence[float], log: dict[str, bool],
             objective: str) -> Any:
    """Parallel coordinates: one line per complete trial through every parameter (scaled to
    [0, 1]; log ranges on a log scale) and the objective, coloured by the objective."""
    names = list(params)
    columns = [*names, objective]
    scaled: list[list[float]] = []
    tick_text: list[tuple[str, str]] = []
    for name in names:
        raw = params[name]
        present = [x for x in raw if x is not None]
        xs, ticks = _axis_values(present) if present else ([], None)
        lookup = iter(xs)
        col = [next(lookup) if x is not None else math.nan for x in raw]
        if ticks is None and log.get(name):
            col = [math.log10(x) if x > 0 else math.nan for x in col]
        finite = [c for c in col if math.isfinite(c)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = hi - lo or 1.0
        scaled.append([(c - lo) / span if math.isfinite(c) else math.nan for c in col])
        if ticks is not None:
            tick_text.append((ticks[0], ticks[-1]))
        else:
            unscale = (lambda v: 10 ** v) if log.get(name) else (lambda v: v)
            tick_text.append((f"{unscale(lo):.3g}", f"{unscale(hi):.3g}"))
    lo, hi = min(values), max(values)
    scaled.append([(v - lo) / ((hi - lo) or 1.0) for v in values])
    tick_text.append((f"{lo:.4f}", f"{hi:.4f}"))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(columns)), 4))
    cmap = plt.get_cmap("viridis")
    order = np.argsort(values)  # best trials drawn last, on top
    for i in order:
        ys = [col[i] for col in scaled]
        colour = cmap((values[i] - lo) / ((hi - lo) or 1.0))
        ax.plot(range(len(columns)), ys, color=colour, alpha=0.8, linewidth=1.2)
    ax.set_xticks(range(len(columns)), columns, rotation=30, fontsize=8)
    ax.set_yticks([])
    for x, (low, high) in enumerate(tick_text):
        ax.axvline(x, color="gray", linewidth=0.6)
        ax.text(x, -0.06, low, ha="center", va="top", fontsize=6, color="dimgray")
        ax.text(x, 1.04, high, ha="center", va="bottom", fontsize=6, color="dimgray")
    ax.set_ylim(-0.15, 1.12)
    fig.tight_layout()
    plt.close(fig)
    return fig
