"""The IDX reader and custom dataset folders: every malformed case gives a one-line error that
names the file and the problem; anything write_idx writes, read_idx reads back."""

from __future__ import annotations

import gzip
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_dataset_folder, make_idx_files, tiny_arrays
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from mnistlab.data import load_dataset, read_idx
from mnistlab.data.idx import GZIP_MAGIC, parse_idx, sha256_of_payload, write_idx
from mnistlab.errors import MnistlabError

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"


def _payload(folder: Path, name: str) -> bytes:
    return gzip.decompress((folder / name).read_bytes())


def _rewrite(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """A mutation: replace the payload of `name` by change(payload), gzipped again."""
    def mutate(folder: Path) -> None:
        (folder / name).write_bytes(gzip.compress(change(_payload(folder, name))))
    return mutate


def _swap_images_and_labels(folder: Path) -> None:
    images, labels = _payload(folder, TRAIN_IMAGES), _payload(folder, TRAIN_LABELS)
    (folder / TRAIN_IMAGES).write_bytes(gzip.compress(labels))
    (folder / TRAIN_LABELS).write_bytes(gzip.compress(images))


def _fewer_labels(folder: Path) -> None:
    write_idx(folder / TRAIN_LABELS, tiny_arrays(20, 0)[1][:15])


def _three_class_names(folder: Path) -> None:
    (folder / "classes.txt").write_text("a\nb\nc\n")


def _one_class(folder: Path) -> None:
    write_idx(folder / TRAIN_LABELS, np.zeros(20, np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))


def _blank_images(folder: Path) -> None:  # standardizing divided by their sd of 0: NaN
    write_idx(folder / TRAIN_IMAGES, np.full((20, 28, 28), 7, np.uint8))


def _test_images_of_another_size(folder: Path) -> None:
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((10, 14, 14), np.uint8))


