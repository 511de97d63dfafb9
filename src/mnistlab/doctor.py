"""The training doctor: pure functions from numbers a run already has to named findings.

Each finding has a stable `code`, a severity (`problem` > `warning` > `info`), the evidence
(the numbers that triggered it), an explanation and a fix, in English and Spanish. The checks
run before training (`preflight`), after the first steps (`early_check`), at the end of each
epoch and of the run (`diagnose`); `runs.examine` applies them to finished run folders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import TrainConfig
from .data.tensors import Splits, to_input  # the exact transform training uses
from .messages import known_classes
from .records import EpochRecord, Finding, Observation, RunSummary

SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
FASHION_TRAIN_COUNTS = (6000,) * 10


def chance_bce(k: int) -> float:
    """Binary cross-entropy per output when every output predicts the class prior 1/K."""
    p = 1.0 / k
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def softmax_twice_floor(k: int) -> float:
    """Lowest cross-entropy reachable when probabilities are fed in as logits: ln(1+(K-1)/e)."""
    return math.log(1 + (k - 1) / math.e)


# The order among findings of equal severity, most telling first. Their words (title, evidence,
# explanation, fix, in English and Spanish) are in the message catalogue (messages.toml), under
# finding.<code>.*.
RANK = {code: rank for rank, code in enumerate((
    "binary-accuracy-illusion", "diverged", "unnormalised-input", "labels-out-of-range",
    "softmax-twice", "held-back", "not-learning", "no-signal", "overshot", "collapse",
    "wrong-dataset",
    "too-slow", "members-at-chance", "few-steps", "overfitting", "loss-metric-mismatch",
    "lr-out-of-range",
    "val-above-train", "damaged-run", "unfinished-run"))}

# what labels without signal look like; a run with --shuffle-labels is told that is why
NO_SIGNAL = ("binary-accuracy-illusion", "not-learning", "no-signal", "collapse")

LR_RANGES = {"sgd": (1e-3, 1.0), "adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2)}
# the usual weight decay: L2 added to the gradient (sgd, adam), or decoupled (adamw, scaled by
# the lr); a run at chance with 50x (adamw: 10x) the top of it is told that is why
WD_RANGES = {"sgd": (1e-5, 1e-3), "adam": (1e-5, 1e-3), "adamw": (1e-2, 0.1)}
HEAVY_DROPOUT = 0.7
EXTREME_DROPOUT = 0.85  # most of the units dropped: no run learns well through it


def slow_lr(config: TrainConfig) -> float:
    """At or below this learning rate a stalled first epoch is blamed on the step size."""
    if config.optimizer == "sgd":  # plain SGD at 0.001 is slow but still learns in a few epochs
        return 5e-4 if config.momentum == 0 else 5e-5
    return 5e-6


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], RANK[f.code]))


def merge(old: list[Finding], new: list[Finding]) -> list[Finding]:
    """Union by code; a later finding with the same code replaces the earlier (fresher numbers)."""
    by_code = {f.code: f for f in old}
    by_code.update({f.code: f for f in new})
    return sort_findings(list(by_code.values()))


# what the end-of-run rules decide from a run's epochs alone (RULES; "diverged" is also said
# while training, and the checks before training see what the epochs do not)
END_OF_RUN = frozenset({"binary-accuracy-illusion", "too-slow", "not-learning", "collapse",
                        "softmax-twice", "overfitting", "val-above-train", "no-signal",
                        "members-at-chance", "held-back", "few-steps", "overshot"})


def reexamined(stored: list[Finding], fresh: list[Finding]) -> list[Finding]:
    """A finished run's stored findings with a fresh end-of-run diagnosis: the fresh one
    decides the codes its rules decide (a finding an earlier version's rule made, which this
    one's does not, is dropped: "up to — points" under a tolerance no longer used), the
    others are kept."""
    return merge([f for f in stored if f.code not in END_OF_RUN], fresh)


def findings_now(summary: RunSummary, config: TrainConfig,
                 history: list[EpochRecord]) -> list[Finding]:
    """A finished run's findings as this version tells them (`mnistlab doctor`, a study's
    report rebuilt): its stored ones with a fresh diagnosis of its epochs."""
    return reexamined(list(summary.diagnoses),
                      diagnose(config, history, summary.observation()))


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "problem"]


# --- before training ------------------------------------------------------------------------
def preflight(config: TrainConfig, splits: Splits) -> list[Finding]:
    """Input range, labels vs outputs, loss/metric fit, learning-rate range, dataset identity."""

    findings: list[Finding] = []
    k = splits.num_classes
    sample = to_input(splits.train_x[:512], config, splits.mean, splits.std)
    lo, hi = float(sample.min()), float(sample.max())
    if hi > 20:
        findings.append(Finding("unnormalised-input", "problem", {"lo": lo, "hi": hi}))
    max_label = int(splits.train_y.max()) if len(splits.train_y) else 0
    if max_label >= k:
        findings.append(Finding("labels-out-of-range", "problem", {"max_label": max_label, "k": k}))
    if config.loss != "ce" or config.metric != "accuracy":
        # which of the two is wrong: BCE with categorical accuracy was told that binary
        # accuracy "rewards answering no everywhere" (hunt)
        kind = ("softmax" if config.loss == "ce-on-softmax" else
                "bce-only" if config.metric == "accuracy" else
                "metric-only" if config.loss == "ce" else "")
        findings.append(Finding("loss-metric-mismatch", "warning", {
            "loss_name": config.loss, "metric_name": config.metric,
            **({"kind": kind} if kind else {})}))
    lo_lr, hi_lr = LR_RANGES[config.optimizer]
    if not (lo_lr / 10 <= config.lr <= hi_lr * 10):
        findings.append(Finding("lr-out-of-range", "warning", {
            "optimizer": config.optimizer, "lr": config.lr, "lo": lo_lr, "hi": hi_lr}))
    identity = dataset_identity(splits.dataset_name, splits.train_label_counts())
    if identity:
        findings.append(Finding("wrong-dataset", "problem", {"kind": identity}))
    return sort_findings(findings)


def dataset_identity(name: str, counts: list[int]) -> str:
    """"fashion-as-mnist" or "mnist-as-fashion" when the class histogram of a 60,000-image
    training set is the other dataset's; "" otherwise."""
    if len(counts) != 10 or sum(counts) != 60000:
        return ""
    if name == "mnist" and tuple(counts) == FASHION_TRAIN_COUNTS:
        return "fashion-as-mnist"
    if name == "fashion-mnist" and tuple(counts) == MNIST_TRAIN_COUNTS:
        return "mnist-as-fashion"
    return ""


