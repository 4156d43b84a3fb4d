"""Running an evaluation sweep into its folder, resumably.

    run_eval(config, "runs/NAME")

The folder holds `config.json` and `results.sqlite` (`ponder.evaluation.store`).
Each problem's result is committed as soon as it is done, so a run killed at
any moment and started again with the same configuration skips what is stored
and does the rest; a different configuration in the same folder is refused.

Order of work, per task: the difficulty pass (samples per problem for the
oracle and predicted difficulty), then each strategy, seed and budget. Problems
are solved `batch` at a time with `arun_many`, which merges their backend
calls. Strategies that draw their samples once (`samples_once`) run at the
largest budget only and their smaller budgets are replayed from those samples
(`ponder.evaluation.reuse`); such rows are marked `reused`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig, StrategySpec
from ponder.evaluation.reuse import Recorder, Replayer, VerdictCache
from ponder.evaluation.store import Difficulty, Row, Store
from ponder.generators import Generator, load_generator
from ponder.identity import identify
from ponder.strategies.registry import make_strategy, strategy_class
from ponder.strategies.scoring import Sampling, agreement
from ponder.tasks import MATH_CHAT, MATH_RAW, Problem, Task, load_task
from ponder.tasks.files import fingerprint, is_data_file, load_file_task
from ponder.types import Result
from ponder.verifiers import Verifier, load_verifier

CONFIG_FILE = "config.json"
STORE_FILE = "results.sqlite"
# The difficulty pass samples with its own seed, apart from the sweep's seeds.
DIFFICULTY_SEED = 7_919


def load_config(folder: str | Path) -> EvalConfig:
    """The configuration stored in a run's folder."""
    path = Path(folder) / CONFIG_FILE
    try:
        return EvalConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigError(f"{folder} is not an evaluation run (no {CONFIG_FILE})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg}") from None


