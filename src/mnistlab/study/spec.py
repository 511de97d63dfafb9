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
    variants = [{ label = "trial 1", model = "cnn", epochs = 10,
                  es = { label = "ensayo 1" } }]  # a label in the Spanish report
    [final]                      # explicit settings, or "best" = best value of each factor
    choose = "explicit"
    settings = { optimizer = "adam", batch_size = 32, epochs = 30 }
    [quick]                      # what --quick changes (fewer epochs / a data subset)
    train_subset = 10000

Everything is validated on load, each problem in one line naming the key: every value has the
shape its key takes (a table, a list, text, ...), the name can be a folder name, every
combination makes a valid TrainConfig of a size that fits this machine (models.check_size, on
nominal 28x28 images), and the plan stays within MAX_SEEDS seeds and MAX_RUNS runs (a grid is
counted before it is made).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    JUDGED_ALIKE,
    SEED_LIMIT,
    SETTINGS,
    TRANSLATED,
    VAL_FROM,
    TrainConfig,
    as_taken,
    check_name,
    control_character,
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
from ..messages import (
    catalogue,
    in_words,
    named_setting,
    setting_text,
    settings_text,
    value_said,
)
from ..models import checked_config

PRESET_PACKAGE = "mnistlab.study.presets"
# Seeds per configuration: a mean ± sd settles within a few; beyond 1,000 more seeds show
# nothing new and cost days of training.
MAX_SEEDS = 1_000
# Runs a study may plan (seeds × settings, the final model's included): 10,000 is a week of
# CPU at a minute a run, and parsing and planning that many take ~2 s each here (measured
# with 9,999 one-value experiments). A file asking for more is a mistake
# (a grid with one factor too many, seeds = 1000000000) refused before anything is made.
MAX_RUNS = 10_000


