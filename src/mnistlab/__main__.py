"""The `mnistlab` command (console script and `python -m mnistlab`). Its first step holds
Ctrl-C and SIGTERM back while the command imports torch (a second or so), so a stop then is
the one line every stop gets; everything else is in `cli`."""

from __future__ import annotations

import sys


def main() -> int:
    from . import interrupt  # light: the standard library only

    interrupt.hold_from_start()
    from .cli import main as command  # torch, numpy, matplotlib: the slow part

    try:
        code = command()
    except SystemExit as exc:  # --help, --version, a mistake in the flags
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if interrupt.held():  # the command ended without taking it (it only printed help)
        print("interrupted", file=sys.stderr)
        return 128 + interrupt.held()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