# --- during training ------------------------------------------------------------------------
def early_check(losses: list[float], k: int, config: TrainConfig) -> list[Finding]:
    """After the first steps: a loss that is already non-finite or climbing."""
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < len(losses):
        return [Finding("diverged", "problem", {"kind": "nan-early", "steps": len(losses)})]
    if len(finite) >= 20:
        head = sum(finite[:5]) / 5
        tail = sum(finite[-5:]) / 5
        if tail > 3 * head and tail > 3 * math.log(k):
            return [Finding("diverged", "problem", {"kind": "climb-early", "head": head,
                                                    "tail": tail, "steps": len(finite)})]
    return []


EXPLOSION = 100.0  # a loss this many times the first step's loss has blown up


def diverging(value: float, first: float, trace: list[list[float]], k: int) -> bool:
    """The check training runs at each sampled step."""
    return (not math.isfinite(value) or value > EXPLOSION * max(first, 1.0)
            or rising_loss(trace, k) is not None)


def rising_loss(trace: list[list[float]], k: int) -> dict[str, float] | None:
    """A loss far above ln K for the last several trace points (divergence without NaN): the
    finding's numbers, or None."""
    values = [v for _, v in trace[-8:]]
    if len(values) == 8 and min(values) > 10 * math.log(k) and values[-1] >= values[0]:
        return {"kind": "rising", "limit": 10 * math.log(k), "start": values[0],
                "end": values[-1]}
    return None


def _how_it_diverged(trace: list[list[float]], k: int) -> dict[str, Any]:
    """The numbers of a run stopped as diverged, from its loss trace."""
    step, value = trace[-1]
    first = trace[0][1]
    if not math.isfinite(value):
        # as text ("nan", "inf"): JSON has no such number, and the finding must say which
        return {"kind": "nonfinite", "value": str(value), "step": int(step)}
    if value > EXPLOSION * max(first, 1.0):
        return {"kind": "exploded", "first": first, "value": value, "step": int(step)}
    return rising_loss(trace, k) or {"kind": "stopped", "step": int(step)}


