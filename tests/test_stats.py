"""The paired and Welch intervals and the t table against known values."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlab.study.stats import paired, summarize, t_quantile_975, welch


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


def test_a_difference_every_seed_shows_is_beyond_the_noise_seed_by_seed():
    """The quick Fashion study's dropout 0.6 against its base (validation %, seeds 0-2): the
    seeds' own spread (the base's sd 3.98) made Welch's interval -15 to +2, "within noise",
    for a value that was 6 to 7.5 points worse on every seed."""
    base = {0: 84.10, 1: 76.50, 2: 82.60}
    worse = {k: v + d for (k, v), d in zip(base.items(), (-5.76, -5.98, -7.48))}
    to_fraction = {k: v / 100 for k, v in base.items()}, {k: v / 100 for k, v in worse.items()}
    assert welch(list(to_fraction[1].values()), list(to_fraction[0].values())).within_noise
    d = paired(to_fraction[1], to_fraction[0])
    assert d.paired and d.df == 2 and d.within_noise is False
    # mean of the differences -6.407, sd 0.936: half-width t(2) * sd / sqrt(3)
    assert d.delta == pytest.approx(-0.06407, abs=1e-5)
    assert d.high - d.delta == pytest.approx(4.303 * 0.009360 / math.sqrt(3), rel=1e-3)


@pytest.mark.parametrize("a, b", [({0: 0.8, 1: 0.9}, {0: 0.7, 2: 0.75}),  # seeds apart
                                  ({0: 0.8, 1: math.nan}, {0: 0.7, 1: 0.75}),  # one not finite
                                  ({0: 0.8}, {0: 0.7})])  # one pair: no interval either way
def test_seeds_that_do_not_pair_up_get_welch_s_interval(a, b):
    d = paired(a, b)
    kept = [v for v in a.values() if math.isfinite(v)], list(b.values())
    expected = welch(*kept)
    assert not d.paired and d.delta == pytest.approx(expected.delta)
    assert (d.low, d.high) == (expected.low, expected.high) or not d.has_interval


def test_pairs_that_differ_alike_are_measured_by_the_sides_own_spread():
    """One image more on each of two seeds gave a zero-width interval, "beyond noise", and a
    recommendation (review)."""
    a, b = {0: 4500 / 5000, 1: 4510 / 5000}, {0: 4499 / 5000, 1: 4509 / 5000}
    d = paired(a, b)
    expected = welch(list(a.values()), list(b.values()))
    assert not d.paired and (d.low, d.high) == (expected.low, expected.high)
    assert d.within_noise is True


def test_seeds_alike_on_both_sides_have_no_noise_estimate_not_a_zero_width_interval():
    """Two seeds each at 0.678 against the base's two at 0.676 (500 validation images: one
    image apart) had the interval [+0.20, +0.20]: "beyond noise", in the table and the
    conclusions, where nothing measured the noise (hunt)."""
    d = paired({0: 0.678, 1: 0.678}, {0: 0.676, 1: 0.676})
    assert d.delta == pytest.approx(0.002) and not d.has_interval
    assert d.within_noise is None
