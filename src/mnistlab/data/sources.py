"""Where datasets come from: the known ones (mirrors, payload checksums, class names, pixel
statistics), the folders searched for them, downloads that never cache anything unverified,
imports of folders a user already has, and a size limit on everything read or downloaded.

A dataset folder holds the four canonical IDX files, gzipped or raw:
    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]
A known dataset `<name>` is looked for, in order, in `<root>/<name>/` for each root: the
`data_dir` argument (the CLI's --data-dir), $MNISTLAB_DATA, the user cache ($MNISTLAB_CACHE or
the platform's cache folder); then in system folders (Debian's dataset-fashion-mnist package).

Every file of a known dataset is read within its published size and checked against its published
payload SHA-256 on every load. No marker remembers past checks: hashing the 55 MB already in memory
takes ~48 ms, 10-17% of decompressing it (MNIST ~300 ms, Fashion-MNIST ~450 ms, measured on the
development machine), while a marker keyed on file metadata raises the question of what it may
trust (size and mtime are put back by `touch -r`); a hash has no such question.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .. import files
from ..errors import MnistlabError, shown_url
from .idx import REFETCH, SizeLimit, expected_dims, read_bytes

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Decompressed size of each file (header included): 60,000 / 10,000 images of 28x28 and as many
# labels, the same for MNIST and Fashion-MNIST. A header announcing more is refused unread.
MNIST_LAYOUT_BYTES = {"train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,  # 47,040,016
                      "train-labels-idx1-ubyte": 8 + 60_000,
                      "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
                      "t10k-labels-idx1-ubyte": 8 + 10_000}


@dataclass(frozen=True)
class KnownDataset:
    name: str
    title: str
    mirrors: tuple[str, ...]  # base URLs, tried in order; "<stem>.gz" is appended
    sha256: dict[str, str]  # of each decompressed payload: the gzip wrappers differ by mirror
    payload_bytes: dict[str, int]  # of each decompressed payload: the reader's size limit
    class_names: tuple[str, ...]
    mean: float  # pixel mean and sd on [0, 1] over the training images
    std: float
    system_folders: tuple[Path, ...] = ()  # installed by an OS package, searched last
    # how its images were made, so `mnistlab predict` prepares a photo the same way: "strokes"
    # (pen strokes fitted into a box and centred by mass) or "objects" (a product fitted whole)
    style: str = "strokes"


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "mnist": KnownDataset(
        name="mnist", title="MNIST",
        # https first; the plain-http original stays last only because every payload's SHA-256
        # is pinned below, so a tampered download is refused, never cached
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        sha256={
            "train-images-idx3-ubyte":
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte":
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte":
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte":
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        payload_bytes=MNIST_LAYOUT_BYTES,
        class_names=tuple(str(d) for d in range(10)), mean=0.1307, std=0.3081),
    "fashion-mnist": KnownDataset(
        name="fashion-mnist", title="Fashion-MNIST",
        # https first; the plain-http mirror stays as a fallback only because every payload's
        # SHA-256 is pinned below, so a tampered download is refused, never cached
        mirrors=("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        sha256={
            "train-images-idx3-ubyte":
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte":
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte":
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte":
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        payload_bytes=MNIST_LAYOUT_BYTES,
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"),
        mean=0.2860, std=0.3530,
        system_folders=(Path("/usr/share/datasets/fashion-mnist"),), style="objects"),
}


def takes_pictures(image_shape: tuple[int, ...] | list[int]) -> bool:
    """Whether a model of `image_shape` (C, H, W) takes pictures the way `predict` prepares
    them (and an export's sidecar names a preprocessing): square and grayscale."""
    channels, height, width = (int(v) for v in image_shape)
    return channels == 1 and height == width


def image_style(dataset: str | None) -> str:
    """How a dataset's images were made ("strokes" or "objects"); a custom dataset is taken
    for strokes, as most MNIST-like sets are."""
    known = KNOWN_DATASETS.get(dataset or "")
    return known.style if known else "strokes"


FETCH_FOLDER = "to import a folder of its IDX files: mnistlab data fetch NAME --from DIR"


FOLDERS_WORK = "a folder of IDX files works too"


def known(name: str, *, folder_hint: str = FOLDERS_WORK) -> KnownDataset:
    """The registry entry for `name`, or an error listing the known names (and `folder_hint`:
    what to do with a folder, which fetch does not take as a name)."""
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        if folder_hint == FOLDERS_WORK:  # where a folder is taken (not by fetch)
            check_not_a_file(name)
        raise MnistlabError(f"dataset: unknown name {name!r}; known: "
                            f"{', '.join(KNOWN_DATASETS)} ({folder_hint})"
                            ) from None


def check_not_a_file(name: str) -> None:
    """One line where a dataset is named by one of its files (`data path train-images-idx3-
    ubyte.gz`): it was "unknown name" or "neither a known dataset nor an existing folder"."""
    path = Path(name).expanduser()
    if path.is_file():
        raise MnistlabError(f"{name}: a file, not a folder; give the folder that holds the four "
                            f"IDX files ({path.parent}), or a known name "
                            f"({', '.join(KNOWN_DATASETS)})")


# --- locations -------------------------------------------------------------------------------
def cache_root() -> Path:
    """The user cache: $MNISTLAB_CACHE, else the platform's cache folder for mnistlab."""
    if os.environ.get("MNISTLAB_CACHE"):
        return Path(os.environ["MNISTLAB_CACHE"]).expanduser().absolute()  # as the data dirs
    import platformdirs  # what pooch.os_cache reads: importing pooch pulled in tqdm.auto,
    # whose "IProgress not found" warning every notebook's first training call printed (hunt)

    return Path(platformdirs.user_cache_dir("mnistlab"))


def writable_cache(name: str) -> Path:
    """The cache folder `fetch` writes `name` into, made and checked: one line naming the
    variable that moves it where it cannot be written (fetch has no folder flag)."""
    target = cache_root() / name
    try:
        files.check_output_folder(target, "cache")
    except MnistlabError as exc:
        why = str(exc).removeprefix(f"cache {target}: ").split(";")[0]
        aside = ("move that file aside, or " if target.exists() and not target.is_dir()
                 else "")  # as train says of the same file (hunt: only the variable was)
        raise MnistlabError(f"{target}: the dataset cache cannot be written: {why}; {aside}set "
                            f"MNISTLAB_CACHE to a folder you can write: MNISTLAB_CACHE=DIR "
                            f"mnistlab data fetch {name}") from None
    return target


def search_folders(name: str, data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """(folder, how it was chosen) for every place a known dataset is looked for, in order."""
    spec = known(name)
    places = []
    if data_dir:  # absolute: `data path` and the messages name a folder that can be found
        places.append((Path(data_dir).expanduser().absolute() / name, "--data-dir"))
    if os.environ.get("MNISTLAB_DATA"):
        places.append((Path(os.environ["MNISTLAB_DATA"]).expanduser().absolute() / name,
                       "MNISTLAB_DATA"))
    places.append((cache_root() / name, "cache"))
    places += [(folder, "system") for folder in spec.system_folders]
    return places


def find_file(folder: Path, stem: str) -> Path | None:
    """`<stem>.gz` or raw `<stem>` in `folder`, the gzipped one first."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: Path) -> list[str]:
    """The stems of the four IDX files `folder` lacks (none: it holds a dataset)."""
    return [stem for stem in FILES if find_file(folder, stem) is None]


def locate(name: str, data_dir: str | Path | None = None) -> tuple[Path, str]:
    """The first folder holding all four files of a known dataset, and how it was found."""
    looked: dict[Path, str] = {}  # --data-dir and MNISTLAB_DATA may name one folder: once
    for folder, how in search_folders(name, data_dir):
        missing = missing_files(folder)
        if not missing:
            _warn_if_passed_over(data_dir, folder, how)
            return folder, how
        incomplete = len(missing) < len(FILES)
        looked.setdefault(folder, f"{folder}" + (f" (lacks {', '.join(missing)})" if incomplete
                                                 else _why_not_there(folder, how)))
    raise MnistlabError(f"{name} not found in {'; '.join(looked.values())}; run `mnistlab data "
                        f"fetch {name}` or point --data-dir / MNISTLAB_DATA at a folder holding "
                        f"{name}/*.gz")


def _warn_if_passed_over(data_dir: str | Path | None, folder: Path, how: str) -> None:
    """A --data-dir or MNISTLAB_DATA that does not hold the dataset (a typo, a file, the
    dataset's own folder, a folder without it) was passed over without a word, and the data
    read from the next place in the search order; the data is the same (checksums), the
    setting recorded is not what was read. MNISTLAB_DATA stands for every dataset: one
    it does not hold at all is looked for further on without a word."""
    named = [("--data-dir", data_dir), ("MNISTLAB_DATA", os.environ.get("MNISTLAB_DATA"))]
    for setting, value in named:
        if setting == how:
            return  # read from there: nothing passed over
        if not value:
            continue
        given = Path(value).expanduser()
        own = given / folder.name
        what = ("no folder" if not given.exists() else "a file" if not given.is_dir() else
                "the dataset's own folder, where the folder above it is meant"
                if not missing_files(given) and given.name == folder.name else
                f"a dataset's folder ({given.name}/), where the folder above it is meant"
                if not missing_files(given) else
                f"no complete {folder.name}/ inside" if setting == "--data-dir" or own.exists()
                else "")
        if what:
            warnings.warn(f"{setting} {value}: {what}; read {folder.name} from {folder} ({how}) "
                          "instead", stacklevel=3)


def _why_not_there(folder: Path, how: str) -> str:
    """What is wrong with a folder the user named (--data-dir, MNISTLAB_DATA), if it shows;
    anywhere, a file where the dataset's folder goes (which `data fetch` cannot write over)."""
    root = folder.parent
    if folder.is_file():
        return " (a file, not a folder: move it aside, then fetch)"
    if how not in ("--data-dir", "MNISTLAB_DATA"):
        return ""
    if root.is_file():
        return f" ({how} names a file; it should name the folder that holds {folder.name}/)"
    if not root.exists():
        return f" ({how} names a folder that does not exist)"
    if not missing_files(root):
        return f" ({how} names a dataset folder itself; it should name the folder above it)"
    return ""


def given_folder(name: str) -> Path | None:
    """The folder `name` is, where it is no known dataset's name but an existing folder (a
    known name is looked up, even where a folder of that name is in the working folder)."""
    path = Path(name).expanduser()
    return path if name not in KNOWN_DATASETS and path.is_dir() else None


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder a known dataset is read from (see the module docstring for the order); a
    folder given instead of a name is read where it is."""
    folder = given_folder(name)
    return folder.resolve() if folder else locate(name, data_dir)[0]


# --- identity and checksums ------------------------------------------------------------------
def _owner_of(digest: str) -> tuple[KnownDataset, str] | None:
    for spec in KNOWN_DATASETS.values():
        for stem, expected in spec.sha256.items():
            if expected == digest:
                return spec, stem
    return None


def published_as(digests: dict[str, str]) -> KnownDataset | None:
    """The known dataset whose published files have all these payload digests (stem ->
    SHA-256), or None: a copy of MNIST given by its path is still MNIST."""
    return next((spec for spec in KNOWN_DATASETS.values()
                 if all(spec.sha256.get(stem) == digest for stem, digest in digests.items())),
                None)


class OtherDatasetError(MnistlabError):
    """A file of another known dataset where `spec`'s was expected."""

    def __init__(self, other: KnownDataset, spec: KnownDataset, where: str):
        self.other = other
        super().__init__(f"{where}: these files are {other.title}, not {spec.title}: they are "
                         f"read as --dataset {other.name}, from a folder named {other.name} "
                         f"(`mnistlab data fetch {other.name} --from FOLDER` puts them there)")


def verify_payload(name: str, stem: str, payload: bytes | np.ndarray, where: str,
                   fix: str = "") -> str:
    """The payload's SHA-256 if it is the published `stem` of `name`; otherwise a plain error
    saying what it is instead (the other dataset, another file of this one, or damaged: then
    `fix`, by default to download it again)."""
    spec = known(name)
    digest = hashlib.sha256(payload).hexdigest()
    expected = spec.sha256[stem]
    if digest == expected:
        return digest
    owner = _owner_of(digest)
    if owner and owner[0].name != name:
        raise OtherDatasetError(owner[0], spec, where)
    if owner:
        raise MnistlabError(f"{where}: holds {spec.title}'s {owner[1]}, not {stem}; the files "
                            "are misnamed: give each its canonical name")
    fix = fix or ("the file is damaged or not the published one: re-download with "
                  f"`mnistlab data fetch {name}`")
    raise MnistlabError(f"{where}: checksum mismatch for {stem} of {spec.title} (expected "
                        f"{expected}, got {digest}); {fix}")


def _check_not_mixed(spec: KnownDataset, found: dict[str, Path],
                     others: dict[str, OtherDatasetError]) -> None:
    """A folder to import whose files are another known dataset's (`others`): all of them,
    said as such; some, beside this one's, said as a mix (MNIST's folder with Fashion's test
    labels was told its files "are Fashion-MNIST", and `data fetch fashion-mnist` then that
    they are MNIST: hunt)."""
    if not others:
        return
    first = next(iter(others.values()))
    if len(others) == len(found):
        raise first
    mine = [s for s in found if s not in others]
    folder = found[mine[0]].parent
    raise MnistlabError(
        f"{folder}: mixes two datasets: {first.other.title}'s {', '.join(others)} beside "
        f"{spec.title}'s {', '.join(mine)}; put {spec.title}'s own files in the place of "
        f"{first.other.title}'s (`mnistlab data fetch {spec.name}` downloads all four)")


def payload_limit(name: str, stem: str) -> SizeLimit:
    """The reader's size limit for `stem` of a known dataset: its published size, exactly."""
    spec = known(name)
    return SizeLimit(spec.payload_bytes[stem], f"{spec.title}'s {stem} (its published size)",
                     "is this really that file? give each file its canonical name, or fetch "
                     "it again")


def read_verified(name: str, stem: str, path: Path, where: str | None = None,
                  fix: str = "", damaged: str = "") -> np.ndarray:
    """The payload of `path`, read within the published size of `stem` and checked against its
    published SHA-256. Errors name `where` (a download's URL) when given; a checksum mismatch
    ends with `fix`. A file here cut short or damaged ends with `damaged`, by default to fetch
    it again (it said "download or export it again", where a checksum mismatch of the same
    file named the command: hunt)."""
    try:
        payload = read_bytes(path, expect_dims=expected_dims(stem),
                             limit=payload_limit(name, stem), name=where)
    except MnistlabError as exc:
        if where is not None or not str(exc).endswith(REFETCH):
            raise
        raise MnistlabError(str(exc).removesuffix(REFETCH) + (
            damaged or f"re-download it with `mnistlab data fetch {name}`")) from None
    verify_payload(name, stem, payload, where or str(path), fix)
    return payload


# --- download and import ---------------------------------------------------------------------
class _RichBar:
    """The progress-bar protocol of pooch's downloaders (total, update, close) that ours
    drives, drawn with rich on stderr, so that tqdm is not needed."""

    def __init__(self, label: str):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self._progress = Progress(TextColumn(label), BarColumn(), DownloadColumn(),
                                  console=files.StderrConsole(), transient=True)
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()

    @property
    def total(self) -> float | None:
        return self._progress.tasks[0].total

    @total.setter
    def total(self, value: int) -> None:
        self._progress.update(self._task, total=value or None)

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


def _network_reason(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        busy = " (busy or down: try later)" if code == 429 or code >= 500 else ""
        wait = exc.response.headers.get("Retry-After", "").strip()
        if busy and wait.isdigit():  # what the server asks for, in seconds (hunt: unsaid)
            busy = f" (busy or down: it asks to be tried again in {int(wait)} s)"
        return f"HTTP {code}{busy}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):  # a ConnectionError too: said first
        return ("its TLS certificate is not trusted; an internal mirror's CA file is named by "
                "REQUESTS_CA_BUNDLE")
    if isinstance(exc, requests.TooManyRedirects):
        return "it redirects in a loop"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection closed before the whole file came"
    return f"{type(exc).__name__}: {exc}"[:120]


def _served(exc: MnistlabError, url: str) -> str:
    """Why a mirror's file was refused, without the advice meant for a file of the user's own
    (rename it, fetch it again): the problem as the reader put it, before that advice."""
    problem = str(exc).removeprefix(f"{url}: ").split("; ")[0].split(": they are read as")[0]
    return shown_url(f"{url} ({problem})")  # a mirror's password is not printed


def download_cap(spec: KnownDataset, stem: str) -> int:
    """The most bytes a mirror may send for `<stem>.gz`. Deflate never grows data by more than
    ~0.03% plus a gzip header (with an optional file name or comment of any length), so a real
    file is at most a little over its payload; twice the payload plus 1 MiB is generous to any
    mirror's wrapper, yet stops a hostile body at 95 MB of disk for the largest file."""
    return 2 * spec.payload_bytes[stem] + (1 << 20)


class _CappedDownloader:
    """A pooch downloader (called as `downloader(url, output_file, pooch)`) that streams the
    body with requests and cuts it off past `cap` bytes. Written rather than wrapping pooch's
    HTTPDownloader because that one has no limit and would have to be stopped from inside a
    file object; here an announced length over the cap is refused before reading the body."""

    def __init__(self, cap: int, timeout: float, progressbar: _RichBar | None = None):
        self.cap, self.timeout, self.progressbar = cap, timeout, progressbar

    def _too_big(self, url: str, what: str) -> MnistlabError:
        return MnistlabError(f"{url}: {what} over the {self.cap:,}-byte cap for this file; "
                             "discarded (a broken or hostile mirror)")

    def __call__(self, url: str, output_file: str, pooch: object = None) -> None:
        import requests

        # identity: the bytes counted are the bytes on the wire, no transparent decompression
        with requests.get(url, stream=True, timeout=self.timeout,
                          headers={"Accept-Encoding": "identity"}) as response:
            response.raise_for_status()
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > self.cap:
                raise self._too_big(url, f"announces {int(announced):,} bytes,")  # unread
            if self.progressbar is not None:
                self.progressbar.total = int(announced) if announced.isdigit() else 0
            try:
                self._write(response, url, output_file)
                if response.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
                    _unwrap_transport(output_file, self.cap)
            except OSError as exc:  # a full disk names no file (the write, or the close's
                if exc.filename or exc.errno not in LOCAL_ERRORS:  # flush): the cache's
                    raise
                raise OSError(exc.errno, exc.strerror, output_file) from None

    def _write(self, response: Any, url: str, output_file: str) -> None:
        import requests
        import urllib3

        try:
            self._copy(response, url, output_file)
        except urllib3.exceptions.ReadTimeoutError:  # what requests' own reading would
            raise requests.Timeout(f"{url}: timed out") from None  # have raised of them
        except urllib3.exceptions.HTTPError as exc:  # cut short: ProtocolError, IncompleteRead
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from None

    def _copy(self, response: Any, url: str, output_file: str) -> None:
        written = 0
        with open(output_file, "wb") as out:
            # the bytes as sent: a .gz a server marks Content-Encoding: gzip was unpacked by
            # iter_content and refused as "a raw IDX file" (hunt)
            for chunk in response.raw.stream(1 << 16, decode_content=False):
                written += len(chunk)
                if written > self.cap:
                    raise self._too_big(url, "the body runs")  # cut off here
                out.write(chunk)
                if self.progressbar is not None:
                    self.progressbar.update(len(chunk))


def _unwrap_transport(output_file: str, cap: int) -> None:
    """A .gz sent gzipped again on the way (a server compressing every reply, though asked
    for the bytes as they are) loses that outer layer here; a .gz only labelled so is left as
    it came. The one layer is read within `cap`, as the body was (review: the second kind was
    refused as "gzipped twice" once the body was kept as sent)."""
    with open(output_file, "rb") as packed:
        if packed.read(2) != b"\x1f\x8b":
            return
    try:
        with gzip.open(output_file, "rb") as outer:
            inner = outer.read(cap + 1)
    except (OSError, EOFError, zlib.error):
        return  # not one whole gzip layer: the reader says what is wrong with the file
    if inner[:2] == b"\x1f\x8b" and len(inner) <= cap:
        with open(output_file, "wb") as out:
            out.write(inner)


# What writing the download into the cache can fail with: trying the next mirror would only
# download the file again into the same full or read-only disk
LOCAL_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


STALE_DOWNLOAD_SECONDS = 24 * 3600  # a download folder this old is no live fetch's


def _remove_stale_downloads(cache: Path) -> None:
    """Download folders a killed fetch left (SIGKILL, a power cut: up to the largest file's
    size each); a fetch running now in another process has a fresh one, which stays."""
    now = time.time()
    for folder in cache.glob(".fetch-*"):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if now - folder.stat().st_mtime > STALE_DOWNLOAD_SECONDS:
                shutil.rmtree(folder)


def _download_one(spec: KnownDataset, stem: str, mirrors: list[str], target: Path,
                  progress: bool, timeout: float, unreachable: dict[str, str]) -> None:
    """Try each mirror for `<stem>.gz` until one serves the published payload; rename that one
    into `target`. Everything else stays in a temporary folder that is removed afterwards.
    `unreachable`: the mirrors that timed out or could not be reached for an earlier file,
    passed over (a dead mirror was waited on 30 s for each of the four files, silently:
    hunt); one found now is said, and added."""
    import pooch
    import requests

    tried, served = [], 0  # served: answered, with an error or a file not this dataset's
    # the temporary folder sits in the cache so the final rename stays on one file system
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        for index, base in enumerate(mirrors):
            url = base.rstrip("/") + f"/{stem}.gz"
            if base in unreachable:
                tried.append(shown_url(f"{url} (passed over: {unreachable[base]} for an "
                                       "earlier file)"))
                continue
            for leftover in Path(tmp).iterdir():  # pooch would reuse what a bad mirror left
                leftover.unlink()
            host = urlparse(url).netloc.rpartition("@")[2]  # a password was drawn (hunt)
            bar = _RichBar(f"{stem}.gz from {host}") if progress else None
            try:
                downloader = _CappedDownloader(download_cap(spec, stem), timeout, bar)
                path = Path(pooch.retrieve(url, known_hash=None, fname=f"{stem}.gz", path=tmp,
                                           downloader=downloader))
                read_verified(spec.name, stem, path, where=url)  # a gzip bomb stops here too
            except requests.RequestException as exc:
                tried.append(shown_url(f"{url} ({_network_reason(exc)})"))
                if isinstance(exc, (requests.Timeout, requests.ConnectionError)) \
                        and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    unreachable[base] = _network_reason(exc)
                    if index + 1 < len(mirrors):
                        warnings.warn(f"{shown_url(base)}: {unreachable[base]}; trying the "
                                      "next mirror, and not this one for the other files",
                                      stacklevel=2)
                served += ((isinstance(exc, requests.HTTPError) and exc.response is not None)
                           or isinstance(exc, requests.TooManyRedirects))  # it answered
                continue
            except OSError as exc:
                if exc.errno in LOCAL_ERRORS:  # the cache's disk, not the mirror: no other
                    # mirror can help (the CLI says what to free or fix), said of the folder
                    # the data goes to, not of pooch's temporary file in ours (hunt)
                    if exc.filename is None or Path(exc.filename).is_relative_to(tmp):
                        raise OSError(exc.errno, exc.strerror, str(target)) from None
                    raise
                tried.append(shown_url(f"{url} ({_network_reason(exc)})"))
                continue
            except MnistlabError as exc:
                tried.append(_served(exc, url))
                served += 1
                continue
            finally:
                if bar is not None:
                    bar.close()
            with files.replacing(target / f"{stem}.gz") as staged:  # with the umask's mode
                os.replace(path, staged)
            (target / stem).unlink(missing_ok=True)  # a stale raw copy must not shadow it later
            return
    # where every mirror answered (404, or another file), the network is not what to check
    check = ("check that each mirror serves this dataset's files (and the network, where a "
             "login page or a proxy answered for them)" if served == len(tried)
             else "check the network")
    raise MnistlabError(f"could not fetch {stem}.gz of {spec.name}; tried: {' | '.join(tried)}; "
                        f"{check}, or get the files elsewhere and run `mnistlab data fetch "
                        f"{spec.name} --from FOLDER`")


MIRROR_SCHEMES = ("http", "https")  # what the capped downloader (requests) can fetch


def _check_mirror(url: str) -> None:
    """A mirror is a download address; a folder, a blank or a bad port was tried as one and
    failed per file with requests' words and "check the network"."""
    parts = urlparse(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # out of range, or not a number
        port_ok = False
    if parts.scheme in MIRROR_SCHEMES and parts.hostname and port_ok:
        cut = min((url.index(c) for c in "?#" if c in url), default=None)
        if cut is not None:  # the file names went after "?token=...": a page, not the file
            raise MnistlabError(f"--mirror {shown_url(url[:cut])!r}{url[cut]}...: a mirror is "
                                "a folder's address, which each file's name is added to; leave "
                                f"out the part from {url[cut]} (a query or a token cannot be "
                                "passed)")
        return
    why = (f"an address starting {' or '.join(s + '://' for s in MIRROR_SCHEMES)}"
           if parts.scheme not in MIRROR_SCHEMES else
           "a host after the //" if not parts.hostname else "a port from 1 to 65535")
    local = " (to import a folder of the files, give it with --from DIR)" \
        if parts.scheme in ("", "file") and url.strip() else ""
    raise MnistlabError(f"--mirror {shown_url(url)!r}: not a download address; a mirror needs "
                        f"{why}{local}")


def fetch(name: str, *, mirrors: list[str] | tuple[str, ...] | None = None,
          progress: bool = False, timeout: float = 30.0) -> Path:
    """Download a known dataset into the cache and return its folder. Each file is taken from
    the first mirror that serves the published payload within its size cap; files already
    cached that still verify are kept; nothing unverified is ever put in the cache."""
    import pooch

    spec = known(name, folder_hint=FETCH_FOLDER)
    mirrors = list(spec.mirrors if mirrors is None else mirrors)
    if not mirrors:
        raise MnistlabError(f"fetch {name}: no mirrors given; leave mirrors unset to use the "
                            "known ones")
    for mirror in mirrors:
        _check_mirror(mirror)
    with _cache_folder(name) as target:
        _remove_stale_downloads(target.parent)
        logger = pooch.get_logger()
        level = logger.level
        # pooch logs a "use this known_hash" hint per file; we check payloads ourselves instead
        logger.setLevel(logging.WARNING)
        unreachable: dict[str, str] = {}
        try:
            for stem in FILES:
                cached = find_file(target, stem)
                if cached is not None:
                    try:
                        read_verified(name, stem, cached)
                        continue
                    except MnistlabError:
                        pass  # download it again; a verified copy replaces it, else it stays
                _download_one(spec, stem, mirrors, target, progress, timeout, unreachable)
        finally:
            logger.setLevel(level)
    return target


@contextlib.contextmanager
def _cache_folder(name: str) -> Iterator[Path]:
    """The cache's folder for `name` (made if needed); a first fetch or import that got
    nothing (an error, a full disk, Ctrl-C) leaves no empty folder behind. Verified files
    stay for the next try."""
    made = not (cache_root() / name).exists()
    target = writable_cache(name)
    try:
        yield target
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                target.rmdir()  # only if empty
        raise


def import_folder(name: str, source_dir: str | Path) -> Path:
    """Copy a folder of the four IDX files (gzipped or raw, canonical names) into the cache,
    after checking every payload against the published checksums. Returns the cache folder."""
    source = Path(source_dir).expanduser()
    if not source.is_dir():  # first: an unknown name was told to train on this (review)
        raise MnistlabError(f"{source}: not a folder; give the folder holding the four IDX files")
    # `data fetch shapes --from DIR` was told to run `data fetch NAME --from DIR` (hunt)
    spec = known(name, folder_hint=f"a folder of your own needs no import: train on it with "
                                   f"--dataset {source}")
    if all(find_file(source, s) is None for s in FILES) and (source / name).is_dir():
        source = source / name  # given the root of a `<root>/<name>/` layout
    found, others = {}, {}
    for stem in FILES:
        path = find_file(source, stem)
        if path is None:
            raise MnistlabError(f"{source}: {stem}[.gz] is missing; the folder must hold the "
                                f"four IDX files under their canonical names ({', '.join(FILES)})")
        try:  # a folder of one's own data is not imported: it is read where it is
            read_verified(name, stem, path, fix=f"if it is data of your own, it needs no "
                          f"import: train on it with --dataset {source}; if it is {spec.title}, "
                          f"the file is damaged: fetch it with `mnistlab data fetch {name}`",
                          damaged="copy or export that file again, or fetch it with "
                          f"`mnistlab data fetch {name}`")
        except OtherDatasetError as exc:
            others[stem] = exc
        found[stem] = path
    _check_not_mixed(spec, found, others)
    with _cache_folder(spec.name) as target:
        for stem, path in found.items():
            final = target / path.name
            with files.replacing(final) as staged:
                try:
                    shutil.copyfile(path, staged)
                except OSError as exc:  # the cache's disk is the one full (it named the source)
                    if exc.errno not in LOCAL_ERRORS:
                        raise
                    raise OSError(exc.errno, exc.strerror, str(final)) from None
                read_verified(name, stem, staged, where=str(path))  # the copy is what is cached
            # only the verified form may be found: drop the other (raw vs .gz) if cached before
            (target / (stem if final.suffix == ".gz" else f"{stem}.gz")).unlink(missing_ok=True)
    return target
