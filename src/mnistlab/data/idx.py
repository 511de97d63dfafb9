"""The IDX file format (MNIST's): a reader that checks everything, and a writer.

Layout: two zero bytes, a type code (0x08 = unsigned byte, as in MNIST; 0x09, 0x0B, 0x0C, 0x0D,
0x0E: signed byte, short, int, float, double, read as unsigned bytes), the number of
dimensions, one big-endian uint32 per dimension, then the payload. Images are 3-D (n, rows,
cols), magic 0x0803; labels are 1-D, magic 0x0801. Files may be gzipped: that is detected from
the content, and a `.gz` name on a file that is not gzip is an error rather than a guess.

Files come from anywhere (a folder the user names, a mirror), so the reader trusts none of them:
it decompresses only the header first, refuses a header announcing more than a size limit, then
fills a buffer of exactly the announced size in bounded steps and stops at the first byte too
many. A 2 MB gzip that expands to 2 GB therefore costs kilobytes, not gigabytes, to refuse.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import MnistlabError
from ..files import write_bytes

UBYTE = 0x08
# IDX's other element types (big-endian), read and turned into MNIST's unsigned bytes
TYPES = {UBYTE: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
         0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
REFETCH = "download or export it again"

# IDX allows 255 dimensions; image data needs 1 (labels) to 4 (stacked or colour images). More is
# not a dataset but a corrupt or hostile header, refused before the shape is even multiplied.
MAX_DIMS = 8
HEADER_MAX = 4 + 4 * MAX_DIMS  # the longest header accepted, in bytes
# The most bytes one decompressed IDX file may hold, header included. The reader allocates one
# buffer of the announced size and nothing else of that order: uint8 images become a tensor that
# shares it (see dataset.py), so one file costs at most 1 GiB + a few MiB, under 1.5 GB. It is
# 20x MNIST's largest file and still holds EMNIST-byclass (547 MB), the largest of the family.
MAX_PAYLOAD_BYTES = 1 << 30
CHUNK = 1 << 20  # decompressed per step: the memory beyond the buffer itself
TRAILING_PROBE = 1 << 16  # bytes after the payload counted exactly before saying "more than"


@dataclass(frozen=True)
class SizeLimit:
    """The most bytes a decompressed IDX file may hold here, what the limit belongs to (for the
    message) and the fix to suggest when a header announces more."""

    max_bytes: int
    of: str
    fix: str  # a raisable limit's names the value that reads the file: {gib}
    # the limit a user may raise for data that really is this large ($MNISTLAB_IDX_LIMIT_GB):
    # not from the file's size, which a sparse file or a header that lies makes up
    raisable: bool = False

    def bytes_allowed(self) -> int:
        """The limit, or the user's larger one where this limit may be raised."""
        if not self.raisable or not os.environ.get(LIMIT_VARIABLE, "").strip():
            return self.max_bytes
        text = os.environ[LIMIT_VARIABLE].strip()
        try:
            gib = float(text)
        except ValueError:
            gib = math.nan
        if not 0 < gib <= MAX_RAISED_GIB:  # past it, no machine holds the buffer
            raise MnistlabError(f"{LIMIT_VARIABLE}={text}: not a size in GiB up to "
                                f"{MAX_RAISED_GIB:,}; give a number such as 4 (or unset it "
                                f"for {_size(self.max_bytes)})")
        return max(self.max_bytes, int(gib * (1 << 30)))

    def advice(self, total: int) -> str:
        """The fix to say of a header announcing `total` bytes: for a raisable limit, the
        value that would read it."""
        if not self.raisable:
            return self.fix
        gib = max(2, math.ceil(total / (1 << 30)))
        if gib > MAX_RAISED_GIB:  # no machine holds it: the header is not telling the truth
            return (f"is this really an IDX file? (its header announces more than the "
                    f"{MAX_RAISED_GIB:,} GiB {LIMIT_VARIABLE} can allow)")
        return self.fix.format(gib=gib)


LIMIT_VARIABLE = "MNISTLAB_IDX_LIMIT_GB"
MAX_RAISED_GIB = 1024


