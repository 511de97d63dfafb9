"""Predicting on the user's own images: preprocessing, bad files, reports, checkpoint safety."""

from __future__ import annotations

import io
import json
import os
import pickle
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_python
from drawn import draw_digits, make_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, TiffImagePlugin

from mnistlab import MnistlabError, load_dataset
from mnistlab.predict import (
    EncodedImage,
    ImageProblem,
    Prediction,
    exit_code,
    format_predictions,
    predict,
    preprocess,
    read_image,
    sheet_figure,
    show_sheet,
)
from mnistlab.runs import load_model


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """An untrained LeNet: bad-file handling and reports need no accuracy."""
    return make_run(tmp_path_factory.mktemp("toy"))


def paper_digit(width: int = 90, height: int = 120) -> Image.Image:
    """A dark '1'-like bar on white paper, off-centre."""
    pixels = np.full((height, width), 235, np.uint8)
    pixels[20:100, 30:42] = 20
    return Image.fromarray(pixels)


# --- accuracy on digits drawn as a user would ------------------------------------------------
@pytest.mark.slow
def test_drawn_digits_need_the_preprocessing(lenet_run, tmp_path):
    labels = draw_digits(tmp_path / "drawn")
    model = load_model(lenet_run)

    def accuracy(style: str) -> float:
        predictions = predict(model, tmp_path / "drawn", style=style)
        assert len(predictions) == len(labels) and not any(p.error for p in predictions)
        return float(np.mean([p.index == labels[Path(p.path).name] for p in predictions]))

    prepared, plain = accuracy("strokes"), accuracy("plain")
    print(f"\n{len(labels)} drawn digits: {prepared:.1%} correct with the MNIST-style "
          f"preprocessing, {plain:.1%} with a plain resize")
    assert prepared >= 0.90
    assert plain <= prepared - 0.20 or plain < 0.50


@pytest.mark.slow
def test_mnist_digits_pass_through_unharmed(lenet_run, shared_datasets):
    """Real test digits, as they are and as dark ink on paper at 4x size with noise, still
    score like the model does on the raw test set: the preprocessing changes little."""
    ds = load_dataset("mnist", data_dir=str(shared_datasets))
    digits, labels = ds.test_images[:500].numpy(), ds.test_labels[:500].numpy()
    rng = np.random.default_rng(0)
    on_paper = []
    for digit in digits:
        big = np.asarray(Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC))
        sheet = np.full((160, 200), 255, np.float32)
        y, x = rng.integers(0, 48), rng.integers(0, 88)
        sheet[y:y + 112, x:x + 112] = big * 0.8 + 40
        on_paper.append(np.clip(sheet + rng.normal(0, 4, sheet.shape), 0, 255).astype(np.uint8))
    model = load_model(lenet_run)
    as_is = np.mean([p.index == y for p, y in zip(predict(model, list(digits)), labels)])
    drawn = np.mean([p.index == y for p, y in zip(predict(model, on_paper), labels)])
    print(f"\n500 MNIST test digits through the preprocessing: {as_is:.1%} as they are, "
          f"{drawn:.1%} as dark ink on paper")
    assert as_is >= 0.95 and drawn >= 0.95


# --- preprocessing ---------------------------------------------------------------------------
def test_strokes_fill_a_20_box_centred_by_mass():
    out = preprocess(paper_digit())
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows, cols = np.nonzero(out > 0)
    assert rows.max() - rows.min() + 1 in (20, 21)  # anti-aliased edges may add a pixel
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0
    ys, xs = np.indices(out.shape)
    mass = out.astype(float).sum()
    assert abs((ys * out).sum() / mass + 0.5 - 14) <= 0.5
    assert abs((xs * out).sum() / mass + 0.5 - 14) <= 0.5


