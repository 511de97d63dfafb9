"""Downloads against a real HTTP server on loopback, imports, the identity check, checks on
every load, the mirror order, and where known datasets are looked for."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import os
import shutil
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import make_dataset_folder
from test_data_bounds import gzip_bomb

from mnistlab.data import (
    KNOWN_DATASETS,
    dataset_folder,
    dataset_info,
    fetch,
    import_folder,
    load_dataset,
)
from mnistlab.data.sources import FILES, cache_root, search_folders
from mnistlab.errors import MnistlabError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(root: Path, handler: type[SimpleHTTPRequestHandler] = _QuietHandler
            ) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving `root` with `handler`: yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www: yields (that folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    with serving(root) as base:
        yield root, base


def _serve(root: Path, mirror: str, source: Path) -> Path:
    """Publish the four files of `source` under /<mirror>/ (symlinks: no 40 MB of copies)."""
    folder = root / mirror
    folder.mkdir()
    for stem in FILES:
        (folder / f"{stem}.gz").symlink_to(source / f"{stem}.gz")
    return folder


def _corrupt(path: Path) -> None:
    """Replace a served file by a re-gzipped copy with a few payload bytes flipped."""
    payload = bytearray(gzip.decompress(path.read_bytes()))
    for i in (100, 101, 102):
        payload[i] ^= 0xFF
    path.unlink()
    path.write_bytes(gzip.compress(bytes(payload)))


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _cached_names(name: str) -> set[str]:
    folder = cache_root() / name
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.fixture()
def tiny_known(tmp_path, monkeypatch) -> tuple[str, Path]:
    """A small folder registered as the known dataset "tiny" (its digests published), so the
    checksum machinery can be exercised without 50 MB of MNIST."""
    folder = make_dataset_folder(tmp_path / "offered", 40, 20)
    digests = {stem: hashlib.sha256(gzip.decompress((folder / f"{stem}.gz").read_bytes()))
               .hexdigest() for stem in FILES}
    spec = dataclasses.replace(KNOWN_DATASETS["mnist"], name="tiny", title="Tiny",
                               mirrors=(), sha256=digests)
    monkeypatch.setitem(KNOWN_DATASETS, "tiny", spec)
    return "tiny", folder


# --- downloads -------------------------------------------------------------------------------
def test_fetch_from_a_good_mirror_verifies_caches_and_loads(http_root, shared_datasets,
                                                           monkeypatch):
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)  # make test exports it; read the cache
    root, base = http_root
    _serve(root, "good", shared_datasets / "mnist")
    folder = fetch("mnist", mirrors=[f"{base}/good/"])
    assert folder == cache_root() / "mnist"
    assert _cached_names("mnist") == {f"{stem}.gz" for stem in FILES}
    assert not [p for p in cache_root().iterdir() if p.name.startswith(".fetch-")]
    ds = load_dataset("mnist")
    assert (len(ds.train_labels), len(ds.test_labels)) == (60000, 10000)
    assert ds.train_labels.bincount().tolist() == MNIST_TRAIN_COUNTS
    assert ds.test_labels.bincount().tolist() == MNIST_TEST_COUNTS
    assert ds.source == str(folder) and ds.class_names[3] == "3"
    # everything cached and verified: a second fetch needs no mirror at all
    assert fetch("mnist", mirrors=[_dead_url()]) == folder


def test_corrupted_download_is_never_cached(http_root, shared_datasets):
    root, base = http_root
    _corrupt(_serve(root, "bad", shared_datasets / "mnist") / "t10k-labels-idx1-ubyte.gz")
    expected = KNOWN_DATASETS["mnist"].sha256["t10k-labels-idx1-ubyte"]
    with pytest.raises(MnistlabError, match=f"checksum mismatch for t10k-labels-idx1-ubyte of "
                                            f"MNIST \\(expected {expected}, got [0-9a-f]{{64}}\\)"):
        fetch("mnist", mirrors=[f"{base}/bad/"])
    cached = _cached_names("mnist")
    assert "t10k-labels-idx1-ubyte.gz" not in cached and "t10k-labels-idx1-ubyte" not in cached
    assert cached == {f"{stem}.gz" for stem in FILES[:3]}  # the good ones stay
    assert not [p for p in cache_root().iterdir() if p.name.startswith(".fetch-")]


@pytest.mark.filterwarnings("ignore:.*could not connect; trying the next mirror")  # its own test
def test_dead_missing_and_corrupt_mirrors_fall_back_to_the_next(http_root, shared_datasets):
    root, base = http_root
    _corrupt(_serve(root, "bad", shared_datasets / "mnist") / "t10k-labels-idx1-ubyte.gz")
    _serve(root, "good", shared_datasets / "mnist")
    folder = fetch("mnist", mirrors=[_dead_url(), f"{base}/missing/", f"{base}/bad/",
                                     f"{base}/good/"])
    assert _cached_names("mnist") == {f"{stem}.gz" for stem in FILES}
    assert load_dataset("mnist", data_dir=folder.parent).test_labels.bincount().tolist() \
        == MNIST_TEST_COUNTS


@pytest.mark.filterwarnings("ignore:.*could not connect; trying the next mirror")  # its own test
def test_all_mirrors_dead_says_what_was_tried(http_root):
    _, base = http_root
    dead = _dead_url()
    with pytest.raises(MnistlabError) as info:
        fetch("mnist", mirrors=[dead, f"{base}/missing/"], timeout=5)
    message = str(info.value)
    assert message.startswith("could not fetch train-images-idx3-ubyte.gz of mnist; tried: ")
    assert f"{dead}train-images-idx3-ubyte.gz (could not connect)" in message
    assert f"{base}/missing/train-images-idx3-ubyte.gz (HTTP 404)" in message
    assert "`mnistlab data fetch mnist --from FOLDER`" in message and "\n" not in message
    assert "check the network" in message  # one could not be reached
    assert _cached_names("mnist") == set()
    assert not (cache_root() / "mnist").exists()  # a first fetch that got nothing: no folder
    with pytest.raises(MnistlabError, match=r"\(HTTP 404\); check that each mirror serves "
                                            r"this dataset's files \(and the network"):
        fetch("mnist", mirrors=[f"{base}/missing/"], timeout=5)  # it answered: not the network
    secret = dead.replace("http://", "http://bob:s3cret@")  # an internal mirror's login
    with pytest.raises(MnistlabError) as info:
        fetch("mnist", mirrors=[secret], timeout=5)
    assert "s3cret" not in str(info.value) and "bob:***@" in str(info.value)


def test_damaged_cache_entry_is_fetched_again(http_root, tiny_known):
    name, offered = tiny_known
    root, base = http_root
    (root / "m").symlink_to(offered)
    fetch(name, mirrors=[f"{base}/m/"])
    damaged = cache_root() / name / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))
    fetch(name, mirrors=[f"{base}/m/"])
    assert damaged.read_bytes() == (offered / damaged.name).read_bytes()


def test_a_cached_file_that_fails_its_check_stays_until_a_verified_copy_replaces_it(
        http_root, tiny_known):
    name, offered = tiny_known
    root, base = http_root
    (root / "m").symlink_to(offered)
    fetch(name, mirrors=[f"{base}/m/"])
    damaged = cache_root() / name / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"the user's own bytes")
    with pytest.raises(MnistlabError, match="could not fetch t10k-labels-idx1-ubyte.gz"):
        fetch(name, mirrors=[_dead_url()], timeout=5)  # offline: nothing to replace it with
    assert damaged.read_bytes() == b"the user's own bytes"


def test_a_full_disk_stops_the_download_instead_of_trying_every_mirror(http_root, tiny_known,
                                                                      monkeypatch):
    import errno

    from mnistlab.data import sources

    name, offered = tiny_known
    root, base = http_root
    for mirror in ("m1", "m2"):
        (root / mirror).symlink_to(offered)
    asked = []

    def full(self, url, output_file, pooch_):
        asked.append(url)
        raise OSError(errno.ENOSPC, "No space left on device", output_file)

    monkeypatch.setattr(sources._CappedDownloader, "__call__", full)
    with pytest.raises(OSError) as info:
        fetch(name, mirrors=[f"{base}/m1/", f"{base}/m2/"])
    assert info.value.errno == errno.ENOSPC and len(asked) == 1  # not the next mirror too
    # said of the dataset's folder, not of a temporary file the user never saw (hunt)
    assert info.value.filename == str(cache_root() / name)


def test_a_mirror_s_bad_file_is_named_as_the_mirror_s_not_given_a_local_file_s_fix(
        http_root, tiny_known):
    """A damaged, raw or misnamed file from a mirror was told to be renamed ('drop the .gz
    from its name') or fetched again with the command that had just fetched it."""
    name, offered = tiny_known
    root, base = http_root
    stem = "t10k-images-idx3-ubyte"
    for mirror in ("bad", "raw"):
        _serve(root, mirror, offered)
    _corrupt(root / "bad" / f"{stem}.gz")
    raw = root / "raw" / f"{stem}.gz"
    payload = gzip.decompress(raw.read_bytes())
    raw.unlink()
    raw.write_bytes(payload)
    with pytest.raises(MnistlabError) as info:
        fetch(name, mirrors=[f"{base}/bad/", f"{base}/raw/"])
    message = str(info.value)
    assert f"{base}/bad/{stem}.gz (checksum mismatch for {stem} of Tiny (expected " in message
    assert message.endswith(f"{base}/raw/{stem}.gz (named .gz but a raw IDX file); check that "
                            "each mirror serves this dataset's files (and the network, where a "
                            "login page or a proxy answered for them), or get the files "
                            f"elsewhere and run `mnistlab data fetch {name} --from FOLDER`")
    assert "re-download" not in message and "drop the .gz" not in message


def test_a_full_disk_while_importing_names_the_cache_not_the_source(tiny_known, monkeypatch):
    import errno
    import shutil

    from mnistlab.data import import_folder

    name, offered = tiny_known

    def full(source, target, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(source))  # as copyfile does

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(OSError) as info:
        import_folder(name, offered)
    assert info.value.errno == errno.ENOSPC
    assert Path(info.value.filename).parent == cache_root() / name  # the disk to free
    # a first import that got nothing leaves no empty folder behind (fetch left none)
    assert not (cache_root() / name).exists()


@pytest.mark.filterwarnings("ignore:.*could not connect; trying the next mirror")  # its own test
def test_fetch_into_a_log_writes_no_blank_lines(http_root, tiny_known, capfd):
    """Each transient progress bar left an empty line where stderr is not a terminal (a log,
    CI): twelve for four files from three mirrors."""
    from mnistlab.cli import main

    name, offered = tiny_known
    root, base = http_root
    (root / "m").symlink_to(offered)
    # --mirror: an internal copy, tried after a dead one; published mirrors are not asked
    assert main(["data", "fetch", name, "--mirror", _dead_url(), "--mirror", f"{base}/m/"]) == 0
    err = capfd.readouterr().err
    assert err.strip("\n") == err.strip() and "\n\n" not in err and not err.startswith("\n")
    assert _cached_names(name) == {f"{stem}.gz" for stem in FILES}
    assert main(["data", "fetch", name, "--mirror", f"{base}/m/", "--from", str(offered)]) == 2
    assert "--mirror: --from imports a folder and downloads nothing" in capfd.readouterr().err


_HOSTILE_FILE = "t10k-labels-idx1-ubyte.gz"  # the smallest cap: cut off after about 1 MB


class _HostileHandler(_QuietHandler):
    """Serves like _QuietHandler, except t10k-labels-idx1-ubyte.gz under two broken mirrors:
    /endless/ streams zeros until the client hangs up, /huge/ announces a terabyte."""

    def do_GET(self) -> None:
        mirror = self.path.split("/")[1]
        if self.path not in (f"/endless/{_HOSTILE_FILE}", f"/huge/{_HOSTILE_FILE}"):
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        if mirror == "huge":
            self.send_header("Content-Length", str(10**12))
        self.end_headers()
        try:  # 64 MiB at most: a client without a cap fails the test rather than hanging it
            for _ in range(1024 if mirror == "endless" else 1):
                self.wfile.write(bytes(1 << 16))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cut it off, as it should


# (mirror, how its t10k-labels is refused; the cap is 2 x 10,008 + 1 MiB, the limit 10,008 bytes)
HOSTILE_MIRRORS = [
    ("endless", "the body runs over the 1,068,592-byte cap for this file)"),
    ("huge", "announces 1,000,000,000,000 bytes, over the 1,068,592-byte cap for this file"),
    ("bomb", "header announces 1,000,000,000 labels (1,000,000,008 bytes), over the limit of "
             "10,008 bytes for Tiny's t10k-labels-idx1-ubyte"),
]


@pytest.mark.parametrize("mirror,refusal", HOSTILE_MIRRORS, ids=[m for m, _ in HOSTILE_MIRRORS])
def test_hostile_mirror_is_cut_off_and_the_next_one_serves(tiny_known, tmp_path, mirror, refusal):
    name, offered = tiny_known
    root = tmp_path / "www"
    root.mkdir()
    for good in ("good", "endless", "huge"):
        (root / good).symlink_to(offered)
    _serve(root, "bomb", offered)
    (root / "bomb" / "t10k-labels-idx1-ubyte.gz").unlink()  # 256 MiB of zeros in 260 KB
    (root / "bomb" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip_bomb((10**9,), 256 << 20))
    with serving(root, _HostileHandler) as base:
        with pytest.raises(MnistlabError) as info:
            fetch(name, mirrors=[f"{base}/{mirror}/"])
        message = str(info.value)
        assert f"{base}/{mirror}/t10k-labels-idx1-ubyte.gz ({refusal}" in message
        assert "\n" not in message
        assert _cached_names(name) == {f"{stem}.gz" for stem in FILES[:3]}  # not the bad one
        fetch(name, mirrors=[f"{base}/{mirror}/", f"{base}/good/"])
    assert _cached_names(name) == {f"{stem}.gz" for stem in FILES}
    for stem in FILES:
        assert (cache_root() / name / f"{stem}.gz").read_bytes() == \
            (offered / f"{stem}.gz").read_bytes()
    assert not [p for p in cache_root().iterdir() if p.name.startswith(".fetch-")]


class _OddHandler(_QuietHandler):
    """Serves like _QuietHandler, with four odd mirrors: /encoded/ marks each .gz
    Content-Encoding: gzip (as some servers and S3 objects do), /double/ gzips it again and
    says so, /busy/ answers 503 with a Retry-After, /loop/ redirects to itself."""

    def do_GET(self) -> None:
        mirror = self.path.split("/")[1]
        if mirror == "busy":
            self.send_response(503)
            self.send_header("Retry-After", "2")
            self.end_headers()
            return
        if mirror == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
            return
        if mirror not in ("encoded", "double"):
            return super().do_GET()
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        if mirror == "double":  # a server that compresses every reply, asked or not
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_odd_mirrors_are_read_as_sent_and_told_as_they_answered(tiny_known, tmp_path,
                                                                monkeypatch):
    """Hunt: a .gz sent with Content-Encoding: gzip was unpacked on the way and refused as "a
    raw IDX file"; a 503 and a redirect loop were "check the network"; a mirror's password
    was drawn in the progress bar."""
    from mnistlab.data import sources

    name, offered = tiny_known
    root = tmp_path / "www"
    root.mkdir()
    (root / "encoded").symlink_to(offered)
    (root / "double").symlink_to(offered)
    labels = []
    monkeypatch.setattr(sources, "_RichBar", lambda label: labels.append(label) or None)
    with serving(root, _OddHandler) as base:
        with pytest.raises(MnistlabError) as info:
            fetch(name, mirrors=[f"{base}/busy/", f"{base}/loop/"])
        told = str(info.value)
        assert "(HTTP 503 (busy or down: it asks to be tried again in 2 s))" in told
        assert "(it redirects in a loop)" in told and "check the network" not in told
        host = base.split("//")[1]
        fetch(name, mirrors=[f"http://ann:secret@{host}/encoded/"], progress=True)
        assert _cached_names(name) == {f"{stem}.gz" for stem in FILES}
        shutil.rmtree(cache_root() / name)  # review: gzipped again on the way, as it was read
        fetch(name, mirrors=[f"{base}/double/"])
    assert labels and not [label for label in labels if "secret" in label or "ann" in label]


def test_a_mirror_that_cannot_be_reached_is_said_once_and_passed_over(http_root, tiny_known,
                                                                     monkeypatch):
    """Hunt: a dead mirror was waited on (30 s a file, timed out) for each of the four files,
    without a word; it is said once, and the other files go straight to the next."""
    from mnistlab.data import sources

    name, offered = tiny_known
    root, base = http_root
    _serve(root, "good", offered)
    asked = []
    real = sources._CappedDownloader.__call__
    monkeypatch.setattr(sources._CappedDownloader, "__call__",
                        lambda self, url, *a: asked.append(url) or real(self, url, *a))
    dead = _dead_url()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        fetch(name, mirrors=[dead, f"{base}/good/"])
    assert sum(url.startswith(dead.rstrip("/")) for url in asked) == 1
    assert [str(w.message) for w in said] == [
        f"{dead}: could not connect; trying the next mirror, and not this one for the other "
        "files"]
    assert _cached_names(name) == {f"{stem}.gz" for stem in FILES}


def test_an_untrusted_certificate_is_told_as_such():
    """Hunt: an internal mirror's self-signed certificate read "could not connect; check the
    network" (an SSLError is a ConnectionError, and was taken for one)."""
    import requests

    from mnistlab.data.sources import _network_reason

    said = _network_reason(requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"))
    assert said.startswith("its TLS certificate is not trusted") and "REQUESTS_CA_BUNDLE" in said


# --- identity --------------------------------------------------------------------------------
def test_fashion_offered_as_mnist_is_named(http_root, tmp_path, shared_datasets):
    root, base = http_root
    _serve(root, "mnist", shared_datasets / "fashion-mnist")
    identity = ("these files are Fashion-MNIST, not MNIST: they are read as --dataset "
                "fashion-mnist, from a folder named fashion-mnist \\(`mnistlab data fetch "
                "fashion-mnist --from FOLDER` puts them there\\)")
    with pytest.raises(MnistlabError, match=r"mnist/train-images-idx3-ubyte\.gz \(these files "
                       r"are Fashion-MNIST, not MNIST\); check that each mirror serves "
                       r"this dataset's files"):  # not "check the network": it answered (hunt)
        fetch("mnist", mirrors=[f"{base}/mnist/"])  # a mirror's file: no advice on folders
    assert _cached_names("mnist") == set()
    with pytest.raises(MnistlabError, match=identity):
        import_folder("mnist", shared_datasets / "fashion-mnist")
    with pytest.raises(MnistlabError, match="these files are MNIST, not Fashion-MNIST: they "
                                            "are read as --dataset mnist, from a folder named "
                                            "mnist "):
        import_folder("fashion-mnist", shared_datasets / "mnist")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "mnist").symlink_to(shared_datasets / "fashion-mnist")
    with pytest.raises(MnistlabError, match=identity):
        load_dataset("mnist", data_dir=tmp_path / "root")
    assert _cached_names("mnist") == _cached_names("fashion-mnist") == set()


def test_a_folder_mixing_the_two_datasets_is_said_as_a_mix(tmp_path, shared_datasets):
    """MNIST's files with Fashion-MNIST's test labels: `fetch mnist --from` said "these files
    are Fashion-MNIST" and sent the user to `fetch fashion-mnist`, which sent them back (hunt).
    A name it does not know was told to run the command it ran."""
    mixed = tmp_path / "mixed"
    shutil.copytree(shared_datasets / "mnist", mixed)
    shutil.copy(shared_datasets / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz", mixed)
    for name, ours, theirs in (("mnist", "MNIST", "Fashion-MNIST"),
                               ("fashion-mnist", "Fashion-MNIST", "MNIST")):
        with pytest.raises(MnistlabError) as info:
            import_folder(name, mixed)
        assert str(info.value).startswith(f"{mixed}: mixes two datasets: ")
        assert str(info.value).endswith(f"put {ours}'s own files in the place of {theirs}'s "
                                        f"(`mnistlab data fetch {name}` downloads all four)")
    assert "Fashion-MNIST's t10k-labels-idx1-ubyte beside MNIST's train-images" in str(
        pytest.raises(MnistlabError, import_folder, "mnist", mixed).value)
    assert _cached_names("mnist") == _cached_names("fashion-mnist") == set()
    with pytest.raises(MnistlabError) as info:
        import_folder("shapes", mixed)
    assert str(info.value).endswith("(a folder of your own needs no import: train on it with "
                                    f"--dataset {mixed})")


def test_a_known_dataset_given_by_its_path_is_still_that_dataset(tmp_path, shared_datasets):
    """A copy of Fashion-MNIST given by path was a custom dataset: classes '0'..'9', and
    predict prepared photos as pen strokes. Its checksums name it; a file changed by one label
    or a classes.txt of one's own is respected."""
    from mnistlab.data.sources import image_style

    copy = tmp_path / "my-copy"
    copy.mkdir()
    for f in (shared_datasets / "fashion-mnist").glob("*-ubyte.gz"):
        (copy / f.name).symlink_to(f)
    data = load_dataset(str(copy))
    assert data.name == "fashion-mnist" and data.class_names[0] == "T-shirt/top"
    assert data.source == str(copy) and image_style(data.name) == "objects"
    (copy / "classes.txt").write_text("\n".join(f"prenda {k}" for k in range(10)))
    assert load_dataset(str(copy)).class_names[0] == "prenda 0"
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(labels.read_bytes()))
    payload[-1] = (payload[-1] + 1) % 10
    labels.unlink()
    labels.write_bytes(gzip.compress(bytes(payload)))
    (copy / "classes.txt").unlink()
    changed = load_dataset(str(copy))
    assert changed.name == "my-copy" and changed.class_names[0] == "0"
    assert not changed.published and dataset_info(str(copy))["verified"] is False
    assert dataset_info(str(shared_datasets / "mnist"))["verified"] is True  # by its checksums


def test_misnamed_files_are_named(tiny_known, tmp_path):
    name, offered = tiny_known
    train, test = offered / "train-labels-idx1-ubyte.gz", offered / "t10k-labels-idx1-ubyte.gz"
    train_bytes = train.read_bytes()
    train.write_bytes(test.read_bytes())  # the test labels offered under the train name
    test.write_bytes(train_bytes)
    with pytest.raises(MnistlabError, match="holds Tiny's t10k-labels-idx1-ubyte, not "
                                            "train-labels-idx1-ubyte; the files are misnamed"):
        import_folder(name, offered)


# --- imports and checks on every load --------------------------------------------------------
def test_import_raw_files(tmp_path, shared_datasets):
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem in FILES:
        (raw / stem).write_bytes(gzip.decompress((shared_datasets / "mnist" / f"{stem}.gz")
                                                 .read_bytes()))
    assert import_folder("mnist", raw) == cache_root() / "mnist"
    assert _cached_names("mnist") == set(FILES)
    ds = load_dataset("mnist")
    assert ds.test_labels.bincount().tolist() == MNIST_TEST_COUNTS


def test_import_accepts_the_root_of_a_name_layout_and_replaces_other_forms(tiny_known, tmp_path):
    name, offered = tiny_known
    stale = cache_root() / name / "train-images-idx3-ubyte"  # a raw copy cached earlier
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / name).symlink_to(offered)
    import_folder(name, tmp_path / "layout")
    assert _cached_names(name) == {f"{stem}.gz" for stem in FILES}


