"""Which data_dir and device a study folder's run keys are made with (plan.run_key).

A run's key leaves out where it trains and reads its data, so that a study resumed with another
--device or --data-dir finds its runs: new studies are keyed at the defaults (plan.UNPLACED) and
record that in their store. Folders made before that rule hashed the placement their runs were
given; such a folder has no record, and keeps the placement its own files answer to: the one
under which most of its finished runs, run folders and cohort checkpoints have their names. A
store lost and made again (moved away as damaged) is told apart from an old one the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import PLACEMENT, TrainConfig, read_toml
from ..errors import MnistlabError
from ..runs import checkpoint_configs
from ..training import cohort
from .plan import UNPLACED, Placement, run_key
from .spec import StudySpec
from .store import Store


def key_placement(store: Store, out: Path, spec: StudySpec) -> dict[str, Any]:
    """The placement `out`'s run keys are made with: as recorded, else found and recorded."""
    recorded = store.key_placement()
    if recorded is None:
        recorded = _answered_to(store, out, spec)
        store.set_key_placement(recorded)
    return recorded


def _answered_to(store: Store, out: Path, spec: StudySpec) -> dict[str, Any]:
    stored = store.entries()  # (key, settings, test) of each finished run
    folders = _folder_configs(out)
    cohorts = _cohort_configs(out)
    seen = [*(c for _, c, _ in stored), *folders.values(),
            *(c.to_dict() for members in cohorts.values() for c in members)]
    candidates = [dict(UNPLACED), spec.base.placement()]
    for settings in seen:
        placed = {k: settings.get(k, UNPLACED[k]) for k in PLACEMENT}
        if placed not in candidates:
            candidates.append(placed)

    def named(config: TrainConfig, test: bool, placement: Placement) -> str:
        return run_key(config, test, placement)  # (a study with placement as a factor: rare)

    def answers(placement: Placement) -> int:
        found = sum(key == named(TrainConfig.from_dict(c), test, placement)
                    for key, c, test in stored)
        found += sum(name in {named(TrainConfig.from_dict(c), t, placement) for t in (0, 1)}
                     for name, c in folders.items())
        for digest, configs in cohorts.items():  # a cohort's folder: a digest of its keys
            for test in (False, True):
                if cohort.checkpoint_dir(out, [named(c, test, placement)
                                               for c in configs]).name == digest:
                    found += len(configs)
        return found

    return max(candidates, key=answers)  # the first of equals: the defaults


def _folder_configs(out: Path) -> dict[str, dict[str, Any]]:
    """runs/<key>/config.toml: each run folder's settings, by its name."""
    configs = {}
    for path in sorted((out / "runs").glob("*/config.toml")):
        try:
            configs[path.parent.name] = read_toml(path)
        except MnistlabError:
            continue  # a damaged run folder says nothing about the others
    return configs


def _cohort_configs(out: Path) -> dict[str, list[TrainConfig]]:
    """cohorts/<digest>/checkpoint.pt: the members' settings, by the folder's digest."""
    found = {}
    for path in sorted((out / "cohorts").glob("*/checkpoint.pt")):
        try:
            found[path.parent.name] = checkpoint_configs(path)
        except MnistlabError:
            continue  # a damaged checkpoint: its cohort starts over either way
    return found