@pytest.mark.parametrize("fall, ink, height", [(60, 20, 120), (25, 130, 120), (40, 20, 60)])
def test_light_falling_off_across_the_page_is_not_grain(fall, ink, height):
    """Paper 60 grey levels darker at one side than the other (a phone photo's light), or a
    pencil's faint ink under 25: "blank image" (the border's spread was taken for the paper's
    grain; hunt). The digit comes out as it does on even paper."""
    even = np.full((height, height * 3 // 4), 200, np.float32)
    even[height // 6:height * 5 // 6, height // 4:height * 7 // 20] = ink
    falling = even - np.linspace(0, fall, even.shape[1])[None, :] * (even > ink)

    def box(image: np.ndarray) -> tuple[int, int, int]:  # its ink: pixels, height, width
        rows, cols = np.nonzero(preprocess(image.astype(np.uint8)) > 128)
        return len(rows), int(np.ptp(rows)), int(np.ptp(cols))

    assert box(falling) == box(even)  # (placed a pixel apart, maybe: its centre of mass)


def test_a_speck_on_an_empty_page_is_no_digit():
    """A 6x6 speck of dust on a scanned empty page was enlarged into a square and read as "0"
    at 78% (hunt). A small digit on the same page is still read."""
    from mnistlab.predict import ImageProblem

    page = np.full((1000, 1000), 235, np.uint8)
    page[500:506, 500:506] = 40
    with pytest.raises(ImageProblem, match=r"blank image: only a speck of ink \(6 pixels "
                                           r"across, in a picture of 1000x1000\)"):
        preprocess(page)
    page[400:480, 600:612] = 30  # a "1" 80 pixels tall
    assert preprocess(page).max() == 255
    photo = np.full((2000, 1500), 235, np.uint8)  # a digit 25 pixels tall on a large page
    photo[1000:1025, 700:704] = 30  # (the review: a fiftieth of the page alone refused it)
    assert preprocess(photo).max() == 255
    small = np.full((100, 100), 230, np.uint8)  # a dot on a small page too (review)
    small[50:53, 50:53] = 20
    with pytest.raises(ImageProblem, match="only a speck of ink"):
        preprocess(small)


def test_a_strip_of_desk_along_one_edge_does_not_hide_the_digit():
    """A strip darker than the paper along one edge tilted the plane fitted to the border:
    even paper became a ramp of 60 grey levels, and a clear digit a "blank image" (review)."""
    page = np.full((120, 90), 200, np.uint8)
    page[20:100, 30:42] = 40
    page[:, :6] = 120
    assert preprocess(page).max() == 255


def test_light_on_dark_is_not_inverted():
    dark_on_light = np.asarray(paper_digit())
    a = preprocess(dark_on_light)
    b = preprocess(255 - dark_on_light)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_paper_texture_is_removed():
    rng = np.random.default_rng(0)
    noisy = np.asarray(paper_digit()).astype(float) + rng.normal(0, 8, (120, 90))
    out = preprocess(np.clip(noisy, 0, 255).astype(np.uint8))
    clean = preprocess(paper_digit())
    assert (out > 0).sum() <= (clean > 0).sum() + 4  # no speckle around the stroke
    assert out[:4].max() == 0


def test_objects_fit_whole_and_centre_geometrically():
    pixels = np.full((100, 200), 250, np.uint8)
    pixels[30:70, 20:180] = 60  # a wide dark object on a white background
    out = preprocess(pixels, style="objects")
    rows, cols = np.nonzero(out > 32)
    assert cols.min() == 0 and cols.max() == 27  # longest side fills the image
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1
    assert out[0].max() == 0 and out[-1].max() == 0  # background to black


def test_fashion_runs_use_object_preprocessing(tmp_path):
    run = make_run(tmp_path / "fashion", dataset="fashion-mnist")
    pixels = np.full((100, 200), 250, np.uint8)
    pixels[30:70, 20:180] = 60
    [prediction] = predict(run, [pixels])
    assert np.array_equal(prediction.image, preprocess(pixels, style="objects"))


def test_camera_orientation_is_applied(tmp_path):
    pixels = np.asarray(paper_digit()).copy()
    pixels[20:30, 42:70] = 20  # an arm to the right: the digit is no longer symmetric
    upright = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    upright.rotate(90, expand=True).save(tmp_path / "phone.png", exif=exif)
    upright.save(tmp_path / "upright.png")
    assert np.array_equal(preprocess(tmp_path / "phone.png"), preprocess(tmp_path / "upright.png"))


def test_transparent_drawing_is_put_on_paper():
    rgba = np.zeros((80, 60, 4), np.uint8)
    rgba[10:70, 25:35] = (0, 0, 0, 255)  # black strokes on a transparent canvas
    out = preprocess(Image.fromarray(rgba))
    assert out.max() == 255 and out[:, :4].max() == 0


@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0)])
def test_a_transparent_colour_key_is_put_on_paper_too(tmp_path, mode, key):
    """Hunt: black strokes on transparent black stored with a colour key (what PNG optimisers
    write for all-or-nothing alpha) read as black on black: "blank image"."""
    pixels = np.zeros((80, 60), np.uint8)
    pixels[10:70, 25:35] = 10
    picture = Image.fromarray(pixels).convert(mode)
    picture.save(tmp_path / "keyed.png", transparency=key)
    assert Image.open(tmp_path / "keyed.png").mode == mode  # no alpha channel of its own
    out = preprocess(Image.open(tmp_path / "keyed.png"))
    assert out.max() == 255 and out[:, :4].max() == 0
    # review: a key on a paper far from the ink (white strokes, blurred, on keyed black) made
    # the halo the paper and the digit hollow: such a picture reads as without the key
    from PIL import ImageFilter

    soft = Image.fromarray(pixels * 25).filter(ImageFilter.GaussianBlur(3)).convert(mode)
    soft.save(tmp_path / "soft.png", transparency=key)
    soft.save(tmp_path / "plain.png")
    assert np.array_equal(preprocess(Image.open(tmp_path / "soft.png")),
                          preprocess(Image.open(tmp_path / "plain.png")))


def test_an_avif_is_read_where_pillow_reads_it(toy_run, tmp_path):
    """Hunt: a folder's .avif was "not named as an image ... give them by name", and given by
    name "not an image that can be read", where this Pillow reads AVIF."""
    if "AVIF" not in Image.registered_extensions().values():
        pytest.skip("this Pillow does not read AVIF")
    paper_digit().convert("RGB").save(tmp_path / "one.avif")
    [found] = predict(toy_run, tmp_path)
    assert found.error is None and found.path.endswith("one.avif")


def test_a_turned_uncompressed_tiff_reads_as_its_compressed_copy(tmp_path):
    """Hunt: Pillow 13 decodes an uncompressed TIFF with orientation 5-8, opened by its path,
    as sheared copies of the picture, read as a confident wrong digit; from its bytes, and
    compressed, it is decoded right (review)."""
    exif = Image.Exif()
    exif[0x0112] = 8
    picture = paper_digit()
    picture.save(tmp_path / "raw.tif", exif=exif)
    picture.save(tmp_path / "lzw.tif", exif=exif, compression="tiff_lzw")
    wanted = read_image(tmp_path / "lzw.tif")
    assert wanted.shape == (90, 120)  # turned a quarter
    assert np.array_equal(read_image(tmp_path / "raw.tif"), wanted)


def test_arrays_of_any_common_form(toy_run):
    base = np.asarray(paper_digit())
    inputs = [base, base / 255.0, base > 128, np.stack([base] * 3, axis=2),
              torch.from_numpy(base.copy())]
    predictions = predict(toy_run, inputs)
    assert [p.error for p in predictions] == [None] * len(inputs)
    assert [p.path for p in predictions] == [f"<image {i}>" for i in range(len(inputs))]


def test_a_16_bit_scan_reads_as_its_8_bit_copy(tmp_path):
    """Scanners save 16-bit grayscale; Pillow opens such a PNG as mode I;16 and some TIFFs as
    32-bit integers (mode I): each must read as the 0..255 picture its 8-bit copy gives."""
    eight = np.asarray(paper_digit()).astype(np.uint16)
    Image.fromarray(eight * 257).save(tmp_path / "scan16.png")
    Image.fromarray(eight.astype(np.int32) * 257).save(tmp_path / "scan32.tif")
    Image.fromarray(eight.astype(np.uint8)).save(tmp_path / "scan8.png")
    wanted = read_image(tmp_path / "scan8.png")
    assert Image.open(tmp_path / "scan16.png").mode.startswith("I;16")
    for source in (tmp_path / "scan16.png", tmp_path / "scan32.tif", eight * 257):
        assert np.abs(read_image(source) - wanted).max() < 0.01
    assert np.array_equal(preprocess(tmp_path / "scan16.png"), preprocess(eight.astype(np.uint8)))
    large = np.kron(eight, np.ones((12, 12), np.uint16))  # shrunk to 1024 first, as 8-bit is
    deep, flat = read_image(large * 257), read_image(large.astype(np.uint8))
    assert max(large.shape) > 1024 and deep.shape == flat.shape and max(deep.shape) == 1024
    assert np.abs(deep - flat).max() < 1  # 8 bits round to whole levels


