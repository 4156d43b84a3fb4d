"""A sweep's work as jobs, and the solver that does them: the same code in one process and in
a Ray worker (`ponder.evaluation.distributed`), so both give the same answers.

A job is `batch` problems of the difficulty pass, or of one strategy and seed at
one budget (or, with sample reuse, at every budget from one set of samples).
What it finishes is handed on as `Done` pieces, each committed as one: a
problem's difficulty estimate, or a problem's result rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig, StrategySpec
from ponder.evaluation.reuse import Recorder, Replayer, VerdictCache
from ponder.evaluation.store import Difficulty, Row
from ponder.generators import Generator, load_generator
from ponder.strategies.registry import make_strategy
from ponder.strategies.scoring import Sampling, agreement
from ponder.tasks import Problem, Task
from ponder.types import Result
from ponder.verifiers import Verifier, load_verifier

# The difficulty pass samples with its own seed, apart from the sweep's seeds.
DIFFICULTY_SEED = 7_919


def load_models(config: EvalConfig) -> tuple[Generator, Verifier | None]:
    """The sweep's generator and, when its strategies or options need one, its verifier."""
    return sweep_generator(config), sweep_verifier(config)


def sweep_generator(config: EvalConfig) -> Generator:
    return load_generator(config.model, model=config.served_model, shape_from=config.model_config)


def sweep_verifier(config: EvalConfig) -> Verifier | None:
    """The verifier the sweep names, or its strategies need (None when neither)."""
    if config.prm is None and not config.uses_verifier:
        return None
    if config.prm is None and config.model is not None:
        raise ConfigError("the strategies need a verifier: give one (--verifier FOLDER)")
    return load_verifier(
        config.prm,
        kind=config.verifier_kind,  # type: ignore[arg-type]
        format=config.prm_format,
        model=config.served_prm,
        shape_from=config.prm_config,
    )


@dataclass(frozen=True, slots=True)
class Job:
    """One chunk of a sweep's work: the difficulty pass (no `spec`) or one strategy and
    seed over some problems, at one budget, or (sample reuse) at all `budgets` of the
    run, `done` holding per budget the problems stored already."""

    task: str
    problems: Sequence[Problem]
    spec: StrategySpec | None = None
    seed: int = 0
    budgets: tuple[int, ...] = ()
    done: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True, slots=True)
class Done:
    """What a job finished, to be stored as one: a problem's difficulty estimate (and the
    tokens it took), or a problem's result rows with their traces."""

    difficulty: Difficulty | None = None
    rows: tuple[tuple[Row, list[dict[str, Any]]], ...] = ()
    tokens: int = 0


