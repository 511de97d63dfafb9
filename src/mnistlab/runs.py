"""The run folder: what reproduces a run and what it found.

    config.toml    every setting; `mnistlab train --config DIR/config.toml` reproduces the run
    metrics.csv    one row per epoch (the history)
    summary.json   dataset, model, parameters, accuracies, per-class test accuracy, diagnoses
    model.pt       weights + config + what inference needs; loaded with weights_only=True
    checkpoint.pt  the last finished epoch, for resuming (removed once the run is complete)
    curves.png     loss and accuracy, train vs validation
    confusion.png  test confusion matrix with class names
    .lock          held while a process trains into the folder

A folder is claimed for a run (`claim_run_folder`) before training starts: config.toml is
written first, so the folder says which configuration it belongs to from the first second on.
The same configuration resumes (or, finished, is simply read back); another configuration, or
a folder that is not a run folder, is refused rather than silently replaced.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import __version__, files
from .config import TrainConfig, read_toml
from .errors import MnistlabError
from .models import build_model, count_parameters

if TYPE_CHECKING:
    from .train import Evaluation, RunResult, Splits

MODEL_FORMAT = "mnistlab-model-1"
RUN_FILES = ("config.toml", "metrics.csv", "summary.json", "model.pt", "checkpoint.pt",
             "curves.png", "confusion.png")
LOCK_FILE = ".lock"
HISTORY_FIELDS = ("epoch", "train_loss", "train_acc_running", "train_metric_running",
                  "train_loss_eval", "train_acc_eval", "val_loss", "val_acc", "val_metric", "lr",
                  "seconds")


def code_version() -> str:
    """Package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, k: int) -> list[list[int]]:
    flat = labels.cpu().long() * k + predictions.cpu().long()
    return torch.bincount(flat, minlength=k * k).reshape(k, k).tolist()


def make_summary(config: TrainConfig, splits: Splits, model: torch.nn.Module,
                 history: list[dict[str, float]], *, status: str, seconds: float,
                 test: Evaluation | None, val: Evaluation | None, trace: list[list[float]],
                 device: torch.device) -> dict[str, Any]:
    last = history[-1] if history else {}
    k = splits.num_classes
    summary: dict[str, Any] = {
        "dataset": splits.dataset_name,
        "model": config.model,
        "variant": config.variant if config.model == "lenet5" else None,
        "parameters": count_parameters(model),
        "status": status,
        "epochs": len(history),
        "epochs_planned": config.epochs,
        "seconds": round(seconds, 3),
        "metric": config.metric,
        "train_accuracy": last.get("train_acc_eval"),
        "train_accuracy_running": last.get("train_acc_running"),
        "train_loss": last.get("train_loss"),
        "val_accuracy": val.accuracy if val else last.get("val_acc"),
        "val_loss": val.loss if val else last.get("val_loss"),
        "val_metric": val.metric if val else last.get("val_metric"),
        "val_source": splits.val_source,
        "test_accuracy": test.accuracy if test else None,
        "test_loss": test.loss if test else None,
        "per_class_test_accuracy": None,
        "class_names": splits.class_names,
        "train_size": len(splits.train_y),
        "val_size": len(splits.val_y),
        "device": str(device),
        "torch": torch.__version__,
        "code_version": code_version(),
        "val_label_counts": torch.bincount(splits.val_y.cpu(), minlength=k).tolist(),
        "val_pred_counts": (torch.bincount(val.predictions, minlength=k).tolist()
                            if val else None),
        "val_mean_max_prob": val.mean_max_prob if val else None,
        "loss_trace": trace,
    }
    if test is not None:
        matrix = confusion_matrix(splits.test_y, test.predictions, k)
        summary["test_confusion"] = matrix
        summary["per_class_test_accuracy"] = {
            name: (row[i] / sum(row) if sum(row) else None)
            for i, (name, row) in enumerate(zip(splits.class_names, matrix))}
    return summary


def metrics_csv(history: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                         for k, v in record.items()})
    return buffer.getvalue()


def model_payload(result: RunResult, splits: Splits) -> dict[str, Any]:
    assert result.model is not None
    return {
        "format": MODEL_FORMAT,
        "config": result.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "class_names": splits.class_names,
        "image_shape": list(splits.image_shape),
        "mean": splits.mean,
        "std": splits.std,
        "dataset": splits.dataset_name,
    }


