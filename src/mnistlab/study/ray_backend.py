"""The Ray backend: a study's units of work (cohorts and single runs) as Ray tasks.

The driver plans units exactly as the local backend does (same cohorts, longest first), ships
each dataset once through the object store, and submits one task per unit with the requested
CPUs and GPUs. A task trains in a temporary folder on its node and returns every run's summary,
history and run-folder files; the driver writes the files into the study folder and records the
run in the store as each task finishes. Ray re-runs a task whose worker or node died; units are
seeded, so the retry gives the same numbers and each run is recorded once. Progress bars travel
back through a small mailbox actor, in batches; its answers carry a Ctrl-C at the driver to the
tasks, which stop after their current step and send their last epoch checkpoint home, so an
interrupted study keeps what finished and resumes the rest from its last whole epoch.
"""

from __future__ import annotations

import collections
import math
import queue
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import interrupt, raycluster
from ..errors import MnistlabError
from ..training import cohort
from .backends import (
    GRACE_SECONDS,
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
    """A Ray actor (made in `execute`) holding progress events until the driver takes them,
    and the driver's request that the tasks stop (a Ctrl-C), which each batch's answer says."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.stopping = False

    def put_batch(self, items: list[Any]) -> bool:
        self.items.extend(items)
        return self.stopping

    def ask_to_stop(self) -> None:
        self.stopping = True

    def asked_to_stop(self) -> bool:
        return self.stopping

    def take_all(self) -> list[Any]:
        items, self.items = self.items, []
        return items


class ProgressEvents:
    """A task's side of the mailbox, for its QueueReporter: events go out in batches, at most
    every `every` seconds (at once for a run's start and end), without waiting for delivery.

    Ray runs tasks at nice 15 and the driver at 0, so every call the driver has to answer takes
    the CPU from training: one call per event made Ray 4.8x slower inside the training loop on
    two cores, and one per event even fire-and-forget still 1.7x.

    So a stop travels back on those calls, for no call more: each batch's answer says whether
    the driver asked the tasks to stop; read without waiting as the next batch goes, it stops
    this task's training after its current step (`interrupt.request()` in this worker), as a
    Ctrl-C stops a local study."""

    def __init__(self, mailbox: Any, every: float = 0.5) -> None:
        self.mailbox, self.every = mailbox, every
        self.buffer: list[Any] = []
        self.sent = 0.0
        self.answer: Any = None  # the last batch's: whether to stop

    def put(self, item: Any) -> None:
        self.buffer.append(item)
        now = time.monotonic()
        if item[1] != "step_progress" or now - self.sent >= self.every:
            if self.stop_asked():
                interrupt.request()
            self.answer = self.mailbox.put_batch.remote(self.buffer)  # Ray keeps one
            self.buffer, self.sent = [], now  # caller's calls in order

    def stop_asked(self, ask: bool = False) -> bool:
        """Whether the last answer says stop (one not yet back: not yet); `ask`: ask now and
        wait for the answer."""
        import ray

        if ask:
            self.answer = self.mailbox.asked_to_stop.remote()
        if self.answer is None or not ray.wait([self.answer], timeout=None if ask else 0)[0]:
            return False
        return bool(ray.get(self.answer))


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


@dataclass(frozen=True)
class Stopped:
    """A task's answer when it stopped on request before its unit finished: the files of the
    folder that holds the unit's epoch checkpoint (a single run's folder, a cohort's checkpoint
    folder; see `_checkpoint_of`), by path relative to it; none where it never started."""

    files: dict[str, bytes]


def train_unit_task(unit_id: int, unit: list[PlannedRun], datasets: dict, threads: int,
                    resume: dict[str, bytes], events: ProgressEvents,
                    lang: str) -> list[tuple] | Stopped:
    """Runs on a Ray worker: train one unit in a scratch folder, return (key, summary, history,
    packed run folder) per run; stopped on request (see ProgressEvents), what a local study
    keeps in its folder: the unit's last epoch checkpoint (Stopped)."""
    if events.stop_asked(ask=True):  # started after the stop: as a local study's units that
        return Stopped({})  # had not started, it never starts
    cache = raycluster.worker_cache(datasets, threads)
    with tempfile.TemporaryDirectory(prefix="mnistlab-unit-") as scratch:
        scratch_dir = Path(scratch)
        raycluster.unpack_folder(resume, scratch_dir)
        reporter = QueueReporter(events, unit_id)
        try:
            outcome = train_unit(unit, scratch_dir, cache, reporter, lang)
        except KeyboardInterrupt:  # the stop asked, or Ray's own cancel: the checkpoint goes home
            return Stopped(raycluster.pack_folder(_checkpoint_of(unit, scratch_dir,
                                                                 "runs").parent))
        finally:
            interrupt.flag().clear()  # this worker's next task starts unstopped
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
            with interrupt.listening():  # a second Ctrl-C raises in here: cancelled below
                if self._gather(ray, head, pending, study_dir, runs_dir, on_done):
                    self._stop_tasks(ray, head, mailbox, pending, study_dir, runs_dir, on_done)
                    raise KeyboardInterrupt
        except raycluster.HeadLost:
            lost = True  # nothing left there to cancel or kill
            raise
        except BaseException:
            for ref in pending:  # a failed unit, a second Ctrl-C, or tasks that did not stop
                ray.cancel(ref, force=True)  # in time: what finished is already recorded
            raise
        finally:
            stop.set()
            relay.join(timeout=2)
            if not lost:
                ray.kill(mailbox)

    def _gather(self, ray: Any, head: raycluster.HeadWatch,
                pending: dict[Any, list[PlannedRun]], study_dir: Path, runs_dir: str,
                on_done: OnDone, *, until: float = math.inf) -> bool:
        """Take each task's answer as it comes (`_take`); True where a Ctrl-C stopped this
        first. `until` (a time.monotonic()): the tasks were told to stop, take what comes
        until then."""
        while pending and time.monotonic() < until:
            if until == math.inf and interrupt.requested():
                return True
            head.check()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                self._take(ray, ref, pending.pop(ref), study_dir, runs_dir, on_done)
        return False

    def _take(self, ray: Any, ref: Any, unit: list[PlannedRun], study_dir: Path,
              runs_dir: str, on_done: OnDone) -> None:
        """Write a finished unit's run folders and record its runs; a stopped one's checkpoint
        goes where the next attempt resumes from (`_resume_files`), as a local stop leaves it."""
        answer = self._result(ray, ref, unit)
        if isinstance(answer, Stopped):
            raycluster.unpack_folder(answer.files,
                                     _checkpoint_of(unit, study_dir, runs_dir).parent)
            return
        for key, summary, history, packed in answer:
            raycluster.unpack_folder(packed, study_dir / runs_dir / key)
            on_done(next(r for r in unit if r.key == key), summary, history)
        _resumed_done(unit, study_dir, runs_dir)

    def _stop_tasks(self, ray: Any, head: raycluster.HeadWatch, mailbox: Any,
                    pending: dict[Any, list[PlannedRun]], study_dir: Path, runs_dir: str,
                    on_done: OnDone) -> None:
        """After a Ctrl-C: the tasks stop after their current step (told through the
        mailbox); for up to GRACE_SECONDS, what they finished is recorded and the stopped ones'
        checkpoints come home, so the next attempt resumes them from their last whole epoch.
        Those that do not answer in time are named here and cancelled by the caller."""
        if not pending:
            return
        mailbox.ask_to_stop.remote()
        self._gather(ray, head, pending, study_dir, runs_dir, on_done,
                     until=time.monotonic() + GRACE_SECONDS)
        if pending:
            units = sum(len(unit) for unit in pending.values())
            warnings.warn(f"backend ray: {len(pending)} task{'s' * (len(pending) != 1)} did "
                          f"not stop within {GRACE_SECONDS:g} s of the Ctrl-C and "
                          f"{'were' if len(pending) != 1 else 'was'} cancelled: {units} "
                          f"run{'s' * (units != 1)} will train again from the checkpoint this "
                          "folder holds, or from the start", stacklevel=2)

    def _result(self, ray: Any, ref: Any, unit: list[PlannedRun]) -> list[tuple] | Stopped:
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
