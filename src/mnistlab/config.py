"""Every setting of one training run, in one frozen, validated dataclass.

CLI flags, TOML keys and field names are the same words (`--batch-size` <-> `batch_size`).
`TrainConfig(...)` validates on construction, so a config that exists is a config that runs;
`from_dict` / `to_toml` / `load_toml` move it in and out of files (a run folder's
`config.toml` reproduces the run).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import numbers
import os
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import MnistlabError, closest, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MODELS = ("mlp", "lenet5", "cnn", "resnet")
LENET_VARIANTS = ("classic", "modern")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
# "ce" is the right loss for one-label classification. The others exist as teaching aids: they
# reproduce classic mistakes on purpose so the doctor can be seen naming them.
LOSSES = ("ce", "bce", "ce-on-softmax")
METRICS = ("accuracy", "binary-accuracy")
INPUT_SCALINGS = ("standardize", "unit", "raw")
VAL_FROM = ("train", "test")
DEVICES = ("auto", "cpu", "cuda", "mps")
# rotate (degrees), scale and shift (fractions): a random affine; crop: zero-pad by this many
# pixels and crop back at a random offset; erase: the probability of blanking a random
# rectangle of at most erase_area of the image; flip: the probability of a left-right mirror.
AUGMENT_KEYS = ("rotate", "scale", "shift", "elastic", "crop", "erase", "erase_area", "flip",
                "blur", "stroke")
ERASE_AREA = 0.25  # erase_area when only erase is given: at most a quarter of the image
MAX_CROP = 16  # pixels of padding: beyond this a 28x28 image can be cropped to pure background
# Datasets whose classes change under a left-right mirror: a flipped 2, 5 or 7 is not that digit
# (and a flipped 3 is no digit at all), so `flip` would teach the network wrong labels.
MIRROR_SENSITIVE = ("mnist",)
PRECISIONS = ("fp32", "bf16", "auto")
LOGGERS = ("tensorboard", "mlflow")  # --log: where runs are also logged (tracking/)
# What --log adds to an output folder; runs, studies and searches accept these in theirs.
TENSORBOARD_FOLDER = "tensorboard"
MLFLOW_STORE = "mlflow.db"  # the embedded MLflow store, when no tracking URI is given
MLFLOW_ARTIFACTS = "mlartifacts"
# held while a study's or search's driver finds its parent run or logs a child: tune workers
# sharing a folder share that parent, and each logged the other's trials a second time
MLFLOW_LOCK = ".mlflow.lock"
TRACKING_ENTRIES = frozenset({TENSORBOARD_FOLDER, MLFLOW_STORE, MLFLOW_ARTIFACTS, MLFLOW_LOCK,
                              *(MLFLOW_STORE + end for end in ("-journal", "-wal", "-shm"))})
# Seeds are below 2**62: torch takes seeds below 2**64 and train.py adds to them (data_seed + 11,
# epoch seeds reduced mod 2**63 - 1) and a study counts up from the base seed, so 2**62 leaves
# room for all of that with a margin, and is still more seeds than anyone will type.
SEED_LIMIT = 2**62
# Settings added after the first release (0.1.0), see TrainConfig.identity_dict
LATER_SETTINGS = frozenset({"blocks", "ema", "tta", "precision", "ensemble"})
# Settings the runs a comparison picks the best of must share, and why: a search's trials, a
# study's variants where its [final] chooses the best (tune.space, study.spec)
_JUDGED = "each must be judged on the same validation set, held out of the training set"
JUDGED_ALIKE = {"val_from": _JUDGED, "val_size": _JUDGED, "data_seed": _JUDGED,
                "dataset": "each must learn the same data"}
# Where a run trains and reads its data, not what it is: a run or study resumed with other
# values is the same one (runs.same_run, study.run.study_identity)
PLACEMENT = ("data_dir", "device")
SGD_SETTINGS = ("momentum", "nesterov")  # read by the sgd optimizer alone
DATA_DIR_HELP = ("folder holding the datasets as <name>/ of the four IDX files, gzipped or raw "
                 "(default: $MNISTLAB_DATA, then the user cache; `mnistlab data path NAME` "
                 "shows which)")


def check_loggers(loggers: str | tuple[str, ...] | list[str],
                  mlflow_uri: str | None = None) -> tuple[str, ...]:
    """`--log tensorboard,mlflow` (a comma-separated text or a sequence) as a tuple of known
    logger names, each once; () for none. An --mlflow-uri needs mlflow among them."""
    names = loggers.split(",") if isinstance(loggers, str) else list(loggers)
    out: list[str] = []
    for name in (str(n).strip() for n in names):
        if name:
            check_choice("log", name, LOGGERS)
            out += [name] if name not in out else []
    if mlflow_uri and "mlflow" not in out:
        raise MnistlabError("--mlflow-uri: add --log mlflow to log there")
    return tuple(out)


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """One line naming the setting and the values it takes, when `value` is not one of them."""
    if value not in allowed:  # a typo's near value named, as a flag's is (SGD, lenet: hunt)
        near = did_you_mean(value, list(allowed)) if isinstance(value, str) and len(
            value) <= 100 else ""
        raise MnistlabError(f"{name}: unknown value {quote(value)}; choose one of "
                            f"{', '.join(allowed)}{near}")


# Layers in hidden, filters or dense: plain stacks this deep no longer train (there are no
# residual connections here), and a list of a million layers would take minutes and gigabytes
# to build before anything else could object.
MAX_LAYERS = 100
MAX_ENSEMBLE = 64  # members of one --ensemble: past a few, each adds little
# Epochs of one run: a typo's extra zeros (--epochs 1000000 for 100) would train for months,
# and 100,000 epochs of a small subset is as long as any study here runs.
MAX_EPOCHS = 100_000


def parse_int_list(name: str, text: str | list | tuple) -> tuple[int, ...]:
    """'128,64' or [128, 64] -> (128, 64); anything else is a one-line error naming `name`."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = [text]
    if not isinstance(text, (str, list, tuple)):
        raise MnistlabError(f"{name}: {quote_setting(text)} is not a list of whole numbers "
                            "(e.g. [128, 64])")
    items = text.split(",") if isinstance(text, str) else list(text)
    if any(str(item).strip() == "" for item in items[:-1]):  # a trailing comma is harmless
        raise MnistlabError(f"{name}: {quote_setting(text)} has an empty item; list the sizes "
                            "with one comma between each (e.g. 128,64)")
    try:
        values = tuple(int(str(item).strip()) for item in items if str(item).strip() != "")
    except ValueError:
        form = ("a comma-separated list of whole numbers (e.g. 128,64)" if isinstance(text, str)
                else "a list of whole numbers (e.g. [128, 64])")  # a flag's, a file's
        raise MnistlabError(f"{name}: {quote_setting(text)} is not {form}") from None
    if not values or any(v < 1 for v in values):
        raise MnistlabError(f"{name}: {quote_setting(text)} must list one or more positive whole "
                            "numbers")
    if len(values) > MAX_LAYERS:
        raise MnistlabError(f"{name}: at most {MAX_LAYERS} layers, got {len(values):,}; list "
                            "fewer sizes")
    return values


