"""Hyperparameter search with Optuna: a search space in TOML over a base TrainConfig, trials
that are `train()` runs pruned on per-epoch validation accuracy, a shared storage so several
workers can run one search, and a report with the best configuration retrained on fresh seeds.

    from mnistlab.tune import load_space, run_tune
    result = run_tune(load_space("fashion-mlp"), "tunes/fashion-mlp", trials=40)
    result.best_config
"""

from .search import PRUNERS, TuneResult, run_tune
from .space import Param, TuneSpec, list_presets, load_space, parse_space

__all__ = ["PRUNERS", "Param", "TuneResult", "TuneSpec", "list_presets", "load_space",
           "parse_space", "run_tune"]
