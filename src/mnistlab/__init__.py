"""mnistlab: train, diagnose and tune small image classifiers on MNIST-family data.

    import mnistlab
    result = mnistlab.train(mnistlab.TrainConfig(dataset="mnist", model="lenet5"), out="runs/a")
    result.summary.test_accuracy
"""

__version__ = "0.1.0"

from .config import TrainConfig, load_config  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import MnistlabError  # noqa: E402
from .predict import predict  # noqa: E402
from .records import RunResult  # noqa: E402
from .training import train  # noqa: E402

__all__ = ["Dataset", "MnistlabError", "RunResult", "TrainConfig", "__version__", "load_config",
           "load_dataset", "predict", "train"]
