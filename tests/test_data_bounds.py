"""Hostile and broken IDX files: gzip bombs and absurd headers are refused in one line, from the
header or at the first byte too many, without ever holding what they announce in memory.

The bombs are real: a valid gzip file of a few MB that `gunzip` expands to 2 GiB. They are built
in milliseconds from one gzip member of 16 MiB of zeros (16 KB compressed), repeated: members
concatenate into one valid gzip stream."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_dataset_folder

import mnistlab
from mnistlab.data import dataset, load_dataset, read_idx
from mnistlab.data.idx import MAX_DIMS, MAX_PAYLOAD_BYTES, parse_idx
from mnistlab.errors import MnistlabError

MIB, GIB = 1 << 20, 1 << 30
_ZEROS_MEMBER = gzip.compress(bytes(16 * MIB), compresslevel=9, mtime=0)


def idx_header(shape: tuple[int, ...]) -> bytes:
    return struct.pack(">HBB", 0, 8, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def gzip_bomb(shape: tuple[int, ...], zeros: int) -> bytes:
    """A gzip file: an IDX header announcing `shape`, then `zeros` zero bytes (a multiple of
    16 MiB) at about 1/1000 of their size."""
    return gzip.compress(idx_header(shape), mtime=0) + _ZEROS_MEMBER * (zeros // (16 * MIB))


# (case, header shape, zeros after it, the refusal; 2,551,020 images of 28x28 are 2 GB)
BOMBS = [
    ("announces-2GB", (2_551_020, 28, 28), 2 * GIB,
     "train-images-idx3-ubyte.gz: header announces 2,551,020 images of 28x28 (1,999,999,696 "
     "bytes), over the limit of 1 GiB for one IDX file; is this really an IDX file?"),
    ("10-images-then-2GiB", (10, 28, 28), 2 * GIB,
     "train-images-idx3-ubyte.gz: more than 65,536 unexpected bytes after the 10 images of 28x28 "
     "its header announces; the file is damaged"),
    ("claims-784MB-holds-16MiB", (1_000_000, 28, 28), 16 * MIB,
     "train-images-idx3-ubyte.gz: truncated: header says 1,000,000 images of 28x28 but the file "
     "holds 16,777,216 of the 784,000,000 bytes of data"),
]


@pytest.fixture(scope="session")
def bomb_folders(tmp_path_factory) -> dict[str, Path]:
    """For each case of BOMBS, a dataset folder whose training images are that bomb (the other
    three files are tiny and valid). Built once per session."""
    folders = {}
    for case, shape, zeros, _ in BOMBS:
        folder = make_dataset_folder(tmp_path_factory.mktemp("bomb") / case, 20, 10)
        (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip_bomb(shape, zeros))
        folders[case] = folder
    return folders


def _child_env() -> dict[str, str]:
    src = str(Path(mnistlab.__file__).resolve().parents[1])  # this checkout, not an installed one
    return {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}


_MEASURE = """
import resource, sys
from mnistlab.data import load_dataset
from mnistlab.errors import MnistlabError
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
for folder in sys.argv[1:]:
    try:
        load_dataset(folder)
        print("loaded")
    except MnistlabError as exc:
        print(exc)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_bombs_are_refused_without_the_memory_they_announce(bomb_folders):
    """One fresh process loads each bomb folder in turn and reports its peak memory after the
    imports (torch: the baseline, ~250-400 MB) and after each refusal. The peak only grows, so
    each figure bounds what that bomb and the ones before it cost above the baseline."""
    done = subprocess.run([sys.executable, "-c", _MEASURE,
                           *(str(bomb_folders[case]) for case, *_ in BOMBS)],
                          env=_child_env(), capture_output=True, text=True, timeout=300, check=True)
    baseline, *reports = done.stdout.splitlines()
    for (case, _, zeros, refusal), said, peak in zip(BOMBS, reports[::2], reports[1::2]):
        said = said.removeprefix(f"{bomb_folders[case]}/")  # errors name the file's folder
        grown = (int(peak) - int(baseline)) * 1024
        print(f"{case}: peak {int(peak) // 1024} MiB, {grown / MIB:.1f} MiB over the baseline of "
              f"{int(baseline) // 1024} MiB; the file expands to {zeros / MIB:,.0f} MiB")
        assert said.startswith(refusal)
        # the file expands to 16 MiB-2 GiB; refusing costs at most the data really there + ~MBs
        assert grown < 64 * MIB
    assert len(reports) == 2 * len(BOMBS)


