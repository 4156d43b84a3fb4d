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
        params = self.params.params(1, run.call_seed())
        if run.on_text is not None:  # streamed: the text goes to the caller as it comes
            generation = await run.generator.stream(run.prompt(), params, run.on_text)
            for completion in generation.completions:
                candidate = run.task.candidate(completion)
                run.keep(candidate, run.trace.add(0, candidate.text, kind="sample"))
        elif not await sample(run, params):
            return Choice(None)
        if len(run.candidates) == start:
            return Choice(None)
        return run.pick(start)
