"""Search-space files: a base config, the parameters Optuna searches, and how to judge the result.

    name = "my-search"
    [base]                              # a full TrainConfig; every trial starts from it
    dataset = "fashion-mnist"
    model = "mlp"
    [space.lr]                          # float range, optionally on a log scale
    type = "float"
    low = 1e-4
    high = 1e-1
    log = true
    [space.epochs]                      # whole numbers, optionally in steps
    type = "int"
    low = 5
    high = 30
    step = 5
    [space.optimizer]                   # a choice among values ...
    type = "categorical"
    choices = ["sgd", "adam"]
    [space.hidden]                      # ... lists allowed (Optuna sees them as "128-64")
    type = "categorical"
    choices = [[128, 64], [256, 128]]
    [space.momentum]                    # conditional: only suggested when the condition holds
    type = "float"
    low = 0.0
    high = 0.95
    when = { optimizer = "sgd" }        # a value or a list of values of a parameter above
    [compare]                           # optional: a reference configuration to beat
    label = "the original final configuration"
    settings = { optimizer = "adam", epochs = 30 }
    val = 87.99                         # its published validation accuracy, in %
    note = "validated on the test set"  # how that figure was measured (optional)
    [quick]                             # what --quick changes (a data subset, fewer epochs)
    train_subset = 3000
    max_epochs = 3

Everything is checked on load, each problem as one line naming the key: unknown keys, bad
ranges, choices that would not make a valid TrainConfig, conditions on unknown parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import (
    JUDGED_ALIKE,
    SGD_SETTINGS,
    TRANSLATED,
    TrainConfig,
    as_taken,
    check_name,
    list_presets_in,
    name_from_stem,
    python_table,
    quote,
    read_preset_or_file,
    read_translations,
    require_validation,
    setting_name,
    typed,
    underscored,
)
from ..errors import MnistlabError, did_you_mean
from ..messages import choice_text, listed, setting_text, t
from ..models import checked_config

PRESET_PACKAGE = "mnistlab.tune.presets"
TYPES = ("float", "int", "categorical")
# keys each parameter type accepts (besides `type` and `when`)
TYPE_KEYS = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "step", "log"),
             "categorical": ("choices",)}
TOP_KEYS = ("name", "title", "description", "base", "space", "compare", "quick", "quick_form",
            *TRANSLATED)
# what a `[es]` table may translate (English is the plain keys)
TRANSLATABLE = ("title", "description", "compare_label", "compare_note")
# --quick without a [quick] table: a small data subset and at most 2 epochs
DEFAULT_QUICK = {"train_subset": 3000, "val_size": 1000, "eval_train_size": 1000,
                 "max_epochs": 2}
# Values a stepped range may hold. Optuna checks that a sampled value lies on the grid with
# |k - round(k)| < 1e-8, k = (value - low) / step; past ~10**9 steps float rounding breaks
# that and Optuna refuses its own samples (lr from 1e-4 to 0.1 in steps of 1e-12 fails when
# the importances are computed). At 10**6 the rounding is 100x inside the tolerance, and no
# search needs a finer grid than a millionth of its range.
MAX_STEPS = 1_000_000
# Choices a categorical parameter may list. TPE keeps a (trials + 1) x choices matrix of kernel
# weights for it, per trial: a million choices over a thousand trials would be 8 GB. A
# thousand keeps that under 100 MB at 10,000 trials; more choices are a range written out.
MAX_CHOICES = 1_000
COMBINED_TRIED = 1_000  # contexts of 2 or 3 searched settings a value is checked beside


def encode_choice(value: Any) -> Any:
    """A choice as Optuna stores it: lists become '128-64' (Optuna takes scalars only)."""
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return value


@dataclass(frozen=True)
class Param:
    """One searched setting. `when` maps earlier categorical parameters to allowed values."""

    name: str  # a TrainConfig field
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()  # categorical: the values as the config takes them
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # encoded values

    @property
    def encoded_choices(self) -> tuple[Any, ...]:
        return tuple(encode_choice(c) for c in self.choices)

    @property
    def fixed(self) -> bool:
        """One value only (a --quick space holds epochs at 3): nothing a figure can show."""
        return len(self.choices) == 1 if self.type == "categorical" else self.low == self.high

    def decode(self, stored: Any) -> Any:
        """Optuna's stored value -> the value the config takes ('128-64' -> [128, 64])."""
        if self.type != "categorical":
            return stored
        for choice in self.choices:
            if encode_choice(choice) == stored:
                return _taken(choice)
        raise MnistlabError(f"space.{self.name}: stored value {quote(stored)} is not one of the "
                            f"choices; the study was made from another search space")

    def describe(self, step_word: str = "step", lang: str = "en") -> str:
        """'0.0001 .. 0.1 (log)', '5 .. 30 step 5', 'sgd, adam'; a range of one value ([quick]
        epochs) as that value. Numbers carry `lang`'s decimal mark."""
        if self.type == "categorical":
            return listed([choice_text(c, lang) for c in self.encoded_choices])
        if self.low == self.high:
            return setting_text(self.low, lang)
        text = f"{setting_text(self.low, lang)} .. {setting_text(self.high, lang)}"
        if self.step is not None and not (self.type == "int" and self.step == 1):
            text += f" {step_word} {setting_text(self.step, lang)}"
        return text + (" (log)" if self.log else "")

    def active(self, values: dict[str, Any]) -> bool:
        """Whether this parameter is suggested, given the encoded values suggested so far."""
        return all(name in values and values[name] in allowed
                   for name, allowed in self.when.items())


