"""mnistlab: train, diagnose and tune small image classifiers on MNIST-family data.

    import mnistlab
    result = mnistlab.train(mnistlab.TrainConfig(dataset="mnist", model="lenet5"), out="runs/a")
    result.summary.test_accuracy
    study = mnistlab.run_study("fashion-hparams", options=mnistlab.StudyOptions(quick=True))

The names below are imported when first used, so `import mnistlab` (and `mnistlab --help`)
stays quick: torch is loaded by the first thing that trains or reads a model.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "TrainConfig": ".config", "load_config": ".config", "MnistlabError": ".errors",
    "Dataset": ".data", "load_dataset": ".data", "RunResult": ".records",
    "RunSummary": ".records", "EpochRecord": ".records", "train": ".training",
    "Hook": ".training", "predict": ".predict", "run_study": ".api", "run_tune": ".api",
    "StudyOptions": ".study.options", "TuneOptions": ".tune.options",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
