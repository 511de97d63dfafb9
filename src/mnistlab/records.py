"""What a run leaves behind, as typed records: an `EpochRecord` per epoch, the doctor's
`Finding`s, the `RunSummary` at the end, and the `RunResult` handed back to the caller.

One name per quantity in code: `train_accuracy_eval` is the train accuracy measured like
validation (eval mode, dropout off), `train_accuracy_running` the average over the epoch while
training; `val_accuracy` is validation accuracy everywhere. The files keep the keys they have
always had (`to_row`/`from_row` for metrics.csv, `to_dict`/`from_dict` for summary.json), so
run folders written by earlier versions read back unchanged.
"""

from __future__ import annotations

import functools
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import TrainConfig
from .messages import catalogue, class_name, placeholders, t

if TYPE_CHECKING:
    from torch import nn

SEVERITIES = ("problem", "warning", "info")


# --- the code that trained a run -----------------------------------------------------------------
@functools.cache
def code_version() -> str:
    """Package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def versions_text(versions: list[str]) -> str:
    """A summary's `code_version`: the code that started the run, and each other that resumed
    it ("0.1.0+ab12cd, resumed by 0.1.0+ef34ab"): a run stopped and resumed after an update
    recorded only the update's."""
    return ", resumed by ".join(versions)


# --- epochs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpochRecord:
    """One epoch of one run: the history is a list of these."""

    epoch: int
    train_loss: float  # mean over the epoch's steps, training mode
    train_accuracy_running: float  # the same way: dropout and augmentation on, weights moving
    train_metric_running: float  # what the configured metric reports (binary-accuracy aid)
    train_loss_eval: float  # eval mode, on a fixed sample of training images
    train_accuracy_eval: float
    val_loss: float
    val_accuracy: float
    val_metric: float
    lr: float  # the learning rate at the epoch's start
    seconds: float

    def replace(self, **changes: Any) -> EpochRecord:
        return replace(self, **changes)

    def to_row(self) -> dict[str, float]:
        """The metrics.csv row (its column names, see ROW_NAMES)."""
        return {ROW_NAMES.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EpochRecord:
        """From a metrics.csv row or a stored history entry; a column never measured is NaN."""
        values = {}
        for f in fields(cls):
            value = row.get(ROW_NAMES.get(f.name, f.name), math.nan)
            values[f.name] = int(value) if f.name == "epoch" else float(value)
        return cls(**values)


# metrics.csv column names that differ from the field names (kept for the files' readers)
ROW_NAMES = {"train_accuracy_running": "train_acc_running",
             "train_accuracy_eval": "train_acc_eval", "val_accuracy": "val_acc"}
HISTORY_FIELDS = tuple(ROW_NAMES.get(f.name, f.name) for f in fields(EpochRecord))


# --- the doctor's findings -----------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """A named failure signature (`code`), how bad it is, and the numbers that showed it. Its
    words (title, evidence, explanation, fix) come from the message catalogue."""

    code: str
    severity: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en") -> dict[str, str]:
        # a finding told in more than one way (see messages): each part of its known cause
        # (e.g. labels shuffled on purpose) or of its kind where the catalogue has one, else
        # the plain part
        told = [v for v in (self.values.get("cause"), self.values.get("kind")) if v]
        keys = {}
        for part in ("title", "evidence", "explanation", "fix"):
            key = f"finding.{self.code}.{part}"
            keys[part] = next((f"{key}.{v}" for v in told if f"{key}.{v}" in catalogue()), key)
        # a figure a stored finding lacks (an older version's, or null in JSON) shows as a dash
        values = {**self.values}
        if isinstance(values.get("cls"), str):  # a class as the language's figures name it
            values["cls"] = class_name(values["cls"], lang, str(values.get("cls_of") or ""))
        return {part: t(lang, key, **{**dict.fromkeys(placeholders(catalogue()[key][lang])),
                                      **values})
                for part, key in keys.items()}

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, **self.text(lang),
                "values": self.values}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(data["code"], data["severity"], dict(data.get("values") or {}))


# --- the end of a run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """What the doctor reads of a run besides its epochs: during training (after an epoch) or
    at its end (`RunSummary.observation()`)."""

    status: str
    class_names: list[str]
    loss_trace: list[list[float]]  # [step, loss] samples
    val_label_counts: list[int]
    val_pred_counts: list[int] | None
    val_accuracy: float | None
    val_loss: float | None
    val_metric: float | None
    train_size: int
    # an ensemble's members, each scored alone on validation (None: not measured)
    member_val_accuracies: list[float | None] = field(default_factory=list)


# summary.json keys that differ from the field names
SUMMARY_KEYS = {"train_accuracy_eval": "train_accuracy"}


@dataclass(frozen=True)
class RunSummary:
    """summary.json: what a run was and what it reached. `None`: not measured (no test set
    scored, a diverged run not evaluated)."""

    status: str  # completed | early-stopped | diverged | interrupted
    dataset: str = ""
    model: str = ""
    variant: str | None = None
    parameters: int = 0
    epochs: int = 0  # whole epochs trained
    epochs_planned: int = 0
    seconds: float = 0.0  # training time (a cohort member: its share of the cohort's)
    metric: str = "accuracy"
    train_accuracy_eval: float | None = None
    train_accuracy_running: float | None = None
    train_loss: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    val_source: str = "train"
    test_accuracy: float | None = None
    test_loss: float | None = None
    per_class_test_accuracy: dict[str, float | None] | None = None
    class_names: list[str] = field(default_factory=list)
    train_size: int = 0
    val_size: int = 0
    device: str = ""
    torch: str = ""
    code_version: str = ""
    val_label_counts: list[int] = field(default_factory=list)
    val_pred_counts: list[int] | None = None
    val_mean_max_prob: float | None = None
    loss_trace: list[list[float]] = field(default_factory=list)
    test_confusion: list[list[int]] | None = None
    diagnoses: tuple[Finding, ...] = ()
    cohort_size: int | None = None  # trained in a cohort of this many members
    partial_epoch: dict[str, float] | None = None  # the epoch an interruption cut short
    tta_views: int | None = None  # final val/test scores averaged over this many views (--tta)
    precision: str | None = None  # the training step's, where --precision was not fp32
    # the training step replayed from CUDA graphs (True), or eagerly after a failed recording
    # (False); None where graphs do not apply (off CUDA, or turned off)
    cuda_graphs: bool | None = None
    # an ensemble's members, each scored alone: seed, val_accuracy, test_accuracy (--ensemble)
    members: list[dict[str, Any]] | None = None
    # early-stopped: the epoch whose weights model.pt holds, which every figure here is of
    best_epoch: int | None = None
    # a study's final run whose settings a variant's run had trained: that run's key (this is
    # it, scored on the test set once chosen, not trained a second time)
    scored_from: str | None = None

    def replace(self, **changes: Any) -> RunSummary:
        return replace(self, **changes)

    def __repr__(self) -> str:  # a notebook cell ending in one printed 20,000 characters:
        # the loss trace, the confusion matrix, every finding (hunt)
        figures = "".join(f", {name}={value:.4f}" for name in ("val_accuracy", "test_accuracy")
                          if (value := getattr(self, name)) is not None)
        return (f"RunSummary(status={self.status!r}, model={self.model!r}, "
                f"epochs={self.epochs}/{self.epochs_planned}{figures})")

    def member_figures(self) -> dict[str, float | None]:
        """An ensemble's members' own accuracies, as trackers name them
        ("member/3/val_accuracy"); {} for a single model."""
        return {f"member/{m['seed']}/{key}": m.get(key) for m in self.members or ()
                for key in ("val_accuracy", "test_accuracy")}

    def observation(self) -> Observation:
        return Observation(self.status, self.class_names, self.loss_trace,
                           self.val_label_counts, self.val_pred_counts, self.val_accuracy,
                           self.val_loss, self.val_metric, self.train_size,
                           [m.get("val_accuracy") for m in self.members or ()])

    def to_dict(self) -> dict[str, Any]:
        """summary.json's content (optional keys only when they hold something)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _OPTIONAL and value is None:
                continue
            if f.name == "diagnoses":
                value = [finding.to_dict() for finding in value]
            elif f.name == "loss_trace":  # JSON has no NaN or infinity: "nan", "inf" as text
                value = [[step, loss if math.isfinite(loss) else str(loss)]
                         for step, loss in value]
            out[SUMMARY_KEYS.get(f.name, f.name)] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """From summary.json (checked for shape by runs.load_summary) or the study store; keys
        an older version did not write take their defaults, unknown keys are ignored."""
        values = {}
        for f in fields(cls):
            key = SUMMARY_KEYS.get(f.name, f.name)
            if key in data:
                values[f.name] = data[key]
        values["diagnoses"] = tuple(Finding.from_dict(d) for d in values.get("diagnoses") or ()
                                    if _known_finding(d))
        if "loss_trace" in values:  # a loss that was not finite: "inf" as text (null before)
            values["loss_trace"] = [[step, math.nan if loss is None else float(loss)]
                                    for step, loss in values["loss_trace"]]
        return cls(**values)


_OPTIONAL = ("test_confusion", "cohort_size", "partial_epoch", "tta_views", "members",
             "precision", "cuda_graphs", "best_epoch", "scored_from")


def _known_finding(data: Any) -> bool:
    """A stored finding this version can say (an unknown code is left to a fresh diagnosis)."""
    return (isinstance(data, Mapping) and isinstance(data.get("code"), str)
            and f"finding.{data['code']}.title" in catalogue()
            and data.get("severity") in SEVERITIES
            and isinstance(data.get("values") or {}, Mapping))


@dataclass
class RunResult:
    """What training returns: the settings, the summary, the history, and the live model."""

    config: TrainConfig
    summary: RunSummary
    history: list[EpochRecord]
    out: Path | None = None
    model: nn.Module | None = field(default=None, repr=False)
    reused: bool = False  # read back from a finished run folder, not trained now

    def __repr__(self) -> str:  # the summary's, and the folder: the history, the config
        # and the summary in full ran to 24,000 characters in a notebook (hunt)
        out = f"out={str(self.out)!r}, " if self.out is not None else ""
        return f"RunResult({out}summary={self.summary!r})"

    def __post_init__(self) -> None:
        # absolute: kept relative, predict(result, ...) after a notebook's os.chdir looked for
        # the run in the new working folder (hunt)
        if self.out is not None:
            self.out = Path(self.out).absolute()
