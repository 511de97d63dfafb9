"""The run folder: what reproduces a run and what it found.

    config.toml    every setting; `mnistlab train --config DIR/config.toml` reproduces the run
    metrics.csv    one row per epoch (the history)
    summary.json   dataset, model, parameters, accuracies, per-class test accuracy, diagnoses
    model.pt       weights + config + what inference needs; loaded with weights_only=True
    checkpoint.pt  the last finished epoch, for resuming (removed once the run is complete)
    curves.png     loss and accuracy, train vs validation
    confusion.png  test confusion matrix with class names
    .lock          held while a process trains into the folder
    .replaced/     a run --overwrite replaces, kept until the new run has a whole epoch (a
                   stop before that puts it back)

A folder is claimed for a run (`claim_run_folder`) before training starts: config.toml is
written first, so the folder says which configuration it belongs to from the first second on.
The same configuration resumes (or, finished, is simply read back); another configuration, or
a folder that is not a run folder, is refused rather than silently replaced.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pickle
import re
import shlex
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import __version__, doctor, files
from .config import (
    PLACEMENT,
    SETTINGS,
    TENSORBOARD_FOLDER,
    TRACKING_ENTRIES,
    TrainConfig,
    read_toml,
)
from .errors import MnistlabError, first_few
from .messages import LANGS, catalogue, class_names, t
from .models import MAX_PARAMETERS, build_model
from .records import (
    HISTORY_FIELDS,
    SEVERITIES,
    EpochRecord,
    Finding,
    RunResult,
    RunSummary,
)

if TYPE_CHECKING:
    from .data.tensors import Splits

MODEL_FORMAT = "mnistlab-model-1"
RUN_FILES = ("config.toml", "metrics.csv", "summary.json", "model.pt", "checkpoint.pt",
             "curves.png", "confusion.png")
LOCK_FILE = ".lock"
# --overwrite's old run, set aside until the new one has a whole epoch: a Ctrl-C before that
# had deleted the finished run for a partial epoch that resumes from the start
REPLACED_FOLDER = ".replaced"
# held by a search's driver while it retrains its best configuration and writes the report,
# on any backend (a Ray worker's run folder may be on another machine)
SEARCH_REPORT_LOCK = ".report.lock"


def metrics_csv(history: list[EpochRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                         for k, v in record.to_row().items()})
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
        "data_digest": splits.data_digest,
    }


def write_run(out: Path, result: RunResult, splits: Splits, *, plots: bool = True,
              lang: str = "en") -> None:
    """Write the run folder (see the module docstring), its figures' words in `lang`; the
    checkpoint goes once the run is complete."""
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(out / "config.toml", result.config.to_toml())
    files.write_text(out / "metrics.csv", metrics_csv(result.history))
    files.torch_save(out / "model.pt", model_payload(result, splits))
    if plots:
        draw_run_figures(out, result, splits.class_names, lang)
    files.write_json(out / "summary.json", result.summary.to_dict())
    if result.summary.status != "interrupted":
        (out / "checkpoint.pt").unlink(missing_ok=True)


# --- claiming a folder -----------------------------------------------------------------------
def check_run_folder(out: Path, flag: str = "--out") -> None:
    """Refuse, before anything is written, a folder that holds files of something else
    (`flag` "": a folder a study or search names itself)."""
    files.check_owned_folder(out, {*RUN_FILES, LOCK_FILE, REPLACED_FOLDER, *TRACKING_ENTRIES},
                             "run", flag)


def _stored_config(out: Path) -> TrainConfig | None:
    return _stored_config_from(out)[0]


def _stored_config_from(out: Path) -> tuple[TrainConfig | None, str]:
    """The configuration a run folder belongs to, and the file it was read from: its
    config.toml, else (missing or damaged) its checkpoint or its model, which hold the same."""
    readers = (lambda: read_toml(out / "config.toml"),
               lambda: _safe_load(out / "checkpoint.pt")["configs"][0],
               lambda: _safe_load(out / "model.pt")["config"])
    for name, read in zip(("config.toml", "checkpoint.pt", "model.pt"), readers):
        if not (out / name).is_file():
            continue
        try:
            return TrainConfig.from_dict(read()), name
        except (MnistlabError, OSError, KeyError, TypeError, AttributeError, ValueError,
                IndexError):
            continue
    return None, ""


def _comparable(config: TrainConfig) -> TrainConfig:
    """`config` with its augmentation as what it does: "scale=0.1,rotate=10" and
    "rotate=10, scale=0.1" are one augmentation, "", "none" and "rotate=0" none, "erase=0.5"
    is "erase=0.5,erase_area=0.25" (they were "another configuration", and --overwrite
    trained the same run again). Numbers are compared exactly (a TrainConfig's augmentation
    is checked when it is made)."""
    from .data.sources import given_folder

    folder = given_folder(config.dataset)  # a relative path (as saved before it was made
    return config.replace(  # absolute) is the folder it names from here
        augment=config.augmentation_text,  # zeros left out, erase_area's unsaid 0.25 in
        dataset=str(folder.resolve()) if folder is not None else config.dataset)


def _difference(ours: TrainConfig, theirs: TrainConfig | None) -> str:
    if theirs is None:
        return "no readable config.toml, checkpoint.pt or model.pt says which"
    a, b = _comparable(ours).to_dict(), _comparable(theirs).to_dict()
    changed = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)
               and k not in PLACEMENT]
    return first_few(f"{k} {b.get(k, '(default)')} there, {a.get(k, '(default)')} here"
                     for k in changed)


def _moved_data(stored: TrainConfig | None, config: TrainConfig, moved: str) -> str:
    """Where a run's dataset folder is gone: how to resume it, before --overwrite (which
    throws its epochs away) is offered. `moved`: _moved_verdict's."""
    from .data.sources import KNOWN_DATASETS

    if stored is None or stored.dataset in KNOWN_DATASETS or Path(stored.dataset).exists():
        return ""
    gone = f"it was trained on the data in {stored.dataset}, not there now: "
    if moved == "undigested":  # a run made before runs kept one: only its own path will do
        return gone + "put that folder back to resume or reuse it; else "
    if moved == "other":  # a folder of other data given
        return gone + (f"the data in {config.dataset} is not that data; give --dataset the "
                       "folder it is in now to resume or reuse it; else ")
    if moved == "unreadable":
        return gone + (f"{config.dataset} holds no dataset; give --dataset the folder it is "
                       "in now to resume or reuse it; else ")
    return gone + ("put that folder back, or give --dataset the folder it is in now, to "
                   "resume or reuse it; else ")  # its old path given again


def _kept_digest(out: Path) -> str:
    """The data digest a run keeps (Dataset.digest) in its epoch checkpoint or its model, or
    "" (a run made before runs kept one, or files that cannot be read)."""
    for name, key in (("checkpoint.pt", "data_digest"), ("model.pt", "data_digest")):
        if (out / name).is_file():
            try:
                digest = _safe_load(out / name).get(key)
            except MnistlabError:
                continue
            if isinstance(digest, str) and digest:
                return digest
    return ""


