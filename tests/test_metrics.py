"""pass@k and AUROC against brute-force enumeration; intervals, coverage laws, ratios, bins."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from ponder import ConfigError
from ponder.metrics import (
    CoverageLaw,
    auroc,
    bootstrap_ci,
    compute_ratios,
    compute_to_reach,
    coverage_curve,
    fit_coverage_law,
    pass_at_k,
    quantile_bins,
)


@pytest.mark.parametrize(("n", "correct"), [(5, 0), (5, 2), (6, 3), (7, 7), (8, 1)])
def test_pass_at_k_is_the_fraction_of_k_subsets_with_a_right_sample(n, correct):
    samples = [True] * correct + [False] * (n - correct)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(samples, k))
        brute = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n, correct, k) == pytest.approx(brute)


def test_auroc_is_the_chance_a_positive_outscores_a_negative():
    rng = random.Random(0)
    for _ in range(20):
        scores = [rng.choice([0.1, 0.2, 0.5, 0.5, 0.9, rng.random()]) for _ in range(15)]
        labels = [rng.random() < 0.4 for _ in scores]
        labels[0], labels[1] = True, False
        pairs = [
            (p, q)
            for p, lp in zip(scores, labels, strict=True)
            for q, lq in zip(scores, labels, strict=True)
            if lp and not lq
        ]
        brute = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs) / len(pairs)
        assert auroc(scores, labels) == pytest.approx(brute)
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.8, 0.9], [True, True, False]) == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="positive and one negative"):
        auroc([0.1, 0.2], [True, True])
    with pytest.raises(ConfigError, match="2 scores but 1 labels"):
        auroc([0.1, 0.2], [True])
    with pytest.raises(ConfigError, match="k must be"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ConfigError, match="correct must be"):
        pass_at_k(4, 5, 1)


def test_bootstrap_interval_on_known_data():
    # A constant has no spread: the interval is the point.
    assert bootstrap_ci([1.0] * 50) == (1.0, 1.0)
    # 400 fair coin flips (exactly half right): the mean's standard error is 0.025, so the
    # 95% interval is 0.5 -/+ 1.96 * 0.025 = (0.451, 0.549), up to bootstrap noise.
    values = [1.0, 0.0] * 200
    low, high = bootstrap_ci(values, resamples=4000)
    assert low == pytest.approx(0.451, abs=0.008)
    assert high == pytest.approx(0.549, abs=0.008)
    # Wider when asked for more confidence, and the same again under the same seed.
    low99, high99 = bootstrap_ci(values, confidence=0.99, resamples=4000)
    assert low99 < low and high99 > high
    assert bootstrap_ci(values, resamples=4000) == (low, high)
    with pytest.raises(ConfigError):
        bootstrap_ci([])


def test_coverage_law_fit_recovers_the_law_it_was_made_from():
    ks = [1, 2, 4, 8, 16, 32, 64]
    truth = CoverageLaw(a=-1.2, b=-0.4, r2=1.0)
    law = fit_coverage_law(ks, [truth(k) for k in ks])
    assert law is not None
    assert law.a == pytest.approx(-1.2, rel=1e-6)
    assert law.b == pytest.approx(-0.4, rel=1e-6)
    assert law.r2 == pytest.approx(1.0)
    # Noise lowers R^2; a flat line at 0 or 1 cannot be fitted.
    noisy = fit_coverage_law(ks, [truth(k) + (0.03 if i % 2 else -0.03) for i, k in enumerate(ks)])
    assert noisy is not None and 0.8 < noisy.r2 < 1.0
    assert fit_coverage_law(ks, [1.0] * len(ks)) is None


def test_coverage_curve_is_mean_pass_at_k():
    assert coverage_curve([(4, 1), (4, 0)], [1, 4]) == [0.125, 0.5]


def test_compute_to_reach_interpolates_in_log_compute():
    curve = [(10.0, 0.2), (100.0, 0.6), (1000.0, 0.7)]
    assert compute_to_reach(curve, 0.1) == 10.0
    assert compute_to_reach(curve, 0.4) == pytest.approx(math.sqrt(10 * 100))
    assert compute_to_reach(curve, 0.7) == pytest.approx(1000.0)
    assert compute_to_reach(curve, 0.8) is None
    # Against itself a curve is 1x; a curve at the reference's accuracy with a tenth of the
    # compute is 10x.
    assert compute_ratios(curve, curve) == pytest.approx([1.0, 1.0, 1.0])
    assert compute_ratios([(10.0, 0.6)], curve) == pytest.approx([10.0])


def test_quantile_bins_put_the_highest_pass_rates_in_bin_one():
    rates = [0.9, 0.1, 0.5, 0.7, 0.3, 0.0, 1.0, 0.8, 0.2, 0.6]
    bins = quantile_bins(rates, 5)
    assert bins == [1, 5, 3, 2, 4, 5, 1, 2, 4, 3]
    assert quantile_bins([0.5] * 6, 3) == [2] * 6  # ties share a bin