@pytest.mark.parametrize("bits", [10, 12, 14])
def test_a_scan_of_fewer_than_16_bits_in_a_16_bit_file_is_read_at_its_depth(tmp_path, bits):
    """A 12-bit sensor's 0..4095 in a 16-bit PNG was scaled by 65535 and called blank; an 8-bit
    picture in a 16-bit file (or array) reads as its 8-bit copy, as it did."""
    eight = np.asarray(paper_digit()).astype(np.uint32)
    deep = ((eight * (2**bits - 1) + 127) // 255).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "scan.png")
    Image.fromarray(eight.astype(np.uint16)).save(tmp_path / "eight.png")
    assert Image.open(tmp_path / "scan.png").mode.startswith("I;16") and deep.max() >= 2**(bits - 1)
    wanted = read_image(eight.astype(np.uint8))
    for source in (tmp_path / "scan.png", deep):
        assert np.abs(read_image(source) - wanted).max() < 0.2
    assert np.array_equal(preprocess(tmp_path / "scan.png"), preprocess(eight.astype(np.uint8)))
    assert np.array_equal(read_image(tmp_path / "eight.png"), wanted)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))),
       st.sampled_from(["strokes", "objects", "plain"]))
def test_any_image_gives_a_28x28_or_a_one_line_problem(pixels, style):
    try:
        out = preprocess(pixels, style=style)
    except ImageProblem as problem:
        assert "\n" not in str(problem)
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