# --- after training -------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A finished (or just-ended) epoch of a run, as the end-of-run rules read it."""

    config: TrainConfig
    history: list[EpochRecord]
    observed: Observation
    k: int  # classes
    chance: float  # the accuracy of always answering the most frequent validation class

    @property
    def last(self) -> EpochRecord:
        return self.history[-1]

    @property
    def lnk(self) -> float:  # the loss of predicting the prior 1/K everywhere
        return math.log(self.k)

    @property
    def steps(self) -> int:
        """Optimizer steps in all, by the run's training size (0: not recorded)."""
        return _steps_in_first_epoch(self.observed, self.config) * len(self.history)


def diagnose(config: TrainConfig, history: list[EpochRecord],
             observed: Observation) -> list[Finding]:
    """All end-of-run signatures, most important first."""
    k = len(observed.class_names) or 10
    if observed.status == "diverged":
        how = _how_it_diverged(observed.loss_trace or [[0, math.nan]], k)
        return [Finding("diverged", "problem", {**how, "stopped": True})]
    if not history:
        return []
    labels = observed.val_label_counts or []
    chance = max(1.0 / k, max(labels) / sum(labels)) if labels and sum(labels) else 1.0 / k
    case = Case(config, history, observed, k, chance)
    findings: list[Finding] = []
    for rule in RULES:  # in order: a later rule may look at what an earlier one found
        found = rule(case, findings)
        if found is not None:
            findings.append(found)
    if config.shuffle_labels:  # the cause is known: the fix is not the lr or the pipeline
        findings = [Finding(f.code, f.severity, {**f.values, "cause": "shuffled"})
                    if f.code in NO_SIGNAL else f for f in findings]
    return sort_findings(findings)


def binary_accuracy_illusion(case: Case, found: list[Finding]) -> Finding | None:
    """The reported metric is 1 - 1/K and the BCE loss that of predicting 1/K everywhere."""
    seen, last = case.observed, case.last
    if (case.config.metric != "binary-accuracy" or seen.val_metric is None
            or seen.val_loss is None):
        return None
    expected, bce = 1 - 1 / case.k, chance_bce(case.k)
    if abs(seen.val_metric - expected) <= 0.01 and (
            abs(last.train_loss - bce) <= 0.03 or abs(seen.val_loss - bce) <= 0.03):
        true_acc = seen.val_accuracy if seen.val_accuracy is not None else math.nan
        values = {"metric": seen.val_metric, "expected": expected, "loss": last.train_loss,
                  "bce": bce, "true_acc": true_acc}
        if true_acc > case.chance + 0.1:  # it learns, and the reported figure hides it (it
            values["kind"] = "learning"  # was told "it has learned nothing" beside 0.37)
        return Finding("binary-accuracy-illusion", "problem", values)
    return None


def too_slow(case: Case, found: list[Finding]) -> Finding | None:
    """The first epoch barely moved the loss, with a learning rate at the low end."""
    config = case.config
    drop = first_epoch_drop(case.observed.loss_trace, _steps_in_first_epoch(case.observed,
                                                                           config))
    if (drop is not None and drop[0] < 0.05 and drop[1] > 0.5 * case.lnk
            and config.lr <= slow_lr(config) * 1.0001):
        values = {"drop": drop[0], "first": drop[1], "last": drop[2],
                  "optimizer": config.optimizer, "lr": config.lr}
        if drop[0] <= 0:  # "fell only -0.2%" would read as a typo: say it did not fall
            values |= {"kind": "no-fall", "rise": -drop[0]}
        return Finding("too-slow", "problem", values)
    return None


