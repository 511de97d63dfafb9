"""The search as it happens: one table row per finished trial (pruned ones marked), and a
status line for the trial in progress. Only the CLI uses it; the search itself never prints.
"""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..columns import across_widths, one_row_each
from ..messages import number, t
from ..progress import Reporter
from .search import diverged
from .space import TuneSpec, encode_choice

# each column's heading (the catalogue's live.col.NAME), the widest figure it is sized for and
# its side; a column is as wide as its heading where that is wider, in every row alike (each
# row is a table of its own). A row whose figure is wider after all is shown a figure a row.
COLUMNS = (("trial", "9999", "right"), ("state", None, "left"), ("val", "0.9999", "right"),
           ("epochs", "999", "right"), ("seconds", "99999.9", "right"),
           ("best", "0.9999", "right"))
WIDE = 120  # narrower consoles show each trial's settings on a line of their own


class _EpochStatus(Reporter):
    def __init__(self, status: Any, number: int, epochs: int, lang: str) -> None:
        self.status, self.number, self.epochs, self.lang = status, number, epochs, lang

    def epoch_ended(self, record: Any) -> None:
        self.status.update(t(self.lang, "live.trial_epoch", number=self.number,
                             epoch=record.epoch, epochs=self.epochs, acc=record.val_accuracy))


