"""One measured sweep on the arith test split, for the benchmark scripts beside this file.

`arith_sweep` runs (resumably) the strategies at the budgets through the evaluation
harness into a folder and returns what that folder's store holds, by (strategy label,
budget) and problem. What is all stored already is not run again, so a folder that a
later stage extended (more budgets) still answers an earlier stage's smaller request.

With `kept`, the measurement also lives in a folder meant to be committed: `keep` writes
the store's results there without their candidates and traces (what the benchmarks'
numbers are computed from, a few hundred bytes a result), and `restore` seeds a new
store from it. A fresh checkout then prints the numbers without rerunning hours of
sampling, and resumes a measurement that an earlier machine left unfinished.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ponder.evaluation import EvalConfig, Store, StrategySpec, Sweep
from ponder.evaluation.progress import RichProgress
from ponder.evaluation.runner import CONFIG_FILE, STORE_FILE, load_config
from ponder.evaluation.store import Difficulty, Row
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
    kept: Path | None = None,
) -> Table:
    """The stored results of `strategies` at `budgets` on the first `problems` test
    problems (none of the others the folder may hold), run first (what is not stored
    yet) unless `run` is false; seeded from and written back to `kept` when given."""
    ids = {p.id for p in arith_task("test", problems).problems}
    if kept is not None:
        restore(kept, out)
    try:
        if run and not _stored(out, strategies, budgets, ids, difficulty_samples):
            config = EvalConfig(
                tasks=("arith",),
                strategies=tuple(strategies),
                budgets=budgets,
                limit=problems,
                difficulty_samples=difficulty_samples,
            )
            runner = Sweep(config, out, progress=RichProgress())
            try:
                run_sync(runner.run())
            finally:
                runner.close()
    finally:  # what was measured before an interruption is kept too
        if kept is not None:
            keep(out, kept)
    table: Table = {}
    if not (out / STORE_FILE).exists():
        return table
    with Store(out / STORE_FILE) as store:
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
    if not (out / STORE_FILE).exists():
        return False
    with Store(out / STORE_FILE) as store:
        if difficulty_samples and not ids <= set(store.difficulty("arith")):
            return False
        return all(
            ids <= store.done("arith", spec.label, budget, 0)
            for spec in strategies
            for budget in budgets
        )


ROWS, DIFFICULTY = "rows.jsonl", "difficulty.jsonl"
KEPT_RECORD = ("details", "cost")  # what a kept result holds of its record


def keep(out: Path, kept: Path) -> None:
    """Write the run in `out` to the folder `kept`: its configuration, and its results and
    difficulty estimates a JSON line each, in key order (so that a diff shows what a run
    added). A result keeps its columns, its strategy's `details` and its full `cost` (the
    verifier's generated tokens are there only); its candidates and search trace stay in
    the store.

    `kept` holds a part of this store already (`restore` leaves the store a superset of
    it), and stored results are never changed, only added: where the counts agree there
    is nothing new, and the store's records (every candidate, as JSON) are not read."""
    if not (out / STORE_FILE).exists():
        return
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / CONFIG_FILE, kept / CONFIG_FILE)
    with Store(out / STORE_FILE) as store:
        stored = store.count(), len(store.difficulty("arith"))
        if stored == (_lines(kept / ROWS), _lines(kept / DIFFICULTY)) and _complete(kept / ROWS):
            return
        rows = sorted(store.rows(), key=lambda row: row.key)
        estimates = sorted(store.difficulty("arith").values(), key=lambda d: d.problem)
    slim = [
        {**asdict(row), "record": {k: row.record[k] for k in KEPT_RECORD if k in row.record}}
        for row in rows
    ]
    for name, items in ((ROWS, slim), (DIFFICULTY, [asdict(d) for d in estimates])):
        if not items:
            continue
        part = kept / f"{name}.{os.getpid()}.part"  # two processes may keep one folder
        part.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
        part.replace(kept / name)


def _complete(rows: Path) -> bool:
    """Whether the kept rows hold all of `KEPT_RECORD` (those kept before `cost` was do not:
    they are written again from the store)."""
    if not rows.exists():
        return True
    with rows.open(encoding="utf-8") as lines:
        first = lines.readline()
    return not first or set(KEPT_RECORD) <= json.loads(first)["record"].keys()


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def restore(kept: Path, out: Path) -> None:
    """Add to the store in `out` the results and difficulty estimates in `kept` that it
    lacks. Refused (SystemExit) where `out` holds a run of other models."""
    if not (kept / ROWS).exists():
        return
    if (out / CONFIG_FILE).exists():
        mine, theirs = load_config(out), load_config(kept)
        if "models" in mine.differences(theirs):
            raise SystemExit(f"{out} and {kept} hold runs of different models: move one away")
    else:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept / CONFIG_FILE, out / CONFIG_FILE)
    rows = [Row(**json.loads(line)) for line in (kept / ROWS).read_text().splitlines()]
    lines = (kept / DIFFICULTY).read_text().splitlines() if (kept / DIFFICULTY).exists() else []
    estimates = [Difficulty(**json.loads(line)) for line in lines]
    with Store(out / STORE_FILE) as store:
        groups = {(r.task, r.strategy, r.budget, r.seed) for r in rows}
        have = {(*g, p) for g in groups for p in store.done(*g)}
        missing = [(row, None) for row in rows if row.key not in have]
        known = store.difficulty("arith")
        unknown = [d for d in estimates if d.problem not in known]
        # Nothing written when nothing is missing: another process may be running this folder.
        if missing:
            store.add(missing)
        if unknown:
            store.add_difficulty(unknown)