def test_importing_data_of_one_s_own_says_it_needs_no_import(tiny_known, tmp_path):
    """`data fetch tiny --from` a folder of other images: "checksum mismatch ...; re-download
    with `mnistlab data fetch tiny`", where such data is trained on with --dataset DIR."""
    name, _ = tiny_known
    own = make_dataset_folder(tmp_path / "mine", 40, 20, k=3)
    with pytest.raises(MnistlabError) as info:
        import_folder(name, own)
    assert str(info.value).endswith(
        f"if it is data of your own, it needs no import: train on it with --dataset {own}; if "
        f"it is Tiny, the file is damaged: fetch it with `mnistlab data fetch {name}`")
    assert not (cache_root() / name).exists()


def test_every_load_checks_the_payload_even_with_size_and_mtime_restored(tiny_known, tmp_path):
    """A file changed in place, same size, mtime put back (what `touch -r` does): the old
    size+mtime marker trusted it; every load now hashes the payload, so it is caught."""
    name, offered = tiny_known
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem in FILES:
        (raw / stem).write_bytes(gzip.decompress((offered / f"{stem}.gz").read_bytes()))
    import_folder(name, raw)
    assert len(load_dataset(name).test_labels) == 20
    changed = cache_root() / name / "t10k-images-idx3-ubyte"
    before = changed.stat()
    with open(changed, "r+b") as handle:  # one pixel, in place
        handle.seek(before.st_size - 1)
        last = handle.read(1)[0]
        handle.seek(before.st_size - 1)
        handle.write(bytes([last ^ 0xFF]))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = changed.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(MnistlabError, match="checksum mismatch for t10k-images-idx3-ubyte"):
        load_dataset(name)