def held_back(case: Case, found: list[Finding]) -> Finding | None:
    """A run near chance whose settings are enough to explain it: weight decay that shrinks
    the weights faster than they learn, dropout of most units, or BCE averaged over K outputs
    under SGD (gradients K times smaller). The rules after it sent such runs to check their
    labels, or to lower the lr (hunt). Only once other explanations are ruled out: a loss that
    spiked (steps too large, said by no-signal), or too few steps to learn anything (review:
    both were blamed on a dropout of 0.7)."""
    config = case.config
    steps = case.steps
    # a setting so far off that more steps would not learn past it is said over a few dozen
    # of them: dropout 0.9 over 64 steps was "not learning: train longer" (hunt); over a
    # handful, their number is what to say (few-steps)
    extreme = steps >= FEW_STEPS // 5 and (
        config.dropout >= EXTREME_DROPOUT
        or (config.optimizer == "adam" and _decay_dominates(config, steps)))
    if (config.shuffle_labels or _any(found, "too-slow") or (0 < steps < FEW_STEPS
                                                             and not extreme)
            or _loss_peak(case) > 2 * case.lnk or _accuracy(case.last) > case.chance + 0.1):
        return None
    usual = WD_RANGES[config.optimizer]
    values: dict[str, Any] = {"epochs": len(case.history), "acc": _accuracy(case.last),
                              "chance": case.chance, "optimizer": config.optimizer,
                              "lr": config.lr}
    if _decay_dominates(config, steps):
        return Finding("held-back", "problem", {
            **values, "kind": "weight-decay", "wd": config.weight_decay,
            "setting": f"--weight-decay {config.weight_decay:g}", "lo": usual[0],
            "hi": usual[1]})
    if config.dropout >= HEAVY_DROPOUT:
        return Finding("held-back", "problem", {
            **values, "kind": "heavy-dropout", "setting": f"--dropout {config.dropout:g}",
            "dropout": config.dropout})
    if config.loss == "bce" and config.optimizer == "sgd":  # Adam scales its own steps
        return Finding("held-back", "problem", {**values, "kind": "bce-loss",
                                                "setting": "--loss bce", "k": case.k})
    return None


def _decay_dominates(config: TrainConfig, steps: int) -> bool:
    """Weight decay far above the usual that, over the run's steps, shrinks the weights by a
    factor e or more on its own: lr x decay x steps (SGD's momentum multiplies its steps;
    AdamW decays by lr x decay each step). Adam adds it to the gradient it normalises, so
    there a decay far above the usual outweighs the gradient at any lr. SGD at lr 0.01 with
    0.06 shrinks by 8% over 141 steps: not what held LeNet-5 back (review)."""
    wd, top = config.weight_decay, WD_RANGES[config.optimizer][1]
    if config.optimizer == "adam":
        return wd > 50 * top
    speed = 1 / (1 - config.momentum) if config.optimizer == "sgd" else 1.0
    if not steps:  # a summary without its training size (review): the usual, far above
        return wd > 50 * top
    return wd > 10 * top and config.lr * wd * steps * speed >= 1


def _loss_peak(case: Case) -> float:
    """The highest finite training loss the run's trace sampled (0 without one)."""
    return max((v for _, v in case.observed.loss_trace or () if math.isfinite(v)), default=0.0)


def not_learning(case: Case, found: list[Finding]) -> Finding | None:
    """Loss ~ ln K and accuracy ~ chance after the first epoch, and the training loss has not
    gone below ln K: a model fed labels without signal does, by memorising its images."""
    first, last, lnk = case.history[0], case.last, case.lnk
    if case.config.loss == "bce" or _any(found, "too-slow", "held-back"):
        return None
    memorising = min(last.train_loss, last.train_loss_eval) < 0.997 * lnk
    stuck = (abs(first.train_loss - lnk) <= 0.05 * lnk
             and _accuracy(first) <= case.chance + 0.03
             and _accuracy(last) <= case.chance + 0.03)
    if stuck and (not memorising or len(case.history) < 3):
        config = case.config  # already what the plain fix advises: say what else to try
        adam = config.optimizer in ("adam", "adamw") and 1e-4 <= config.lr <= 3e-3
        return Finding("not-learning", "problem", {
            "epoch": int(last.epoch), "loss": last.train_loss, "lnk": lnk,
            "acc": _accuracy(last), "chance": case.chance,
            **({"kind": "adam-already", "optimizer": config.optimizer, "lr": config.lr}
               if adam else {})})
    return None


def _accuracy(record: EpochRecord) -> float:
    """Validation accuracy, or the eval-mode train accuracy in a run without validation
    (--val-size 0): read as NaN there, a network stuck at chance was called a label problem."""
    return record.train_accuracy_eval if math.isnan(record.val_accuracy) else record.val_accuracy