@dataclass(frozen=True)
class Compare:
    """A reference configuration the best trial is measured against."""

    label: str  # "": none given, the report names it in its language
    settings: dict[str, Any]
    val: float | None = None  # published validation accuracy, in %
    source: str = ""
    note: str = ""  # how the published figure was measured, said beside the comparison
    # "test": the published figure was measured on the test set (an original that validated
    # there), so it is set beside our test accuracy, not our validation accuracy
    val_from: str = ""


@dataclass(frozen=True)
class TuneSpec:
    name: str
    title: str
    base: TrainConfig
    params: tuple[Param, ...]
    description: str = ""
    compare: Compare | None = None
    quick: dict[str, Any] = field(default_factory=dict)
    is_quick: bool = False
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def text(self, name: str, lang: str) -> str:
        """title, description, compare_label or compare_note in `lang` (English fallback)."""
        found = self.translations.get(lang, {}).get(name)
        if found:
            return found
        if name == "compare_label" and self._default_label():
            return t(lang, "tune.compare.default_label")  # ours, not the file's: in `lang`
        if name.startswith("compare_"):
            return getattr(self.compare, name[len("compare_"):], "") if self.compare else ""
        return getattr(self, name)

    def untranslated(self, lang: str) -> list[str]:
        """The file's own texts a report in `lang` shows as written, for want of a
        translation (a Spanish report read "Frente a the reference reentrenada")."""
        given = self.translations.get(lang, {})
        return [name.replace("_", " ") for name in TRANSLATABLE
                if lang != "en" and name not in given and self.text(name, "en")
                and not (name == "compare_label" and self._default_label())]

    def _default_label(self) -> bool:
        return self.compare is not None and not self.compare.label

    def config_for(self, values: dict[str, Any], *, where: str = "trial") -> TrainConfig:
        """The TrainConfig of one trial: the base with the suggested (decoded) values."""
        return checked_config({**self.base.to_dict(), **values}, where)

    def compare_config(self) -> TrainConfig | None:
        if self.compare is None:
            return None
        return checked_config({**self.base.to_dict(), **self.compare.settings},
                       f"{self.name} [compare]")

    def widest_ensemble(self) -> int:
        """The most networks a trial, the comparison or a retrain can train: the base's, the
        comparison's, and the largest the space can draw."""
        sizes = [self.base.ensemble, (self.compare.settings if self.compare else {}).get(
            "ensemble", 1)]
        for p in self.params:
            if p.name == "ensemble":
                sizes += list(p.choices) if p.type == "categorical" else [p.high]
        return max(int(n) for n in sizes if isinstance(n, (int, float)))

    def fingerprint(self, *, placed: bool = False, first_release: bool = False) -> str:
        """Changes whenever the base or the space changes: a stored study from another
        space must not be resumed with this one. Where trials train and read their data is
        left out (workers on other machines share a search); `placed`: the fingerprint as
        searches made before that recorded it, with the base's own data_dir and device;
        `first_release`: as the first release recorded it, without the settings added since
        where they hold their defaults (TrainConfig.identity_dict)."""
        base = self.base if placed else self.base.unplaced()
        data = {"base": base.identity_dict() if first_release else base.to_dict(),
                "params": [dataclasses.asdict(p) for p in self.params]}
        text = json.dumps(data, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_quick(self) -> TuneSpec:
        """The --quick form: the [quick] changes on the base (and the comparison), epochs
        capped at `max_epochs` in the base, the space and the comparison."""
        if self.is_quick:
            return self
        quick = dict(self.quick or _no_larger(self.base, DEFAULT_QUICK))
        cap = quick.pop("max_epochs", None)
        base = checked_config({**self.base.to_dict(), **quick}, f"{self.name} [quick]")
        params = self.params
        compare = self.compare
        if cap:
            cap = int(cap)
            base = base.replace(epochs=min(base.epochs, cap))
            params = tuple(_cap_when(_cap_epochs(p, cap), cap) for p in params)
            if compare is not None and "epochs" in compare.settings:
                compare = dataclasses.replace(compare, settings={
                    **compare.settings, "epochs": min(int(compare.settings["epochs"]), cap)})
        return dataclasses.replace(self, name=self.name + "-quick", base=base, params=params,
                                   compare=compare, is_quick=True)


def _no_larger(base: TrainConfig, quick: dict[str, Any]) -> dict[str, Any]:
    """DEFAULT_QUICK's sizes where they are below the base's: a space of 1,000 training images
    searched with --quick and no [quick] table of its own trained on 3,000 (train_subset 0 is
    every image)."""
    def smaller(key: str, value: Any) -> Any:
        now = getattr(base, key, None)
        if not isinstance(now, int) or (key == "train_subset" and now == 0):
            return value
        return min(now, value)

    return {k: smaller(k, v) for k, v in quick.items()}


def _cap_when(param: Param, cap: int) -> Param:
    """A condition on epochs follows the cap: `when = { epochs = 30 }` under max_epochs 3
    holds for the trials that drew 30, now 3 (it held for none)."""
    if "epochs" not in param.when:
        return param
    capped = tuple(dict.fromkeys(min(int(v), cap) for v in param.when["epochs"]))
    return dataclasses.replace(param, when={**param.when, "epochs": capped})


def _cap_epochs(param: Param, cap: int) -> Param:
    if param.name != "epochs":
        return param
    if param.type == "categorical":
        kept = tuple(dict.fromkeys(min(int(c), cap) for c in param.choices))
        return dataclasses.replace(param, choices=kept)
    high = min(int(param.high), cap)
    low = min(int(param.low), high)
    step = param.step if (high - low) % int(param.step or 1) == 0 else 1
    return dataclasses.replace(param, low=low, high=high, step=step)


# --- parsing ---------------------------------------------------------------------------------
def _judged_on_validation(config: TrainConfig, where: str) -> TrainConfig:
    """Trials are judged and pruned on validation images held out of the training set."""
    if config.val_from == "test":
        raise MnistlabError(f"{where}: val_from = \"test\" would tune on the test set; hold "
                            "validation out of the training set (val_from = \"train\")")
    return require_validation(config, where, "trials are judged and pruned on validation "
                              "accuracy")


def parse_space(data: dict[str, Any], *, where: str = "space") -> TuneSpec:
    if not isinstance(data, dict):
        raise MnistlabError(f"{where}: a search space is a table of keys (base, space, ...), "
                            f"as a space file's TOML reads; got {type(data).__name__}")
    data = python_table(data, where)  # built in Python: numpy's numbers, tuples and paths taken
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise MnistlabError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(TOP_KEYS)}")
    # each table's keys as the settings they spell: of batch-size and batch_size, the one
    # its merge happened to put last was taken, and [quick] max-epochs was "did you mean
    # epochs?" (hunt)
    base = _judged_on_validation(checked_config(
        underscored(_table(data, "base", where), f"{where} [base]"), f"{where} [base]"),
        f"{where} [base]")
    space = _table(data, "space", where)
    if not space:
        raise MnistlabError(f"{where}: [space] is empty; add at least one [space.NAME] table "
                            "(e.g. [space.lr] with type = \"float\", low, high)")
    params: list[Param] = []
    for raw_name, raw in space.items():
        params.append(_parse_param(raw_name, raw, base, params, where))
    _check_read(params, base, where)
    compare = None
    if "compare" in data:
        compare = _parse_compare(_table(data, "compare", where), base, where)
    quick = underscored(_table(data, "quick", where), f"{where} [quick]")
    if quick:
        cap = quick.get("max_epochs")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise MnistlabError(f"{where} [quick]: max_epochs must be a whole number >= 1, "
                                f"got {quote(cap)}")
        _judged_on_validation(checked_config({**base.to_dict(), **{
            k: v for k, v in quick.items() if k != "max_epochs"}}, f"{where} [quick]"),
            f"{where} [quick]")
    name = check_name(typed(data, "name", "text", where, name_from_stem(Path(where).stem)),
                      where)
    translations = read_translations(data, set(TRANSLATABLE), where)
    return TuneSpec(name=name, title=typed(data, "title", "text", where, ""), base=base,
                    params=tuple(params), description=typed(data, "description", "text", where,
                                                            ""),
                    compare=compare, quick=quick, translations=translations,
                    # written into a --quick search's space.toml: read back, it stays one
                    is_quick=typed(data, "quick_form", "true or false", where, False))


