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
from ponder.strategies.scoring import answer_groups, sample, score_key, verify


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
        groups = answer_groups(run.task, candidates)
        if not groups:
            return Choice(None)
        weight = [sum(candidates[i].scores.get(key, 0.0) for i in group) for group in groups]
        winner = groups[max(range(len(groups)), key=lambda g: (weight[g], -g))]
        best = max(winner, key=lambda i: (candidates[i].scores.get(key, 0.0), -i))
        return Choice(candidates[best], run.nodes[best])