class TrialTable:
    """Rows with fixed column widths, printed one at a time so that each appears as soon as
    its trial ends, in a terminal and in a log file alike."""

    def __init__(self, spec: TuneSpec, console: Console, lang: str = "en") -> None:
        self.spec = spec
        self.console = console
        self.lang = lang
        self.best = -math.inf
        self.status: Any = None
        self._names = {p.name: p for p in spec.params}
        self._widths = self._across()

    def _across(self) -> list[int]:
        """The columns' widths, the figures side by side; [] where the console is too narrow
        for that (below about 52 columns): then a trial's figures go one per row. Fixed widths
        cut "0.9538" to "0.…" below 57 columns."""
        states = [t(self.lang, "live.state.complete") + " ★", t(self.lang, "live.state.fail"),
                  t(self.lang, "live.state.diverged"),
                  t(self.lang, "live.state.pruned", epoch=999)]
        samples = {t(self.lang, f"live.col.{name}"): states if widest is None else widest
                   for name, widest, _ in COLUMNS}  # "0,9999" is as wide as "0.9999"
        # between two columns, a space of padding and one of rule; none outside
        return across_widths(samples, self.console.width, border=2 * len(COLUMNS) - 2)

    def _table(self, header: bool, columns: bool = True) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_header=header,  # one box: columns line up
                      show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True)
        if not (self._widths and columns):
            return table
        for (name, _, justify), width in zip(COLUMNS, self._widths):
            # a heading wraps at its spaces ("val" over "acc"; no_wrap cut it to "val a…",
            # review); a figure fits its column whole, or its row is one figure a row (_row)
            table.add_column(t(self.lang, f"live.col.{name}"), width=width, justify=justify)
        if self.console.width >= WIDE:
            table.add_column(t(self.lang, "col.params"), overflow="fold")
        return table

    def start(self, target: int, done: int, best: float | None, storage: str) -> None:
        self.best = -math.inf if best is None else best
        self.console.print(t(self.lang, "live.tune_start", name=f"[bold]{self.spec.name}[/]",
                             target=target, done=done, storage=storage))
        if self._widths:  # one row per figure says each figure's name beside it
            self.console.print(self._table(header=True))
        if self.console.is_terminal:
            self.status = self.console.status(t(self.lang, "live.waiting_first"))
            self.status.start()

    def reporter_for(self, trial: Any, config: Any) -> Reporter:
        if self.status is None:
            return Reporter()
        self.status.update(t(self.lang, "live.trial_starting", number=trial.number,
                             epochs=config.epochs))
        return _EpochStatus(self.status, trial.number, config.epochs, self.lang)

    def retrain_reporter(self, label: str, config: Any) -> Reporter:
        self.stop()
        key = "live.retrain_best" if label == "best" else "live.retrain_compare"
        return _SaidAtStart(self.console, t(self.lang, key, seed=config.seed,
                                            epochs=config.epochs))

    def on_trial(self, trial: Any, done: int, best: Any = None) -> None:
        """A trial's row; ★ where it is the study's best trial so far (`best`, every
        worker's counted; without it, the best this table has shown)."""
        steps = trial.intermediate_values
        last_epoch = max(steps) if steps else 0
        value = trial.value if trial.value is not None else (steps[last_epoch] if steps
                                                             else math.nan)
        state = trial.state.name.lower()
        if diverged(trial):  # scored 0: a complete trial, but nothing learned
            marked = f"[red]{t(self.lang, 'live.state.diverged')}[/]"
        elif state == "complete":
            starred = best.number == trial.number if best is not None else value > self.best
            done_text = t(self.lang, "live.state.complete")
            marked = f"[bold green]{done_text} ★[/]" if starred else f"[green]{done_text}[/]"
        elif state == "pruned":
            marked = f"[yellow]{t(self.lang, 'live.state.pruned', epoch=last_epoch)}[/]"
        else:
            marked = f"[red]{t(self.lang, 'live.state.fail') if state == 'fail' else state}[/]"
        if best is not None:
            self.best = best.value
        elif state == "complete" and value > self.best:
            self.best = value
        params = " ".join(
            f"{k}={_short(encode_choice(self._names[k].decode(v)) if k in self._names else v)}"
            for k, v in trial.params.items())
        seconds = trial.user_attrs.get("seconds")
        cells = [str(trial.number), marked, self._figure(value, ".4f"),
                 str(trial.user_attrs.get("epochs", last_epoch)),
                 self._figure(math.nan if seconds is None else seconds, ".1f"),
                 self._figure(self.best, ".4f")]
        indent = self._row(cells, params)
        if state == "fail" and trial.user_attrs.get("error"):  # settings that cannot go together
            self.console.print(f"[red]{indent}{escape(trial.user_attrs['error'])}[/]",
                               soft_wrap=True)

    def _row(self, cells: list[str], params: str) -> str:
        """Prints a trial's figures, and its settings beside them or on a line below; returns
        the indent of that line (under the state column, side by side)."""
        wide = bool(self._widths) and self.console.width >= WIDE
        if self._widths and all(Text.from_markup(cell).cell_len <= width
                                for cell, width in zip(cells, self._widths)):
            table = self._table(header=False)
            table.add_row(*cells, *([params] if wide else []))
            indent = " " * (self._widths[0] + 2)
        else:  # too narrow, or a figure wider than its column: each on a row of its own
            heading = f"{t(self.lang, 'live.col.trial')} {cells[0]}"
            table = one_row_each(self._table(header=False, columns=False), [(heading, ""), *(
                (t(self.lang, f"live.col.{name}"), cell)
                for (name, _, _), cell in zip(COLUMNS[1:], cells[1:]))])
            wide, indent = False, "  "
        self.console.print(table)
        if not wide:
            self.console.print(f"[dim]{indent}{params}[/]", soft_wrap=True)
        return indent

    def _figure(self, value: float, spec: str) -> str:
        return number(value, spec, self.lang) if math.isfinite(value) else "—"

    def waiting(self, line: str) -> None:
        """Says why the search waits for another worker (it may be minutes)."""
        self.stop()
        self.console.print(escape(line))

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class _SaidAtStart(Reporter):
    """Says `line` when training starts: a retrain folder that already holds the finished run
    is read back without a word (it said "retraining" and then took no time)."""

    def __init__(self, console: Any, line: str) -> None:
        self.console, self.line = console, line

    def run_started(self, config: Any, epochs: int, steps_per_epoch: int, *,
                    done_epochs: int = 0) -> None:
        self.console.print(self.line)