# (case, mutation of a valid 20/10-image folder, the file the message names, the problem named)
BAD_FOLDERS = [
    ("wrong-magic", _rewrite(TRAIN_IMAGES, lambda d: b"\x12\x34" + d[2:]),
     TRAIN_IMAGES, "bad magic number 0x12340803"),
    # hunt: a gzipped .gz gzipped again was "bad magic number 0x1f8b0800 ... is this IDX?"
    ("gzipped-twice", _rewrite(TRAIN_IMAGES, gzip.compress),
     TRAIN_IMAGES, "gzipped twice (gzip's magic number inside the unpacked file); gunzip it "
                   "once"),
    # hunt: labels of shape (count, 1) were only asked "is this the right file?"
    ("labels-as-a-column", lambda f: write_idx(f / TRAIN_LABELS, np.zeros((20, 1), np.uint8)),
     TRAIN_LABELS, "has 2 dimension(s) but should hold labels (1 dimension, magic 0x00000801); "
                   "save the labels flat, as (count,)"),
    ("wrong-dtype-code", _rewrite(TRAIN_IMAGES, lambda d: d[:2] + b"\x0a" + d[3:]),
     TRAIN_IMAGES, "IDX data type 0x0a does not exist (IDX has 0x08, 0x09, 0x0b"),
    ("float-header-on-bytes", _rewrite(TRAIN_IMAGES, lambda d: d[:2] + b"\x0d" + d[3:]),
     TRAIN_IMAGES, "holds 15,680 of the 62,720 bytes"),  # 4 bytes a value: truncated
    ("wrong-dimension-count", _swap_images_and_labels,
     TRAIN_IMAGES, "has 1 dimension(s) but should hold images (3 dimensions"),
    ("truncated-payload", _rewrite(TRAIN_IMAGES, lambda d: d[:-100]),
     TRAIN_IMAGES, "truncated: header says 20 images of 28x28 but the file holds 15,580 of "
                   "the 15,680 bytes"),
    ("truncated-header", _rewrite(TRAIN_IMAGES, lambda d: d[:10]),
     TRAIN_IMAGES, "truncated header (10 of 16 bytes)"),
    ("trailing-bytes", _rewrite(TRAIN_LABELS, lambda d: d + b"junk"),
     TRAIN_LABELS, "4 unexpected bytes after the 20 labels its header announces"),
    ("gz-name-not-gzip", lambda f: (f / TRAIN_IMAGES).write_bytes(_payload(f, TRAIN_IMAGES)),
     TRAIN_IMAGES, "named .gz but a raw IDX file; drop the .gz from its name"),
    ("gz-name-web-page", lambda f: (f / TRAIN_IMAGES).write_bytes(b"<!DOCTYPE html><html>"),
     TRAIN_IMAGES, "named .gz but neither gzip nor IDX (it starts with b'<!'); download or "
                   "export it again"),
    ("classes-not-utf8", lambda f: (f / "classes.txt").write_bytes("Sch\xfche\n".encode("latin-1")),
     "classes.txt", "not UTF-8 text (byte 3 cannot be decoded); save it as UTF-8"),
    ("damaged-gzip", lambda f: (f / TRAIN_IMAGES).write_bytes((f / TRAIN_IMAGES).read_bytes()[:-9]),
     TRAIN_IMAGES, "damaged gzip data"),
    ("empty-file", lambda f: (f / TRAIN_LABELS).write_bytes(b""), TRAIN_LABELS, "empty file"),
    ("too-short", _rewrite(TRAIN_LABELS, lambda d: d[:3]), TRAIN_LABELS,
     "too short to be an IDX file (3 bytes)"),
    ("count-mismatch", _fewer_labels,
     TRAIN_LABELS, "holds 20 images but train-labels-idx1-ubyte.gz holds 15 labels"),
    ("labels-beyond-class-count", _three_class_names,
     "classes.txt", "labels go up to 9 but classes.txt names 3 classes"),
    ("class-named-twice", lambda f: (f / "classes.txt").write_text(
        "\n".join(["a", "b", "c", "d", "e", "f", "g", "h", "h", "j"])),
     "classes.txt", "'h' names classes 7 and 8; each class needs a name of its own"),
    ("class-without-a-name", lambda f: (f / "classes.txt").write_text(
        "\n".join(["a", "b", "", "d", "e", "f", "g", "h", "i", "j"]) + "\n\n"),
     "classes.txt", "line 3 is empty (class 2 would have no name)"),
    # an ESC was printed raw to the terminal in every table
    ("class-with-a-control-character", lambda f: (f / "classes.txt").write_text(
        "\n".join(["a", "b\x1b[31m", "c", "d", "e", "f", "g", "h", "i", "j"])),
     "classes.txt", "line 2 holds the control character '\\x1b'; class names are printed"),
    ("one-class", _one_class, "tiny", "every label is 0, so there is one class and nothing to "
                                      "classify; check the label files"),
    ("channel-axis", lambda f: write_idx(f / TRAIN_IMAGES, np.zeros((20, 28, 28, 1), np.uint8)),
     TRAIN_IMAGES, "has 4 dimension(s) but should hold images (3 dimensions, magic "
                   "0x00000803); save grayscale images as (count, height, width)"),
    ("one-value", _blank_images, "tiny", "every pixel of every training image is 7, so the "
                                         "images show nothing to learn from"),
    ("missing-file", lambda f: (f / "t10k-labels-idx1-ubyte.gz").unlink(),
     "t10k-labels-idx1-ubyte[.gz]", "is missing"),
    ("image-size-mismatch", _test_images_of_another_size,
     "tiny", "train images are (28, 28) but test images are (14, 14)"),
]


@pytest.mark.parametrize("mutate,file_name,problem", [c[1:] for c in BAD_FOLDERS],
                         ids=[c[0] for c in BAD_FOLDERS])
def test_bad_folder_gives_one_line_naming_file_and_problem(tmp_path, mutate, file_name, problem):
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    mutate(folder)
    with pytest.raises(MnistlabError) as info:
        load_dataset(folder)
    message = str(info.value)
    assert file_name in message and problem in message
    assert "\n" not in message and ";" in message  # one line, and a fix after the problem


def test_class_names_saved_with_a_byte_order_mark_are_the_names(tmp_path):
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    (folder / "classes.txt").write_bytes("\ufeff".encode() + "\n".join("abcdefghij").encode())
    assert load_dataset(folder).class_names[:2] == ["a", "b"]


