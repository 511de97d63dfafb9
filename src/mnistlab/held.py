"""A process-wide setting of another library's, held at mnistlab's value while any of its calls
needs it, and put back as it was afterwards.

Matplotlib's math text (off while our figures draw: a "$" in a class name is text) and Optuna's
log level (WARNING while a search runs) are global. Set for good, they changed the user's own
plots and studies in the same notebook; saved and restored by each call, two calls overlapping in
threads restored them in the wrong order. The first call to come saves the setting, the last to
leave puts it back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Held:
    """`with held():` (or `@held()`) holds the setting `read`/`write` reach at `value`."""

    def __init__(self, read: Callable[[], Any], write: Callable[[Any], None], value: Any) -> None:
        self._read, self._write, self._value = read, write, value
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: Any = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._saved = self._read()
                self._write(self._value)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._write(self._saved)


def matplotlib_setting(name: str) -> Callable[..., Any]:
    """The reader and writer of matplotlib's setting `name` for Held: called with nothing it
    reads the setting, with a value it writes it."""
    def access(value: Any = None) -> Any:
        import matplotlib  # only where something is drawn

        if value is None:
            return matplotlib.rcParams[name]
        matplotlib.rcParams[name] = value
        return None

    return access


# our figures' labels are the user's text (class names, variant labels, file names): a "$"
# pair in one is not math, and an unbalanced one made matplotlib raise after the training
_PARSE_MATH = matplotlib_setting("text.parse_math")
math_text_off = Held(_PARSE_MATH, _PARSE_MATH, False)


def _font_log(value: int | None = None) -> Any:
    import logging

    logger = logging.getLogger("matplotlib.font_manager")
    if value is None:
        return logger.level
    logger.setLevel(value)
    return None


# a fallback font for a class name's script (figures.fonts) made matplotlib log "findfont:
# Failed to find font weight normal for WenQuanYi Zen Hei, now using 500" for each label it
# drew with it, and drew it
font_search_quiet = Held(_font_log, _font_log, 40)  # logging.ERROR