def parse_augment(text: str) -> dict[str, float]:
    """'rotate=10,scale=0.1,crop=2' -> {'rotate': 10.0, ...}; '' or 'none' -> {}. Keys may be
    written with - or _ (erase-area, erase_area)."""
    text = text.strip()
    if text in ("", "none", "off"):
        return {}
    result: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in AUGMENT_KEYS:
            raise MnistlabError(
                f"augment: cannot read {part.strip()!r}; write key=value pairs with keys "
                f"{', '.join(AUGMENT_KEYS)} (e.g. rotate=10,scale=0.1,shift=0.1)"
            )
        try:
            number = float(value)
        except ValueError:
            raise MnistlabError(f"augment: {key}={value!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise MnistlabError(f"augment: {key} must be a finite number >= 0, got {value}")
        _check_augment_value(key, number, value)
        if key in result:  # the last one was taken without a word
            raise MnistlabError(f"augment: {key} is given twice ({key}={result[key]:g} and "
                                f"{key}={number:g}); give each change once")
        result[key] = number
    if "erase_area" in result and not result.get("erase"):
        raise MnistlabError("augment: erase_area needs erase=P (the probability of erasing), "
                            "e.g. erase=0.5,erase_area=0.2")
    return result


def _check_augment_value(key: str, number: float, text: str) -> None:
    if key in ("scale", "shift", "erase_area") and number >= 1:
        raise MnistlabError(f"augment: {key} is a fraction and must be < 1, got {text}")
    if key in ("erase", "flip", "blur", "stroke", "elastic") and number > 1:
        raise MnistlabError(f"augment: {key} is a probability and must be <= 1, got {text}")
    if key == "crop" and (not number.is_integer() or number > MAX_CROP):
        raise MnistlabError(f"augment: crop is the padding in whole pixels, 0 to {MAX_CROP}, "
                            f"got {text}")


def setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
            metavar: str | None = None) -> Any:
    """A TrainConfig field with its help text (and choices), which the CLI shows as is: the
    one place a setting is explained."""
    return field(default=default,
                 metadata={"help": help, "choices": choices, "metavar": metavar})


