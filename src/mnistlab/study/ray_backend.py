"""The Ray backend: a study's units of work (cohorts and single runs) as Ray tasks.

The driver plans units exactly as the local backend does (same cohorts, longest first), ships
each dataset once through the object store, and submits one task per unit with the requested
CPUs and GPUs. A task trains in a temporary folder on its node and returns every run's summary,
history and run-folder files; the driver writes the files into the study folder and records the
run in the store as each task finishes, so an interrupted study keeps whatever finished. Ray
re-runs a task whose worker or node died; units are seeded, so the retry gives the same numbers
and each run is recorded once. Progress bars travel back through a small mailbox actor, in batches.
"""

from __future__ import annotations

import collections
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import interrupt, raycluster
from ..errors import MnistlabError
from ..training import cohort
from .backends import (
    OnDone,
    QueueReporter,
    ReporterFor,
    plan_units,
    read_back,
    start_relay,
    train_unit,
    unit_cost,
)
from .plan import PlannedRun


def _checkpoint_of(unit: list[PlannedRun], study_dir: Path, runs_dir: str) -> Path:
    """Where an interrupted attempt on this machine left the unit's epoch checkpoint."""
    if len(unit) == 1:
        return study_dir / runs_dir / unit[0].key / "checkpoint.pt"
    return cohort.checkpoint_dir(study_dir, [r.key for r in unit]) / "checkpoint.pt"


def _resume_files(unit: list[PlannedRun], study_dir: Path, runs_dir: str) -> dict[str, bytes]:
    """Checkpoints an earlier, interrupted attempt left in the study folder (paths relative to
    the task's scratch folder), so the task continues from the last finished epoch as a local
    resume would."""
    checkpoint = _checkpoint_of(unit, study_dir, runs_dir)
    if len(unit) == 1:
        key = unit[0].key
        return {f"runs/{key}/checkpoint.pt": checkpoint.read_bytes()} if checkpoint.is_file() \
            else {}
    relative = checkpoint.parent.relative_to(study_dir)
    return {str(relative / name): data
            for name, data in raycluster.pack_folder(checkpoint.parent).items()}


def _resumed_done(unit: list[PlannedRun], study_dir: Path, runs_dir: str) -> None:
    """Once the unit's runs are recorded, the checkpoint it was resumed from has done its job,
    as a local resume removes it (the task removed only its own copy of it)."""
    checkpoint = _checkpoint_of(unit, study_dir, runs_dir)
    if len(unit) == 1:
        checkpoint.unlink(missing_ok=True)
    else:
        cohort.remove_checkpoint(checkpoint)