def test_loading_writes_nothing_into_the_folder(tiny_known, tmp_path):
    name, offered = tiny_known
    root = tmp_path / "rw"
    root.mkdir()
    offered.rename(root / name)
    before = sorted(os.listdir(root / name))
    assert len(load_dataset(name, data_dir=root).train_labels) == 40
    assert sorted(os.listdir(root / name)) == before


def test_read_only_folder_loads(tiny_known, tmp_path):
    name, offered = tiny_known
    root = tmp_path / "ro"
    root.mkdir()
    (offered).rename(root / name)
    (root / name).chmod(0o555)
    try:
        assert len(load_dataset(name, data_dir=root).train_labels) == 40
    finally:
        (root / name).chmod(0o755)


# --- mirrors and published sizes -------------------------------------------------------------
@pytest.mark.parametrize("name", list(KNOWN_DATASETS))
def test_https_mirrors_come_first(name):
    schemes = [urlparse(url).scheme for url in KNOWN_DATASETS[name].mirrors]
    assert schemes[0] == "https" and set(schemes) <= {"https", "http"}
    assert schemes == sorted(schemes, key=lambda scheme: scheme != "https")


@pytest.mark.parametrize("name", list(KNOWN_DATASETS))
def test_published_sizes_match_the_real_headers(name, shared_datasets):
    """The reader's limit for each known file is its exact size: check it against the header of
    the real file (the first bytes only: cheap)."""
    for stem in FILES:
        with gzip.open(shared_datasets / name / f"{stem}.gz") as handle:
            head = handle.read(16)
        ndim = head[3]
        shape = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
        assert KNOWN_DATASETS[name].payload_bytes[stem] == 4 + 4 * ndim + int(np.prod(shape))