@dataclass(frozen=True, kw_only=True)  # TrainConfig("mnist", "mlp") set data_dir (hunt)
class TrainConfig:
    """One training run. Defaults train LeNet-5 on MNIST to ~99% in a few minutes on a CPU.
    Every field is a flag of `mnistlab train` (`batch_size` -> `--batch-size`) and a key of
    config.toml."""

    # data
    dataset: str = setting("mnist", "mnist, fashion-mnist, or a folder holding the four IDX "
                           "files", metavar="NAME|DIR")
    data_dir: str | None = setting(None, DATA_DIR_HELP, metavar="DIR")
    val_size: int = setting(10_000, "training images held out for validation, stratified by "
                            "class", metavar="N")
    val_from: str = setting("train", "train, or test to validate on the test set as the "
                            "original study did", choices=VAL_FROM)
    train_subset: int = setting(0, "train on this many images only, stratified by class "
                                "(0 = all); for quick looks, and the shortest training to a "
                                "target (mnist-fast)", metavar="N")
    eval_train_size: int = setting(10_000, "training images scored in eval mode each epoch "
                                   "(dropout off)", metavar="N")
    input_scaling: str = setting("standardize", "standardize, unit ([0,1]), or raw (0..255, a "
                                 "teaching aid)", choices=INPUT_SCALINGS)
    shuffle_labels: bool = setting(False, "teaching aid: shuffle the training labels so they "
                                   "carry no signal")
    # model
    model: str = setting("lenet5", "the network (see `mnistlab train --recipe list` for tuned "
                         "ones); resnet: residual stages of --filters widths, --blocks deep",
                         choices=MODELS)
    variant: str = setting("modern", "lenet5: classic (tanh, avg-pool, 1998) or modern (ReLU, "
                           "max-pool)", choices=LENET_VARIANTS)
    hidden: tuple[int, ...] = setting((128, 64), "mlp hidden layer sizes, comma-separated",
                                      metavar="N,N,...")
    filters: tuple[int, ...] = setting((32, 64, 128), "conv filters per block (cnn) or per "
                                       "stage (resnet: each stage after the first halves the "
                                       "map), comma-separated", metavar="N,N,...")
    blocks: int = setting(2, "resnet: residual blocks (two 3x3 convs and a skip) per stage",
                          metavar="N")
    dense: tuple[int, ...] = setting((256, 128), "cnn dense layer sizes, comma-separated",
                                     metavar="N,N,...")
    activation: str = setting("", "the hidden activation; empty = the model's own (tanh for "
                              "classic LeNet, else relu)", choices=("", *ACTIVATIONS))
    dropout: float = setting(0.0, "dropout probability before each dense layer, in [0, 1)",
                             metavar="P")
    batchnorm: bool = setting(False, "batch normalisation after each conv layer (resnet always "
                              "has it)")
    # objective
    loss: str = setting("ce", "ce (right), or bce / ce-on-softmax (teaching aids: classic "
                        "mistakes)", choices=LOSSES)
    metric: str = setting("accuracy", "accuracy, or binary-accuracy (teaching aid: Keras' "
                          "per-output accuracy)", choices=METRICS)
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing, in [0, 1)",
                                     metavar="E")
    # optimisation
    optimizer: str = setting("adam", "the optimizer", choices=OPTIMIZERS)
    lr: float = setting(0.001, "learning rate (peak rate for onecycle)", metavar="LR")
    momentum: float = setting(0.0, "SGD momentum, in [0, 1)", metavar="M")
    nesterov: bool = setting(False, "SGD Nesterov momentum (needs --momentum)")
    weight_decay: float = setting(0.0, "L2 penalty (decoupled for adamw)", metavar="WD")
    schedule: str = setting("cosine", "learning-rate schedule, stepped per batch (cosine and "
                            "step decay to the end of the run; onecycle also cycles SGD's "
                            "momentum, or Adam's beta1, from 0.95 to 0.85 and back, in place "
                            "of --momentum)", choices=SCHEDULES)
    batch_size: int = setting(64, "images per optimisation step", metavar="N")
    epochs: int = setting(10, "passes over the training set", metavar="N")
    early_stopping: int = setting(0, "stop after N epochs without a better val accuracy "
                                  "(0 = off)", metavar="N")
    augment: str = setting("", "random changes per training image: rotate=DEG, scale=F, "
                           "shift=F (affine), elastic=P (a hand's wobble), crop=PX (zero-pad "
                           "and crop back), erase=P (blank a rectangle of at most "
                           f"erase_area=F, default {ERASE_AREA}, of the image), flip=P "
                           "(left-right; not for mnist), blur=P (a round trip through 7 to 14 "
                           "pixels: a low-resolution scan), stroke=P (strokes bolder or "
                           "thinner); e.g. "
                           "rotate=10,scale=0.1,shift=0.1", metavar="KEY=V,...")
    ema: float = setting(0.0, "keep an exponential moving average of the weights with this "
                         "decay (e.g. 0.999; 0 = off): it is what each epoch scores and "
                         "model.pt holds", metavar="DECAY")
    tta: bool = setting(False, "test-time augmentation: the final validation and test scores "
                        "average the softmax over each image and its 1-pixel shifts (2-pixel "
                        "too when --augment crops or shifts by 2 pixels or more), each "
                        "mirrored too when --augment flips")
    ensemble: int = setting(1, "train N members (seeds s ... s+N-1) together in lockstep as "
                            "one network; the run scores their averaged softmax and lists "
                            "each member's accuracy (1 = a single model)", metavar="N")
    precision: str = setting("fp32", "fp32; bf16 autocast in the training steps (needs an "
                             "Ampere or later GPU or a CPU with AVX-512 BF16 or AMX); auto: "
                             "bf16 where it is native, else fp32", choices=PRECISIONS)
    # reproducibility and hardware
    seed: int = setting(0, "seed for initialisation and dropout masks", metavar="N")
    data_seed: int = setting(0, "seed for the validation split, the training subset and the "
                             "batch order; kept apart from --seed so that runs differing only "
                             "in seed see the same data", metavar="N")
    device: str = setting("auto", "where to train (auto: a GPU when there is one)",
                          choices=DEVICES)

    def __post_init__(self) -> None:
        _check_kinds(self)
        set_ = object.__setattr__  # frozen: normalise list-valued fields once, here
        for name in ("hidden", "filters", "dense"):
            set_(self, name, parse_int_list(name.replace("_", "-"), getattr(self, name)))
        check_choice("model", self.model, MODELS)
        check_choice("variant", self.variant, LENET_VARIANTS)
        if self.activation:
            check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("metric", self.metric, METRICS)
        check_choice("input-scaling", self.input_scaling, INPUT_SCALINGS)
        check_choice("val-from", self.val_from, VAL_FROM)
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        if not self.dataset:
            raise MnistlabError("dataset: give a name (mnist, fashion-mnist) or a folder path")
        for name in ("dataset", "data_dir"):  # "C:\temp\new" in a TOML file: a tab and a line
            value = getattr(self, name) or ""  # break, said as two broken lines (hunt)
            if any(ord(c) < 32 for c in value):
                raise MnistlabError(
                    f"{name.replace('_', '-')}: {value!r} holds a tab or a line break: a "
                    "Windows path's backslashes read as escapes? write it in single quotes in "
                    "a TOML file ('C:\\temp\\new'), as r'...' in Python, or with forward slashes")
        _positive_float("lr", self.lr)
        if not (0.0 <= self.dropout < 1.0):
            raise MnistlabError(f"dropout: must be in [0, 1), got {self.dropout}")
        if not (0.0 <= self.label_smoothing < 1.0):
            raise MnistlabError(f"label-smoothing: must be in [0, 1), got {self.label_smoothing}")
        if not (0.0 <= self.momentum < 1.0):
            raise MnistlabError(f"momentum: must be in [0, 1), got {self.momentum}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise MnistlabError("nesterov: needs --optimizer sgd and --momentum > 0")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise MnistlabError(f"weight-decay: must be >= 0, got {self.weight_decay}")
        _at_least("batch-size", self.batch_size, 1)
        _at_least("epochs", self.epochs, 1, MAX_EPOCHS)
        _at_least("val-size", self.val_size, 0)
        _at_least("train-subset", self.train_subset, 0)
        _at_least("eval-train-size", self.eval_train_size, 1)
        _at_least("early-stopping", self.early_stopping, 0)
        _at_least("blocks", self.blocks, 1)
        _at_least("ensemble", self.ensemble, 1)
        if self.ensemble > MAX_ENSEMBLE:
            raise MnistlabError(f"ensemble: at most {MAX_ENSEMBLE} members, got "
                                f"{self.ensemble:,}")
        if self.blocks > MAX_LAYERS:
            raise MnistlabError(f"blocks: at most {MAX_LAYERS} per stage, got {self.blocks:,}")
        if not (isinstance(self.ema, (int, float)) and 0.0 <= self.ema < 1.0):
            raise MnistlabError(f"ema: the decay must be in [0, 1) (0 = off; e.g. 0.999), got "
                                f"{quote(self.ema)}")
        _seed("seed", self.seed)
        _seed("data-seed", self.data_seed)
        if self.val_from == "train" and self.val_size == 0 and self.early_stopping:
            raise MnistlabError("early-stopping: needs a validation set (--val-size > 0)")
        self.check_flip(self.dataset)

    def check_flip(self, dataset: str) -> None:
        """`flip` refused for digits: by the dataset's name here, and once a folder is read
        by the name its checksums give it (a copy of MNIST given by its path is MNIST)."""
        if parse_augment(self.augment).get("flip") and dataset in MIRROR_SENSITIVE:
            raise MnistlabError(f"augment: flip is refused for {dataset}: a mirrored 2, 5 "
                                "or 7 is not that digit, so the labels would be wrong; use "
                                "crop, shift or rotate")

    # --- derived views -------------------------------------------------------------------
    @property
    def regularised(self) -> bool:
        """Dropout or augmentation on while it trains: its running train accuracy is measured
        under them (a figure's legend says so only then)."""
        return self.dropout > 0 or bool(self.augmentation)

    @property
    def augmentation(self) -> dict[str, float]:
        """The augmentation as numbers, erase_area filled in where erase is on; a zero does
        nothing and is left out, so "rotate=0" is no augmentation (as "" and "none" are)."""
        spec = {key: value for key, value in parse_augment(self.augment).items()
                if value or key == "erase_area"}  # said only beside erase (its unsaid: 0.25)
        if spec.get("erase"):
            spec.setdefault("erase_area", ERASE_AREA)
        return spec

    @property
    def augmentation_text(self) -> str:
        """The augmentation written one way, whatever its spelling: "scale=0.1,rotate=10",
        "rotate=10.0, scale=0.1" and "rotate=10,scale=0.1,shift=0" are "rotate=10,scale=0.1";
        "", "none" and "rotate=0" are "" (what compares two configs' augmentations)."""
        return ",".join(f"{key}={repr(value).removesuffix('.0')}"
                        for key, value in sorted(self.augmentation.items()))

    @property
    def resolved_activation(self) -> str:
        if self.activation:
            return self.activation
        return "tanh" if (self.model == "lenet5" and self.variant == "classic") else "relu"

    def replace(self, **changes: Any) -> TrainConfig:
        # a misspelt name was dataclasses' TypeError, without the hint; batch-size is taken
        return dataclasses.replace(self, **{setting_name(name, "replace"): value
                                            for name, value in changes.items()})

    def replicate(self, first: int, index: int) -> TrainConfig:
        """The `index`-th of several runs of these settings with independent seeds, from
        `first`. An ensemble of N takes N seeds (first+index*N, ... +N-1): with one seed
        apart, replicates would share N-1 trained members, and their spread would be too
        small to measure noise by."""
        return self.replace(seed=first + index * self.ensemble)

    def replicate_seed(self, first: int) -> int:
        """Which of `replicate`'s runs this is, as a study's tables number its seeds:
        first + index (for one network, its seed)."""
        return first + (self.seed - first) // self.ensemble

    def placement(self) -> dict[str, Any]:
        """Where this run trains and reads its data (PLACEMENT's settings), not what it is."""
        return {k: getattr(self, k) for k in PLACEMENT}

    def unplaced(self) -> TrainConfig:
        """The same run with its placement at the defaults: what names a run or a search in
        a store that other devices and data folders share."""
        return self.replace(**{f.name: f.default for f in fields(self) if f.name in PLACEMENT})

    def placed(self, *, data_dir: str | None = None, device: str | None = None) -> TrainConfig:
        """The same run with its data read from `data_dir` and trained on `device` (None:
        unchanged), as the --data-dir and --device of `mnistlab study` and `tune` set them."""
        changes = {k: v for k, v in (("data_dir", data_dir), ("device", device)) if v is not None}
        return self.replace(**changes) if changes else self

    # --- dict / TOML ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            if value is None:
                continue  # TOML has no null; absent means default
            out[f.name] = value
        return out

    def identity_dict(self) -> dict[str, Any]:
        """`to_dict()` as hashed into the names of runs and studies: a setting added after
        the first release is left out while it holds its default, so a study folder made by
        an earlier version keeps its run names and resumes."""
        out = self.to_dict()
        for f in fields(self):
            if f.name in LATER_SETTINGS and out.get(f.name) == f.default:
                del out[f.name]
        # -0.0 is 0.0: one setting, one run (JSON writes "-0.0": the base trained twice)
        return {k: v + 0.0 if isinstance(v, float) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config",
                  typed: bool = True) -> TrainConfig:
        """The config of a table of settings; `typed`: as TOML types them, so a number or
        true/false written as text is refused (flags given on a command line are text)."""
        known = {f.name: f for f in fields(cls)}
        if typed:
            check_typed(data, where)
        clean: dict[str, Any] = {}
        # a later spelling of a key replaces an earlier one: tables merged over to_dict()
        # (a variant's batch-size over the base's batch_size); one file giving both is refused
        # where it is read (read_settings)
        for raw_key, value in data.items():
            key = setting_name(raw_key, where)
            clean[key] = _coerce(key, value, known[key].default)
        return cls(**clean)

    def check_writable(self) -> None:
        """One line for a setting config.toml cannot hold (a path that is not UTF-8)."""
        for f in fields(self):
            _utf8(f.name, getattr(self, f.name))

    def to_toml(self) -> str:
        import tomli_w

        self.check_writable()
        return tomli_w.dumps(self.to_dict())


# every setting's name, as TrainConfig spells it (batch_size)
SETTINGS: frozenset[str] = frozenset(f.name for f in fields(TrainConfig))

_BOOL_WORDS = {**dict.fromkeys(("true", "yes", "on", "1"), "true"),
               **dict.fromkeys(("false", "no", "off", "0"), "false")}


def check_typed(data: dict[str, Any], where: str) -> None:
    """A setting file's number or true/false written in quotes (epochs = "3") is refused: it
    was taken as the number, which hid a quoting mistake elsewhere in the same file."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for raw_key, value in data.items():
        default = defaults.get(raw_key.replace("-", "_"))
        if isinstance(value, list) and isinstance(default, tuple):  # hidden = ["32"]
            numbers = [_number_text(v) for v in value]
            if any(isinstance(v, str) for v in value) and None not in numbers:
                shown = "[" + ", ".join(json.dumps(v) for v in value) + "]"
                raise MnistlabError(f"{where}: {raw_key} = {shown} holds text; write the "
                                    f"numbers without quotes: {raw_key} = [{', '.join(numbers)}]")
            continue  # anything else in the list is said by the type check
        if not isinstance(value, str) or not isinstance(default, (bool, int, float)):
            continue
        if isinstance(default, bool):  # "yes" was taken as true, where "false" was refused
            meant = _BOOL_WORDS.get(value.strip().lower())
        else:  # None: not a number at all, said as such by the type check
            meant = _number_text(value)
        if meant is not None:
            kind = "true or false" if isinstance(default, bool) else "number"
            raise MnistlabError(f"{where}: {raw_key} = {quote(value)} is text; write the {kind} "
                                f"without quotes: {raw_key} = {quote(meant)[1:-1]}")


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Bring a TOML/CLI value to the field's type, with a one-line error when it cannot be."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:  # the CLI's words too
            return _BOOL_WORDS[value.lower()] == "true"
        raise MnistlabError(f"{key}: expected true or false, got {quote_setting(value)}")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise MnistlabError(f"{key.replace('_', '-')}: expected a whole number, "
                                f"got {quote_setting(value)}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise MnistlabError(
                f"{key.replace('_', '-')}: expected a whole number, got {quote_setting(value)}"
            ) from None
    if isinstance(default, float):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise MnistlabError(f"{key.replace('_', '-')}: expected a number, got "
                                f"{quote_setting(value)}") from None
        if isinstance(value, bool):
            raise MnistlabError(f"{key.replace('_', '-')}: expected a number, got "
                                f"{quote_setting(value)}")
        return number
    if isinstance(default, tuple):
        return parse_int_list(key.replace("_", "-"), value)
    if default is None or isinstance(default, str):
        if not isinstance(value, str):
            raise MnistlabError(f"{key.replace('_', '-')}: expected text, got "
                                f"{quote_setting(value)}")
        return value
    return value


def _utf8(name: str, value: Any) -> None:
    """A path whose name is not UTF-8 (Linux allows any bytes) cannot be written into the
    run's config.toml, which is UTF-8: said before anything is done, not as a traceback."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "backslashreplace").decode()
            raise MnistlabError(f"{name.replace('_', '-')}: {shown} holds bytes that are not "
                                "UTF-8, which a run's config.toml cannot hold; rename it, or "
                                "link to it under a UTF-8 name (ln -s)") from None


def whole(value: Any, least: int) -> bool:
    """`value` is a whole number (not True or False, which Python counts as 1 and 0) of at
    least `least`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def python_value(value: Any, *, as_written: bool = False) -> Any:
    """`value` as Python's own kind where Python code gave numpy's or a path: np.float64(0.1)
    is 0.1, np.bool_(True) True, an array a list, Path("x") "x". JSON and TOML write only
    Python's kinds ("Object of type float32 is not JSON serializable", after a study file
    built in a notebook had been taken). `as_written`: a float32 is the number it prints as,
    np.float32(0.01) 0.01, not 0.009999999776482582 (its float64; what a TrainConfig given
    one has always held, and its runs are named by)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        if getattr(value, "ndim", 0) != 0:
            return [python_value(v, as_written=as_written) for v in value]
        if type(value).__name__ == "ndarray":  # np.array(0.01): its one number
            return python_value(value[()], as_written=as_written)
        if as_written and type(value).__name__ in ("float16", "float32"):
            return float(str(value))
        return value.item()
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def python_table(data: Any, where: str) -> Any:
    """A table built in Python (a study or a search space given as a dict) as its TOML file
    reads: python_value throughout (as written), a tuple a list, and every key text."""
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, str):
                raise MnistlabError(f"{where}: key {key!r} ({type(key).__name__}) is not text; "
                                    "keys are names, written as text as a file writes them "
                                    "(e.g. \"0.01\" for a value's label)")
        return {key: python_table(value, f"{where}.{key}") for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [python_table(value, where) for value in data]
    return python_value(data, as_written=True)


def check_wholes(options: Any, *names: str) -> None:
    """numpy's whole numbers among the fields `names` of the frozen dataclass `options` as
    Python's (seeds=np.int64(2) was "must be a whole number >= 1, got np.int64(2)"); their
    own checks follow."""
    for name in names:
        value = getattr(options, name)
        if type(value).__module__ == "numpy" and isinstance(value, numbers.Integral):
            object.__setattr__(options, name, int(value))


def truth(name: str, value: Any) -> bool:
    """`value` as true or false, where Python code gives it: a text is true to Python, so
    overwrite="no" replaced a finished run. numpy's truths, and 0 and 1, are taken."""
    if getattr(value, "ndim", None) == 0:
        value = python_value(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise MnistlabError(f"{name}: must be True or False, got {quote(value)}")


def check_truths(options: Any, *names: str) -> None:
    """Each of the fields `names` of the frozen dataclass `options` true or false (a numpy
    truth becomes Python's)."""
    for name in names:
        object.__setattr__(options, name, truth(name, getattr(options, name)))


def check_texts(options: Any, *names: str) -> None:
    """Each of the fields `names` of the frozen dataclass `options` text or None (a path is
    taken as its text): study_name=3 was "'int' object has no attribute 'strip'"."""
    for name in names:
        value = getattr(options, name)
        if isinstance(value, os.PathLike):
            object.__setattr__(options, name, value := os.fspath(value))
        if value is not None and not isinstance(value, str):
            raise MnistlabError(f"{name}: must be text, got {quote(value)}")


def folder_given(name: str, value: Any) -> Path | None:
    """A folder Python code gives (text or a path) as a Path; None stays None (the default
    folder). out=123 was "expected str, bytes or os.PathLike object, not int"."""
    if value is None or isinstance(value, Path):
        return value
    if isinstance(value, str) and not value.strip():  # Path("") is the working folder: a
        # study's files landed there (hunt; the command's --out "" is refused too)
        raise MnistlabError(f"{name}: an empty path; give a folder, or None for the default")
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise MnistlabError(f"{name}: give a folder (text or a pathlib.Path), not "
                        f"{type(value).__name__} {quote(value)}")


def _check_kinds(config: TrainConfig) -> None:
    """Each true/false, number and text setting of the kind it is: given from Python (files
    and flags are read as their kinds), shuffle_labels="no" shuffled the labels (a text is
    true), and dropout="0.5" raised TypeError from a comparison. numpy's numbers and truths,
    and paths, are taken as Python's numbers, truths and text. Every config made runs this:
    a value of its plain kind costs one type test."""
    for name, plain, kind in _kinds():
        value = getattr(config, name)
        if type(value) in plain:
            continue
        if type(value).__module__ == "numpy" or (isinstance(value, os.PathLike)
                                                 and str in plain):
            # np.float64(0.1), np.bool_(True), np.int64(3); an array is a list (hidden);
            # dataset=Path(...): a folder, as its text is
            value = python_value(value)
        if kind and type(value) not in plain:
            raise MnistlabError(f"{name.replace('_', '-')}: must be {kind}, got {value!r}")
        object.__setattr__(config, name, value)


@functools.cache
def _kinds() -> tuple[tuple[str, tuple[type, ...], str], ...]:
    """Each setting's name, the types its values plainly are, and the kind named where a
    value is none of them ("" for the whole numbers and lists, which their own checks read)."""
    out = []
    for f in fields(TrainConfig):
        default = f.default
        plain, kind = (((bool,), "true or false") if isinstance(default, bool) else
                       ((int, float), "a number") if isinstance(default, float) else
                       ((str,), "text") if isinstance(default, str) else
                       ((str, type(None)), "text") if default is None else  # data_dir
                       ((type(default),), ""))
        out.append((f.name, plain, kind))
    return tuple(out)


def _positive_float(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise MnistlabError(f"{name}: must be a positive number (and finite), got {value}")


def _seed(name: str, value: int) -> None:
    _at_least(name, value, 0)
    if value >= SEED_LIMIT:
        raise MnistlabError(f"{name}: must be below 2**62 ({SEED_LIMIT:,}), got {value:,}; "
                            "any smaller whole number >= 0 is as good a seed")


def torch_seed(seed: int) -> int:
    """What torch is seeded with for `seed`: the seed itself below 2**32, and above it all of
    its bits mixed into 32 (splitmix64's finaliser). A CPU generator keeps only a seed's low 32
    bits, so seeds 2**32 apart trained the same network: --seed 4294967296 was seed 0, and
    member 1 of `--seed 4294967295 --ensemble 2` copied it."""
    if seed < 2**32:
        return seed
    z = seed & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFF_FFFF_FFFF_FFFF
    return (z ^ (z >> 31)) & 0xFFFF_FFFF


def _at_least(name: str, value: int, minimum: int, maximum: int | None = None) -> None:
    """One line unless `value` is a whole number >= `minimum` (and <= `maximum`, if given)."""
    if not whole(value, minimum) or (maximum is not None and value > maximum):
        span = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum:,}"
        got = f"{value:,}" if isinstance(value, int) else quote(value)
        raise MnistlabError(f"{name}: must be a whole number {span}, got {got}")


# --- TOML ----------------------------------------------------------------------------------
def absolute_dir(path: str | None) -> str | None:
    """A --data-dir given relative, as the absolute path a run's config.toml keeps: read back
    from another working folder, it named another folder there, or none."""
    return str(Path(path).expanduser().absolute()) if path else path


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise MnistlabError(f"{path}: a folder, not a file; give the TOML file itself")
    if not path.is_file():
        raise MnistlabError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MnistlabError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # a byte-order mark (Notepad's)
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))  # text, saved as UTF-16 (Windows)
    if b"\0" in data[:4096] and not utf16:  # a model, an image: "save as UTF-8" will not do
        kind = " (a zip archive: a model.pt, say)" if data.startswith(b"PK") else ""
        raise MnistlabError(f"{path}: a binary file{kind}, not a TOML text file; give the "
                            "settings file itself (a .toml)")
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MnistlabError(f"{path}: not UTF-8 text (byte {exc.start + skip} cannot be "
                            "decoded); save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except RecursionError:  # [[[[...]]]] 500 deep: a traceback (hunt)
        raise MnistlabError(f"{path}: lists or tables nested too deeply to read; a settings "
                            "file nests two levels at most") from None
    except tomllib.TOMLDecodeError as exc:
        if text.lstrip().startswith("{"):  # TOML never starts so; JSON does
            raise MnistlabError(f"{path}: JSON, not TOML; write one `name = value` per line, "
                                "e.g. epochs = 3 (text in double quotes, lists as [128, 64])"
                                ) from None
        fix = _toml_fix(text, str(exc))
        raise MnistlabError(f"{path}: not valid TOML ({exc}){'; ' + fix if fix else ''}"
                            ) from None


_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)$")
_SPELT = {"True": "true", "False": "false", "TRUE": "true", "FALSE": "false", "yes": "true",
          "no": "false", "Yes": "true", "No": "false", "on": "true", "off": "false",
          "Inf": "inf", "INF": "inf", "Infinity": "inf", "infinity": "inf", "NaN": "nan",
          "NAN": "nan"}