DEFAULT_LIMIT = SizeLimit(MAX_PAYLOAD_BYTES, "one IDX file",
                          f"is this really an IDX file? (data this large: raise the limit with "
                          f"{LIMIT_VARIABLE}={{gib}}, in GiB, if the memory is there)",
                          raisable=True)


@dataclass(frozen=True)
class IdxHeader:
    shape: tuple[int, ...]
    length: int  # bytes of header
    dtype: np.dtype = TYPES[UBYTE]

    @property
    def data_bytes(self) -> int:
        # Python ints: no overflow, however large the dimensions
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def total(self) -> int:
        return self.length + self.data_bytes


def expected_dims(name: str) -> int | None:
    """3 for an `...idx3...` file name, 1 for `...idx1...`; None when the name does not say."""
    match = re.search(r"idx(\d)", name)
    return int(match.group(1)) if match else None


def _describe(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return f"{shape[0]:,} images of {shape[1]}x{shape[2]}"
    if len(shape) == 1:
        return f"{shape[0]:,} labels"
    return "an array of " + "x".join(map(str, shape))


def _size(n: int) -> str:
    if n % (1 << 30) == 0:
        return f"{n >> 30:,} GiB"
    return f"{n >> 20:,} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"


def looks_like_idx(path: Path) -> bool:
    """Whether a file is an IDX file by its name (MNIST's `...-idx3-ubyte[.gz]`) or by its
    first bytes (gzip's are opened): for a caller that reads something else (images) to say
    what this file is instead of "not an image"."""
    if re.search(r"[.-]idx\d+-ubyte(\.gz)?$", path.name, re.IGNORECASE):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                head = gzip.GzipFile(fileobj=f).read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return len(head) == 4 and head[:2] == b"\0\0" and head[2] in TYPES and 1 <= head[3] <= 4


def check_header(head: bytes | np.ndarray, name: str, *,
                 expect_dims: int | None = None, limit: SizeLimit = DEFAULT_LIMIT) -> IdxHeader:
    """Check the first bytes of an IDX file (at least HEADER_MAX of them when the file is that
    long) and return its header; the one place that decides whether a header is acceptable."""
    head = bytes(head[:HEADER_MAX])
    if not head:
        raise MnistlabError(f"{name}: empty file; {REFETCH}")
    if len(head) < 4:
        raise MnistlabError(f"{name}: too short to be an IDX file ({len(head)} bytes); "
                            f"{REFETCH}")
    zero, type_code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0:
        if head[:2] == b"\x1f\x8b":  # gzip's own magic, once unpacked (hunt: "is this IDX?")
            keep = ", keeping the .gz name" if str(name).endswith(".gz") else ""  # (review)
            raise MnistlabError(f"{name}: gzipped twice (gzip's magic number inside the "
                                f"unpacked file); gunzip it once{keep}")
        raise MnistlabError(f"{name}: bad magic number 0x{head[:4].hex()} (IDX files start "
                            "0x00000803 for images, 0x00000801 for labels); is this an IDX "
                            "file?")
    if type_code not in TYPES:
        raise MnistlabError(f"{name}: IDX data type 0x{type_code:02x} does not exist (IDX has "
                            f"{', '.join(f'0x{code:02x}' for code in TYPES)}); is this an IDX "
                            "file?")
    if ndim == 0 or (expect_dims is not None and ndim != expect_dims):
        wanted = {3: "images (3 dimensions, magic 0x00000803)", 1: "labels (1 dimension, "
                  "magic 0x00000801)"}.get(expect_dims or 0, "at least 1 dimension")
        # 1 for 3 (or 3 for 1) is the other file; 4 is images with a channel axis (n, h, w, 1)
        why = ("are the images and labels files swapped?" if {ndim, expect_dims} == {1, 3} else
               "save grayscale images as (count, height, width), one channel and no axis for "
               "it" if expect_dims == 3 and ndim == 4 else
               "save the labels flat, as (count,): labels.ravel() in NumPy" if expect_dims == 1
               and ndim == 2 else "is this the right file?")
        raise MnistlabError(f"{name}: has {ndim} dimension(s) but should hold {wanted}; {why}")
    if ndim > MAX_DIMS:
        raise MnistlabError(f"{name}: header announces {ndim} dimensions, more than the "
                            f"{MAX_DIMS} image or label data needs; is this really an IDX file?")
    length = 4 + 4 * ndim
    if len(head) < length:
        raise MnistlabError(f"{name}: truncated header ({len(head)} of {length} bytes); "
                            f"{REFETCH}")
    header = IdxHeader(struct.unpack(f">{ndim}I", head[4:length]), length, TYPES[type_code])
    allowed = limit.bytes_allowed()
    if header.total > allowed:
        raise MnistlabError(f"{name}: header announces {_describe(header.shape)} "
                            f"({header.total:,} bytes), over the limit of "
                            f"{_size(allowed)} for {limit.of}; {limit.advice(header.total)}")
    return header


def _check_data_length(header: IdxHeader, actual: int, name: str, *, more: bool = False) -> None:
    """Refuse a payload of `actual` data bytes (`more`: at least that many) that is not the size
    the header announces."""
    expected = header.data_bytes
    if actual < expected:
        raise MnistlabError(f"{name}: truncated: header says {_describe(header.shape)} but the "
                            f"file holds {actual:,} of the {expected:,} bytes of data; "
                            f"{REFETCH}")
    if actual > expected:
        extra = f"more than {actual - expected:,}" if more else f"{actual - expected:,}"
        raise MnistlabError(f"{name}: {extra} unexpected bytes after the "
                            f"{_describe(header.shape)} its header announces; the file is "
                            f"damaged, {REFETCH}")


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    """Up to `n` bytes, fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n and (part := stream.read(n - got)):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_stream(stream: BinaryIO, name: str, expect_dims: int | None, limit: SizeLimit,
                 size: int | None) -> np.ndarray:
    """The whole IDX file from `stream`, checked against its header; `size`, when known (a raw
    file), is checked before anything beyond the header is read."""
    head = _read_up_to(stream, HEADER_MAX)
    header = check_header(head, name, expect_dims=expect_dims, limit=limit)
    if size is not None:
        _check_data_length(header, size - header.length, name)
    # np.zeros, not bytearray: its pages are the kernel's zero pages until data is written into
    # them, so a header that claims much and delivers little costs only what it delivers; and it
    # is writable, so a uint8 tensor can share it instead of copying it
    buffer = np.zeros(header.total, dtype=np.uint8)
    view = memoryview(buffer)
    filled = min(len(head), header.total)
    view[:filled] = head[:filled]
    while filled < header.total and (got := stream.readinto(view[filled:filled + CHUNK])):
        filled += got
    if filled < header.total:
        _check_data_length(header, filled - header.length, name)  # truncated: raises
    # stop at the first bytes too many: a bomb behind a small header is never expanded
    extra = max(len(head) - header.total, 0) + len(_read_up_to(stream, TRAILING_PROBE + 1))
    if extra:
        _check_data_length(header, header.data_bytes + min(extra, TRAILING_PROBE), name,
                           more=extra > TRAILING_PROBE)
    return buffer


def read_bytes(path: str | Path, *, expect_dims: int | None = None,
               limit: SizeLimit = DEFAULT_LIMIT, name: str | None = None) -> np.ndarray:
    """The IDX payload of a file (decompressed if it is gzipped) as a flat, writable uint8 array
    that hashlib and parse_idx take like bytes, after checking its header (the dimensions
    against `expect_dims`, the announced size against `limit`) and that the file holds exactly
    what the header announces. Errors name the file as `name` (default: its path, so that
    the folder is said too; a download names its URL)."""
    path = Path(path)
    name = name or str(path)
    with _open(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise MnistlabError(f"{name}: empty file; {REFETCH}")
        start = handle.read(2)
        handle.seek(0)
        if start != GZIP_MAGIC:
            if path.suffix == ".gz" and start == b"\x00\x00":  # IDX files start so
                raise MnistlabError(f"{name}: named .gz but a raw IDX file; drop the .gz from "
                                    "its name")
            if path.suffix == ".gz":  # a web page saved under the file's name, say
                raise MnistlabError(f"{name}: named .gz but neither gzip nor IDX (it starts "
                                    f"with {start!r}); {REFETCH}")
            return _read_stream(handle, name, expect_dims, limit, size)
        try:
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                return _read_stream(stream, name, expect_dims, limit, None)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistlabError(f"{name}: damaged gzip data ({exc}); {REFETCH}") from None


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise MnistlabError(f"{path}: no such file") from None
    except OSError as exc:
        raise MnistlabError(f"{path}: cannot be read ({exc.strerror}); check its permissions"
                            ) from None


def parse_idx(data: bytes | np.ndarray, name: str, *, expect_dims: int | None = None,
              limit: SizeLimit = DEFAULT_LIMIT) -> np.ndarray:
    """Check the header against the payload and return the array: a view of `data`, read-only
    when `data` is bytes, writable when it is the array read_bytes returns."""
    return parse_idx_on_scale(data, name, expect_dims=expect_dims, limit=limit)[0]


@dataclass(frozen=True)
class Scale:
    """How an IDX file's values were read as bytes: `range` ("0..255", "0..1", "0..32767",
    "0..65535"), the element type's kind (numpy's: u, i, f), and whether the range was
    chosen by the values (a wider type whose values fit 0..255, floats within 0..1) rather
    than by the type: beside a sibling of the same kind read on another range, that choice
    may put the two files on two scales."""

    range: str
    kind: str = "u"
    by_values: bool = False

    def clashes_with(self, other: Scale) -> bool:
        return (self.kind == other.kind and self.range != other.range
                and (self.by_values or other.by_values))


BYTES = Scale("0..255")


def parse_idx_on_scale(data: bytes | np.ndarray, name: str, *, expect_dims: int | None = None,
                       limit: SizeLimit = DEFAULT_LIMIT) -> tuple[np.ndarray, Scale]:
    """parse_idx, and how its values were read (Scale): a dataset's files must agree."""
    header = check_header(data, name, expect_dims=expect_dims, limit=limit)
    _check_data_length(header, len(data) - header.length, name)
    array = np.frombuffer(data, dtype=header.dtype, offset=header.length).reshape(header.shape)
    return (array, BYTES) if header.dtype == np.uint8 else _as_bytes(array, name)


