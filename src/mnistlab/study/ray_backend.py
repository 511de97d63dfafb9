"""The Ray backend: a study's units of work (cohorts and single runs) as Ray tasks.

The driver plans units exactly as the local backend does (same cohorts, longest first), ships
each dataset once through the object store, and submits one task per unit with the requested
CPUs and GPUs. A task trains in a temporary folder on its node and returns every run's summary,
history and run-folder files; the driver writes the files into the study folder and records the
run in the store as each task finishes, so an interrupted study keeps whatever finished. Ray
re-runs a task whose worker or node died; units are seeded, so the retry gives the same numbers
and each run is recorded once. Progress bars travel back through a Ray queue.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from .. import cohort, raycluster
from ..errors import MnistlabError
from .backends import (
    OnDone,
    QueueReporter,
    ReporterFor,
    plan_units,
    start_relay,
    train_unit,
    unit_cost,
)
from .plan import PlannedRun


def _resume_files(unit: list[PlannedRun], study_dir: Path, runs_dir: str) -> dict[str, bytes]:
    """Checkpoints an earlier, interrupted attempt left in the study folder (paths relative to
    the task's scratch folder), so the task continues from the last finished epoch as a local
    resume would."""
    if len(unit) == 1:
        ckpt = study_dir / runs_dir / unit[0].key / "checkpoint.pt"
        return {f"runs/{unit[0].key}/checkpoint.pt": ckpt.read_bytes()} if ckpt.is_file() else {}
    folder = cohort.checkpoint_dir(study_dir, [r.key for r in unit])
    relative = folder.relative_to(study_dir)
    return {str(relative / name): data for name, data in raycluster.pack_folder(folder).items()}


class ProgressEvents:
    """What a task's QueueReporter puts its events into: a Ray queue, without waiting for each
    event to arrive (a blocking call per event would slow the training loop; Ray delivers one
    caller's calls to an actor in order)."""

    def __init__(self, queue: Any) -> None:
        self.actor = queue.actor

    def put(self, item: Any) -> None:
        self.actor.put_nowait.remote(item)


def train_unit_task(unit_id: int, unit: list[PlannedRun], datasets: dict, threads: int,
                    resume: dict[str, bytes], events: Any) -> list[tuple]:
    """Runs on a Ray worker: train one unit in a scratch folder, return (key, summary, history,
    packed run folder) per run."""
    cache = raycluster.worker_cache(datasets, threads)
    with tempfile.TemporaryDirectory(prefix="mnistlab-unit-") as scratch:
        scratch_dir = Path(scratch)
        raycluster.unpack_folder(resume, scratch_dir)
        reporter = QueueReporter(events, unit_id)
        outcome = train_unit(unit, scratch_dir, cache, reporter)
        return [(key, summary, history,
                 raycluster.pack_folder(scratch_dir / "runs" / key))
                for key, summary, history in outcome]


class RayBackend:
    """Train a study's units as Ray tasks on the cluster at `address` ("auto", HOST:PORT, or
    "local" for a one-machine Ray). `cohorts` as in LocalBackend; `resources` per task."""

    name = "ray"

    def __init__(self, *, address: str | None = "auto", cohorts: bool = True,
                 resources: raycluster.TaskResources | None = None) -> None:
        self.address = address
        self.cohorts = cohorts
        self.resources = resources or raycluster.TaskResources()
        raycluster.connect(address)  # a missing extra or cluster is said before any work

    def execute(self, runs: list[PlannedRun], study_dir: Path, on_done: OnDone,
                reporter_for: ReporterFor, *, runs_dir: str = "runs") -> None:
        """Train `runs`; each run's folder lands in study_dir/runs_dir/<key>."""
        if not runs:
            return
        ray = raycluster.connect(self.address)
        from ray.util.queue import Queue

        units = sorted(plan_units(runs, self.cohorts), key=unit_cost, reverse=True)
        datasets = raycluster.ship_datasets(ray, [u[0].config for u in units])
        task = ray.remote(train_unit_task).options(**self.resources.options())
        events = Queue(actor_options={"num_cpus": 0})
        stop = threading.Event()
        relay = start_relay(events, units, reporter_for, stop)
        pending: dict[Any, list[PlannedRun]] = {}
        try:
            for i, unit in enumerate(units):
                needed = {k: v for k, v in datasets.items()
                          if k == raycluster.data_key(unit[0].config)}
                ref = task.remote(i, unit, needed, self.resources.threads,
                                  _resume_files(unit, study_dir, runs_dir),
                                  ProgressEvents(events))
                pending[ref] = unit
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    unit = pending.pop(ref)
                    for key, summary, history, packed in self._result(ray, ref, unit):
                        raycluster.unpack_folder(packed, study_dir / runs_dir / key)
                        on_done(next(r for r in unit if r.key == key), summary, history)
        except BaseException:
            for ref in pending:  # Ctrl-C or a failed unit: what finished is already recorded
                ray.cancel(ref, force=True)
            raise
        finally:
            stop.set()
            relay.join(timeout=2)
            ray.kill(events.actor)

    def _result(self, ray: Any, ref: Any, unit: list[PlannedRun]) -> list[tuple]:
        what = (f"run {unit[0].key}" if len(unit) == 1
                else f"a cohort of {len(unit)} runs ({unit[0].key}, ...)")
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if hasattr(exc, "cause") else None
            if isinstance(cause, MnistlabError):
                raise MnistlabError(str(cause), exit_code=cause.exit_code) from None
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError) as exc:
            raise MnistlabError(
                f"backend ray: the worker training {what} died {self.resources.retries + 1} "
                f"times ({type(exc).__name__}); finished runs are recorded, re-run the same "
                "command to continue") from None
