"""A dataset in memory (uint8 image tensors, int64 labels, class names, pixel statistics), how
one is loaded from a known name or any folder of IDX files, and a summary of one for `data info`.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import control_character
from ..errors import MnistlabError, did_you_mean, warn_once
from .idx import (
    DEFAULT_LIMIT,
    MAX_PAYLOAD_BYTES,
    Scale,
    SizeLimit,
    parse_idx_on_scale,
    read_bytes,
    sha256_of_payload,
)
from .sources import (
    FILES,
    KNOWN_DATASETS,
    MNIST_LAYOUT_BYTES,
    KnownDataset,
    check_not_a_file,
    find_file,
    locate,
    missing_files,
    payload_limit,
    published_as,
    read_verified,
)

if TYPE_CHECKING:
    import numpy as np

# Labels widen to int64 (8 bytes each) in memory: a labels file of a custom folder is held to an
# eighth of the IDX limit, so that its tensor stays within the same budget as an images file.
LABELS_LIMIT = SizeLimit(MAX_PAYLOAD_BYTES // 8, "a labels file (8 bytes a label in memory)",
                         "is this really a labels file?")


@dataclass
class Dataset:
    name: str
    train_images: torch.Tensor  # uint8 (N, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    mean: float  # pixel mean and sd on [0, 1] of the training images
    std: float
    source: str = ""  # the folder it was read from
    published: bool = False  # every payload's SHA-256 is a known dataset's (checked on load)
    found_via: str = "folder given"  # a known name's: which setting or folder gave `source`

    def __post_init__(self) -> None:
        """One built in Python is checked as a folder's files are (hunt: numpy arrays were an
        AttributeError deep in the split, float images in 0..1 were divided by 255 again and
        trained at chance, a label past the class names was torch's IndexError)."""
        if not isinstance(self.class_names, (list, tuple)) or len(self.class_names) < 2 or \
                not all(isinstance(n, str) for n in self.class_names):
            raise MnistlabError(f"Dataset class_names: give a list of 2 or more names (text), "
                                f"one per label, label 0 first; got {self.class_names!r:.80}")
        self.class_names = list(self.class_names)
        for split in ("train", "test"):
            images = _images_given(getattr(self, f"{split}_images"), f"{split}_images")
            labels = _labels_given(getattr(self, f"{split}_labels"), f"{split}_labels",
                                   len(images), len(self.class_names))
            setattr(self, f"{split}_images", images)
            setattr(self, f"{split}_labels", labels)
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise MnistlabError(f"Dataset: train images are {tuple(self.train_images.shape[1:])}"
                                f" but test images {tuple(self.test_images.shape[1:])}; both "
                                "splits need one size")
        if not len(self.train_images):
            raise MnistlabError("Dataset train_images: no images; a dataset needs some")
        _statistics_given(self.mean, self.std)
        # Python's floats: numpy's went into model.pt, which weights-only loading refused
        self.mean, self.std = float(self.mean), float(self.std)  # (review)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of what a run learns from: both splits' images and labels (type, shape,
        values) and the class names. A run keeps it, so a run whose dataset folder moved can
        tell that the folder it is pointed to now holds the same data (runs.claim_run_folder);
        about 0.1 s for MNIST's size."""
        digest = hashlib.sha256(repr(self.class_names).encode())
        for tensor in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.contiguous().numpy())  # a view: no copy of the images
        return digest.hexdigest()

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image, as a model takes it (one channel where the files hold none)."""
        shape = tuple(self.test_images.shape[1:])
        return (1, *shape) if len(shape) == 2 else shape


def _read_split(folder: Path, split: str,
                spec: KnownDataset | None) -> tuple[torch.Tensor, torch.Tensor, tuple[str, Scale]]:
    """The split's images and labels, and its images file's name and the range it was read
    from (idx.parse_idx_on_scale)."""
    arrays, paths, scales = [], [], []
    for stem, dims in ((f"{split}-images-idx3-ubyte", 3), (f"{split}-labels-idx1-ubyte", 1)):
        path = find_file(folder, stem)
        if path is None:
            raise MnistlabError(f"{folder}: {stem}[.gz] is missing; a dataset folder holds "
                                f"{', '.join(FILES)} (each optionally .gz)"
                                + _datasets_inside(folder))
        _warn_if_raw_differs(path)
        try:
            array, scale = (parse_idx_on_scale(read_verified(spec.name, stem, path), str(path),
                                               expect_dims=dims,
                                               limit=payload_limit(spec.name, stem))
                            if spec is not None else _read_idx(path, dims))
        except MnistlabError as exc:
            raise _raw_beside(path, exc, dims) from None
        arrays.append(array)
        paths.append(path)
        scales.append(scale)
    images, labels = arrays
    if len(images) != len(labels):
        raise MnistlabError(f"{folder}: {paths[0].name} holds {len(images):,} images but "
                            f"{paths[1].name} holds {len(labels):,} labels; they must pair up")
    # the images tensor shares the buffer read_bytes filled (writable, owned by nobody else): no
    # second copy of the largest file; the labels must widen to int64 anyway
    return (torch.from_numpy(images), torch.from_numpy(labels.astype("int64")),
            (paths[0].name, scales[0]))


def _datasets_inside(folder: Path) -> str:
    """Where a folder that is no dataset holds dataset folders (a --data-dir, which `data fetch
    --from` takes), how to name one: `data info ROOT` said only that a file was missing."""
    try:
        inside = sorted(sub.name for sub in folder.iterdir()
                        if sub.is_dir() and not missing_files(sub))
    except OSError:
        return ""
    if not inside:
        return ""
    named = [name for name in inside if name in KNOWN_DATASETS]  # what --data-dir finds
    give = (f"give one of them ({folder / inside[0]})" if len(inside) > 1
            else f"give it ({folder / inside[0]})")
    return (f"; it holds the dataset folder{'s' * (len(inside) > 1)} {', '.join(inside)}: "
            f"{give}" + (f", or a known name ({', '.join(named)}) with --data-dir {folder}"
                         if named else ""))


def _read_idx(path: Path, dims: int) -> tuple[np.ndarray, Scale]:
    """An IDX file of images (`dims` 3) or labels (1) read and checked: its array and scale."""
    payload = read_bytes(path, expect_dims=dims,
                         limit=LABELS_LIMIT if dims == 1 else DEFAULT_LIMIT)
    return parse_idx_on_scale(payload, str(path), expect_dims=dims)


def _raw_beside(path: Path, exc: MnistlabError, dims: int) -> MnistlabError:
    """A bad `<stem>.gz` with a good raw `<stem>` beside it: the .gz is read first, so removing
    it is the fix (the advice was to download the .gz again). A raw file as bad as the .gz
    changes nothing: the error is left as it is."""
    raw = path.with_suffix("")
    if path.suffix != ".gz" or not raw.is_file():
        return exc
    try:
        _read_idx(raw, dims)
    except MnistlabError:
        return exc
    return MnistlabError(f"{exc}; or remove it: {raw.name} beside it is read then",
                         exit_code=exc.exit_code)


def _warn_if_raw_differs(path: Path) -> None:
    """`<stem>.gz` is read where the raw `<stem>` lies beside it: said when the two differ, so
    a raw file edited or replaced by hand is not passed over without a word. Compared byte
    for byte (gzip's trailer holds only its last member's size, and `cat a.gz b.gz` makes a
    .gz of several)."""
    raw = path.with_suffix("")
    if path.suffix != ".gz" or not raw.is_file():
        return
    offset = _first_difference(raw, path)
    if offset is None:
        return
    warnings.warn(f"{path.parent}: {raw.name} and {path.name} are both there and differ (from "
                  f"byte {offset:,} on; {raw.name} holds {raw.stat().st_size:,}); {path.name} "
                  "is read: remove the one not meant", stacklevel=3)


def _first_difference(raw: Path, packed: Path) -> int | None:
    """The first byte where `packed` unpacks to other bytes than `raw` holds (read side by
    side, stopping there), or None where they are the same; a gzip stream that fails to
    unpack is said by the reader after this."""
    import gzip
    import zlib

    offset = 0
    try:
        with raw.open("rb") as plain, gzip.open(packed, "rb") as unpacked:
            while True:
                a, b = plain.read(1 << 20), unpacked.read(1 << 20)
                if a != b:
                    return offset + next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                                         min(len(a), len(b)))
                if not a:
                    return None
                offset += len(a)
    except (OSError, EOFError, zlib.error):  # damaged: the reader says so, in one line
        return None


def _published(splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> KnownDataset | None:
    """The known dataset these images and labels are, byte for byte, or None. Only arrays of
    the published layout are hashed (about 0.1 s for the four): other folders cost nothing."""
    digests = {}
    for split, (images, labels) in splits.items():
        for stem, array in ((f"{split}-images-idx3-ubyte", images),
                            (f"{split}-labels-idx1-ubyte", labels)):
            header = bytes([0, 0, 8, array.dim()]) + b"".join(
                n.to_bytes(4, "big") for n in array.shape)
            if len(header) + array.numel() != MNIST_LAYOUT_BYTES[stem]:
                return None
            digest = hashlib.sha256(header)
            digest.update(array.to(torch.uint8).contiguous().numpy())  # no copy of the images
            digests[stem] = digest.hexdigest()
    return published_as(digests)


def _given_tensor(value: Any, field: str) -> torch.Tensor:
    """A Dataset's array as a tensor: numpy's taken as is, anything else refused."""
    if isinstance(value, torch.Tensor):  # a plain tensor in memory (review: a sparse, meta
        if value.device.type == "meta":  # or GPU tensor failed deep in training)
            raise MnistlabError(f"Dataset {field}: a tensor on the meta device holds no "
                                "values; give one in memory")
        value = value.detach()
        return (value.to_dense() if value.layout != torch.strided else value).cpu()
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        import numpy as np

        try:  # a copy in this machine's byte order: read-only (np.frombuffer), big-endian
            # (">i4") and reversed views were torch's warnings and ValueErrors (review)
            return torch.from_numpy(np.array(value, dtype=value.dtype.newbyteorder("=")))
        except TypeError:  # text or objects
            raise MnistlabError(f"Dataset {field}: a numpy array of {value.dtype}; give "
                                "numbers (uint8 pixels, whole-number labels)") from None
    raise MnistlabError(f"Dataset {field}: give a torch tensor or a numpy array, got "
                        f"{type(value).__name__}")


def _images_given(value: Any, field: str) -> torch.Tensor:
    images = _given_tensor(value, field)
    if images.dtype != torch.uint8:
        fix = ("(x * 255).round().to(torch.uint8) for values in 0..1"
               if images.is_floating_point() else "x.to(torch.uint8) for values in 0..255")
        raise MnistlabError(f"Dataset {field}: {str(images.dtype).removeprefix('torch.')} "
                            f"pixels; give bytes 0..255 as uint8 ({fix})")
    if images.dim() not in (3, 4) or 0 in images.shape[1:]:  # (N, C, H, W) too (review)
        raise MnistlabError(f"Dataset {field}: shape {tuple(images.shape)}; give (count, "
                            "height, width), or (count, channels, height, width)")
    if images.dim() == 4 and images.shape[1] not in (1, 3, 4) and images.shape[3] in (1, 3, 4):
        raise MnistlabError(f"Dataset {field}: shape {tuple(images.shape)} looks like (count, "
                            "height, width, channels); give (count, channels, height, width): "
                            "x.transpose(0, 3, 1, 2) in NumPy, x.permute(0, 3, 1, 2) in torch")
    return images


def _statistics_given(mean: Any, std: Any) -> None:
    """The pixel mean and sd standardising feeds the model, on [0, 1] as the loader computes
    them: 33 and 78 (0..255's) trained at chance, 0 diverged (review)."""
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) \
                or not 0 <= value <= 1 or (name == "std" and value == 0):
            raise MnistlabError(f"Dataset {name}: {value!r}; give the training pixels' "
                                f"{name} on [0, 1]{' (above 0)' * (name == 'std')}, e.g. "
                                f"float(train_images.float().div(255).{name}())")


UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)


def _labels_given(value: Any, field: str, count: int, classes: int) -> torch.Tensor:
    labels = _given_tensor(value, field)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise MnistlabError(f"Dataset {field}: {str(labels.dtype).removeprefix('torch.')} "
                            "labels; give whole numbers, 0 for class_names[0]")
    if labels.dim() != 1 or len(labels) != count:
        raise MnistlabError(f"Dataset {field}: shape {tuple(labels.shape)} beside {count:,} "
                            "images; give one label per image, as (count,)")
    # uint64 past int64's range wrapped to a negative label in the message; torch has no min
    # or max for uint16, uint32 and uint64 (review: those then failed): NumPy's, exact
    wide = labels.numpy() if labels.dtype in UNSIGNED_WIDE else labels
    if len(labels) and (int(wide.min()) < 0 or int(wide.max()) >= classes):
        raise MnistlabError(f"Dataset {field}: labels run from {int(wide.min())} to "
                            f"{int(wide.max())}, but class_names names {classes} classes "
                            f"(labels 0 to {classes - 1}); give a name to each label")
    return labels.to(torch.int64)


def _name_lines(names_file: Path) -> list[str]:
    """classes.txt's lines as names: UTF-8 (a byte-order mark is no part of a name), lines
    ending at \n (and \r\n) only (splitlines() also split a name at a form feed), stripped,
    trailing blank lines dropped."""
    try:
        text = names_file.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MnistlabError(f"{names_file}: not UTF-8 text (byte {exc.start} cannot be "
                            "decoded); save it as UTF-8") from None
    names = [line.strip() for line in text.split("\n")]
    while names and not names[-1]:
        names.pop()
    return names


