"""Best-of-Majority: keep only the frequent answers, then pick by reward.

Di et al. (2025), "Best-of-Majority: Minimax-Optimal Strategy for Pass@k
Inference Scaling": majority voting ignores the reward and best-of-N trusts it
too far (as N grows, some wrong sample fools the reward model). BoM first
restricts the candidates to answers whose share of the N samples is at least
`min_share`, then picks the highest-reward sample among them; unlike both
parents, its accuracy does not degrade as N grows. Here k = 1 (one answer).
When no answer reaches `min_share`, the most frequent answers are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.best_of_n import BestOfNParams
from ponder.strategies.scoring import answer_groups, sample, score_key, verify


@dataclass(frozen=True, slots=True)
class BestOfMajorityParams(BestOfNParams):
    """`min_share`: the smallest share of the samples an answer needs to stay a candidate."""

    min_share: float = 0.125

    def __post_init__(self) -> None:
        BestOfNParams.__post_init__(self)
        if not 0 < self.min_share <= 1:
            raise ConfigError(f"min_share must be in (0, 1], got {self.min_share}")


class BestOfMajority(BaseStrategy[BestOfMajorityParams]):
    """N samples, one verifier call, frequent answers only, then the best reward."""

    name = "best_of_majority"
    Params = BestOfMajorityParams
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
        frequent = [g for g in groups if len(g) >= self.params.min_share * len(candidates)]
        if not frequent:
            frequent = [g for g in groups if len(g) == max(map(len, groups))]
        best = max(
            (i for group in frequent for i in group),
            key=lambda i: (candidates[i].scores.get(key, 0.0), -i),
        )
        return run.pick(best)
