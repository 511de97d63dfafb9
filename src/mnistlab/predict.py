"""Use a trained model on your own images: read them safely, make them look like the training
data, predict, and show what the model saw.

MNIST digits were made from dark ink on white paper: inverted, fitted into a 20x20 box (aspect
kept, anti-aliased) and placed in a 28x28 field with their centre of mass in the middle. A photo
or a drawing has to go through the same steps or the model sees something it never learned;
`preprocess(style="strokes")` does them. Fashion-MNIST products were instead trimmed, fitted whole
into 28x28 and put on a black background: `style="objects"`. `style="plain"` only resizes, for
images that already look like the training data (and to show why the other two exist).

    predictions = predict("runs/lenet", ["photo.jpg", "scans/"], top=3)
    print(format_predictions(predictions, as_json=False))
    show_sheet(predictions, "sheet.png")

A bad file (unreadable, not an image, blank, huge, animated, floating-point) gets a one-line
`error` on its own `Prediction`; every other image is still predicted. 16-bit grayscale (scans)
is read as 0..255 like the rest.
"""

from __future__ import annotations

import io
import numbers
import os
import re
import stat
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import files, interrupt
from .config import TrainConfig, truth
from .data.idx import looks_like_idx
from .data.sources import image_style, takes_pictures
from .device import public_call
from .errors import MnistlabError, first_few

if TYPE_CHECKING:
    from .records import RunResult

STYLES = ("strokes", "objects", "plain")
MAX_PIXELS = 50_000_000  # refused from the header, before any pixel is decoded
MIN_SIDE = 5  # fewer pixels a side than a 5 x 7 display's digit: no digit to read
WORK_SIDE = 1024  # larger images are shrunk to this first: a 20-pixel box needs no more detail
THUMB_SIDE = 160  # the input as kept for the sheet
# Only plain raster formats: Pillow's EPS/PDF-like plugins hand the file to other programs
# (Ghostscript), which a prediction on an untrusted file should never do.
ARRAY_SUFFIXES = (".npy", ".npz")  # NumPy's files: read by the Python API's caller
ARRAYS_FIX = "arrays through Python (mnistlab.predict(run, numpy.load(path)))"
ARRAYS_THROUGH_PYTHON = (f"a NumPy array file, which predict does not read: give {ARRAYS_FIX} "
                         "(an .npz's array by its key: numpy.load(path)[key]), or save PNGs")
IDX_FIX = ("a dataset's folder of IDX files (its four: train and t10k images and labels) to "
           "`mnistlab evaluate RUN --dataset FOLDER`, or its images through Python "
           "(mnistlab.predict(run, mnistlab.load_dataset(FOLDER).test_images))")
FORMATS = ("BMP", "GIF", "ICO", "JPEG", "PNG", "PPM", "TGA", "TIFF", "WEBP",
           # where this Pillow reads it: a folder's .avif was passed over as "not named as an
           # image ... give them by name", and given by name refused (hunt)
           *(("AVIF",) if "AVIF" in Image.registered_extensions().values() else ()))
IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items()
                           if fmt in FORMATS)
MIN_CONTRAST = 32.0  # ink must differ from the paper by this many grey levels (of 255)
SPECK = 6  # ink no wider or taller than this (in a large picture) is dust, not a digit
FLATTENED_UP_TO = 28  # no larger than MNIST's on the shorter side: left as it is
# Stroke widths of MNIST digits, in pixels of the 28x28 image (binarised at half intensity,
# measured as area / half boundary on 300 test digits): median; strokes are redrawn at it
# outside the 10th to 99th percentile. The 90th redrew a tenth of MNIST's own bold digits,
# whose filled loops the skeleton lost (1957 of 2000 test digits against 1965: hunt).
MNIST_STROKE = 2.5
MNIST_STROKE_RANGE = (1.8, 4.8)
FINE = 4  # strokes are measured and redrawn at this many times the final resolution
CHUNK = 256  # images read and scored at a time: a Ctrl-C keeps the chunks scored before it
NOT_PREDICTED = "not predicted: interrupted (Ctrl-C); run the same command again"
SHEET_MAX = 100  # inputs drawn on a --show sheet at most (a page, not a poster)



