"""One run: `train(config) -> RunResult`, the function studies, searches, Ray tasks and the CLI
all call. The model trains through the epoch engine as a learner of one member."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import files, interrupt, objectives, runs
from ..allocator import keep_freed_memory
from ..config import TrainConfig, folder_given, torch_seed, truth
from ..data import Dataset
from ..data.tensors import Splits, prepare_data
from ..device import (
    autocast,
    public_call,
    resolve_device,
    resolve_precision,
    to_fast_layout,
)
from ..ensemble import Ensemble, average_logits
from ..errors import MnistlabError
from ..messages import check_lang
from ..models import build_model
from ..optim import build_optimizer, build_schedule
from ..progress import Reporter, SilentReporter
from ..records import RunResult
from . import hooks as hk
from .ema import WeightAverage
from .engine import CHECKPOINT_FORMAT, Run, Scores, run_epoch_seed, run_epochs
from .evaluation import evaluate
from .finish import finish_member
from .graphs import GraphedStep, graphs_wanted


class ModelLearner:
    """One model, its optimizer and learning-rate schedule: the engine's learner of one. With
    --ema, also the moving average of its weights, which is what is scored and saved."""

    def __init__(self, config: TrainConfig, splits: Splits, device: torch.device) -> None:
        self.precision = resolve_precision(config.precision, device)
        self.device = device
        torch.manual_seed(torch_seed(config.seed))  # the initial weights: the seed alone
        self.configs = [config]
        self.splits = splits
        self.model = to_fast_layout(build_model(config, splits.image_shape, splits.num_classes,
                                                train_size=len(splits.train_y),
                                                device=device.type), device)
        steps = math.ceil(len(splits.train_y) / config.batch_size) * config.epochs
        self.optimizer = build_optimizer(config, self.model)
        self.scheduler = build_schedule(config, self.optimizer, steps)
        self.loss_fn = objectives.make_loss(config)
        self.binary_metric = objectives.counts_binary(config)
        self.constant_lr = config.schedule == "constant"  # nothing for the scheduler to do
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        # an ensemble's members each draw their own augmentation, as they would alone
        self.input_copies = (self.model.size if isinstance(self.model, Ensemble)
                             and config.augmentation and self.model.takes_own_images else 1)
        # forward, loss and backward, replayed from a CUDA graph on a GPU (graphs.py)
        self.graphed = GraphedStep(self.model, enabled=graphs_wanted(device))

    def epoch_seed(self, epoch: int) -> int:
        return run_epoch_seed(self.configs[0].seed, epoch)

    def learning_rates(self) -> list[float]:
        return [self.optimizer.param_groups[0]["lr"]]

    def step(self, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.model.training:  # a walk over every module: 3% of a study's steps
            self.model.train()
        loss, correct, binary = self.graphed(self._compute, x, y)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        if not self.constant_lr:
            self.scheduler.step()
        return loss, correct, binary

    def _compute(self, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The step up to the optimizer: gradients into .grad; (loss, correct, binary)."""
        with autocast(self.precision, self.device):
            logits, loss, total = self._forward(x, y)
        total.backward()
        with torch.no_grad():
            # the binary count costs a softmax per step: only when that metric was asked for
            binary = (objectives.binary_correct_count(logits, y).reshape(1)
                      if self.binary_metric else None)
            return (loss.detach().reshape(1), objectives.correct_count(logits, y).reshape(1),
                    binary)

    def _forward(self, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, the loss to report, the loss to differentiate). An ensemble's members each
        take their own loss, summed so that no gradient crosses members; it reports their mean
        and counts what the averaged softmax gets right."""
        if not isinstance(self.model, Ensemble):
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            return logits, loss, loss
        members = self.model.member_logits(x)
        n, batch, k = members.shape
        loss = self.loss_fn(members.reshape(n * batch, k), y.repeat(n))
        return average_logits(members.detach()), loss, loss * n

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Scores:
        config, splits = self.configs[0], self.splits
        result = evaluate(self.member_model(0), x, y, config, splits.mean, splits.std,
                          splits.num_classes)
        return Scores([result.loss], [result.accuracy], [result.metric], [result.predictions])

    def stop_member(self, member: int) -> None:
        pass  # a diverged model keeps its weights: the doctor and the files show them

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict()}
        if self.average is not None:
            state["average"] = self.average.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])

    def member_model(self, member: int) -> nn.Module:
        """The model that is scored and saved: the weights' moving average with --ema, else
        the trained weights themselves."""
        return self.average.module if self.average is not None else self.model


@public_call("train")
@interrupt.scoped
def train(config: TrainConfig, *, out: str | Path | None = None, dataset: Dataset | None = None,
          splits: Splits | None = None, reporter: Reporter | None = None,
          evaluate_test: bool = True, overwrite: bool = False, write_plots: bool = True,
          hooks: list[hk.Hook] | None = None, refuse_damaged: bool = False,
          named_by_settings: bool = False, lang: str = "en", progress: bool = False
          ) -> RunResult:
    """Train one model. With `out`, write the run folder and an epoch checkpoint for resuming.

    `out` may be new, empty, or a run folder of this same configuration: an interrupted run
    resumes from its last epoch, a finished one is read back (nothing is trained). A folder of
    another configuration is refused unless `overwrite`; anything else is refused. While the
    run trains, the folder is locked against a second process.
    `evaluate_test=False` keeps the test set untouched (study runs other than the final one);
    `write_plots=False` skips curves.png/confusion.png (a study draws its own); `lang` is
    their words' language ("en", "es"); `hooks` plug
    into the run's moments (see training/hooks.py), in their order, each moment reaching them
    first: before the progress lines and the live doctor (an epoch's findings are in
    `run.findings` from the next moment on), and before the checkpoint.
    `refuse_damaged`: a finished run whose summary.json, model.pt or metrics.csv cannot be read
    is refused (the train command) rather than trained again (a study's or a search's run).
    `named_by_settings`: `out` is a study's or search's run folder, named after its settings,
    so one holding another configuration was edited by hand (said so, without --overwrite).
    `progress=True` draws the command's bar and a line per epoch on standard error (as
    run_study's and predict's do); a `reporter` of your own is told each moment instead.
    Ctrl-C (or `interrupt.request()`) ends the run after the current step; what was computed
    is kept and written, the unfinished epoch marked as such in the summary. An `overwrite`
    stopped so before its first whole epoch puts the run it replaced back and raises
    runs.ReplacementStopped.
    """
    reporter = _reporter(progress, reporter, lang)
    hooks = _check_arguments(config, dataset, hooks, reporter, overwrite=overwrite,
                             evaluate_test=evaluate_test, write_plots=write_plots,
                             refuse_damaged=refuse_damaged, named_by_settings=named_by_settings)
    _check_named_data(config, dataset)
    check_lang(lang)  # before training: the figures are drawn at its end
    if out is None:
        return _train(config, None, dataset, splits, reporter, evaluate_test, write_plots,
                      hooks or [], resume=False, lang=lang)
    out_dir = folder_given("out", out)
    config.check_writable()  # settings config.toml cannot hold: said before the folder
    resolve_device(config.device)  # a device not here: said before the folder is made
    flag = "" if named_by_settings else "--out"  # a study's or search's: not the user's --out
    runs.check_run_folder(out_dir, flag)  # before anything is written into it
    try:
        files.check_output_folder(out_dir, flag)
    except MnistlabError:  # read-only (a shared copy): its finished run is read, not refused
        finished = (None if overwrite else
                    runs.finished_result(out_dir, config, needs_test=evaluate_test))
        if finished is None:
            raise
        if write_plots and not runs.figures_in(out_dir, lang):  # they cannot be redrawn
            warnings.warn(f"{out_dir}: its figures stay in their first language: the folder "
                          "cannot be written (copy it somewhere writable to redraw them)",
                          stacklevel=2)
        return finished
    with files.exclusive(out_dir / runs.LOCK_FILE, "a training run"):
        files.remove_stale_temps(out_dir)  # a killed run's (a 70 MB checkpoint's): held now
        state = runs.claim_run_folder(out_dir, config, overwrite=overwrite,
                                      needs_test=evaluate_test, refuse_damaged=refuse_damaged,
                                      named_by_settings=named_by_settings)
        if state == "finished":
            try:
                kept = runs.load_result(out_dir, config)
            except MnistlabError:  # its model.pt or metrics.csv damaged: the train command
                if refuse_damaged:  # refuses; a study's or a search's run is trained again
                    raise
            else:
                kept = _kept_data(kept, config, dataset, out_dir)
                if write_plots:
                    runs.redraw_in_language(out_dir, kept, lang)
                return kept
        return _train(config, out_dir, dataset, splits, reporter, evaluate_test, write_plots,
                      hooks or [], resume=state == "resume", replace=state == "replace",
                      lang=lang)


def _reporter(progress: Any, reporter: Any, lang: str) -> Any:
    """The reporter `progress=True` asks for: the command's (hunt: train(progress=True), as
    run_study and predict take it, was a TypeError, and the bar reachable only through a
    class the docs did not name)."""
    if not isinstance(progress, (bool, int)) or (progress and reporter is not None):
        raise MnistlabError("progress: True (the command's bar) or False; give it or a "
                            "reporter, not both")
    if not progress:
        return reporter
    from ..progress import RichReporter

    return RichReporter(lang=check_lang(lang))


def _check_arguments(config: Any, dataset: Any, hooks: Any, reporter: Any,
                     **truths: Any) -> list[hk.Hook]:
    """What Python code gives train() of the kinds it takes, in one line each: a dict for the
    config, a dataset's name, a plain function as a hook or reporter failed deep inside, and
    overwrite="no" (a text is true) replaced a finished run. The hooks as a list (a generator
    of them too; an object with every moment of a Hook is taken as one)."""
    if reporter is not None and (isinstance(reporter, type) or not all(
            callable(getattr(reporter, moment, None)) for moment, v in vars(Reporter).items()
            if callable(v) and not moment.startswith("_"))):
        raise MnistlabError(f"reporter: give a mnistlab.progress.Reporter (subclass it and "
                            f"override the moments you need, such as epoch_ended), or leave it "
                            f"out, not {type(reporter).__name__}")
    if not isinstance(config, TrainConfig):
        raise MnistlabError(f"config: give a TrainConfig (e.g. TrainConfig(model=\"mlp\"), or "
                            f"mnistlab.load_config(path) for a file), not "
                            f"{type(config).__name__}")
    if dataset is not None and not isinstance(dataset, Dataset):
        raise MnistlabError(f"dataset: give a Dataset (mnistlab.load_dataset(...)) or leave it "
                            f"out to read the config's dataset, not {type(dataset).__name__}")
    listed = list(hooks) if isinstance(hooks, Iterable) and not isinstance(hooks, str) else \
        [] if hooks is None else None
    if listed is None or not all(_is_hook(h) for h in listed):
        raise MnistlabError("hooks: give a list of mnistlab.Hook objects (subclass it and "
                            "override the moments you need, such as on_epoch_end)")
    for name, value in truths.items():
        truth(name, value)
    return listed


def _is_hook(hook: Any) -> bool:
    """A Hook, or an object with every moment of one (not a class: hooks=[MyHook] without
    the parentheses failed at the first moment, its `self` missing)."""
    return isinstance(hook, hk.Hook) or not isinstance(hook, type) and all(
        callable(getattr(hook, moment, None)) for moment in vars(hk.Hook)
        if moment.startswith("on_"))


def _check_named_data(config: TrainConfig, dataset: Dataset | None) -> None:
    """A Dataset given beside a config naming other data (fashion-mnist given, mnist named;
    a folder's, mnist or another folder named) trained on the one and recorded the other in
    the run's folder."""
    from ..data.sources import KNOWN_DATASETS

    if dataset is None:
        return
    # a folder's data (not MNIST's own files, which may lie anywhere) under another name, a
    # folder called mnist too: the run folder said "mnist", and evaluate and --config read MNIST
    source = Path(dataset.source) if dataset.source else None
    if (source is not None and source.is_dir() and not dataset.published
            and (config.dataset in KNOWN_DATASETS
                 or Path(config.dataset).expanduser().resolve() != source.resolve())):
        raise MnistlabError(f"dataset: read from {dataset.source}, but the config names "
                            f"{config.dataset}, which its run folder records (and evaluate "
                            f"reads); give config.replace(dataset={dataset.source!r})")
    if (dataset.name != config.dataset
            and {dataset.name, config.dataset} <= set(KNOWN_DATASETS)):
        raise MnistlabError(f"dataset: {dataset.name} given, but the config names "
                            f"{config.dataset}, which its run folder records; give "
                            f"config.replace(dataset={dataset.name!r})")


def _kept_data(result: RunResult, config: TrainConfig, dataset: Dataset | None,
               out_dir: Path) -> RunResult:
    """A finished run read back, where it was trained on the data asked for: one trained on
    a Dataset given in place of the config's was handed back as the config's own."""
    from ..data.sources import KNOWN_DATASETS

    kept = result.summary.dataset
    asked = dataset.name if dataset is not None else (
        config.dataset if config.dataset in KNOWN_DATASETS else None)
    if kept and asked and kept != asked:
        raise MnistlabError(f"{out_dir}: holds a run of these settings trained on {kept}, not "
                            f"{asked}; give another folder, or overwrite it (--overwrite, "
                            "overwrite=True) to train it again")
    return result


def _train(config: TrainConfig, out_dir: Path | None, dataset: Dataset | None,
           splits: Splits | None, reporter: Reporter | None, evaluate_test: bool,
           write_plots: bool, user_hooks: list[hk.Hook], *, resume: bool,
           replace: bool = False, lang: str = "en") -> RunResult:
    keep_freed_memory()
    device = resolve_device(config.device)
    splits = splits or prepare_data(config, dataset, device)
    if splits.published:  # a copy of MNIST given by its path is MNIST: no flip (not when a
        config.check_flip(splits.dataset_name)  # run trained so before is scored: evaluate)
    learner = ModelLearner(config, splits, device)
    if replace and out_dir is not None:  # the data and the model are there: the old run is
        # set aside until this one has a whole epoch
        runs.replace_run(out_dir, config)
    if write_plots and out_dir is not None:
        from .. import figures  # noqa: F401 - now: a Ctrl-C inside matplotlib's C start-up
        # (while the run's files are written at the end) aborts the interpreter
    hooks: list[hk.Hook] = [*user_hooks, hk.Progress(reporter or SilentReporter()),
                            hk.LiveDoctor()]
    if config.early_stopping:
        hooks.append(hk.EarlyStopping(config.early_stopping))
    checkpoint = out_dir / "checkpoint.pt" if out_dir is not None else None
    if checkpoint is not None:
        hooks.append(hk.Checkpoint(checkpoint))  # last: it saves what the others decided
    run = Run.start(learner, splits, hooks)
    if resume and checkpoint is not None and checkpoint.exists():
        run.restore(runs.load_checkpoint(checkpoint, [config], CHECKPOINT_FORMAT))
    try:
        run_epochs(run)
        result = finish_member(run, 0, learner.member_model(0), evaluate_test=evaluate_test,
                               out=out_dir, write_plots=write_plots, lang=lang)
    except BaseException:
        if out_dir is not None:  # a replaced run back unless an epoch was saved
            runs.settle_replaced(out_dir)
        raise
    if out_dir is not None:
        _settle_replacement(out_dir, result)
    return result


def _settle_replacement(out: Path, result: RunResult) -> None:
    """After an --overwrite run: the replaced run goes, unless this one was stopped before
    its first whole epoch (a partial epoch that resumes from the start): it is then put back
    as it was, and the stop is said."""
    stopped_early = result.summary.status == "interrupted" and result.summary.epochs == 0
    if runs.settle_replaced(out, keep_new=not stopped_early):
        raise runs.ReplacementStopped(
            f"interrupted before the new run's first whole epoch: the run it was to replace is "
            f"kept in {out} as it was; run the command again to replace it",
            exit_code=interrupt.exit_code())
