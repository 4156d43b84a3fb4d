"""Best-of-N: sample N solutions, keep the one the verifier scores highest.

The baseline of verifier-guided test-time scaling (Cobbe et al. 2021; Lightman
et al. 2023; Snell et al. 2024). With a PRM, a solution's score folds its step
scores: "last" (Snell et al. found it best for their PRM), "min" (Lightman et
al.), "product" or "mean"; "outcome" takes the verifier's own outcome score.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling, check_aggregation, sample, score_key, verify


@dataclass(frozen=True, slots=True)
class BestOfNParams(Sampling):
    """`aggregation`: how a PRM's step scores make a solution's score."""

    aggregation: str = "last"

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        check_aggregation(self.aggregation)


class BestOfN(BaseStrategy[BestOfNParams]):
    """N samples in one call, one verifier call, the highest score wins (first on ties)."""

    name = "best_of_n"
    Params = BestOfNParams
    samples_once = True
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        start = len(run.candidates)  # a pilot's candidates come first; the pick is among its own
        candidates = await verify(
            run, await sample(run, self.params.params(run.n, run.call_seed()))
        )
        if not candidates:
            return Choice(None)
        key = score_key(self.params.aggregation)
        best = max(range(len(candidates)), key=lambda i: (candidates[i].scores[key], -i))
        return run.pick(start + best)
