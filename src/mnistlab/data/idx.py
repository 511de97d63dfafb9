"""The IDX file format (MNIST's): a reader that checks everything, and a writer.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one
big-endian uint32 per dimension, then the payload. Images are 3-D (n, rows, cols), magic 0x0803;
labels are 1-D, magic 0x0801. Files may be gzipped: that is detected from the content, and a
`.gz` name on a file that is not gzip is an error rather than a guess.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import MnistlabError
from ..files import write_bytes

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
_REFETCH = "download or export it again"


def read_bytes(path: str | Path) -> bytes:
    """The IDX payload of a file, decompressed if it is gzipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MnistlabError(f"{path}: no such file") from None
    except OSError as exc:
        raise MnistlabError(f"{path}: cannot be read ({exc.strerror}); check its permissions"
                            ) from None
    if not raw:
        raise MnistlabError(f"{path.name}: empty file; {_REFETCH}")
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistlabError(f"{path.name}: damaged gzip data ({exc}); {_REFETCH}") from None
    if path.suffix == ".gz":
        raise MnistlabError(f"{path.name}: named .gz but not gzip-compressed; if it is a raw IDX "
                            "file, drop the .gz from its name")
    return raw


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


def parse_idx(data: bytes, name: str, *, expect_dims: int | None = None) -> np.ndarray:
    """Check the header against the payload and return the array (a read-only view of `data`)."""
    if not data:
        raise MnistlabError(f"{name}: empty file; {_REFETCH}")
    if len(data) < 4:
        raise MnistlabError(f"{name}: too short to be an IDX file ({len(data)} bytes); "
                            f"{_REFETCH}")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise MnistlabError(f"{name}: bad magic number 0x{data[:4].hex()} (IDX files start "
                            "0x0803 for images, 0x0801 for labels); is this an IDX file?")
    if type_code != UBYTE:
        raise MnistlabError(f"{name}: IDX data type 0x{type_code:02x} is not supported, only "
                            "0x08 (unsigned bytes, as in MNIST); convert the file to uint8")
    if ndim == 0 or (expect_dims is not None and ndim != expect_dims):
        wanted = {3: "images (3 dimensions, magic 0x0803)", 1: "labels (1 dimension, magic "
                  "0x0801)"}.get(expect_dims or 0, "at least 1 dimension")
        raise MnistlabError(f"{name}: has {ndim} dimension(s) but should hold {wanted}; are the "
                            "images and labels files swapped?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistlabError(f"{name}: truncated header ({len(data)} of {header} bytes); "
                            f"{_REFETCH}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header
    if actual < expected:
        raise MnistlabError(f"{name}: truncated: header says {_describe(shape)} but the file "
                            f"holds {actual:,} of the {expected:,} bytes of data; {_REFETCH}")
    if actual > expected:
        raise MnistlabError(f"{name}: {actual - expected:,} unexpected bytes after the "
                            f"{_describe(shape)} its header announces; the file is damaged, "
                            f"{_REFETCH}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path, *, expect_dims: int | None = None) -> np.ndarray:
    """Read a (gzipped or raw) IDX file. The number of dimensions is checked against
    `expect_dims`, or against the name when it says `idx3`/`idx1`."""
    path = Path(path)
    if expect_dims is None:
        expect_dims = expected_dims(path.name)
    return parse_idx(read_bytes(path), path.name, expect_dims=expect_dims)


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
    """SHA-256 of the decompressed IDX payload (gzip wrappers differ between mirrors)."""
    return hashlib.sha256(read_bytes(path)).hexdigest()
