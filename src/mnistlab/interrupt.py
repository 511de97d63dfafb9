"""Stopping cleanly on Ctrl-C or SIGTERM: a flag that training loops read between steps.

A terminal's Ctrl-C sends SIGINT to every process of the command (the study and its worker
processes). Raised as `KeyboardInterrupt` at a random point of each of them, it interrupts
writes and queue flushes half-way and leaves the pool waiting on workers that wait on it. So
instead, while `handling()` is on (the CLI turns it on for the whole command):

- the first SIGINT or SIGTERM only sets a flag, if some code is `listening()` for it (a
  training loop, or a study waiting on its workers); each loop finishes its current step,
  keeps what it has, and returns; the command then exits 130 (SIGINT) or 143 (SIGTERM);
- where nothing listens (loading data, writing the report) the signal raises
  `KeyboardInterrupt` at once, as Python's default handler would;
- a second signal always raises `KeyboardInterrupt` at once.

Worker processes ignore both signals (`ignore_signals`) and read the flag their parent shares
with them (`StopFlag` lives in shared memory), so a study stops as one.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """A stop request, readable from any process it was handed to (shared memory). Holds the
    signal number that asked for the stop, 0 while none did."""

    def __init__(self, context: Any = None) -> None:
        self._value = (context or mp).RawValue("i", 0)

    def set(self, signum: int = signal.SIGINT) -> None:
        self._value.value = int(signum)

    def clear(self) -> None:
        self._value.value = 0

    def is_set(self) -> bool:
        return self._value.value != 0

    @property
    def signum(self) -> int:
        return self._value.value


_flag = StopFlag()
_listeners = 0
_lock = threading.Lock()
_handling = 0  # handling() is on (the command line): the command reads the flag at its end
_adopted = False  # a worker process: the flag is its parent's
_calls = 0  # public entry points running (see `scoped`)


def flag() -> StopFlag:
    """This process's flag (to hand to worker processes)."""
    return _flag


def adopt(shared: StopFlag) -> None:
    """In a worker process: read the stop requests of the parent that handed us `shared`."""
    global _flag, _adopted
    _flag = shared
    _adopted = True


def requested() -> bool:
    """True once a stop was asked for: the caller should stop at its next safe point."""
    return _flag.is_set()


def exit_code(default: int = 130) -> int:
    """What a command that stopped on a signal exits with: 128 + the signal's number."""
    return 128 + _flag.signum if _flag.is_set() else default


def request(signum: int = signal.SIGINT) -> None:
    """Ask every listener to stop (what the first signal does); also usable from code."""
    _flag.set(signum)


@contextlib.contextmanager
def listening() -> Iterator[None]:
    """Declare that this code checks `requested()` often (at least every second or so)."""
    global _listeners
    with _lock:
        _listeners += 1
    try:
        yield
    finally:
        with _lock:
            _listeners -= 1


def _handle(signum: int, _frame: Any) -> None:
    first = not _flag.is_set()
    _flag.set(signum)
    if first and _listeners > 0:
        return  # the listeners stop at their next step
    raise KeyboardInterrupt


@contextlib.contextmanager
def handling() -> Iterator[StopFlag]:
    """Turn SIGINT and SIGTERM into stop requests for the duration (main thread only;
    elsewhere a no-op). Starts with a cleared flag; restores the previous handlers and clears
    the flag after."""
    global _handling
    main = threading.current_thread() is threading.main_thread()
    if main:
        _flag.clear()
        previous = {s: signal.signal(s, _handle) for s in SIGNALS}
        unraisable = sys.unraisablehook
        sys.unraisablehook = functools.partial(_unraisable, unraisable)
    _handling += 1  # the command reads its flag at its end (in a thread too)
    try:
        yield _flag
    finally:
        _handling -= 1
        if main:
            for s, handler in previous.items():
                signal.signal(s, handler)
            sys.unraisablehook = unraisable
            _flag.clear()  # a later call in the same process (a notebook) starts unstopped


def _unraisable(previous: Callable[[Any], None], unraisable: Any) -> None:
    """A signal's KeyboardInterrupt raised where Python cannot raise (a garbage collector's
    callback) is kept quiet: its stop is in the flag, which the command reads at its end
    (it printed "Exception ignored in ..." and a traceback above the interrupted line)."""
    if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and _flag.is_set()):
        previous(unraisable)


F = TypeVar("F", bound=Callable[..., Any])


def scoped(function: F) -> F:
    """A public entry point (train, a study, a search) whose stop requests end with it: in
    Python, with no command line around it, a stop asked for (`request()`, a hook) left the
    flag set, and every later call in the process stopped at its first step, untrained. The
    outermost call clears it as it returns; the command line and worker processes clear
    their own (the command reads it for its exit code; a worker's is its parent's)."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _calls
        with _lock:
            _calls += 1
        try:
            return function(*args, **kwargs)
        finally:
            with _lock:
                _calls -= 1
                if _calls == 0 and not _handling and not _adopted:
                    _flag.clear()

    return wrapper  # type: ignore[return-value]


_held = 0  # a signal that came while the command started (hold_from_start), not yet taken


def _keep(signum: int, _frame: Any) -> None:
    global _held
    if _held:  # the second: stop at once, as a second Ctrl-C always does (nothing to keep yet)
        os.write(2, b"interrupted\n")
        os._exit(128 + _held)
    _held = signum


def hold_from_start() -> None:
    """The command line's first step, before anything heavy is imported: Ctrl-C or SIGTERM
    is kept, not raised, until the command takes it (`take_held`, inside `handling()`). Cut
    while Python imported torch or numpy, it printed their traceback (a half-imported numpy
    then failed as `cannot load module more than once`) and exited 1. As `handling()` does
    later, this takes a signal the command was started ignoring (a background job of a
    script ignores SIGINT): the stop would otherwise be lost while starting and honoured
    once running."""
    for s in SIGNALS:
        signal.signal(s, _keep)


def held() -> int:
    """The signal kept since the start and not yet taken, 0 if none."""
    return _held


def take_held() -> None:
    """Stop now if a signal came while the command started: KeyboardInterrupt, with the flag
    set to it (so the exit code is 130 or 143), as for a stop where nothing listens."""
    global _held
    if _held:
        _flag.set(_held)
        _held = 0
        raise KeyboardInterrupt


def ignore_signals() -> None:
    """In a worker process: let the parent decide when to stop (through the shared flag).
    Signals blocked while it started (`held_for_children`) are ignored from now on. Also the
    command line's last step, once its command has returned: nothing is left to stop."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


@contextlib.contextmanager
def held_for_children() -> Iterator[None]:
    """Start worker processes inside this: Ctrl-C and SIGTERM are held back here and in the
    children they start (a terminal's Ctrl-C reaches every process of the group), so a child
    importing torch is never cut mid-import with a traceback; the children ignore them once
    `ignore_signals` runs, and this process takes one held back when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no process groups
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