def check_plan_size(seeds: Any, settings: int, base_seed: int, where: str,
                    ensemble: int = 1) -> None:
    """Refuse, in one line naming the limit, a number of seeds or planned runs (seeds ×
    settings) above the limits, or seeds counting up past the largest seed (an ensemble of
    N networks takes N seeds per replicate: TrainConfig.replicate)."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= MAX_SEEDS:
        raise MnistlabError(f"{where}: seeds must be a whole number from 1 to {MAX_SEEDS:,}, "
                            f"got {quote(seeds)}")
    if seeds * settings > MAX_RUNS:
        raise MnistlabError(f"{where}: {seeds:,} seeds × {settings:,} settings would plan "
                            f"{seeds * settings:,} runs, above the limit of {MAX_RUNS:,}; use "
                            "fewer seeds, values or grid factors")
    if base_seed + seeds * ensemble > SEED_LIMIT:
        each = f" ({ensemble} networks per ensemble)" if ensemble > 1 else ""
        raise MnistlabError(f"{where}: seeds count up from the base seed {base_seed:,} to "
                            f"{base_seed + seeds * ensemble - 1:,}{each}, past the largest "
                            "seed (2**62 - 1); use a smaller seed in [base]")


@dataclass(frozen=True)
class Variant:
    """One setting of an experiment: a label and the changes it makes to the base."""

    label: str  # part of what the variant is: results are stored under it
    changes: dict[str, Any]
    original: dict[str, float] = field(default_factory=dict)  # published figures, if any
    # how the label reads in other languages, e.g. {"es": {"label": "0,01"}}: shown, never stored
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def text(self, name: str, lang: str) -> str:
        """`label` in `lang`, falling back to English."""
        return _translated(self, name, lang)


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

    def heading(self, lang: str) -> str:
        """What the report calls this experiment: its title in `lang`, else its name."""
        return self.text("title", lang) or self.name

    def shown(self, label: str, lang: str) -> str:
        """The variant stored as `label`, as a reader of `lang` reads it."""
        return next((v.text("label", lang) for v in self.variants if v.label == label), label)

    def is_base(self, label: str, base: Any) -> bool:
        """Whether the variant stored as `label` is the base (`base`: its settings as a
        folder's study.json keeps them): every change it makes is the base's value."""
        variant = next((v for v in self.variants if v.label == label), None)
        return (variant is not None and isinstance(base, dict)
                and all(base.get(key) == value for key, value in variant.changes.items()))

    def run_name(self, label: str, lang: str) -> str:
        """The variant stored as `label` named in a sentence: `lr=0.01` (`tasa de aprendizaje
        0,01`); a trial's or a grid cell's label says it all."""
        return variant_name(self.factor, self.shown(label, lang), lang)


def variant_name(factor: str, shown: str, lang: str = "en") -> str:
    """A variant of `factor` whose label reads `shown`, as the report names it: a grid's
    label names its settings already (a grid of one factor too: "epochs=epochs=3")."""
    if factor == "trial" or "×" in factor or shown.startswith(f"{factor}="):
        return shown
    return named_setting(factor, shown, lang)


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
    # where the original's validation images came from, where the study knows ("test": its
    # report says so and that we hold them out of the training set)
    original_val_from: str = ""
    is_quick: bool = False  # the --quick form: numbers not comparable with the original's
    quick_epochs: int | None = None  # the --quick form's cap on epochs, if it has one
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # here rather than in the parser, so `dataclasses.replace(spec, seeds=N)` (the CLI's
        # --seeds) is held to the same limits
        settings = sum(len(e.variants) for e in self.experiments)
        check_plan_size(self.seeds, settings + (self.final.choose != "none"), self.base.seed,
                        f"study {self.name}", self.widest_ensemble())

    @property
    def has_original(self) -> bool:
        """Published figures to compare with (a quick form then says it is not comparable
        with them; a study of one's own, with none, was told so too)."""
        return bool(self.original_source or self.original_base or self.final.original
                    or any(v.original for e in self.experiments for v in e.variants))

    def widest_ensemble(self) -> int:
        """The most networks any run of the plan trains (base, variants or final)."""
        changes = [v.changes for e in self.experiments for v in e.variants]
        sizes = [c.get("ensemble") for c in [*changes, self.final.settings]]
        return max([self.base.ensemble, *(n for n in sizes if isinstance(n, int))])

    def text(self, name: str, lang: str) -> str:
        """`title` or `description` in `lang`, falling back to English."""
        return _translated(self, name, lang)

    def untranslated(self, lang: str) -> list[str]:
        """The file's own texts a report in `lang` shows as written, for want of a
        translation: its title and description, experiments' titles and notes, named
        variants' labels (a value's or a grid cell's label is put into words by the report)."""
        if lang == "en":
            return []
        missing = [f"its {name}" for name in ("title", "description")
                   if getattr(self, name) and name not in self.translations.get(lang, {})]
        for e in self.experiments:
            missing += [f"the {name} of experiment {e.name!r}" for name in ("title", "note")
                        if getattr(e, name) and name not in e.translations.get(lang, {})]
            labels = [v.label for v in e.variants if e.factor == "trial"
                      and "label" not in v.translations.get(lang, {})]
            if labels:
                missing.append(f"the variant label{'s' * (len(labels) > 1)} "
                               f"{', '.join(map(repr, labels))} of experiment {e.name!r}")
        return missing

    def figure_stems(self) -> dict[str, str]:
        """{experiment name: the start of its figures' file names} (plots/<stem>-points.png):
        the name with dashes for spaces (a Markdown image's path cannot hold one), and a
        number after it where that would be another experiment's, also on a disk that
        ignores case, or the final model's ("lr 1" and "lr-1" drew one file, and the first
        section showed the second's plots)."""
        stems: dict[str, str] = {}
        taken = {"final"}  # plots/final-curves.png is the final model's
        for exp in self.experiments:
            stem = base = "-".join(exp.name.split())
            number = 1
            while stem.casefold() in taken:
                number += 1
                stem = f"{base}-{number}"
            taken.add(stem.casefold())
            stems[exp.name] = stem
        return stems

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
            dataclasses.replace(e, variants=tuple(dataclasses.replace(v, changes=cap(v.changes))
                                                  for v in e.variants))
            for e in self.experiments)
        for e in experiments:
            _warn_quick_alike(e, base, self.quick)
        final = FinalSpec(self.final.choose, cap(self.final.settings), self.final.original)
        return dataclasses.replace(self, name=self.name + "-quick", base=base,
                                   experiments=experiments, final=final, quick={},
                                   is_quick=True,
                                   quick_epochs=int(epochs_cap) if epochs_cap else None)


def _warn_quick_alike(experiment: Experiment, base: TrainConfig, quick: dict[str, Any]) -> None:
    """Say where the [quick] settings make variants of one experiment the same network (epochs
    20 and 30 both capped at 3; filters beside a quick mlp): the quick form still runs, one row
    per label, but those rows cannot tell the values apart. The full form refuses the same."""
    alike: dict[str, list[str]] = collections.defaultdict(list)
    for v in experiment.variants:
        alike[_network_key(TrainConfig.from_dict({**base.to_dict(), **v.changes}))].append(
            v.label)
    merged = [labels for labels in alike.values() if len(labels) > 1]
    if merged:
        groups = " | ".join(in_words([repr(label) for label in labels], "en")
                            for labels in merged)
        given = ", ".join(f"{key} = {value!r}" for key, value in quick.items())
        warnings.warn(f"--quick: in experiment {experiment.name}, [quick] ({given}) makes "
                      f"{groups} train the same network, so the quick form cannot tell them "
                      "apart", stacklevel=3)


def _shown_values(label: str, values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The label of a value (one factor) or a grid's cell (several) in the other languages,
    where its numbers read otherwise there (a decimal comma)."""
    out = {}
    empty = catalogue().get(f"value.{next(iter(values))}.empty") if label == "" else None
    if empty is not None:  # augment "" (none) was an empty row label, tick and cell (hunt)
        return {lang: {"label": empty[lang]} for lang in ("en", *TRANSLATED)}
    for lang in TRANSLATED:
        shown = settings_text(values, lang) if len(values) > 1 \
            else value_said(*next(iter(values.items())), lang)
        if shown != label:
            out[lang] = {"label": shown}
    return out


def parse_study(data: dict[str, Any], *, where: str = "study") -> StudySpec:
    if not isinstance(data, dict):  # from Python: a list was "'int' has no 'replace'"
        raise MnistlabError(f"{where}: a study is a table of keys (name, base, experiment, "
                            f"...), as a study file's TOML reads; got {type(data).__name__}")
    data = python_table(data, where)  # built in Python: numpy's numbers, tuples and paths taken
    known = {"name", "title", "description", "seeds", "base", "experiment", "final", "quick",
             "original_source", "original_base", "original_val_from", *TRANSLATED}
    unknown = set(data) - known
    tables = {"base", "experiment", "final", "quick"}  # a study's: a typo there is a typo
    if unknown and not tables & set(data) and {k.replace("-", "_") for k in unknown} <= SETTINGS:
        # a run's config.toml: it listed some 36 keys as unknown
        raise MnistlabError(f"{where}: one run's settings, not a study; train them with "
                            f"`mnistlab train --config {where}`, or put them under [base] in a "
                            "study file with [[experiment]] sections")
    if unknown:
        raise MnistlabError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                            f"allowed: {', '.join(sorted(known))}")
    name = check_name(typed(data, "name", "text", where, name_from_stem(Path(where).stem)),
                      where)
    raw_base = underscored(typed(data, "base", "table", where, {},
                                 example="[base] with model = \"mlp\", ..."), f"{where} [base]")
    _study_keys_above(raw_base, known - tables, f"{where} [base]")
    base = _with_validation(checked_config(raw_base, f"{where} [base]"), f"{where} [base]")
    seeds = typed(data, "seeds", "whole number", where, 3)
    check_plan_size(seeds, 0, base.seed, where)
    experiments = _parse_experiments(data, base, seeds, where)
    final = _parse_final(typed(data, "final", "table", where, {"choose": "none"},
                               example="[final] with choose = \"best\""), base, where)
    quick = underscored(dict(typed(data, "quick", "table", where, {})), f"{where} [quick]")
    _study_keys_above(quick, known - tables, f"{where} [quick]")
    if quick:
        for key in quick:  # max_epoch was "did you mean epochs?", which changes the study
            if key != "max_epochs" and key not in SETTINGS:
                raise MnistlabError(f"{where} [quick]: unknown setting {quote(key)}"
                                    f"{did_you_mean(key, [*SETTINGS, 'max_epochs'])}")
        cap = typed(quick, "max_epochs", "whole number", f"{where} [quick]", 1)
        if cap < 1:
            raise MnistlabError(f"{where} [quick]: max_epochs must be a whole number >= 1, "
                                f"got {cap}")
        _with_validation(_check(base, {k: v for k, v in quick.items() if k != "max_epochs"},
                                f"{where} [quick]"), f"{where} [quick]")
    _check_quick_not_varied(quick, experiments, where)
    _warn_unread(raw_base, base, experiments, final, where)
    spec = StudySpec(
        name=name, title=typed(data, "title", "text", where, ""),
        base=base, experiments=tuple(experiments), final=final, seeds=seeds,
        description=typed(data, "description", "text", where, ""), quick=quick,
        original_source=typed(data, "original_source", "text", where, ""),
        original_val_from=_original_val_from(data, where),
        original_base=dict(typed(data, "original_base", "table of numbers", where, {},
                                 example="e.g. { train = 90.1, val = 88.0 }")),
        translations=read_translations(data, {"title", "description"}, where))
    if final.choose == "best":
        _check_judged_alike(experiments, base, where)
    if not experiments and final.choose == "none":
        raise MnistlabError(f"{where}: nothing to train; add an [[experiment]] (e.g. name = "
                            "\"lr\", factor = \"lr\", values = [0.01, 0.1]) or a [final]")
    return spec


def _parse_experiments(data: dict[str, Any], base: TrainConfig, seeds: int,
                       where: str) -> list[Experiment]:
    """Each [[experiment]], checked on its own: a file with a mistake in three experiments
    is told all three in one line, not one per run of the command."""
    experiments: list[Experiment] = []
    problems: list[MnistlabError] = []
    named: dict[str, int] = {}  # each name, by the first experiment that has it
    settings_so_far = 0
    for i, raw in enumerate(typed(data, "experiment", "array of tables", where, [],
                                  example="[[experiment]] sections")):
        at = f"{where} [[experiment]] #{i + 1}"
        name = raw.get("name") if isinstance(raw, dict) else None
        try:  # a name given twice is said even where the first of them has a problem too
            if isinstance(name, str) and name in named:
                raise MnistlabError(f"{at}: the name {name!r} is #{named[name]}'s too; give "
                                    "each experiment a name of its own")
            if isinstance(name, str):
                named[name] = i + 1
            exp = _parse_experiment(raw, base, at, settings_before=settings_so_far, seeds=seeds)
        except MnistlabError as exc:
            problems.append(exc)
            continue
        experiments.append(exp)
        settings_so_far += len(exp.variants)
    if len(problems) == 1:
        raise problems[0]
    if problems:  # each said without the file's name, which leads the line once; apart with
        said = [str(p).removeprefix(f"{where} ") for p in problems]  # what no problem holds
        raise MnistlabError(f"{where}: {len(problems)} problems: "
                            + " | ".join(f"({n}) {text}" for n, text in enumerate(said, 1)))
    return experiments


def _original_val_from(data: dict[str, Any], where: str) -> str:
    value = typed(data, "original_val_from", "text", where, "")
    if value not in ("", *VAL_FROM):
        raise MnistlabError(f"{where}: original_val_from must be \"train\" or \"test\" (where "
                            f"the original's validation images came from), got {quote(value)}")
    return value


def _check_judged_alike(experiments: list[Experiment], base: TrainConfig, where: str) -> None:
    """[final] choose = "best" picks each experiment's variant of the best validation accuracy:
    one varying where validation comes from (val_from = "test": its test score) or what data
    it learns was compared, and chosen, on another measure."""
    for exp in experiments:
        varied = sorted({key for v in exp.variants for key, value in v.changes.items()
                         if key in JUDGED_ALIKE and value != getattr(base, key)})
        if varied:
            raise MnistlabError(
                f"{where}: experiment {exp.name!r} varies {varied[0]}, and [final] choose = "
                f"\"best\" picks by validation accuracy: {JUDGED_ALIKE[varied[0]]}; set it "
                "in [base], or choose = \"explicit\"")


EXPERIMENT_KEYS = ("name", "factor", "values", "grid", "variants", "original", "test", "title",
                   "note", *TRANSLATED)
FINAL_KEYS = ("choose", "settings", "original")


def _known_keys(raw: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise MnistlabError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(allowed)}")


def _parse_final(raw: dict[str, Any], base: TrainConfig, where: str) -> FinalSpec:
    where = f"{where} [final]"
    _known_keys(raw, FINAL_KEYS, where)
    choose = typed(raw, "choose", "text", where, "explicit")
    if choose not in ("explicit", "best", "none"):
        raise MnistlabError(f"{where}: choose must be explicit, best or none")
    settings = underscored(typed(raw, "settings", "table", where, {},
                                 example="e.g. settings = { epochs = 30 }"), where)
    if "seed" in settings:
        raise MnistlabError(f"{where}: seed cannot be set for the final model: it trains with "
                            "each of the study's seeds (seeds = N, --seeds N)")
    if choose != "none":
        _check(base, settings, where)
    elif settings:
        raise MnistlabError(f"{where}: settings are for a final model, and choose = \"none\" "
                            "trains none; remove them, or choose \"best\" or \"explicit\"")
    original = dict(typed(raw, "original", "table of numbers", where, {},
                          example="e.g. { val = 88.0 }"))
    check_figures(original, f"{where} original")
    return FinalSpec(choose, settings, original)


def _check_quick_not_varied(quick: dict[str, Any], experiments: list[Experiment], where: str
                            ) -> None:
    """A [quick] setting an experiment varies: each variant keeps its own value, so --quick
    trained 20,000 and 50,000 images where [quick] said 2,000, and the quick base's value, in
    no run, left the table without its reference row (hunt)."""
    for exp in experiments:  # a variant keeps a value it sets itself: refused only where
        # every variant sets it (review: one named variant setting it was refused)
        varied = [key for key in quick if all(key in v.changes for v in exp.variants)]
        if varied:
            key = varied[0]
            raise MnistlabError(
                f"{where} [quick]: {key} is what experiment {exp.name!r} varies, so --quick "
                f"would train its values as they are and {key} = {quick[key]!r} in no run; "
                f"leave {key} out of [quick]" + (" (max_epochs caps each value of epochs)"
                                                 if key == "epochs" else ""))


def _warn_unread(raw_base: dict[str, Any], base: TrainConfig, experiments: list[Experiment],
                 final: FinalSpec, where: str) -> None:
    """A setting in [base] or [final] that no run it reaches reads (momentum beside Adam,
    filters beside an mlp): said, as `train` says it of a flag; it passed without a word, and
    the report listed it among the final model's settings (hunt)."""
    from ..models import settings_unread

    variants = [TrainConfig.from_dict({**base.to_dict(), **changes}) for changes in
                _distinct([v.changes for exp in experiments for v in exp.variants])]
    finals = _final_candidates(base, experiments, final)
    default = TrainConfig()
    for table, given, configs in (("[base]", raw_base, [base, *variants, *finals]),
                                  ("[final] settings", final.settings, finals)):
        unread_of = [settings_unread(c) for c in configs]
        for key, value in given.items():
            unread = [of.get(key) for of in unread_of]
            # a zero or an off is doing nothing as written (val_size = 0 beside val_from
            # test), and nesterov under one-cycle needs a momentum to be valid, read or not
            needed = key == "momentum" and any(c.nesterov for c in configs)
            if (configs and all(unread) and key in default.to_dict() and value and not needed
                    and value != getattr(default, key)):
                warnings.warn(f"{where} {table}: {key} = {value!r} does nothing in any run of "
                              f"this study ({unread[0][0]}); leave it out, or {unread[0][1]}",
                              stacklevel=3)


FINALS_LOOKED_AT = 2000  # best-of-each combinations a study's unread check looks through


def _distinct(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One of each kind of `changes` by what decides whether a setting is read
    (models.UNREAD_DECIDED_BY), the first of its kind: a study of 200 experiments took 50 s
    to read, building and checking 180,000 configs of which a handful differ in what they
    read (hunt)."""
    from ..models import UNREAD_DECIDED_BY

    kinds: dict[tuple[Any, ...], dict[str, Any]] = {}
    for one in changes:  # and nesterov, which the check of momentum beside it reads
        kinds.setdefault(tuple(repr(one.get(k)) for k in (*UNREAD_DECIDED_BY, "nesterov")), one)
    return list(kinds.values())


def _final_candidates(base: TrainConfig, experiments: list[Experiment], final: FinalSpec
                      ) -> list[TrainConfig]:
    """The configurations the final model may train: its settings over the base, or over each
    combination of one variant per experiment (choose = "best"). A base setting the final
    alone reads was said to do nothing (review: momentum beside an adam base, the final on
    sgd beside cosine). Past FINALS_LOOKED_AT combinations, those of two experiments at a
    time: whether a run reads a setting turns on two others at most (momentum: the optimizer
    and the schedule), and everything was left unsaid there, or said wrongly (review)."""
    if final.choose == "none":
        return []
    picks: list[list[dict[str, Any]]] = []
    if final.choose == "best":
        picks = [_distinct([{}, *(v.changes for v in exp.variants)]) for exp in experiments
                 if not exp.test]
    if math.prod(len(p) for p in picks) <= FINALS_LOOKED_AT:
        combos = list(itertools.product(*picks))
    else:
        combos = [pair for one, two in itertools.combinations(picks, 2)
                  for pair in itertools.product(one, two)]
    return [TrainConfig.from_dict({**base.to_dict(), **{k: v for c in combo for k, v in
                                                        c.items()}, **final.settings})
            for combo in combos]


def _study_keys_above(table: dict[str, Any], study_keys: set[str], where: str) -> None:
    """A study's own key (seeds = 5) written below [base]: TOML put it in that table, where
    it was "unknown setting 'seeds' (did you mean seed?)", a fix that changes the meaning."""
    misplaced = sorted(k for k in table if k in study_keys)
    if misplaced:
        table = where.rsplit(" ", 1)[-1]  # [base] or [quick]
        raise MnistlabError(f"{where}: {', '.join(misplaced)} is the study's, not a setting: "
                            f"write it above the first [table] (TOML puts every key after "
                            f"{table} in that table)")


def _check(base: TrainConfig, changes: dict[str, Any], where: str) -> TrainConfig:
    """The config `changes` make of the base, valid and of a size that fits (on nominal
    MNIST-sized images: build_model checks again with the real ones)."""
    return checked_config({**base.to_dict(), **changes}, where)


def _with_validation(config: TrainConfig, where: str) -> TrainConfig:
    """A study's runs are compared, and its final model chosen, by validation accuracy (the
    final model itself may train on every training image)."""
    return require_validation(config, where, "a study compares its runs by their validation "
                              "accuracy (val_size 0 belongs to a single `mnistlab train` on "
                              "every training image, or to [final] settings)")


def _parse_experiment(raw: dict[str, Any], base: TrainConfig, where: str, *,
                      settings_before: int = 0, seeds: int = 1) -> Experiment:
    name = typed(raw, "name", "text", where, "")
    if not name:
        raise MnistlabError(f"{where}: every experiment needs a name")
    check_name(name, where, spaces=True)  # plots/<name>-points.png
    where = f"{where} ({name})"
    _known_keys(raw, EXPERIMENT_KEYS, where)
    kinds = [k for k in ("values", "grid", "variants") if k in raw]
    if len(kinds) != 1:
        raise MnistlabError(f"{where}: give exactly one of values (with factor), grid or variants")
    if "factor" in raw and kinds != ["values"]:  # passed over without a word (a warning:
        names = "a grid names its" if kinds == ["grid"] else "variants name their"
        warnings.warn(f"{where}: factor is read with values only; {names} own settings, so "
                      "this factor is not used", stacklevel=2)  # not refused: files had it
    check_plan_size(seeds, settings_before + _count_settings(raw, kinds[0], where), base.seed,
                    where)
    if kinds == ["values"]:
        factor, variants = _values_variants(raw, where)
    elif kinds == ["grid"]:
        factor, variants = _grid_variants(raw, where)
    else:
        factor, variants = "trial", _listed_variants(raw, where)
    _check_variants(variants, kinds[0], where)
    test = typed(raw, "test", "true or false", where, False)
    configs = []
    for v in variants:
        shown = v.label if v.label and control_character(v.label) is None else quote(v.label)
        at = f"{where}: {shown}"  # an empty list is labelled "": it read "(o): : hidden"
        check_figures(v.original, f"{where} original {quote(v.label)}", test=test)
        configs.append(_with_validation(_check(base, v.changes, at), at))
    _check_read(variants, configs, where)  # the plainer word where no run reads the setting
    _check_distinct(variants, configs, base, where, kinds[0])
    return Experiment(name, factor, tuple(variants), test,
                      typed(raw, "title", "text", where, ""), typed(raw, "note", "text", where, ""),
                      read_translations(raw, {"title", "note"}, where))


def studied_placement(config: TrainConfig, base: TrainConfig,
                      keyed_at: Mapping[str, Any]) -> dict[str, Any]:
    """`keyed_at` but for a data_dir or device the study itself sets apart from its base (a
    variant or the final model): that one is part of what the run is."""
    return {k: v for k, v in keyed_at.items() if getattr(config, k) == getattr(base, k)}


def _check_distinct(variants: list[Variant], configs: list[TrainConfig], base: TrainConfig,
                    where: str, kind: str) -> None:
    """No two variants of one experiment train the same network: "32,16" and [32, 16], two
    named variants that are both the base, or a grid's mlp cells of two filter counts were two
    rows of one network, with a made-up interval between them. Compared as the plan names
    runs (a device the base has is no difference) and as the network trains (models.as_trained:
    a setting its model does not read, or activation "" beside its model's own, is none)."""
    unplaced = TrainConfig().placement()
    seen: dict[str, tuple[str, TrainConfig]] = {}
    for v, config in zip(variants, configs):
        placed = config.replace(**studied_placement(config, base, unplaced))
        key = _network_key(placed)
        if key not in seen:
            seen[key] = (v.label, placed)
            continue
        label, first = seen[key]
        why = _alike_because(first, placed)
        fix = ("list the cells that differ as variants instead of a grid" if kind == "grid"
               else "give each once")
        raise MnistlabError(f"{where}: {label!r} and {v.label!r} "
                            + (f"train the same network ({why}); {fix}" if why else
                               f"are the same settings (one network, trained once); {fix}"))


def _network_key(config: TrainConfig) -> str:
    """What two configs share where they train one network (models.as_trained), as text."""
    from ..models import as_trained

    return json.dumps(as_trained(config).identity_dict(), sort_keys=True, default=str)


def _alike_because(first: TrainConfig, second: TrainConfig) -> str:
    """Why two configs that differ in their settings train one network ("" where they do not
    differ): what `as_trained` set aside."""
    from ..models import settings_unread

    unread = settings_unread(first)
    theirs = second.identity_dict()
    told = []
    for name in [k for k, v in first.identity_dict().items() if theirs.get(k) != v]:
        if name in unread:
            told.append(f"{name}: {unread[name][0]}")
        elif name == "activation":
            told.append(f'activation "" is {first.model}\'s own, {first.resolved_activation}')
        elif name == "augment":
            told.append("augment gives the same augmentation, written two ways")
    return "; ".join(told)


def _check_read(variants: list[Variant], configs: list[TrainConfig], where: str) -> None:
    """Refuse a setting the experiment varies that none of its runs reads: `filters` beside an
    mlp, `momentum` beside Adam. Every value trained the same network, and the report read as
    "filters make no difference" (a search refuses the same)."""
    from ..models import settings_unread

    unread = [settings_unread(config) for config in configs]
    for key in dict.fromkeys(k for v in variants for k in v.changes):
        if any(key not in u for u in unread):
            continue
        why = "; ".join(dict.fromkeys(u[key][0] for u in unread))  # each reason once
        raise MnistlabError(f"{where}: {key} does nothing here ({why}): every value would train "
                            f"the same network; leave it out, or {unread[0][key][1]}")


def _check_variants(variants: list[Variant], kind: str, where: str) -> None:
    """At least one variant, each under its own label (rows and the final choice are found by
    label: two alike were one row of both, n counted twice), none setting the seed (every
    setting trains with each of the study's seeds: a seed set here was overwritten)."""
    if not variants:
        raise MnistlabError(f"{where}: {kind} is empty; list at least one")
    labels = collections.Counter(v.label for v in variants)
    twice = [label for label, count in labels.items() if count > 1]
    if twice:
        fix = "give each value once" if kind != "variants" else "give each variant its own label"
        given = [v.changes for v in variants if v.label == twice[0]]
        quoted = [g for g in given[:2] if any(isinstance(v, str) for v in g.values())]
        if kind != "variants" and len(quoted) == 1:  # [0.1, "0.1"]: not two close values
            raise MnistlabError(f"{where}: {_given(given[0])} and {_given(given[1])}: one is "
                                "text in quotes; write numbers without quotes")
        if kind != "variants" and not _alike(*given[:2]):  # 0.1234567 and 0.1234568
            raise MnistlabError(f"{where}: {_given(given[0])} and {_given(given[1])} are both "
                                f"labelled {twice[0]!r} (6 significant digits name a value's "
                                "rows); give values that differ within them")
        raise MnistlabError(f"{where}: {twice[0]!r} is listed twice; {fix}")
    alike = collections.defaultdict(list)  # "a" and "a ": one label in every table
    for v in variants:
        alike[" ".join(v.label.split())].append(v.label)
    shown = next((found for found in alike.values() if len(found) > 1), None)
    if shown:
        raise MnistlabError(f"{where}: {shown[0]!r} and {shown[1]!r} differ only in spaces, "
                            "so tables and figures would show them alike; give each variant "
                            "a label of its own")
    if any("seed" in v.changes for v in variants):
        raise MnistlabError(f"{where}: seed cannot vary in an experiment: every setting is "
                            "trained with each of the study's seeds (seeds = N, --seeds N), and "
                            "the noise marks compare settings across them")


def _alike(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Two variants' changes as the settings they make: hidden = [32] and 32 are one value
    (they were told apart as "both labelled '32'... give values that differ")."""
    return one == other or (as_taken(one) is not None and as_taken(one) == as_taken(other))


def _given(changes: dict[str, Any]) -> str:
    """A variant's values as the file gives them (repr: every digit)."""
    return ", ".join(f"{key}={value!r}" for key, value in changes.items())


def _count_settings(raw: dict[str, Any], kind: str, where: str) -> int:
    """How many settings an experiment makes, from the sizes of its lists alone (a grid is
    counted before itertools.product would make its cells)."""
    if kind == "values":
        return len(typed(raw, "values", "list", where, example="e.g. values = [0.01, 0.1]"))
    if kind == "variants":
        return len(typed(raw, "variants", "array of tables", where,
                         example="e.g. variants = [{ label = \"a\", lr = 0.1 }]"))
    grid = typed(raw, "grid", "table", where,
                 example="e.g. grid = { lr = [0.01, 0.1], optimizer = [\"sgd\", \"adam\"] }")
    if not grid:
        raise MnistlabError(f"{where}: grid is empty; give each factor a list of values")
    return math.prod(len(typed(grid, f, "list", f"{where} grid", example="a list of values"))
                     for f in grid)


ORIGINAL_KEYS = ("train", "val")  # the figures a values or grid experiment's table shows
TRIAL_KEYS = ("acc", "loss")  # a test experiment's (the trials'): what the original reported


def _originals(raw: dict[str, Any], where: str, labels: list[str]) -> dict[str, Any]:
    """`original = { "<label>" = { val = ... } }`: published figures by variant label. A label
    no variant has, or a key the report does not show, was dropped without a word."""
    originals = typed(raw, "original", "table", where, {},
                      example="e.g. original = { \"0.01\" = { val = 85.2 } }")
    for label in originals:
        typed(originals, label, "table of numbers", f"{where} original",
              example="e.g. { train = 90.1, val = 88.0 }")  # its keys: with its experiment's
        if label not in labels:
            raise MnistlabError(f"{where} original: no variant is labelled {quote(label)}; "
                                f"the labels are {', '.join(map(quote, labels))}")
    return originals


def check_figures(figures: dict[str, Any], where: str, *, test: bool = False) -> None:
    """An original's figures: only those a table shows (a typo, vall, or a test figure was
    dropped without a word). A test experiment's table (the trials) shows the original's
    reported accuracy and loss together, as fractions; the others its train and validation
    accuracy, in percent (a variant's val under test = true was left out of the trials' table
    while the conclusions compared it)."""
    keys = TRIAL_KEYS if test else ORIGINAL_KEYS
    shown = ("a test experiment's table shows acc and loss together, as fractions" if test
             else "the figures shown are train and val (percent)")
    unknown = sorted(set(figures) - set(keys))
    if unknown:
        other = ("" if not set(unknown) & {*ORIGINAL_KEYS, *TRIAL_KEYS} else
                 "; train and val are for experiments without test = true" if test else
                 "; acc and loss are for experiments with test = true")
        raise MnistlabError(f"{where}: unknown key(s) {', '.join(unknown)}; {shown}{other}")
    if test and figures and set(figures) != set(keys):
        raise MnistlabError(f"{where}: {' and '.join(sorted(figures))} alone; {shown}")


def _values_variants(raw: dict[str, Any], where: str) -> tuple[str, list[Variant]]:
    factor = typed(raw, "factor", "text", where, "")
    if not factor:
        raise MnistlabError(f"{where}: values need a factor (a setting name, e.g. lr)")
    factor = setting_name(factor, where, "factor: no setting is named")
    labels = [setting_text(value) for value in raw["values"]]
    originals = _originals(raw, where, labels)
    return factor, [Variant(label, {factor: value}, dict(originals.get(label, {})),
                            _shown_values(label, {factor: value}))
                    for label, value in zip(labels, raw["values"])]


def _grid_variants(raw: dict[str, Any], where: str) -> tuple[str, list[Variant]]:
    grid = raw["grid"]
    underscored(grid, f"{where} grid")  # batch-size and batch_size: one setting, twice
    factors = [setting_name(f, where, "grid: no setting is named") for f in grid]
    combos = [dict(zip(factors, combo)) for combo in itertools.product(*grid.values())]
    labels = [", ".join(f"{f}={setting_text(v)}" for f, v in changes.items())
              for changes in combos]
    originals = _originals(raw, where, labels)
    variants = [Variant(label, changes, dict(originals.get(label, {})),
                        _shown_values(label, changes)) for label, changes in zip(labels, combos)]
    return "×".join(factors), variants


def _listed_variants(raw: dict[str, Any], where: str) -> list[Variant]:
    variants: list[Variant] = []
    if "original" in raw:
        raise MnistlabError(f"{where}: original goes inside each variant with variants "
                            "(e.g. { label = \"a\", original = { val = 88.0 } })")
    for item in raw["variants"]:
        item = dict(item)
        at = f"{where} variant {len(variants) + 1}"
        label = typed(item, "label", "text", at, f"variant {len(variants) + 1}")
        if not label.strip():  # a row of every table with no name
            raise MnistlabError(f"{at}: label is empty; give the variant a label (or leave "
                                "label out: it is then named by its number)")
        if control_character(label) is not None:  # a row of the tables, a part of run names
            raise MnistlabError(f"{at}: label {quote(label)} holds a line break or another "
                                "control character; write it on one line")
        original = typed(item, "original", "table of numbers", at, {},
                         example="e.g. { acc = 0.9, loss = 0.33 }")
        translations = read_translations(item, {"label"}, at)
        for key in ("label", "original", *TRANSLATED):
            item.pop(key, None)
        # "val-from" as the setting it spells: it went past the checks that read val_from
        # (choose = "best" judged by the test set), and beside val_from one was dropped (hunt)
        variants.append(Variant(label, underscored(item, at), dict(original), translations))
    return variants


# --- presets ---------------------------------------------------------------------------------
def list_presets() -> list[str]:
    return list_presets_in(PRESET_PACKAGE)


def load_study(name_or_path: str) -> StudySpec:
    """A preset name (see `mnistlab study --list`) or a path to a study TOML file."""
    data, where = read_preset_or_file(name_or_path, PRESET_PACKAGE, "study")
    return parse_study(data, where=where)


def kept_experiments(settings: Any, labels: Any = None) -> dict[str, Experiment]:
    """The experiments in the identity settings a study folder keeps (study.json: name, base,
    [[name, factor, test, [[label, changes], ...]], ...], ...), each variant's label in every
    language: as study.json's `labels` keep it ({experiment: {label: {lang: {"label": ...}}}},
    the study file's own words), else its numbers as the report writes them (`0,01`) and a
    preset's own words for its trials (folders written before `labels`). {} where they cannot
    be read."""
    try:
        name, kept = str(settings[0]), settings[2]
        preset = name.removesuffix("-quick")  # the quick form keeps the preset's labels
        words = ({e.name: {v.label: v.translations for v in e.variants}
                  for e in load_study(preset).experiments}
                 if preset in list_presets() else {})
        experiments = {}
        for exp_name, factor, test, variants in kept:
            own = {**words.get(exp_name, {}), **_kept_labels(labels, exp_name)}
            experiments[exp_name] = Experiment(exp_name, factor, tuple(
                Variant(label, changes, translations=own[label] if label in own
                        else _shown_values(label, changes) if factor != "trial" else {})
                for label, changes in variants), test=bool(test))
        return experiments
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, StopIteration,
            MnistlabError):
        return {}


def _kept_labels(labels: Any, experiment: str) -> dict[str, dict[str, dict[str, str]]]:
    """{label: translations} of one experiment as study.json's `labels` keep them; what is not
    text there is left out (a hand-edited file: the label then reads in English)."""
    kept = labels.get(experiment) if isinstance(labels, dict) else None
    if not isinstance(kept, dict):
        return {}
    return {label: {lang: {"label": said["label"]} for lang, said in by_lang.items()
                    if isinstance(said, dict) and isinstance(said.get("label"), str)}
            for label, by_lang in kept.items() if isinstance(by_lang, dict)}


