"""Where datasets come from: the known ones (mirrors, payload checksums), the folders searched,
downloads that never cache anything unverified, and imports of folders a user already has.

A dataset folder holds the four canonical IDX files, gzipped or raw:
    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]
Known datasets are looked for, in order, under `<root>/<name>/` for each root: the `data_dir`
argument (`--data-dir`), `$MNISTLAB_DATA`, the user cache (`$MNISTLAB_CACHE` or the platform's
cache folder), and Debian's /usr/share/datasets (package dataset-fashion-mnist).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import MnistlabError
from .idx import read_bytes

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_ROOT = Path("/usr/share/datasets")


@dataclass(frozen=True)
class KnownDataset:
    name: str
    title: str
    mirrors: tuple[str, ...]  # base URLs, tried in order; the file name is appended (+ .gz)
    sha256: dict[str, str]  # SHA-256 of each decompressed payload (gzip wrappers differ)
    class_names: tuple[str, ...]
    mean: float  # pixel mean and sd on [0, 1], over the training images
    std: float


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "mnist": KnownDataset(
        "mnist", "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        {"t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
         "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
        tuple(str(d) for d in range(10)), 0.1307, 0.3081),
    "fashion-mnist": KnownDataset(
        "fashion-mnist", "Fashion-MNIST",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
        {"t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
         "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"), 0.2860, 0.3530),
}


def known(name: str) -> KnownDataset:
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        raise MnistlabError(f"dataset: unknown name {name!r}; known: "
                            f"{', '.join(KNOWN_DATASETS)} (or give a folder of IDX files)"
                            ) from None


# --- locations -------------------------------------------------------------------------------
def cache_root() -> Path:
    env = os.environ.get("MNISTLAB_CACHE")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("mnistlab"))


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    roots = []
    if data_dir:
        roots.append(Path(data_dir))
    if os.environ.get("MNISTLAB_DATA"):
        roots.append(Path(os.environ["MNISTLAB_DATA"]))
    roots += [cache_root(), DEBIAN_ROOT]
    return roots


def find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def dataset_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The first folder holding all four files of a known dataset."""
    known(name)
    looked = []
    for root in search_roots(data_dir):
        folder = root / name
        looked.append(str(folder))
        if all(find_file(folder, stem) for stem in FILES):
            return folder
    raise MnistlabError(f"{name} not found (looked in {', '.join(looked)}); run `mnistlab data "
                        f"fetch {name}` or point --data-dir / MNISTLAB_DATA at a folder holding "
                        f"{name}/*.gz")


# --- identity and checksums ------------------------------------------------------------------
def _digest_owner(digest: str) -> tuple[str, str] | None:
    for ds in KNOWN_DATASETS.values():
        for stem, expected in ds.sha256.items():
            if expected == digest:
                return ds.name, stem
    return None


def verify_payload(name: str, stem: str, payload: bytes, where: str) -> None:
    """Raise a plain error when a file is not the published one (or is the other dataset's)."""
    expected = known(name).sha256[stem]
    digest = hashlib.sha256(payload).hexdigest()
    if digest == expected:
        return
    owner = _digest_owner(digest)
    if owner and owner[0] != name:
        other = KNOWN_DATASETS[owner[0]]
        raise MnistlabError(f"{where}: these files are {other.title}, not {known(name).title}: "
                            f"use --dataset {other.name} (or put them under {other.name}/)")
    raise MnistlabError(f"{where}: checksum mismatch for {stem} (expected {expected[:16]}…, got "
                        f"{digest[:16]}…); the file is damaged or not {known(name).title}: "
                        f"fetch it again with `mnistlab data fetch {name}`")


# --- download and import ---------------------------------------------------------------------
def _quiet_pooch() -> None:
    import pooch

    # pooch logs the hash of every file downloaded without a known hash; we check payloads
    pooch.get_logger().setLevel(logging.WARNING)


def fetch(name: str, *, mirrors: tuple[str, ...] | list[str] | None = None,
          progress: bool = False, timeout: float = 30.0) -> Path:
    """Download a known dataset into the cache: mirrors in order per file, payload SHA-256
    checked, and only verified files renamed into place. Returns the dataset's folder."""
    import pooch

    _quiet_pooch()
    ds = known(name)
    mirrors = tuple(mirrors or ds.mirrors)
    target = cache_root() / name
    target.mkdir(parents=True, exist_ok=True)
    for stem in FILES:
        existing = find_file(target, stem)
        if existing is not None:
            try:
                verify_payload(name, stem, read_bytes(existing), str(existing))
                continue
            except MnistlabError:
                existing.unlink()  # damaged cache entry: fetch it again
        attempts = []
        # download into a temporary folder inside the cache so the final rename is atomic
        with tempfile.TemporaryDirectory(prefix=".download-", dir=target) as tmp:
            for base in mirrors:
                url = base.rstrip("/") + "/" + stem + ".gz"
                try:
                    path = Path(pooch.retrieve(url, known_hash=None, fname=stem + ".gz", path=tmp,
                                               progressbar=progress,
                                               downloader=pooch.HTTPDownloader(
                                                   timeout=timeout, progressbar=progress)))
                    verify_payload(name, stem, read_bytes(path), url)
                except MnistlabError as exc:
                    attempts.append(str(exc))
                    for leftover in Path(tmp).iterdir():
                        leftover.unlink()
                    continue
                except Exception as exc:  # noqa: BLE001 - network errors of any kind: next mirror
                    attempts.append(f"{url}: {type(exc).__name__}: {str(exc)[:100]}")
                    continue
                os.replace(path, target / (stem + ".gz"))
                break
            else:
                raise MnistlabError(f"could not fetch {stem} of {name}: " + " | ".join(attempts))
    return target


def import_folder(name: str, source: str | Path) -> Path:
    """Copy a folder of the four IDX files (gzipped or raw) into the cache, verified first."""
    ds = known(name)
    source = Path(source)
    if not source.is_dir():
        raise MnistlabError(f"{source}: not a folder")
    found = {}
    for stem in FILES:
        path = find_file(source, stem)
        if path is None:
            raise MnistlabError(f"{source}: {stem}[.gz] is missing; the folder must hold the four "
                                "IDX files under their usual names")
        payload = read_bytes(path)
        verify_payload(ds.name, stem, payload, str(source))
        found[stem] = (path, payload)
    target = cache_root() / name
    target.mkdir(parents=True, exist_ok=True)
    for stem, (path, _) in found.items():
        # copied as they are (gzipped or raw); the other form, if cached before, is removed so
        # that only the verified copy can be found
        tmp = target / f".{path.name}.import"
        shutil.copyfile(path, tmp)
        os.replace(tmp, target / path.name)
        other = target / (stem if path.suffix == ".gz" else f"{stem}.gz")
        other.unlink(missing_ok=True)
    return target