def _class_names(folder: Path, max_label: int) -> list[str]:
    names_file = folder / "classes.txt"
    if not names_file.is_file():
        return [str(i) for i in range(max_label + 1)]
    names = _name_lines(names_file)
    if max_label >= len(names):
        raise MnistlabError(f"{names_file}: labels go up to {max_label} but classes.txt names "
                            f"{len(names)} classes; add the missing names or fix the labels")
    first: dict[str, int] = {}  # name -> the class it named first
    for k, name in enumerate(names):
        if not name:
            raise MnistlabError(f"{names_file}: line {k + 1} is empty (class {k} would have no "
                                "name); write one name per line, label 0 first")
        control = control_character(name)
        if control is not None:  # an ESC went to the terminal raw, in every table
            raise MnistlabError(f"{names_file}: line {k + 1} holds the control character "
                                f"{control!r}; class names are printed in tables and reports: "
                                "remove it")
        if name in first:
            raise MnistlabError(f"{names_file}: {name!r} names classes {first[name]} and {k}; "
                                "each class needs a name of its own (its accuracy is reported "
                                "under it)")
        first[name] = k
    return names


def _warn_about_labels(folder: Path, train: torch.Tensor, test: torch.Tensor,
                       classes: int, max_label: int) -> None:
    """Classes with no training image, said once: one stray label of 255 in a folder of digits
    makes 256 outputs, and test images of such a class cannot be classified right."""
    seen = train.bincount(minlength=classes)
    empty = [k for k in range(classes) if seen[k] == 0]
    if not empty:
        return
    listed = ", ".join(map(str, empty[:5])) + (f" and {len(empty) - 5:,} more"
                                               if len(empty) > 5 else "")
    in_test = int(torch.isin(test, torch.tensor(empty)).sum())
    one = len(empty) == 1
    them = "it" if one else "them"
    carry = (f"1 test image carries {them}" if in_test == 1 else
             f"{in_test:,} test images carry {them}")
    listed = f"class {listed} has" if one else f"classes {listed} have"
    if max_label + 1 < classes:  # the names outnumber the labels: the list, not the labels
        warn_once(f"{folder}: classes.txt names {classes} classes but the labels run from 0 "
                  f"to {max_label}, so {listed} no image and a model gets {classes} outputs; "
                  "remove the extra names from classes.txt, or check the label files",
                  stacklevel=3)
        return
    warn_once(f"{folder}: labels run from 0 to {classes - 1}, so a model gets {classes} "
              f"outputs, but {listed} no training image ({carry}); check the label files for "
              "stray values", stacklevel=3)


