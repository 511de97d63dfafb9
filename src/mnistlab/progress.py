"""Progress reporting: a rich bar with live loss/accuracy, or silence for scripts and tests.

Training code talks to a `Reporter`; it never prints. A study wraps a reporter with its own
bar (runs done / total, ETA) above the bar of the run in progress.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from .files import StderrConsole
from .messages import after_colon, catalogue, t

if TYPE_CHECKING:
    from .records import EpochRecord, RunSummary


class Reporter:
    """No-op base: override what you need. `lang`: the language of the doctor's findings it
    is handed (the live line; `train --lang`)."""

    lang = "en"

    def run_started(self, config: Any, epochs: int, steps_per_epoch: int, *,
                    done_epochs: int = 0) -> None:
        pass

    def step_progress(self, steps: int, loss: float, accuracy: float) -> None:
        pass

    def epoch_ended(self, record: EpochRecord) -> None:
        pass

    def finding(self, finding: dict[str, Any]) -> None:
        """The doctor saw a problem during training (shown at once; the panel comes at the end)."""

    def run_ended(self, status: str) -> None:
        pass

    def final_scoring(self, views: int, members: int) -> None:
        """After run_ended: the trained model is being scored on validation and test with
        `views` test-time views per image and `members` networks (can take a minute)."""


def passes(views: int, members: int, lang: str = "en") -> str:
    """'9 test-time views and 5 members': what multiplies a scoring pass (each > 1 named)."""
    return f" {t(lang, 'and')} ".join(t(lang, f"live.{word}", n=n) for n, word in
                                      ((views, "views"), (members, "members")) if n > 1)


def status_text(status: str, lang: str) -> str:
    """A run's status (completed, early-stopped, diverged, interrupted) in `lang`; one this
    version does not know, as stored."""
    return t(lang, f"live.status.{status}") if f"live.status.{status}" in catalogue() else status


@contextlib.contextmanager
def counted(label: str, console: Console | None = None) -> Iterator[Callable[[int, int], None]]:
    """A bar for work counted in items (`predict`'s images), as `update(done, total)`: drawn
    on a terminal while the work lasts and cleared when it ends, so that the results printed
    after it stand alone; nothing at all off a terminal (a pipe, a file)."""
    console = console or StderrConsole()
    if not console.is_terminal or console.is_dumb_terminal:  # rich would still end its live
        # display with a blank line (a dumb terminal, TERM=dumb, is drawn no bar: hunt)
        yield lambda done, total: None
        return
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), _Eta(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


class _Eta(TimeRemainingColumn):
    """'eta 0:01:23' while work is left; nothing once it is done (a resumed study whose runs
    were all finished read 'eta -:--:--' under a full bar)."""

    def __init__(self, lang: str = "en"):
        super().__init__()
        self.word = t(lang, "live.eta")

    def render(self, task: Any) -> Text:
        done = task.total is not None and task.completed >= task.total  # task.finished is
        # set by update() only: a task made complete (a resumed study) never is
        return Text("") if done else Text.assemble(self.word, super().render(task))


class SilentReporter(Reporter):
    pass


def _bar(console: Console, lang: str = "en") -> Progress:
    return _Fitted(
        _Label(), BarColumn(bar_width=None, table_column=Column(ratio=1)), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), _Eta(lang), console=console,
        transient=False, expand=True, disable=not live_drawn(console),
    )


def live_drawn(console: Any) -> bool:
    """Whether rich can draw a live bar on `console`: anywhere but a notebook without
    ipywidgets, where it warns "install ipywidgets" and draws nothing at all (hunt). There the
    bars are off and their lines printed: each epoch's, each finished run's."""
    if not console.is_jupyter:
        return True
    try:
        import ipywidgets  # noqa: F401  (what rich draws a live display with in a notebook)
    except ImportError:
        return False
    return True


def _stop(progress: Progress) -> None:
    """The bar's last frame drawn, then the bar stopped: in a notebook rich skips the last
    refresh, and a finished study read 0/2 (hunt)."""
    if not progress.disable:
        progress.refresh()
    progress.stop()


BAR_LEAST = 10  # a bar narrower than this says little: the line drops it first
LABEL_LEAST = 8  # a label cut shorter says nothing: the running figures go before it


class _Label(TextColumn):
    """The bar's label, cut with … where the line has no room for all of it."""

    def __init__(self) -> None:
        super().__init__("[bold]{task.description}")
        self.limit: int | None = None

    def render(self, task: Any) -> Text:
        text = super().render(task)
        if self.limit is not None:
            text.truncate(max(1, self.limit), overflow="ellipsis")
        return text


class _Fitted(Progress):
    """Bars that fit their terminal, on one line each: where the line is too wide, the elapsed
    clock goes first, then the bar, then the label is cut, and where even a cut label leaves no
    room the running figures go too; the count and the time left always stay (at 80 columns a
    Spanish run's "quedan 0:00:29" broke onto a second line; at 60 an English one cut its
    count and clock)."""

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        self._every = columns  # before Progress draws its first (empty) table
        super().__init__(*columns, **kwargs)

    def make_tasks_table(self, tasks: Any) -> Any:
        if not any(task.visible for task in tasks):  # none yet (Progress draws one at start)
            return super().make_tasks_table(tasks)
        label = next(c for c in self._every if isinstance(c, _Label))
        label.limit = None
        width = {id(c): self._width(c, tasks) for c in self._every}  # each drawn once: a
        kept = list(self._every)  # refresh comes ten times a second

        def wanted(columns: list[Any]) -> int:  # one space between columns
            return sum(width[id(c)] for c in columns) + len(columns) - 1

        for dropped in (TimeElapsedColumn, BarColumn):
            if wanted(kept) <= self.console.width:
                break
            kept = [c for c in kept if not isinstance(c, dropped)]
        if wanted(kept) - self.console.width > width[id(label)] - LABEL_LEAST:
            # no room even for a cut label: the running figures go too, the count and the
            # time left stay (at 40 columns both were cut and the clock wrapped: hunt)
            kept = [c for c in kept if not (type(c) is TextColumn and "info" in c.text_format)]
        over = wanted(kept) - self.console.width
        if over > 0:
            label.limit = width[id(label)] - over
        self.columns = tuple(kept)
        self.expand = any(isinstance(c, BarColumn) for c in kept)  # the bar takes the room
        return super().make_tasks_table(tasks)

    @staticmethod
    def _width(column: Any, tasks: Any) -> int:
        """A column's width on the line, the bar at its least; whole, not as measured: a
        measure stops at the console's width (review)."""
        if isinstance(column, BarColumn):
            return BAR_LEAST
        return max((column.render(task).cell_len for task in tasks if task.visible), default=0)


class RichReporter(Reporter):
    """One bar per run (steps), a line per finished epoch."""

    def __init__(self, console: Console | None = None, *, progress: Progress | None = None,
                 label: str | None = None, epoch_lines: bool = True, lang: str = "en"):
        self.console = console or StderrConsole()
        self.lang = lang  # of every line it prints, and of the doctor's findings it is handed
        self._own = progress is None
        self.progress = progress or _bar(self.console, lang)
        self.label = t(lang, "live.train") if label is None else label
        self.epoch_lines = epoch_lines
        self.task: Any = None
        self.epochs = self.steps_per_epoch = 0

    def run_started(self, config: Any, epochs: int, steps_per_epoch: int, *,
                    done_epochs: int = 0) -> None:
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        if self._own:
            self.progress.start()
        if done_epochs and self.epoch_lines:
            self.progress.console.print(t(self.lang, "live.resuming", done=done_epochs,
                                          epochs=epochs))
        self.task = self.progress.add_task(
            self.label, total=epochs * steps_per_epoch, completed=done_epochs * steps_per_epoch,
            info="")

    def step_progress(self, steps: int, loss: float, accuracy: float) -> None:
        self.progress.update(self.task, advance=steps,
                             info=t(self.lang, "live.running", loss=loss, acc=accuracy))

    def epoch_ended(self, record: EpochRecord) -> None:
        # the steps after the epoch's last sample were never reported: the bar ends it whole
        self.progress.update(self.task, completed=record.epoch * self.steps_per_epoch)
        if self.epoch_lines:
            val = (t(self.lang, "live.epoch_val", loss=record.val_loss,
                     acc=record.val_accuracy)
                   if not math.isnan(record.val_accuracy) else "")  # no val set: not measured
            self.progress.console.print(t(
                self.lang, "live.epoch", epoch=record.epoch, epochs=self.epochs,
                loss=record.train_loss, running=record.train_accuracy_running,
                eval=record.train_accuracy_eval, val=val, seconds=record.seconds),
                highlight=False)

    def finding(self, finding: dict[str, Any]) -> None:
        self.progress.console.print(
            f"[bold red]{t(self.lang, 'cli.doctor')}:[/] "
            f"{escape(after_colon(finding['title'], self.lang))} — "
            f"{escape(finding['evidence'])}",
            highlight=False)

    def run_ended(self, status: str) -> None:
        if self.task is not None:
            if self._own:
                _stop(self.progress)
            else:
                self.progress.remove_task(self.task)
            self.task = None

    def final_scoring(self, views: int, members: int) -> None:
        # one plain pass takes a second; views and members multiply it: say why it is quiet
        if self.epoch_lines and (views > 1 or members > 1):
            # the ensemble's epochs named once (hunt)
            why = t(self.lang, "live.scoring." + ("views_members" if views > 1 and members > 1
                                                  else "views" if views > 1 else "members"))
            self.console.print(t(self.lang, "live.scoring", passes=passes(views, members,
                                                                          self.lang), why=why),
                               highlight=False)


class StudyProgress:
    """A bar for the study (runs done / total, ETA) above the bar of the run in progress.
    `done` and `total` hold its counts, drawn or not."""

    def __init__(self, console: Console | None = None, *, silent: bool = False,
                 lang: str = "en"):
        self.silent, self.lang = silent, lang
        self.console = console or StderrConsole()
        self.progress = None if silent else _bar(self.console, lang)
        self.task: Any = None
        self.done = self.total = 0

    def start(self, total: int, done: int = 0) -> None:
        self.done, self.total = done, total
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task(t(self.lang, "live.study"), total=total,
                                               completed=done, info="")

    def recount(self, total: int, done: int) -> None:
        """The runs are known better now (the final model's, once it is chosen)."""
        self.done, self.total = done, total
        if self.progress is not None:
            self.progress.update(self.task, total=total, completed=done)

    def reporter_for(self, run: Any, members: int = 1) -> Reporter:
        """The bar of one run, or of a cohort of `members` runs trained in lockstep."""
        if self.progress is None:
            return SilentReporter()
        config = run.config
        label = (t(self.lang, "live.cohort", n=members, model=config.model) if members > 1
                 else t(self.lang, "live.seed", model=config.model, seed=config.seed))
        label += t(self.lang, "live.final") if run.test else ""
        return RichReporter(self.console, progress=self.progress, label=label, epoch_lines=False,
                            lang=self.lang)

    def run_finished(self, run: Any, summary: RunSummary) -> None:
        self.done += 1
        if self.progress is not None:
            val = summary.val_accuracy
            info = (t(self.lang, "live.last_val", val=val) if isinstance(val, float)
                    else t(self.lang, "live.last_status", status=status_text(summary.status,
                                                                            self.lang)))
            self.progress.update(self.task, advance=1, info=info)
            if self.progress.disable:  # no bar to draw it on (a notebook without widgets)
                self.console.print(f"{t(self.lang, 'live.study')} {self.done}/{self.total} "
                                   f"{info}", highlight=False)

    def stop(self) -> None:
        if self.progress is not None:
            _stop(self.progress)