def _as_bytes(array: np.ndarray, name: str) -> tuple[np.ndarray, Scale]:
    """An IDX array of another element type as MNIST's unsigned bytes, and how it was read.
    Labels (1 dimension) must be whole numbers 0..255 as they are; pixels are taken as they
    are when they fit 0..255, scaled from 0..1 (floats), 0..32767 (signed 16-bit: its white)
    or 0..65535 (32-bit) otherwise: by the type, never by a file's own brightest pixel, so
    that a dataset's train and test files are read on one scale (where one file of a kind fits
    0..255 and its sibling does not, the dataset refuses the pair: Scale.clashes_with)."""
    try:
        return _read_as_bytes(array, name)
    except MnistlabError as exc:  # numpy's tobytes() writes the machine's order: said so
        if array.dtype.itemsize == 1 or not _fits(_swapped(array)):
            raise
        kind = "labels" if array.ndim == 1 else "pixels"
        write = f"numpy's array.astype({array.dtype.newbyteorder('>').str!r}).tobytes()"
        if array.dtype.kind == "f":  # swapped, a float's bytes are no number that fits
            raise MnistlabError(f"{name}: its {array.dtype.name} {kind} were written "
                                "little-endian (read the other way round, they fit); IDX "
                                f"numbers are big-endian: write them with {write}") from None
        # an integer's: 0..255 written little-endian reads as whole multiples of 256, which
        # a big-endian file may hold too
        raise MnistlabError(f"{exc}; or, if the file was written little-endian (read the other "
                            "way round, they fit), IDX numbers are big-endian: write them with "
                            f"{write}") from None