def _pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Exact mean and sd on [0, 1] from a 256-bin histogram: no float copy of the images."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    n = counts.sum()
    mean = (counts * values).sum() / n
    if int((counts > 0).sum()) == 1:  # exactly 0, not a rounding error's 1e-18
        return float(mean), 0.0
    var = (counts * (values - mean) ** 2).sum() / max(n - 1, 1)
    return float(mean), float(var.sqrt())


def load_folder(folder: str | Path, *, name: str | None = None,
                spec: KnownDataset | None = None) -> Dataset:
    """Read a folder of the four IDX files. With `spec` (a known dataset) every payload is
    checked against the published checksums and the published names and statistics are used;
    otherwise classes come from classes.txt (or the labels) and statistics from the images."""
    folder = Path(folder)
    train_x, train_y, train_read = _read_split(folder, "train", spec)
    test_x, test_y, test_read = _read_split(folder, "t10k", spec)
    if train_read[1].clashes_with(test_read[1]):  # one fits 0..255 (or 0..1), one does not
        raise MnistlabError(
            f"{folder}: {train_read[0]} is read as {train_read[1].range} but {test_read[0]} as "
            f"{test_read[1].range} (by their values: the type is the same), so the splits may "
            "be on two scales; save both image files on one (bytes 0..255, or the type's "
            "full range)")
    if len(train_y) == 0:
        raise MnistlabError(f"{folder}: the training files hold no images; a dataset needs some")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise MnistlabError(f"{folder}: train images are {tuple(train_x.shape[1:])} but test "
                            f"images are {tuple(test_x.shape[1:])}; both splits need one size")
    if 0 in train_x.shape[1:]:
        raise MnistlabError(f"{folder}: the images are {'x'.join(map(str, train_x.shape[1:]))} "
                            "pixels (the header says so); a dataset needs at least 1x1")
    known = spec or _published({"train": (train_x, train_y), "t10k": (test_x, test_y)})
    if known is not None:  # a folder given by path may hold a known dataset, byte for byte
        own = spec is None and (folder / "classes.txt").is_file()  # names of one's own win
        class_names = (_class_names(folder, len(known.class_names) - 1) if own
                       else list(known.class_names))
        if own:  # twelve names for MNIST's ten labels: twelve outputs, two never trained
            _warn_about_labels(folder, train_y, test_y, len(class_names),
                               len(known.class_names) - 1)
        mean, std, name = known.mean, known.std, name or known.name
    else:
        max_label = int(torch.cat([train_y, test_y]).max())
        class_names, (mean, std) = _class_names(folder, max_label), _pixel_stats(train_x)
        if len(class_names) < 2:
            raise MnistlabError(f"{folder}: every label is 0, so there is one class and "
                                "nothing to classify; check the label files (a classifier "
                                "needs images of at least 2 classes)")
        _warn_about_labels(folder, train_y, test_y, len(class_names), max_label)
        if std == 0:  # standardizing divides by it: NaN from the first step, "lower the lr"
            raise MnistlabError(f"{folder}: every pixel of every training image is "
                                f"{round(mean * 255)}, so the images show nothing to learn "
                                "from; check the images files (were they written as bytes "
                                "0-255?)")
    return Dataset(name=name or folder.resolve().name, train_images=train_x,
                   train_labels=train_y, test_images=test_x, test_labels=test_y,
                   class_names=class_names, mean=mean, std=std, source=str(folder),
                   published=known is not None)


