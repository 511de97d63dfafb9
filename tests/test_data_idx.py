"""The IDX reader: every malformed case gives a one-line error naming the file and problem."""

import gzip
import struct

import numpy as np
import pytest
from conftest import make_idx_files, tiny_arrays
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistlab.cli import main
from mnistlab.data import load_dataset, read_idx, write_idx
from mnistlab.errors import MnistlabError


def _header(type_code=0x08, dims=(2, 3, 3)):
    return struct.pack(">HBB", 0, type_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


BAD_FILES = [
    ("bad-magic", b"\x12\x34\x08\x03" + b"\x00" * 30, "bad magic number"),
    ("bad-type", _header(0x0D) + b"\x00" * 18, "type code 0x0d is not supported"),
    ("truncated", _header() + b"\x00" * 10, "truncated: the header promises 2x3x3 = 18 bytes"),
    ("trailing", _header() + b"\x00" * 25, "7 unexpected bytes after the data"),
    ("empty", b"", "too short to be an IDX file"),
    ("short-header", b"\x00\x00\x08\x03\x00\x00", "truncated header"),
]


@pytest.mark.parametrize("name,data,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_malformed_idx(tmp_path, name, data, message):
    path = tmp_path / f"{name}-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(MnistlabError) as info:
        read_idx(path)
    text = str(info.value)
    assert message in text and path.name in text and "\n" not in text


def test_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_header() + b"\x00" * 18)
    with pytest.raises(MnistlabError, match="named .gz but not gzip-compressed"):
        read_idx(path)


def test_damaged_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_header() + b"\x00" * 18)[:-6])
    with pytest.raises(MnistlabError, match="damaged gzip file"):
        read_idx(path)


def test_wrong_dimensions_say_files_may_be_swapped(tmp_path):
    folder = make_idx_files(tmp_path / "d", tiny_arrays(20, 0), tiny_arrays(10, 1))
    (folder / "train-images-idx3-ubyte.gz").rename(folder / "x")
    (folder / "train-labels-idx1-ubyte.gz").rename(folder / "train-images-idx3-ubyte.gz")
    (folder / "x").rename(folder / "train-labels-idx1-ubyte.gz")
    with pytest.raises(MnistlabError, match="swapped"):
        load_dataset(str(folder))


def test_count_mismatch(tmp_path):
    images, labels = tiny_arrays(20, 0)
    folder = make_idx_files(tmp_path / "d", (images, labels[:15]), tiny_arrays(10, 1))
    with pytest.raises(MnistlabError, match="20 images but 15 labels"):
        load_dataset(str(folder))


def test_labels_beyond_class_count(tmp_path):
    folder = make_idx_files(tmp_path / "d", tiny_arrays(20, 0), tiny_arrays(10, 1))
    (folder / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(MnistlabError, match="labels go up to 9 but there are 3 classes"):
        load_dataset(str(folder))


def test_missing_file(tmp_path):
    folder = make_idx_files(tmp_path / "d", tiny_arrays(20, 0), tiny_arrays(10, 1))
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistlabError, match="t10k-labels-idx1-ubyte\\[.gz\\] is missing"):
        load_dataset(str(folder))


def test_custom_dataset_raw_files_and_class_names(tmp_path):
    folder = make_idx_files(tmp_path / "kmnist-like", tiny_arrays(30, 0, k=5),
                            tiny_arrays(10, 1, k=5), gz=False)
    (folder / "classes.txt").write_text("o\nki\nsu\ntsu\nna\n")
    ds = load_dataset(str(folder))
    assert ds.name == "kmnist-like" and ds.class_names == ["o", "ki", "su", "tsu", "na"]
    assert ds.train_images.shape == (30, 28, 28) and ds.num_classes == 5
    assert 0 < ds.mean < 1 and 0 < ds.std < 1


def test_cli_reports_malformed_file_in_one_line(tmp_path, capsys):
    folder = make_idx_files(tmp_path / "d", tiny_arrays(20, 0), tiny_arrays(10, 1))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_header() + b"\x00"))
    code = main(["train", "--dataset", str(folder), "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "t10k-images-idx3-ubyte.gz: truncated" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))),
       st.booleans())
def test_write_read_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a-idx3-ubyte" + (".gz" if gz else ""))
    write_idx(path, array)
    assert np.array_equal(read_idx(path), array)
