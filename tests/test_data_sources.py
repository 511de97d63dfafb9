"""Downloads against a real local HTTP server; imports; where datasets are looked for."""

import functools
import gzip
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mnistlab.cli import main
from mnistlab.data import FILES, cache_root, dataset_folder, fetch, import_folder, load_dataset
from mnistlab.errors import MnistlabError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (root folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _mirror(root: Path, name: str, source: Path) -> str:
    folder = root / name
    folder.mkdir()
    for stem in FILES:
        (folder / f"{stem}.gz").write_bytes((source / f"{stem}.gz").read_bytes())
    return name


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_fetch_verifies_and_caches(http_root, shared_datasets):
    root, base = http_root
    _mirror(root, "good", shared_datasets / "mnist")
    folder = fetch("mnist", mirrors=[f"{base}/good/"])
    assert folder == cache_root() / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in FILES)
    ds = load_dataset("mnist", data_dir=cache_root())
    assert len(ds.train_labels) == 60000 and len(ds.test_labels) == 10000
    assert ds.train_labels.bincount().tolist() == MNIST_TRAIN_COUNTS


def test_corrupted_download_is_never_cached(http_root, shared_datasets):
    root, base = http_root
    _mirror(root, "bad", shared_datasets / "mnist")
    target = root / "bad" / "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(target.read_bytes()))
    payload[100] ^= 0xFF  # one label changed
    target.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(MnistlabError, match="checksum mismatch for t10k-labels-idx1-ubyte"):
        fetch("mnist", mirrors=[f"{base}/bad/"])
    cached = {p.name for p in (cache_root() / "mnist").iterdir()}
    assert "t10k-labels-idx1-ubyte.gz" not in cached
    assert not [n for n in cached if n.startswith(".")]  # no half-downloads left behind


def test_dead_first_mirror_falls_back_to_the_second(http_root, shared_datasets):
    root, base = http_root
    _mirror(root, "second", shared_datasets / "mnist")
    folder = fetch("mnist", mirrors=[_dead_url(), f"{base}/missing/", f"{base}/second/"])
    assert len(list(folder.glob("*.gz"))) == 4


def test_all_mirrors_dead_lists_what_was_tried(tmp_path):
    with pytest.raises(MnistlabError, match="could not fetch train-images-idx3-ubyte of mnist"):
        fetch("mnist", mirrors=[_dead_url()], timeout=2)


def test_fashion_offered_as_mnist_is_named(tmp_path, shared_datasets):
    with pytest.raises(MnistlabError, match="these files are Fashion-MNIST, not MNIST: use "
                                            "--dataset fashion-mnist"):
        import_folder("mnist", shared_datasets / "fashion-mnist")
    wrong = tmp_path / "root" / "mnist"
    wrong.parent.mkdir()
    wrong.symlink_to(shared_datasets / "fashion-mnist")
    with pytest.raises(MnistlabError, match="these files are Fashion-MNIST"):
        load_dataset("mnist", data_dir=tmp_path / "root")


def test_import_raw_files(tmp_path, shared_datasets):
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem in FILES:
        (raw / stem).write_bytes(gzip.decompress((shared_datasets / "mnist" / f"{stem}.gz")
                                                 .read_bytes()))
    assert main(["data", "fetch", "mnist", "--from", str(raw)]) == 0
    ds = load_dataset("mnist", data_dir=cache_root())
    assert ds.test_labels.bincount().tolist()[:2] == [980, 1135]


def test_lookup_order(tmp_path, monkeypatch):
    def fake(root):
        folder = root / "mnist"
        folder.mkdir(parents=True)
        for stem in FILES:
            (folder / f"{stem}.gz").write_bytes(b"")
        return root

    explicit, env = fake(tmp_path / "explicit"), fake(tmp_path / "env")
    monkeypatch.setenv("MNISTLAB_DATA", str(env))
    assert dataset_folder("mnist", explicit) == explicit / "mnist"
    assert dataset_folder("mnist") == env / "mnist"
    monkeypatch.delenv("MNISTLAB_DATA")
    fake(cache_root())
    assert dataset_folder("mnist") == cache_root() / "mnist"


def test_not_found_says_how_to_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    with pytest.raises(MnistlabError, match="run `mnistlab data fetch mnist` or point --data-dir"):
        dataset_folder("mnist", tmp_path)
    assert main(["data", "path", "kmnist"]) == 2
    assert "unknown name 'kmnist'" in capsys.readouterr().err
