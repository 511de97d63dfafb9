"""TensorBoard: a run's event files, written with torch's `SummaryWriter` (the `tensorboard`
package of the tracking extra reads and writes them).

What a run's log holds, with step = epoch:

    loss/train, loss/train_eval, loss/val          running, eval-mode and validation loss
    accuracy/train_running, accuracy/train_eval, accuracy/val
    lr                                             the learning rate at the epoch's start
    images curves, confusion                       the run folder's PNGs, at the last epoch
    HParams: every setting, and the final numbers  so runs of a study compare in one table

A study's or a search's runs each get a folder under one root (`STUDY/tensorboard/<run>`), so
`tensorboard --logdir STUDY` overlays them all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .. import runs
from ..config import TENSORBOARD_FOLDER, TrainConfig, load_config
from ..errors import MnistlabError
from ..records import EpochRecord, RunSummary
from ..training import Hook, Run

INSTALL_HINT = 'pip install "mnistlab[tracking]"'
SUBFOLDER = TENSORBOARD_FOLDER  # a run's, a study's or a search's event files live here
# (metrics.csv field, TensorBoard tag): train and validation share a chart per quantity
SCALARS = (("train_loss", "loss/train"), ("train_loss_eval", "loss/train_eval"),
           ("val_loss", "loss/val"), ("train_accuracy_running", "accuracy/train_running"),
           ("train_accuracy_eval", "accuracy/train_eval"), ("val_accuracy", "accuracy/val"),
           ("lr", "lr"))
# the HParams table's metric columns, read from these scalars at the run's last epoch
FINAL = (("val_accuracy", "hparams/val_accuracy"), ("val_loss", "hparams/val_loss"),
         ("train_accuracy_eval", "hparams/train_accuracy_eval"),
         ("test_accuracy", "hparams/test_accuracy"), ("epochs", "hparams/epochs"),
         ("seconds", "hparams/seconds"))
IMAGES = ("curves.png", "confusion.png")


def require_tensorboard() -> type:
    """torch's SummaryWriter, or one line saying which extra installs what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MnistlabError(f"--log tensorboard: the tensorboard package is not installed; "
                            f"{INSTALL_HINT}") from None
    return SummaryWriter


def hparam_value(value: Any) -> int | float | str:
    """A setting as the HParams plugin takes it: lists become '128,64', nothing becomes '',
    true and false are words (torch's hparams() tests for a number before a bool, so they
    were a 0-1 range of FLOAT64 in the table and its filters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "" if value is None else value


class EventLog:
    """One run's event files in `logdir`. `done_epochs`: epochs an earlier process already
    logged (a resumed run): events from later epochs of that process are purged, so a cut
    epoch is not drawn twice."""

    def __init__(self, logdir: Path, done_epochs: int = 0) -> None:
        writer = require_tensorboard()
        self.writer = writer(str(logdir), purge_step=done_epochs + 1)
        self.last_epoch = done_epochs

    def epoch(self, record: EpochRecord) -> None:
        for name, tag in SCALARS:
            value = getattr(record, name)
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, record.epoch)
        self.last_epoch = record.epoch

    def scalar(self, tag: str, value: float, epoch: int) -> None:
        self.writer.add_scalar(tag, value, epoch)
        self.last_epoch = max(self.last_epoch, epoch)

    def hparams(self, settings: dict[str, Any], final: dict[str, float | None]) -> None:
        """The run's row in the HParams table: its settings and its final numbers."""
        from torch.utils.tensorboard.summary import hparams

        numbers = {tag: value for tag, value in final.items()
                   if value is not None and math.isfinite(value)}
        switches = {k: ["false", "true"] for k, v in settings.items() if isinstance(v, bool)}
        experiment, start, end = hparams({k: hparam_value(v) for k, v in settings.items()},
                                         numbers, hparam_domain_discrete=switches)
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)
        for tag, value in numbers.items():
            self.writer.add_scalar(tag, value, self.last_epoch)

    def images(self, folder: Path) -> None:
        import numpy as np
        from PIL import Image

        for name in IMAGES:
            if (folder / name).is_file():
                with Image.open(folder / name) as image:
                    pixels = np.asarray(image.convert("RGB"))
                self.writer.add_image(name.removesuffix(".png"), pixels, self.last_epoch,
                                      dataformats="HWC")

    def finish(self, config: TrainConfig, summary: RunSummary, folder: Path | None) -> None:
        """The run's settings and final numbers in HParams, its PNGs as images; closed. An
        interrupted run's are left for its end, as in MLflow: written at the epoch it stopped
        at, its resumed end (a later epoch) did not replace them, and the Scalars and Images
        showed two "final" figures of one run."""
        if summary.status != "interrupted":
            self.hparams(config.to_dict(), final_numbers(summary))
            if folder is not None:
                self.images(folder)
        self.close()

    def close(self) -> None:
        self.writer.close()


