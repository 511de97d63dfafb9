"""mnistlab.testing: what the project's benchmarks run their child commands with."""

import sys

import pytest

from mnistlab.testing import run_child


def test_a_failing_child_is_its_own_last_line():
    """A benchmark's child that failed was a CalledProcessError traceback, its own line hidden
    in the captured output."""
    with pytest.raises(SystemExit) as info:
        run_child([sys.executable, "-c", "import sys; print('working'); "
                   "sys.exit('error: the data is not there')"])
    assert str(info.value).endswith("failed (exit 1): error: the data is not there")
    assert run_child([sys.executable, "-c", "print('fine')"]).stdout == "fine\n"
