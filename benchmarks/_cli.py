"""What every benchmark's command line shares: counts checked as they are parsed, and the
package's errors for user mistakes said in one line rather than a traceback.

Scripts run with benchmarks/ first on sys.path, so `from _cli import at_least, run_main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from mnistlab.errors import MnistlabError


def at_least(low: int) -> Callable[[str], int]:
    """An argparse `type`: a whole number no smaller than `low`. A count of 0 rounds made an
    IndexError (or inf) after minutes of warm-up; refused here, it is one line before any work."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"at_least({low})"  # argparse names the type in some of its messages
    return parse


def whole_numbers(low: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse `type`: comma-separated whole numbers (`1,4,8`), each no smaller than `low`."""
    each = at_least(low)

    def parse(text: str) -> tuple[int, ...]:
        values = tuple(each(part) for part in text.split(",") if part.strip())
        if not values:
            raise argparse.ArgumentTypeError(f"expected numbers like 1,4,8, got {text!r}")
        return values

    parse.__name__ = f"whole_numbers({low})"
    return parse


def run_main(main: Callable[[], Any]) -> None:
    """Run a script's `main` and exit with its code; a MnistlabError (a folder that is not a run,
    a dataset that is not there, a setting out of range) is `error: <message>` on stderr, as the
    mnistlab command says it, and its exit code (2 unless it says otherwise)."""
    try:
        code = main()
    except MnistlabError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(error.exit_code) from None
    raise SystemExit(code)