def final_numbers(summary: RunSummary) -> dict[str, float | None]:
    values = {"val_accuracy": summary.val_accuracy, "val_loss": summary.val_loss,
              "train_accuracy_eval": summary.train_accuracy_eval,
              "test_accuracy": summary.test_accuracy, "epochs": float(summary.epochs),
              "seconds": summary.seconds}
    members = {f"hparams/{name}": v for name, v in summary.member_figures().items()}
    return {**{tag: values[name] for name, tag in FINAL}, **members}


def log_folder(folder: Path, logdir: Path, done_epochs: int = 0) -> None:
    """A finished run folder (metrics.csv, summary.json, config.toml, PNGs) as event files in
    `logdir`: what a study's or a search's driver writes for each run its workers trained.
    `done_epochs`: epochs the event files hold already (the rest and the end are written)."""
    log = EventLog(logdir, done_epochs)
    for record in runs.load_history(folder):
        if record.epoch > done_epochs:
            log.epoch(record)
    log.finish(load_config(folder / "config.toml"), runs.load_summary(folder), folder)


def logged(logdir: Path) -> tuple[int, bool]:
    """What a run's event files hold: the last epoch logged, and whether its end (the final
    numbers) is there. An interrupted run's end is not written (EventLog.finish)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seen = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    seen.Reload()
    tags = seen.Tags().get("scalars", [])
    epochs = max((event.step for event in seen.Scalars("accuracy/val")), default=0) \
        if "accuracy/val" in tags else 0
    return epochs, "hparams/epochs" in tags  # always finite, so always written at the end


def complete_folder(folder: Path, logdir: Path) -> None:
    """A finished run folder's event files made whole: all of it where there are none; where
    an interrupted attempt logged its first epochs (and the run was resumed without
    --log tensorboard), the epochs after those and its end."""
    if not logdir.exists():
        log_folder(folder, logdir)
        return
    epochs, ended = logged(logdir)
    if not ended:
        log_folder(folder, logdir, done_epochs=epochs)


def log_trial(logdir: Path, settings: dict[str, Any], values: dict[int, float],
              state: str, value: float | None) -> None:
    """A search's trial: its validation accuracy per epoch (what it reported to Optuna), and
    its settings, state (complete, pruned, or diverged: complete, scored 0) and value in
    HParams."""
    log = EventLog(logdir)
    for epoch, accuracy in sorted(values.items()):
        log.scalar("accuracy/val", accuracy, epoch)
    log.hparams({**settings, "state": state.lower()},
                {"hparams/val_accuracy": value, "hparams/epochs": float(len(values))})
    log.close()


class TensorBoardLogger(Hook):
    """Live event files for a run of one model: each epoch as it ends, then the settings,
    final numbers and PNGs once the run folder is written.

        train(config, out="runs/a", hooks=[TensorBoardLogger("runs/a/tensorboard")])
    """

    def __init__(self, logdir: str | Path) -> None:
        require_tensorboard()  # before training, not at its end
        self.logdir = Path(logdir)
        self.log: EventLog | None = None

    def on_run_start(self, run: Run) -> None:
        done = run.histories[0]
        fresh = not any(self.logdir.glob("events.out.tfevents.*"))
        self.log = EventLog(self.logdir, done_epochs=0 if fresh else len(done))
        if fresh:  # resumed with --log tensorboard added: the epochs trained before it too
            for record in done:
                self.log.epoch(record)

    def on_epoch_end(self, run: Run) -> None:
        if self.log is not None and run.histories[0]:
            self.log.epoch(run.histories[0][-1])

    def on_member_finished(self, run: Run, member: int, result: Any) -> None:
        if self.log is not None and member == 0:
            self.log.finish(result.config, result.summary, result.out)
            self.log = None