def _toml_fix(text: str, message: str) -> str:
    """What to do about a TOML error whose line shows a common slip (hunt: a Windows path
    in double quotes was "Invalid hex value", a key given twice "Cannot overwrite a value",
    model = mlp "Invalid value"); "" where none is seen. Lines are counted as tomllib
    counts them, at "\n" alone (splitlines() also broke at U+0085 in a comment: review)."""
    at = _TOML_AT.search(message)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    line = lines[int(at.group(1)) - 1] if at and int(at.group(1)) <= len(lines) else ""
    if "\\" in line and ("hex value" in message or "Unescaped" in message):
        return ("in double quotes a backslash starts an escape (\\t, \\n, \\U); write a "
                "Windows path in single quotes ('C:\\Users\\me\\data') or with forward "
                "slashes")
    if message.startswith("Cannot overwrite a value") or " twice" in message:
        twice = _given_twice(lines, int(at.group(1)) if at else None)
        return f"{twice} is given twice; keep one" if twice else "keep one of each key and table"
    if message.startswith("Invalid value") and at:
        value = line[int(at.group(2)) - 1:]
        if re.match(r"[+-]?\.\d", value):  # .5
            return "a number starts with a digit: 0.5, not .5"
        sign, value = (value[0], value[1:]) if value[:1] in "+-" else ("", value)
        word = re.match(r"[A-Za-z_][\w.-]*", value)
        if word and word.group(0) in _SPELT:  # -Infinity too (review)
            return f"TOML writes {sign}{word.group(0)} as {sign}{_SPELT[word.group(0)]}"
        if word and word.group(0) in ("None", "none", "null", "nil", "NULL"):
            return "TOML has no empty value: leave the key out for its default"
        if word and re.match(r"[eE][-+]?\d", word.group(0)):  # e-3: a number lacking its digit
            return f"a number starts with a digit: 1{word.group(0)}"
        if word:
            return f'text goes in double quotes: "{word.group(0)}"'
    return ""