def load_dataset(name_or_path: str | os.PathLike, *,
                 data_dir: str | Path | None = None) -> Dataset:
    """A known dataset by name (checksums verified), or any folder of IDX files."""
    key = str(name_or_path)
    folder, how = find_dataset(key, data_dir)
    if key in KNOWN_DATASETS:
        try:
            return replace(load_folder(folder, name=key, spec=KNOWN_DATASETS[key]),
                           found_via=how)
        except MnistlabError as exc:
            if how not in ("--data-dir", "MNISTLAB_DATA"):  # the cache, or a system folder
                raise  # read after it: `mnistlab data fetch` mends either
            fetched = re.sub(r"[,;:] re-download (it )?with `[^`]*`$", "",
                             str(exc))  # fetching alone mends not this copy: said below
            raise MnistlabError(f"{fetched}; that copy is in {folder} (from {how}), which is "
                                "read before mnistlab's cache, so fetching alone does not "
                                "replace it: put a good copy there, or move that folder aside"
                                ) from None
    return load_folder(folder)


def load_test_split(name_or_path: str | os.PathLike, *,
                    data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's test images and labels alone, read as load_dataset reads them (checksums
    too), its training files left unread: a finished study's report drew its final model's
    mistakes from a whole 784 MB dataset read for them, on every rerun."""
    key = str(name_or_path)
    folder, _ = find_dataset(key, data_dir)
    images, labels, _ = _read_split(folder, "t10k", KNOWN_DATASETS.get(key))
    return images, labels


def relative_folders(datasets: Iterable[str], recorded: dict[str, str], kind: str
                     ) -> dict[str, str]:
    """`recorded` (a relative dataset path -> the folder it named when a study or search first
    read it) with `datasets`' relative folders added. A relative path is read from the folder
    the command runs in: run again from another one, a study took the Fashion-MNIST of a
    folder "digits" there as more seeds of its MNIST runs, and reported them together (hunt).
    Where it names another folder now, holding other files, that is refused; where the first
    folder is gone (moved along with the study), or holds the same files, the new one is kept."""
    now = {k: v for k, v in recorded.items() if isinstance(v, str)}  # hand-edited: again
    for name in sorted(set(datasets)):
        if name in KNOWN_DATASETS or Path(name).expanduser().is_absolute():
            continue
        folder = Path(name).expanduser()
        if not folder.is_dir():
            continue  # not there: reading it says so
        here, before = str(folder.resolve()), now.get(name)
        if before and before != here and Path(before).is_dir() and _same_files(
                Path(before), folder) is False:
            raise MnistlabError(
                f"dataset {name!r}: a relative path, read from the folder the command runs "
                f"in, is {here} here, but this {kind}'s runs read {before}, which holds other "
                f"files; run the command from the folder where {name!r} is that one (or give "
                "another --out)")
        now[name] = here
    return now


def unchanged_data(datasets: Iterable[str], recorded: dict[str, str], kind: str, *,
                   training: bool = True) -> dict[str, str]:
    """`recorded` (a dataset given by its folder -> the folder_digest a study or search took
    when it first read it) with `datasets`' digests added. Its files replaced in between
    (Fashion-MNIST, then MNIST), a study pooled the new seeds with the first in one table and
    a search its new trials with the first, without a word (hunts): refused; with nothing to
    train (`training` False), a finished study's report drew its final model's misclassified
    images from the new files beside figures measured on the first (hunt): refused too.
    Known datasets are checked against their published checksums on every read."""
    now = {k: v for k, v in recorded.items() if isinstance(v, str)}  # hand-edited: again
    for name in dict.fromkeys(datasets):
        if name in KNOWN_DATASETS or not Path(name).expanduser().is_dir():
            continue  # not there: reading it says so
        digest = folder_digest(Path(name).expanduser())
        if digest is None:
            continue  # reading it says what is wrong
        if now.get(name, digest) != digest:
            runs = "runs" if kind == "study" else "trials"
            harm = (f"new {runs} would be pooled with those" if training else
                    "its report would show images of these beside figures measured on those")
            raise MnistlabError(
                f"dataset {name}: its files changed since this {kind}'s first {runs} read them "
                f"(other images, labels or class names), and {harm}; put the first files back "
                f"to go on, or give another --out for a {kind} of these")
        now[name] = digest
    return now


def _same_files(one: Path, other: Path) -> bool | None:
    """Whether two dataset folders hold the same data (folder_digest); None where either
    cannot be read (reading it says why: it was called other data)."""
    digests = folder_digest(one), folder_digest(other)
    return None if None in digests else digests[0] == digests[1]


def folder_digest(folder: Path) -> str | None:
    """SHA-256 of what a dataset folder holds: its images and labels decompressed (raw beside
    gzipped, or gzipped again elsewhere, is the same data; review) and its class names as the
    loader reads them. Read a megabyte at a time, nothing decoded or kept: a study or
    search checks its data with it before training elsewhere (workers, a cluster). None
    where a file is missing or cannot be read (reading it says why)."""
    parts = []
    for stem in FILES:
        path = find_file(folder, stem)
        if path is None:
            return None
        try:
            parts.append(sha256_of_payload(path))
        except MnistlabError:
            return None
    names = folder / "classes.txt"
    try:  # as the loader reads them (review: a byte-order mark, a blank last line, the locale)
        parts.append(repr(_name_lines(names)) if names.is_file() else "")
    except (MnistlabError, OSError):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def find_dataset(name_or_path: str, data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Where load_dataset reads `name_or_path` from, and how it was found, without reading
    it: a study asks before its folder is written (one begun on a missing dataset was then
    another study's folder for the mended command)."""
    key = str(name_or_path)
    if key in KNOWN_DATASETS:
        return locate(key, data_dir)
    path = Path(key).expanduser()
    if path.is_dir():
        return path, "path"
    check_not_a_file(key)
    relative = ("" if path.is_absolute() else  # stored as typed: read from where it runs
                f" (a relative path, looked for in {Path.cwd()}: the folder the command runs in)")
    # a typo of a known name, not another dataset that ends alike (kmnist, emnist, qmnist)
    # ("MNIST": the name in capitals, as papers write it, had no suggestion: hunt)
    alike = did_you_mean(key.lower(), [name for name in KNOWN_DATASETS
                                       if name[:1] == key[:1].lower()])
    raise MnistlabError(f"dataset: {key!r}{alike} is "
                        f"neither a known dataset ({', '.join(KNOWN_DATASETS)}) nor an existing "
                        f"folder{relative}; give a known name or the path of a folder holding the "
                        "four IDX files")


def dataset_info(name: str, data_dir: str | Path | None = None) -> dict:
    """Where a dataset is read from and what it holds: files, sizes, counts, classes, and
    whether its payloads match published checksums (known datasets only)."""
    dataset = load_dataset(name, data_dir=data_dir)
    folder = Path(dataset.source)
    k = dataset.num_classes
    return {
        "name": dataset.name,
        "folder": str(folder),
        "found via": dataset.found_via,
        "verified": dataset.published,  # by name, or a folder its checksums name
        "files": {p.name: p.stat().st_size for stem in FILES if (p := find_file(folder, stem))},
        "train images": len(dataset.train_labels),
        "test images": len(dataset.test_labels),
        "image size": "x".join(map(str, dataset.train_images.shape[1:])),
        "classes": dataset.class_names,
        "train per class": dataset.train_labels.bincount(minlength=k).tolist(),
        "test per class": dataset.test_labels.bincount(minlength=k).tolist(),
        "pixel mean": round(dataset.mean, 4),
        "pixel sd": round(dataset.std, 4),
    }
