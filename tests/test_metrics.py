"""pass@k and AUROC against brute-force enumeration."""

from __future__ import annotations

import itertools
import random

import pytest

from ponder import ConfigError
from ponder.metrics import auroc, pass_at_k


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
