"""Studies: many configurations, several seeds, one-factor-at-a-time comparisons, a report."""

from .ray_backend import RayBackend
from .run import LocalBackend, StudyResult, run_study
from .spec import StudySpec, list_presets, load_study, parse_study

__all__ = ["LocalBackend", "RayBackend", "StudyResult", "StudySpec", "list_presets", "load_study",
           "parse_study", "run_study"]
