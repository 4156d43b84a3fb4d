"""One measured sweep on the arith test split, for the benchmark scripts beside this file.

`arith_sweep` runs (resumably) the strategies at the budgets through the evaluation
harness into a folder and returns what that folder's store holds, by (strategy label,
budget) and problem. What is all stored already is not run again, so a folder that a
later stage extended (more budgets) still answers an earlier stage's smaller request.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ponder.evaluation import EvalConfig, Store, StrategySpec, Sweep
from ponder.evaluation.store import Row
from ponder.sync import run_sync
from ponder.tasks.arith import arith_task

Table = dict[tuple[str, int], dict[str, Row]]


def arith_sweep(
    out: Path,
    strategies: Sequence[StrategySpec],
    budgets: tuple[int, ...],
    problems: int,
    *,
    difficulty_samples: int = 0,
    run: bool = True,
) -> Table:
    """The stored results of `strategies` at `budgets` on the first `problems` test
    problems (none of the others the folder may hold), run first (what is not stored
    yet) unless `run` is false."""
    ids = {p.id for p in arith_task("test", problems).problems}
    if run and not _stored(out, strategies, budgets, ids, difficulty_samples):
        config = EvalConfig(
            tasks=("arith",),
            strategies=tuple(strategies),
            budgets=budgets,
            limit=problems,
            difficulty_samples=difficulty_samples,
        )
        runner = Sweep(config, out)
        try:
            run_sync(runner.run())
        finally:
            runner.close()
    table: Table = {}
    if not (out / "results.sqlite").exists():
        return table
    with Store(out / "results.sqlite") as store:
        for row in store.rows():
            if row.problem in ids:
                table.setdefault((row.strategy, row.budget), {})[row.problem] = row
    return table


def _stored(
    out: Path,
    strategies: Sequence[StrategySpec],
    budgets: tuple[int, ...],
    ids: set[str],
    difficulty_samples: int,
) -> bool:
    """Whether `out` holds every result (seed 0) and difficulty estimate asked for, on the
    problems `ids`. (`Sweep.remaining` says the same, but opening a `Sweep` refuses a
    request smaller than what its folder holds, and loads the models.)"""
    if not (out / "results.sqlite").exists():
        return False
    with Store(out / "results.sqlite") as store:
        if difficulty_samples and not ids <= set(store.difficulty("arith")):
            return False
        return all(
            ids <= store.done("arith", spec.label, budget, 0)
            for spec in strategies
            for budget in budgets
        )