def _check_read(params: list[Param], base: TrainConfig, where: str) -> None:
    """Refuse a searched setting that no trial reads: `filters` where every model drawn is an
    mlp, `momentum` where every optimizer drawn is Adam. Every value trained the same network,
    the trials were spent for nothing and the importances credited the setting with noise
    (`train` warns of the same flags)."""
    from ..models import ONECYCLE_MOMENTUM, list_models, model_settings

    searched = {p.name: p for p in params}
    for param in params:
        models = {m for m in list_models() if param.name in model_settings(m)}
        decider, readers = (("model", models) if models else
                            ("optimizer", {"sgd"}) if param.name in SGD_SETTINGS else
                            # beside --loss bce every trial alike (hunt)
                            ("loss", {"ce", "ce-on-softmax"}) if param.name == "label_smoothing"
                            else ("", set()))
        if not decider:
            continue
        drawn, choices = _drawn(decider, param, searched, base)
        if not drawn & readers:
            raise MnistlabError(
                f"{where} space.{param.name}: no {decider} drawn reads it "
                f"({', '.join(sorted(drawn))}; only {_listed(sorted(readers))} "
                f"{'does' if len(readers) == 1 else 'do'}): every value would train the same "
                f"network; leave it out, or {_drawn_beside(decider, sorted(readers & choices))}")
        if param.name == "momentum" and _drawn("schedule", param, searched, base)[0] == {
                "onecycle"}:
            raise MnistlabError(f"{where} space.momentum: every schedule drawn is onecycle "
                                f"({ONECYCLE_MOMENTUM}): every value would train the same "
                                "network; leave it out, or draw another schedule")


