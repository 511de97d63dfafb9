"""Mean ± sd across seeds and t intervals for a difference (paired by seed, else Welch's):
pure functions on floats.

No SciPy: Student's t distribution comes from the regularised incomplete beta function
(a continued fraction, as in Numerical Recipes) and its quantile from bisection, accurate to
about 1e-9 for the non-integer degrees of freedom of Welch's approximation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..messages import number


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                          -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_cf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def t_quantile_975(df: float) -> float:
    """Two-sided 95% critical value of Student's t with `df` (> 0) degrees of freedom."""
    if not df > 0:
        return math.nan
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < 0.975:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float  # sample sd (n-1); nan when n < 2

    def format(self, digits: int = 2, scale: float = 100.0, lang: str = "en",
               unit: str = "") -> str:
        """'89.16 ± 0.21' (scaled, e.g. to %), a single value when n = 1, '—' when n = 0
        (without `unit`: not "—%"); numbers written the `lang` way (es: 89,16 ± 0,21)."""
        if self.n == 0 or math.isnan(self.mean):
            return "—"
        mean = number(self.mean * scale, f".{digits}f", lang)
        sd = f" ± {number(self.sd * scale, f'.{digits}f', lang)}" if self.n > 1 else ""
        return f"{mean}{sd}{unit}"


def summarize(values: Sequence[float]) -> Summary:
    clean = [v for v in values if v is not None and math.isfinite(v)]
    n = len(clean)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    mean = sum(clean) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in clean) / (n - 1)) if n > 1 else math.nan
    return Summary(n, mean, sd)


@dataclass(frozen=True)
class Difference:
    delta: float  # mean(a) - mean(b)
    low: float
    high: float
    df: float
    paired: bool = False  # from per-seed differences (paired), else Welch's

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def seeds_alike(self) -> bool:
        """No interval although each side had seeds: every seed scored alike on both sides."""
        return not self.has_interval and self.df == 0

    @property
    def within_noise(self) -> bool | None:
        """True when the 95% interval covers zero; None when no interval can be computed."""
        if not self.has_interval:
            return None
        return self.low <= 0 <= self.high


def welch(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Welch's t 95% interval for mean(a) - mean(b); needs two or more values on each side."""
    sa, sb = summarize(a), summarize(b)
    delta = sa.mean - sb.mean
    if sa.n < 2 or sb.n < 2:
        return Difference(delta, math.nan, math.nan, math.nan)
    va, vb = sa.sd ** 2 / sa.n, sb.sd ** 2 / sb.n
    se = math.sqrt(va + vb)
    if se == 0:  # every seed alike on both sides: no noise to measure (it was a zero-width
        return Difference(delta, math.nan, math.nan, 0.0)  # interval: 1 image "beyond")
    # Welch-Satterthwaite degrees of freedom; the ratio does not change when both variances
    # are scaled, so scale them to at most 1 first (tiny variances would underflow when squared)
    ra, rb = va / max(va, vb), vb / max(va, vb)
    df = (ra + rb) ** 2 / (ra ** 2 / (sa.n - 1) + rb ** 2 / (sb.n - 1))
    half = t_quantile_975(df) * se
    return Difference(delta, delta - half, delta + half, df)


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> Difference:
    """The 95% t interval of mean(a) - mean(b), seed by seed: values keyed by seed, where seed
    k of each side started alike (the same initial weights where the network is the same, the
    same batches), so the difference of a pair is what the setting changed, without the
    spread between seeds that both sides share; Welch's ignores that pairing and called such
    differences noise (dropout 0.6: -5.8, -6.0, -7.5 points by seed, interval -15 to +2).
    Welch's interval where the seeds do not pair up (a value missing or not finite), or where
    every pair differs alike (a zero-width interval would call one image beyond the noise)."""
    a = {k: v for k, v in a.items() if v is not None and math.isfinite(v)}
    b = {k: v for k, v in b.items() if v is not None and math.isfinite(v)}
    d = summarize([a[k] - b[k] for k in sorted(a)] if set(a) == set(b) else [])
    # every pair differing alike (one image each, say) has no spread to measure the noise by
    if d.n < 2 or d.sd < 1e-9:
        return welch(list(a.values()), list(b.values()))
    half = t_quantile_975(d.n - 1) * d.sd / math.sqrt(d.n)
    return Difference(d.mean, d.mean - half, d.mean + half, d.n - 1, paired=True)