def _key_of(stripped: str) -> str:
    """The key a stripped TOML line sets, or the [table] it opens; "" for anything else."""
    if stripped.startswith("["):
        return stripped.split("#")[0].strip()
    found = re.match(r"([\w-]+|\"[^\"]*\")\s*=", stripped)
    return found.group(1) if found else ""


def _starts_a_statement(lines: list[str], number: int) -> bool:
    """Whether line `number` begins a key or a table: what comes before it reads as TOML (a
    line inside a multi-line string or list does not end one)."""
    try:
        tomllib.loads("\n".join(lines[:number - 1]))
    except tomllib.TOMLDecodeError:
        return False
    return True


def _given_twice(lines: list[str], at: int | None) -> str:
    """The key or [table] given twice in a TOML file's lines, and where ("lr (lines 2 and
    5)"): the one on line `at`, where tomllib said, looked for above it in its own table (a
    quote in a comment misled a reading from the top: review); else the first seen from the
    top. "" where none is seen (dotted keys, inline tables)."""
    if at is not None and 0 < at <= len(lines):
        name = _key_of(lines[at - 1].strip())
        for number in range(at - 1, 0, -1) if name else ():
            stripped = lines[number - 1].strip()
            if not _starts_a_statement(lines, number):  # inside a multi-line string or
                continue  # list (review: a description's line was named)
            if _key_of(stripped) == name:
                return f"{name} (lines {number} and {at})"
            if stripped.startswith("[") and not name.startswith("["):
                break  # its table began here: not given twice in it
        return ""
    seen: dict[tuple[str, str], int] = {}
    table, quote = "", ""
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if quote:  # inside a multi-line string
            quote = "" if line.count(quote) % 2 else quote
            continue
        quote = next((q for q in ('"""', "'''") if line.count(q) % 2), "")
        if stripped.startswith("[["):  # a new table of the array: its keys start again
            table = stripped
            seen = {key: n for key, n in seen.items() if key[0] != table}
            continue
        name = _key_of(stripped)
        if not name:
            continue
        key = ("", name) if name.startswith("[") else (table, name)
        if key in seen:
            return f"{name} (lines {seen[key]} and {number})"
        seen.setdefault(key, number)
        if name.startswith("["):
            table = name
    return ""