# --- bad inputs: each gets its own error, the others are still predicted ---------------------
def _png_header(path: Path, width: int, height: int) -> None:
    """A valid PNG header for a huge grayscale image, with no pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _truncated(path: Path) -> None:
    paper_digit().save(path.with_suffix(".full.png"))
    data = path.with_suffix(".full.png").read_bytes()
    path.with_suffix(".full.png").unlink()
    path.write_bytes(data[:len(data) // 2])


def _animated(path: Path) -> None:
    frames = [paper_digit(), Image.fromarray(255 - np.asarray(paper_digit()))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _bad_palette(path: Path) -> None:
    """A BMP whose header claims 1,000 palette colours: Pillow fails with a ValueError."""
    paper_digit().save(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 46, 1000)  # the info header's colours-used field
    path.write_bytes(bytes(data))


def _bad_trailer(path: Path) -> None:
    """An animated GIF whose last byte is damaged: Pillow fails with an IndexError."""
    _animated(path)
    path.write_bytes(path.read_bytes()[:-1] + b"!")


BAD_FILES = {
    "truncated.png": (_truncated, "damaged or unreadable"),
    "empty.png": (lambda p: p.write_bytes(b""), "empty file"),
    "blank.png": (lambda p: Image.new("L", (64, 64), 255).save(p), "blank image"),
    "blank-paper.jpg": (lambda p: Image.fromarray(np.clip(np.random.default_rng(0).normal(
        230, 6, (120, 90)), 0, 255).astype(np.uint8)).save(p), "blank image"),
    "huge.png": (lambda p: _png_header(p, 8000, 8000), "too large (8000x8000"),
    "bomb.png": (lambda p: _png_header(p, 100_000, 100_000),
                 "too large (10000 megapixels, limit 50 megapixels)"),
    "notes.png": (lambda p: p.write_text("not a picture\n"), "not an image"),
    "animated.gif": (_animated, "animated or multi-page image (2 frames)"),
    "float.tif": (lambda p: Image.fromarray(np.full((40, 40), 0.5, np.float32)).save(p),
                  "32-bit floating-point image (mode F)"),
    "wide.tif": (lambda p: Image.fromarray(np.full((40, 40), 70_000, np.int32)).save(p),
                 "32-bit image (mode I) with values outside 0..65535"),
    "missing.png": (lambda p: None, "no such file"),
    "loop.png": (lambda p: p.symlink_to(p), "a link that leads nowhere"),
    "cut.gif": (_bad_trailer, "damaged or unreadable image (IndexError"),
    "palette.bmp": (_bad_palette, "damaged or unreadable image (ValueError: invalid palette"),
    "lab.tif": (lambda p: Image.new("LAB", (40, 40), (50, 0, 0)).save(p),
                "cannot be turned into grayscale"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_gets_its_own_error_line(toy_run, tmp_path, name):
    make, expected = BAD_FILES[name]
    bad = tmp_path / name
    make(bad)
    good = tmp_path / "good.png"
    paper_digit().save(good)
    predictions = predict(toy_run, [good, bad, good])
    assert [p.error is None for p in predictions] == [True, False, True]
    assert predictions[0].label is not None and predictions[2].top
    error = predictions[1].error
    assert expected in error and "\n" not in error
    lines = format_predictions(predictions).splitlines()
    assert len(lines) == 3 and str(bad) in lines[1] and "error:" in lines[1]
    assert exit_code(predictions) == 1


def test_a_huge_image_is_refused_before_decoding(tmp_path):
    # 8000x8000 would need 64 MB decoded; the header has no pixel data, so refusing it at all
    # proves nothing was decoded (decoding would fail as truncated instead).
    _png_header(tmp_path / "huge.png", 8000, 8000)
    with pytest.raises(ImageProblem, match="too large"):
        read_image(tmp_path / "huge.png")


def test_a_folder_means_its_image_files(toy_run, tmp_path):
    paper_digit().save(tmp_path / "b.png")
    paper_digit().convert("RGB").save(tmp_path / "a.jpg")
    (tmp_path / "readme.txt").write_text("not an image")
    paper_digit().save(tmp_path / ".hidden.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "nested").mkdir()
    paper_digit().save(tmp_path / "nested" / "c.png")
    # what is not read is said, not passed over (a subfolder of images looked like nothing)
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    # the subfolders given too are read; sub is not, nor readme.txt, nor the dangling link
    with pytest.warns(UserWarning, match=r": 1 subfolder \(sub\) and 1 file not named as an "
                      r"image \(readme\.txt\) and 1 link to nothing \(gone\.png\) not read; "
                      "give them by name, a subfolder as a folder of its own; fix or remove "
                      "the link"):
        predictions = predict(toy_run, [tmp_path, tmp_path / "empty", tmp_path / "nested"])
    names = [Path(p.path).name for p in predictions]
    assert names == ["a.jpg", "b.png", "empty", "c.png"]
    assert predictions[2].error.startswith("folder holds no image files")
    (tmp_path / "nested" / "deeper").mkdir()
    with pytest.warns(UserWarning, match=r"nested: 1 subfolder \(deeper\) not read; give a "
                      "subfolder as a folder of its own"):
        predict(toy_run, tmp_path / "nested")
    only_folders = tmp_path / "only"
    (only_folders / "inner").mkdir(parents=True)
    (answer,) = predict(toy_run, only_folders)
    assert answer.error.endswith("; 1 subfolder (inner) not read; give a subfolder as a folder "
                                 "of its own")


def test_a_folder_s_files_of_formats_predict_does_not_read_are_told_to_be_converted(
        toy_run, tmp_path):
    """A folder of iPhone photos (HEIC) and a scan (PDF) was told "give them by name", and
    by name each was refused (hunt)."""
    paper_digit().save(tmp_path / "a.png")
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4")
    with pytest.warns(UserWarning, match=r": 2 files of a format predict does not read "
                      r"\(IMG_0001\.HEIC, scan\.pdf\) not read; convert those of other formats "
                      r"to PNG or JPEG$"):
        (only,) = predict(toy_run, tmp_path)
    assert only.error is None


def test_numpy_array_files_are_pointed_to_python_not_to_naming_them(toy_run, tmp_path):
    """A folder's x.npy was "not named as an image ...; give them by name", and named it was
    "not an image that can be read" (hunt): predict reads no array file, Python does."""
    import numpy as np

    folder = tmp_path / "arrays"
    folder.mkdir()
    paper_digit().save(folder / "a.png")
    np.save(folder / "x.npy", np.asarray(paper_digit().convert("L")))
    with pytest.warns(UserWarning, match=r"1 NumPy array file \(x\.npy\) not read; give arrays "
                      r"through Python \(mnistlab\.predict\(run, numpy\.load\(path\)\)\)"):
        predict(toy_run, folder)
    (answer,) = predict(toy_run, folder / "x.npy")
    assert answer.error.startswith("a NumPy array file, which predict does not read")
    (answer,) = predict(toy_run, np.load(folder / "x.npy"))  # as an array it is read
    assert answer.error is None


def test_idx_files_are_pointed_to_evaluate_not_to_naming_them(toy_run, tmp_path):
    """A folder of IDX files was "4 files not named as an image ...; give them by name", and
    named they were "not an image that can be read" (hunt): evaluate reads a folder of them,
    and Python their images. Known by name, or by their first bytes (gzipped too)."""
    import gzip

    from mnistlab.data.idx import write_idx

    folder = tmp_path / "idx"
    folder.mkdir()
    paper_digit().save(folder / "a.png")
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(folder / "renamed", np.zeros(2, np.uint8))
    (folder / "zipped").write_bytes(gzip.compress((folder / "renamed").read_bytes()))
    (folder / "notes").write_bytes(b"\0\0 not an IDX header")
    with pytest.warns(UserWarning, match=r"1 file not named as an image \(notes\) and 3 IDX "
                      r"data files \(renamed, t10k-images-idx3-ubyte, zipped\) not read; give "
                      r"them by name, a dataset's folder of IDX files \(its four: train and "
                      r"t10k images and labels\) to `mnistlab evaluate RUN --dataset FOLDER`"):
        predict(toy_run, folder)
    for name in ("t10k-images-idx3-ubyte", "zipped"):
        (answer,) = predict(toy_run, folder / name)
        assert answer.error.startswith("an IDX data file (MNIST's format), which predict does "
                                       "not read: give a dataset's folder of IDX files")


def test_a_folder_that_cannot_be_listed_is_that_entry_s_error(toy_run, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    paper_digit().save(tmp_path / "good.png")
    listing = Path.iterdir

    def refuse(self):
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refuse)  # root lists any folder: refuse it this way
    predictions = predict(toy_run, [locked, tmp_path / "good.png"])
    assert predictions[0].error == "folder cannot be read (Permission denied)"
    assert predictions[1].error is None and predictions[1].label is not None


def test_bad_options_are_user_errors(toy_run):
    with pytest.raises(MnistlabError, match="--top"):
        predict(toy_run, [paper_digit()], top=0)
    with pytest.raises(MnistlabError, match=r"top \(--top\): must be a whole number of at "
                                            "least 1, got 2.5"):  # torch's TypeError
        predict(toy_run, [paper_digit()], top=2.5)
    assert predict(toy_run, [paper_digit()], top=np.int64(2))[0].top[1]  # numpy's: a number
    with pytest.raises(MnistlabError, match="unknown preprocessing style"):
        predict(toy_run, [paper_digit()], style="fancy")
    with pytest.raises(MnistlabError, match="no such folder"):
        predict(Path("/nonexistent/run"), [paper_digit()])
    # a pair of a model and another dict: a KeyError deep in predict (hunt)
    from mnistlab.runs import load_model

    model, meta = load_model(toy_run)
    with pytest.raises(MnistlabError, match=r"lacks image_shape; give the pair "
                                            r"load_model\(RUN_DIR\) returns"):
        predict((model, {k: v for k, v in meta.items() if k != "image_shape"}), [paper_digit()])
    assert len(predict((model, meta), [paper_digit()])) == 1


def test_a_model_of_other_images_says_what_to_do_instead(tmp_path):
    """A model of 12x16 images: predict named the problem, not what to do instead; then it
    advised `evaluate --dataset DIR` for other IDX files of that shape, which evaluate refuses
    (it scores the data the model was trained on, nothing else) (hunt)."""
    run = make_run(tmp_path / "wide", shape=(1, 12, 16))
    with pytest.raises(MnistlabError, match=r"this one takes 1x12x16: export it \(`mnistlab "
                       r"export`\) and prepare such images yourself; `mnistlab evaluate "
                       r"RUN_DIR` scores the test set of the data it was trained on$"):
        predict(run, [paper_digit()])


# --- reports ---------------------------------------------------------------------------------
def test_json_report(toy_run, tmp_path):
    predictions = predict(toy_run, [paper_digit(), tmp_path / "missing.png"], top=4)
    report = json.loads(format_predictions(predictions, as_json=True))
    assert [set(r) for r in report] == [{"path", "label", "top", "error"}] * 2
    first, second = report
    assert first["error"] is None and len(first["top"]) == 4
    probabilities = [t["probability"] for t in first["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    assert first["label"] == first["top"][0]["label"]
    assert second == {"path": str(tmp_path / "missing.png"), "label": None, "top": [],
                      "error": "no such file"}
    assert exit_code(predictions) == 1 and exit_code(predictions[:1]) == 0


def test_progress_is_told_each_image_read(toy_run, tmp_path, monkeypatch):
    import mnistlab.predict as predict_module

    told = []
    (tmp_path / "empty").mkdir()  # a folder without images: an error line, nothing to read
    images = [paper_digit(), tmp_path / "empty", paper_digit(), tmp_path / "missing.png"]
    reader = predict_module.read_image
    monkeypatch.setattr(predict_module, "read_image",
                        lambda source: told.append("read") or reader(source))
    predict(toy_run, images, progress=lambda done, total: told.append((done, total)))
    assert told == ["read", (1, 3), "read", (2, 3), "read", (3, 3)]  # told once it is read
    # hunt: True (a notebook's first guess) was "'bool' object is not callable" mid-way
    assert [p.top[0][0] for p in predict(toy_run, [paper_digit()], progress=np.True_)] \
        == [p.top[0][0] for p in predict(toy_run, [paper_digit()], progress=False)]
    with pytest.raises(MnistlabError, match=r"^progress: True \(a bar\), False, or a function "):
        predict(toy_run, [paper_digit()], progress="yes")


def test_the_bar_is_drawn_on_a_terminal_and_not_in_a_pipe():
    import io

    from rich.console import Console

    from mnistlab.progress import counted

    for terminal in (True, False):
        out = io.StringIO()
        with counted("predict", Console(file=out, force_terminal=terminal, width=80)) as told:
            for done in range(1, 4):
                told(done, 3)
        assert ("3/3" in out.getvalue()) is terminal and (out.getvalue() == "") is not terminal
    out = io.StringIO()  # hunt: a dumb terminal (TERM=dumb) got a blank line, no bar
    with counted("predict", Console(file=out, force_terminal=True, width=80,
                                    _environ={"TERM": "dumb"})) as told:
        told(1, 1)
    assert out.getvalue() == ""


def test_top_is_capped_at_the_number_of_classes(toy_run):
    [prediction] = predict(toy_run, [paper_digit()], top=50)
    assert len(prediction.top) == 10
    assert prediction.top[0] == (prediction.label, prediction.probability)


def test_sheet_shows_inputs_and_errors(toy_run, tmp_path):
    predictions = predict(toy_run, [paper_digit(), tmp_path / "missing.png", paper_digit()])
    out = show_sheet(predictions, tmp_path / "sheet" / "predictions.png")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 200
    assert [p.name for p in out.parent.iterdir()] == ["predictions.png"]  # no temp files left
    with pytest.raises(MnistlabError):
        show_sheet([], tmp_path / "none.png")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_sheet_title_overlaps_no_other_text(count):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    predictions = [Prediction(path=f"scans/a_rather_long_name_{i}.png", label="7", index=7,
                              top=[("7", 0.91)], image=np.zeros((28, 28), np.uint8),
                              original=np.full((120, 90), 200, np.uint8)) for i in range(count)]
    predictions[-1] = Prediction(path="missing.png", error="no such file")
    figure = sheet_figure(predictions)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    [title] = [t for t in figure.findobj(Text) if t.get_text() == "input | what the model saw"]
    texts = [t for ax in figure.axes for t in (ax.title, *ax.texts) if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert len(boxes) == 2 * count  # a name and a label (or the error) per input
    top = title.get_window_extent(renderer)
    assert not any(top.overlaps(box) for box in boxes)
    assert all(box.y1 < top.y0 for box in boxes)  # the title is above everything else
    assert top.y1 <= figure.bbox.y1 and top.x0 >= 0  # and not cut off


def _seven(frame: str = "") -> Image.Image:
    from PIL import ImageDraw

    image = Image.new("L", (200, 200), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(60, 50), (140, 50), (90, 160)], fill=0, width=3)
    if frame.startswith("edge"):  # a screenshot's dark edge, 1 or 2 pixels
        draw.rectangle([0, 0, 199, 199], outline=0, width=int(frame[-1]))
    elif frame == "box":  # a form's box, set in from the edge
        draw.rectangle([15, 15, 184, 184], outline=0, width=2)
    return image


@pytest.mark.parametrize("frame", ["edge1", "edge2", "box"])
def test_a_frame_around_the_digit_is_left_out(frame):
    """A dark edge or a box around a digit was read as ink and set the digit's box: a 7 in a
    2-pixel frame was read as a 3 (hunt). Lines along three or four sides, near the edges,
    with paper inside them, are a frame; the digit is fitted as if it were not there."""
    plain, framed = preprocess(_seven()), preprocess(_seven(frame))
    assert np.abs(plain.astype(int) - framed.astype(int)).max() <= 8


def _segments(digit: int, width: int = 60, height: int = 100, stroke: int = 6) -> np.ndarray:
    """A seven-segment digit's ink, cropped to 2 pixels of its strokes: boxy, three or four
    of its sides inked whole."""
    lit = {0: "abcdef", 3: "abgcd", 6: "afgedc", 8: "abcdefg", 9: "abcdfg"}[digit]
    ink = np.zeros((height, width), bool)
    half = height // 2
    for segment, (rows, cols) in {
            "a": (slice(0, stroke), slice(None)), "d": (slice(-stroke, None), slice(None)),
            "g": (slice(half - stroke // 2, half + stroke // 2), slice(None)),
            "f": (slice(0, half), slice(0, stroke)), "e": (slice(half, None), slice(0, stroke)),
            "b": (slice(0, half), slice(-stroke, None)),
            "c": (slice(half, None), slice(-stroke, None))}.items():
        if segment in lit:
            ink[rows, cols] = True
    return np.pad(ink, 2)


def test_a_digit_cropped_tight_is_no_frame():
    """A 7 cropped to its strokes inks its top row whole, and a 1 every row: no frame. A
    seven-segment 3, 6, 8 or 9 inks three or four sides whole, and its other strokes meet
    them: no frame (the review: 3 and 8 were read as 4). A frame with nothing inside, or a
    seven-segment 0, is no frame either (they failed with a traceback: review)."""
    from mnistlab.predict import _inside_frame

    seven = np.asarray(_seven().crop((59, 49, 142, 162))) < 128
    one = np.zeros((80, 30), bool)
    one[:, 10:20] = True
    one[-4:, :] = True  # its foot, the whole width
    edge = np.zeros((100, 100), bool)
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
    for mask in (seven, one, ~one, edge, *(_segments(d) for d in (0, 3, 6, 8, 9))):
        assert np.array_equal(_inside_frame(mask), mask)
    # review: an LCD's segments with gaps between them meet at no corner (an 8 was read as
    # its middle bar alone)
    gapped = np.zeros((100, 60), bool)  # an 8: each segment 2 pixels short of the next
    for rows in (slice(0, 4), slice(48, 52), slice(96, 100)):
        gapped[rows, 6:54] = True
    for rows in (slice(6, 46), slice(54, 94)):
        gapped[rows, :4] = gapped[rows, 56:] = True
    gapped = np.pad(gapped, 2)
    assert np.array_equal(_inside_frame(gapped), gapped)
    assert preprocess(Image.fromarray(np.where(edge, 0, 255).astype(np.uint8))).any()


def test_an_error_in_the_sheet_keeps_to_its_cell():
    """Error texts made the layout room for their whole line: eight unreadable files beside
    eight images drew the images as dots, and the texts ran into each other (hunt)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    good = Prediction(path="good.png", label="7", index=7, top=[("7", 0.91)],
                      image=np.zeros((28, 28), np.uint8), original=np.full((120, 90), 200,
                                                                           np.uint8))
    bad = Prediction(path="bad.png", error="not an image that can be read (BMP, GIF, ICO, "
                                           "JPEG, PNG, PPM, TGA, TIFF, WEBP)")

    def cells(predictions):
        figure = sheet_figure(predictions)
        FigureCanvasAgg(figure).draw()
        return figure, [ax.get_window_extent() for ax in figure.axes]

    _, alone = cells([good] * 4)
    figure, mixed = cells([good, bad] * 4)
    assert min(box.width for box in mixed) >= 0.9 * min(box.width for box in alone)
    renderer = figure.canvas.get_renderer()
    errors = [t.get_window_extent(renderer) for ax in figure.axes for t in ax.texts]
    assert len(errors) == 4 and not any(one.overlaps(other) for i, one in enumerate(errors)
                                        for other in errors[i + 1:])


