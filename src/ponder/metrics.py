"""Measures of samples and scores: unbiased pass@k, and AUROC of a verifier's scores."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ponder.errors import ConfigError


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
