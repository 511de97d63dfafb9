"""Hyperparameter search with Optuna: a search space in TOML over a base TrainConfig, trials
that are `train()` runs pruned on per-epoch validation accuracy, a shared storage so several
workers can run one search, and a report with the best configuration retrained on fresh seeds.

    from mnistlab.tune import load_space, search
    result = search(load_space("fashion-mlp"), "tunes/fashion-mlp", trials=40)
    result.best_config        # mnistlab.run_tune also retrains it and writes the report
"""

from .options import TuneOptions
from .search import PRUNERS, LocalTrials, TuneResult, analyse, search
from .space import Param, TuneSpec, list_presets, load_space, parse_space

__all__ = ["PRUNERS", "LocalTrials", "Param", "TuneOptions", "TuneResult", "TuneSpec", "analyse",
           "list_presets", "load_space", "parse_space", "search"]