def test_prediction_defaults():
    failed = Prediction(path="x.png", error="no such file")
    assert failed.probability is None and failed.top == [] and failed.image is None


# --- checkpoint safety -----------------------------------------------------------------------
class _Exploit:
    """Unpickling this runs a shell command: what a malicious model.pt would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes our protocol 4
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_model_file_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    payload = {"format": "mnistlab-model-1", "config": _Exploit(marker)}
    if writer == "torch.save":
        torch.save(payload, run / "model.pt")
    else:
        (run / "model.pt").write_bytes(pickle.dumps(payload))
    if writer == "pickle":  # the file really is an exploit: a plain unpickle runs it
        pickle.loads((run / "model.pt").read_bytes())
        assert marker.exists()
        marker.unlink()

    with pytest.raises(MnistlabError, match="refused to load") as caught:
        load_model(run)
    assert "\n" not in str(caught.value)
    with pytest.raises(MnistlabError, match="refused to load"):
        predict(run, [paper_digit()])
    assert not marker.exists()


@pytest.mark.parametrize("run_settings", [dict(tta=True, augment="shift=0.1"),
                                          dict(tta=True, ensemble=3, augment="shift=0.1")])
def test_a_run_scored_with_tta_predicts_with_the_same_views(tmp_path, run_settings):
    """A recipe's scores average the softmax over shifted views (9 for mnist-best): predict
    does the same by default, so its answers are the model the summary describes; --no-tta
    (tta=False) asks for the image alone."""
    from mnistlab import TrainConfig
    from mnistlab.data.tensors import to_input
    from mnistlab.training.evaluation import config_views

    run = make_run(tmp_path / "run", model="cnn", filters=(4, 8), dense=(16,), **run_settings)
    model, payload = load_model(run)
    config = TrainConfig.from_dict(payload["config"])
    images = [paper_digit(), paper_digit(60, 60)]
    seen = torch.from_numpy(np.stack([p.image for p in predict(run, images)])).unsqueeze(1)
    views = config_views(seen, config)
    assert len(views) == 9  # the image, 1- and 2-pixel moves: shift 0.1 of 28 reaches 2
    with torch.no_grad():
        expected = sum(model(to_input(v, config, payload["mean"], payload["std"])).softmax(1)
                       for v in views) / len(views)
        alone = model(to_input(seen, config, payload["mean"], payload["std"])).softmax(1)
    assert (expected - alone).abs().max() > 1e-4  # the views change the answer
    for tta, wanted in ((None, expected), (True, expected), (False, alone)):
        got = predict(run, images, top=10, tta=tta)
        for row, prediction in zip(wanted, got):
            top = dict(prediction.top)
            assert all(abs(top[str(k)] - float(row[k])) < 1e-5 for k in range(10)), tta


def test_the_sheet_must_be_named_as_the_png_it_is(toy_run, tmp_path, capsys):
    from mnistlab.cli import main

    image = tmp_path / "d.png"
    paper_digit().save(image)
    assert main(["predict", str(toy_run), str(image), "--show", str(tmp_path / "s.txt")]) == 2
    assert "what is written is PNG; give a name ending in .png" in capsys.readouterr().err
    assert not (tmp_path / "s.txt").exists()


def test_an_existing_file_is_not_drawn_over_by_the_sheet(toy_run, tmp_path, capsys):
    from mnistlab.cli import main

    image = tmp_path / "d.png"
    paper_digit().save(image)
    before = image.read_bytes()
    assert main(["predict", str(toy_run), str(image), "--show", str(image)]) == 2
    assert "exists and would be replaced" in capsys.readouterr().err
    assert image.read_bytes() == before  # the input itself was offered as the sheet
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"old")
    assert main(["predict", str(toy_run), str(image), "--show", str(sheet), "--overwrite"]) == 0
    assert sheet.read_bytes() != b"old"


def test_a_ctrl_c_prints_what_was_scored_and_exits_130(toy_run, tmp_path, capsys, monkeypatch):
    from mnistlab import interrupt
    from mnistlab import predict as predict_module
    from mnistlab.cli import main

    for i in range(5):
        paper_digit().save(tmp_path / f"d{i}.png")
    read, calls = predict_module.read_image, []

    def read_then_stop(source):
        calls.append(source)
        if len(calls) == 3:
            interrupt.request()  # as a Ctrl-C reading the third image would
        return read(source)

    monkeypatch.setattr(predict_module, "CHUNK", 2)
    monkeypatch.setattr(predict_module, "read_image", read_then_stop)
    try:
        assert main(["predict", str(toy_run), str(tmp_path)]) == 130
    finally:
        interrupt.flag().clear()
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 5 and "interrupted" in err
    assert all("error" not in line for line in lines[:3])  # the chunk it was in is scored too
    assert all("not predicted: interrupted" in line for line in lines[3:])


def test_a_diverged_model_is_one_line_not_nan_probabilities(toy_run, tmp_path):
    model, payload = load_model(toy_run)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    image = tmp_path / "d.png"
    paper_digit().save(image)
    with pytest.raises(MnistlabError, match="not numbers \\(NaN\\): the run diverged"):
        predict((model, payload), [image])


def test_an_image_piped_in_is_read_from_standard_input(toy_run, tmp_path):
    image = tmp_path / "d.png"
    paper_digit().save(image)

    def cli(*images, stdin):
        return subprocess.run([sys.executable, "-m", "mnistlab", "predict", str(toy_run),
                               *images, "--json"], stdin=stdin, capture_output=True,
                              timeout=120)

    piped = cli("-", str(image), stdin=image.open("rb"))
    assert piped.returncode == 0, piped.stderr
    from_stdin, from_file = json.loads(piped.stdout)
    assert from_stdin["path"] == "-"
    assert from_stdin["top"] == from_file["top"]  # the same bytes, the same answer
    empty = cli("-", stdin=subprocess.DEVNULL)
    assert empty.returncode == 1 and b"empty input (0 bytes)" in empty.stdout
    twice = cli("-", "-", stdin=subprocess.DEVNULL)
    assert twice.returncode == 2 and b"can be given once" in twice.stderr
    if sys.platform == "linux":  # hunt: the second read said "a pipe with nothing in it"
        def piping(*images):
            return subprocess.run([sys.executable, "-m", "mnistlab", "predict", str(toy_run),
                                   *images], input=image.read_bytes(), capture_output=True,
                                  timeout=120)

        named = piping("-", "/dev/stdin")
        assert named.returncode == 2 and b"one pipe given twice" in named.stderr
        alone = piping("/dev/stdin", str(image))
        assert alone.returncode == 0, alone.stderr
    leader, follower = os.openpty()  # a terminal: nothing is piped in, so nothing is waited for
    try:
        typed = cli("-", stdin=follower)
    finally:
        os.close(leader), os.close(follower)
    assert typed.returncode == 2 and b"nothing is piped in" in typed.stderr
    assert b"Traceback" not in typed.stderr + twice.stderr + empty.stderr


def test_what_pillow_warns_about_a_file_names_that_file(tmp_path):
    """A damaged TIFF tag: Pillow's own two-line warning with its source line, now mnistlab's
    one `warning:` line naming the image."""
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[270] = "a description"
    path = tmp_path / "scan.tif"
    paper_digit().save(path, tiffinfo=info)
    data = bytearray(path.read_bytes())
    offset = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[offset:offset + 2])[0]):
        entry = offset + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 270:
            data[entry + 4:entry + 8] = struct.pack("<I", 10**6)  # more data than the file
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=f"^{path}: Tag data larger than file") as said:
        read_image(path)
    assert all(w.filename.endswith("predict.py") for w in said)  # ours: shown in one line


def test_a_png_with_a_large_text_chunk_is_read_for_its_picture(tmp_path):
    """Hunt: a compressed note unpacking past Pillow's 1 MB limit (a generator's settings, say)
    was "damaged or unreadable image"; the picture is read, and a damaged one is still told."""
    from PIL import PngImagePlugin

    digit = paper_digit()
    notes = PngImagePlugin.PngInfo()
    notes.add_text("workflow", "x" * (4 * 2**20), zip=True)
    path = tmp_path / "noted.png"
    digit.save(path, pnginfo=notes)
    plain = tmp_path / "plain.png"
    digit.save(plain)
    assert np.array_equal(read_image(path), read_image(plain))
    assert np.array_equal(read_image(EncodedImage("-", path.read_bytes())), read_image(plain))
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:-200])  # its pixels cut short too
    with pytest.raises(ImageProblem, match="damaged or unreadable"):
        read_image(cut)


def test_a_picture_too_small_to_hold_a_digit_is_refused_and_8x8_is_read(tmp_path):
    """Hunt: a 3 x 3 picture was stretched into a blot and given a digit; scikit-learn's
    8 x 8 digits are still read."""
    speck = np.full((3, 3), 255, np.uint8)
    speck[1, 1] = 0
    with pytest.raises(ImageProblem, match=r"too small to hold a digit \(3x3 pixels; at least 5"):
        preprocess(speck)
    eight = np.zeros((8, 8), np.uint8)
    eight[1:7, 3:5] = 255  # a 1
    assert preprocess(eight).shape == (28, 28)
    one = np.zeros((40, 4), np.uint8)  # review: a 1 cropped tight was refused
    one[2:38, 1:3] = 255
    assert preprocess(one).shape == (28, 28)


def test_a_dollar_in_a_name_is_drawn_as_text_not_math(toy_run, tmp_path):
    """An unbalanced '$' made matplotlib's math parser raise after the predictions printed."""
    path = tmp_path / "$^$.png"
    Image.fromarray(np.asarray(paper_digit())).save(path)
    figure = sheet_figure(predict(toy_run, [path]))
    figure.savefig(tmp_path / "sheet.png")
    from mnistlab import figures

    figures.confusion(np.eye(2, dtype=int), ["$^$", "a$b$c"]).savefig(tmp_path / "c.png")


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux's")
def test_a_file_name_that_is_not_utf8_is_drawn_and_printed_as_escapes(toy_run, tmp_path, capsys):
    """`predict --show` raised after the predictions printed (the sheet's title), and `--json`
    wrote the name's raw bytes: neither UTF-8 nor JSON."""
    from mnistlab.cli import main

    folder = os.fsencode(tmp_path)
    image = os.fsdecode(folder + b"/d\xff\xfe.png")
    paper_digit().save(image)
    sheet = tmp_path / "sheet.png"
    assert main(["predict", str(toy_run), image, "--show", str(sheet), "--json"]) == 0
    out = capsys.readouterr().out
    out.encode("utf-8")  # strict: no lone surrogate left
    assert "d\\udcff\\udcfe.png" in out and json.loads(out)[0]["path"] == image
    assert sheet.stat().st_size > 1000


