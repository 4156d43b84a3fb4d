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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig, StrategySpec
from ponder.evaluation.jobs import Done, Job, Solver, sweep_generator, sweep_verifier
from ponder.evaluation.store import Store
from ponder.generators import Generator
from ponder.identity import identify
from ponder.strategies.registry import strategy_class
from ponder.tasks import MATH_CHAT, MATH_RAW, Problem, Task, load_task
from ponder.tasks.files import fingerprint, is_data_file, load_file_task
from ponder.verifiers import Verifier

CONFIG_FILE = "config.json"
STORE_FILE = "results.sqlite"


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
        self.generator = generator or sweep_generator(config)
        self.verifier = verifier if verifier is not None else sweep_verifier(config)
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
        solver = Solver(self.config, self.generator, self.verifier, self.tasks)
        if ray is None:
            await solver.connect()  # on Ray, each worker checks its own
        self.progress.start(self.remaining())
        try:
            if ray is not None:
                from ponder.evaluation.distributed import run_on_ray

                await run_on_ray(jobs, self.config, self.tasks, self.commit, ray, actors)
            else:
                for job in jobs:
                    await solver.run(job, self.commit)
        finally:
            self.progress.stop()


def _chunks(items: Sequence[Problem], size: int) -> list[list[Problem]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