@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes, with the name it is shown under (`mnistlab predict RUN -` reads
    one from standard input)."""

    name: str
    data: bytes = field(repr=False)


ImageLike = str | Path | Image.Image | np.ndarray | EncodedImage


@dataclass
class Prediction:
    """One input and what the model made of it (or why it could not)."""

    path: str  # the file, or "<image N>" for an in-memory image
    label: str | None = None  # the predicted class name
    index: int | None = None  # the predicted class index
    top: list[tuple[str, float]] = field(default_factory=list)  # best classes, probability
    image: np.ndarray | None = field(default=None, repr=False)  # uint8 28x28: what the model saw
    error: str | None = None  # one line, when this input could not be predicted
    original: np.ndarray | None = field(default=None, repr=False)  # small uint8 copy of the input

    @property
    def probability(self) -> float | None:
        return self.top[0][1] if self.top else None


class ImageProblem(MnistlabError):
    """This one input cannot be predicted; the others still can."""


# --- reading ---------------------------------------------------------------------------------
def read_image(source: ImageLike) -> np.ndarray:
    """A file path, an encoded file's bytes, PIL image or array -> float32 grayscale (H, W) in
    0..255.

    Raises `ImageProblem` with a one-line reason for anything that is not one plain 8-bit image.
    """
    if isinstance(source, Image.Image):
        return _gray(_checked(source))
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    if isinstance(source, EncodedImage):
        if not source.data:
            raise ImageProblem("empty input (0 bytes)")
        return _decode(io.BytesIO(source.data), source.name)
    return _from_array(np.asarray(source))


# 50 megapixels (MAX_PIXELS) of uncompressed 16-bit RGBA, and a header, fit under this: what
# is read of a pipe (`-`, /dev/stdin, <(...)) at most (`cat /dev/zero |` filled memory)
MAX_PIPED_BYTES = 512 * 2**20


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise ImageProblem("a link that leads nowhere (its target is gone, or links loop)"
                           if path.is_symlink() else "no such file")
    if not path.is_file():
        if stat.S_ISFIFO(path.stat().st_mode):  # /dev/stdin, <(curl ...): "not a file" (hunt)
            return _decode(io.BytesIO(_read_pipe(path)), str(path))
        raise ImageProblem("not a file")
    if path.stat().st_size == 0:
        raise ImageProblem("empty file (0 bytes)")
    if path.suffix.lower() in ARRAY_SUFFIXES:
        raise ImageProblem(ARRAYS_THROUGH_PYTHON)
    if path.suffix.lower() not in IMAGE_SUFFIXES and looks_like_idx(path):
        raise ImageProblem(f"an IDX data file (MNIST's format), which predict does not read: "
                           f"give {IDX_FIX}")
    return _decode(path, str(path))


def read_piped(stream: Any, through: str) -> bytes:
    """What a pipe holds (`-`'s standard input, a named pipe), as far as an image can go."""
    data = stream.read(MAX_PIPED_BYTES + 1)
    if len(data) > MAX_PIPED_BYTES:
        raise ImageProblem(f"more than {MAX_PIPED_BYTES // 2**20} MiB {through}, more than any "
                           "image mnistlab reads (50 megapixels); pipe one image file")
    return data


def _read_pipe(path: Path) -> bytes:
    with path.open("rb") as pipe:
        data = read_piped(pipe, "through a pipe")
    if not data:
        raise ImageProblem("a pipe with nothing in it")
    return data


def _decode(file: Path | io.BytesIO, name: str) -> np.ndarray:
    """An image file's pixels as grayscale, every way a file can be bad as an ImageProblem;
    what Pillow warns about while reading it (a damaged TIFF tag) is one line naming it."""
    said: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            return _decode_quietly(file)
    finally:  # outside the recording: said again, in mnistlab's one-line form
        for warning in said:
            warnings.warn(f"{printable(name)}: {warning.message}", stacklevel=4)


class _FromMemory(Exception):
    """A file Pillow decodes right only from its bytes in memory (_checked)."""


def _decode_quietly(file: Path | io.BytesIO) -> np.ndarray:
    try:
        return _decoded(file)
    except _FromMemory:
        return _decoded(io.BytesIO(Path(file).read_bytes()))


def _decoded(file: Path | io.BytesIO) -> np.ndarray:
    try:
        # Pillow's own bomb check would warn at 89 MP and refuse at 179 MP; ours is stricter and
        # comes first, but its warning must not slip through as a mere warning either.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=FORMATS) as im:
                picture = _checked(im, reduce=True)  # decoded: what fails here is damaged
                try:
                    return _gray(picture)
                except ValueError as exc:  # a mode Pillow reads but cannot convert (CIELab)
                    raise ImageProblem(f"cannot be turned into grayscale ({_first_line(exc)}); "
                                       "save it as an 8-bit grayscale or RGB PNG") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses before mnistlab sees the size; its message holds the pixel count
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found[1]) / 1e6:.0f} megapixels" if found else "over that"
        raise ImageProblem(f"image too large ({size}, limit {MAX_PIXELS // 1_000_000} "
                           "megapixels); shrink it first") from None
    except UnidentifiedImageError:
        raise ImageProblem(f"not an image that can be read ({', '.join(FORMATS)})") from None
    except OSError as exc:  # truncated or corrupt pixel data, unreadable file
        raise ImageProblem(f"damaged or unreadable image ({_first_line(exc)})") from None
    except (ImageProblem, _FromMemory):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail anywhere in a decoder
        plain = _without_text(file) if "MAX_TEXT" in str(exc) else None
        if plain is not None:  # a text chunk over Pillow's bomb limit: not the picture (hunt)
            return _decode_quietly(io.BytesIO(plain))
        raise ImageProblem(f"damaged or unreadable image ({type(exc).__name__}: "
                           f"{_first_line(exc)})") from None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _without_text(file: Path | io.BytesIO) -> bytes | None:
    """A PNG's bytes without its text chunks (notes, a generator's settings: nothing predict
    reads, and Pillow refuses one that unpacks past 1 MB as a bomb); None where it holds none."""
    data = file.read_bytes() if isinstance(file, Path) else file.getvalue()
    if not data.startswith(PNG_SIGNATURE):
        return None
    kept, at = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while at + 12 <= len(data):  # length, kind, data, CRC
        end = at + 12 + int.from_bytes(data[at:at + 4], "big")
        if data[at + 4:at + 8] not in PNG_TEXT_CHUNKS:
            kept.append(data[at:end])
        at = end
    plain = b"".join(kept) + data[at:]
    return plain if len(plain) < len(data) else None


