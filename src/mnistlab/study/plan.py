"""From a study spec to the distinct runs to train: pure functions, no I/O.

- Every (experiment, variant, seed) is a *cell*; each cell points at a run by its key (a hash of
  the full resolved config but its placement, and whether the test set is scored).
- Identical configurations are trained once: the base appears in several experiments.
- Prefix sharing: with a schedule that does not depend on the run's length (constant, no early
  stopping), a 5-epoch run is epoch 5 of the 30-epoch run with otherwise equal settings, so it
  is read off that run's history instead of trained. With cosine, step or one-cycle it is not
  (the learning rate at epoch 5 depends on the total), and both are trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import TrainConfig
from ..optim import schedule_depends_on_length
from .spec import StudySpec, studied_placement

Placement = Mapping[str, Any]  # data_dir and device (config.PLACEMENT)
UNPLACED: Placement = TrainConfig().placement()  # the defaults: what a new study's keys use


def run_key(config: TrainConfig, test: bool, keyed_at: Placement = UNPLACED) -> str:
    """A run's name in its study: a hash of its settings and whether it scores the test set.

    Where the run trains and reads its data is not part of what it is, so the hash sees the
    study's own `keyed_at` placement instead of the run's: a study resumed with another
    --device or --data-dir finds its runs. New studies are keyed at the defaults; a folder
    made before this rule keeps the placement its keys were made with (study.run.key_placement).
    """
    identity = config.replace(**keyed_at).identity_dict()
    payload = json.dumps({"config": identity, "test": test}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PlannedRun:
    key: str
    config: TrainConfig
    test: bool
    snapshot_of: str | None = None  # key of the longer run this one is a prefix of
    snapshot_epoch: int = 0


@dataclass(frozen=True)
class Cell:
    experiment: str
    factor: str
    label: str
    seed: int
    key: str
    is_base: bool


@dataclass
class Plan:
    runs: dict[str, PlannedRun] = field(default_factory=dict)  # in execution order
    cells: list[Cell] = field(default_factory=list)

    @property
    def to_train(self) -> list[PlannedRun]:
        return [r for r in self.runs.values() if r.snapshot_of is None]

    @property
    def snapshots(self) -> list[PlannedRun]:
        return [r for r in self.runs.values() if r.snapshot_of is not None]


def seeds_for(spec: StudySpec) -> list[int]:
    return [spec.base.seed + i for i in range(spec.seeds)]


def plan_experiments(spec: StudySpec, *, share_prefixes: bool = True,
                     keyed_at: Placement = UNPLACED) -> Plan:
    plan = Plan()
    base_dict = spec.base.to_dict()
    for index, seed in enumerate(seeds_for(spec)):  # seed: the replicate, as tables show it
        base_key = run_key(spec.base.replicate(spec.base.seed, index), False, keyed_at)
        for exp in spec.experiments:
            for variant in exp.variants:
                config = TrainConfig.from_dict({**base_dict, **variant.changes}).replicate(
                    spec.base.seed, index)
                key = run_key(config, exp.test, studied_placement(config, spec.base, keyed_at))
                plan.runs.setdefault(key, PlannedRun(key, config, exp.test))
                plan.cells.append(Cell(exp.name, exp.factor, variant.label, seed, key,
                                       is_base=(key == base_key)))
    if share_prefixes:
        _share_prefixes(plan)
    # train the longest runs first within equal settings, so snapshots have a source early
    return plan


def _share_prefixes(plan: Plan) -> None:
    groups: dict[str, list[PlannedRun]] = {}
    for run in plan.runs.values():
        # a shorter run reads its epoch off the longer one's history, which is scored without
        # test-time augmentation: with it, only the longest row would be a TTA figure
        if run.test or schedule_depends_on_length(run.config) or run.config.tta:
            continue
        stem = json.dumps({**run.config.to_dict(), "epochs": 0}, sort_keys=True)
        groups.setdefault(stem, []).append(run)
    for members in groups.values():
        if len(members) < 2:
            continue
        longest = max(members, key=lambda r: r.config.epochs)
        for run in members:
            if run.key != longest.key and run.config.epochs < longest.config.epochs:
                plan.runs[run.key] = PlannedRun(run.key, run.config, run.test,
                                                snapshot_of=longest.key,
                                                snapshot_epoch=run.config.epochs)


def final_config(spec: StudySpec, best_values: dict[str, dict]) -> TrainConfig | None:
    """The final model's settings: explicit, or the best variant of each experiment combined.

    `best_values` maps experiment name -> the changes of its best variant, applied in its
    order (a later one's value of a setting replaces an earlier one's).
    """
    if spec.final.choose == "none":
        return None
    if spec.final.choose == "explicit":
        return TrainConfig.from_dict({**spec.base.to_dict(), **spec.final.settings})
    changes: dict = {}
    for best in best_values.values():
        changes.update(best)
    changes.update(spec.final.settings)
    return TrainConfig.from_dict({**spec.base.to_dict(), **changes})


def plan_final(spec: StudySpec, config: TrainConfig,
               keyed_at: Placement = UNPLACED) -> list[PlannedRun]:
    runs = []
    for index in range(spec.seeds):
        seeded = config.replicate(spec.base.seed, index)
        runs.append(PlannedRun(run_key(seeded, True, studied_placement(seeded, spec.base,
                                                                       keyed_at)), seeded, True))
    return runs