def test_more_names_than_labels_are_blamed_on_classes_txt(tmp_path):
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    (folder / "classes.txt").write_text("\n".join("abcdefghijkl"))
    with pytest.warns(UserWarning, match="classes.txt names 12 classes but the labels run from "
                      "0 to 9, so classes 10, 11 have no image .* remove the extra names"):
        assert len(load_dataset(folder).class_names) == 12


def test_a_raw_file_beside_its_gzipped_copy_is_said_where_the_two_differ(tmp_path):
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unpacked copy of the same bytes: nothing to say
        for stem in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            (folder / stem).write_bytes(gzip.decompress((folder / f"{stem}.gz").read_bytes()))
        load_dataset(folder)
        # the same bytes gzipped in two members (`cat a.gz b.gz`): the trailer holds the last
        # member's size only, and the two were said to differ
        raw = (folder / "t10k-labels-idx1-ubyte").read_bytes()
        (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:9]) +
                                                           gzip.compress(raw[9:]))
        load_dataset(folder)
    images, labels = tiny_arrays(30, seed=3)  # the raw training images edited since
    write_idx(folder / "train-images-idx3-ubyte", images)
    with pytest.warns(UserWarning, match=r"train-images-idx3-ubyte and train-images-idx3-ubyte"
                      r"\.gz are both there and differ \(from byte 7 on; "
                      r"train-images-idx3-ubyte holds 23,536\); "
                      r"train-images-idx3-ubyte\.gz is read: remove the one not meant"):
        assert len(load_dataset(folder).train_labels) == 20
    raw = folder / "t10k-labels-idx1-ubyte"  # one label edited in place: the same size
    edited = bytearray(raw.read_bytes())
    edited[-1] ^= 1
    raw.write_bytes(bytes(edited))
    (folder / "train-images-idx3-ubyte").unlink()
    with pytest.warns(UserWarning, match=r"t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte\.gz "
                      r"are both there and differ \(from byte 17 on; "
                      r"t10k-labels-idx1-ubyte holds 18\)"):
        load_dataset(folder)
    # a damaged stream beside its raw copy: the reader's one line, not zlib's traceback
    images = folder / "train-images-idx3-ubyte.gz"
    (folder / "train-images-idx3-ubyte").write_bytes(gzip.decompress(images.read_bytes()))
    damaged = bytearray(images.read_bytes())
    damaged[40:400] = bytes(b ^ 0x5A for b in damaged[40:400])
    images.write_bytes(bytes(damaged))
    with pytest.raises(MnistlabError, match="damaged gzip data"):
        load_dataset(folder)


def test_read_idx_checks_dimensions_from_the_name(tmp_path):
    write_idx(tmp_path / "labels-idx3-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(MnistlabError, match="labels-idx3-ubyte: has 1 dimension"):
        read_idx(tmp_path / "labels-idx3-ubyte")
    write_idx(tmp_path / "anything", np.zeros(5, np.uint8))  # a name that says nothing
    assert read_idx(tmp_path / "anything").shape == (5,)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(MnistlabError, match="no such file"):
        read_idx(tmp_path / "nope-idx1-ubyte")


def test_payload_digest_ignores_the_gzip_wrapper(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a-idx1-ubyte", labels)
    (tmp_path / "b-idx1-ubyte.gz").write_bytes(
        gzip.compress((tmp_path / "a-idx1-ubyte").read_bytes(), compresslevel=1, mtime=123))
    assert sha256_of_payload(tmp_path / "a-idx1-ubyte") == sha256_of_payload(
        tmp_path / "b-idx1-ubyte.gz")


def test_custom_folder_with_class_names(tiny_idx_dir):
    ds = load_dataset(tiny_idx_dir)
    assert ds.name == "tiny" and ds.source == str(tiny_idx_dir)
    assert ds.train_images.shape == (600, 28, 28) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (200, 28, 28) and ds.train_labels.dtype == torch.int64
    assert ds.class_names == [f"class-{i}" for i in range(10)] and ds.num_classes == 10
    assert ds.train_labels.bincount().tolist() == [60] * 10
    pixels = ds.train_images.numpy() / 255
    assert ds.mean == pytest.approx(pixels.mean()) and ds.std == pytest.approx(pixels.std(ddof=1))


def test_custom_folder_raw_files_without_class_names(tmp_path):
    folder = make_idx_files(tmp_path / "kmnist-like", *tiny_arrays(30, 0, k=5), "train", gz=False)
    make_idx_files(folder, *tiny_arrays(10, 1, k=5), "t10k", gz=False)
    ds = load_dataset(str(folder))
    assert ds.name == "kmnist-like" and ds.class_names == ["0", "1", "2", "3", "4"]
    assert ds.train_images.shape == (30, 28, 28) and ds.num_classes == 5


def test_unknown_name_lists_known_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MnistlabError, match="'kmnist' is neither a known dataset \\(mnist, "
                                            "fashion-mnist\\) nor an existing folder"):
        load_dataset("kmnist")
    with pytest.raises(MnistlabError) as info:  # another dataset, not a typo of mnist
        load_dataset("kmnist")
    assert "did you mean" not in str(info.value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)),
       st.booleans())