def write_run(out: Path, result: RunResult, splits: Splits, test: Evaluation | None, *,
              plots: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(out / "config.toml", result.config.to_toml())
    files.write_text(out / "metrics.csv", metrics_csv(result.history))
    files.torch_save(out / "model.pt", model_payload(result, splits))
    if plots:
        from .report import plots as figures  # matplotlib is imported only to draw

        if result.history:
            files.save_figure(out / "curves.png", figures.learning_curves(result.history))
        if test is not None and "test_confusion" in result.summary:
            files.save_figure(out / "confusion.png", figures.confusion(
                result.summary["test_confusion"], splits.class_names))
    files.write_json(out / "summary.json", result.summary)
    if result.summary["status"] != "interrupted":
        (out / "checkpoint.pt").unlink(missing_ok=True)


# --- claiming a folder -----------------------------------------------------------------------
def check_run_folder(out: Path) -> None:
    """Refuse, before anything is written, a folder that holds files of something else."""
    files.check_owned_folder(out, {*RUN_FILES, LOCK_FILE}, "run")


def _stored_config(out: Path) -> TrainConfig | None:
    """The configuration a run folder belongs to (config.toml, else its checkpoint's)."""
    try:
        if (out / "config.toml").is_file():
            return TrainConfig.from_dict(read_toml(out / "config.toml"))
        return TrainConfig.from_dict(_safe_load(out / "checkpoint.pt")["config"])
    except (MnistlabError, KeyError, TypeError, AttributeError, ValueError):
        return None


def _difference(ours: TrainConfig, theirs: TrainConfig | None) -> str:
    if theirs is None:
        return "its config.toml cannot be read"
    a, b = ours.to_dict(), theirs.to_dict()
    changed = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    shown = ", ".join(f"{k} {b.get(k, '(default)')} there, {a.get(k, '(default)')} here"
                      for k in changed[:3])
    return shown + (", ..." if len(changed) > 3 else "")


def claim_run_folder(out: Path, config: TrainConfig, *, overwrite: bool,
                     needs_test: bool) -> str:
    """What training `config` into `out` means, with the folder's lock held: "new" (start
    from scratch; config.toml is written now), "resume" (an epoch checkpoint of this config is
    there) or "finished" (this config's finished run is there: read it back, train nothing).
    Another configuration is refused unless `overwrite`, which removes the old run's files
    (only those: nothing else is ever in a run folder, see check_run_folder)."""
    check_run_folder(out)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if present:
        stored = _stored_config(out)
        if stored != config and not overwrite:
            raise MnistlabError(
                f"--out {out}: holds a run of another configuration "
                f"({_difference(config, stored)}); use another --out, or add --overwrite to "
                "replace it")
        if overwrite:
            for name in present:
                (out / name).unlink(missing_ok=True)
            present = []
    if (out / "checkpoint.pt").exists():
        return "resume"
    if "summary.json" in present:
        summary = _summary_or_none(out)
        if (summary is not None and summary.get("status") != "interrupted"
                and (not needs_test or summary.get("test_accuracy") is not None)):
            return "finished"
    files.write_text(out / "config.toml", config.to_toml())
    return "new"


def _summary_or_none(out: Path) -> dict[str, Any] | None:
    try:
        summary = load_summary(out)
    except (MnistlabError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def load_result(out: Path, config: TrainConfig) -> RunResult:
    """A finished run folder read back as the RunResult training it produced."""
    from .train import RunResult

    model, _ = load_model(out)
    return RunResult(config=config, summary=load_summary(out), history=load_history(out),
                     out=out, model=model, reused=True)


# --- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(path: Path, config: TrainConfig, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, **state: Any) -> None:
    best = dict(state.pop("best"))
    files.torch_save(path, {
        "format": "mnistlab-checkpoint-1", "config": config.to_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "best": best, **state})


def load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any]:
    saved = _safe_load(path)
    if saved.get("format") != "mnistlab-checkpoint-1":
        raise MnistlabError(f"{path}: not an mnistlab checkpoint; delete it to start the run over")
    if TrainConfig.from_dict(saved["config"]) != config:
        raise MnistlabError(
            f"{path}: this checkpoint belongs to a different configuration; use another --out "
            "or delete the folder to start over")
    return saved


def _safe_load(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MnistlabError(
            f"{path}: refused to load: not a plain mnistlab weights file ({first[:120]}); "
            "only files written by mnistlab are loaded, and never with code execution") from None
    if not isinstance(data, dict):
        raise MnistlabError(f"{path}: not an mnistlab file")
    return data


# --- reading a run folder back ---------------------------------------------------------------
def load_summary(run_dir: str | Path) -> dict[str, Any]:
    import json

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise MnistlabError(f"{run_dir}: no summary.json here; is this a run folder "
                            "(made by `mnistlab train --out DIR`)?")
    return json.loads(path.read_text(encoding="utf-8"))


def load_history(run_dir: str | Path) -> list[dict[str, float]]:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(handle)]


def load_model(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model (eval mode) and its metadata, from model.pt, weights only."""
    path = Path(run_dir) / "model.pt"
    if Path(run_dir).is_file():
        path = Path(run_dir)
    if not path.is_file():
        raise MnistlabError(
            f"{run_dir}: no model.pt here; train one with `mnistlab train --out DIR`")
    payload = _safe_load(path)
    if payload.get("format") != MODEL_FORMAT:
        raise MnistlabError(f"{path}: not an mnistlab model file (format "
                            f"{payload.get('format')!r}, expected {MODEL_FORMAT!r})")
    try:
        config = TrainConfig.from_dict(payload["config"])
        shape = tuple(int(v) for v in payload["image_shape"])
        model = build_model(config, shape, len(payload["class_names"]))  # type: ignore[arg-type]
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise MnistlabError(f"{path}: damaged or altered model file ({str(exc)[:120]})") from None
    model.eval()
    return model, payload
