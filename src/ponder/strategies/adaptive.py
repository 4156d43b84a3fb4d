"""Adaptive sampling: vote in rounds and stop as soon as the leading answer is sure to win.

Most prompts do not need N samples: when the first few agree, more samples
rarely change the vote. OptScale (Wang et al., 2025, "Probabilistic
Optimality for Inference-time Scaling") estimates the samples a prompt needs
from the ones drawn so far; Adaptive-Consistency (Aggarwal et al., 2023,
"Let's Sample Step by Step") stops voting with a Dirichlet stopping rule. This
strategy uses the latter's rule, made conservative:

The stopping rule. Let the samples drawn so far give answer vote totals
c_1 >= c_2 >= ... (counts for plain voting; summed verifier scores, each in
[0, 1], for weighted voting), and give the model's answer distribution p a
Dirichlet prior with concentration `prior` on each seen answer and on one
pooled category for every answer not seen yet. For the leader and any rival j,
p_1 / (p_1 + p_j) ~ Beta(prior + c_1, prior + c_j) a posteriori, so

    P(p_j > p_1 | samples) = I_{1/2}(prior + c_1, prior + c_j)

(the regularized incomplete beta function), and the probability that the
leader is not the mode of p is at most the sum of these over the other seen
answers and the pooled unseen one (a union bound; the pool outweighs any
single unseen answer). Sampling stops when that bound is at most
1 - `confidence`, or when the budget N is spent.

The guarantee: under the prior, when the rule stops, the answer it gives is
the answer the model's infinite-sample vote would give with probability at
least `confidence`. A posterior probability stays calibrated however the
stopping time depends on the data, so stopping early costs at most
1 - `confidence` in expected agreement with voting at unlimited N (and so at
most that much accuracy against it). With `prior` = 1 and unanimous samples
the bound is 2^-(k+1) after k samples: 4 samples for 95%, 6 for 99%. Weighted
votes count a sample by its score, so doubtful samples move the rule less.

The budget N is the most samples drawn; `Result.details` says how many were
(`samples`), why it stopped (`stopped`: "confident" or "budget") and the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import (
    Sampling,
    check_aggregation,
    sample,
    score_key,
    tally,
    verify,
    winner,
)

VOTES = ("count", "score")


def mode_error(votes: Sequence[float], prior: float = 1.0) -> float:
    """An upper bound on the posterior probability that the largest vote is not the mode.

    `votes` are the answers' vote totals (any order); see the module docstring.
    With no votes at all the bound is 1.
    """
    from scipy.special import betainc

    if prior <= 0:
        raise ConfigError(f"the prior must be positive, got {prior}")
    if not votes or max(votes) <= 0:
        return 1.0
    ordered = sorted(votes, reverse=True)
    lead = ordered[0]
    rivals = [*ordered[1:], 0.0]  # the seen rivals, and every unseen answer pooled
    return min(1.0, float(sum(betainc(prior + lead, prior + c, 0.5) for c in rivals)))


@dataclass(frozen=True, slots=True)
class AdaptiveParams(Sampling):
    """Rounds of `round_size` samples (the first of `first_round`) until the vote is sure.

    `votes`: "count" (plain majority voting) or "score" (votes weighted by the
    verifier's `aggregation` of each sample's step scores). `confidence`: the
    posterior probability the leader must have of being the vote's winner at
    unlimited N; `prior`: the Dirichlet concentration per answer.
    """

    votes: str = "count"
    aggregation: str = "last"
    confidence: float = 0.95
    prior: float = 1.0
    first_round: int = 4
    round_size: int = 4

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.votes not in VOTES:
            raise ConfigError(f"votes must be one of {', '.join(VOTES)}, not {self.votes!r}")
        check_aggregation(self.aggregation)
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.prior <= 0:
            raise ConfigError(f"prior must be positive, got {self.prior}")
        if self.first_round < 1 or self.round_size < 1:
            raise ConfigError("first_round and round_size must be at least 1")


class Adaptive(BaseStrategy[AdaptiveParams]):
    """Majority or weighted voting that draws samples in rounds and stops when sure."""

    name = "adaptive"
    Params = AdaptiveParams

    @classmethod
    def uses_verifier(cls, params: AdaptiveParams) -> bool:
        return params.votes == "score"

    def sample_limit(self, n: int) -> int:
        return n

    def votes(self, run: Run) -> tuple[list[list[int]], list[float]]:
        """The run's answer groups and each one's vote total."""
        if self.params.votes == "count":
            return tally(run.task, run.candidates)
        key = score_key(self.params.aggregation)
        return tally(run.task, run.candidates, lambda i: run.candidates[i].scores.get(key, 0.0))

    async def solve(self, run: Run) -> Choice:
        """Samples already in the run (another strategy's pilot) vote from the start: when
        they are enough, nothing is drawn; otherwise rounds follow as usual."""
        drawn, rounds, given = 0, 0, len(run.candidates)
        error = mode_error(self.votes(run)[1], self.params.prior) if given else 1.0
        size = self.params.round_size if given else self.params.first_round
        while error > 1.0 - self.params.confidence and drawn < run.n:
            size = min(size, run.n - drawn)
            new = await sample(run, self.params.params(size, run.call_seed()))
            if self.params.votes == "score":
                await verify(run, new)
            drawn, rounds = drawn + size, rounds + 1
            error = mode_error(self.votes(run)[1], self.params.prior)
            size = self.params.round_size
        stopped = "confident" if error <= 1.0 - self.params.confidence else "budget"
        details = {
            "samples": given + drawn,
            "rounds": rounds,
            "stopped": stopped,
            "error_bound": error,
        }
        return replace(self.select(run), details=details)

    def select(self, run: Run) -> Choice:
        """The answer with the largest vote; its best-scored (or first) sample is the pick."""
        chosen = winner(*self.votes(run))
        if chosen is None:
            return Choice(None)
        key = score_key(self.params.aggregation)
        best = max(chosen, key=lambda i: (run.candidates[i].scores.get(key, 0.0), -i))
        return run.pick(best)