def test_write_read_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == array.shape and np.array_equal(back, array)


# any bytes, and headers of 0-3 small dimensions followed by too few, enough or too many bytes
IDX_LIKE = st.binary(max_size=40) | st.builds(
    lambda dims, extra: struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(
        f">{len(dims)}I", *dims) + bytes(extra), st.lists(st.integers(0, 4), max_size=3),
    st.integers(0, 80))


@settings(max_examples=200, deadline=None)
@given(IDX_LIKE)
def test_parser_never_crashes(data):
    """Any bytes: either a well-formed array matching its header, or a MnistlabError."""
    try:
        array = parse_idx(data, "fuzz")
    except MnistlabError as exc:
        assert str(exc).startswith("fuzz: ")
    else:
        assert array.size == len(data) - 4 - 4 * array.ndim


@settings(max_examples=150, deadline=None)
@given(IDX_LIKE, st.booleans())
def test_file_reader_agrees_with_the_in_memory_parser(tmp_path_factory, data, gz):
    """The streamed reader (gzip or raw, header first, then a bounded fill) and parse_idx share
    one header check: same array or same message for any bytes."""
    assume(gz or data[:2] != GZIP_MAGIC)  # raw bytes that look gzipped are read as gzip
    path = tmp_path_factory.mktemp("fuzz") / ("fuzz" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)

    def outcome(read: Callable[[], np.ndarray], name: str) -> object:
        try:
            return read().tolist()
        except MnistlabError as exc:
            return str(exc).removeprefix(f"{name}: ")

    assert outcome(lambda: read_idx(path), str(path)) == outcome(
        lambda: parse_idx(data, "fuzz"), "fuzz")


def test_images_of_no_pixels_are_refused(tmp_path):
    """A header saying 0x0 loaded, and `data info --json` printed NaN, which is not JSON."""
    make_idx_files(tmp_path / "empty", np.zeros((5, 0, 0), np.uint8),
                   np.arange(5, dtype=np.uint8), "train")
    make_idx_files(tmp_path / "empty", np.zeros((2, 0, 0), np.uint8),
                   np.arange(2, dtype=np.uint8), "t10k")
    with pytest.raises(MnistlabError, match="the images are 0x0 pixels .*at least 1x1"):
        load_dataset(str(tmp_path / "empty"))


def test_a_stray_label_that_adds_empty_classes_is_warned_about(tmp_path):
    images, labels = tiny_arrays(40, 0)
    labels[3] = 255  # one byte: 256 outputs, 245 of them for classes no image shows
    make_idx_files(tmp_path / "stray", images, labels, "train")
    make_idx_files(tmp_path / "stray", *tiny_arrays(20, 1), "t10k")
    with pytest.warns(UserWarning, match=r"labels run from 0 to 255, so a model gets 256 "
                                         r"outputs, but classes 10, 11, 12, 13, 14 and 240 more "
                                         r"have no training image \(0 test images carry them\)"):
        assert load_dataset(str(tmp_path / "stray")).num_classes == 256
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class shown: nothing said
        load_dataset(str(make_dataset_folder(tmp_path / "fine", 40, 20)))
    images, labels = tiny_arrays(40, 0, k=3)
    labels[labels == 1] = 2  # labels 0 and 2: class 1 alone is empty ("classes 1 have")
    make_idx_files(tmp_path / "gap", images, labels, "train")
    make_idx_files(tmp_path / "gap", *tiny_arrays(20, 1, k=3), "t10k")
    with pytest.warns(UserWarning, match=r"but class 1 has no training image \(7 test images "
                                         r"carry it\)"):
        load_dataset(str(tmp_path / "gap"))


