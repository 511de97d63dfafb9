"""Test machinery shipped for the project's own tests and benchmarks, not the API: a real
multi-node Ray cluster on this machine's loopback (`loopback_cluster`), and a child command
whose failure is its own last line (`run_child`).

    with loopback_cluster(nodes=2) as cluster:   # two `ray start` nodes on 127.0.0.2
        env = {**os.environ, **cluster.env}      # a driver needs the cluster's token
        subprocess.run(["mnistlab", "study", ..., "--backend", "ray", "--address",
                        cluster.address], env=env)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import MnistlabError
from .raycluster import INSTALL_HINT

LOOPBACK = "127.0.0.2"  # Ray swaps 127.0.0.1 and "localhost" for the machine's outward address


@dataclass(frozen=True)
class LoopbackCluster:
    address: str  # HOST:PORT of the head, for --address
    groups: list[int]  # process groups of the `ray start` commands
    env: dict[str, str]  # what a driver's environment needs to join (the token)


def run_child(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv)` with its output captured as text; a failure raises SystemExit
    with the child's own last line (a benchmark's CalledProcessError hid it in a traceback)."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines()
                or ["no output"])[-1]
        raise SystemExit(f"`{' '.join(map(str, argv[1:4]))} …` failed (exit "
                         f"{done.returncode}): {said}")
    return done


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def loopback_cluster(nodes: int = 2, cpus_per_node: int = 1, *,
                     object_store_mib: int = 300) -> Iterator[LoopbackCluster]:
    """A real Ray cluster of `nodes` nodes on this machine, reachable only on loopback: the
    head and each further node are started with `ray start` as on separate machines, with
    token authentication and a token of its own (so neither a ~/.ray/auth_token left by an
    earlier `ray.init()` nor its absence changes anything). A driver joins with `env` added to
    its environment. Stops exactly this cluster on exit (`ray stop` would stop every Ray on the
    machine), also on error. For tests, benchmarks and trying multi-node behaviour on one
    machine."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        raise MnistlabError(f"backend ray: no `ray` command beside {sys.executable}; "
                            f"{INSTALL_HINT}")
    port = _free_port()
    # short: Ray's unix sockets live under it, and their paths are limited to ~107 bytes
    temp = tempfile.mkdtemp(prefix="mlray", dir="/tmp")
    address = f"{LOOPBACK}:{port}"
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))  # 256 bits, as `ray get-auth-token --generate`
    token.chmod(0o600)
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    common = ["--num-cpus", str(cpus_per_node), "--num-gpus", "0", "--object-store-memory",
              str(object_store_mib * 2**20), "--node-ip-address", LOOPBACK,
              "--disable-usage-stats"]
    roles = [["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp,
              "--ray-client-server-port", str(_free_port())]]
    roles += [["--address", address] for _ in range(nodes - 1)]
    for role in roles:  # Ray's fixed defaults (52365; 10001 above) clash with another cluster
        role += ["--dashboard-agent-listen-port", str(_free_port())]
    groups: list[int] = []
    try:
        for role in roles:
            proc = subprocess.Popen([str(ray_cli), "start", *role, *common],
                                    env={**os.environ, **env, "RAY_USAGE_STATS_ENABLED": "0"},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)  # its daemons stay in this group
            groups.append(proc.pid)
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                raise MnistlabError(f"`ray start {' '.join(role)}` did not finish in 120 s") \
                    from None
            if proc.returncode != 0:
                last = (out.strip().splitlines() or ["no output"])[-1]
                raise MnistlabError(f"`ray start {' '.join(role)}` failed: {last}")
        yield LoopbackCluster(address, groups, env)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, sig)
            time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)