# --- where datasets are looked for -----------------------------------------------------------
def _fake(root: Path, name: str) -> Path:
    """A folder that *looks* complete: lookup checks presence, loading checks content."""
    folder = root / name
    folder.mkdir(parents=True)
    for stem in FILES:
        (folder / f"{stem}.gz").write_bytes(b"")
    return folder


def test_lookup_order(tmp_path, monkeypatch, tiny_known):
    name, _ = tiny_known
    system = tmp_path / "usr-share" / name
    monkeypatch.setitem(KNOWN_DATASETS, name, dataclasses.replace(
        KNOWN_DATASETS[name], system_folders=(system,)))
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    with pytest.raises(MnistlabError, match=f"{name} not found in "):
        dataset_folder(name)
    _fake(system.parent, name)
    assert dataset_folder(name) == system
    cached = _fake(cache_root(), name)
    assert dataset_folder(name) == cached
    env = _fake(tmp_path / "env", name)
    monkeypatch.setenv("MNISTLAB_DATA", str(env.parent))
    assert dataset_folder(name) == env
    explicit = _fake(tmp_path / "explicit", name)
    assert dataset_folder(name, explicit.parent) == explicit
    with pytest.warns(UserWarning, match="--data-dir .*empty: no folder; read "):
        assert dataset_folder(name, tmp_path / "empty") == env  # a missing data_dir falls through
    assert [how for _, how in search_folders(name, explicit.parent)] == [
        "--data-dir", "MNISTLAB_DATA", "cache", "system"]


