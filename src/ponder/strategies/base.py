"""What every strategy shares: the `Strategy` protocol, the budget N, and a runner's plumbing.

A strategy is built from a generator, a task (prompt format, step boundary,
extractor, grader), optionally a verifier, and one validated parameter object.
It solves one problem under a budget and contains orchestration only: no
printing, no files, no global state. `BaseStrategy` gives every strategy the
same faces: `arun` / `run` for one problem, `arun_many` / `run_many` for many,
whose calls are merged into one backend call per round
(`ponder.strategies.batching`).

The budget N means the same thing for every strategy: about N independent
solutions' worth of generation. Each strategy maps N onto its own shape (N
samples, N beams' worth of step samples per depth, N particles, N rollouts,
N attempts; see docs/strategies.md) and declares `sample_limit(N)`, the most
completions it may draw at N, which the budget meter enforces: no strategy
can overspend, and the budget is never policed by the strategy itself. A
`Budget` may also cap generated tokens or FLOPs; a strategy that runs into a
cap stops and answers with what it has (`Result.stopped_by_budget`).
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from ponder.budget import Budget, BudgetMeter, MeteredGenerator, MeteredVerifier
from ponder.errors import BudgetExhausted, ConfigError
from ponder.generators.base import Generator, SamplingParams, derive_seed
from ponder.strategies.batching import CoalescingGenerator, CoalescingVerifier
from ponder.sync import run_sync
from ponder.tasks import Problem, Task
from ponder.types import Candidate, Cost, Prompt, Result, TraceNode
from ponder.verifiers.base import Verifier


@runtime_checkable
class Strategy(Protocol):
    """A test-time scaling strategy. `arun` is the async core; `run` is its synchronous face."""

    name: str

    async def arun(self, problem: Problem, budget: Budget | int | None = None) -> Result: ...

    def run(self, problem: Problem, budget: Budget | int | None = None) -> Result: ...


def budget_n(budget: Budget | int | None) -> tuple[int, Budget]:
    """N and the caps (tokens, FLOPs) of a strategy's budget: an int N, or a `Budget`
    whose `samples` is N (1 when it has none) and whose tokens and FLOPs cap the run."""
    if budget is None:
        return 1, Budget()
    if isinstance(budget, bool) or not isinstance(budget, int | Budget):
        raise ConfigError(f"a budget is N (an int) or a Budget, not {budget!r}")
    if isinstance(budget, int):
        if budget < 1:
            raise ConfigError(f"the budget N must be at least 1, got {budget}")
        return budget, Budget()
    return budget.samples or 1, Budget(tokens=budget.tokens, flops=budget.flops)


class Trace:
    """The nodes a strategy visited: the problem at the root, (partial) solutions below."""

    def __init__(self, question: str) -> None:
        self._nodes: list[TraceNode] = [TraceNode(id=0, parent=None, text=question, kind="problem")]

    def add(self, parent: int, text: str, *, score: float | None = None, kind: str = "step") -> int:
        node = TraceNode(id=len(self._nodes), parent=parent, text=text, score=score, kind=kind)
        self._nodes.append(node)
        return node.id

    def update(self, node: int, **changes: Any) -> None:
        self._nodes[node] = replace(self._nodes[node], **changes)

    @property
    def nodes(self) -> tuple[TraceNode, ...]:
        return tuple(self._nodes)


@dataclass
class Run:
    """One problem being solved: the metered models, the budget N and the trace.

    Strategies keep every finished candidate in `candidates` (with the trace node
    that holds it in `nodes`), so a run stopped by a budget cap still answers.
    `on_text`, when a caller streams the run, takes the text of a strategy that
    writes its answer as one sample (`single`) as it is generated; `on_sample`
    takes `(sample, piece)` from a strategy whose samples race for the answer
    (`first_finish`), each sample's text as it is generated.
    """

    problem: Problem
    task: Task
    n: int
    generator: MeteredGenerator
    verifier: MeteredVerifier | None
    meter: BudgetMeter
    seed: int | None
    trace: Trace
    candidates: list[Candidate] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    on_text: Callable[[str], None] | None = None
    on_sample: Callable[[int, str], None] | None = None
    _calls: int = 0

    def prompt(self, continuation: str = "") -> Prompt:
        """The problem's prompt, continued by a partial solution."""
        return self.task.prompt(self.problem).continued(continuation)

    def call_seed(self) -> int | None:
        """A fresh seed for the run's next call: reproducible, never reused within the run."""
        self._calls += 1
        return None if self.seed is None else derive_seed(self.seed, self._calls)

    def keep(self, candidate: Candidate, node: int) -> None:
        self.candidates.append(candidate)
        self.nodes.append(node)

    def pick(self, index: int, details: dict[str, Any] | None = None) -> Choice:
        """The choice of candidate `index`, counted over all the run's candidates (a pilot's
        included, in the order they were kept), with the trace node that holds it."""
        return Choice(self.candidates[index], self.nodes[index], details or {})


@dataclass(frozen=True, slots=True)
class Choice:
    """What a strategy picked: the candidate (None: no answer), its trace node, and what
    the strategy reports about its run (`Result.details`)."""

    candidate: Candidate | None
    node: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Progress:
    """A run between two rounds (a round: one generator call and what the strategy does
    with it): the rounds finished, the candidates kept so far and the spend so far.
    What a server streams while a search goes on."""

    round: int
    candidates: tuple[Candidate, ...]
    cost: Cost


P = TypeVar("P")


