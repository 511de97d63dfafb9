"""Ray, the engine under `--backend ray`: connecting, shipping data, and bringing files home.

Studies and searches hand Ray *units of work* (a cohort of runs, or one Optuna trial) as tasks
with resource requests; each task trains on whichever node Ray picks and sends its results back
to the driver (the `mnistlab` process), which alone writes the study store, the Optuna storage
and the output folder. So worker nodes need mnistlab and its dependencies installed, but no
datasets and no shared disk:

- the driver loads each dataset once and puts it in Ray's object store; tasks read it from there
  (`ship_datasets`, `worker_cache`);
- a task trains into a temporary folder on its node and returns the run folder's files as bytes
  (`pack_folder`); the driver writes them into place (`unpack_folder`).

Ray retries a task whose worker process or node died (`TaskResources.retries`); training is
seeded, so a retried unit gives the same numbers, and the driver records each run once.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import stat
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

from . import files
from .config import TrainConfig
from .errors import MnistlabError, first_few

INSTALL_HINT = 'pip install "mnistlab[ray]" (or: pip install ray)'
BACKENDS = ("local", "ray")


def require_ray() -> Any:
    """Ray, imported; one line where it is missing, or where a file of the user's named ray.py
    (the current folder is on `python -m`'s path) stands in its place: that gave tracebacks
    such as "module 'ray' has no attribute 'is_initialized'", exit 1."""
    import importlib.util

    try:
        import ray
    except Exception as exc:  # noqa: BLE001 - a ray.py of the user's may raise anything
        try:
            origin = getattr(importlib.util.find_spec("ray"), "origin", None) or ""
        except (ImportError, ValueError):
            origin = ""
        if origin and _not_ray(Path(origin)):
            raise _shadowed(origin) from None
        if isinstance(exc, ImportError) and not origin:
            raise MnistlabError(f"backend ray: Ray is not installed; {INSTALL_HINT}, or use "
                                "--backend local") from None
        raise MnistlabError(f"backend ray: importing Ray failed ({type(exc).__name__}: "
                            f"{str(exc)[:160]}); reinstall it: {INSTALL_HINT}") from None
    if not all(hasattr(ray, name) for name in ("init", "remote", "get", "is_initialized")):
        folders = list(getattr(ray, "__path__", []))  # a ray/ folder without __init__.py
        raise _shadowed(getattr(ray, "__file__", None) or (folders[0] if folders else "?"))
    return ray


def _not_ray(origin: Path) -> bool:
    """Whether the module found as `ray` is a file of the user's, not Ray installed somewhere
    other than site-packages (pip install --target, a source checkout): Ray is a package
    with its _private folder."""
    return origin.name != "__init__.py" or not (origin.parent / "_private").is_dir()


def _shadowed(origin: str) -> MnistlabError:
    return MnistlabError(f"backend ray: 'ray' is {origin}, not Ray: a file or folder of that "
                         "name stands in its place; rename it, or run from another folder")


@dataclass(frozen=True)
class TaskResources:
    """What each task asks Ray for. `cpus` is also the task's torch thread count: small
    networks run fastest on one thread each (see study/backends.py)."""

    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 3  # times a task is re-run after its worker process or node dies

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus) and self.cpus > 0):
            raise MnistlabError(f"task-cpus: must be a positive number, got {self.cpus}")
        if not (math.isfinite(self.gpus) and self.gpus >= 0):
            raise MnistlabError(f"task-gpus: must be a number >= 0, got {self.gpus}")
        if self.retries < 0:
            raise MnistlabError(f"task-retries: must be a whole number >= 0, got {self.retries}")

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))

    def options(self) -> dict[str, Any]:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": self.retries,
                "retry_exceptions": False}  # a bug or a bad setting fails at once


@dataclass(frozen=True)
class Placement:
    """Where the work of a study or search runs: `backend` local (this machine) or ray (a Ray
    cluster at `address`, each task asking for `resources`). The Ray-only settings given with
    the local backend are a mistake (said in one line), not silently ignored."""

    backend: str = "local"
    address: str | None = None  # None: "auto" (the cluster this machine joined)
    task_cpus: float | None = None  # None: TaskResources' default
    task_gpus: float | None = None
    task_retries: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise MnistlabError(f"backend: unknown value {self.backend!r}; choose "
                                f"{' or '.join(BACKENDS)}")
        given = [name for name in ("address", "task_cpus", "task_gpus", "task_retries")
                 if getattr(self, name) is not None]
        if self.backend == "local" and given:
            flag = "--" + given[0].replace("_", "-")
            raise MnistlabError(f"{flag.lstrip('-')}: {flag} is for --backend ray; add "
                                "--backend ray, or drop it to train on this machine")
        self.resources()  # checked now, not when the first task is sent

    def flags(self) -> list[str]:
        """The command-line flags that give this placement."""
        if not self.on_ray:
            return []
        out = ["--backend", self.backend]
        for name in ("address", "task_cpus", "task_gpus", "task_retries"):
            value = getattr(self, name)
            if value is not None:
                out += ["--" + name.replace("_", "-"), str(value)]
        return out

    @property
    def on_ray(self) -> bool:
        return self.backend == "ray"

    def target(self) -> str:
        return self.address or "auto"

    def resources(self) -> TaskResources:
        given = {name: getattr(self, f"task_{name}") for name in ("cpus", "gpus", "retries")
                 if getattr(self, f"task_{name}") is not None}
        return TaskResources(**given)


def connect(address: str | None) -> Any:
    """Join the Ray cluster at `address` ("auto" or None: the one this machine is part of, or
    $RAY_ADDRESS's; HOST:PORT: that head node; "local": a private one-machine Ray started for
    this command)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    # "local" is passed as such: Ray starts a private one (given None for it, Ray joined
    # $RAY_ADDRESS or a cluster running here), and a stale RAY_ADDRESS hung auto without a word
    target = address or "auto"
    from_env = os.environ.get("RAY_ADDRESS", "")
    if target == "auto" and from_env not in ("", "auto", "local"):  # what ray.init reads
        try:
            _check_reachable(from_env)
        except MnistlabError as exc:
            raise MnistlabError(f"{exc}; that address is $RAY_ADDRESS's, which --address auto "
                                "reads: set it right or unset it") from None
    elif target == "auto" and (recorded := _recorded_cluster()) is not None:
        try:  # a cluster that died uncleanly left its address there: Ray retried it for
            _check_reachable(recorded[1])  # minutes, deaf to Ctrl-C and SIGTERM (hunt)
        except MnistlabError as exc:
            raise MnistlabError(f"{exc}; that address is the cluster Ray recorded in "
                                f"{recorded[0]}, which --address auto reads: that cluster is "
                                "gone (`ray stop` clears the record)") from None
    elif target not in ("local", "auto"):
        _check_reachable(target)
    with _stderr_captured() as captured:  # Ray's core logs each connection retry there
        try:
            ray.init(address=target, logging_level="ERROR", log_to_driver=False,
                     include_dashboard=False, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            failure: BaseException | None = exc
        else:
            failure = None
    if failure is None:
        return ray
    first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
    if "InvalidAuthToken" in captured.text or "AuthenticationError" in type(failure).__name__:
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":  # no token sent (hunt:
            raise MnistlabError(  # "copy its token" to where it already was)
                f"backend ray: the cluster at {address!r} uses token authentication and this "
                "command sent no token; `export RAY_AUTH_MODE=token` here, with the cluster's "
                "token (`ray get-auth-token` on the head) in ~/.ray/auth_token or "
                "RAY_AUTH_TOKEN_PATH") from None
        raise MnistlabError(
            f"backend ray: the cluster at {address!r} uses token authentication and refused "
            "this machine's token; copy its token (`ray get-auth-token` on the head) to "
            "~/.ray/auth_token here, or point RAY_AUTH_TOKEN_PATH at it") from None
    raise MnistlabError(
        f"backend ray: cannot join a Ray cluster at {address!r} ({first}); start one with "
        "`ray start --head` and pass its HOST:PORT, or use --address local for a one-machine "
        "Ray") from None


class HeadWatch:
    """Whether the cluster's head (its GCS) still answers, asked at most every `every` seconds:
    Ray itself notices a lost head only after a minute, then ends the driver with pages of its
    own log. Two failed connections in a row are a lost head, not a busy one."""

    def __init__(self, ray: Any, every: float = 3.0) -> None:
        self.address = ray.get_runtime_context().gcs_address
        self.every, self.checked, self.failed = every, time.monotonic(), 0

    def check(self, now: bool = False) -> None:
        """Ask, if `every` seconds have passed (`now`: at once, and again a second later if
        that gets no answer: before calls that wait on the head, such as making an actor)."""
        if not now and time.monotonic() - self.checked < self.every:
            return
        self._ask()
        if now and self.failed:
            time.sleep(1)
            self._ask()

    def get(self, ray: Any, ref: Any, what: str = "an actor") -> Any:
        """`ray.get(ref)`, asking after the head meanwhile: a call to an actor on a lost head
        waits until Ray ends the process. An actor gone with its node (the head stopped:
        Ray's ActorUnavailableError, a traceback) is the head lost where the head is gone,
        and one line where it still answers."""
        try:
            while not ray.wait([ref], timeout=0.5)[0]:
                self.check()
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self.check(now=True)  # HeadLost where the head is gone
            raise MnistlabError(
                f"backend ray: {what} on the cluster is gone ({type(exc).__name__}); what "
                "finished is kept: re-run the same command", exit_code=1) from None

    def _ask(self) -> None:
        self.checked = time.monotonic()
        host, _, port = self.address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
            self.failed = 0
        except (OSError, ValueError):
            self.failed += 1
        if self.failed >= 2:
            raise HeadLost(
                f"backend ray: the Ray cluster's head at {self.address} stopped answering; what "
                "finished is kept: re-run the same command once the cluster is back, or "
                "without --backend ray", exit_code=1)


class HeadLost(MnistlabError):
    """The cluster is gone: nothing can be cancelled or killed on it any more."""


class _Captured:
    text = ""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Captured]:
    """Send file descriptor 2 (where Ray's C++ core writes) to a temporary file meanwhile."""
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


def _recorded_cluster() -> tuple[Path, str] | None:
    """(the file, the address) of the cluster Ray records as this machine's (`ray start`
    writes it; --address auto joins it), if any; None where a Ray runs on this machine now,
    which Ray joins whatever the record says. Its temporary folder found as Ray finds it."""
    try:
        from ray._private import services

        if services.find_gcs_addresses():
            return None
    except Exception:  # noqa: BLE001 - Ray's own lookup moved: the record alone
        pass
    temp = os.environ.get("RAY_TMPDIR") or (
        os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None) or (
        "/tmp" if os.name == "posix" else tempfile.gettempdir())
    record = Path(temp) / "ray" / "ray_current_cluster"
    try:
        address = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return (record, address) if address else None


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect says so in seconds."""
    if address.startswith("ray://"):
        raise MnistlabError(f"address: {address} is a Ray Client address, which mnistlab does "
                            "not use; give the head node's HOST:PORT (`ray start --head` prints "
                            "it; port 6379 by default), auto or local")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MnistlabError(f"address: {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, a "
                            "port from 1 to 65535), auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise MnistlabError(
            f"backend ray: nothing answers at {address} ({exc.strerror or exc}); start the head "
            f"node there with `ray start --head --port {port}`, or use --address local for a "
            "one-machine Ray") from None


def check_fits(ray: Any, resources: TaskResources) -> None:
    """Refuse a request no node of the cluster can hold: Ray would queue every task for it
    and wait, without a word, for a node that never comes."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(node.get("CPU", 0.0) >= resources.cpus and node.get("GPU", 0.0) >= resources.gpus
           for node in nodes):
        return
    asked = f"--task-cpus {resources.cpus:g}" + (f" --task-gpus {resources.gpus:g}"
                                                  if resources.gpus else "")

    def has(node: dict) -> str:
        return " and ".join(f"{n:g} {unit}{'' if n == 1 else 's'}"
                            for n, unit in ((node.get("CPU", 0.0), "CPU"),
                                            (node.get("GPU", 0.0), "GPU")))

    shown = first_few((has(node) for node in nodes), 4, "; ")
    raise MnistlabError(f"{asked}: no node of the Ray cluster can run such a task (its "
                        f"node{'s have' if len(nodes) != 1 else ' has'} {shown}), so it would "
                        "wait for ever; ask for less per task, or add a node that has it "
                        "before the run (on a cluster that adds nodes on demand, start such a "
                        "node first)")


