"""Where a study's runs are trained: the backend interface and the local backend.

A backend gets the runs still to train and calls `on_done(run, summary, history)` once per run
as each finishes; only the caller (the study runner) writes the study store. Work is cut into
*units*: a cohort of runs trained in lockstep (see cohort.py) or a single run.

The local backend trains units in this process, or, with `workers` > 1, in that many worker
processes with one thread each. Small networks are bound by per-step overhead, not arithmetic:
measured here, an MLP step takes 0.65 ms on one thread and 1.1 ms on two (batch 32), and two
one-thread processes run side by side without slowing each other, so two workers train about
three times as many steps per second as one process using both cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .. import files, interrupt, runs
from ..config import TrainConfig
from ..data.cache import DataCache
from ..device import WORKER_MARK, resolve_device
from ..errors import MnistlabError, Said, first_time, own_warnings_in_one_line, said_now
from ..progress import Reporter
from ..records import EpochRecord, RunSummary
from ..training import cohort, train
from .plan import PlannedRun

GRACE_SECONDS = 5.0  # how long stopped workers get to finish their step and write
OnDone = Callable[[PlannedRun, RunSummary, list[EpochRecord]], None]
ReporterFor = Callable[..., Reporter]
Outcome = list[tuple[str, RunSummary, list[EpochRecord]]]  # (run key, summary, history)


def plan_units(runs: list[PlannedRun], cohorts: bool,
               study_dir: Path | None = None) -> list[list[PlannedRun]]:
    """Cut runs into units of work: cohorts where allowed, else one run each. A cohort cut
    short earlier in `study_dir` resumes as it was: grouped anew (more seeds, another memory
    budget) its members would fall into other cohorts, and start over."""
    if not runs:
        return []
    if not cohorts:
        return [[run] for run in runs]
    units = resumed_cohorts(runs, study_dir) if study_dir is not None else []
    taken = {r.key for unit in units for r in unit}
    rest = [r for r in runs if r.key not in taken]
    if rest:
        groups = cohort.group([r.config for r in rest], resolve_device(rest[0].config.device))
        units += [[rest[i] for i in indices] for indices in groups]
    return units


def resumed_cohorts(planned: list[PlannedRun], study_dir: Path) -> list[list[PlannedRun]]:
    """The cohorts with a checkpoint in study_dir/cohorts whose members are all in `planned`:
    a checkpoint's folder is named by its members' keys, matched to `planned` by settings."""
    units: list[list[PlannedRun]] = []
    free = list(planned)
    for path in sorted((study_dir / "cohorts").glob("*/checkpoint.pt")):
        try:
            configs = runs.checkpoint_configs(path)
        except MnistlabError:
            continue  # a damaged checkpoint: the cohort it was starts over
        for test in (False, True):  # a config can be planned twice: an experiment and a final
            members = [next((r for r in free if r.test == test and runs.same_run(c, r.config)),
                            None) or next((r for r in free if runs.same_run(c, r.config)), None)
                       for c in configs]
            if all(members) and cohort.checkpoint_dir(
                    study_dir, [m.key for m in members if m]).name == path.parent.name:
                units.append([m for m in members if m])
                free = [r for r in free if r not in units[-1]]
                break
    return units


def remove_dead_cohorts(study_dir: Path, finished: list[TrainConfig]) -> None:
    """Delete the cohort checkpoints that can never resume: one of whose members is among the
    runs `finished` (a study stopped at 3 seeds, then finished with 1, trained that seed alone
    and left the cohort's checkpoint of 3, tens of MB, for ever: a cohort resumes only with
    all its members to train)."""
    for path in sorted((study_dir / "cohorts").glob("*/checkpoint.pt")):
        try:
            configs = runs.checkpoint_configs(path)
        except MnistlabError:
            continue  # a damaged checkpoint: the doctor's to name, not this to delete
        if any(runs.same_run(c, f) for c in configs for f in finished):
            cohort.remove_checkpoint(path)


def unit_cost(unit: list[PlannedRun]) -> float:
    """A rough cost in seconds-like units, to start the longest work first: per-step overhead
    plus arithmetic (multiply-adds of the dense layers or a conv-net guess), per member."""
    config = unit[0].config
    images = 60_000 - config.val_size if not config.train_subset else config.train_subset
    steps = config.epochs * math.ceil(images / config.batch_size)
    if config.model == "mlp":
        sizes = [784, *config.hidden, 10]
        macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    else:
        macs = 2_000_000 * (2 if config.model == "cnn" else 1)
    per_member = config.epochs * images * macs * 6 / 50e9
    return steps * 5e-4 + len(unit) * per_member


def read_back(unit: list[PlannedRun], study_dir: Path,
              runs_dir: str = "runs") -> tuple[Outcome, list[PlannedRun]]:
    """Of `unit`, the runs trained and written but never recorded (a study.db moved away, a
    failed write, a stop in between) read back, and the runs left to train: all of a cohort
    whose checkpoint resumes them together (some written: the cohort grew, more seeds or
    values while study.db was away)."""
    written = [runs.finished_result(study_dir / runs_dir / r.key, r.config, needs_test=r.test)
               for r in unit]
    done = [(r.key, w.summary, w.history) for r, w in zip(unit, written) if w is not None]
    if len(unit) > 1:
        checkpoint = cohort.checkpoint_dir(study_dir, [r.key for r in unit]) / "checkpoint.pt"
        if len(done) == len(unit):
            cohort.remove_checkpoint(checkpoint)
        elif checkpoint.exists():
            return [], unit
    return done, [r for r, w in zip(unit, written) if w is None]


def train_unit(unit: list[PlannedRun], study_dir: Path, cache: DataCache,
               reporter: Reporter, lang: str = "en") -> Outcome:
    """Train one unit here; KeyboardInterrupt if a run was interrupted (its checkpoint stays).
    The figures of a run scored on the test set say their words in `lang`."""
    if len(unit) == 1:
        run = unit[0]
        result = train(run.config, out=study_dir / "runs" / run.key,
                       splits=cache.splits(run.config), evaluate_test=run.test,
                       write_plots=run.test, reporter=reporter, named_by_settings=True,
                       lang=lang)
        if result.summary.status == "interrupted":
            raise KeyboardInterrupt
        return [(run.key, result.summary, result.history)]
    done, rest = read_back(unit, study_dir)
    if len(rest) < len(unit):
        return done + (train_unit(rest, study_dir, cache, reporter, lang) if rest else [])
    keys = [r.key for r in unit]
    outs = [study_dir / "runs" / key for key in keys]
    checkpoint = cohort.checkpoint_dir(study_dir, keys) / "checkpoint.pt"
    # train() checks these for a run trained alone; here before the cohort trains (a file in
    # a run folder's place failed as its members were written, the cohort trained for nothing)
    files.check_output_folder(study_dir / "runs", "")
    for run, out in zip(unit, outs):
        runs.check_run_folder(out, "")
        runs.check_named_run_folder(out, run.config)
    results = cohort.train_cohort(
        [r.config for r in unit], splits=cache.splits(unit[0].config),
        outs=outs, tests=[r.test for r in unit],
        checkpoint=checkpoint, reporter=reporter, write_plots=True, lang=lang)
    outcome = [(run.key, r.summary, r.history) for run, r in zip(unit, results)]
    cohort.remove_checkpoint(checkpoint)
    return outcome


# --- worker processes --------------------------------------------------------------------------
_worker: dict[str, Any] = {}


WARNING = -1  # the unit number of a worker's warning on the events queue


def _worker_init(events: Any, parent: int, threads: int, stop: interrupt.StopFlag) -> None:
    interrupt.ignore_signals()  # the study decides when to stop, through `stop`
    interrupt.adopt(stop)
    own_warnings_in_one_line()  # a spawned process starts with Python's two-line format

    def forward(message: Any, category: type[Warning], filename: str, lineno: int,
                *_: Any) -> None:  # said by the study process, once (_say_once), under the
        module = next((name for name, m in list(sys.modules.items())  # filters of its module
                       if getattr(m, "__file__", None) == filename), None)
        events.put((WARNING, "", (str(message), category, filename, lineno, module), {}))

    warnings.showwarning = forward
    events.cancel_join_thread()  # an exiting worker never waits for its progress to be read
    torch.set_num_threads(threads)
    _worker.update(events=events, cache=DataCache())

    def watch_parent() -> None:  # a killed study must not leave workers writing to its folder
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def start_relay(events: Any, units: list[list[PlannedRun]], reporter_for: ReporterFor,
                stop: threading.Event,
                raised: list[BaseException] | None = None) -> threading.Thread:
    """A thread drawing workers' progress here: events are (unit index, Reporter method, args,
    kwargs) from a `QueueReporter`; a unit's bar is made at its first event. Once `stop` is
    set it takes what is still waiting, then ends: a unit's last events (its bar's end) can
    arrive after the unit's result, and a bar was left standing partway. A worker's warning
    that a filter makes an error goes to `raised`, for the study to raise (it ended this
    thread, and the study went on without its bars; review)."""
    reporters: dict[int, Reporter] = {}
    raised = [] if raised is None else raised
    said = said_now()  # the study call's record of what it said (this thread's is empty)

    def relay() -> None:
        while True:
            stopping = stop.is_set()
            try:
                unit_id, method, args, kwargs = events.get(timeout=0.1)
            except queue.Empty:
                if stopping:
                    return
                continue
            except (EOFError, OSError):
                return
            if unit_id == WARNING:
                try:
                    _say_once(*args, said=said)
                except Exception as exc:  # a user's "error" filter: as with one worker
                    raised.append(exc)
                continue
            if unit_id not in reporters:
                reporters[unit_id] = reporter_for(units[unit_id][0], len(units[unit_id]))
            getattr(reporters[unit_id], method)(*args, **kwargs)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    return thread


def _say_once(text: str, category: type[Warning], filename: str, lineno: int,
              module: str | None, *, said: Said | None = None) -> None:
    """A worker's warning, said here once (errors.warn_once's record `said`, the study
    call's): each worker said a dataset's stray labels, or a batch larger than the data."""
    if first_time(text, category, said):
        warnings.warn_explicit(text, category, filename, lineno, module=module)


class QueueReporter(Reporter):
    """A worker's reporter: progress travels to the study process, which draws the bars."""

    def __init__(self, events: Any, unit_id: int):
        self.events, self.unit_id = events, unit_id

    def run_started(self, config: Any, epochs: int, steps_per_epoch: int, *,
                    done_epochs: int = 0) -> None:
        self.events.put((self.unit_id, "run_started", (config, epochs, steps_per_epoch),
                         {"done_epochs": done_epochs}))

    def step_progress(self, steps: int, loss: float, accuracy: float) -> None:
        self.events.put((self.unit_id, "step_progress", (steps, loss, accuracy), {}))

    def epoch_ended(self, record: EpochRecord) -> None:
        self.events.put((self.unit_id, "epoch_ended", (record,), {}))

    def run_ended(self, status: str) -> None:
        self.events.put((self.unit_id, "run_ended", (status,), {}))


