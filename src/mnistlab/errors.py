"""The one exception type for user mistakes.

Anything the user can fix (a bad setting, a missing file, a corrupt download) raises
`MnistlabError` with a one-line message that names the problem and the fix. The CLI prints
that line and exits non-zero; any other exception is a bug and keeps its traceback.
"""

import contextlib
import contextvars
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class MnistlabError(Exception):
    """A mistake the user can fix. `exit_code` is what the CLI exits with."""

    def __init__(self, message: str, *, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def shown_url(text: str) -> str:
    """`text` (a URL, or a message naming one) with any password hidden: storage and tracking
    URLs go into messages, logs and reports."""
    # a user may be left out; up to the last @ of the URL: a password holding an @ not
    # percent-encoded showed its tail (hunt)
    return re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", text)


def own_warnings_in_one_line() -> Callable[..., str]:
    """Show mnistlab's own warnings (validating on the test set, say) as `warning: ...` lines,
    not Python's two lines with a source line; other libraries' as Python shows them. The
    format, not the display, is replaced (`catch_warnings(record=True)` still records them),
    in this process: the CLI's, and each study worker's. Returns the format it replaced."""
    formatted = warnings.formatwarning
    package = str(Path(__file__).resolve().parent)

    def one_line(message: Any, category: Any, filename: str, lineno: int,
                 line: Any = None) -> str:
        if str(Path(filename).resolve()).startswith(package):
            return f"warning: {message}\n"
        return formatted(message, category, filename, lineno, line)

    warnings.formatwarning = one_line
    return formatted


Said = set[tuple[str, type[Warning]]]
_SAID: contextvars.ContextVar[Said | None] = contextvars.ContextVar("said", default=None)


@contextlib.contextmanager
def each_warning_once() -> Iterator[None]:
    """Within this (a call of train, run_study, ...; an inner one joins the outer, in its
    thread), warn_once says each text once; the next call says it again (a second study in a
    notebook said nothing its workers warned of; review). Per thread: two calls at once in
    two threads keep their own record."""
    if _SAID.get() is not None:
        yield
        return
    token = _SAID.set(set())
    try:
        yield
    finally:
        _SAID.reset(token)


def said_now() -> Said | None:
    """The record of the call in progress in this thread (for a thread it starts to use)."""
    return _SAID.get()


def first_time(text: str, category: type[Warning] = UserWarning,
               said: Said | None = None) -> bool:
    """Whether `text` has not been said yet by warn_once in this call (`said`: that record,
    else this thread's) (it is now); outside any call, always."""
    said = said if said is not None else _SAID.get()
    if said is None:
        return True
    if (text, category) in said:
        return False
    said.add((text, category))
    return True


def warn_once(text: str, category: type[Warning] = UserWarning, stacklevel: int = 2) -> None:
    """warnings.warn, said once per call (each_warning_once) whatever the filters do in
    between: Python's own once-per-place forgets what it said each time a filter changes
    (any catch_warnings), and a study said a dataset's stray labels three times (its runs',
    its final model's and its report's reading of the data); a study's workers forward
    theirs through first_time."""
    if first_time(text, category):
        warnings.warn(text, category, stacklevel=stacklevel + 1)


def first_few(items: Iterable[str], limit: int = 3, sep: str = ", ") -> str:
    """The first `limit` of `items`, joined, and an ellipsis where there are more: a list
    that keeps a message on one line."""
    items = list(items)
    return sep.join(items[:limit]) + (f"{sep}…" if len(items) > limit else "")


def closest(name: str, known: list[str]) -> str | None:
    """The one of `known` that `name` is a typo of (case aside: MNIST-FAST is mnist-fast)."""
    import difflib

    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def did_you_mean(name: str, known: list[str]) -> str:
    """" (did you mean X?)" where `name` is close to one of `known` (a typo), else ""."""
    best = closest(name, known)
    return f" (did you mean {best}?)" if best else ""