def task_slots(ray: Any, resources: TaskResources) -> int:
    """How many tasks the cluster runs at once with these requests (at least one)."""
    total = ray.cluster_resources()
    slots = total.get("CPU", 1.0) / resources.cpus
    if resources.gpus:
        slots = min(slots, total.get("GPU", 0.0) / resources.gpus)
    return max(1, int(slots))


# --- data ------------------------------------------------------------------------------------
def data_key(config: TrainConfig) -> tuple[str, str]:
    return (config.dataset, config.data_dir)


def datasets_for(config: TrainConfig, refs: dict[tuple[str, str], Any]) -> dict:
    """The one shipped dataset a task training `config` needs."""
    return {data_key(config): refs[data_key(config)]}


def ship_datasets(ray: Any, configs: list[TrainConfig],
                  load: Callable[[TrainConfig], Any] | None = None) -> dict[tuple[str, str], Any]:
    """Load each dataset the configs use, here (with `load`: a DataCache's, which may hold it
    already), and put it in the object store once."""
    from .data import load_dataset

    load = load or (lambda config: load_dataset(config.dataset, data_dir=config.data_dir))
    refs: dict[tuple[str, str], Any] = {}
    for config in configs:
        key = data_key(config)
        if key not in refs:
            refs[key] = ray.put(load(config))
    return refs