def _swapped(array: np.ndarray) -> np.ndarray:
    """The array with each number's bytes reversed: a little-endian file read as IDX says."""
    return array.view(array.dtype.newbyteorder())


def _fits(array: np.ndarray) -> bool:
    """Read as bytes as it is, floats all normal numbers or 0 (a big-endian file's few
    floats, swapped, may fit too, but as subnormals: 0.5 reads 8.8e-44)."""
    if array.dtype.kind == "f" and array.size:
        with np.errstate(all="ignore"):
            if not ((array == 0) | (np.abs(array) >= np.finfo(array.dtype).tiny)).all():
                return False
    try:
        _read_as_bytes(array, "")
    except MnistlabError:
        return False
    return True


def _read_as_bytes(array: np.ndarray, name: str) -> tuple[np.ndarray, Scale]:
    kind = "labels" if array.ndim == 1 else "pixels"
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise MnistlabError(f"{name}: its {kind} hold NaN or infinite values; save them as "
                            "numbers")
    low, high = (array.min(), array.max()) if array.size else (0, 0)
    if kind == "labels":
        if low < 0 or high > 255 or (array.dtype.kind == "f" and (array % 1).any()):
            raise MnistlabError(f"{name}: labels must be whole numbers 0..255 (class indices); "
                                f"these span {low:g} to {high:g}")
        return array.astype(np.uint8), BYTES
    typed = array.dtype.kind
    if low >= 0 and high <= 255 and not (typed == "f" and high <= 1):
        return np.rint(array).astype(np.uint8), Scale("0..255", typed, by_values=True)
    if typed == "f" and low >= 0 and high <= 1:
        return np.rint(array * 255).astype(np.uint8), Scale("0..1", typed, by_values=True)
    if typed == "i" and low >= 0 and high <= 65535:  # dividing by 257, a signed 16-bit's
        white = 32767 if array.dtype.itemsize == 2 else 65535  # white read 127
        return np.rint(array * (255 / white)).astype(np.uint8), Scale(f"0..{white}", typed)
    raise MnistlabError(f"{name}: {array.dtype.name} pixels span {low:g} to {high:g}; IDX images "
                        "are read as 0..255 (or 0..1 as floats, 0..65535 as integers): rescale "
                        "them into one of those ranges")