def test_info_says_a_passed_over_data_dir_once(tmp_path, monkeypatch, shared_datasets):
    """dataset_info located the folder a second time (to say how it was found): two warnings."""
    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        info = dataset_info("mnist", data_dir=tmp_path / "nowhere")
    assert [str(w.message) for w in said if "--data-dir" in str(w.message)] == [
        f"--data-dir {tmp_path / 'nowhere'}: no folder; read mnist from "
        f"{shared_datasets / 'mnist'} (MNISTLAB_DATA) instead"]
    assert info["found via"] == "MNISTLAB_DATA"


def test_fetch_says_a_passed_over_data_folder_once(http_root, tiny_known, tmp_path,
                                                  monkeypatch):
    """Hunt: `data fetch` with MNISTLAB_DATA naming no folder warned twice, the data looked
    for before the fetch and again after it."""
    from mnistlab.cli import main

    name, offered = tiny_known
    root, base = http_root
    _serve(root, "good", offered)
    monkeypatch.setitem(KNOWN_DATASETS, name, dataclasses.replace(
        KNOWN_DATASETS[name], mirrors=(f"{base}/good/",)))
    fetch(name)  # in the cache: nothing to download
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "nowhere"))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert main(["data", "fetch", name]) == 0
    assert [str(w.message).split(":")[0] for w in said] == [f"MNISTLAB_DATA {tmp_path}/nowhere"]