def collapse(case: Case, found: list[Finding]) -> Finding | None:
    """90%+ of predictions in one class that is not 90% of the labels."""
    preds, labels = case.observed.val_pred_counts or [], case.observed.val_label_counts or []
    # its cause named (held-back), or steps too small to be the "lr too high" said below
    if not (preds and sum(preds)) or _any(found, "held-back") or _plain_sgd(case):
        return None
    top = max(range(len(preds)), key=lambda i: preds[i])
    label_share = labels[top] / sum(labels) if sum(labels or [0]) else 0
    if preds[top] / sum(preds) >= 0.9 and label_share < 0.5:
        names = case.observed.class_names or [str(i) for i in range(case.k)]
        return Finding("collapse", "problem", {"share": preds[top] / sum(preds),
                                               "cls": names[top],  # said in the finding's
                                               "cls_of": known_classes(names)})  # language
    return None


def softmax_twice(case: Case, found: list[Finding]) -> Finding | None:
    """The loss parked near the floor ln(1+(K-1)/e) with accuracy well above chance
    (cross-entropy on logits at 80% accuracy is far below it; a slow run passing through is
    not the signature)."""
    floor = softmax_twice_floor(case.k)
    if case.config.loss == "ce" and floor < 1.2:
        # with few classes the floor is low (0.55 for 3): a healthy first epoch of
        # cross-entropy on logits lands on it, at 100% accuracy (hunt). Below 8 classes only
        # the loss that applies softmax itself (ce-on-softmax) is told it
        return None
    # the eval-mode loss where there is one: the running one averages a first epoch's early
    # steps, and passed through the band at 80% accuracy in a healthy run (said live, then
    # dropped by the end's diagnosis)
    best = min(_eval_loss(r) for r in case.history)
    accuracy = case.last.train_accuracy_eval
    if floor - 0.02 <= best <= floor + 0.12 and accuracy >= 0.8 and accuracy > case.chance + 0.2:
        return Finding("softmax-twice", "problem", {"loss": best, "floor": floor,
                                                    "acc": accuracy})
    return None


def _eval_loss(record: Any) -> float:
    value = getattr(record, "train_loss_eval", None)
    return value if isinstance(value, float) and math.isfinite(value) else record.train_loss


def rising(case: Case, found: list[Finding]) -> Finding | None:
    """A loss that kept rising without NaN (the run may have completed anyway)."""
    numbers = rising_loss(case.observed.loss_trace, case.k)
    return Finding("diverged", "problem", numbers) if numbers else None


def overfitting(case: Case, found: list[Finding]) -> Finding | None:
    """Eval-mode train accuracy well above validation, and the validation loss rising."""
    history, last = case.history, case.last
    if len(history) < 3:
        return None
    best_index = min(range(len(history)), key=lambda i: history[i].val_loss)
    best = history[best_index]
    gap = last.train_accuracy_eval - last.val_accuracy
    if (gap > 0.03 and best_index <= len(history) - 3
            and last.val_loss > best.val_loss * 1.10):
        stopped = {}  # early stopping gave the run back its best epoch: not "stop earlier"
        shown = last
        if case.observed.status == "early-stopped":
            shown = max(history, key=lambda r: r.val_accuracy)  # the first of the best
            stopped = {"kind": "early-stopped", "kept": int(shown.epoch),
                       "patience": case.config.early_stopping}
        # the kept model's figures, as the summary's (hunt: the discarded last epoch's were
        # quoted under a table of the kept one's); the rising loss is the whole run's
        return Finding("overfitting", "warning", {
            "train": shown.train_accuracy_eval, "val": shown.val_accuracy,
            "gap": shown.train_accuracy_eval - shown.val_accuracy,
            "best_loss": best.val_loss, "best_epoch": int(best.epoch),
            "last_loss": last.val_loss, **stopped})
    return None


def sampling_margin(val: float, n_train: int, n_val: int) -> float:
    """Two standard errors of the difference between two accuracies near `val` measured on
    `n_train` and `n_val` images: how far apart two samples of those sizes fall by chance
    (0.95 points at 87% on 10,000 + 10,000 images, 1.35 on 5,000 + 5,000; 1 point where a
    size is unknown)."""
    if n_train < 1 or n_val < 1:
        return 0.01
    p = min(max(val, 0.0), 1.0)
    return max(2 * math.sqrt(p * (1 - p) * (1 / n_train + 1 / n_val)), 1 / min(n_train, n_val))