def _checked(im: Image.Image, *, reduce: bool = False) -> Image.Image:
    """Refuse what cannot be one 8-bit picture, before decoding pixels where possible.
    `reduce`: the image is ours (opened from a file), so a large JPEG may be decoded smaller."""
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise ImageProblem(f"image too large ({width}x{height} = {width * height / 1e6:.0f} "
                           f"megapixels, limit {MAX_PIXELS // 1_000_000} megapixels); shrink it "
                           "first")
    if width == 0 or height == 0:
        raise ImageProblem(f"empty image ({width}x{height} pixels)")
    if max(width, height) < MIN_SIDE:  # a 3 x 3 picture was stretched into a blot (hunt);
        # a 1 cropped tight is 4 pixels wide and 40 tall, and is read (review)
        raise ImageProblem(f"too small to hold a digit ({width}x{height} pixels; at least "
                           f"{MIN_SIDE} on its longer side, as scikit-learn's 8x8 digits; "
                           "MNIST's are 28x28)")
    frames = getattr(im, "n_frames", 1)
    # A camera JPEG can carry a second picture (MPO); its first frame is the photo itself.
    if frames > 1 and im.format != "MPO":
        raise ImageProblem(f"animated or multi-page image ({frames} frames); save the one frame "
                           "you mean as PNG")
    if im.mode == "F":  # floats in a file: no range to read them in (0..1? 0..255? ...)
        raise ImageProblem("32-bit floating-point image (mode F); save it as an 8- or 16-bit "
                           "PNG")
    if (im.format == "TIFF" and getattr(im, "filename", "")
            and getattr(im, "tag_v2", {}).get(259, 1) == 1  # uncompressed (the default)
            and im.getexif().get(0x0112) in (5, 6, 7, 8)):  # Pillow 13 decodes such a file
        # opened by its path as sheared copies of the picture, read as a confident wrong
        # digit (hunt); from its bytes in memory it decodes right (review)
        raise _FromMemory
    if reduce and im.format == "JPEG" and max(im.size) > 2 * WORK_SIDE:
        im.draft(im.mode, (WORK_SIDE, WORK_SIDE))  # decode at reduced size: fast and enough
    im.load()
    return ImageOps.exif_transpose(im) or im


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageProblem(f"array of shape {array.shape} is not an image; expected (H, W), "
                           "(H, W, 3) or (H, W, 4)")
    if array.size == 0:
        raise ImageProblem(f"empty image (shape {array.shape})")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageProblem("array holds NaN or infinite values")
        scale = 255.0 if array.max() <= 1.0 else 1.0  # floats in [0, 1] are the usual form
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        if array.dtype.kind in "iu" and array.min() >= 0 and array.max() <= 255:
            array = array.astype(np.uint8)
        elif array.dtype == np.uint16 and array.ndim == 2:
            pass  # 16-bit grayscale, read as a 16-bit file is
        else:
            raise ImageProblem(f"{array.dtype} array with values outside 0..255; give uint8 "
                               "pixels or floats in [0, 1]")
    return _gray(_checked(Image.fromarray(array)))


def _gray(im: Image.Image) -> np.ndarray:
    if im.mode == "I" or im.mode.startswith("I;16"):
        return _deep_gray(im)
    if im.mode in ("L", "RGB") and "transparency" in im.info and _key_hides_paper(im):
        im = im.convert("RGBA")  # a colour key (what PNG optimisers write for all-or-nothing
        # alpha) hiding a paper of the ink's colour: it read as "blank image" (hunt)
    if im.mode in ("P", "PA", "1"):  # palettes and bilevel images cannot be resized smoothly
        im = im.convert("RGBA" if im.mode != "1" else "L")
    if max(im.size) > WORK_SIDE:
        im = im.copy()
        im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    if im.mode in ("RGBA", "LA"):
        return _flatten_alpha(im)
    return np.asarray(im.convert("L"), dtype=np.float32)


def _key_hides_paper(im: Image.Image) -> bool:
    """Whether `im`'s colour key makes its paper transparent where the ink is near the key's
    colour (black strokes on transparent black): only there is the key needed, and applied
    elsewhere it took a soft digit's halo for its paper (review)."""
    gray = np.asarray(im.convert("L"), dtype=np.float32)
    key = im.info["transparency"]
    shade = float(Image.new(im.mode, (1, 1), key).convert("L").getpixel((0, 0)))
    seen = gray[np.abs(gray - shade) > 0.5]
    return seen.size > 0 and abs(float(np.median(seen)) - shade) < MIN_CONTRAST


def depth_scale(top: float) -> float:
    """The factor that brings pixels of more than 8 bits to 0..255, from the brightest value
    `top` (0..65535) of one image: the fewest bits, 8 to 16, that hold it set the depth, so a
    12-bit sensor's 4095 and a 16-bit 65535 are both white."""
    bits = max(8, int(top).bit_length())
    return 255 / (2**bits - 1)


def _deep_gray(im: Image.Image) -> np.ndarray:
    """A 16-bit grayscale image (scanners and microscopes save them), 0..255 like the rest.
    Its depth is read from its values (`depth_scale`: a 12-bit sensor's 0..4095 fills
    16-bit files; over 65535 it was a faint picture, called blank). Pillow
    opens some 16-bit files as 32-bit integers (mode I), read the same way when they fit
    0..65535."""
    values = np.asarray(im, dtype=np.float32)
    top = float(values.max())
    if values.min() < 0 or top > 65535:
        raise ImageProblem(f"32-bit image (mode {im.mode}) with values outside 0..65535; save "
                           "it as an 8- or 16-bit PNG")
    if top > 255:
        values = values * depth_scale(top)  # 65535 or 4095 -> 255
    if max(values.shape) > WORK_SIDE:
        deep = Image.fromarray(values, mode="F")
        deep.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
        values = np.clip(np.asarray(deep, dtype=np.float32), 0, 255)  # as in 8 bits: no ringing
    return values


def _flatten_alpha(im: Image.Image) -> np.ndarray:
    """Drawing apps export strokes on a transparent canvas; put it on a background the strokes
    stand out from (white under dark strokes, black under light ones)."""
    rgba = im.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
    gray = np.asarray(rgba.convert("L"), dtype=np.float32)
    if alpha.min() > 0.99:
        return gray
    ink = float((gray * alpha).sum() / max(float(alpha.sum()), 1e-6))
    background = 255.0 if ink < 128 else 0.0
    return gray * alpha + background * (1 - alpha)