# (case, command line with {bomb}, the bomb, the refusal on stderr)
CLI_CASES = [
    ("data-fetch-from", ["data", "fetch", "mnist", "--from", "{bomb}"], "announces-2GB",
     "train-images-idx3-ubyte.gz: header announces 2,551,020 images of 28x28 (1,999,999,696 "
     "bytes), over the limit of 47,040,016 bytes for MNIST's train-images-idx3-ubyte (its "
     "published size); is this really that file?"),
    ("train-dataset", ["train", "--dataset", "{bomb}", "--epochs", "1"], "10-images-then-2GiB",
     "train-images-idx3-ubyte.gz: more than 65,536 unexpected bytes after the 10 images"),
]


@pytest.mark.parametrize("argv,case,refusal", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_a_bomb_in_one_line(bomb_folders, tmp_path, argv, case, refusal):
    argv = [a.format(bomb=bomb_folders[case]) for a in argv]
    done = subprocess.run([sys.executable, "-m", "mnistlab", *argv], env=_child_env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and refusal in lines[0]


# --- headers refused before anything else is read --------------------------------------------
_HUGE = 2**32 - 1
# (case, file contents, the refusal); each is refused from its header alone
BAD_HEADERS = [
    ("dims-overflow-int64", idx_header((_HUGE, _HUGE, _HUGE)) + bytes(100),
     f"header announces 4,294,967,295 images of {_HUGE}x{_HUGE} "
     f"({16 + _HUGE**3:,} bytes), over the limit of 1 GiB for one IDX file"),
    ("one-byte-over-the-limit", idx_header((MAX_PAYLOAD_BYTES - 7,)),
     "header announces 1,073,741,817 labels (1,073,741,825 bytes), over the limit of 1 GiB"),
    ("too-many-dimensions", idx_header((1,) * (MAX_DIMS + 1)) + b"\x00",
     f"header announces {MAX_DIMS + 1} dimensions, more than the {MAX_DIMS} image or label data "
     "needs; is this really an IDX file?"),
    ("255-dimensions-no-header", struct.pack(">HBB", 0, 8, 255),
     "header announces 255 dimensions"),
]


@pytest.mark.parametrize("data,refusal", [c[1:] for c in BAD_HEADERS],
                         ids=[c[0] for c in BAD_HEADERS])
@pytest.mark.parametrize("form", ["in-memory", "raw-file", "gzip-file"])
def test_absurd_header_refused_in_one_line(tmp_path, form, data, refusal):
    with pytest.raises(MnistlabError) as info:
        if form == "in-memory":
            parse_idx(data, "x.idx")
        else:
            path = tmp_path / ("x.idx" + (".gz" if form == "gzip-file" else ""))
            path.write_bytes(gzip.compress(data) if form == "gzip-file" else data)
            read_idx(path)
    message = str(info.value)
    # a file is named with its folder
    named = {"in-memory": "x.idx", "raw-file": f"{tmp_path}/x.idx",
             "gzip-file": f"{tmp_path}/x.idx.gz"}[form]
    assert message.startswith(f"{named}: {refusal}")
    assert "\n" not in message


def test_raw_file_size_is_checked_before_reading(tmp_path):
    """A raw file's length comes from stat: 10 labels followed by a 10 GB hole are refused with
    the exact count, and a file claiming 500 MB but holding 10 bytes is refused as truncated."""
    trailing = tmp_path / "trailing-idx1-ubyte"
    trailing.write_bytes(idx_header((10,)) + bytes(10))
    os.truncate(trailing, 10 * 10**9)  # sparse: nothing of it is on disk
    with pytest.raises(MnistlabError, match=f"{10 * 10**9 - 18:,} unexpected bytes after the "
                                            "10 labels its header announces"):
        read_idx(trailing)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(idx_header((500_000_000,)) + bytes(10))
    with pytest.raises(MnistlabError, match="truncated: header says 500,000,000 labels but the "
                                            "file holds 10 of the 500,000,000 bytes"):
        read_idx(short)


def test_custom_labels_file_is_held_to_an_eighth_of_the_limit(tmp_path):
    """Labels widen to int64 (8 bytes each) in memory: a custom folder's labels file announcing
    more than 128 MiB is refused from its header."""
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_header((200_000_000,))))
    with pytest.raises(MnistlabError, match="train-labels-idx1-ubyte.gz: header announces "
                                            "200,000,000 labels .* over the limit of 128 MiB for "
                                            "a labels file"):
        load_dataset(folder)