def test_a_file_where_the_run_folder_goes_is_named_as_such(tmp_path, tiny_idx_dir, capsys):
    """An image and the run swapped, or a run's own file named: "damaged or cut short ...
    train it again with --overwrite", a fix that costs a retrain of a run that is fine."""
    from mnistlab.cli import main

    toy_run = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--hidden", "8",
                 "--epochs", "1", "--val-size", "100", "--quiet", "--out", str(toy_run)]) == 0
    image = tmp_path / "d 1.png"
    paper_digit().save(image)
    assert main(["predict", str(image), str(toy_run), "x.png"]) == 2
    err = capsys.readouterr().err
    assert f"an image where the run folder goes; the run comes first: mnistlab predict " \
        f"{toy_run} '{image}' x.png" in err
    for argv in (["evaluate", str(toy_run / "summary.json")],
                 ["predict", str(toy_run / "config.toml"), str(image)],
                 ["doctor", str(toy_run / "summary.json")]):
        assert main(argv) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.endswith(f"folder; give its folder, {toy_run}"), line
        assert ": a file, not a " in line
    assert main(["evaluate", str(image)]) == 2
    assert "a file, not a run folder; give the folder `mnistlab train --out DIR` made" in \
        capsys.readouterr().err
    shutil.copy(toy_run / "model.pt", tmp_path / "best.weights")  # a model by another name
    assert main(["predict", str(tmp_path / "best.weights"), str(image), "--json"]) == 0