# --- making an image look like the training data ---------------------------------------------
def preprocess(image: ImageLike, *, style: str = "strokes", size: int = 28) -> np.ndarray:
    """Any image -> uint8 (size, size), bright content on black, as in the training data.

    "strokes" (MNIST): invert a light background, remove paper texture, crop to the ink, fit it
    into a 20x20 box (for size 28) keeping its aspect, centre its centre of mass.
    "objects" (Fashion-MNIST): invert a light background, background to black, crop to the
    object, fit it whole into size x size, centred. "plain": grayscale and resize, nothing else.
    """
    if style not in STYLES:
        raise MnistlabError(f"unknown preprocessing style {style!r}; use one of "
                            f"{', '.join(STYLES)}")
    return _prepare(read_image(image), style, size)


def _prepare(gray: np.ndarray, style: str, size: int) -> np.ndarray:
    if style == "plain":
        return _to_uint8(_resize(gray / 255, size, size))
    content, background, noise = _foreground(gray)
    if style == "objects":
        return _fit_object(content, background, noise, size)
    return _fit_strokes(content, background, noise, size)


def _foreground(gray: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Turn the image so the content is brighter than the background; the background's level
    and noise come from the border, which is paper in any sensible picture. A photo's light
    falling off across the page is taken out first (_flattened)."""
    gray = _flattened(gray)
    border = _border(gray)
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))  # robust sd of the paper
    tolerance = max(4 * noise, 16.0)
    darker = np.clip(background - tolerance - gray, 0, None).sum()
    lighter = np.clip(gray - background - tolerance, 0, None).sum()
    if darker > lighter:  # dark ink on light paper: the usual photo or scan
        return 255 - gray, 255 - background, noise
    return gray, background, noise


def _flattened(gray: np.ndarray) -> np.ndarray:
    """A picture larger than MNIST's 28 pixels with the plane that best fits its border taken
    out: light falling off across a page was counted as the paper's grain, and 30 grey
    levels of it made a pen's clear 7 a "blank image" (hunt). The fit starts from the
    border's median and is trimmed twice, leaving out border pixels far off it (ink touching
    the edge, a strip of desk along one side: a first plain fit tilted with it; review), and
    is kept only where it leaves the border evener than it was. A digit as a dataset holds
    it is left as it is."""
    h, w = gray.shape
    if min(h, w) <= FLATTENED_UP_TO:
        return gray
    band = max(1, min(h, w) // 20)
    edge = np.zeros((h, w), dtype=bool)
    edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
    ys, xs = np.nonzero(edge)
    values = gray[edge].astype(np.float64)
    design = np.stack([np.ones_like(values), ys / h - 0.5, xs / w - 0.5], axis=1)
    off = np.abs(values - np.median(values))
    spread = float(np.median(off))
    for _ in range(2):
        keep = off <= max(3 * 1.4826 * float(np.median(off)), 8.0)
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        off = np.abs(values - design @ coef)
    if float(np.median(off)) >= spread:
        return gray
    plane = (coef[1] * (np.arange(h)[:, None] / h - 0.5)
             + coef[2] * (np.arange(w)[None, :] / w - 0.5))  # broadcast: no image-sized grids
    return np.clip(gray - plane, 0, 255)


def _border(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    band = max(1, min(h, w) // 20)
    return np.concatenate([gray[:band].ravel(), gray[-band:].ravel(),
                           gray[:, :band].ravel(), gray[:, -band:].ravel()])


def _fit_strokes(content: np.ndarray, background: float, noise: float, size: int) -> np.ndarray:
    candidates = content[content > background + max(4 * noise, 16.0)]
    ink_level = float(np.percentile(candidates, 90)) if candidates.size else background
    contrast = ink_level - background
    if contrast < max(MIN_CONTRAST, 8 * noise):
        raise ImageProblem("blank image: no ink stands out from the background")
    # Halfway to the ink, but never inside the paper's noise: what is below is texture.
    threshold = background + max(4 * noise, 0.35 * contrast)
    mask = _inside_frame(content > threshold)
    _check_not_a_speck(mask)
    ink = np.where(mask, np.clip((content - background) / contrast, 0, 1), 0)
    top, bottom, left, right = _mass_box(ink)
    ink = _normalise_strokes(ink[top:bottom, left:right], size)
    box = round(size * 20 / 28)  # MNIST: a 20x20 box inside 28x28
    h, w = ink.shape
    scale = box / max(h, w)
    patch = _resize(ink, max(1, round(h * scale)), max(1, round(w * scale)))
    patch /= max(float(patch.max()), 1e-6)  # faint strokes still reach full intensity
    ys, xs = np.indices(patch.shape)
    mass = patch.sum()
    cy, cx = (ys * patch).sum() / mass + 0.5, (xs * patch).sum() / mass + 0.5
    top = int(np.clip(round(size / 2 - cy), 0, size - patch.shape[0]))
    left = int(np.clip(round(size / 2 - cx), 0, size - patch.shape[1]))
    canvas = np.zeros((size, size), dtype=np.float32)
    canvas[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return _to_uint8(canvas)


FRAME_LINE = 0.75  # the share of a row or column a frame's line inks (a box set in by up to an
# eighth of the picture on each side); a digit's stroke seldom inks as much of three sides
FRAME_DEPTH = 0.15  # how far in from its edge a frame's line may lie


def _inside_frame(mask: np.ndarray) -> np.ndarray:
    """`mask` (the ink) without a frame around the digit: a screenshot's dark edge or a form's
    box read as ink set the digit's box, and a 7 in a 2-pixel box was read as a 3 (hunt). A
    frame is lines along at least three sides, each near its edge, meeting at their corners,
    with ink inside them that touches none of them and spans a quarter of them or more; what
    lies outside them is left out. Pictures smaller than MNIST's are left as they are."""
    if min(mask.shape) < 28:
        return mask
    height, width = mask.shape
    lines = [_frame_line(mask), _frame_line(mask[::-1]), _frame_line(mask.T),
             _frame_line(mask.T[::-1])]
    (t0, top), (b0, bottom), (l0, left), (r0, right) = lines
    if sum(end > 0 for _, end in lines) < 3:
        return mask
    rows = {"top": slice(t0, top), "bottom": slice(height - bottom, height - b0)}
    cols = {"left": slice(l0, left), "right": slice(width - right, width - r0)}
    found = {side for side, (_, end) in zip(("top", "bottom", "left", "right"), lines) if end}
    # the lines meet at their corners: a seven-segment digit's segments with gaps between
    # them ink three sides too (the review: an 8 was read as its middle bar)
    if any(mask[rows[r], cols[c]].mean() < 0.5 for r in rows for c in cols
           if r in found and c in found):
        return mask
    inside = np.zeros_like(mask)
    inside[top:height - bottom, left:width - right] = True
    return mask & inside if _framed(mask & inside, lines) else mask