class ProgressMailbox:
    """A Ray actor (made in `execute`) holding progress events until the driver takes them."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def put_batch(self, items: list[Any]) -> None:
        self.items.extend(items)

    def take_all(self) -> list[Any]:
        items, self.items = self.items, []
        return items


class ProgressEvents:
    """A task's side of the mailbox, for its QueueReporter: events go out in batches, at most
    every `every` seconds (at once for a run's start and end), without waiting for delivery.

    Ray runs tasks at nice 15 and the driver at 0, so every call the driver has to answer takes
    the CPU from training: one call per event made Ray 4.8x slower inside the training loop on
    two cores, and one per event even fire-and-forget still 1.7x."""

    def __init__(self, mailbox: Any, every: float = 0.5) -> None:
        self.mailbox, self.every = mailbox, every
        self.buffer: list[Any] = []
        self.sent = 0.0

    def put(self, item: Any) -> None:
        self.buffer.append(item)
        now = time.monotonic()
        if item[1] != "step_progress" or now - self.sent >= self.every:
            self.mailbox.put_batch.remote(self.buffer)  # Ray keeps one caller's calls in order
            self.buffer, self.sent = [], now


class MailboxReader:
    """The driver's side, for start_relay: `get(timeout)` like a queue's, taking everything
    waiting in the mailbox with one call."""

    def __init__(self, ray: Any, mailbox: Any, poll: float = 0.25) -> None:
        self.ray, self.mailbox, self.poll = ray, mailbox, poll
        self.buffer: collections.deque = collections.deque()

    def get(self, timeout: float) -> Any:
        if not self.buffer:
            try:
                self.buffer.extend(self.ray.get(self.mailbox.take_all.remote()))
            except self.ray.exceptions.RayActorError:  # the mailbox is gone (killed at the
                raise EOFError from None  # end while this call waited): the relay just ends
            if not self.buffer:
                time.sleep(max(timeout, self.poll))
                raise queue.Empty
        return self.buffer.popleft()


def train_unit_task(unit_id: int, unit: list[PlannedRun], datasets: dict, threads: int,
                    resume: dict[str, bytes], events: Any, lang: str) -> list[tuple]:
    """Runs on a Ray worker: train one unit in a scratch folder, return (key, summary, history,
    packed run folder) per run."""
    cache = raycluster.worker_cache(datasets, threads)
    with tempfile.TemporaryDirectory(prefix="mnistlab-unit-") as scratch:
        scratch_dir = Path(scratch)
        raycluster.unpack_folder(resume, scratch_dir)
        reporter = QueueReporter(events, unit_id)
        outcome = train_unit(unit, scratch_dir, cache, reporter, lang)
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
        # a missing extra or cluster, or tasks no node can hold: said before any work
        raycluster.check_fits(raycluster.connect(address), self.resources)

    def execute(self, runs: list[PlannedRun], study_dir: Path, on_done: OnDone,
                reporter_for: ReporterFor, *, runs_dir: str = "runs",
                lang: str = "en") -> None:
        """Train `runs`; each run's folder lands in study_dir/runs_dir/<key> (the figures of
        those scored on the test set in `lang`). Folders written
        here but never recorded are read back, as the local backend does (a final model
        scored, then the study killed; a study.db gone: they were all trained again)."""
        units = []
        for unit in sorted(plan_units(runs, self.cohorts, study_dir), key=unit_cost,
                           reverse=True):
            done, rest = read_back(unit, study_dir, runs_dir)
            for key, summary, history in done:
                on_done(next(r for r in unit if r.key == key), summary, history)
            units += [rest] if rest else []
        if not units:
            return
        ray = raycluster.connect(self.address)
        head = raycluster.HeadWatch(ray)
        head.check(now=True)  # a study's second call (its final model) after the head is gone
        datasets = raycluster.ship_datasets(ray, [u[0].config for u in units])
        task = ray.remote(train_unit_task).options(**self.resources.options())
        mailbox = ray.remote(num_cpus=0)(ProgressMailbox).remote()
        stop = threading.Event()
        relay = start_relay(MailboxReader(ray, mailbox), units, reporter_for, stop)
        pending: dict[Any, list[PlannedRun]] = {}
        lost = False
        try:
            for i, unit in enumerate(units):
                ref = task.remote(i, unit, raycluster.datasets_for(unit[0].config, datasets),
                                  self.resources.threads,
                                  _resume_files(unit, study_dir, runs_dir),
                                  ProgressEvents(mailbox), lang)
                pending[ref] = unit
            with interrupt.listening():
                self._gather(ray, head, pending, study_dir, runs_dir, on_done)
        except raycluster.HeadLost:
            lost = True  # nothing left there to cancel or kill
            raise
        except BaseException:
            for ref in pending:  # Ctrl-C or a failed unit: what finished is already recorded
                ray.cancel(ref, force=True)
            raise
        finally:
            stop.set()
            relay.join(timeout=2)
            if not lost:
                ray.kill(mailbox)

    def _gather(self, ray: Any, head: raycluster.HeadWatch,
                pending: dict[Any, list[PlannedRun]], study_dir: Path, runs_dir: str,
                on_done: OnDone) -> None:
        """Record each task's runs as it finishes; stop on Ctrl-C (the caller cancels the rest:
        their runs resume on the next attempt from the checkpoints this folder holds)."""
        while pending:
            if interrupt.requested():
                raise KeyboardInterrupt
            head.check()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                unit = pending.pop(ref)
                for key, summary, history, packed in self._result(ray, ref, unit):
                    raycluster.unpack_folder(packed, study_dir / runs_dir / key)
                    on_done(next(r for r in unit if r.key == key), summary, history)
                _resumed_done(unit, study_dir, runs_dir)

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
