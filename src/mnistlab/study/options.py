"""How a study runs, apart from what its file says: the flags of `mnistlab study`, checked once
here for the CLI and the Python API alike."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..config import (
    DEVICES,
    absolute_dir,
    check_choice,
    check_loggers,
    check_texts,
    check_truths,
    check_wholes,
    warn_untranslated,
    whole,
)
from ..errors import MnistlabError
from ..messages import check_lang
from ..raycluster import Placement
from .spec import StudySpec


@dataclass(frozen=True)
class StudyOptions:
    seeds: int | None = None  # seeds per configuration (None: the study file's)
    quick: bool = False  # the study's quick form: a data subset and fewer epochs
    lang: str = "en"  # the report's language
    data_dir: str | None = None  # where datasets live (None: as the study file says)
    device: str | None = None  # the training device (None: as the study file says)
    workers: int | None = None  # processes training side by side (None: one per CPU core,
    # one on a GPU; a number shares the GPU too)
    cohorts: bool = True  # runs that differ only in lr, momentum, decay, dropout, seed train
    # together in lockstep
    placement: Placement = field(default_factory=Placement)
    log: tuple[str, ...] = ()  # also log to tensorboard, mlflow (the tracking extra)
    mlflow_uri: str | None = None  # the MLflow store (None: MLFLOW_TRACKING_URI or DIR/mlflow.db)

    def __post_init__(self) -> None:
        check_truths(self, "quick", "cohorts")  # quick="false" ran the quick form
        check_texts(self, "data_dir", "device", "mlflow_uri")
        check_wholes(self, "seeds", "workers")
        check_placement(self.placement)
        object.__setattr__(self, "log", check_loggers(self.log, self.mlflow_uri))
        if self.seeds is not None and not whole(self.seeds, 1):  # True was 1 seed
            raise MnistlabError(f"seeds: must be a whole number >= 1, got {self.seeds!r}")
        if self.workers is not None and not whole(self.workers, 1):
            raise MnistlabError(f"workers: must be a whole number >= 1, got {self.workers!r}")
        if self.workers is not None and self.placement.on_ray:
            raise MnistlabError("workers: --workers is for --backend local; on Ray each unit "
                                "of work is a task asking for --task-cpus CPUs")
        if self.device is not None:
            check_choice("device", self.device, DEVICES)
        check_lang(self.lang)

    def flags(self) -> list[str]:
        """The `mnistlab study` flags that give these options (for the report's command)."""
        out = (["--seeds", str(self.seeds)] if self.seeds is not None else []) \
            + (["--quick"] if self.quick else []) \
            + (["--lang", self.lang] if self.lang != "en" else [])
        for flag, value in (("--data-dir", self.data_dir), ("--device", self.device),
                            ("--workers", self.workers)):
            out += [flag, str(value)] if value is not None else []
        return out + ([] if self.cohorts else ["--one-by-one"]) + self.placement.flags() \
            + log_flags(self.log, self.mlflow_uri)

    def apply(self, spec: StudySpec) -> StudySpec:
        """`spec` as these options run it (the quick form, other seeds, data and device)."""
        if self.quick and not (spec.quick or spec.is_quick):  # ran at full size, silently
            warnings.warn(f"--quick: study {spec.name} has no [quick] table, so it runs at "
                          "full size; add one to its file (e.g. [quick] with train_subset = "
                          "5000 and max_epochs = 3)", stacklevel=2)
        if self.quick:
            spec = spec.with_quick()
        warn_untranslated(spec.untranslated(self.lang), self.lang, "study")
        return dataclasses.replace(
            # a study file's own relative data_dir too: its runs' config.toml kept it as
            # written, and `evaluate` from another folder looked for it there
            spec, base=spec.base.placed(data_dir=absolute_dir(self.data_dir
                                                              or spec.base.data_dir),
                                        device=self.device),
            seeds=self.seeds if self.seeds is not None else spec.seeds)

    def backend(self) -> Any:
        """Where the study's runs train (study.backends.LocalBackend or a RayBackend)."""
        if self.placement.on_ray:
            from .ray_backend import RayBackend

            return RayBackend(address=self.placement.target(), cohorts=self.cohorts,
                              resources=self.placement.resources())
        from .backends import LocalBackend

        return LocalBackend(cohorts=self.cohorts, workers=self.workers)


def check_placement(placement: Any) -> None:
    """Where the runs train, given from Python: a dict failed later, as "'dict' object has no
    attribute 'on_ray'"."""
    if not isinstance(placement, Placement):
        raise MnistlabError(f"placement: give mnistlab.raycluster.Placement(...) (e.g. "
                            f"Placement(backend=\"ray\")), not {type(placement).__name__}")


def log_flags(log: tuple[str, ...], mlflow_uri: str | None) -> list[str]:
    """--log and --mlflow-uri as given (a password in the URI is masked: it goes into the
    report's command line)."""
    import re

    out = ["--log", ",".join(log)] if log else []
    if mlflow_uri is not None:
        out += ["--mlflow-uri", re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", mlflow_uri)]
    return out