def read_idx(path: str | Path, *, expect_dims: int | None = None,
             limit: SizeLimit = DEFAULT_LIMIT) -> np.ndarray:
    """Read a (gzipped or raw) IDX file. The number of dimensions is checked against
    `expect_dims`, or against the name when it says `idx3`/`idx1`."""
    path = Path(path)
    if expect_dims is None:
        expect_dims = expected_dims(path.name)
    return parse_idx(read_bytes(path, expect_dims=expect_dims, limit=limit), str(path),
                     expect_dims=expect_dims, limit=limit)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array (numpy or CPU tensor) as IDX, gzipped when the name ends in .gz."""
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError("write_idx needs an array of at least 1 dimension")
    if array.dtype != np.uint8:
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"write_idx stores unsigned bytes; values span {array.min()} to "
                             f"{array.max()}")
        array = array.astype(np.uint8)
    data = (struct.pack(">HBB", 0, UBYTE, array.ndim)
            + struct.pack(f">{array.ndim}I", *array.shape) + np.ascontiguousarray(array).tobytes())
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: same array, same bytes
    write_bytes(path, data)


def sha256_of_payload(path: str | Path) -> str:
    """SHA-256 of a file's bytes, decompressed where it is gzip (gzip wrappers differ between
    mirrors), read a megabyte at a time: a 784 MB images file is not held to hash it. Its
    header is not checked here (read_bytes does that); a damaged gzip is a MnistlabError."""
    path = Path(path)
    digest = hashlib.sha256()
    with _open(path) as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        try:
            stream = gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistlabError(f"{path}: damaged gzip data ({exc}); {REFETCH}") from None
    return digest.hexdigest()