class Progress:
    """What a sweep reports as it goes; the CLI draws it as a progress bar."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str, correct: bool | None, tokens: int) -> None: ...

    def stop(self) -> None: ...


class Sweep:
    """One evaluation run: its configuration, its folder, its models and its store."""

    def __init__(
        self,
        config: EvalConfig,
        out: str | Path,
        *,
        progress: Progress | None = None,
        generator: Generator | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.out = Path(out)
        self.progress = progress or Progress()
        if generator is None:
            generator, verifier = load_models(config)
        self.generator, self.verifier = generator, verifier
        files = {t: fingerprint(t) for t in config.tasks if is_data_file(t) and Path(t).is_file()}
        self.config = replace(config, models=self._describe_models(config), task_files=files)
        self.tasks = {}
        for name in config.tasks:
            task = self._task(name)
            self.tasks[name] = replace(task, problems=config.shard_problems(task.problems))
        self.store = self._open_store()

    def _describe_models(self, config: EvalConfig) -> dict[str, Any]:
        """Names and fingerprints: the local folder, or a served model's config folder."""
        models = {"generator": identify(self.generator, config.model_config)}
        if self.verifier is not None:
            models["verifier"] = identify(self.verifier, config.prm_config)
        return models

    def _task(self, name: str) -> Task:
        if name == "arith":
            return load_task(name, split=self.config.split, limit=self.config.limit)
        from ponder.solve import default_format

        if is_data_file(name):
            task = load_file_task(name, self.config.fields, limit=self.config.limit)
        else:
            path = None if self.config.data is None else Path(self.config.data) / name
            task = load_task(name, path, split=self.config.split, limit=self.config.limit)
        chosen = {"chat": MATH_CHAT, "raw": MATH_RAW}.get(self.config.prompt_format)
        prompt_format = chosen or default_format(self.generator)
        if self.config.prompt_template is not None:
            prompt_format = replace(prompt_format, template=self.config.prompt_template)
        return task.with_format(prompt_format)

    def _open_store(self) -> Store:
        from ponder import __version__

        config_path = self.out / CONFIG_FILE
        if config_path.is_file():
            stored = load_config(self.out)
            differ = stored.differences(self.config)
            if differ:
                raise ConfigError(
                    f"{self.out} holds a different run (it differs in {', '.join(differ)}); "
                    "resume it with the same options, or give another --out"
                )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            payload = {**self.config.to_dict(), "ponder_version": __version__}
            config_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write to {self.out}: {exc.strerror}") from None
        store = Store(self.out / STORE_FILE)
        store.set_meta("config", self.config.to_dict())
        store.set_meta("ponder_version", __version__)
        return store

    def close(self) -> None:
        self.store.close()

    # -- the work ---------------------------------------------------------------------

    def remaining(self) -> int:
        """Results (and difficulty estimates) still to compute."""
        total = 0
        for name, task in self.tasks.items():
            ids = {p.id for p in task.problems}
            if self.config.difficulty_samples:
                total += len(ids - set(self.store.difficulty(name)))
            for spec in self.config.strategies:
                for seed in self.config.seeds:
                    for budget in self.config.budgets:
                        total += len(ids - self.store.done(name, spec.label, budget, seed))
        return total

    async def connect(self) -> None:
        """Check that model servers answer (local models need nothing)."""
        await self.generator.connect()
        if self.verifier is not None:
            await self.verifier.connect()

    def jobs(self) -> list[Job]:
        """The work not stored yet, in order: per task, the difficulty pass, then each
        strategy, seed and budget; `batch` problems a job."""
        jobs: list[Job] = []
        size = self.config.batch
        for name, task in self.tasks.items():
            if self.config.difficulty_samples:
                known = self.store.difficulty(name)
                todo = [p for p in task.problems if p.id not in known]
                jobs += [Job(name, chunk) for chunk in _chunks(todo, size)]
            for spec in self.config.strategies:
                for seed in self.config.seeds:
                    jobs += self._strategy_jobs(name, task, spec, seed)
        return jobs

    def _strategy_jobs(self, name: str, task: Task, spec: StrategySpec, seed: int) -> list[Job]:
        budgets = tuple(sorted(self.config.budgets))
        done = tuple(frozenset(self.store.done(name, spec.label, b, seed)) for b in budgets)
        if self.config.reuse and strategy_class(spec.name).samples_once and len(budgets) > 1:
            todo = [p for p in task.problems if any(p.id not in d for d in done)]
            return [
                Job(name, c, spec, seed, budgets, done) for c in _chunks(todo, self.config.batch)
            ]
        jobs = []
        for budget, stored in zip(budgets, done, strict=True):
            todo = [p for p in task.problems if p.id not in stored]
            jobs += [Job(name, c, spec, seed, (budget,)) for c in _chunks(todo, self.config.batch)]
        return jobs

    def commit(self, done: Done) -> None:
        """Store what a job finished, and count it."""
        if done.difficulty is not None:
            self.store.add_difficulty([done.difficulty])
            self.progress.advance("difficulty", None, done.tokens)
            return
        self.store.add(list(done.rows))
        for row, _ in done.rows:
            self.progress.advance(row.strategy, row.correct, row.generated_tokens)

    async def run(self, *, ray: str | None = None, actors: int | None = None) -> None:
        """Do the work not stored yet: here, or on the Ray cluster at `ray` ("auto", an
        address, or "local" for a cluster of this process's own), whose workers hand
        back what they finish for this process alone to store."""
        jobs = self.jobs()
        if ray is not None:
            from ponder.evaluation.distributed import run_on_ray

            self.progress.start(self.remaining())
            try:
                await run_on_ray(self, jobs, ray, actors)
            finally:
                self.progress.stop()
            return
        await self.connect()
        solver = Solver(self.config, self.generator, self.verifier, self.tasks)
        self.progress.start(self.remaining())
        try:
            for job in jobs:
                await solver.run(job, self.commit)
        finally:
            self.progress.stop()


def load_models(config: EvalConfig) -> tuple[Generator, Verifier | None]:
    """The sweep's generator and, when its strategies or options need one, its verifier."""
    generator = load_generator(
        config.model, model=config.served_model, shape_from=config.model_config
    )
    if config.prm is None and not config.uses_verifier:
        return generator, None
    if config.prm is None and config.model is not None:
        raise ConfigError("the strategies need a verifier: give one (--verifier FOLDER)")
    verifier = load_verifier(
        config.prm,
        kind=config.verifier_kind,  # type: ignore[arg-type]
        format=config.prm_format,
        model=config.served_prm,
        shape_from=config.prm_config,
    )
    return generator, verifier


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


def _chunks(items: Sequence[Problem], size: int) -> list[list[Problem]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
