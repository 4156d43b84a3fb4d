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
        start = len(run.candidates)  # a pilot's candidates come first
        if not await sample(run, self.params.params(1, run.call_seed()), stream=True):
            return Choice(None)
        return run.pick(start)