# --- study and search-space files ------------------------------------------------------------
# Languages a study or search-space file may translate its own words into, as an `[es]` table
# (English is the plain keys).
TRANSLATED = ("es",)


def list_presets_in(package: str) -> list[str]:
    """The preset names (TOML files) shipped in `package`."""
    folder = resources.files(package)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_preset_or_file(name_or_path: str, package: str, kind: str) -> tuple[dict[str, Any], str]:
    """A path to a TOML file, or the name of a preset in `package`: (its data, where it is)."""
    if not isinstance(name_or_path, (str, os.PathLike)):  # load_study(3): pathlib's TypeError
        raise MnistlabError(f"{kind}: give a preset's name or a .toml file's path, not "
                            f"{type(name_or_path).__name__} {quote(name_or_path)}")
    path = Path(name_or_path)
    names = list_presets_in(package)
    # a folder named as a preset (often its own output: --out fashion-hparams) does not hide it
    if path.suffix == ".toml" or (path.exists() and not (path.is_dir() and name_or_path in names)):
        return read_toml(path), str(path)
    if name_or_path not in names:
        hint = _other_preset(name_or_path, package, names)
        raise MnistlabError(f"{kind}: unknown preset {name_or_path!r}{hint}; presets: "
                            f"{', '.join(names)} (or give a .toml file)")
    text = resources.files(package).joinpath(f"{name_or_path}.toml").read_text("utf-8")
    return tomllib.loads(text), f"preset {name_or_path}"