def _moved_verdict(out: Path, stored: TrainConfig | None, config: TrainConfig) -> str:
    """How the run in `out` stands to `config`'s dataset folder, where it was trained on a
    folder of IDX files: "same" (another path holds that data, by the digest the run kept:
    Dataset.digest), "other" (other data there), "unreadable" (no dataset there),
    "undigested" (the run kept no digest: made before runs kept one); "" where the folder is
    not another one. The new folder is read to tell (about a second for MNIST's size)."""
    from .data import KNOWN_DATASETS, load_dataset

    if stored is None or stored.dataset in KNOWN_DATASETS:
        return ""
    same_path = _comparable(stored).dataset == _comparable(config).dataset
    if same_path and Path(stored.dataset).exists():  # nothing moved
        return ""
    kept = _kept_digest(out)
    if not kept:
        return "undigested"
    if same_path or config.dataset in KNOWN_DATASETS:
        return ""
    try:
        return "same" if load_dataset(config.dataset).digest == kept else "other"
    except MnistlabError:  # not there, or not a dataset: the refusal says where it was
        return "unreadable"


def _repoint_data(out: Path, config: TrainConfig) -> None:
    """The run in `out` reads its data from `config.dataset` from now on: its config.toml,
    and the configs its checkpoint and model keep (a resumed checkpoint is checked against
    the run's config), name the new folder."""
    for name, key in (("checkpoint.pt", "configs"), ("model.pt", "config")):
        path = out / name
        if not path.is_file():
            continue
        saved = _safe_load(path)
        kept = saved.get(key)
        if isinstance(kept, list):
            saved[key] = [{**c, "dataset": config.dataset} for c in kept if isinstance(c, dict)]
        elif isinstance(kept, dict):
            saved[key] = {**kept, "dataset": config.dataset}
        files.torch_save(path, saved)
    files.write_text(out / "config.toml", config.to_toml())


def same_run(stored: TrainConfig | None, config: TrainConfig) -> bool:
    """Whether `stored` (a folder's or a checkpoint's) is the run `config` asks for: equal in
    everything but where it runs and reads its data (--device, --data-dir), so a run started on
    a GPU finishes on a CPU, and the same files elsewhere are the same data."""
    return (stored is not None
            and _comparable(stored.replace(**config.placement())) == _comparable(config))


def claim_run_folder(out: Path, config: TrainConfig, *, overwrite: bool,
                     needs_test: bool, refuse_damaged: bool = False,
                     named_by_settings: bool = False) -> str:
    """What training `config` into `out` means, with the folder's lock held: "new" (start
    from scratch; config.toml is written now), "resume" (an epoch checkpoint of this config is
    there), "finished" (this config's finished run is there: read it back, train nothing) or
    "replace" (`overwrite` of a run there: `replace_run` once the new one is ready to train).
    Another configuration is refused unless `overwrite`; with `refuse_damaged` (the train
    command, which has --overwrite), so is a run whose summary cannot be read (training it
    again would replace its model without a word); studies and searches train it again, as
    `training.train` does for their finished runs whose model.pt or metrics.csv cannot be read
    back (the train command refuses those too). `named_by_settings`: a study's or search's
    run folder, named after its settings (check_named_run_folder)."""
    check_run_folder(out)
    if replacement_waiting(out):  # killed (SIGKILL, power): the replaced run back first,
        restore_replaced(out)  # whatever comes next
    present = _computed(out)
    if present:
        stored, source = _stored_config_from(out)
        moved = (_moved_verdict(out, stored, config)
                 if not overwrite and not same_run(stored, config) else "")
        if moved == "same" and same_run(stored.replace(dataset=config.dataset), config):
            _repoint_data(out, config)  # the run, its data elsewhere: resumed from there
            stored, source = config, "config.toml"
        elif moved == "same":  # the same data: only the other settings are a difference
            stored = stored.replace(dataset=config.dataset)
        if not same_run(stored, config) and not overwrite:
            if named_by_settings:  # no --overwrite to offer there
                raise _edited_by_hand(out, config, stored)
            raise MnistlabError(
                f"--out {out}: holds a run of another configuration "
                f"({_difference(config, stored)}); {_moved_data(stored, config, moved)}"
                "use another --out, or add --overwrite (overwrite=True from Python) to "
                "replace it")
        if overwrite:
            return "replace"
        if source != "config.toml":  # damaged or deleted: the run's files say what it is
            files.write_text(out / "config.toml", config.to_toml())
    if (out / "checkpoint.pt").exists():
        return "resume"
    if "summary.json" in present and _finished(
            load_summary(out) if refuse_damaged else _summary_or_none(out), needs_test):
        return "finished"
    files.write_text(out / "config.toml", config.to_toml())
    return "new"


def check_named_run_folder(out: Path, config: TrainConfig) -> None:
    """Refuse a study's or search's run folder (named after its settings, so it can only hold
    `config`'s run) whose config.toml says otherwise: someone edited it by hand."""
    if not _computed(out):
        return
    stored, _ = _stored_config_from(out)
    if not same_run(stored, config):
        raise _edited_by_hand(out, config, stored)


def _computed(out: Path) -> list[str]:
    """The run files in `out` that hold work; a lone config.toml is a start that failed before
    its first step (a dataset not found, a bad setting): nothing computed, a new config takes
    the folder."""
    present = [name for name in RUN_FILES if (out / name).exists()]
    return [] if present == ["config.toml"] else present


def _edited_by_hand(out: Path, config: TrainConfig, stored: TrainConfig) -> MnistlabError:
    return MnistlabError(
        f"{out}: holds a run of another configuration ({_difference(config, stored)}), but a "
        "study or search names each run's folder after its settings, so its config.toml was "
        "changed by hand; put it back, or delete that folder to train the run again")


def replace_run(out: Path, config: TrainConfig) -> None:
    """--overwrite, once the new run's data and model are ready: the old run's files, and its
    TensorBoard events, are set aside in REPLACED_FOLDER (only those: nothing else is ever in
    a run folder, see check_run_folder), the new config.toml comes. A typo in the new
    settings, or data not found, leaves the old run whole; the new run's first saved epoch
    drops what was set aside (drop_replaced), a stop before it puts it back (settle_replaced)."""
    aside = out / REPLACED_FOLDER
    if aside.is_dir():  # set aside by a replacement whose new run saved an epoch, then was
        drop_replaced(out)  # killed: that new run is what this one replaces
    aside.mkdir()
    for name in RUN_FILES:
        if (out / name).exists():
            (out / name).rename(aside / name)
    _move_event_files(out / TENSORBOARD_FOLDER, aside / TENSORBOARD_FOLDER)
    files.write_text(out / "config.toml", config.to_toml())


def drop_replaced(out: Path) -> None:
    """The new run has a whole epoch saved: the replaced run goes, its TensorBoard events to
    `replaced-N/` beside the new run's (left in place, `--log tensorboard` took them for the
    new run's and logged nothing, and TensorBoard showed the old settings' curves)."""
    aside = out / REPLACED_FOLDER
    if not aside.is_dir():
        return
    logdir = out / TENSORBOARD_FOLDER
    if any((aside / TENSORBOARD_FOLDER).glob("events.out.tfevents.*")):
        number = 1
        while (logdir / f"replaced-{number}").exists():
            number += 1
        _move_event_files(aside / TENSORBOARD_FOLDER, logdir / f"replaced-{number}")
    shutil.rmtree(aside)


def restore_replaced(out: Path) -> bool:
    """Put the replaced run back as it was (its files and TensorBoard events; the stopped new
    run's removed). True where there was one to put back."""
    aside = out / REPLACED_FOLDER
    if not aside.is_dir():
        return False
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for event in (out / TENSORBOARD_FOLDER).glob("events.out.tfevents.*"):
        event.unlink()  # the stopped run's log: it trained nothing kept
    _move_event_files(aside / TENSORBOARD_FOLDER, out / TENSORBOARD_FOLDER)
    for kept in aside.iterdir():
        if kept.name != TENSORBOARD_FOLDER:
            kept.rename(out / kept.name)
    shutil.rmtree(aside)
    return True


