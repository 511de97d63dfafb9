"""Studies: many configurations, several seeds, one-factor-at-a-time comparisons.

`train_study` trains what a study file asks for and writes results.csv; `mnistlab.run_study`
also writes the report."""

from .options import StudyOptions
from .ray_backend import RayBackend
from .run import LocalBackend, StudyResult, train_study
from .spec import StudySpec, list_presets, load_study, parse_study

__all__ = ["LocalBackend", "RayBackend", "StudyOptions", "StudyResult", "StudySpec", "list_presets",
           "load_study", "parse_study", "train_study"]