# the command whose presets live in the other package: a study's name given to tune, or back
OTHER_PRESETS = {"mnistlab.study.presets": ("mnistlab.tune.presets", "mnistlab tune"),
                 "mnistlab.tune.presets": ("mnistlab.study.presets", "mnistlab study")}


def _other_preset(name: str, package: str, names: list[str]) -> str:
    """" (did you mean ...?)" for a misspelt preset, or where it is (nearly) the other
    command's: `study fashion-mpl` means tune's fashion-mlp, not fashion-hparams."""
    other_package, command = OTHER_PRESETS.get(package, ("", ""))
    theirs = list_presets_in(other_package) if other_package else []
    if name in theirs:
        return f" (it is a preset of `{command}`: run `{command} {name}`)"
    best = closest(name, [*names, *theirs])
    if best is None:
        return ""
    return f" (did you mean {best}?)" if best in names else f" (did you mean `{command} {best}`?)"


# A study's or search space's name is its default folder (studies/<name>, tunes/<name>), so it
# must be one harmless path component. 100 characters leave room for "-quick" and for the
# file names made from it within the 255 bytes most file systems allow.
NAME_LIMIT = 100


def name_problem(name: Any, *, spaces: bool = False) -> str:
    """Why `name` cannot be a folder name ("" when it can)."""
    if not isinstance(name, str):
        return "it is not text"
    if not name.strip():
        return "it is empty"
    if any(unicodedata.category(c)[0] == "C" for c in name):
        return "it holds control characters"
    if "/" in name or "\\" in name:
        return "a slash would make it a path"
    if name.startswith("."):
        return "it starts with a dot (hidden, or . and ..)"
    if not spaces and any(c.isspace() for c in name):
        return "it holds spaces"
    if len(name) > NAME_LIMIT:
        return f"it is longer than {NAME_LIMIT} characters"
    return ""


def control_character(text: str) -> str | None:
    """The first control character or line break in `text` (a no-break space is none), or
    None: a name shown in tables, labels and on the terminal must hold none."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)


def check_name(name: Any, where: str, *, spaces: bool = False) -> str:
    """`name` when it can be a folder name; else one line saying why and what to write."""
    problem = name_problem(name, spaces=spaces)
    if problem:
        kind = "a word without slashes" if spaces else "a word without spaces or slashes"
        raise MnistlabError(f"{where}: name must be {kind}, usable as a folder name "
                            f"({problem}), e.g. \"my-study\"; got {quote(name)}")
    return name


def name_from_stem(stem: str) -> str:
    """A file's stem made into a valid name, for files that give none ("my study" ->
    "my-study"): spaces become dashes, slashes and control characters are dropped."""
    name = "-".join(stem.split())
    name = "".join(c for c in name if c not in "/\\" and unicodedata.category(c)[0] != "C")
    return name.lstrip(".")[:NAME_LIMIT] or "unnamed"


# The shapes a value in a study or search-space file may have: kind -> (test, how to say it).
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "text (in quotes)"),
    "whole number": (lambda v: isinstance(v, int) and not isinstance(v, bool),
                     "a whole number"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
               and math.isfinite(v), "a finite number"),
    "true or false": (lambda v: isinstance(v, bool), "true or false"),
    "table": (lambda v: isinstance(v, dict), "a table"),
    "list": (lambda v: isinstance(v, list) and bool(v), "a non-empty list ([...])"),
    "array of tables": (lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
                        "an array of tables"),
    "table of numbers": (lambda v: isinstance(v, dict) and all(
        KINDS["number"][0](i) for i in v.values()), "a table of numbers"),
}


def typed(raw: dict[str, Any], key: str, kind: str, where: str, default: Any = None, *,
          example: str = "") -> Any:
    """`raw[key]` if it has the shape `kind` (see KINDS), `default` when absent; else one line
    naming the key, the shape expected (with `example`, how to write it) and what was found."""
    if key not in raw:
        return default
    value = raw[key]
    test, wanted = KINDS[kind]
    if not test(value):
        hint = f" ({example})" if example else ""
        raise MnistlabError(f"{where}: {key} must be {wanted}{hint}, got {quote(value)}")
    return value


def _number_text(value: Any) -> str | None:
    """How a value reads as a number without quotes ("32" -> 32), or None if it is none."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return value.strip() if math.isfinite(float(value)) else None
        except ValueError:
            return None
    return None


