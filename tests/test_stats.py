"""Welch's interval and the t table against known values."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlab.study.stats import summarize, t_quantile_975, welch


@pytest.mark.parametrize("df,expected", [(1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042),
                                         (45, 2.0141), (1000, 1.9623)])
def test_t_quantiles(df, expected):
    assert t_quantile_975(df) == pytest.approx(expected, abs=2e-3)


def test_welch_known_example():
    a = [0.80, 0.82, 0.81]
    b = [0.70, 0.71, 0.69]
    d = welch(a, b)
    assert d.delta == pytest.approx(0.11)
    assert d.df == pytest.approx(4.0)
    # se = sqrt(0.0001/3 * 2) = 0.008165; t(4) = 2.776
    assert d.high - d.delta == pytest.approx(2.776 * 0.0081650, rel=1e-3)
    assert d.within_noise is False


def test_overlapping_samples_are_within_noise():
    assert welch([0.80, 0.85, 0.75], [0.79, 0.84, 0.78]).within_noise is True


def test_single_seed_has_no_interval():
    d = welch([0.8], [0.7])
    assert d.delta == pytest.approx(0.1)
    assert d.within_noise is None and not d.has_interval


def test_summary_format():
    assert summarize([0.5, 0.7]).format() == "60.00 ± 14.14"
    assert summarize([0.5]).format() == "50.00"
    assert summarize([]).format() == "—"


@given(st.lists(st.floats(0, 1), min_size=2, max_size=8),
       st.lists(st.floats(0, 1), min_size=2, max_size=8))
def test_interval_contains_the_difference(a, b):
    d = welch(a, b)
    assert d.low <= d.delta + 1e-12 and d.delta <= d.high + 1e-12 or math.isnan(d.low)