def _framed(inner: np.ndarray, lines: list[tuple[int, int]]) -> bool:
    """Whether `inner` (the ink inside the lines) is what they frame: something (nothing
    inside failed with a traceback: review), touching none of them (a boxy digit cropped
    tight, a seven-segment 8, inks three sides too, but its other strokes meet them: the
    review's 3 and 8 read as 4), spanning a quarter of them or more (not a boxy 0's dot)."""
    ys, xs = np.nonzero(inner)
    if not ys.size:
        return False
    height, width = inner.shape
    (_, top), (_, bottom), (_, left), (_, right) = lines
    touches = (ys.min() <= top, ys.max() >= height - bottom - 1,
               xs.min() <= left, xs.max() >= width - right - 1)
    if any(end and touch for (_, end), touch in zip(lines, touches)):
        return False
    return max((np.ptp(ys) + 1) / (height - top - bottom),
               (np.ptp(xs) + 1) / (width - left - right)) >= 0.25


def _frame_line(mask: np.ndarray) -> tuple[int, int]:
    """The rows from the top a frame's line takes, as (first, one past the last); (0, 0)
    where there is none: rows inked across, within FRAME_DEPTH of the edge, with a row that
    is not after them."""
    lines = mask.mean(axis=1) >= FRAME_LINE
    depth = max(3, int(FRAME_DEPTH * len(lines)))
    inked = np.flatnonzero(lines[:depth])
    if not inked.size:
        return 0, 0
    first = end = int(inked[0])
    while end < len(lines) and lines[end]:
        end += 1
    return (first, end) if end < depth else (0, 0)  # inked all the way in: a stroke


def _check_not_a_speck(mask: np.ndarray) -> None:
    """Ink that spans no more than SPECK pixels, and less than 4 pixels or a fiftieth of a
    picture's shorter side, is a speck of dust on an empty page, not a digit: it was
    enlarged into a square and read as "0" at 78% (hunt). A digit 9 pixels tall is still
    read (the review: a fiftieth alone refused digits under 60 pixels in a phone's photo).
    Pictures smaller than MNIST's 28 pixels are left to the model."""
    if min(mask.shape) < 28:
        return
    ys, xs = np.nonzero(mask)
    extent = max(int(np.ptp(ys)), int(np.ptp(xs))) + 1
    if extent <= SPECK and extent < max(4, min(mask.shape) / 50):
        raise ImageProblem(f"blank image: only a speck of ink ({extent} pixels across, in a "
                           f"picture of {mask.shape[1]}x{mask.shape[0]}) stands out from the "
                           "background; crop the picture to the digit")