def quote(value: Any) -> str:
    """repr(value) for an error line, cut at 60 characters (a file may hold a huge value)."""
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def quote_setting(value: Any) -> str:
    """`quote`, with true and false as files and flags write them (a config.toml's
    `epochs = true` was "got True", `hidden = [true]` "[True] is not a list ...")."""
    def written(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(written(item) for item in v) + "]"
        return repr(v)

    return _cut(written(value))


def read_translations(raw: dict[str, Any], allowed: set[str],
                      where: str) -> dict[str, dict[str, str]]:
    """`{lang: {key: text}}` from the `[es]`-style tables of `raw`, each key one of `allowed`."""
    out: dict[str, dict[str, str]] = {}
    for lang in TRANSLATED:
        if lang not in raw:
            continue
        table = raw[lang]
        if not isinstance(table, dict) or set(table) - allowed or not all(
                isinstance(v, str) for v in table.values()):
            raise MnistlabError(f"{where}: [{lang}] may only give text for "
                                f"{', '.join(sorted(allowed))}")
        out[lang] = dict(table)
    return out


def require_validation(config: TrainConfig, where: str, why: str) -> TrainConfig:
    """`config`, refused where it holds no validation images out of the training set
    (val_size 0; validating on the test set needs none held out): studies and searches compare
    their runs by validation accuracy, which such a run leaves blank."""
    if config.val_from == "train" and config.val_size < 1:
        raise MnistlabError(f"{where}: val_size must be > 0: {why}")
    return config


# names other tools give these settings (Keras, PyTorch examples): hinted, never taken
OTHER_NAMES = {"learning_rate": "lr", "batch": "batch_size", "n_epochs": "epochs",
               "num_epochs": "epochs", "max_epochs": "epochs", "l2": "weight_decay",
               "wd": "weight_decay", "dropout_rate": "dropout", "bs": "batch_size",
               "optim": "optimizer", "arch": "model", "scheduler": "schedule",
               "lr_schedule": "schedule", "hidden_sizes": "hidden", "layers": "hidden"}


# what the train command takes besides the settings (its flags in cli/train.py, which this
# layer cannot import: keep the two alike): in a settings file, `out = "x"` was "unknown
# setting 'out' (did you mean dropout?)"
COMMAND_FLAGS = ("out", "recipe", "config", "overwrite", "quiet", "lang", "log", "mlflow_uri")


def as_taken(settings: dict[str, Any]) -> dict[str, Any] | None:
    """`settings` as a run takes them (hidden 32 is (32,), a batch of 32.0 is 32): two
    values alike here are one, whatever a study or search file wrote (its "listed twice");
    None where they are no valid settings (the checks that read them say why)."""
    try:
        config = TrainConfig.from_dict(settings, typed=False)
    except (MnistlabError, TypeError, ValueError):
        return None
    return {setting_name(key, ""): getattr(config, setting_name(key, "")) for key in settings}


def setting_name(name: str, where: str, what: str = "unknown setting") -> str:
    """`name` as TrainConfig spells it (batch-size -> batch_size); one line, with the close
    names, where it is no setting."""
    known = sorted(SETTINGS)
    key = name.replace("-", "_")
    if key not in SETTINGS:
        close = ([] if key in COMMAND_FLAGS else  # not a typo of a setting (out: dropout?)
                 [OTHER_NAMES[key.lower()]] if key.lower() in OTHER_NAMES else
                 [key.lower()] if key.lower() in SETTINGS else  # LR: no hint (hunt)
                 [k for k in known if k.startswith(key[:3])] or
                 difflib.get_close_matches(key, known, n=3, cutoff=0.6))
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MnistlabError(f"{where}: {what} {quote(name)}{hint}")
    return key


def underscored(data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data` with each key as a setting spells it (batch-size -> batch_size), so that what
    is merged over it (a flag) replaces it; a setting given in both spellings is refused (the
    later one was taken without a word)."""
    clean: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key in spelled:
            raise MnistlabError(f"{where}: {spelled[key]} and {raw_key} are one setting, given "
                                "twice; keep one")
        clean[key], spelled[key] = value, raw_key
    return clean


def read_settings(path: str | Path) -> dict[str, Any]:
    """One run's settings file (`train --config`), read as TOML; a study or search file given
    instead names the command that runs it (it said "unknown setting 'name'")."""
    data = read_toml(path)
    for marks, command in (({"experiment", "final"}, "study"), ({"space"}, "tune")):
        if marks & set(data):  # tables no run's settings have ([base] is optional in both)
            raise MnistlabError(f"{path}: a {'study' if command == 'study' else 'search'} file, "
                                f"not one run's settings; run it with `mnistlab {command} "
                                f"{path}`, or give its [base] settings as a file of their own")
    _no_tables(data, path)
    flags = [key for key in data if key.replace("-", "_") in COMMAND_FLAGS]
    if flags:  # a run's settings file, given to `train --config`
        raise MnistlabError(f"{path}: {quote(flags[0])} is no setting but a flag of the command "
                            f"(--{flags[0].replace('_', '-')}); give it on the command line")
    check_typed(data, str(path))
    return underscored(data, str(path))


def _no_tables(data: dict[str, Any], path: str | Path) -> None:
    """A [table] in one run's settings file: its settings were refused as "unknown setting
    'train'" (did you mean train_subset?), and [augment] as "expected text"."""
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        if key.replace("-", "_") in SETTINGS:
            example = ('augment = "rotate=10,shift=0.1"' if key == "augment" else
                       f"{key} = VALUE")
            raise MnistlabError(f"{path}: [{key}] is a table, but {key} is one setting; write "
                                f"it on one line above any [table], e.g. {example}")
        if not any(str(name).replace("-", "_") in SETTINGS for name in value):
            # pyproject.toml: "remove the [build-system] line and keep its lines" was no help
            raise MnistlabError(f"{path}: not a run's settings file ([{key}] holds no setting: "
                                "another tool's file?); give a file of `name = value` settings "
                                "(`mnistlab train --help` lists them), such as a run's "
                                "config.toml")
        raise MnistlabError(f"{path}: [{key}] is a table; a run's settings file has no tables: "
                            f"remove the [{key}] line and keep its `name = value` lines at the "
                            "top")


def load_config(path: str | Path) -> TrainConfig:
    return TrainConfig.from_dict(read_settings(path), where=str(path), typed=False)  # checked


def warn_untranslated(missing: list[str], lang: str, kind: str) -> None:
    """Say which of a study or space file's own texts a report in `lang` shows as written: a
    Spanish report of a file without `es = { ... }` texts mixed English in without a word."""
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                           else "")
        warnings.warn(f"--lang {lang}: the {kind} file gives no {lang} text for {shown}; the "
                      f"report shows them as written (add {lang} = {{ ... }} beside each, as "
                      "docs/studies.md shows)", stacklevel=3)
