"""How a search runs, apart from what its space file says: the flags of `mnistlab tune`, checked
once here for the CLI and the Python API alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..config import (
    DEVICES,
    SEED_LIMIT,
    absolute_dir,
    check_choice,
    check_loggers,
    check_texts,
    check_truths,
    check_wholes,
    warn_untranslated,
    whole,
)
from ..errors import MnistlabError, shown_url
from ..messages import check_lang
from ..raycluster import Placement
from ..study.options import check_placement, log_flags
from ..study.spec import MAX_SEEDS
from .search import PRUNERS, check_storage, check_tune_seed
from .space import TuneSpec


@dataclass(frozen=True)
class TuneOptions:
    trials: int = 20  # finished (complete or pruned) trials the study should hold
    storage: str | None = None  # database URL shared by workers (None: DIR/tune.db)
    study_name: str | None = None  # the study inside the storage (None: the space's name)
    seed: int = 0  # TPE sampler seed: trial k draws from (seed, k)
    pruner: str = "median"
    retrain_seeds: int = 3  # fresh seeds the best configuration is retrained with (0: none)
    report: bool = True  # retrain the best and write the report (False: search only)
    lang: str = "en"
    quick: bool = False  # the quick form: a data subset and at most a few epochs
    data_dir: str | None = None
    device: str | None = None
    placement: Placement = field(default_factory=Placement)
    log: tuple[str, ...] = ()  # also log to tensorboard, mlflow (the tracking extra)
    mlflow_uri: str | None = None  # the MLflow store (None: MLFLOW_TRACKING_URI or DIR/mlflow.db)

    def __post_init__(self) -> None:
        check_truths(self, "report", "quick")  # report="no" retrained and wrote the report
        check_texts(self, "storage", "study_name", "data_dir", "device", "mlflow_uri")
        check_wholes(self, "trials", "retrain_seeds", "seed")
        check_placement(self.placement)
        object.__setattr__(self, "log", check_loggers(self.log, self.mlflow_uri))
        if not whole(self.trials, 1):  # True was 1 trial
            raise MnistlabError(f"trials: must be a whole number >= 1, got {self.trials!r}")
        if not (whole(self.retrain_seeds, 0) and self.retrain_seeds <= MAX_SEEDS):
            # a study's limit: more seeds add nothing to a mean ± sd
            raise MnistlabError(f"retrain-seeds: must be a whole number from 0 to "
                                f"{MAX_SEEDS:,}, got {self.retrain_seeds!r}")
        for name, default in (("storage", "the folder's own tune.db"),
                              ("study_name", "the space's name")):
            if getattr(self, name) is not None and not getattr(self, name).strip():
                raise MnistlabError(f"{name.replace('_', '-')}: empty; leave it out for "
                                    f"{default}")  # an empty one was taken as the default
        if self.storage is not None:
            check_storage(self.storage)
        check_tune_seed(self.seed)
        check_choice("pruner", self.pruner, PRUNERS)
        if self.device is not None:
            check_choice("device", self.device, DEVICES)
        check_lang(self.lang)

    def flags(self) -> list[str]:
        """The `mnistlab tune` flags that give these options (for the report's command)."""
        defaults = TuneOptions()
        out = ["--trials", str(self.trials)]
        for name in ("storage", "study_name", "seed", "pruner", "retrain_seeds", "lang",
                     "data_dir", "device"):
            value = getattr(self, name)
            if value is not None and value != getattr(defaults, name):
                out += ["--" + name.replace("_", "-"), str(value)]
        if self.storage is not None:  # a password in the URL stays out of the report
            at = out.index("--storage") + 1
            out[at] = shown_url(out[at])
        out += (["--quick"] if self.quick else []) + ([] if self.report else ["--no-report"])
        return out + self.placement.flags() + log_flags(self.log, self.mlflow_uri)

    def apply(self, spec: TuneSpec) -> TuneSpec:
        """`spec` as these options run it (the quick form, data and device)."""
        if self.quick:
            spec = spec.with_quick()
        warn_untranslated(spec.untranslated(self.lang), self.lang, "space")
        spec = dataclasses.replace(spec, base=spec.base.placed(
            data_dir=absolute_dir(self.data_dir), device=self.device))
        last = spec.base.seed + (self.retrain_seeds + 1) * spec.widest_ensemble() - 1
        if self.retrain_seeds and last >= SEED_LIMIT:  # search.retrain_jobs' seeds
            raise MnistlabError(f"retrain-seeds: retraining counts seeds up from "
                                f"{spec.base.seed:,} to {last:,}, past the largest "
                                "seed (2**62 - 1); use a smaller seed in [base]")
        return spec

    def backend(self) -> Any:
        """Where trials train (search.LocalTrials, or ray_backend.RayTrials)."""
        if self.placement.on_ray:
            from ..raycluster import require_ray

            require_ray()  # one line saying how to install it, before its module needs it
            from .ray_backend import RayTrials

            return RayTrials(address=self.placement.target(),
                             resources=self.placement.resources())
        from .search import LocalTrials

        return LocalTrials()