def test_standard_input_is_read_only_as_far_as_an_image_can_go(toy_run, monkeypatch, capsys):
    """`cat /dev/zero | mnistlab predict RUN -` read without end (1.5 GB piped: 1.8 GB held)."""
    import io

    from mnistlab.cli import main

    monkeypatch.setattr(sys.modules["mnistlab.predict"], "MAX_PIPED_BYTES", 1000)
    piped = io.BytesIO(b"\0" * 5000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(piped))
    assert main(["predict", str(toy_run), "-"]) == 2
    assert "IMAGE '-': more than 0 MiB on standard input" in capsys.readouterr().err
    assert piped.tell() == 1001  # read no further than the limit


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_a_pipe_given_by_name_is_read_as_standard_input_is(toy_run, tmp_path):
    """`predict RUN <(curl ...)` and `... | predict RUN /dev/stdin` were "not a file" (hunt):
    a pipe is read, as far as an image can go; an empty one is said."""
    import threading

    encoded = io.BytesIO()
    paper_digit().save(encoded, format="PNG")
    pipes = []
    for name, data in (("image", encoded.getvalue()), ("empty", b"")):
        pipe = tmp_path / name
        os.mkfifo(pipe)

        def write(pipe=pipe, data=data):
            with open(pipe, "wb") as end:
                end.write(data)

        threading.Thread(target=write, daemon=True).start()
        pipes.append(pipe)
    first, second = predict(toy_run, pipes)
    assert first.error is None and first.label is not None
    assert second.error == "a pipe with nothing in it"


