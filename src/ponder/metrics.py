"""Measures of samples, scores and curves.

Unbiased pass@k and coverage, AUROC of a verifier's scores, bootstrap
intervals, Large Language Monkeys' coverage law, compute-matched ratios and
difficulty bins."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ponder.errors import ConfigError

T = TypeVar("T")


def pass_at_k(n: int, correct: int, k: int) -> float:
    """The chance that k of n samples, `correct` of them right, include a right one.

    The unbiased estimator of Chen et al. (2021): 1 - C(n - c, k) / C(n, k),
    the fraction of k-subsets of the n samples that hold a right sample.
    """
    if not 0 <= correct <= n:
        raise ConfigError(f"correct must be in 0..{n}, got {correct}")
    if not 1 <= k <= n:
        raise ConfigError(f"k must be in 1..{n}, got {k}")
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney U statistic over the two groups).
    """
    if len(scores) != len(labels):
        raise ConfigError(f"{len(scores)} scores but {len(labels)} labels")
    values = np.asarray(scores, dtype=float)
    positive = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise ConfigError("AUROC needs at least one positive and one negative label")
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # Average ranks (1-based) over runs of tied scores.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap confidence interval for the mean of `values`.

    `values` are independent units (per-problem accuracies); the interval holds
    the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the means
    of `resamples` resamples drawn with replacement. Seeded, so reports repeat.
    """
    if not values:
        raise ConfigError("a bootstrap interval needs at least one value")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def cluster_bootstrap_ci(
    groups: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval for `statistic` of items that come in groups.

    Resamples whole groups with replacement (a problem's samples are not
    independent: resampling them one by one would make the interval too
    narrow), then computes `statistic` over the resampled groups. A resample
    on which the statistic is undefined (it raises `ConfigError`, as AUROC does
    without both labels) is skipped.
    """
    if not groups:
        raise ConfigError("a bootstrap interval needs at least one group")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    values = []
    for draw in rng.integers(0, len(groups), size=(resamples, len(groups))):
        try:
            values.append(statistic([groups[i] for i in draw]))
        except ConfigError:
            continue
    if not values:
        raise ConfigError("the statistic is undefined on every resample")
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def coverage_curve(samples: Sequence[tuple[int, int]], ks: Sequence[int]) -> list[float]:
    """Mean unbiased pass@k over problems, each given as (samples n, right ones c), per k."""
    if not samples:
        raise ConfigError("coverage needs at least one problem")
    return [float(np.mean([pass_at_k(n, c, k) for n, c in samples])) for k in ks]


@dataclass(frozen=True, slots=True)
class CoverageLaw:
    """Coverage against samples k as Large Language Monkeys' exponentiated power law.

    coverage(k) = exp(a * k ** b), with a < 0 and b < 0 when coverage grows with
    k (Brown et al. 2024). `r2` is the fit's R^2 on the coverage scale.
    """

    a: float
    b: float
    r2: float

    def __call__(self, k: float) -> float:
        return math.exp(self.a * k**self.b)


def fit_coverage_law(ks: Sequence[float], coverage: Sequence[float]) -> CoverageLaw | None:
    """Fit `CoverageLaw` to (k, coverage) points; None with fewer than two usable points.

    The law is linear after two logs, log(-log c) = log(-a) + b log k, so it is
    fitted by least squares there (as Brown et al. do); points with coverage 0
    or 1 carry no information on that scale and are left out of the fit, but
    not out of R^2.
    """
    if len(ks) != len(coverage):
        raise ConfigError(f"{len(ks)} sample counts but {len(coverage)} coverages")
    usable = [(k, c) for k, c in zip(ks, coverage, strict=True) if 0 < c < 1 and k > 0]
    if len(usable) < 2 or len({k for k, _ in usable}) < 2:
        return None
    x = np.log([k for k, _ in usable])
    y = np.log(-np.log([c for _, c in usable]))
    b, intercept = np.polyfit(x, y, 1)
    law = CoverageLaw(a=-float(np.exp(intercept)), b=float(b), r2=float("nan"))
    observed = np.asarray(coverage, dtype=float)
    predicted = np.array([law(k) for k in ks])
    total = float(((observed - observed.mean()) ** 2).sum())
    residual = float(((observed - predicted) ** 2).sum())
    r2 = 1 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return CoverageLaw(a=law.a, b=law.b, r2=r2)


def compute_to_reach(curve: Sequence[tuple[float, float]], accuracy: float) -> float | None:
    """The compute at which `curve` ((compute, accuracy) points) first reaches `accuracy`.

    Between two measured points the curve is linear in log compute, as scaling
    plots draw it. None when no point reaches `accuracy`; the first point's
    compute when it already does (the curve says nothing below it).
    """
    points = sorted(curve)
    if not points:
        return None
    if points[0][1] >= accuracy:
        return points[0][0]
    for (c0, a0), (c1, a1) in itertools.pairwise(points):
        if a0 < accuracy <= a1:
            if c0 <= 0:
                return c1
            w = (accuracy - a0) / (a1 - a0)
            return float(math.exp(math.log(c0) + w * (math.log(c1) - math.log(c0))))
    return None


def compute_ratios(
    curve: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]]
) -> list[float | None]:
    """For each point of `curve`: the compute `reference` needs for the same accuracy,
    divided by the point's compute (> 1: `curve` is that many times cheaper).
    None where `reference` never reaches the accuracy."""
    ratios: list[float | None] = []
    for compute, accuracy in curve:
        needed = compute_to_reach(reference, accuracy)
        ratios.append(None if needed is None or compute <= 0 else needed / compute)
    return ratios


def quantile_bins(values: Sequence[float], bins: int = 5) -> list[int]:
    """Difficulty bins 1..`bins` by quantiles of `values` (a pass rate: high is easy).

    Bin 1 holds the highest values (easiest), bin `bins` the lowest, in equal
    shares as far as ties allow (Snell et al. 2024 bin by pass@1 quantiles).
    Ties always share a bin.
    """
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    if not values:
        return []
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0] * len(values)
    rank = 0
    while rank < len(order):
        end = rank
        while end + 1 < len(order) and values[order[end + 1]] == values[order[rank]]:
            end += 1
        # A run of ties takes the bin of its middle rank.
        middle = (rank + end) / 2
        for position in range(rank, end + 1):
            out[order[position]] = min(bins, int(middle * bins / len(values)) + 1)
        rank = end + 1
    return out