def _worker_train(unit_id: int, unit: list[PlannedRun], study_dir: str,
                  lang: str) -> Outcome | None:
    """A unit in a worker process; None when it stopped on request (its checkpoint stays)."""
    reporter = QueueReporter(_worker["events"], unit_id)
    try:
        return train_unit(unit, Path(study_dir), _worker["cache"], reporter, lang)
    except KeyboardInterrupt:
        return None


class LocalBackend:
    """Train on this machine. `cohorts`: runs that differ only in learning rate, momentum,
    weight decay, dropout or seed train together in lockstep. `workers`: processes training
    units side by side, one thread each (default: one per CPU core, and one process on a GPU;
    1 = in this process). Workers asked for by number also share a GPU."""

    name = "local"

    def __init__(self, *, cohorts: bool = True, workers: int | None = None) -> None:
        self.cohorts = cohorts
        self.workers = workers if workers is not None else default_workers()
        self.workers_asked = workers is not None  # then they share a GPU too
        self.cache = DataCache()

    def execute(self, runs: list[PlannedRun], study_dir: Path, on_done: OnDone,
                reporter_for: ReporterFor, *, lang: str = "en") -> None:
        """Train `runs` into study_dir/runs, `on_done` as each is recorded; the figures of
        those scored on the test set in `lang`."""
        units = sorted(plan_units(runs, self.cohorts, study_dir), key=unit_cost, reverse=True)
        if self.workers <= 1 or len(units) <= 1 or (_on_gpu(runs) and not self.workers_asked):
            with interrupt.listening():  # Ctrl-C: the unit in training stops after its step
                for unit in units:
                    if interrupt.requested():
                        raise KeyboardInterrupt
                    reporter = reporter_for(unit[0], len(unit))
                    for key, summary, history in train_unit(unit, study_dir, self.cache,
                                                            reporter, lang):
                        on_done(next(r for r in unit if r.key == key), summary, history)
            if interrupt.requested():  # asked while the last unit wrote its folders: what
                raise KeyboardInterrupt  # it finished is recorded; stop before anything else
            return
        self._execute_in_workers(units, study_dir, on_done, reporter_for, lang)

    def _execute_in_workers(self, units: list[list[PlannedRun]], study_dir: Path,
                            on_done: OnDone, reporter_for: ReporterFor, lang: str) -> None:
        """Units in worker processes, recorded here as each finishes. On Ctrl-C/SIGTERM (or an
        error) the workers are told to stop through a shared flag; each finishes its step and
        returns within a few seconds, what finished is recorded, and a worker that does not
        return within GRACE_SECONDS is terminated (its last epoch checkpoint stays)."""
        context = mp.get_context("spawn")  # fork after torch has started threads can hang
        events = context.Queue()
        relay_stop = threading.Event()
        workers_stop = interrupt.StopFlag(context)
        raised: list[BaseException] = []  # a worker's warning made an error here
        relay_thread = start_relay(events, units, reporter_for, relay_stop, raised)
        before = set(mp.active_children())
        pool = cf.ProcessPoolExecutor(
            max_workers=min(self.workers, len(units)), mp_context=context,
            initializer=_worker_init, initargs=(events, os.getpid(), 1, workers_stop))
        try:
            with interrupt.listening():
                _collect(pool, units, study_dir, on_done, workers_stop, lang, raised)
        except BaseException:
            workers_stop.set()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            _end_workers(set(mp.active_children()) - before, GRACE_SECONDS)
            relay_stop.set()
            relay_thread.join(timeout=2)
        if raised:  # a warning made an error, said after the last unit ended
            raise raised[0]