# --- IDX's other element types ------------------------------------------------------------------
def _typed_idx(array: np.ndarray, code: int, dtype: str) -> bytes:
    """IDX bytes of `array` stored as `dtype` (big-endian) under type `code`."""
    return (struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array).astype(dtype).tobytes())


PIXELS = np.array([[[0, 1, 128], [200, 254, 255]]], np.uint8)


@pytest.mark.parametrize("code,dtype,stored", [
    (0x09, ">i1", PIXELS // 2), (0x0B, ">i2", PIXELS), (0x0C, ">i4", PIXELS),
    (0x0D, ">f4", PIXELS / 255), (0x0E, ">f8", PIXELS.astype(float)),
    (0x0B, ">i2", PIXELS.astype(np.int32) * 128), (0x0C, ">i4", PIXELS.astype(np.int32) * 257)])
def test_every_idx_element_type_is_read_as_unsigned_bytes(code, dtype, stored):
    """Pixels as they are in 0..255, from 0..1 as floats, from the type's white as wider
    integers: 0..32767 for a signed 16-bit (divided by 257 as the rest, its white read 127, a
    grey), 0..65535 for 32-bit."""
    images = parse_idx(_typed_idx(stored, code, dtype), "x-images-idx3-ubyte", expect_dims=3)
    wanted = PIXELS // 2 if code == 0x09 else PIXELS
    assert images.dtype == np.uint8
    # from more than 8 bits: within one level of the byte
    assert np.abs(images.astype(int) - wanted).max() <= (stored.max() > 255)
    labels = parse_idx(_typed_idx(np.array([0, 3, 9]), code, dtype), "x-labels-idx1-ubyte",
                       expect_dims=1)
    assert labels.dtype == np.uint8 and labels.tolist() == [0, 3, 9]


def test_the_train_and_test_files_of_a_dataset_are_read_on_one_scale():
    """Scaled by each file's brightest pixel, a 12-bit train file (up to 4095) and a test
    file that stays under 2048 read the same value 2000 as 125 and as 249."""
    train = np.array([[[0, 2000, 4095]]], np.int32)
    test = np.array([[[0, 2000, 1000]]], np.int32)
    read = [parse_idx(_typed_idx(a, 0x0B, ">i2"), "x-images-idx3-ubyte", expect_dims=3)
            for a in (train, test)]
    assert read[0][0, 0, 1] == read[1][0, 0, 1]


def _two_files(folder: Path, train: tuple[np.ndarray, int, str],
               test: tuple[np.ndarray, int, str]) -> Path:
    """A dataset folder whose train and test images are stored as (array, type code, type)."""
    (_, y_train), (_, y_test) = tiny_arrays(40, 0), tiny_arrays(20, 1)
    folder.mkdir()
    for stem, (array, code, dtype) in (("train-images-idx3-ubyte", train),
                                       ("t10k-images-idx3-ubyte", test),
                                       ("train-labels-idx1-ubyte", (y_train, 0x08, ">u1")),
                                       ("t10k-labels-idx1-ubyte", (y_test, 0x08, ">u1"))):
        (folder / stem).write_bytes(_typed_idx(array, code, dtype))
    return folder


@pytest.mark.parametrize("test_top,code,dtype,read_as", [
    (200, 0x0B, ">i2", "0..32767"), (0.8, 0x0D, ">f4", "0..1")])
def test_a_dataset_whose_files_would_be_read_on_two_scales_is_refused(tmp_path, test_top, code,
                                                                      dtype, read_as):
    """A 16-bit train file reaching 4,000 is read on its type's 0..32767, and a test file that
    stays under 256 as it is: the value 200 read 2 in one split and 200 in the other."""
    x_train, x_test = tiny_arrays(40, 0)[0], tiny_arrays(20, 1)[0]
    train = x_train.astype(np.float64) * (4000 / 255 if code == 0x0B else 1)
    test = x_test.astype(np.float64) * (test_top / 255)
    folder = _two_files(tmp_path / "two", (train, code, dtype), (test, code, dtype))
    with pytest.raises(MnistlabError) as info:
        load_dataset(str(folder))
    assert str(info.value) == (
        f"{folder}: train-images-idx3-ubyte is read as {'0..32767' if code == 0x0B else '0..255'}"
        f" but t10k-images-idx3-ubyte as {'0..255' if code == 0x0B else read_as} (by their "
        "values: the type is the same), so the splits may be on two scales; save both image "
        "files on one (bytes 0..255, or the type's full range)")


@pytest.mark.parametrize("train,test", [
    ((1, 0x08, ">u1"), (1 / 255, 0x0D, ">f4")),  # bytes beside floats in 0..1
    ((1 / 255, 0x0D, ">f4"), (1, 0x08, ">u1")),
    ((32767 / 255, 0x0B, ">i2"), (1, 0x08, ">u1")),  # a 16-bit file's full range beside bytes
    ((32767 / 255, 0x0B, ">i2"), (65535 / 255, 0x0C, ">i4"))])  # two types, each its range
def test_files_of_two_types_each_read_by_its_type_load_as_one_scale(tmp_path, train, test):
    """The refusal above is for a range chosen by the values beside a sibling of the same
    type read on another; files whose types each say their range load as they did."""
    x_train, x_test = tiny_arrays(40, 0)[0], tiny_arrays(20, 1)[0]
    folder = _two_files(tmp_path / "ok", (x_train * train[0], *train[1:]),
                        (x_test * test[0], *test[1:]))
    dataset = load_dataset(str(folder))
    assert np.abs(dataset.train_images.numpy().astype(int) - x_train).max() <= 1
    assert np.abs(dataset.test_images.numpy().astype(int) - x_test).max() <= 1


@pytest.mark.parametrize("array,code,dtype,message", [
    (np.array([[[-1, 5]]]), 0x0B, ">i2", "int16 pixels span -1 to 5; IDX images are read as"),
    (np.array([[[0.5, np.nan]]]), 0x0D, ">f4", "its pixels hold NaN or infinite values"),
    (np.array([[[0, 300.5]]]), 0x0E, ">f8", "float64 pixels span 0 to 300.5"),
    (np.array([[[0, 70000]]]), 0x0C, ">i4", "int32 pixels span 0 to 70000"),
    (np.array([0.0, 1.5]), 0x0D, ">f4", "labels must be whole numbers 0..255"),
    (np.array([0, 300]), 0x0B, ">i2", "labels must be whole numbers 0..255 (class indices); "
                                      "these span 0 to 300"),
])
def test_values_no_byte_can_hold_are_one_line(array, code, dtype, message):
    dims = array.ndim
    with pytest.raises(MnistlabError) as info:
        parse_idx(_typed_idx(array, code, dtype), "f", expect_dims=dims)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("array,code,dtype", [
    (PIXELS / 255, 0x0D, "<f4"), (PIXELS.astype(np.int32) * 100, 0x0B, "<i2"),
    (np.array([0, 3, 9]), 0x0C, "<i4"), (np.array([0.0, 2.0]), 0x0E, "<f8"),
    (np.array([[[0.5, 3e-9, 1.0]]]), 0x0D, "<f4")])  # a resize's tiny value (review)
def test_numbers_written_little_endian_are_said_so(array, code, dtype):
    """numpy's tobytes() writes this machine's order: such a file was told its pixels span
    -2.6e36 to 0 and to "rescale them", or its labels 0 to 3.4e7 (hunt)."""
    with pytest.raises(MnistlabError) as info:
        parse_idx(_typed_idx(array, code, dtype), "f", expect_dims=array.ndim)
    big = dtype.replace("<", ">")
    said = str(info.value)
    assert said.endswith("written little-endian (read the other way round, they fit), IDX "
                         "numbers are big-endian: write them with numpy's "
                         f"array.astype('{big}').tobytes()" if "i" in dtype else
                         "were written little-endian (read the other way round, they fit); IDX "
                         f"numbers are big-endian: write them with numpy's array.astype('{big}')"
                         ".tobytes()"), said
    assert parse_idx(_typed_idx(array, code, big), "f", expect_dims=array.ndim).size


def test_big_endian_integers_that_also_fit_swapped_are_not_called_little_endian():
    """Bytes shifted into a 16-bit file's high byte (p * 256) read as 0..255 swapped, exactly
    as 0..255 written little-endian does: both readings are said, the range first (review)."""
    stored = (PIXELS.astype(np.int32) * 256 - 32768).astype(np.int16)
    with pytest.raises(MnistlabError) as info:
        parse_idx(_typed_idx(stored, 0x0B, ">i2"), "f", expect_dims=3)
    assert str(info.value).startswith("f: int16 pixels span -32768 to 32512; IDX images are ")
    assert "; or, if the file was written little-endian (read the other way round, they fit)" \
        in str(info.value)


def test_a_folder_of_16_bit_idx_files_trains(tmp_path):
    """A dataset exported as 16-bit integers (0..65535) loads as the bytes it was made from."""
    (x_train, y_train), (x_test, y_test) = tiny_arrays(40, 0), tiny_arrays(20, 1)
    folder = tmp_path / "deep"
    folder.mkdir()
    for stem, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        deep = array.astype(np.int32) * (257 if array.ndim == 3 else 1)
        (folder / f"{stem}.gz").write_bytes(gzip.compress(_typed_idx(deep, 0x0C, ">i4")))
    dataset = load_dataset(str(folder))
    assert np.array_equal(dataset.train_images.numpy(), np.asarray(x_train))
    assert np.array_equal(dataset.test_labels.numpy(), np.asarray(y_test))


def test_an_empty_gz_beside_its_raw_file_says_removing_it_is_the_fix(tmp_path):
    """The .gz is read first: "download or export it again" sent the user to fetch a file
    whose raw copy was there all along."""
    import gzip

    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    (folder / TRAIN_LABELS.removesuffix(".gz")).write_bytes(
        gzip.decompress((folder / TRAIN_LABELS).read_bytes()))
    (folder / TRAIN_LABELS).write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(MnistlabError) as info:
        load_dataset(folder)
    assert str(info.value).endswith(f"empty file; download or export it again; or remove it: "
                                    f"{TRAIN_LABELS.removesuffix('.gz')} beside it is read then")
    (folder / TRAIN_LABELS).unlink()
    assert len(load_dataset(folder).train_labels) == 20
    # the raw file as bad as the .gz: removing the .gz would only move the error there
    raw = folder / TRAIN_LABELS.removesuffix(".gz")
    raw.write_bytes(raw.read_bytes()[:-3])
    (folder / TRAIN_LABELS).write_bytes(gzip.compress(raw.read_bytes()))
    with pytest.raises(MnistlabError) as info:
        load_dataset(folder)
    assert "truncated" in str(info.value) and "remove it" not in str(info.value)


def test_more_names_than_labels_for_a_published_dataset_s_copy_are_said(tmp_path,
                                                                        shared_datasets):
    """A copy of MNIST with twelve names in classes.txt made twelve-output models without a
    word (two classes that never had an image), where another folder is warned."""
    folder = tmp_path / "mnist-named"
    folder.mkdir()
    for file in (shared_datasets / "mnist").glob("*-ubyte.gz"):
        (folder / file.name).symlink_to(file)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own ten names: nothing to say
        assert load_dataset(folder).class_names == names
    (folder / "classes.txt").write_text("\n".join([*names, "ten", "eleven"]) + "\n")
    with pytest.warns(UserWarning, match="classes.txt names 12 classes but the labels run from "
                      "0 to 9, so classes 10, 11 have no image"):
        dataset = load_dataset(folder)
    assert dataset.published and len(dataset.class_names) == 12


def test_a_form_feed_or_line_separator_in_classes_txt_does_not_split_a_name(tmp_path):
    """splitlines() split "a\\x0cb" into two classes, shifting every name after it."""
    folder = make_dataset_folder(tmp_path / "tiny", 20, 10)
    (folder / "classes.txt").write_text("\n".join(["a\u2028b", *"cdefghijk"]))
    with pytest.raises(MnistlabError, match="line 1 holds the control character"):
        load_dataset(folder)
    (folder / "classes.txt").write_text("\r\n".join("abcdefghij") + "\r\n")  # Windows' lines
    assert load_dataset(folder).class_names == list("abcdefghij")
