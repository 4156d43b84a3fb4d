"""Weighted majority voting: each sample votes for its answer with its verifier score.

Li et al. (2023, "Making Large Language Models Better Reasoners with
Step-Aware Verifier") and Uesato et al. (2022) weight votes by a reward model;
Snell et al. (2024) and search-and-learn use it as their strongest
sample-then-select baseline. The answer with the largest total score wins, and
its highest-scored sample is the chosen candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.best_of_n import BestOfNParams
from ponder.strategies.scoring import sample, score_key, verify, vote


@dataclass(frozen=True, slots=True)
class WeightedMajorityParams(BestOfNParams):
    """`aggregation`: how a PRM's step scores make the weight of a sample's vote."""


class WeightedMajority(BaseStrategy[WeightedMajorityParams]):
    """N samples, one verifier call, votes summed by equivalent answer."""

    name = "weighted_majority"
    Params = WeightedMajorityParams
    samples_once = True
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        await verify(run, await sample(run, self.params.params(run.n, run.call_seed())))
        return self.select(run)

    def select(self, run: Run) -> Choice:
        key = score_key(self.params.aggregation)
        candidates = run.candidates
        winner = vote(run.task, candidates, lambda i: candidates[i].scores.get(key, 0.0))
        if winner is None:
            return Choice(None)
        best = max(winner, key=lambda i: (candidates[i].scores.get(key, 0.0), -i))
        return run.pick(best)