def running_below_val(running: float, val: float, train_eval: float,
                      margin: float = 0.01) -> bool:
    """Validation above the running train accuracy while the eval-mode train accuracy is level
    with it (within `margin`, the sampling noise) or above: 'validation beats training' as a
    measurement artefact (a study's conclusion counts the runs with this finding)."""
    return running < val - 0.005 and train_eval >= val - margin


def val_above_train(case: Case, found: list[Finding]) -> Finding | None:
    """Validation above the running train accuracy, explained by the eval-mode one."""
    last = case.last
    margin = sampling_margin(last.val_accuracy,
                             min(case.config.eval_train_size, case.observed.train_size),
                             sum(case.observed.val_label_counts or []))
    if running_below_val(last.train_accuracy_running, last.val_accuracy,
                         last.train_accuracy_eval, margin):
        return Finding("val-above-train", "info", {
            "running": last.train_accuracy_running, "val": last.val_accuracy,
            "train_eval": last.train_accuracy_eval, "margin": margin * 100})
    return None


def no_signal(case: Case, found: list[Finding]) -> Finding | None:
    """After several epochs even the training images are at chance while the loss still moves
    (memorising noise), or the training images are learned and validation stays at chance
    (memorised); a loss that does not move at all is not-learning."""
    # chance, of the classes the labels hold: 1/K of K outputs was 1/10 for labels 0, 5 and
    # 9, and a network that learned nothing was "nothing wrong found" (hunt)
    present = sum(1 for n in case.observed.val_label_counts or [] if n) or case.k
    last, chance = case.last, 1 / present
    if len(case.history) < 3 or _any(found, "not-learning", "too-slow", "held-back"):
        return None
    if last.train_accuracy_eval <= chance + 0.05 and _plain_sgd(case):
        return Finding("too-slow", "problem", {
            "kind": "plain-sgd", "epochs": len(case.history), "acc": _accuracy(last),
            "chance": case.chance, "lr": case.config.lr})
    if last.train_accuracy_eval <= chance + 0.05:
        # a loss that spiked past twice a fresh network's (ln K) before settling at chance:
        # steps too large (SGD at lr 1 with momentum 0.9 reached 12.6), not labels without
        # information, which keep it near ln K (2.40 at most, shuffled)
        peak = _loss_peak(case)
        overshot = {"kind": "overshot", "peak": peak, "lnk": case.lnk} \
            if peak > 2 * case.lnk and not case.config.shuffle_labels else {}
        return Finding("no-signal", "problem", {
            "epochs": len(case.history), "acc": last.train_accuracy_eval, "chance": chance,
            **overshot})
    # the training images above chance, validation not (one class for all: collapse says it)
    # validation: against always answering the most frequent class (90% of 90/10 labels),
    # within two standard errors on so few images (0.38 on 60 for 1/3 is chance), but never
    # by more than a fifth of that answer's errors: 99.8% on 98/2 labels learned (review)
    chance, n_val = case.chance, sum(case.observed.val_label_counts or [])
    margin = max(0.02, 2 * math.sqrt(chance * (1 - chance) / n_val)) if n_val else 0.02
    margin = min(margin, (1 - chance) / 5)
    if last.val_accuracy <= chance + margin and not _any(found, "collapse"):
        # it learns its own images by heart, and nothing that holds on others: shuffled
        # labels reached 0.067 on validation with "nothing wrong found"
        return Finding("no-signal", "problem", {
            "epochs": len(case.history), "acc": last.train_accuracy_eval, "chance": chance,
            "val": last.val_accuracy, "kind": "memorising"})
    return None


SPIKE = 5  # a training loss past this many times ln K: a step threw the weights off