def test_loaded_images_share_the_buffer_they_were_read_into(tiny_idx_dir, monkeypatch):
    """No second copy of the largest file: the images tensor is the reader's buffer."""
    buffers = []
    real = dataset.read_bytes
    monkeypatch.setattr(dataset, "read_bytes", lambda *a, **k: buffers.append(real(*a, **k))
                        or buffers[-1])
    ds = load_dataset(tiny_idx_dir)
    train_images, test_images = buffers[0], buffers[2]
    assert ds.train_images.data_ptr() == train_images.ctypes.data + 16  # past the header
    assert ds.test_images.data_ptr() == test_images.ctypes.data + 16


def test_a_real_file_over_the_limit_is_read_once_the_user_raises_it(tmp_path, monkeypatch):
    """A real dataset of 1.4 million images (1.1 GB) was told "over the limit of 1 GiB ...; is
    this really an IDX file?" with no way through. The user raises it; the file's own size
    cannot (a sparse file claims any size and holds nothing)."""
    from mnistlab.data.idx import DEFAULT_LIMIT, LIMIT_VARIABLE, read_bytes

    small = dataclasses.replace(DEFAULT_LIMIT, max_bytes=100)  # 1 GiB, scaled down
    data = idx_header((10, 4, 5)) + bytes(range(200))
    raw, packed = tmp_path / "x-idx3-ubyte", tmp_path / "x-idx3-ubyte.gz"
    raw.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    for path in (raw, packed):
        with pytest.raises(MnistlabError, match="over the limit of 100 bytes for one IDX file; "
                           r"is this really an IDX file\? \(data this large: raise the limit "
                           rf"with {LIMIT_VARIABLE}=2, in GiB, if the memory is there\)"):
            read_bytes(path, limit=small)
    monkeypatch.setenv(LIMIT_VARIABLE, "0.5")
    assert len(read_bytes(raw, limit=small)) == len(read_bytes(packed, limit=small)) == 216
    sparse = tmp_path / "sparse-idx3-ubyte"  # claims 10 GB and holds a header
    with sparse.open("wb") as f:
        f.write(idx_header((1000, 10_000, 1000)))
        f.truncate(16 + 10**10)
    with pytest.raises(MnistlabError, match="over the limit of 512 MiB"):
        read_bytes(sparse, limit=small)
    labels = dataclasses.replace(small, raisable=False)  # 8 bytes a label in memory: not raised
    with pytest.raises(MnistlabError, match="over the limit of 100 bytes"):
        read_bytes(raw, limit=labels)
    for bad in ("lots", "0", "-1", "nan", "1e20"):  # 1e20: a hostile header's buffer
        monkeypatch.setenv(LIMIT_VARIABLE, bad)
        with pytest.raises(MnistlabError, match=f"{LIMIT_VARIABLE}={bad}: not a size in GiB up "
                           "to 1,024; give a number such as 4"):
            read_bytes(raw, limit=small)
    # a header past what the variable may give is not told to set it (review)
    assert DEFAULT_LIMIT.advice(3000 << 30).endswith(
        f"(its header announces more than the 1,024 GiB {LIMIT_VARIABLE} can allow)")
    # a published dataset's files are held to their published sizes: the variable is not read
    from mnistlab.data.sources import payload_limit

    assert payload_limit("mnist", "t10k-labels-idx1-ubyte").bytes_allowed() == 10_008


def test_published_datasets_ignore_the_raised_limit(shared_datasets, monkeypatch):
    """Their files are held to their published sizes: a bad MNISTLAB_IDX_LIMIT_GB refused
    MNIST itself, with advice about its copy (review)."""
    monkeypatch.setenv("MNISTLAB_IDX_LIMIT_GB", "lots")
    assert len(load_dataset("mnist", data_dir=str(shared_datasets)).test_labels) == 10_000