def test_a_relative_cache_is_said_as_the_folder_it_is(tmp_path, monkeypatch):
    """MNISTLAB_CACHE=relcache printed `relcache/mnist` (data path, fetch's "ready in"), where
    --data-dir and MNISTLAB_DATA are made absolute: a path that moved with the shell."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTLAB_CACHE", "relcache")
    assert cache_root() == tmp_path / "relcache"


@pytest.mark.parametrize("mirror,said", [
    ("/srv/mnist", "a mirror needs an address starting http:// or https:// (to import a folder "
                   "of the files, give it with --from DIR)"),
    ("ftp://127.0.0.1/mnist", "a mirror needs an address starting http:// or https://"),
    ("", "a mirror needs an address starting http://"),
    ("http://127.0.0.1:99999/x", "a mirror needs a port from 1 to 65535"),
    ("https://me:secret@/x", "'https://me:***@/x': not a download address; a mirror needs a "
                             "host after the //"),
    # the file names were put after the query: a folder's listing read as each file, and
    # the error printed the token
    ("http://127.0.0.1:8765/good?token=secret", "'http://127.0.0.1:8765/good'?...: a mirror is "
                                                "a folder's address"),
    ("http://127.0.0.1:8765/good#x", "'http://127.0.0.1:8765/good'#...: a mirror is a folder's "
                                     "address, which each file's name is added to; leave out "
                                     "the part from #"),
    ("http://127.0.0.1:8765/good?", "leave out the part from ?"),  # an empty query: the same
])
def test_a_mirror_that_is_no_download_address_is_refused_before_any_download(
        mirror, said, monkeypatch, tmp_path):
    """It was tried file by file and failed with requests' words ("MissingSchema: Invalid URL
    ... Perhaps you meant https://?") and "check the network"."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MnistlabError) as info:
        fetch("mnist", mirrors=[mirror])
    assert said in str(info.value) and "network" not in str(info.value)
    assert "secret" not in str(info.value)
    assert not (tmp_path / "cache").exists()


def test_debian_folder_is_searched_for_fashion_mnist_only():
    assert Path("/usr/share/datasets/fashion-mnist") in [
        f for f, _ in search_folders("fashion-mnist")]
    assert [how for _, how in search_folders("mnist")][-1] == "cache"


