"""Data: known datasets and where they come from, the IDX reader, in-memory datasets, splits.

Flow: files (downloaded, imported or found) -> verified IDX payloads -> uint8 tensors.

    from mnistlab.data import load_dataset, stratified_split
    ds = load_dataset("mnist")                      # or a folder of IDX files
    train_idx, val_idx = stratified_split(ds.train_labels, 10_000, seed=0)
"""

from .dataset import Dataset, dataset_info, load_dataset, load_test_split
from .idx import read_idx
from .sources import KNOWN_DATASETS, dataset_folder, fetch, import_folder
from .splits import stratified_split

__all__ = ["KNOWN_DATASETS", "Dataset", "dataset_folder", "dataset_info", "fetch",
           "import_folder", "load_dataset", "load_test_split", "read_idx", "stratified_split"]
