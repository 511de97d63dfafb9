"""Data: known datasets and their sources, the IDX reader, in-memory datasets, splits.

Flow: files (downloaded, imported or found) -> verified IDX payloads -> uint8 tensors.
"""

from .dataset import Dataset, load_dataset, load_folder
from .idx import read_idx, sha256_of_payload, write_idx
from .sources import (
    FILES,
    KNOWN_DATASETS,
    cache_root,
    dataset_folder,
    fetch,
    import_folder,
    search_roots,
)
from .splits import stratified_split


def dataset_info(name: str, data_dir: str | None = None) -> dict:
    """Where a dataset is read from and what it holds (files, counts, classes)."""
    folder = dataset_folder(name, data_dir) if name in KNOWN_DATASETS else name
    ds = load_dataset(name, data_dir=data_dir)
    from pathlib import Path

    return {
        "name": ds.name,
        "folder": str(folder),
        "verified": name in KNOWN_DATASETS,  # load_dataset checked every payload's SHA-256
        "train images": len(ds.train_labels),
        "test images": len(ds.test_labels),
        "image size": "x".join(map(str, ds.train_images.shape[1:])),
        "classes": ", ".join(ds.class_names),
        "train per class": ds.train_labels.bincount(minlength=ds.num_classes).tolist(),
        "pixel mean / sd": f"{ds.mean:.4f} / {ds.std:.4f}",
        "files": {p.name: p.stat().st_size for p in sorted(Path(folder).iterdir())
                  if p.is_file() and "ubyte" in p.name},
    }


__all__ = ["FILES", "KNOWN_DATASETS", "Dataset", "cache_root", "dataset_folder", "dataset_info",
           "fetch", "import_folder", "load_dataset", "load_folder", "read_idx",
           "search_roots", "sha256_of_payload", "stratified_split", "write_idx"]