def _unguarded_script() -> str:
    """What to say where the study was started by a Python script of the user's: worker
    processes import it, and one without `if __name__ == "__main__":` starts the study again
    in each (it died as "another process is running this study")."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(script, str) and script.startswith("<"):  # `python - < script.py`: no file
        return (f"; worker processes import the script that started them, and {script} is "
                "no file: save the script to a file and run that, or use workers=1")
    if not script or Path(script).name == "mnistlab" or \
            Path(script).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        return ""  # the command line
    return (f"; if {Path(script).name} starts the study outside `if __name__ == "
            "\"__main__\":`, put that call under it (each worker process imports the script)")


def _collect(pool: cf.ProcessPoolExecutor, units: list[list[PlannedRun]], study_dir: Path,
             on_done: OnDone, workers_stop: interrupt.StopFlag, lang: str,
             raised: list[BaseException]) -> None:
    """Submit every unit and record results as they come; raise KeyboardInterrupt once the
    running units have stopped after a stop request, and what the relay `raised` at once."""
    with interrupt.held_for_children(), _marked_as_workers():  # they start here (at submit)
        pending = {pool.submit(_worker_train, i, unit, str(study_dir), lang): unit
                   for i, unit in enumerate(units)}
    deadline = math.inf
    while pending and time.monotonic() < deadline:
        done, _ = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
        for future in done:
            unit = pending.pop(future)
            if future.cancelled():
                continue
            try:
                outcome = future.result()
            except cf.process.BrokenProcessPool:
                if interrupt.requested():  # a worker stopped by the same Ctrl-C: no crash
                    raise KeyboardInterrupt from None
                raise MnistlabError(
                    "a worker process died (killed, or out of memory?); finished runs are "
                    "kept: re-run the same command to continue, or use --workers 1"
                    + _unguarded_script()) from None
            for key, summary, history in outcome or []:
                on_done(next(r for r in unit if r.key == key), summary, history)
        # a stop, or a worker's warning made an error: what finishes in the grace is kept
        if (interrupt.requested() or raised) and not workers_stop.is_set():
            workers_stop.set(interrupt.flag().signum if interrupt.requested() else 2)
            for future in pending:
                future.cancel()  # units not started yet never start
            deadline = time.monotonic() + GRACE_SECONDS
    if raised:
        raise raised[0]
    if interrupt.requested():
        raise KeyboardInterrupt


_MARKING = threading.Lock()
_marking: dict[str, Any] = {"count": 0, "before": None}  # studies starting workers now


@contextlib.contextmanager
def _marked_as_workers() -> Iterator[None]:
    """The processes started inside this know they are a study's workers (device.WORKER_MARK,
    in their environment): a script they import that trains at its top level is refused at
    once, not trained again in each (a minute each). Counted: studies started from threads
    overlap, and the first to end took the mark from the other's workers, or the last left
    it set for good (review)."""
    with _MARKING:
        if _marking["count"] == 0:
            _marking["before"] = os.environ.get(WORKER_MARK)
            os.environ[WORKER_MARK] = "1"
        _marking["count"] += 1
    try:
        yield
    finally:
        with _MARKING:
            _marking["count"] -= 1
            if _marking["count"] == 0:
                if _marking["before"] is None:
                    os.environ.pop(WORKER_MARK, None)
                else:
                    os.environ[WORKER_MARK] = _marking["before"]


def _end_workers(workers: set[Any], grace: float) -> None:
    """Wait up to `grace` seconds for worker processes to exit; terminate, then kill, the rest."""
    deadline = time.monotonic() + grace
    for process in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in workers:
        if process.is_alive():
            process.terminate()
            process.join(timeout=1)
        if process.is_alive():
            process.kill()
            process.join(timeout=1)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _on_gpu(runs: list[PlannedRun]) -> bool:
    """Whether the runs train on a GPU: one process there by default (cohorts fill it),
    several only when asked for by number."""
    return any(resolve_device(r.config.device).type != "cpu" for r in runs)