def overshot(case: Case, found: list[Finding]) -> Finding | None:
    """A loss that spiked far past a fresh network's (ln K) in a run that ended well short of
    what the network learns, with nothing else to explain it: steps too large, though never
    NaN. Adam at lr 0.09 spiked to 127.6 and ended at 0.228, three SGD members at lr 0.9 with
    momentum near chance: the first was told "too few steps" (the very count a healthy run
    takes to 0.866), the second nothing at all (hunt)."""
    config = case.config
    kept = case.observed.val_accuracy
    accuracy = kept if kept is not None and math.isfinite(kept) else _accuracy(case.last)
    peak = _loss_peak(case)
    if (config.loss == "bce" or config.shuffle_labels or config.input_scaling == "raw"
            or peak <= SPIKE * case.lnk or accuracy >= case.chance + 0.5 * (1 - case.chance)
            or any(f.severity == "problem" for f in found)):
        return None
    return Finding("overshot", "problem", {"peak": peak, "lnk": case.lnk, "acc": accuracy,
                                           "lr": config.lr,  # a flag, as typed in any language
                                           "setting": f"--lr {config.lr / 10:g}"})


FEW_STEPS = 100  # fewer optimizer steps in all than this rarely take a network far


def few_steps(case: Case, found: list[Finding]) -> Finding | None:
    """Well short of what the model learns, in a few dozen steps: a batch of 3,000 for 2
    epochs (2 steps) stopped at 0.31 with nothing said (hunt). A run another rule explains
    is left to it."""
    config, steps = case.config, case.steps
    kept = case.observed.val_accuracy  # the model the run kept: an early-stopped run's best
    # epoch, where the last epoch's figure was quoted beside the summary's (hunt)
    accuracy = kept if kept is not None and math.isfinite(kept) else _accuracy(case.last)
    if (not steps or steps >= FEW_STEPS or config.shuffle_labels
            or accuracy >= case.chance + 0.5 * (1 - case.chance)
            or any(f.severity == "problem" for f in found)):
        return None
    return Finding("few-steps", "warning", {
        "steps": steps, "epochs": len(case.history), "per_epoch": steps // len(case.history),
        "batch": config.batch_size, "acc": accuracy})


def _plain_sgd(case: Case) -> bool:
    """SGD without momentum at a modest lr, with real labels: LeNet-5 at 0.01 sits near
    chance for several epochs before it climbs (0.13 after 3 epochs, 0.63 after 8), and was
    told its labels "carry no information" (hunt)."""
    config = case.config
    return (config.optimizer == "sgd" and config.momentum == 0 and config.lr < 0.1
            and config.schedule != "onecycle"  # which cycles a momentum of its own
            and not config.shuffle_labels)


def members_at_chance(case: Case, found: list[Finding]) -> Finding | None:
    """Some members of an ensemble at chance on validation while the others learned: they
    pull the averaged answer towards a guess (SGD at lr 0.7 with momentum: two of three at
    0.12, the ensemble at 0.29 beside its best member's 0.21 - and nothing said). All at
    chance is the whole run's, which the other rules name."""
    scored = [a for a in case.observed.member_val_accuracies if a is not None]
    weak = [a for a in scored if a <= case.chance + 0.05]
    # the others learned clearly (SGD at lr 0.001 had three members at 0.15-0.23 after two
    # epochs, all still climbing: too slow, which its own rule says, not dead members)
    if not weak or max(scored) < case.chance + 0.2 or _any(found, "too-slow", "not-learning"):
        return None
    return Finding("members-at-chance", "problem", {
        "n": len(weak), "size": len(scored), "worst": min(weak), "best": max(scored),
        "chance": case.chance})


Rule = Callable[[Case, list[Finding]], "Finding | None"]
RULES: tuple[Rule, ...] = (binary_accuracy_illusion, too_slow, held_back, not_learning,
                           collapse, softmax_twice, rising, overfitting, val_above_train,
                           no_signal, overshot, members_at_chance, few_steps)


def first_epoch_drop(trace: list[list[float]],
                     steps_per_epoch: int) -> tuple[float, float, float] | None:
    """(relative drop, start, end) of the loss over the first epoch, from the loss trace."""
    values = [v for s, v in trace if s <= steps_per_epoch and math.isfinite(v)]
    if len(values) < 6:
        return None
    start, end = sum(values[:3]) / 3, sum(values[-3:]) / 3
    return ((start - end) / start if start > 0 else 0.0), start, end


def _any(findings: list[Finding], *codes: str) -> bool:
    return any(f.code in codes for f in findings)


def _steps_in_first_epoch(observed: Observation, config: TrainConfig) -> int:
    n = observed.train_size
    return max(1, math.ceil(n / config.batch_size)) if n else 0
