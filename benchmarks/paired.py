"""Paired differences over seeds: the statistic every accuracy claim in docs/benchmarks.md uses.

A claim that one model beats another is the mean of the seed-by-seed differences with a 95%
t-interval (n - 1 degrees of freedom); it is a win only when the interval excludes 0, else
"no difference measured".
"""

from __future__ import annotations

import statistics


def paired_ci(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its t-interval over seeds (n - 1 degrees of freedom)."""
    from scipy import stats

    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    """'win', 'loss' or 'no difference measured' for an interval of (a - b)."""
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "no difference measured"
