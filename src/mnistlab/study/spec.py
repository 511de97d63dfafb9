"""Study files: a base config, experiments varied against it, seeds, and a final model.

    name = "my-study"
    seeds = 3
    [base]                       # a full TrainConfig
    model = "mlp"
    [[experiment]]               # one factor at a time ...
    name = "learning-rate"
    factor = "lr"
    values = [0.0001, 0.001, 0.01]
    [[experiment]]               # ... or a grid of several factors ...
    name = "lr-x-optimizer"
    grid = { lr = [0.001, 0.01], optimizer = ["sgd", "adam"] }
    [[experiment]]               # ... or named variants (cumulative trials)
    name = "trials"
    test = true                  # these are final models: each is scored on the test set
    variants = [{ label = "trial 1", model = "cnn", epochs = 10 }]
    [final]                      # explicit settings, or "best" = best value of each factor
    choose = "explicit"
    settings = { optimizer = "adam", batch_size = 32, epochs = 30 }
    [quick]                      # what --quick changes (fewer epochs / a data subset)
    train_subset = 10000

Everything is validated on load: every combination must make a valid TrainConfig.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    TRANSLATED,
    TrainConfig,
    list_presets_in,
    read_preset_or_file,
    read_translations,
)
from ..errors import MnistlabError

PRESET_PACKAGE = "mnistlab.study.presets"


@dataclass(frozen=True)
class Variant:
    """One setting of an experiment: a label and the changes it makes to the base."""

    label: str
    changes: dict[str, Any]
    original: dict[str, float] = field(default_factory=dict)  # published figures, if any


def _translated(obj: Any, name: str, lang: str) -> str:
    return obj.translations.get(lang, {}).get(name) or getattr(obj, name)


@dataclass(frozen=True)
class Experiment:
    name: str
    factor: str  # field name, "a×b" for grids, "trial" for variants
    variants: tuple[Variant, ...]
    test: bool = False  # each variant is a final model scored on the test set
    title: str = ""
    note: str = ""
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def text(self, name: str, lang: str) -> str:
        """`title` or `note` in `lang`, falling back to English."""
        return _translated(self, name, lang)


@dataclass(frozen=True)
class FinalSpec:
    choose: str  # "explicit" | "best" | "none"
    settings: dict[str, Any]
    original: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    name: str
    title: str
    base: TrainConfig
    experiments: tuple[Experiment, ...]
    final: FinalSpec
    seeds: int = 3
    description: str = ""
    quick: dict[str, Any] = field(default_factory=dict)
    original_source: str = ""
    original_base: dict[str, float] = field(default_factory=dict)
    is_quick: bool = False  # the --quick form: numbers not comparable with the original's
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def text(self, name: str, lang: str) -> str:
        """`title` or `description` in `lang`, falling back to English."""
        return _translated(self, name, lang)

    def with_quick(self) -> StudySpec:
        """The --quick form: the [quick] changes applied to the base and every variant."""
        if not self.quick:
            return self
        quick = dict(self.quick)
        epochs_cap = quick.pop("max_epochs", None)

        def cap(changes: dict[str, Any]) -> dict[str, Any]:
            out = dict(changes)
            if epochs_cap and "epochs" in out:
                out["epochs"] = min(int(out["epochs"]), int(epochs_cap))
            return out

        base = TrainConfig.from_dict({**self.base.to_dict(), **quick})
        if epochs_cap:
            base = base.replace(epochs=min(base.epochs, int(epochs_cap)))
        experiments = tuple(
            Experiment(e.name, e.factor, tuple(Variant(v.label, cap(v.changes), v.original)
                                               for v in e.variants), e.test, e.title, e.note)
            for e in self.experiments)
        final = FinalSpec(self.final.choose, cap(self.final.settings), self.final.original)
        return dataclasses.replace(self, name=self.name + "-quick", base=base,
                                   experiments=experiments, final=final, quick={},
                                   is_quick=True)


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_study(data: dict[str, Any], *, where: str = "study") -> StudySpec:
    known = {"name", "title", "description", "seeds", "base", "experiment", "final", "quick",
             "original_source", "original_base", *TRANSLATED}
    unknown = set(data) - known
    if unknown:
        raise MnistlabError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                            f"allowed: {', '.join(sorted(known))}")
    base = TrainConfig.from_dict(data.get("base", {}), where=f"{where} [base]")
    seeds = data.get("seeds", 3)
    if not isinstance(seeds, int) or seeds < 1:
        raise MnistlabError(f"{where}: seeds must be a whole number >= 1, got {seeds!r}")
    experiments = []
    names = set()
    for i, raw in enumerate(data.get("experiment", [])):
        exp = _parse_experiment(raw, base, f"{where} [[experiment]] #{i + 1}")
        if exp.name in names:
            raise MnistlabError(f"{where}: two experiments are named {exp.name!r}")
        names.add(exp.name)
        experiments.append(exp)
    final_raw = data.get("final", {"choose": "none"})
    choose = final_raw.get("choose", "explicit")
    if choose not in ("explicit", "best", "none"):
        raise MnistlabError(f"{where} [final]: choose must be explicit, best or none")
    settings = dict(final_raw.get("settings", {}))
    if choose != "none":
        _check(base, settings, f"{where} [final]")
    final = FinalSpec(choose, settings, dict(final_raw.get("original", {})))
    quick = dict(data.get("quick", {}))
    if quick:
        _check(base, {k: v for k, v in quick.items() if k != "max_epochs"}, f"{where} [quick]")
    return StudySpec(
        name=str(data.get("name", Path(where).stem)), title=str(data.get("title", "")),
        base=base, experiments=tuple(experiments), final=final, seeds=seeds,
        description=str(data.get("description", "")), quick=quick,
        original_source=str(data.get("original_source", "")),
        original_base=dict(data.get("original_base", {})),
        translations=read_translations(data, {"title", "description"}, where))


def _check(base: TrainConfig, changes: dict[str, Any], where: str) -> TrainConfig:
    return TrainConfig.from_dict({**base.to_dict(), **changes}, where=where)


def _parse_experiment(raw: dict[str, Any], base: TrainConfig, where: str) -> Experiment:
    name = raw.get("name")
    if not name:
        raise MnistlabError(f"{where}: every experiment needs a name")
    where = f"{where} ({name})"
    kinds = [k for k in ("values", "grid", "variants") if k in raw]
    if len(kinds) != 1:
        raise MnistlabError(f"{where}: give exactly one of values (with factor), grid or variants")
    originals = raw.get("original", {})
    variants: list[Variant] = []
    if kinds == ["values"]:
        factor = raw.get("factor")
        if not factor:
            raise MnistlabError(f"{where}: values need a factor (a setting name, e.g. lr)")
        factor = factor.replace("-", "_")
        for value in raw["values"]:
            variants.append(Variant(_label(value), {factor: value},
                                    _original(originals, _label(value))))
    elif kinds == ["grid"]:
        grid = raw["grid"]
        factors = [f.replace("-", "_") for f in grid]
        factor = "×".join(factors)
        for combo in itertools.product(*grid.values()):
            changes = dict(zip(factors, combo))
            label = ", ".join(f"{f}={_label(v)}" for f, v in changes.items())
            variants.append(Variant(label, changes, _original(originals, label)))
    else:
        factor = "trial"
        for item in raw["variants"]:
            item = dict(item)
            label = str(item.pop("label", f"variant {len(variants) + 1}"))
            original = item.pop("original", {})
            variants.append(Variant(label, item, dict(original)))
    for v in variants:
        _check(base, v.changes, f"{where}: {v.label}")
    return Experiment(str(name), factor, tuple(variants), bool(raw.get("test", False)),
                      str(raw.get("title", "")), str(raw.get("note", "")),
                      read_translations(raw, {"title", "note"}, where))


def _original(originals: dict[str, Any], label: str) -> dict[str, float]:
    value = originals.get(label)
    return dict(value) if isinstance(value, dict) else {}


# --- presets ---------------------------------------------------------------------------------
def list_presets() -> list[str]:
    return list_presets_in(PRESET_PACKAGE)


def load_study(name_or_path: str) -> StudySpec:
    """A preset name (see `mnistlab study --list`) or a path to a study TOML file."""
    data, where = read_preset_or_file(name_or_path, PRESET_PACKAGE, "study")
    return parse_study(data, where=where)