class ReplacementStopped(MnistlabError):
    """An --overwrite run stopped before its first whole epoch: the run it was to replace is
    back (said as the stop it is, not as an error)."""


def has_saved_epoch(out: Path) -> bool:
    """A run folder's run has something to keep: an epoch checkpoint, or its summary."""
    return (out / "checkpoint.pt").exists() or (out / "summary.json").exists()


def replacement_waiting(out: Path) -> bool:
    """A run --overwrite set aside, its replacement stopped (killed) before a whole epoch:
    the next train into the folder puts it back."""
    return (out / REPLACED_FOLDER).is_dir() and not has_saved_epoch(out)


def settle_replaced(out: Path, *, keep_new: bool | None = None) -> bool:
    """End a replacement (replace_run): the replaced run goes where the new one has something
    to keep (`keep_new`; None: has_saved_epoch), and comes back otherwise. True where it came
    back."""
    if keep_new if keep_new is not None else has_saved_epoch(out):
        drop_replaced(out)
        return False
    return restore_replaced(out)


def _move_event_files(source: Path, target: Path) -> None:
    """TensorBoard's event files of `source` (not its sub-folders) into `target`."""
    events = sorted(source.glob("events.out.tfevents.*")) if source.is_dir() else []
    if events:
        target.mkdir(parents=True, exist_ok=True)
    for event in events:
        event.rename(target / event.name)


def draw_run_figures(out: Path, result: RunResult, classes: list[str] | tuple[str, ...],
                     lang: str) -> None:
    """curves.png and confusion.png, their words in `lang` (kept in each PNG)."""
    from . import figures  # matplotlib is imported only to draw

    if result.history:
        diverged = result.summary.status == "diverged"  # its figure said nothing of it
        files.save_figure(out / "curves.png", figures.learning_curves(
            result.history, t(lang, "plot.diverged") if diverged else "", lang,
            regularised=result.config.regularised, kept_epoch=result.summary.best_epoch),
            lang=lang)
    if result.summary.test_confusion is not None:
        files.save_figure(out / "confusion.png", figures.confusion(  # named as the report
            result.summary.test_confusion, class_names(classes, lang), lang=lang), lang=lang)


def figures_in(out: Path, lang: str) -> bool:
    """A run folder's figures (each it has) are in `lang`, as their PNGs say; one drawn
    before they said so is taken as English, as most were (the review saw every such read
    back redrawn, and warned of where it could not be)."""
    return all((files.figure_language(out / name) or "en") == lang
               for name in ("curves.png", "confusion.png") if (out / name).is_file())


def redraw_in_language(out: Path, result: RunResult, lang: str) -> None:
    """A finished run read back: its figures drawn again where they are not in `lang` (a
    search's retrained runs, read back under another --lang, kept their first language's)."""
    if figures_in(out, lang):
        return
    summary = result.summary
    classes = summary.class_names or [str(c) for c in range(len(summary.test_confusion or []))]
    draw_run_figures(out, result, classes, lang)


def _finished(summary: RunSummary | None, needs_test: bool) -> bool:
    """A run that went to its end (diverged counts), scored on test if that is needed."""
    return (summary is not None and summary.status != "interrupted"
            and (not needs_test or summary.test_accuracy is not None))


def _summary_or_none(out: Path) -> RunSummary | None:
    try:
        return load_summary(out)
    except MnistlabError:
        return None


def finished_result(out: Path, config: TrainConfig, *, needs_test: bool) -> RunResult | None:
    """`config`'s finished run in `out` read back (None if it is not there whole), without
    claiming the folder: how a study finds runs it trained but did not record."""
    summary = _summary_or_none(out) if (out / "summary.json").is_file() else None
    if not _finished(summary, needs_test) or not same_run(_stored_config(out), config):
        return None
    try:
        return load_result(out, config)
    except MnistlabError:  # a damaged model file: train it again
        return None


WHOLE_RUN = ("config.toml", "metrics.csv", "model.pt", "summary.json")  # of a finished run