_worker_state: dict[str, Any] = {}  # one per worker process, kept across its tasks


def worker_cache(datasets: dict[tuple[str, str], Any], threads: int) -> Any:
    """A task's DataCache, holding the shipped datasets (no disk reads on worker nodes).

    Ray keeps worker processes between tasks, so the cache (and the splits it derives) lives
    as long as the process; a dataset is fetched from the object store once per process."""
    import ray
    import torch

    from .data.cache import DataCache

    torch.set_num_threads(threads)
    cache = _worker_state.setdefault("cache", DataCache())
    fetched = _worker_state.setdefault("fetched", {})
    for (name, data_dir), ref in datasets.items():
        if fetched.get((name, data_dir)) != ref.hex():
            cache.add(name, data_dir, ray.get(ref))
            fetched[(name, data_dir)] = ref.hex()
    return cache


# --- files -----------------------------------------------------------------------------------
def pack_folder(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` by its relative path (a run folder is a few MB at
    most). Symbolic links, to files or folders, are skipped and never followed: a link in a
    run folder must not ship a file from elsewhere on the worker (/etc/passwd)."""
    if not folder.is_dir():
        return {}
    packed: dict[str, bytes] = {}
    for root, dirs, names in os.walk(folder):  # followlinks=False: linked folders not entered
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            data = _read_unlinked(path)
            if data is not None:
                packed[path.relative_to(folder).as_posix()] = data
    return packed


def _read_unlinked(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file and not a symbolic link, else None
    (O_NOFOLLOW: a file swapped for a link after the walk saw it is not followed either)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # a link (ELOOP), or gone
        return None
    with os.fdopen(fd, "rb") as handle:
        if path.is_symlink() or not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def unpacked_name_problem(name: Any, names: set[str]) -> str:
    """Why `name` cannot be written under the folder a reply is unpacked into ("" if it can):
    only plain relative paths, whose parts are neither empty, "." nor "..", are written."""
    if not isinstance(name, str) or not name:
        return "not a file name"
    if any(unicodedata.category(c)[0] == "C" for c in name):
        return "it holds a NUL or control character"
    if name.startswith("/"):
        return "an absolute path"
    if "\\" in name or PureWindowsPath(name).drive:
        return "a backslash or a drive: a Windows path"
    parts = name.split("/")
    if ".." in parts:
        return "a '..' part would climb outside the folder"
    if any(part in ("", ".") for part in parts):
        return "an empty or '.' part names no file"
    if any("/".join(parts[:i]) in names for i in range(1, len(parts))):
        return "a file of the same reply has the name of its folder"
    return ""


def unpack_folder(packed: dict[str, bytes], folder: Path) -> None:
    """Write packed files under `folder`, each atomically. Every name is checked before
    anything is written: one that is not a plain relative path inside `folder` (absolute,
    climbing out with "..", through a link, empty, with NUL) refuses the whole reply."""
    root = folder.resolve()
    names = set(packed)
    for name, data in packed.items():
        problem = unpacked_name_problem(name, names)
        if not problem and not isinstance(data, bytes):
            problem = "its content is not bytes"
        if not problem:
            target = (folder / name).resolve()
            if root == target or root not in target.parents:
                problem = "it resolves outside the folder, through a symbolic link"
        if problem:
            raise MnistlabError(f"backend ray: a task sent back a file named {name!r}, which "
                                f"cannot be written in {folder} ({problem}); refusing to write "
                                "anything of that reply")
    for name, data in packed.items():
        files.write_bytes(folder / name, data)