def _normalise_strokes(ink: np.ndarray, size: int) -> np.ndarray:
    """Redraw strokes much thicker or thinner than MNIST's at MNIST's width.

    A marker, a bold font or a hairline pen changes what the model sees more than the shape
    does (a bold 9 closes into an 8). The work is done at FINE times the final resolution:
    the ink is thinned to its skeleton and drawn again with a round pen of MNIST's median width.
    Strokes already within MNIST's usual range, and digits smaller than MNIST's box, are
    left as they are.
    """
    box = round(size * 20 / 28)
    h, w = ink.shape
    scale = FINE * box / max(h, w)
    fine = _resize(ink, max(1, round(h * scale)), max(1, round(w * scale)))
    fine /= max(float(fine.max()), 1e-6)
    if max(h, w) < box:
        # fewer pixels than MNIST's box (a thumbnail, an 8x8 scan): the strokes are a few
        # pixels of grey, and their skeleton would be the upscaling's staircase, not the pen's
        # path; they are enlarged smoothly and left as drawn
        return fine
    mask = fine > 0.5
    low, high = (v * size / 28 * FINE for v in MNIST_STROKE_RANGE)
    if low <= _stroke_width(mask) <= high:
        return fine
    margin = FINE * 4  # room for the new pen around strokes that touch the edge
    skeleton = _thin(np.pad(mask, margin))
    if not skeleton.any():
        return fine
    redrawn = _dilate(skeleton, (MNIST_STROKE * size / 28 * FINE - 1) / 2)
    ys, xs = np.nonzero(redrawn)
    return redrawn[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: area / half the boundary (a stroke has two sides)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    area = int(mask.sum())
    return 2 * area / max(area - int(inner.sum()), 1)


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning (1984): peel boundary pixels that do not break a stroke, until
    one-pixel-wide lines remain. Vectorised: each sub-step peels the whole image at once."""
    m = np.pad(mask.astype(bool), 1)
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    while True:
        changed = False
        for step in (0, 1):
            # neighbours P2..P9 clockwise from north
            n = [np.roll(m, (-dy, -dx), axis=(0, 1)) for dy, dx in offsets]
            count = np.sum(n, axis=0)
            transitions = np.sum([~n[i] & n[(i + 1) % 8] for i in range(8)], axis=0)
            if step == 0:
                keep = (n[0] & n[2] & n[4]) | (n[2] & n[4] & n[6])
            else:
                keep = (n[0] & n[2] & n[6]) | (n[0] & n[4] & n[6])
            remove = m & (count >= 2) & (count <= 6) & (transitions == 1) & ~keep
            if remove.any():
                m &= ~remove
                changed = True
        if not changed:
            return m[1:-1, 1:-1]


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """Draw every pixel of `mask` with a round pen of the given radius."""
    r = max(0, int(np.ceil(radius)))
    padded = np.pad(mask, r)
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= radius * radius:
                out |= padded[r + dy:r + dy + h, r + dx:r + dx + w]
    return out


def _fit_object(content: np.ndarray, background: float, noise: float, size: int) -> np.ndarray:
    tolerance = max(4 * noise, 16.0)
    level = np.clip((content - background) / max(255 - background, 1.0), 0, 1)
    mask = content > background + tolerance
    if not mask.any() or float(content.max()) - background < MIN_CONTRAST:
        raise ImageProblem("blank image: no object stands out from the background")
    top, bottom, left, right = _mass_box(mask.astype(np.float32), trim=0.002)
    level = level[top:bottom, left:right]
    h, w = level.shape
    scale = size / max(h, w)
    patch = np.clip(_resize(level, max(1, round(h * scale)), max(1, round(w * scale))), 0, 1)
    canvas = np.zeros((size, size), dtype=np.float32)
    top, left = (size - patch.shape[0]) // 2, (size - patch.shape[1]) // 2
    canvas[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return _to_uint8(canvas)


def _mass_box(weights: np.ndarray, trim: float = 0.005) -> tuple[int, int, int, int]:
    """Bounding box of the content, ignoring the outermost `trim` of its mass on each side, so
    a stray speck of dirt far from the digit does not stretch the box."""
    def span(profile: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(profile) / profile.sum()
        start = int(np.searchsorted(cumulative, trim, side="right"))
        end = int(np.searchsorted(cumulative, 1 - trim, side="left")) + 1
        return start, max(end, start + 1)

    top, bottom = span(weights.sum(axis=1))
    left, right = span(weights.sum(axis=0))
    return top, bottom, left, right


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    # Lanczos in float mode: anti-aliased when shrinking, smooth when enlarging.
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def _to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.clip(unit * 255, 0, 255).round().astype(np.uint8)


def _thumbnail(gray: np.ndarray) -> np.ndarray:
    image = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:120]


# --- prediction ------------------------------------------------------------------------------
CHANNELS = (1, 2, 3, 4)  # gray, gray and alpha, RGB, RGBA: a last axis this long is colour


def _listed(images: Any) -> list[Any]:
    """The images one by one: a path, a PIL image or one array (H, W) or (H, W, C) is one
    image; a batch of arrays (N, H, W), (N, H, W, C) or (N, C, H, W), numpy's or torch's
    (`load_dataset`'s tensors), is N. A torch image was read as 28 images of one row, a numpy
    batch as one bad image."""
    images = _as_array(images)
    if isinstance(images, np.ndarray):
        if images.ndim == 4 and images.shape[1] in CHANNELS and images.shape[-1] not in CHANNELS:
            images = images.transpose(0, 2, 3, 1)  # (N, C, H, W), as torch holds images
        batch = images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in CHANNELS)
        return list(images) if batch else [images]
    if isinstance(images, (str, os.PathLike, Image.Image, EncodedImage)):
        return [images]
    if isinstance(images, (bytes, numbers.Number)) or not isinstance(images, Iterable):
        raise MnistlabError(f"images: give image files, folders, PIL images or arrays (or a "
                            f"list of them), not {type(images).__name__}")
    return [_as_array(i) for i in images]


def _as_array(item: Any) -> Any:
    """A torch tensor as numpy holds it (bf16 and fp16 as float32, which numpy reads)."""
    if not isinstance(item, torch.Tensor):
        return item
    item = item.detach().cpu()
    return (item.float() if item.is_floating_point() else item).numpy()


def expand_inputs(images: ImageLike | Iterable[ImageLike]) -> list[tuple[str, ImageLike | None,
                                                                        str]]:
    """(name, source, problem) per image; a folder stands for every image file in it (sorted,
    not recursive). A folder that gives no image is one entry with no source and its problem."""
    images = _listed(images)
    # given by name as well: read anyway (realpath, not resolve: a link loop is an image's
    # own error, said where it is read)
    given = {os.path.realpath(i) for i in images if isinstance(i, (str, Path))}
    expanded: list[tuple[str, ImageLike | None, str]] = []
    for number, item in enumerate(images):
        if isinstance(item, EncodedImage):
            expanded.append((item.name, item, ""))
            continue
        if not isinstance(item, (str, Path)):
            expanded.append((f"<image {number}>", item, ""))
            continue
        path = Path(item)
        if not path.is_dir():
            expanded.append((str(path), path, ""))
            continue
        try:
            listed = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            inside = [p for p in listed if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        except OSError as exc:  # a folder that cannot be listed: that entry's error only
            expanded.append((str(path), None, f"folder cannot be read ({exc.strerror or exc})"))
            continue
        passed = _passed_over([p for p in listed
                               if p not in inside and os.path.realpath(p) not in given])
        if not inside:
            suffixes = ", ".join(sorted({s.lstrip(".") for s in IMAGE_SUFFIXES}))
            expanded.append((str(path), None, f"folder holds no image files ({suffixes})"
                             + (f"; {passed}" if passed else "")))
        elif passed:
            warnings.warn(f"{path}: {passed}", stacklevel=2)
        expanded.extend((str(p), p, "") for p in inside)
    return expanded


# formats people's folders hold that Pillow (so predict) does not read
UNREAD_FORMATS = frozenset({".heic", ".heif", ".pdf", ".svg", ".eps", ".psd", ".raw",
                            ".cr2", ".nef", ".dng", ".arw", ".xcf",
                            *((".avif",) if "AVIF" not in FORMATS else ())})


def _passed_over(others: list[Path]) -> str:
    """What of a folder given to predict is not read, and how to have it read: subfolders
    (a folder is not searched below its own level), files not named as images (NumPy's
    arrays: through Python) and links to nothing."""
    folders = [p for p in others if p.is_dir()]
    arrays = [p for p in others if p.is_file() and p.suffix.lower() in ARRAY_SUFFIXES]
    idx = [p for p in others if p.is_file() and p not in arrays and looks_like_idx(p)]
    files_ = [p for p in others if p.is_file() and p not in arrays and p not in idx]
    # given by name, these were refused all the same (hunt: a folder of iPhone photos)
    foreign = [p for p in files_ if p.suffix.lower() in UNREAD_FORMATS]
    named = [p for p in files_ if p not in foreign]
    broken = [p for p in others if not p.exists()]
    said = [f"{len(names)} {what.replace('*', 's' if len(names) > 1 else '')} "
            f"({first_few([p.name for p in names])})"
            for names, what in ((folders, "subfolder*"), (named, "file* not named as an image"),
                                (foreign, "file* of a format predict does not read"),
                                (arrays, "NumPy array file*"), (idx, "IDX data file*"),
                                (broken, "link* to nothing"))
            if names]
    if not said:
        return ""
    fixes = [fix for names, fix in ((named, "them by name"),
                                    (folders, "a subfolder as a folder of its own"),
                                    (arrays, ARRAYS_FIX), (idx, IDX_FIX)) if names]
    parts = ([f"give {', '.join(fixes)}"] if fixes else []) + (
        ["convert those of other formats to PNG or JPEG"] if foreign else []) + (
        [f"fix or remove the link{'s' if len(broken) > 1 else ''}"] if broken else [])
    return f"{' and '.join(said)} not read; {'; '.join(parts)}"


@public_call("predict")
@interrupt.scoped
def predict(run: str | Path | RunResult | tuple[torch.nn.Module, dict[str, Any]],
            images: ImageLike | Iterable[ImageLike], *, top: int = 3,
            style: str | None = None, tta: bool | None = None,
            progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Predict the class of each image with a trained run (its folder, the RunResult train()
    returned, or `mnistlab.runs.load_model`'s pair).

    `images`: file paths, folders (every image file in them), `EncodedImage`s, PIL images or
    arrays, numpy's or torch's: (H, W) or (H, W, C) is one image, (N, H, W) and (N, C, H, W)
    a batch of N (`load_dataset(...).test_images[:8]`); C is 1 to 4. `style` overrides the
    preprocessing chosen from the run's dataset (see `preprocess`). `tta`: average the
    softmax over the test-time views its scores used (None: as the run was trained, its
    --tta). One `Prediction` per image, in order; a bad image gets `error` and the others are
    still predicted. `progress(done, total)` is told after each image read; True draws the
    command line's bar (on a terminal).
    """
    if isinstance(progress, (bool, np.bool_)) and progress:  # a notebook's first guess: it
        from .progress import counted  # was "'bool' object is not callable" (hunt)

        with counted("predict") as bar:
            return predict(run, images, top=top, style=style, tta=tta, progress=bar)
    if progress is not None and not isinstance(progress, (bool, np.bool_)) \
            and not callable(progress):
        raise MnistlabError(f"progress: True (a bar), False, or a function progress(done, "
                            f"total); got {type(progress).__name__} {progress!r}")
    if not isinstance(top, numbers.Integral) or isinstance(top, bool) or top < 1:
        # 2.5 was torch's TypeError
        raise MnistlabError(f"top (--top): must be a whole number of at least 1, got {top!r}")
    from .runs import model_of

    model, payload = model_of(run, "predict")
    channels, height, width = (int(v) for v in payload["image_shape"])
    if not takes_pictures(payload["image_shape"]):
        raise MnistlabError(f"predicting needs a model of square grayscale images; this one takes "
                            f"{channels}x{height}x{width}: export it (`mnistlab export`) and "
                            "prepare such images yourself; `mnistlab evaluate RUN_DIR` scores "
                            "the test set of the data it was trained on")
    style = style or image_style(payload.get("dataset"))
    if style not in STYLES:
        raise MnistlabError(f"unknown preprocessing style {style!r}; use one of "
                            f"{', '.join(STYLES)}")

    inputs = expand_inputs(images)
    predictions = [Prediction(path=name, error=None if source is not None else problem)
                   for name, source, problem in inputs]
    todo = [(p, source) for p, (_, source, _) in zip(predictions, inputs) if source is not None]
    score = _scorer(model, payload, top, tta)
    told = progress if callable(progress) else (lambda done, total: None)
    with interrupt.listening():  # a Ctrl-C keeps every chunk scored: printed, then exit 130
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            for done, (prediction, source) in enumerate(chunk, start=start + 1):
                if interrupt.requested():
                    prediction.error = NOT_PREDICTED
                else:
                    try:
                        gray = read_image(source)
                        prediction.original = _thumbnail(gray)
                        prediction.image = _prepare(gray, style, height)
                    except ImageProblem as exc:
                        prediction.error = str(exc)
                told(done, len(todo))  # after the image is read: the bar ends at the total
            score([p for p, _ in chunk if p.image is not None and p.error is None])
    return predictions


def _scorer(model: torch.nn.Module, payload: dict[str, Any], top: int,
            tta: bool | None) -> Callable[[list[Prediction]], None]:
    """Fills in the classes of predictions whose image is read, a chunk at a time."""
    from .runs import check_finite
    from .training.evaluation import scored_logits

    config = TrainConfig.from_dict(payload["config"])
    tta = config.tta if tta is None else truth("tta", tta)  # tta="false" was true
    names = list(payload["class_names"])
    device = next(model.parameters()).device
    model.eval()

    def score(ready: list[Prediction]) -> None:
        if not ready:
            return
        batch = torch.from_numpy(np.stack([p.image for p in ready])).unsqueeze(1).to(device)
        with torch.inference_mode():
            # Softmax even for the bce teaching aid: the ranking is what matters here.
            probabilities = scored_logits(model, batch, config, payload["mean"], payload["std"],
                                          tta).softmax(dim=1).cpu()
        check_finite(probabilities)
        values, indices = probabilities.topk(min(top, len(names)), dim=1)
        for prediction, row_values, row_indices in zip(ready, values.tolist(),
                                                       indices.tolist()):
            prediction.index = row_indices[0]
            prediction.label = names[row_indices[0]]
            prediction.top = [(names[i], float(v)) for i, v in zip(row_indices, row_values)]

    return score


# --- reporting -------------------------------------------------------------------------------
def exit_code(predictions: Sequence[Prediction]) -> int:
    """What `mnistlab predict` exits with: 1 if any input failed, else 0."""
    return 1 if any(p.error for p in predictions) else 0


def format_predictions(predictions: Sequence[Prediction], as_json: bool = False) -> str:
    """One line per input (`path  label  probability  top: ...` or `path  error: ...`), or JSON:
    a list of {path, label, top: [{label, probability}], error}."""
    if as_json:
        return files.json_text([{
            "path": p.path, "label": p.label,
            "top": [{"label": name, "probability": round(prob, 6)} for name, prob in p.top],
            "error": p.error} for p in predictions], indent=2, ensure_ascii=False)
    names = [printable(p.path) for p in predictions]
    width = max((len(name) for name in names), default=0)
    lines = []
    for name, p in zip(names, predictions):
        if p.error:
            lines.append(f"{name:<{width}}  error: {p.error}")
        else:
            others = ", ".join(f"{label} {prob:.3f}" for label, prob in p.top)
            lines.append(f"{name:<{width}}  {p.label}  ({p.probability:.3f})  top: {others}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """`text` on one line: control characters (a newline in a file name) as escapes, so each
    record of the text output stays one line; other characters (accents) stay as they are."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def show_sheet(predictions: Sequence[Prediction], out_png: str | Path, *,
               columns: int = 4) -> Path:
    """A PNG sheet: each input beside the 28x28 image the model saw, with its label (the
    first SHEET_MAX inputs)."""
    out = Path(out_png)
    files.save_figure(out, sheet_figure(predictions[:SHEET_MAX], columns=columns))
    return out


def sheet_figure(predictions: Sequence[Prediction], *, columns: int = 4) -> Any:
    """The matplotlib Figure `show_sheet` saves (a "$" in a file name is not math; no
    backend chosen nor setting changed for the user's own plots: figures.drawn)."""
    from .figures import drawn  # matplotlib: loaded only to draw

    return drawn(_sheet)(predictions, columns)


def _sheet(predictions: Sequence[Prediction], columns: int) -> Any:
    from matplotlib.figure import Figure  # not pyplot: nothing global to leak or close

    if not predictions:
        raise MnistlabError("nothing to draw: no predictions")
    columns = max(1, min(columns, len(predictions)))
    rows = -(-len(predictions) // columns)
    # Constrained layout keeps the suptitle above the file names of the first row (with one
    # row, plain subplots put it on top of them).
    figure = Figure(figsize=(2.6 * columns, 1.6 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, 2 * columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for number, p in enumerate(predictions):
        left, right = axes[number // columns, 2 * (number % columns):2 * (number % columns) + 2]
        if p.original is not None:
            left.imshow(p.original, cmap="gray", vmin=0, vmax=255)
        left.set_title(_short(printable(Path(p.path).name), 18), fontsize=7)
        if p.image is not None:
            right.imshow(p.image, cmap="gray", vmin=0, vmax=255)
            right.set_title(f"{p.label} ({p.probability:.0%})", fontsize=9, fontweight="bold")
        else:  # wrapped to its cell, outside the layout: the layout made room for the whole
            # line, and shrank every image to a dot (hunt)
            right.text(0.5, 0.5, textwrap.fill(_short(p.error or "", 60), 22), fontsize=6,
                       color="firebrick", ha="center", va="center",
                       transform=right.transAxes).set_in_layout(False)
    figure.suptitle("input | what the model saw", fontsize=9)
    return figure


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _CallableModule(types.ModuleType):
    """`mnistlab.predict` is this module's `predict` function, as the package exports it; but
    once `mnistlab.predict` was imported as a module (`from mnistlab.predict import
    preprocess`, as docs/export.md does), Python made the package's name the module, and
    `mnistlab.predict(run, images)` raised "'module' object is not callable". Calling the
    module calls the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Prediction]:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
