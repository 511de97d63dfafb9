"""The IDX file format (MNIST's): a reader that checks everything, and a writer.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one
big-endian uint32 per dimension, then the payload. Images are 3-D (n, rows, cols), labels 1-D.
Files may be gzipped (detected from the content, not the name).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import MnistlabError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """The IDX payload of a file, decompressed if it is gzipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MnistlabError(f"{path}: no such file") from None
    except OSError as exc:
        raise MnistlabError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistlabError(f"{path.name}: damaged gzip file ({exc}); download it again "
                                "with `mnistlab data fetch`") from None
    if path.suffix == ".gz":
        raise MnistlabError(f"{path.name}: named .gz but not gzip-compressed; rename it without "
                            ".gz if it is a raw IDX file")
    return raw


def parse_idx(data: bytes, name: str, *, expect_dims: int | None = None) -> np.ndarray:
    """Check the header against the payload and return the array (read-only view)."""
    if len(data) < 4:
        raise MnistlabError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise MnistlabError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()}); "
                            "expected the MNIST format")
    if type_code != UBYTE:
        raise MnistlabError(f"{name}: IDX type code 0x{type_code:02x} is not supported; "
                            "only unsigned bytes (0x08) are")
    if expect_dims is not None and ndim != expect_dims:
        kind = "images (3 dimensions)" if expect_dims == 3 else "labels (1 dimension)"
        raise MnistlabError(f"{name}: has {ndim} dimension(s) but {kind} were expected; "
                            "are the images and labels files swapped?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistlabError(f"{name}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) if ndim else 0
    actual = len(data) - header
    if actual < expected:
        raise MnistlabError(f"{name}: truncated: the header promises {'x'.join(map(str, shape))}"
                            f" = {expected:,} bytes but only {actual:,} follow; download it "
                            "again")
    if actual > expected:
        raise MnistlabError(f"{name}: {actual - expected:,} unexpected bytes after the data; "
                            "the file is damaged or not what its header says")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path, *, expect_dims: int | None = None) -> np.ndarray:
    path = Path(path)
    return parse_idx(read_bytes(path), path.name, expect_dims=expect_dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                   *array.shape)
    data += array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    from ..files import write_bytes

    write_bytes(path, data)


def sha256_of_payload(path: str | Path) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()
