"""One sample, greedy by default: the baseline every other strategy is measured against."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.budget import Budget, BudgetMeter
from ponder.errors import ConfigError
from ponder.generators.base import Generator, SamplingParams
from ponder.sync import run_sync
from ponder.tasks import Problem, Task
from ponder.types import Result, TraceNode


@dataclass(frozen=True, slots=True)
class SingleParams:
    """`temperature=0` decodes greedily; `seed` matters only when sampling."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")


class Single:
    """Draw one completion and take its answer."""

    name = "single"

    def __init__(self, generator: Generator, task: Task, params: SingleParams | None = None):
        self.generator = generator
        self.task = task
        self.params = params or SingleParams()

    async def arun(self, problem: Problem, budget: Budget | None = None) -> Result:
        meter = BudgetMeter(budget)
        generator = meter.wrap(self.generator)
        sampling = SamplingParams(
            n=1,
            max_tokens=self.params.max_tokens,
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            seed=self.params.seed,
        )
        [generation] = await generator.generate([self.task.prompt(problem)], sampling)
        candidates = tuple(self.task.candidate(c) for c in generation.completions)
        chosen = candidates[0] if candidates else None
        return Result(
            strategy=self.name,
            answer=chosen.answer if chosen else None,
            chosen=chosen,
            candidates=candidates,
            cost=meter.cost(),
            trace=(
                TraceNode(id=0, parent=None, text=problem.question, kind="problem"),
                *(TraceNode(id=i + 1, parent=0, text=c.text) for i, c in enumerate(candidates)),
            ),
        )

    def run(self, problem: Problem, budget: Budget | None = None) -> Result:
        return run_sync(self.arun(problem, budget))