def test_mnistlab_predict_is_the_function_after_its_module_was_imported(tmp_path):
    """`from mnistlab.predict import preprocess` (docs/export.md) made `mnistlab.predict` the
    module: `mnistlab.predict(run, images)` raised "'module' object is not callable". In a
    fresh interpreter, as a notebook would meet it."""
    from drawn import make_run
    from PIL import Image

    run = make_run(tmp_path / "run")
    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    code = ("import mnistlab\nfrom mnistlab.predict import preprocess\n"
            f"[p] = mnistlab.predict({str(run)!r}, [{str(tmp_path / 'blank.png')!r}])\n"
            "print(type(p).__name__)")
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Prediction"


def test_predict_takes_train_s_result_and_batches_of_torch_or_numpy_images(tmp_path,
                                                                         shared_datasets):
    """A torch image was read as 28 images of one row, a numpy batch as one bad image, and
    the RunResult train() returns was "cannot unpack non-iterable RunResult object"."""
    from mnistlab import RunResult, RunSummary, TrainConfig

    run = make_run(tmp_path / "run")
    images = load_dataset("mnist", data_dir=shared_datasets).test_images[:3]
    one = predict(run, images[0])
    assert len(one) == 1 and one[0].error is None
    by_torch, by_numpy = predict(run, images), predict(run, images.numpy())
    assert [p.top for p in by_torch] == [p.top for p in by_numpy]
    assert len(by_torch) == 3 and all(p.error is None for p in by_torch)
    assert len(predict(run, images[:, None])) == 3  # (N, 1, H, W)
    assert predict(run, [images[0], images[1].numpy()])[0].top == by_torch[0].top
    assert len(predict(run, images.numpy()[0][:, :, None])) == 1  # (H, W, 1): one image
    colour = np.repeat(images.numpy()[:2, :, :, None], 3, axis=3)  # (N, H, W, 3)
    assert [p.top for p in predict(run, colour)] == [p.top for p in by_torch[:2]]
    chw = torch.from_numpy(colour).permute(0, 3, 1, 2)  # (N, 3, H, W), as torch holds them
    assert [p.top for p in predict(run, chw)] == [p.top for p in by_torch[:2]]
    alpha = np.stack([images.numpy()[0], np.full((28, 28), 255, np.uint8)], axis=2)
    assert len(predict(run, alpha)) == 1  # (H, W, 2): gray and alpha, one image (review)
    half = predict(run, images.to(torch.bfloat16) / 255)  # numpy has no bf16
    assert len(half) == 3 and all(p.error is None for p in half)
    assert predict(list(load_model(run)), images)[0].top == by_torch[0].top  # a list pair
    result = RunResult(TrainConfig(), RunSummary(status="completed"), [], out=run)
    assert [p.top for p in predict(result, images)] == [p.top for p in by_torch]
    for wrong, message in ((3, "run: give a run folder, a RunResult"),
                           (("x",), "run: give a run folder"),
                           (RunResult(TrainConfig(), RunSummary(status="completed"), []),
                            r"trained without a folder \(out=None\)")):
        with pytest.raises(MnistlabError, match=message):
            predict(wrong, images)
    with pytest.raises(MnistlabError, match="images: give image files"):
        predict(run, None)
    with pytest.raises(MnistlabError, match="tta: must be True or False, got 'false'"):
        predict(run, images, tta="false")


def test_mnists_own_bold_digits_are_not_redrawn(shared_datasets, monkeypatch):
    """A stroke bolder than MNIST's 90th percentile was thinned to its skeleton and drawn
    again: a bold 9 whose loop had filled in lost it, and MNIST's own test digits saved as PNG
    came out wrong twice as often as resized plainly (hunt). Strokes up to its 99th are left
    as drawn; bolder ones (a marker) are still redrawn."""
    import gzip

    from mnistlab import predict as module

    raw = gzip.decompress((shared_datasets / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    digits = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28)
    thinned = []
    real = module._thin
    monkeypatch.setattr(module, "_thin", lambda mask: thinned.append(1) or real(mask))
    for index in (209, 450, 559):  # bold, their loops filled: a 9, a 3, a 6
        module.preprocess(digits[index])
    assert thinned == []
    marker = np.full((400, 300), 255, np.uint8)
    marker[60:340, 90:210] = 0  # a stroke 120 pixels wide on a digit 280 tall: a marker
    module.preprocess(marker)
    assert thinned == [1]
