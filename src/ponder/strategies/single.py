"""One sample, greedy by default: the baseline every other strategy is measured against."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling, sample


@dataclass(frozen=True, slots=True)
class SingleParams(Sampling):
    """`temperature=0` decodes greedily."""

    temperature: float = 0.0


class Single(BaseStrategy[SingleParams]):
    """Draw one completion and take its answer, whatever the budget."""

    name = "single"
    Params = SingleParams

    def sample_limit(self, n: int) -> int:
        return 1

    async def solve(self, run: Run) -> Choice:
        [candidate] = await sample(run, self.params.params(1, run.call_seed())) or [None]
        return Choice(candidate, run.nodes[0] if candidate is not None else None)