def test_not_found_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(MnistlabError) as info:
        dataset_folder("mnist", tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'mnist'} (lacks train-labels-idx1-ubyte, " in message
    assert message.endswith("run `mnistlab data fetch mnist` or point --data-dir / MNISTLAB_DATA "
                            "at a folder holding mnist/*.gz")
    with pytest.raises(MnistlabError, match="unknown name 'kmnist'; known: mnist, fashion-mnist"):
        dataset_folder("kmnist")


def test_dataset_info(tiny_known, tiny_idx_dir):
    name, offered = tiny_known
    import_folder(name, offered)
    info = dataset_info(name)
    assert info["folder"] == str(cache_root() / name) and info["found via"] == "cache"
    assert info["verified"] is True and info["train images"] == 40
    assert info["test per class"] == [2] * 10 and info["image size"] == "28x28"
    assert set(info["files"]) == {f"{stem}.gz" for stem in FILES}
    custom = dataset_info(str(tiny_idx_dir))
    assert custom["verified"] is False and custom["found via"] == "folder given"
    assert dataset_folder(str(tiny_idx_dir)) == Path(custom["folder"]).resolve()
    assert custom["classes"][0] == "class-0" and custom["train per class"] == [60] * 10


def test_a_damaged_copy_read_before_the_cache_says_fetching_alone_will_not_do(tiny_known,
                                                                              tmp_path,
                                                                              monkeypatch):
    """A fetch writes the cache, which --data-dir and MNISTLAB_DATA come before: advising it
    alone left the user in a loop of the same error."""
    name, offered = tiny_known
    root = tmp_path / "mine"
    root.mkdir()
    offered.rename(root / name)
    labels = root / name / "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(labels.read_bytes()))
    payload[-1] ^= 1
    labels.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(MnistlabError) as info:
        load_dataset(name, data_dir=root)
    message = str(info.value)
    assert "checksum mismatch for t10k-labels-idx1-ubyte" in message
    assert (f"that copy is in {root / name} (from --data-dir), which is read before mnistlab's "
            "cache, so fetching alone does not replace it" in message)
    assert "re-download" not in message  # its own advice, then "fetching alone" (review)
    (root / name).rename(cache_root() / name)  # the same damage in the cache: a fetch mends it
    with pytest.raises(MnistlabError) as info:
        load_dataset(name)
    assert "that copy is in" not in str(info.value)
    system = tmp_path / "usr-share" / name  # a system folder is read after the cache: the same
    monkeypatch.setitem(KNOWN_DATASETS, name, dataclasses.replace(
        KNOWN_DATASETS[name], system_folders=(system,)))
    system.parent.mkdir()
    (cache_root() / name).rename(system)
    with pytest.raises(MnistlabError) as info:
        load_dataset(name)
    assert "checksum mismatch" in str(info.value) and "that copy is in" not in str(info.value)


@pytest.mark.parametrize("wrong", ["file", "missing", "dataset folder"])
def test_mnistlab_data_named_wrongly_says_what_it_names(tiny_known, tmp_path, monkeypatch,
                                                        wrong):
    name, offered = tiny_known
    given = {"file": offered / "train-images-idx3-ubyte.gz", "missing": tmp_path / "nowhere",
             "dataset folder": offered}[wrong]
    monkeypatch.setenv("MNISTLAB_DATA", str(given))
    with pytest.raises(MnistlabError) as info:
        dataset_folder(name)
    expected = {"file": "MNISTLAB_DATA names a file; it should name the folder that holds tiny/",
                "missing": "MNISTLAB_DATA names a folder that does not exist",
                "dataset folder": "MNISTLAB_DATA names a dataset folder itself; it should name "
                                  "the folder above it"}[wrong]
    assert f"{given / name} ({expected})" in str(info.value)


def test_a_killed_fetch_s_download_folder_is_removed_by_a_later_fetch(shared_datasets,
                                                                      monkeypatch):
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    import_folder("mnist", shared_datasets / "mnist")  # cached and verified: nothing to download
    stale, live = cache_root() / ".fetch-killed", cache_root() / ".fetch-running-now"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\0" * 1000)  # half a download
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    fetch("mnist", mirrors=[_dead_url()])
    assert not stale.exists()
    assert live.exists()  # another process's fetch, running now


def test_a_relative_data_dir_is_named_as_an_absolute_folder(tiny_known, tmp_path, monkeypatch):
    name, offered = tiny_known
    offered.rename(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert dataset_folder(name, ".") == tmp_path / "." / name
    assert dataset_folder(name, ".").is_absolute()


@pytest.mark.parametrize("kind, said", [
    ("missing", "no folder"), ("file", "a file"), ("empty", "no complete mnist/ inside"),
    ("itself", "the dataset's own folder, where the folder above it is meant")])
def test_a_data_dir_that_is_no_folder_is_not_passed_over_in_silence(kind, said, shared_datasets,
                                                                   tmp_path, monkeypatch):
    """`--data-dir /tmp/typo` read the data from MNISTLAB_DATA without a word; so did a folder
    without mnist/ in it, or mnist/ itself."""
    from mnistlab.data.sources import locate

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    given = tmp_path / "typo"
    if kind == "file":
        given.write_text("")
    if kind == "empty":
        given.mkdir()
    if kind == "itself":
        given = shared_datasets / "mnist"
    with pytest.warns(UserWarning, match=f"--data-dir {given}: {said}; read mnist from "):
        folder, how = locate("mnist", given)
    assert how == "MNISTLAB_DATA" and folder == shared_datasets / "mnist"


def test_a_file_where_the_cache_s_dataset_folder_goes_is_said(tmp_path, monkeypatch):
    """`data info mnist` with a file named mnist in the cache said "run `mnistlab data fetch
    mnist`", which then failed on that file."""
    from mnistlab.data.sources import locate

    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    (tmp_path / "mnist").write_text("")
    with pytest.raises(MnistlabError, match=f"mnist not found in {tmp_path / 'mnist'} \\(a file, "
                                            "not a folder: move it aside, then fetch\\)"):
        locate("mnist")


def test_fetch_given_a_folder_for_a_name_says_how_to_import_it(tmp_path, capsys):
    """It said "(a folder of IDX files works too)", which fetch does not take."""
    from mnistlab.cli import main

    assert main(["data", "fetch", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "(to import a folder of its IDX files: mnistlab data fetch NAME --from DIR)")


def test_a_cache_that_cannot_be_written_names_the_variable_that_moves_it(tmp_path, monkeypatch,
                                                                       capsys, shared_datasets):
    """fetch said "give a folder on a disk that is not read-only", but takes no folder: the
    variable that chooses it was in no help or message."""
    from mnistlab.cli import main

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "file"))
    assert main(["data", "fetch", "mnist", "--from", str(shared_datasets / "mnist")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'file' / 'mnist'}: the dataset cache cannot be "
                          "written: cannot create the folder")
    assert err.endswith("set MNISTLAB_CACHE to a folder you can write: MNISTLAB_CACHE=DIR "
                        "mnistlab data fetch mnist")
    # a file where the dataset's folder goes: moved aside, as train says (hunt: only the
    # variable was named)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    (tmp_path / "mnist").write_text("")
    assert main(["data", "fetch", "mnist", "--from", str(shared_datasets / "mnist")]) == 2
    assert "not a folder; move that file aside, or set MNISTLAB_CACHE" in capsys.readouterr().err


def test_data_path_of_a_folder_without_the_idx_files_is_refused(tmp_path, capsys):
    """`mnistlab data path /tmp` printed /tmp, as if it held a dataset."""
    from mnistlab.cli import main

    assert main(["data", "path", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path}: not a dataset folder (it holds none of the four IDX files); give "
        "a folder holding the four IDX files")


def test_a_dataset_named_by_its_file_or_by_a_folder_of_datasets_says_which_folder(
        shared_datasets, capsys):
    """`data path FILE` said "unknown name" and `data info` of a folder holding mnist/ (what
    `data fetch --from` takes) said only that a file was missing (hunt)."""
    from mnistlab.cli import main

    image = shared_datasets / "mnist" / "train-images-idx3-ubyte.gz"
    for command in ("path", "info"):
        assert main(["data", command, str(image)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: {image}: a file, not a folder; give the folder that holds the four IDX "
            f"files ({shared_datasets / 'mnist'}), or a known name (mnist, fashion-mnist)")
    assert main(["data", "info", str(shared_datasets)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"; it holds the dataset folders fashion-mnist, mnist: give one of them "
        f"({shared_datasets / 'fashion-mnist'}), or a known name (fashion-mnist, mnist) with "
        f"--data-dir {shared_datasets}")


@pytest.mark.parametrize("kind, said", [
    ("missing", "no folder"), ("incomplete", "no complete mnist/ inside"), ("absent", None)])
def test_an_mnistlab_data_that_does_not_hold_the_dataset_is_said(kind, said, shared_datasets,
                                                                 tmp_path, monkeypatch):
    """MNISTLAB_DATA naming a folder that is not there, or a mnist/ missing files, read the
    cache's copy without a word (--data-dir said it). A folder without mnist/ at all is a
    setting for other datasets: looked past in silence."""
    from mnistlab.data.sources import locate

    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for file in (shared_datasets / "mnist").glob("*.gz"):
        (cache / "mnist" / file.name).symlink_to(file)
    monkeypatch.setenv("MNISTLAB_CACHE", str(cache))
    given = tmp_path / "mine"
    if kind == "incomplete":
        (given / "mnist").mkdir(parents=True)
        (given / "mnist" / "t10k-labels-idx1-ubyte.gz").symlink_to(
            shared_datasets / "mnist" / "t10k-labels-idx1-ubyte.gz")
    if kind == "absent":
        (given / "fashion-mnist").mkdir(parents=True)
    monkeypatch.setenv("MNISTLAB_DATA", str(given))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        folder, how = locate("mnist")
    assert how == "cache" and folder == cache / "mnist"
    told = [str(w.message) for w in seen]
    assert told == ([] if said is None else [
        f"MNISTLAB_DATA {given}: {said}; read mnist from {cache / 'mnist'} (cache) instead"])


def test_fetch_of_a_dataset_already_read_from_mnistlab_data_downloads_nothing(
        shared_datasets, tmp_path, monkeypatch, capsys):
    """`data fetch mnist` with MNISTLAB_DATA holding it downloaded all the same (and failed
    offline without a word of the copy every command reads). A damaged copy there is no
    reason not to fetch."""
    import mnistlab.data
    from mnistlab.cli import main

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    fetched = []
    monkeypatch.setattr(mnistlab.data, "fetch", lambda name, **kw: fetched.append(name) or
                        tmp_path / "cache" / name)
    assert main(["data", "fetch", "mnist"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert said.startswith(f"mnist: already in {shared_datasets / 'mnist'} (MNISTLAB_DATA), "
                           "where every command reads it; nothing downloaded")
    assert fetched == [] and not (tmp_path / "cache").exists()
    damaged = tmp_path / "data" / "mnist"
    damaged.mkdir(parents=True)
    for file in (shared_datasets / "mnist").glob("*.gz"):
        (damaged / file.name).write_bytes(file.read_bytes()[:-100] if "t10k-labels" in file.name
                                          else file.read_bytes())
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "data"))
    assert main(["data", "fetch", "mnist"]) == 0 and fetched == ["mnist"]


def test_an_import_read_after_mnistlab_data_s_copy_says_so(shared_datasets, tmp_path,
                                                           monkeypatch, capsys):
    """`data fetch mnist --from DIR` with MNISTLAB_DATA holding mnist said "ready in" the
    cache, where no command reads it: the copy read first is named."""
    from mnistlab.cli import main

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    assert main(["data", "fetch", "mnist", "--from", str(shared_datasets / "mnist")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert said == (f"mnist: ready in {tmp_path / 'cache' / 'mnist'}; commands read the copy "
                    f"in {shared_datasets / 'mnist'} (MNISTLAB_DATA) first; unset "
                    "MNISTLAB_DATA to read this one")
    monkeypatch.delenv("MNISTLAB_DATA")
    assert main(["data", "fetch", "mnist", "--from", str(shared_datasets / "mnist")]) == 0
    assert " ".join(capsys.readouterr().out.split()) == (
        f"mnist: ready in {tmp_path / 'cache' / 'mnist'}")


def test_another_dataset_s_folder_as_data_dir_is_not_called_this_one_s(shared_datasets,
                                                                        monkeypatch):
    """--data-dir .../mnist while reading fashion-mnist was told "the dataset's own folder":
    MNIST's, not this one's."""
    from mnistlab.data.sources import locate

    monkeypatch.setenv("MNISTLAB_DATA", str(shared_datasets))
    given = shared_datasets / "mnist"
    with pytest.warns(UserWarning, match=r"--data-dir .*mnist: a dataset's folder \(mnist/\), "
                                         "where the folder above it is meant; read fashion-mnist"):
        locate("fashion-mnist", given)


def test_fetch_from_a_folder_that_is_not_there_is_one_line(tmp_path, capsys):
    """`data fetch mnist --from ~/Downloads/mnist` with a mistyped folder: one line naming it,
    exit 2."""
    from mnistlab.cli import main

    missing = tmp_path / "Downloads" / "mnist"
    assert main(["data", "fetch", "mnist", "--from", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {missing}: not a folder; give the folder holding the four "
                           "IDX files")


@pytest.mark.parametrize("damage", ["cut", "empty"])
def test_a_damaged_file_in_the_cache_names_the_fetch_that_mends_it(tmp_path, monkeypatch,
                                                                   shared_datasets, damage):
    """A cached gzip cut short said "download or export it again"; a checksum mismatch of the
    same file named `mnistlab data fetch mnist` (hunt)."""
    from mnistlab.data import load_dataset

    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    for file in (shared_datasets / "mnist").glob("*.gz"):
        (tmp_path / "mnist" / file.name).symlink_to(file)
    cut = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = cut.read_bytes()
    cut.unlink()
    cut.write_bytes(data[:len(data) // 2] if damage == "cut" else b"")
    with pytest.raises(MnistlabError, match=r"t10k-labels-idx1-ubyte.gz: .*; re-download it "
                                            r"with `mnistlab data fetch mnist`$"):
        load_dataset("mnist")


def test_an_import_of_a_damaged_file_says_to_copy_it_again(shared_datasets, tmp_path):
    """`data fetch mnist --from DIR` with a gzip cut short was told to train on it as data of
    one's own (a checksum mismatch's advice; review)."""
    from mnistlab.data import import_folder

    source = tmp_path / "mnist"
    source.mkdir()
    for file in (shared_datasets / "mnist").glob("*.gz"):
        (source / file.name).write_bytes(file.read_bytes())
    cut = source / "t10k-labels-idx1-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:2000])
    with pytest.raises(MnistlabError, match=r"damaged gzip data .*; copy or export that file "
                                            r"again, or fetch it with `mnistlab data fetch "
                                            r"mnist`$"):
        import_folder("mnist", source)


@pytest.mark.parametrize("given, said", [("MNIST", " (did you mean mnist?)"),
                                         ("Fashion-MNIST", " (did you mean fashion-mnist?)"),
                                         ("kmnist", "")])
def test_a_known_name_in_capitals_is_suggested(given, said, tmp_path, monkeypatch):
    """`load_dataset("MNIST")`, as papers write it, had no "did you mean mnist?" (hunt)."""
    from mnistlab.data import load_dataset

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MnistlabError) as err:
        load_dataset(given)
    assert str(err.value).startswith(f"dataset: {given!r}{said} is neither a known dataset")


def test_finding_the_cache_imports_no_downloader(tmp_path):
    """Hunt: cache_root imported pooch for its os_cache, which imports tqdm.auto: every
    notebook's first training call printed tqdm's "IProgress not found" warning."""
    import subprocess
    import sys

    code = ("import sys\nfrom mnistlab.data.sources import cache_root\ncache_root()\n"
            "print(sorted(m for m in ('pooch', 'tqdm.auto') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env.pop("MNISTLAB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True)
    assert done.stdout.strip() == "[]"
