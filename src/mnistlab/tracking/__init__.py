"""Tracking: every run, study and search also where users already look, TensorBoard and
MLflow (`--log tensorboard,mlflow`), with the `tracking` extra (pip install
"mnistlab[tracking]"). See docs/tracking.md.

    tensorboard.py    event files: per-epoch scalars, HParams, images; TensorBoardLogger hook
    mlflow_store.py   an MLflow store that warns once and goes on; MLflowLogger hook
    jobs.py           Tracking (what --log opens), StudyLog and SearchLog (driver-side)

From Python, the hooks plug into any run:

    from mnistlab.tracking import MLflowLogger, TensorBoardLogger
    train(config, out="runs/a", hooks=[TensorBoardLogger("runs/a/tensorboard"),
                                       MLflowLogger("runs/a")])
"""

from .jobs import SearchLog, StudyLog, Tracking
from .mlflow_store import MLflowLogger, Store
from .tensorboard import TensorBoardLogger

__all__ = ["MLflowLogger", "SearchLog", "Store", "StudyLog", "TensorBoardLogger", "Tracking"]