class BaseStrategy(ABC, Generic[P]):
    """The shared runner. A subclass sets `name` and `Params`, and writes `solve` and `select`.

    Args:
        generator: the LLM backend.
        task: prompt format, step separator, answer extractor and grader.
        verifier: the PRM or other verifier, for strategies that need one.
        params: the strategy's parameter object; default: its defaults.
        seed: makes runs reproducible; each problem gets its own stream of it.
    """

    name: ClassVar[str]
    Params: ClassVar[type]
    needs_verifier: ClassVar[bool] = False
    # True when a budget-N run draws its N samples in one call and only selects among
    # them, so that the first n of N samples make a budget-n run (sample reuse).
    samples_once: ClassVar[bool] = False

    def __init__(
        self,
        generator: Generator,
        task: Task,
        verifier: Verifier | None = None,
        params: P | None = None,
        *,
        seed: int | None = 0,
    ) -> None:
        if params is not None and not isinstance(params, self.Params):
            raise ConfigError(
                f"{self.name} takes {self.Params.__name__}, not {type(params).__name__}"
            )
        self.generator = generator
        self.task = task
        self.verifier = verifier
        self.params: P = params if params is not None else self.Params()
        self.seed = seed
        if verifier is None and self.uses_verifier(self.params):
            raise ConfigError(f"the {self.name} strategy needs a verifier (a PRM); give one")

    @classmethod
    def uses_verifier(cls, params: Any) -> bool:
        """Whether this strategy, with these parameters, calls a verifier."""
        return cls.needs_verifier

    @abstractmethod
    def sample_limit(self, n: int) -> int:
        """The most completions (whole solutions or single steps) this strategy draws at N."""

    @abstractmethod
    async def solve(self, run: Run) -> Choice:
        """Spend the run's budget on its problem and pick an answer."""

    def select(self, run: Run) -> Choice:
        """The pick among `run.candidates`: one with an answer before one without, then the
        highest score (a candidate's best one), then the first. Also what a run stopped
        by a budget cap answers."""
        if not run.candidates:
            return Choice(None)
        best = max(
            range(len(run.candidates)),
            key=lambda i: (run.candidates[i].answer is not None, _score(run.candidates[i]), -i),
        )
        return run.pick(best)

    def sampling(self, run: Run, **values: Any) -> SamplingParams:
        """Sampling parameters for the run's next call, with a fresh seed."""
        return SamplingParams(seed=run.call_seed(), **values)

    async def arun(self, problem: Problem, budget: Budget | int | None = None) -> Result:
        [result] = await self.arun_many([problem], budget)
        return result

    def run(self, problem: Problem, budget: Budget | int | None = None) -> Result:
        return run_sync(self.arun(problem, budget))

    async def arun_many(
        self,
        problems: Sequence[Problem],
        budget: Budget | int | None = None,
        *,
        on_result: Callable[[int, Result], None] | None = None,
        on_progress: Callable[[int, Progress], None] | None = None,
        on_text: Callable[[int, str], None] | None = None,
        on_sample: Callable[[int, int, str], None] | None = None,
    ) -> list[Result]:
        """Solve `problems` concurrently, each under its own `budget`, their calls merged.

        `on_result(index, result)` is called as each problem finishes,
        `on_progress(index, progress)` as each of its rounds ends (when the next begins),
        `on_text(index, piece)` with the answer's text as it is generated, by a
        strategy that writes its answer as one sample (`Run.on_text`), and
        `on_sample(index, sample, piece)` with racing samples' text as it is generated
        (`Run.on_sample`).
        """
        n, caps = budget_n(budget)
        generator = CoalescingGenerator.over(self.generator)
        verifier = CoalescingVerifier.over(self.verifier) if self.verifier is not None else None

        async def one(index: int, problem: Problem) -> Result:
            observe = None if on_progress is None else functools.partial(on_progress, index)
            text = None if on_text is None else functools.partial(on_text, index)
            samples = None if on_sample is None else functools.partial(on_sample, index)
            result = await self._run_one(
                problem, index, n, caps, generator, verifier, observe, text, samples
            )
            if on_result is not None:
                on_result(index, result)
            return result

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(problems))))

    def run_many(
        self, problems: Sequence[Problem], budget: Budget | int | None = None
    ) -> list[Result]:
        return run_sync(self.arun_many(problems, budget))

    async def _run_one(
        self,
        problem: Problem,
        index: int,
        n: int,
        caps: Budget,
        generator: Generator,
        verifier: Verifier | None,
        on_progress: Callable[[Progress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_sample: Callable[[int, str], None] | None = None,
    ) -> Result:
        rounds = 0

        def round_ended() -> None:
            nonlocal rounds
            if rounds and on_progress is not None:
                on_progress(Progress(rounds, tuple(run.candidates), meter.cost()))
            rounds += 1

        meter = BudgetMeter(replace(caps, samples=self.sample_limit(n)), on_call=round_ended)
        run = Run(
            problem=problem,
            task=self.task,
            n=n,
            generator=meter.wrap(generator),
            verifier=meter.wrap_verifier(verifier) if verifier is not None else None,
            meter=meter,
            # Seeded by the problem, not its position: it samples the same alone or in a batch.
            seed=None if self.seed is None else derive_seed(self.seed, problem.id),
            trace=Trace(problem.question),
            on_text=on_text,
            on_sample=on_sample,
        )
        stopped = False
        try:
            choice = await self.solve(run)
        except BudgetExhausted:
            stopped = True
            choice = self.select(run)
        chosen = choice.candidate
        return Result(
            strategy=self.name,
            answer=chosen.answer if chosen is not None else None,
            chosen=chosen,
            candidates=tuple(run.candidates),
            cost=meter.cost(),
            trace=run.trace.nodes,
            stopped_by_budget=stopped,
            budget=n,
            chosen_node=choice.node,
            details=choice.details,
        )


def _score(candidate: Candidate) -> float:
    return max(candidate.scores.values(), default=0.0)
