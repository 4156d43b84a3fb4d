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
from dataclasses import asdict, replace
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
        self.generator = generator or load_generator(
            config.model, model=config.served_model, shape_from=config.model_config
        )
        self.verifier = verifier
        if self.verifier is None and (config.prm is not None or config.uses_verifier):
            if config.prm is None and config.model is not None:
                raise ConfigError("the strategies need a verifier: give one (--verifier FOLDER)")
            self.verifier = load_verifier(
                config.prm,
                kind=config.verifier_kind,  # type: ignore[arg-type]
                format=config.prm_format,
                model=config.served_prm,
                shape_from=config.prm_config,
            )
        self.config = replace(config, models=self._describe_models(config))
        self.tasks = {name: self._task(name) for name in config.tasks}
        self.store = self._open_store()

    def _describe_models(self, config: EvalConfig) -> dict[str, Any]:
        """Names and fingerprints: the local folder, or a served model's config folder."""
        models = {"generator": identify(self.generator, config.model_config)}
        if self.verifier is not None:
            models["verifier"] = identify(self.verifier, config.prm_config)
        return models

    def _task(self, name: str) -> Task:
        path = (
            None if name == "arith" or self.config.data is None else Path(self.config.data) / name
        )
        task = load_task(name, path, split=self.config.split, limit=self.config.limit)
        if name != "arith":
            from ponder.solve import default_format

            chosen = {"chat": MATH_CHAT, "raw": MATH_RAW}.get(self.config.prompt_format)
            task = task.with_format(chosen or default_format(self.generator))
        return task

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

    async def run(self) -> None:
        await self.connect()
        self.progress.start(self.remaining())
        try:
            for name, task in self.tasks.items():
                if self.config.difficulty_samples:
                    await self._difficulty(name, task)
                for spec in self.config.strategies:
                    for seed in self.config.seeds:
                        await self._strategy(name, task, spec, seed)
        finally:
            self.progress.stop()

    def _sampling_values(self) -> dict[str, str]:
        """The sampling parameters every strategy was given (for the difficulty pass)."""
        shared: dict[str, str] = {}
        names = {f for f in Sampling.__dataclass_fields__}
        for spec in self.config.strategies:
            for key, value in spec.params.items():
                if key in names and all(s.params.get(key) == value for s in self.config.strategies):
                    shared[key] = value
        return shared

    async def _difficulty(self, name: str, task: Task) -> None:
        """Oracle and predicted difficulty of each problem not yet estimated.

        Oracle: the share of right answers among `difficulty_samples` samples.
        Predicted, without the gold answer: the verifier's mean outcome score over
        the same samples (Snell et al. 2024), or, with no verifier, the share of
        samples that agree with the most common answer.
        """
        known = self.store.difficulty(name)
        todo = [p for p in task.problems if p.id not in known]
        strategy_name = "best_of_n" if self.verifier is not None else "majority"
        strategy = make_strategy(
            strategy_name,
            self.generator,
            task,
            self.verifier,
            self._sampling_values(),
            seed=DIFFICULTY_SEED,
        )

        def store(problem: Problem, result: Result) -> None:
            right = sum(task.is_correct(c.answer, problem) for c in result.candidates)
            if self.verifier is not None:
                scores = [c.scores.get("outcome", 0.0) for c in result.candidates]
                predicted, source = (statistics.fmean(scores) if scores else 0.0), "verifier"
            else:
                predicted = agreement(task, result.candidates)
                source = "agreement"
            self.store.add_difficulty(
                [Difficulty(name, problem.id, len(result.candidates), right, predicted, source)]
            )
            self.progress.advance("difficulty", None, result.cost.generated_tokens)

        for chunk in _chunks(todo, self.config.batch):
            await strategy.arun_many(
                chunk,
                self.config.difficulty_samples,
                on_result=lambda i, r, chunk=chunk: store(chunk[i], r),
            )

    async def _strategy(self, name: str, task: Task, spec: StrategySpec, seed: int) -> None:
        budgets = sorted(self.config.budgets)
        done = {b: self.store.done(name, spec.label, b, seed) for b in budgets}
        reuse = self.config.reuse and strategy_class(spec.name).samples_once and len(budgets) > 1
        if reuse:
            todo = [p for p in task.problems if any(p.id not in done[b] for b in budgets)]
            for chunk in _chunks(todo, self.config.batch):
                await self._reused_chunk(name, task, spec, seed, chunk, budgets, done)
            return
        strategy = make_strategy(
            spec.name, self.generator, task, self.verifier, spec.params, seed=seed
        )
        for budget in budgets:
            todo = [p for p in task.problems if p.id not in done[budget]]
            for chunk in _chunks(todo, self.config.batch):
                await strategy.arun_many(
                    chunk,
                    budget,
                    on_result=self._storer(name, task, spec, seed, budget, chunk),
                )

    def _storer(
        self,
        name: str,
        task: Task,
        spec: StrategySpec,
        seed: int,
        budget: int,
        chunk: list[Problem],
    ) -> Callable[[int, Result], None]:
        def store(index: int, result: Result) -> None:
            row = make_row(name, task, chunk[index], spec.label, budget, seed, result)
            self.store.add([row])
            self.progress.advance(spec.label, row[0].correct, row[0].generated_tokens)

        return store

    async def _reused_chunk(
        self,
        name: str,
        task: Task,
        spec: StrategySpec,
        seed: int,
        chunk: list[Problem],
        budgets: list[int],
        done: dict[int, set[str]],
    ) -> None:
        """Budgets of a `samples_once` strategy from one set of samples: the largest budget
        is run, the smaller ones replay prefixes of its samples. A problem's rows for all
        budgets are committed together."""
        largest = budgets[-1]
        recorder = Recorder(self.generator)
        cache = VerdictCache(self.verifier) if self.verifier is not None else None
        full = make_strategy(spec.name, recorder, task, cache, spec.params, seed=seed)
        results: dict[int, list[Result]] = {largest: await full.arun_many(chunk, largest)}
        replayer = Replayer(self.generator, recorder.recorded)
        again = make_strategy(spec.name, replayer, task, cache, spec.params, seed=seed)
        for budget in budgets[:-1]:
            results[budget] = await again.arun_many(chunk, budget)
        for index, problem in enumerate(chunk):
            source = results[largest][index]
            rows = []
            for budget in budgets:
                if problem.id in done[budget]:
                    continue
                result = results[budget][index]
                reused = budget != largest
                if reused:  # the replay took no time: charge its share of the real run's
                    share = result.cost.generated_tokens / max(1, source.cost.generated_tokens)
                    result = replace(
                        result,
                        cost=replace(result.cost, wall_seconds=source.cost.wall_seconds * share),
                    )
                rows.append(make_row(name, task, problem, spec.label, budget, seed, result, reused))
            self.store.add(rows)
            for row, _ in rows:
                self.progress.advance(spec.label, row.correct, row.generated_tokens)


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