def not_whole(out: Path, *, load: bool = False) -> list[str]:
    """The files of a finished run that `out` lacks (all of them where the folder is gone),
    or holds damaged (its settings, numbers or summary not readable back). The model is
    loaded with `load` (a final model, whose mistakes a report draws), else only opened as
    the zip file torch writes (one cut short has no directory at its end): 1 ms a run."""
    readers = {"config.toml": lambda: TrainConfig.from_dict(read_toml(out / "config.toml")),
               "metrics.csv": lambda: load_history(out),
               "model.pt": (lambda: load_model(out)) if load else
               lambda: zipfile.ZipFile(out / "model.pt").close(),
               "summary.json": lambda: load_summary(out)}
    lacking = []
    for name in WHOLE_RUN:
        try:
            if not (out / name).is_file():
                raise MnistlabError(name)
            readers[name]()
        except (MnistlabError, OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
            lacking.append(name)
    return lacking


def rewrite_run_files(out: Path, config: TrainConfig, summary: RunSummary,
                      history: list[EpochRecord], names: list[str]) -> bool:
    """Write the text files `names` of `config`'s finished run in `out` again from its record
    (a study's store), where its model.pt is there and readable: True; else False, nothing
    written (the model is lost: the run is trained again). A folder whose settings say
    another run is refused, as training refuses it: a model that loads is never lost."""
    if "model.pt" in names:
        return False
    try:
        load_model(out)
    except MnistlabError:
        return False
    stored = _stored_config(out)  # its config.toml, else its model's
    if not same_run(stored, config):  # edited by hand (its model deleted for it: review)
        raise _edited_by_hand(out, config, stored)
    for name in names:
        if name == "summary.json":
            files.write_json(out / name, summary.to_dict())
        else:
            files.write_text(out / name, config.to_toml() if name == "config.toml"
                             else metrics_csv(history))
    return True


def discard_lost_run(out: Path) -> None:
    """The files left of a study's finished run whose model is lost, before it is trained
    again (its numbers are in the study's store until then): a damaged or missing
    config.toml, or its figures alone, refused the new run as one "edited by hand". An
    epoch checkpoint stays: a retraining killed part way resumes from it."""
    for name in RUN_FILES:
        if name != "checkpoint.pt":
            (out / name).unlink(missing_ok=True)


def load_result(out: Path, config: TrainConfig) -> RunResult:
    """A finished run folder read back as the RunResult training it produced."""
    model, _ = load_model(out)
    summary = load_summary(out)
    return RunResult(config=config, summary=summary, history=load_run_history(out, summary),
                     out=out, model=model, reused=True)


# --- checkpoints -----------------------------------------------------------------------------
def load_checkpoint(path: Path, configs: list[TrainConfig], format: str, *,
                    fix: str = "delete it and run the same command again to start the run "
                               "over, or use another --out") -> dict[str, Any]:
    """An epoch checkpoint of `configs` (one per member) in `format`, checked before use;
    `fix`: what to do about one that cannot be read."""
    saved = _safe_load(path, fix)
    if saved.get("format") != format:
        found = str(saved.get("format"))[:40]
        version = re.fullmatch(r"mnistlab-(?:cohort-)?checkpoint-(\d+)", found)
        if version and int(version[1]) > int(format.rsplit("-", 1)[1]):  # review: a newer
            # one was called earlier, and its epochs offered for deletion
            raise MnistlabError(f"{path}: a checkpoint of a newer mnistlab (format {found!r}); "
                                "update mnistlab to resume it")
        older = (" written by an earlier mnistlab, whose epochs this one cannot continue"
                 if version else "")
        raise MnistlabError(f"{path}: not a checkpoint this mnistlab can resume (format "
                            f"{found!r}{older}); delete it to start the run over")
    stored = _configs_in(saved, path)
    if len(stored) != len(configs) or not all(map(same_run, stored, configs)):
        raise MnistlabError(
            f"{path}: this checkpoint belongs to a different configuration; use another --out "
            "or delete the folder to start over")
    return saved


def checkpoint_configs(path: Path) -> list[TrainConfig]:
    """The configs an epoch checkpoint was made for (one per member); MnistlabError if it
    cannot be read."""
    return _configs_in(_safe_load(path), path)


def _configs_in(saved: dict[str, Any], path: Path) -> list[TrainConfig]:
    try:
        return [TrainConfig.from_dict(c) for c in saved["configs"]]
    except (MnistlabError, KeyError, TypeError, AttributeError, ValueError):
        raise MnistlabError(f"{path}: damaged checkpoint (its config cannot be read); delete it "
                            "to start the run over") from None


def check_finite(outputs: torch.Tensor, also: str = "") -> None:
    """Refuse a model whose outputs are not numbers (a diverged run): predicting or exporting
    with it would hand out NaN as if it were an answer. `also` ends the line."""
    if not torch.isfinite(outputs).all():
        raise MnistlabError("the model's outputs are not numbers (NaN): the run diverged; train "
                            f"it again with a lower --lr{also}")


def check_same_data(payload: dict[str, Any], data: Any, config: TrainConfig, *,
                    chosen: bool = False) -> None:
    """The data a model is scored on (a Dataset, or Splits) has the classes, image size and
    pixel statistics it was trained on; `chosen`: the data was named for this command
    (evaluate --dataset). Checked before the data is split: another dataset's size makes the
    run's own val-size fail, which is not the problem."""
    def described(names: list[str], shape: list[int]) -> str:
        size = "x".join(map(str, shape[-2:]))
        return f"{len(names)} classes ({first_few(names)}) of {size} images"

    from .data import KNOWN_DATASETS

    trained_on = str(payload.get("config", {}).get("dataset", config.dataset))
    fix = (f"give --dataset the data it was trained on ({trained_on})" if chosen else
           "give --data-dir with the data it was trained on" if config.dataset in
           KNOWN_DATASETS else f"put the data it was trained on back at {config.dataset}")
    shapes = [int(v) for v in payload["image_shape"]], [int(v) for v in data.image_shape]
    names = list(payload["class_names"])
    # a folder without classes.txt was named 0..K-1; read again, its checksums may name it
    # (an exact copy of Fashion-MNIST): the same classes, named now
    numbered = names == [str(k) for k in range(len(data.class_names))]
    if (names != list(data.class_names) and not numbered) or shapes[0] != shapes[1]:
        trained = described(names, shapes[0])
        found = described(list(data.class_names), shapes[1])
        raise MnistlabError(f"{config.dataset}: the data there now holds {found}; the model "
                            f"was trained on {trained}: {fix}")
    # a folder's pixel statistics are measured on its training images (a known dataset's are
    # its published ones, to 4 places): other images of the same classes and size
    # (Fashion-MNIST for MNIST, 0.2860 against 0.1307) differ there
    for key, word in (("mean", "mean"), ("std", "sd")):
        kept, now = payload.get(key), getattr(data, key)
        if isinstance(kept, float) and isinstance(now, float) and \
                not math.isclose(kept, now, abs_tol=1e-3):  # NaN kept: not the same either
            raise MnistlabError(
                f"{config.dataset}: not the images the model was trained on (their pixel "
                f"{word} is {now:.4f}, the training images' {kept:.4f}); {fix}")
    # a folder's data, by the digest the run kept (Dataset.digest): the same images with other
    # labels (a relabelled copy) have the same statistics, and scored near 0 without a word
    # (a numbered folder named since, by a classes.txt or by its checksums, is compared under
    # the names it had)
    kept_digest = payload.get("data_digest")
    if kept_digest and hasattr(data, "digest") and names != list(data.class_names):
        data = dataclasses.replace(data, class_names=names)
    if kept_digest and getattr(data, "digest", kept_digest) != kept_digest:
        raise MnistlabError(
            f"{config.dataset}: not the data the model was trained on (its images or labels "
            f"differ from those the run kept a digest of); {fix}")


def _torch_file(path: Path) -> bool:
    """Whether `path` is a model file: named as ours, or begins as torch.save's files do (a
    zip archive, or an old pickle)."""
    if path.suffix in (".pt", ".pth"):
        return True  # even cut short: then said to be damaged, which it is
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return True  # unreadable: said by the reader, naming why
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def a_file(path: Path, wanted: str = "the folder `mnistlab train --out DIR` made",
           noun: str = "run folder") -> MnistlabError:
    """A file given where a run folder goes (an image and a run swapped in `predict`, a
    summary.json named itself): said so; reading it as a model called it damaged, with a fix
    that retrains."""
    ours = any((path.parent / name).is_file() for name in ("summary.json", "model.pt"))
    give = f"give its folder, {path.parent}" if ours else f"give {wanted}"
    return MnistlabError(f"{path}: a file, not a {noun}; {give}")


SEARCH_MARK = files.SEARCH_FILES  # a search folder whose trials are elsewhere
# Folders of many runs, by the files that mark them (files.FOLDER_MARKS): (marker, what it
# is, the command that makes it, the subfolder its runs are in)
MANY_RUNS = ((("study.db",), "a study", "mnistlab study", "runs"),
             (("tune.db",), "a search", "mnistlab tune", ""),
             # a worker's folder whose trials are in a shared storage (PostgreSQL): no tune.db;
             # known by its space.toml beside it (search.json alone may be anyone's)
             (SEARCH_MARK, "a search", "mnistlab tune", ""))


def _no_model(folder: Path, path: Path) -> str:
    """Why `folder` has no model.pt, and what to give instead."""
    if path.is_dir():  # a folder of that name: made by hand, or a copy gone wrong
        return f"{path}: a folder, where a run keeps its model file; {FIX_DAMAGED}"
    if (folder / "summary.json").is_file():  # a run folder that lost its model
        return f"{path}: missing (deleted, or never written); {FIX_DAMAGED}"
    if files.held(folder / LOCK_FILE):
        return (f"{folder}: a training is running in this folder now and has not written its "
                "model yet; wait for it to finish")
    if (folder / "checkpoint.pt").is_file():
        stopped = ("its training was stopped before it wrote a model (Ctrl-C, killed, or out "
                   "of memory; checkpoint.pt is here)")
        owner = files.owner_of(folder)
        if owner is not None:  # a study's cohort or run: `train --out` there is refused
            what = "search" if owner[1] == "tune" else owner[1]
            return (f"{folder}: {stopped}: run the same `{owner[2]}` command again to resume "
                    f"it (the {what} in {owner[0]})")
        return (f"{folder}: {stopped}: run the same train command again with --out "
                f"{shlex.quote(str(folder))} to resume it")
    for marker, what, command, where in MANY_RUNS:
        if files.marked(folder, marker):
            final = _final_runs(folder)
            if final:  # what a user who gives the study most likely wants: its final model
                return (f"{folder}: {what} folder, not a run; give one of its run folders, "
                        f"e.g. its final model's, {final[0]}")
            inside = run_folders(folder / where) if (folder / where).is_dir() else []
            base = {row.get("run"): row.get("seed") for row in results_rows(folder)  # by name
                    if row.get("base") == "true" or row.get("experiment") == "base"}
            inside.sort(key=lambda run: (run.name not in base, str(base.get(run.name))))
            if not inside:  # "give one of its run folders", of which there were none (hunt)
                best = folder / "best.toml"
                how = (f"`mnistlab train --config {shlex.quote(str(best))}` trains its best "
                       "configuration" if best.is_file() else
                       f"the same `{command}` command, run to its end, makes them")
                return f"{folder}: {what} folder, not a run, and it holds no run folder; {how}"
            example = (f", e.g. {inside[0]}" + (f" (the base, seed {base[inside[0].name]})"
                                                 if inside[0].name in base else "")
                       if inside else "")
            return f"{folder}: {what} folder, not a run; give one of its run folders{example}"
    inside = run_folders(folder, depth=2) if folder.is_dir() else []  # a study's runs/, say
    if inside:
        many = len(inside) > 1
        count, which = (f"{len(inside)} runs", "one of them, e.g.") if many else ("a run", "it:")
        return f"{folder}: a folder holding {count}, not a run; give {which} {inside[0]}"
    if replacement_waiting(folder):
        return (f"{folder}: no model.pt here: an --overwrite was stopped before the new run's "
                f"first whole epoch (killed), and the run it was to replace is set aside in "
                f"{REPLACED_FOLDER}/; the next `mnistlab train --out {folder}` puts it back")
    return f"{folder}: no model.pt here; train one with `mnistlab train --out DIR`"


def _final_runs(study: Path) -> list[Path]:
    """The run folders of a study's final model (one per seed), from its results.csv."""
    found = [study / "runs" / str(row.get("run")) for row in results_rows(study)
             if row.get("experiment") == "final"]
    return [path for path in found if (path / "model.pt").is_file()]


def results_rows(study: Path) -> list[dict[str, str]]:
    """The rows of a study's results.csv; none where it cannot be read."""
    try:
        return list(csv.DictReader(io.StringIO((study / "results.csv").read_text("utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _safe_load(path: Path, fix: str = "") -> dict[str, Any]:
    """A file mnistlab wrote with torch.save, read as weights only (no code runs). `fix`: what
    to do about it when it cannot be read (cut short by a crash or a full disk, say)."""
    if path.is_file() and path.stat().st_size == 0:  # torch's own reason is an empty text
        raise MnistlabError(f"{path}: damaged or cut short: an empty file (0 bytes)"
                            + (f"; {fix}" if fix else ""))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # it holds objects, not just tensors: not ours
        if not zipfile.is_zipfile(path) and path.read_bytes()[:1] != b"\x80":  # nor a pickle
            raise MnistlabError(f"{path}: damaged or cut short, torch cannot read it (not in "
                                "torch's zip format: cut short, or no file torch wrote)"
                                + (f"; {fix}" if fix else "")) from None
        first = " ".join(str(exc).split())
        raise MnistlabError(
            f"{path}: refused to load: not a plain mnistlab weights file ({first[:100]}...); "
            "only files written by mnistlab are loaded, and never with code execution") from None
    except Exception as exc:  # noqa: BLE001 - a file torch cannot read at all
        first = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        raise MnistlabError(f"{path}: damaged or cut short, torch cannot read it ({first[:100]})"
                            + (f"; {fix}" if fix else "")) from None
    if not isinstance(data, dict):
        raise MnistlabError(f"{path}: not an mnistlab file")
    return data


# --- reading a run folder back ---------------------------------------------------------------
# Files read back were written by mnistlab, but a crash, a full disk or a hand edit can leave
# them cut short or altered: each check below names the file and what to do, in one line.
FIX_DAMAGED = "train it again: the command that made it, with --overwrite"
MAX_TEXT_BYTES = 64 * 2**20  # summary.json and metrics.csv of real runs are well under 1 MB
# a model.pt holds at most models.MAX_PARAMETERS float32 weights, plus buffers and metadata
MAX_MODEL_BYTES = MAX_PARAMETERS * 4 + 64 * 2**20
# the metrics.csv columns the doctor reads; the others may be absent (older runs)
HISTORY_REQUIRED = ("epoch", "train_loss", "train_acc_running", "train_acc_eval", "val_loss",
                    "val_acc")


def damaged(path: Path, problem: str) -> MnistlabError:
    """The one-line error for a run-folder file that cannot be read back."""
    return MnistlabError(f"{path}: damaged ({problem}); {FIX_DAMAGED}")


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise damaged(path, f"{path.stat().st_size:,} bytes, more than a run writes")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise damaged(path, f"not UTF-8 text at byte {exc.start}") from None
    except OSError as exc:
        raise MnistlabError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _counts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                           and v >= 0 for v in value)


def _trace(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and _number(p[0]) and math.isfinite(p[0])
        and (p[1] is None or p[1] in NOT_FINITE or _number(p[1])) for p in value)


NOT_FINITE = ("nan", "inf", "-inf")  # a loss that was not finite, as text (null before)


# summary.json keys that are read back, and the shape each must have when present (None is
# what make_summary writes when there was nothing to measure)
SUMMARY_SHAPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (lambda v: isinstance(v, str), "text"),
    "class_names": (lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
                    "a list of class names"),
    "val_label_counts": (_counts, "a list of whole numbers >= 0"),
    "val_pred_counts": (lambda v: v is None or _counts(v), "a list of whole numbers >= 0"),
    "loss_trace": (_trace, "a list of [step, loss] pairs"),
    "train_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                   "a whole number >= 0"),
    **{key: (lambda v: v is None or _number(v), "a number or null")
       for key in ("val_accuracy", "val_loss", "val_metric", "train_accuracy",
                   "train_accuracy_running", "train_loss", "test_accuracy", "test_loss")},
    "diagnoses": (lambda v: isinstance(v, list) and all(isinstance(d, dict) for d in v),
                  "a list of findings"),
    "cuda_graphs": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    # an ensemble's members, which the doctor reads: each a table of numbers or nulls
    "members": (lambda v: v is None or (isinstance(v, list) and all(
        isinstance(m, dict) and all(m.get(k) is None or _number(m[k])
                                    for k in ("val_accuracy", "test_accuracy")) for m in v)),
        "a list of members, each with val_accuracy and test_accuracy numbers or null"),
}


def load_summary(run_dir: str | Path) -> RunSummary:
    """summary.json, its keys read back checked for the shapes SUMMARY_SHAPES says."""
    import json

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise MnistlabError(f"{run_dir}: no summary.json here; is this a run folder "
                            "(made by `mnistlab train --out DIR`)?")
    try:
        summary = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise damaged(path, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(summary, dict):
        raise damaged(path, f"a JSON {type(summary).__name__}, not an object")
    if "status" not in summary:
        raise damaged(path, "no status")
    for key, (fits, shape) in SUMMARY_SHAPES.items():
        if key in summary and not fits(summary[key]):
            raise damaged(path, f"{key} is not {shape}")
    lengths = {key: len(summary[key]) for key in ("class_names", "val_label_counts",
                                                   "val_pred_counts") if summary.get(key)}
    if len(set(lengths.values())) > 1:
        raise damaged(path, "class_names, val_label_counts and val_pred_counts differ in "
                            "length")
    _check_diagnoses(path, summary.get("diagnoses") or [])
    return RunSummary.from_dict(summary)


def _check_diagnoses(path: Path, diagnoses: list[dict[str, Any]]) -> None:
    """Every stored finding of a code this version knows must say itself in every language;
    one of an unknown code (another version's) is left to the fresh diagnosis."""
    for i, data in enumerate(diagnoses, start=1):
        code = data.get("code")
        if isinstance(code, str) and f"finding.{code}.title" not in catalogue():
            continue
        try:
            finding = Finding.from_dict(data)
            if finding.severity not in SEVERITIES:
                raise ValueError(finding.severity)
            for lang in LANGS:
                finding.text(lang)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError):
            raise damaged(path, f"diagnosis {i} ({str(code)[:40]}) cannot be read") from None


def load_history(run_dir: str | Path) -> list[EpochRecord]:
    """metrics.csv, one record per epoch; [] when the run has none. Every cell must be a
    number (empty: not measured), `epoch` a whole one, and the doctor's columns present."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    text = _read_text(path)
    if not text.strip():
        raise damaged(path, "empty, not even its header")
    try:
        return _history_rows(path, csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:  # a cell past csv's size limit, a stray NUL: not what we wrote
        raise damaged(path, f"not readable as CSV ({exc})") from None


def load_run_history(run_dir: Path, summary: RunSummary) -> list[EpochRecord]:
    """load_history of a run whose summary says how many epochs it has: metrics.csv deleted
    from a finished run read as no epochs, and the doctor then found "nothing wrong" where
    it had named a problem (hunt)."""
    history = load_history(run_dir)
    if not history and summary.epochs:
        raise damaged(run_dir / "metrics.csv", f"missing, where summary.json counts "
                                               f"{summary.epochs} epoch"
                                               f"{'s' * (summary.epochs != 1)}")
    return history


def _history_rows(path: Path, reader: csv.DictReader) -> list[EpochRecord]:
    missing = [c for c in HISTORY_REQUIRED if c not in (reader.fieldnames or HISTORY_REQUIRED)]
    if missing:
        raise damaged(path, f"no {', '.join(missing)} column")
    history = []
    for line, row in enumerate(reader, start=2):
        if None in row or None in row.values():
            raise damaged(path, f"line {line} does not have one cell per column")
        record = {}
        for key, text in row.items():
            if text == "":
                if key in HISTORY_REQUIRED:
                    raise damaged(path, f"line {line} has no {key}")
                continue
            try:
                value = float(text)
            except ValueError:
                raise damaged(path, f"line {line}: {key} = {text[:20]!r} is not a number") \
                    from None
            if key == "epoch" and not (value.is_integer() and value >= 1):
                raise damaged(path, f"line {line}: epoch {text[:20]!r} is not a whole number")
            record[key] = int(value) if key == "epoch" else value
        history.append(EpochRecord.from_row(record))
    return history


PAIR_KEYS = ("config", "image_shape", "class_names", "mean", "std")  # what predict and export read


def model_of(run: Any, call: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model and its metadata from a run folder, a RunResult (train()'s) or load_model's
    pair (mnistlab.runs.load_model), for the function `call` (predict, export_onnx);
    anything else in one line (a RunResult was "cannot unpack non-iterable", and
    export_onnx's a TypeError of pathlib)."""
    if isinstance(run, RunResult):
        if run.out is None:
            raise MnistlabError(f"run: this RunResult was trained without a folder (out=None), "
                                f"and {call} reads the run's model.pt; train with out=DIR, then "
                                f"{call}(DIR, ...)")
        run = run.out
    if isinstance(run, (str, os.PathLike)):
        return load_model(run)
    if (isinstance(run, (tuple, list)) and len(run) == 2
            and isinstance(run[0], torch.nn.Module) and isinstance(run[1], dict)):
        missing = [key for key in PAIR_KEYS if key not in run[1]]
        if missing:  # (model, {}) was a KeyError deep in predict (hunt)
            raise MnistlabError(f"run: the metadata of this (model, metadata) pair lacks "
                                f"{', '.join(missing)}; give the pair load_model(RUN_DIR) "
                                "returns (mnistlab.runs.load_model), or the run folder itself")
        return run[0], run[1]
    raise MnistlabError(f"run: give a run folder, a RunResult (what train() returns) or "
                        f"load_model's (model, metadata) pair, not {type(run).__name__}")


def load_model(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model (eval mode) and its metadata, from model.pt, weights only."""
    path = Path(run_dir) / "model.pt"
    if Path(run_dir).is_file():
        if not _torch_file(Path(run_dir)):  # a model.pt itself is taken (best.pth too); a
            raise a_file(Path(run_dir))  # summary.json or an image is not
        path = Path(run_dir)
    if not Path(run_dir).exists():
        raise MnistlabError(f"{run_dir}: no such folder; give a run folder (what `mnistlab "
                            "train --out DIR` writes)")
    if not path.is_file():
        raise MnistlabError(_no_model(Path(run_dir), path))
    if path.stat().st_size > MAX_MODEL_BYTES:  # before torch.load reads it all into memory
        raise MnistlabError(f"{path}: {path.stat().st_size / 1e9:.1f} GB, larger than any model "
                            f"mnistlab makes (at most {MAX_PARAMETERS:,} parameters); it is "
                            "not an mnistlab model file")
    payload = _safe_load(path, FIX_DAMAGED)
    made = payload.get("format")
    if isinstance(made, str) and made.startswith("mnistlab-model-") and made != MODEL_FORMAT:
        number = made.removeprefix("mnistlab-model-")
        later = not number.isdigit() or int(number) > int(MODEL_FORMAT.rsplit("-", 1)[1])
        raise MnistlabError(f"{path}: made by {'a later' if later else 'an earlier'} version of "
                            f"mnistlab (model format {made!r}; this one, {__version__}, reads "
                            f"{MODEL_FORMAT!r}); read it with the version that made it, or "
                            + ("upgrade mnistlab" if later else "train the model again"))
    if made != MODEL_FORMAT:
        raise MnistlabError(f"{path}: not an mnistlab model file (format "
                            f"{payload.get('format')!r}, expected {MODEL_FORMAT!r}); give a "
                            "folder `mnistlab train --out DIR` wrote, or its model.pt")
    config, shape = _model_fields(payload, path)
    try:
        model = build_model(config, shape, len(payload["class_names"]), device="cpu",
                            training=False)
    except MnistlabError as exc:
        raise MnistlabError(f"{path}: not loaded: {str(exc).removeprefix('model: ')}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # torch's message spans several lines
        raise MnistlabError(f"{path}: damaged or altered model file ({detail[:160]})") from None
    model.eval()
    return model, payload


def _model_fields(payload: dict[str, Any], path: Path) -> tuple[TrainConfig, tuple[int, int, int]]:
    """The config and image shape of a model payload, every field checked for its type."""
    def altered(problem: str) -> MnistlabError:
        return MnistlabError(f"{path}: damaged or altered model file ({problem}); train the "
                             "model again")

    if not isinstance(payload.get("config"), dict):
        raise altered("config is not a table of settings")
    unknown = sorted(set(payload["config"]) - SETTINGS)
    if unknown:  # a later version's setting, more likely than a hand's
        raise MnistlabError(f"{path}: made with settings this mnistlab ({__version__}) does "
                            f"not know ({first_few(unknown)}): made by a newer version? "
                            "upgrade mnistlab to read it")
    try:
        config = TrainConfig.from_dict(payload["config"], where="config")
    except MnistlabError as exc:
        raise altered(str(exc)) from None
    names = payload.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise altered("class_names is not a list of names")
    shape = payload.get("image_shape")
    if not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)):
        raise altered("image_shape is not three whole numbers >= 1")
    state = payload.get("state_dict")
    if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in state.items())):
        raise altered("state_dict is not a table of tensors")
    if not (_number(payload.get("mean")) and _number(payload.get("std"))):
        raise altered("mean and std are not numbers")
    return config, (shape[0], shape[1], shape[2])


# --- on folders -----------------------------------------------------------------------------
SEARCH_DEPTH = 4  # studies/NAME/runs/KEY/summary.json, from a folder of studies


def run_folders(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """The run folders (holding summary.json) under `root`, at most `depth` folders down,
    in order; hidden folders are skipped, and so are the copies MLflow keeps of logged runs
    (mlartifacts) and the TensorBoard logs: not runs of their own."""
    return _finished_runs(_folders_below(root, depth))


def _folders_below(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """Every folder under `root`, at most `depth` down, but those run_folders skips."""
    found, level = [], [root]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                below += sorted(p for p in folder.iterdir() if p.is_dir() and not
                                p.name.startswith(".") and p.name not in TRACKING_ENTRIES)
            except OSError:  # unreadable: not ours to examine
                continue
        found += below
        level = below
    return found


def _finished_runs(folders: list[Path]) -> list[Path]:
    return sorted(c for c in folders if (c / "summary.json").is_file() and _ours(c))


def _stopped_runs(folders: list[Path]) -> list[Path]:
    """Runs begun and stopped before any summary (a checkpoint.pt, no summary.json)."""
    return sorted(c for c in folders
                  if (c / "checkpoint.pt").is_file() and not (c / "summary.json").exists())


def _lost_summaries(folders: list[Path]) -> list[Path]:
    """Runs that finished and lost their summary.json (deleted): their model or metrics are
    written as a run ends, and no checkpoint resumes them; `doctor` on a study passed over
    them without a word."""
    return sorted(c for c in folders if not (c / "summary.json").exists()
                  and not (c / "checkpoint.pt").exists() and not files.held(c / LOCK_FILE)
                  and any((c / name).is_file() for name in ("model.pt", "metrics.csv"))
                  and _ours(c))


def _gone_from_studies(folders: list[Path]) -> list[Path]:
    """The run folders a study's store (study.db, of each study folder in `folders`) records
    and that are gone: deleted or moved by hand."""
    import sqlite3

    gone = []
    for study in (f for f in folders if (f / "study.db").is_file()):
        try:
            with files.read_only_sqlite(study / "study.db") as db:
                keys = [k for (k,) in db.execute("SELECT key FROM runs")]
        except sqlite3.Error:  # damaged or another schema: the study command says so
            continue
        gone += [study / "runs" / k for k in keys
                 if isinstance(k, str) and not (study / "runs" / k).exists()]
    return sorted(gone)


def recorded_data_folder(run_dir: Path, dataset: str) -> Path | None:
    """The folder a study's or a search's run read its relative dataset path from, as the
    study's store or the search's search.json recorded it (data.dataset.relative_folders),
    where it is still there; None for any other run. `evaluate` of such a run from another
    working folder said its data was gone, or read another folder of that name there."""
    import sqlite3

    owner = files.owner_of(run_dir)
    folders: Any = {}
    try:
        if owner is not None and owner[1] == "study" and (owner[0] / "study.db").is_file():
            with files.read_only_sqlite(owner[0] / "study.db") as db:
                row = db.execute(
                    "SELECT value FROM meta WHERE name = 'dataset_folders'").fetchone()
            folders = json.loads(row[0]) if row else {}
        elif owner is not None and owner[1] == "tune":
            folders = json.loads((owner[0] / "search.json").read_text()).get(
                "dataset_folders", {})
    except (sqlite3.Error, OSError, ValueError, AttributeError):
        return None
    folder = folders.get(dataset) if isinstance(folders, dict) else None
    return Path(folder) if isinstance(folder, str) and Path(folder).is_dir() else None


# keys of a summary.json only mnistlab writes (one of them is enough, the file cut short)
OUR_SUMMARY_KEYS = ("epochs_planned", "code_version", "loss_trace", "train_accuracy_running",
                    "val_label_counts")


def _ours(folder: Path) -> bool:
    """Whether a folder holding run files is one mnistlab wrote: a run writes config.toml as
    it starts and model.pt or checkpoint.pt as it trains; without them (lost), its
    summary.json or metrics.csv says so by its own fields. Another tool's summary.json or
    metrics.csv (a PyTorch Lightning version_0/) is not one."""
    if any((folder / name).is_file() for name in ("config.toml", "model.pt", "checkpoint.pt")):
        return True
    try:
        with open(folder / "metrics.csv", encoding="utf-8", errors="replace") as f:
            header = f.readline().strip().split(",")
        if set(HISTORY_REQUIRED) <= set(header):
            return True
    except OSError:
        pass
    try:  # a damaged file of ours (not JSON) is ours too: one with our run's own fields
        text = _read_text(folder / "summary.json")[:100_000]
    except (OSError, MnistlabError):
        return False
    return any(f'"{key}"' in text for key in OUR_SUMMARY_KEYS)


def _training_now(path: str | Path) -> MnistlabError:
    return MnistlabError(f"{path}: a run training now (another process holds its folder); "
                         "examine it once it has finished")


def _no_runs_yet(root: Path, marker: tuple[str, ...], what: str, command: str) -> str:
    """Why a study or search folder holds no finished run folder, and what to do: it runs
    now (a study holds its lock; a search has trials running), its trials are done but keep
    no folder (a search's are scored in memory: run folders come from retraining its best
    configuration), or it stopped before any."""
    if marker == ("study.db",):
        if files.held(root / "study.lock"):
            return (f"{what} is running in this folder now and none of its runs has finished "
                    "yet; examine it once some have")
        return (f"{what} stopped before its first run finished; run the same `{command}` "
                "command again to resume it, then examine it")
    # a shared storage's trials (search.json) are in a server, not read here
    states = {} if marker == SEARCH_MARK else _trial_states(root / marker[0])
    running, done = states.get("RUNNING", 0), states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    if running:
        return (f"{what} with {running} trial{'s' * (running != 1)} running now (or killed "
                f"while running) and {done} finished; its run folders come when it retrains "
                "its best configuration at the end: examine it then")
    retrain = root / "retrain"
    if files.held(root / SEARCH_REPORT_LOCK) or retrain.is_dir() and any(
            files.held(run / LOCK_FILE) for run in retrain.iterdir()
            if run.is_dir()):  # it said to run the command again
        return (f"{what} retraining its best configuration now (retrain/); examine it once that "
                "has finished")
    if marker == SEARCH_MARK:  # its trials, in a server, are not counted here
        return (f"{what} whose trials are stored in {_storage_of(root)} (search.json), and no "
                "run folder yet: its run folders come from retraining its best configuration "
                "(retrain/), which --no-report or --retrain-seeds 0 leaves out, as does a "
                f"stop before it; run the same `{command}` command again without those to "
                "retrain it, then examine it")
    if done:
        return (f"{what} of {done} finished trial{'s' * (done != 1)} and no run folder: a "
                "search's trials keep none, its run folders come from retraining its best "
                "configuration (retrain/), which --no-report or --retrain-seeds 0 leaves out, "
                f"as does a stop before it; run the same `{command}` command again without "
                "those to retrain it, then examine it")
    return (f"{what} stopped before its first trial finished; run the same `{command}` "
            "command again to resume it, then examine it")


def _storage_of(root: Path) -> str:
    """The storage a search folder's search.json names (its password already left out)."""
    try:
        storage = json.loads((root / "search.json").read_text("utf-8")).get("storage")
    except (OSError, ValueError, AttributeError):
        storage = None
    return storage if isinstance(storage, str) else "the storage its command named"


def _trial_states(store: Path) -> dict[str, int]:
    """How many of a search's trials are in each Optuna state, read from its tune.db; {} if
    it cannot be read (not SQLite, another schema, locked)."""
    import sqlite3

    try:
        with files.read_only_sqlite(store) as db:
            return dict(db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
    except sqlite3.Error:
        return {}


def examine(path: str | Path) -> dict[str, list[Finding]]:
    """Re-examine a run folder, or every run folder under a study folder.

    A damaged run folder given alone is a one-line error. Under a study folder, a damaged
    run becomes a `damaged-run` finding (a problem) beside the others' findings: the good
    runs are still examined, and the damaged one is named with what to do."""
    root = Path(path)
    if not root.exists():
        raise MnistlabError(f"{path}: no such folder")
    if root.is_file():
        raise a_file(root, "a run, study or tune folder", noun="folder")
    ours, summary = _ours(root), (root / "summary.json").is_file()
    if summary and ours:
        if files.held(root / LOCK_FILE):  # resumed now: "run the same command again" was wrong
            raise _training_now(path)
        return {str(root): examine_run(root)}
    if (summary or (root / "metrics.csv").is_file()) and not ours:
        raise MnistlabError(f"{path}: not a run folder mnistlab wrote (no config.toml, model.pt "
                            "or checkpoint.pt beside its summary.json or metrics.csv: another "
                            "tool's?); give a folder made by `mnistlab train`, `study` or `tune`")
    if root.resolve() in (Path(root.resolve().anchor), Path.home().resolve()):
        raise MnistlabError(f"{path}: the whole disk or home folder; give a run, study or tune "
                            "folder (or a folder of them)")
    below = _folders_below(root)  # one walk, for the runs finished and those stopped early
    run_dirs = _finished_runs(below)
    lost = _lost_summaries(below) + _gone_from_studies([root, *below])  # named, not "no runs"
    resumable = any((root / name).is_file() for name in ("config.toml", "checkpoint.pt"))
    if not run_dirs and resumable and not (root / "study.db").is_file():
        if files.held(root / LOCK_FILE):  # the command that would resume it is refused
            raise _training_now(path)
        if replacement_waiting(root):
            raise MnistlabError(f"{path}: an --overwrite here was stopped before the new run's "
                                f"first whole epoch (killed); the run it was to replace is set "
                                f"aside in {REPLACED_FOLDER}/, and the next `mnistlab train "
                                f"--out {path}` puts it back first")
        raise MnistlabError(f"{path}: a run that has not finished (no summary.json: stopped, "
                            "killed or out of memory); run the same train command again to "
                            "resume it, then examine it")
    if not run_dirs and ours:  # our metrics.csv or model.pt alone: nothing resumes it
        raise damaged(root, "no summary.json nor config.toml beside its files")
    made_by = next((kind for kind in MANY_RUNS if files.marked(root, kind[0])), None)
    if not run_dirs and not lost and made_by:
        raise MnistlabError(f"{path}: {_no_runs_yet(root, *made_by[:3])}")
    if not run_dirs and not lost:
        raise MnistlabError(f"{path}: no run folders here (looked for summary.json, "
                            f"{SEARCH_DEPTH} folders deep)")
    out: dict[str, list[Finding]] = {}
    for run_dir in run_dirs:
        try:
            out[str(run_dir)] = examine_run(run_dir)
        except MnistlabError as exc:
            out[str(run_dir)] = [_damaged_finding(run_dir, exc)]
    for run_dir in lost:
        out[str(run_dir)] = [_damaged_finding(run_dir, damaged(
            run_dir / "summary.json" if run_dir.is_dir() else run_dir,
            "missing, where the run's model or metrics are there" if run_dir.is_dir()
            else "gone, where the study's store records its run"))]
    study_running = files.held(root / "study.lock")
    for run_dir in _stopped_runs(below):  # killed before any summary (or training now)
        now = ("training" if files.held(run_dir / LOCK_FILE) else
               "study-running" if study_running else "")  # a cohort's, or one waiting its turn
        out[str(run_dir)] = [unfinished(_whole_epochs(run_dir), _planned_epochs(run_dir),
                                        now=now)]
    return dict(sorted(out.items()))


def _whole_epochs(run_dir: Path) -> int:
    """The epochs a run killed before its summary finished: with one or more it resumes from
    the last, with none it starts over. Its epoch checkpoint holds them (metrics.csv is
    written when a run ends, so a killed run has none); it is saved at an epoch's end only."""
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        return 0
    try:
        return max(1, len(_safe_load(checkpoint)["histories"][0]))
    except (MnistlabError, KeyError, IndexError, TypeError):  # train says what to do with it
        return 1


def _planned_epochs(run_dir: Path) -> int:
    stored = _stored_config(run_dir)
    return stored.epochs if stored is not None else 0


def examine_run(run_dir: Path) -> list[Finding]:
    """The findings of one run folder: its stored diagnoses merged with a fresh diagnosis.
    Raises MnistlabError naming the file when one cannot be read back."""
    from .config import load_config

    summary = load_summary(run_dir)
    config_path = run_dir / "config.toml"
    try:
        config = load_config(config_path)
    except MnistlabError as exc:
        # a copy of the settings model.pt holds too (what `train` writes it back from): the
        # run is examined with those; the damage is the model's, if any, said below
        stored = _stored_config(run_dir)
        if stored is None:
            problem = str(exc).removeprefix(f"{config_path}: ").split("; ")[0]
            raise damaged(config_path, problem) from None
        config = stored
    history = load_run_history(run_dir, summary)
    if summary.status == "interrupted":  # "nothing wrong found" for a run stopped at epoch 0
        return doctor.merge(list(summary.diagnoses), [unfinished(summary.epochs, config.epochs)])
    load_model(run_dir)  # a model that cannot be used is a damaged run, whatever its numbers
    return doctor.findings_now(summary, config, history)


def _damaged_finding(run_dir: Path, exc: MnistlabError) -> Finding:
    """A run folder that cannot be read back. A study's or a search's run is not mended with
    --overwrite, which neither command has (the advice said so): its job's command run again
    mends it (a study's from its store)."""
    owner = files.owner_of(run_dir)
    if owner is None:
        return Finding("damaged-run", "problem", {"detail": str(exc)})
    return Finding("damaged-run", "problem", {
        "detail": str(exc).removesuffix(f"; {FIX_DAMAGED}"), "kind": owner[1],
        "run": str(run_dir)})


def unfinished(done: int, planned: int, *, now: str = "") -> Finding:
    """A run stopped before its last epoch; one stopped inside its first starts over (the
    fix said it resumed "from the last whole epoch", where none was). `now`: "training" (a
    process holds its folder) or "study-running" (its study's): not stopped (it was said to
    have been killed, with advice the lock then refused)."""
    if now:
        return Finding("unfinished-run", "info", {"done": done, "planned": planned,
                                                  "kind": now})
    kind = {"kind": "from-start"} if done == 0 else {}
    return Finding("unfinished-run", "warning", {"done": done, "planned": planned, **kind})