def _drawn(decider: str, param: Param, searched: dict[str, Param],
           base: TrainConfig) -> tuple[set[str], set[str]]:
    """The values of `decider` drawn beside `param` (the base's where it is not searched, or
    searched only `when`), and those its search chooses from."""
    chooser = searched.get(decider)
    choices = {str(c) for c in chooser.choices} if chooser else set()
    drawn = choices | ({str(getattr(base, decider))} if not chooser or chooser.when else set())
    if decider in param.when:  # drawn only beside these
        drawn &= {str(v) for v in param.when[decider]}
    return drawn, choices


def _listed(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def _drawn_beside(decider: str, readers: list[str]) -> str:
    """How to search a setting only where a `decider` value drawn reads it: the readers
    among its choices (`when` takes those alone), else one added to them."""
    if not readers:
        return f"search {decider} with one that reads it among its choices"
    shown = ", ".join(f'"{r}"' for r in readers)
    return f"draw it only beside {_listed(readers)}: when = {{ {decider} = [{shown}] }}"


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise MnistlabError(f"{where}: {key} must be a table ([{key}]), got {quote(value)}")
    return value


def _number(value: Any, key: str, *, whole: bool) -> float | int:
    ok = isinstance(value, int) if whole else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or (not whole and not math.isfinite(value)):
        kind = "a whole number" if whole else "a number"
        raise MnistlabError(f"{key}: must be {kind}, got {quote(value)}")
    return value


# Settings a search must hold still, and why: trials are compared on one validation set held out
# of the same training data, and the test set is touched once, by the retrained best.
NOT_SEARCHED = {
    **{key: why.replace("each", "every trial") for key, why in JUDGED_ALIKE.items()},
    "data_dir": "every trial must learn the same data",
    "seed": "searching seeds picks luck; the best trial is retrained with fresh seeds "
    "(--retrain-seeds)",
    "device": "where a trial runs does not change what it learns (use --device)",
    # every trial is judged on its validation accuracy whatever it reports: the best was
    # credited with a metric that changed nothing (hunt)
    "metric": "it changes what a run reports, not what it learns, and every trial is judged "
    "on its validation accuracy",
}


def _parse_param(raw_name: str, raw: Any, base: TrainConfig, earlier: list[Param],
                 where: str) -> Param:
    name = raw_name.replace("-", "_")
    key = f"{where} space.{raw_name}"
    setting_name(raw_name, key, "not a training setting:")
    if name in NOT_SEARCHED:
        raise MnistlabError(f"{key}: {raw_name!r} cannot be searched: {NOT_SEARCHED[name]}; "
                            "set it in [base]")
    if any(p.name == name for p in earlier):
        raise MnistlabError(f"{key}: {raw_name!r} is searched twice")
    if not isinstance(raw, dict):
        raise MnistlabError(f"{key}: must be a table with type = \"float\" | \"int\" | "
                            f"\"categorical\"")
    kind = raw.get("type")
    if "type" not in raw:  # `typ = "float"`: the key misspelt, not the type missing
        keys = sorted({"type", "when", *(k for ks in TYPE_KEYS.values() for k in ks)})
        named = "".join(f"; {key} is not a key here{did_you_mean(key, keys)}"
                        for key in raw if key not in keys)
        raise MnistlabError(f"{key}: no type; give type = \"float\" | \"int\" | "
                            f"\"categorical\"{named}")
    if kind not in TYPES:
        raise MnistlabError(f"{key}: type must be one of {', '.join(TYPES)}, got {quote(kind)}")
    unknown = sorted(set(raw) - {"type", "when", *TYPE_KEYS[kind]})
    if unknown:
        raise MnistlabError(f"{key}: unknown key(s) {', '.join(unknown)} for type {kind}; "
                            f"allowed: {', '.join(TYPE_KEYS[kind])}, when")
    when = _parse_when(raw.get("when", {}), earlier, key)
    _check_ever_drawn(when, earlier, key)

    def check(value: Any, label: str) -> None:  # the value must make a valid TrainConfig
        contexts = _drawn_beside_it(when, earlier)
        first = next(contexts)
        if _refusal(base, ({**context, name: value}  # somewhere it is drawn
                           for context in itertools.chain([first], contexts))):
            checked_config({**base.to_dict(), **first, name: value}, f"{key} {label}")

    if kind == "categorical":
        param = Param(name, kind, choices=_parse_choices(raw.get("choices"), key, check, name),
                      when=when)
        _check_never_beside(param, base, earlier, key)
        return param
    low, high, log, step = _parse_range(raw, kind == "int", key)
    wanted = int if kind == "int" else float
    default = getattr(base, name)
    if not isinstance(default, wanted) or isinstance(default, bool):
        raise MnistlabError(f"{key}: type {kind} does not fit {raw_name!r}, which takes "
                            f"{type(default).__name__} values; use categorical choices for it")
    check(low, f"low={low}")
    check(high, f"high={high}")
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _check_never_beside(param: Param, base: TrainConfig, earlier: list[Param], key: str
                        ) -> None:
    """A choice that cannot go with one choice of a categorical setting searched above it,
    where it goes with another, both drawn together: refused, with the `when` that draws it
    only there (`nesterov = true` beside `optimizer = "adam"` failed those trials one by
    one). Where each is drawn follows the chain of `when`s (review: nesterov drawn beside
    momentum 0.9, momentum beside sgd alone, was refused as if it met adam; a setting that
    only meets this one through the chain was not checked at all)."""
    by_name = {p.name: p for p in earlier}
    ours = _drawn_when(param.when, by_name)
    for other in earlier:
        if other.type != "categorical":
            continue
        together = _meeting(ours, _drawn_when(other.when, by_name))
        if together is None:  # never drawn together (review: refused all the same)
            continue
        allowed = together.get(other.name, tuple(other.encoded_choices))
        drawn_all = [dict(combination) for combination in itertools.product(
            *[[(name, by_name[name].decode(v)) for v in values]
              for name, values in together.items() if name != other.name])]
        for choice in param.choices:
            why = {theirs: _refusal(base, [{**drawn, other.name: _taken(theirs),
                                            param.name: _taken(choice)} for drawn in drawn_all])
                   for theirs in other.choices if encode_choice(theirs) in allowed}
            fits = [theirs for theirs, refused in why.items() if not refused]
            refused = [(theirs, reason) for theirs, reason in why.items() if reason]
            if fits and refused:
                when = {**{k: [by_name[k].decode(v) for v in values]
                           for k, values in param.when.items()}, other.name: fits}
                raise MnistlabError(
                    f"{key}: {_toml_value(choice)} cannot go with {other.name} = "
                    f"{_toml_value(refused[0][0])} ({refused[0][1]}); draw it only beside the "
                    f"others: when = {{ " + ", ".join(
                        f"{k} = [{', '.join(_toml_value(c) for c in values)}]"
                        for k, values in when.items()) + " }")


def _check_ever_drawn(when: dict[str, tuple[Any, ...]], earlier: list[Param], key: str
                      ) -> None:
    """A `when` that cannot hold through the chain (nesterov beside adam and momentum 0.9,
    momentum drawn beside sgd alone) would leave the setting never searched: refused, naming
    the two conditions that share no value (it was taken silently)."""
    by_name = {p.name: p for p in earlier}
    drawn = _drawn_when(when, by_name)
    for other, values in drawn.items():
        if values:
            continue
        asks = ([("it asks for", when[other])] if other in when else []) + [
            (f"{name} (which it is drawn beside) is drawn only where", by_name[name].when[other])
            for name in drawn if name != other and other in by_name[name].when]
        for ask in list(asks):  # only the conditions that clash: one that takes a value the
            rest = [a for a in asks if a is not ask]  # others share is no part of it (review)
            if len(rest) > 1 and not set.intersection(*(set(vs) for _, vs in rest)):
                asks = rest
        shown = [f"{who} {other} = [{', '.join(_toml_value(by_name[other].decode(v)) for v in vs)}]"
                 for who, vs in asks]
        raise MnistlabError(f"{key}.when: never holds, so this setting would never be drawn: "
                            f"{', and '.join(shown)}; give them a value in common")


def _meeting(one: dict[str, tuple[Any, ...]], other: dict[str, tuple[Any, ...]]
             ) -> dict[str, tuple[Any, ...]] | None:
    """The conditions under which two settings are both drawn; None where they never are."""
    both = _both(one, other)
    return None if any(not values for values in both.values()) else both


def _both(one: dict[str, tuple[Any, ...]], other: dict[str, tuple[Any, ...]]
          ) -> dict[str, tuple[Any, ...]]:
    """Two sets of conditions holding at once: a setting both name takes the values both
    allow (none, where they allow none in common)."""
    both = dict(one)
    for name, values in other.items():
        both[name] = tuple(v for v in both[name] if v in values) if name in both else values
    return both


def _drawn_when(when: dict[str, tuple[Any, ...]], by_name: dict[str, Param]
                ) -> dict[str, tuple[Any, ...]]:
    """Where a parameter is drawn: its `when`, and the `when` of each setting that names,
    in a chain (nesterov drawn beside momentum 0.9, itself drawn beside sgd alone, never
    meets adam; review: it was refused as if it did)."""
    drawn = dict(when)
    names = list(when)
    while names:
        further = by_name[names.pop()].when
        names += [other for other in further if other not in drawn]
        drawn = _both(drawn, further)
    return drawn


def _taken(choice: Any) -> Any:
    """A choice as a config takes it (a tuple of layers as a list)."""
    return list(choice) if isinstance(choice, tuple) else choice


def _refusal(base: TrainConfig, contexts: Iterable[dict[str, Any]]) -> str:
    """Why `base` with each of `contexts` is not a valid run ("" where one is; the contexts
    after it are not built)."""
    reasons = []
    for context in contexts:
        try:
            checked_config({**base.to_dict(), **context}, "")
            return ""
        except MnistlabError as exc:
            reasons.append(str(exc).removeprefix(": "))
    return reasons[0] if reasons else ""


def _toml_value(choice: Any) -> str:
    """A choice as a space file writes it: "sgd", true, 0.5, [32, 16]."""
    if isinstance(choice, (list, tuple)):
        return f"[{', '.join(_toml_value(v) for v in choice)}]"
    if isinstance(choice, str):
        return f'"{choice}"'
    if isinstance(choice, float):
        return repr(choice)  # 0.0 as the file writes it (it said 0)
    return choice_text(choice)


def _drawn_beside_it(when: dict[str, tuple[Any, ...]], earlier: list[Param]
                     ) -> Iterator[dict[str, Any]]:
    """The settings a parameter may be drawn beside, fewest first: each combination of its
    `when` values, alone and with one setting searched above it at one of its values (a
    choice, or a range's ends); then with every pair and every three of those settings, about
    COMBINED_TRIED contexts in all, spread over each group's values. `nesterov`
    drawn only beside sgd, with momentum searched, was refused on an Adam base with no
    momentum (hunt); searched beside both without a `when`, it was refused too (it needs the
    two at once). The first is empty where there is no `when` (the base alone)."""
    by_name = {p.name: p for p in earlier}
    conditions = [[(other, by_name[other].decode(v)) for v in values]
                  for other, values in when.items() if values]
    others = [[(p.name, value) for value in (p.choices if p.type == "categorical"
                                              else (p.low, p.high))]
              for p in earlier if p.name not in when]
    drawn_all = [dict(combination) for combination in itertools.product(*conditions)]
    for drawn in drawn_all:
        yield drawn
        yield from ({**drawn, name: value} for values in others for name, value in values)
    # pairs get two thirds of the budget, at least 4 values each (both ends of two ranges);
    # threes the rest; each group beside one `when` combination in turn (review: a prefix of
    # every group beside every combination tried the first few groups only)
    for size, budget, least in ((2, COMBINED_TRIED * 2 // 3, 4), (3, COMBINED_TRIED // 3, 1)):
        groups = list(itertools.combinations(others, size))
        share = max(least, budget // max(1, len(groups)))
        for index, settings in enumerate(groups):
            drawn = drawn_all[index % len(drawn_all)]
            yield from ({**drawn, **dict(values)} for values in _spread(settings, share))


def _spread(settings: tuple[list[tuple[str, Any]], ...], count: int
            ) -> Iterator[tuple[tuple[str, Any], ...]]:
    """At most `count` combinations of one value of each of `settings`: all where there are
    no more, else a fixed sample of them (the first ones held the first setting at its first
    value: review)."""
    sizes = [len(values) for values in settings]
    total = math.prod(sizes)
    for index in (range(total) if total <= count
                  else sorted(random.Random(0).sample(range(total), count))):
        picked = []
        for values, size in zip(settings, sizes):
            index, at = divmod(index, size)
            picked.append(values[at])
        yield tuple(picked)


def _parse_choices(choices: Any, key: str, check: Callable[[Any, str], None], name: str
                   ) -> tuple[Any, ...]:
    """A categorical parameter's choices, each one a valid setting (lists become tuples)."""
    if not isinstance(choices, list) or not choices:
        raise MnistlabError(f"{key}: choices must be a non-empty list, got {quote(choices)}")
    if len(choices) > MAX_CHOICES:
        raise MnistlabError(f"{key}: {len(choices):,} choices, above the limit of "
                            f"{MAX_CHOICES:,}; search a range (type = \"int\" or "
                            "\"float\") instead")
    clean = []
    for choice in choices:
        if isinstance(choice, list):
            if not choice or not all(isinstance(c, int) and not isinstance(c, bool)
                                     for c in choice):
                raise MnistlabError(f"{key}: list choices must be lists of whole numbers "
                                    f"(e.g. [128, 64]), got {quote(choice)}")
            choice = tuple(choice)
        elif not isinstance(choice, (str, int, float, bool)):
            raise MnistlabError(f"{key}: choice {quote(choice)} is not a number, text, "
                                "true/false or a list of whole numbers")
        check(_taken(choice), f"choice {quote(choice)}")
        clean.append(choice)
    encoded = [encode_choice(c) for c in clean]
    if len(set(map(repr, encoded))) != len(encoded):
        raise MnistlabError(f"{key}: choices repeat a value: {quote(choices)}")
    _one_value_once(clean, key, name)
    return tuple(clean)


def _one_value_once(choices: list[Any], key: str, name: str) -> None:
    """Two choices a run takes as one value (hidden [32] and 32, batch sizes 32 and 32.0):
    trials of both trained the same network under two names (hunt)."""
    seen: dict[Any, Any] = {}
    for choice in choices:
        taken = as_taken({name: _taken(choice)})
        if taken is None:
            continue  # refused by its own check
        first = seen.setdefault(taken[name], choice)
        if first is not choice:
            shown = [quote(_taken(c)) for c in (first, choice)]
            raise MnistlabError(f"{key}: choices {shown[0]} and {shown[1]} are one value, as a "
                                "run takes it; give each once")


def _parse_range(raw: dict[str, Any], whole: bool, key: str
                 ) -> tuple[float | int, float | int, bool, float | int | None]:
    """(low, high, log, step) of a numeric parameter, checked."""
    kind = "int" if whole else "float"
    for required in ("low", "high"):
        if required not in raw:
            raise MnistlabError(f"{key}: {kind} needs low and high")
    low = _number(raw["low"], f"{key}.low", whole=whole)
    high = _number(raw["high"], f"{key}.high", whole=whole)
    if low > high:
        raise MnistlabError(f"{key}: low ({low}) is above high ({high})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise MnistlabError(f"{key}.log: must be true or false, got {quote(log)}")
    step = raw.get("step")
    if step is not None:
        step = _number(step, f"{key}.step", whole=whole)
        if step <= 0:
            raise MnistlabError(f"{key}.step: must be > 0, got {step}")
        if log and (step != 1 or not whole):
            raise MnistlabError(f"{key}: log = true cannot be combined with step "
                                f"(Optuna samples log ranges continuously)")
    if log and low <= 0:
        raise MnistlabError(f"{key}: log = true needs low > 0, got {low}")
    if whole and step is None:
        step = 1
    if step is not None and not log:
        _check_steps(low, high, step, key)
    return low, high, log, step


def _check_steps(low: float, high: float, step: float, key: str) -> None:
    """A stepped range must be a whole number of steps (Optuna would move `high` with a
    warning) and hold at most MAX_STEPS values."""
    span, size = Decimal(str(high)) - Decimal(str(low)), Decimal(str(step))
    count = int(span // size) + 1
    if count > MAX_STEPS:
        raise MnistlabError(f"{key}: {low} .. {high} in steps of {step} is {count:,} values, "
                            f"above the limit of {MAX_STEPS:,}; use a larger step (a float "
                            "range without step is searched continuously)")
    if span % size:
        fitted = Decimal(str(low)) + (count - 1) * size
        raise MnistlabError(f"{key}: {low} .. {high} is not a whole number of steps of {step}; "
                            f"set high = {fitted} (or change the step)")


def _parse_when(raw: Any, earlier: list[Param], key: str) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict):
        raise MnistlabError(f"{key}.when: must be a table such as {{ optimizer = \"sgd\" }}, "
                            f"got {quote(raw)}")
    by_name = {p.name: p for p in earlier}
    when: dict[str, tuple[Any, ...]] = {}
    for raw_other, allowed in raw.items():
        other = raw_other.replace("-", "_")
        if other not in by_name:
            raise MnistlabError(f"{key}.when: {raw_other!r} is not a parameter searched above "
                                f"this one; a condition names an earlier [space.NAME]")
        param = by_name[other]
        if param.type != "categorical":
            raise MnistlabError(f"{key}.when: {raw_other!r} is a {param.type} range; conditions "
                                f"can only name categorical parameters")
        values = allowed if isinstance(allowed, list) and not (
            allowed and all(isinstance(v, int) for v in allowed) and
            any(isinstance(c, tuple) for c in param.choices)) else [allowed]
        if any(isinstance(c, tuple) for c in param.choices):  # hidden = 32 for [32]: its
            # choice, told "32 is not one of its choices (32, 64)" (hunt)
            values = [(v,) if isinstance(v, int) and not isinstance(v, bool) else v
                      for v in values]
        if not values:  # no value at all: never drawn, and the report failed (hunt)
            raise MnistlabError(f"{key}.when: {raw_other} = [] lists no value; give one or "
                                f"more of its choices ({param.describe()})")
        encoded = tuple(encode_choice(v) for v in values)
        missing = [v for v in encoded if v not in param.encoded_choices]
        if missing:
            raise MnistlabError(f"{key}.when: {raw_other} = {quote(missing[0])} is not one of its "
                                f"choices ({param.describe()})")
        when[other] = encoded
    return when


# --- presets ---------------------------------------------------------------------------------
def list_presets() -> list[str]:
    return list_presets_in(PRESET_PACKAGE)


def load_space(name_or_path: str) -> TuneSpec:
    """A preset name (see `mnistlab tune --list`) or a path to a search-space TOML file."""
    data, where = read_preset_or_file(name_or_path, PRESET_PACKAGE, "tune")
    return parse_space(data, where=where)


def _parse_compare(raw: dict[str, Any], base: TrainConfig, where: str) -> Compare:
    allowed = {"label", "settings", "val", "source", "note", "val_from"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise MnistlabError(f"{where} [compare]: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(allowed))}")
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        raise MnistlabError(f"{where} [compare]: settings must be a table")
    settings = underscored(settings, f"{where} [compare] settings")
    compared = checked_config({**base.to_dict(), **settings}, f"{where} [compare]")
    for key, why in {**JUDGED_ALIKE, "seed": "it is retrained with the best's seeds"}.items():
        if getattr(compared, key) != getattr(base, key):  # (hunt) set beside the best as alike
            raise MnistlabError(
                f"{where} [compare]: settings give {key} = {quote(settings[key])}, where "
                f"[base] has {quote(getattr(base, key))}: the comparison is set beside the "
                f"best configuration's retrained runs, and {why.replace('each', 'both')}; "
                "leave it out")
    val = raw.get("val")
    if val is not None:
        val = float(_number(val, f"{where} [compare].val", whole=False))
        if not 0 < val <= 100:
            raise MnistlabError(f"{where} [compare].val: a validation accuracy in % (0-100], "
                                f"got {val}")
    val_from = raw.get("val_from", "")
    if val_from not in ("", "train", "test"):
        raise MnistlabError(f"{where} [compare].val_from: \"train\" or \"test\" (where the "
                            f"published figure was measured), got {quote(val_from)}")
    label = str(raw.get("label", ""))
    if label == "reference configuration":  # what earlier versions wrote into a search's
        label = ""  # space.toml for none: still said in the report's language (review)
    return Compare(label, dict(settings), val,
                   str(raw.get("source", "")), str(raw.get("note", "")), val_from)