class Solver:
    """Does a sweep's jobs with its models, handing each finished piece to `emit`: the same
    code in this process and in a Ray worker, so both give the same answers."""

    def __init__(
        self,
        config: EvalConfig,
        generator: Generator,
        verifier: Verifier | None,
        tasks: dict[str, Task],
    ) -> None:
        self.config, self.generator, self.verifier, self.tasks = config, generator, verifier, tasks

    async def connect(self) -> None:
        """Check that model servers answer (local models need nothing)."""
        await self.generator.connect()
        if self.verifier is not None:
            await self.verifier.connect()

    async def run(self, job: Job, emit: Callable[[Done], None]) -> None:
        task = self.tasks[job.task]
        if job.spec is None:
            await self._difficulty(job, task, emit)
        elif job.done:
            await self._reused(job, task, job.spec, emit)
        else:
            await self._plain(job, task, job.spec, emit)

    async def _plain(
        self, job: Job, task: Task, spec: StrategySpec, emit: Callable[[Done], None]
    ) -> None:
        """One budget of a strategy; each problem's row is committed as it finishes."""
        [budget] = job.budgets
        strategy = make_strategy(
            spec.name, self.generator, task, self.verifier, spec.params, seed=job.seed
        )
        problems = list(job.problems)

        def store(index: int, result: Result) -> None:
            problem = problems[index]
            row = make_row(job.task, task, problem, spec.label, budget, job.seed, result)
            emit(Done(rows=(row,)))

        await strategy.arun_many(problems, budget, on_result=store)

    async def collect(self, job: Job) -> list[Done]:
        """`run`, its pieces handed back together (a Ray worker's answer)."""
        out: list[Done] = []
        await self.run(job, out.append)
        return out

    def _sampling_values(self) -> dict[str, str]:
        """The sampling parameters every strategy was given (for the difficulty pass)."""
        shared: dict[str, str] = {}
        names = {f for f in Sampling.__dataclass_fields__}
        for spec in self.config.strategies:
            for key, value in spec.params.items():
                if key in names and all(s.params.get(key) == value for s in self.config.strategies):
                    shared[key] = value
        return shared

    async def _difficulty(self, job: Job, task: Task, emit: Callable[[Done], None]) -> None:
        """Oracle and predicted difficulty of each problem of the job.

        Oracle: the share of right answers among `difficulty_samples` samples.
        Predicted, without the gold answer: the verifier's mean outcome score over
        the same samples (Snell et al. 2024), or, with no verifier, the share of
        samples that agree with the most common answer.
        """
        strategy_name = "best_of_n" if self.verifier is not None else "majority"
        strategy = make_strategy(
            strategy_name,
            self.generator,
            task,
            self.verifier,
            self._sampling_values(),
            seed=DIFFICULTY_SEED,
        )
        problems = list(job.problems)

        def store(index: int, result: Result) -> None:
            problem = problems[index]
            right = sum(task.is_correct(c.answer, problem) for c in result.candidates)
            if self.verifier is not None:
                scores = [c.scores.get("outcome", 0.0) for c in result.candidates]
                predicted, source = (statistics.fmean(scores) if scores else 0.0), "verifier"
            else:
                predicted = agreement(task, result.candidates)
                source = "agreement"
            estimate = Difficulty(
                job.task, problem.id, len(result.candidates), right, predicted, source
            )
            emit(Done(difficulty=estimate, tokens=result.cost.generated_tokens))

        await strategy.arun_many(problems, self.config.difficulty_samples, on_result=store)

    async def _reused(
        self, job: Job, task: Task, spec: StrategySpec, emit: Callable[[Done], None]
    ) -> None:
        """Budgets of a `samples_once` strategy from one set of samples: the largest budget
        is run, the smaller ones replay prefixes of its samples. A problem's rows for all
        budgets are committed together."""
        budgets, chunk = list(job.budgets), list(job.problems)
        largest = budgets[-1]
        recorder = Recorder(self.generator)
        cache = VerdictCache(self.verifier) if self.verifier is not None else None
        full = make_strategy(spec.name, recorder, task, cache, spec.params, seed=job.seed)
        results: dict[int, list[Result]] = {largest: await full.arun_many(chunk, largest)}
        replayer = Replayer(self.generator, recorder.recorded)
        again = make_strategy(spec.name, replayer, task, cache, spec.params, seed=job.seed)
        for budget in budgets[:-1]:
            results[budget] = await again.arun_many(chunk, budget)
        for index, problem in enumerate(chunk):
            source = results[largest][index]
            rows = []
            for budget, stored in zip(budgets, job.done, strict=True):
                if problem.id in stored:
                    continue
                result = results[budget][index]
                reused = budget != largest
                if reused:  # the replay took no time: charge its share of the real run's
                    share = result.cost.generated_tokens / max(1, source.cost.generated_tokens)
                    result = replace(
                        result,
                        cost=replace(result.cost, wall_seconds=source.cost.wall_seconds * share),
                    )
                rows.append(
                    make_row(job.task, task, problem, spec.label, budget, job.seed, result, reused)
                )
            emit(Done(rows=tuple(rows)))


def make_row(
    task_name: str,
    task: Task,
    problem: Problem,
    label: str,
    budget: int,
    seed: int,
    result: Result,
    reused: bool = False,
) -> tuple[Row, list[dict[str, Any]]]:
    """The stored row of one result (graded here), and its trace nodes."""
    graded: dict[str | None, bool] = {}

    def right(answer: str | None) -> bool:
        if answer not in graded:
            graded[answer] = answer is not None and task.is_correct(answer, problem)
        return graded[answer]

    candidates = [
        {
            "text": c.text,
            "answer": c.answer,
            "correct": right(c.answer),
            "tokens": c.num_tokens,
            "finish_reason": c.finish_reason,
            "scores": dict(c.scores),
        }
        for c in result.candidates
    ]
    chosen = next((i for i, c in enumerate(result.candidates) if c is result.chosen), None)
    cost = result.cost
    record = {
        "question": problem.question,
        "answer": result.answer,
        "gold": problem.answer,
        "chosen": chosen,
        "chosen_node": result.chosen_node,
        "candidates": candidates,
        "cost": asdict(cost),
        "details": result.details,
    }
    row = Row(
        task=task_name,
        strategy=label,
        budget=budget,
        seed=seed,
        problem=problem.id,
        correct=right(result.answer),
        answer=result.answer,
        gold=problem.answer,
        samples=len(candidates),
        right_samples=sum(c["correct"] for c in candidates),
        prompt_tokens=cost.prompt_tokens,
        generated_tokens=cost.generated_tokens,
        verifier_tokens=cost.verifier_tokens,
        flops=cost.flops,
        wall_seconds=cost.wall_seconds,
        reused=reused,
        stopped_by_budget=result.stopped_by_budget,
        record=record,
    )
    return row, [asdict(node) for node in result.trace]
