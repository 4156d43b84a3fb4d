"""`ponder calibrate`: measure candidate configurations behind one pilot and keep the best per bin.

Every candidate runs as `compute_optimal` with `force` set to it, so each one
pays for, and sees, the same pilot that `compute_optimal` will read at run
time. The runs go through the evaluation harness (a resumable store beside
the policy file, a progress bar), then `make_policy` bins the problems by the
pilot's reading and keeps, per (budget, bin), the configuration with the best
accuracy (the fewest generated tokens on a tie), among those run at that budget or
at a smaller one: a budget is a cap, and where 16 samples did as well as 64 the
policy spends 16.
"""

from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig, StrategySpec, strategy_specs
from ponder.evaluation.runner import Progress, Sweep
from ponder.evaluation.store import Row, Store
from ponder.policy import Configuration, Entry, Policy, bin_of, identify, quantile_edges

NAME = "compute_optimal"


def candidate_specs(
    strategies: list[str], pairs: dict[str, str], *, pilot: int
) -> tuple[StrategySpec, ...]:
    """`compute_optimal` forced to each candidate, with its own and the shared parameters.

    "beam_search.beam_width=4" sets a candidate's parameter; a bare pair
    ("max_tokens=256") is `compute_optimal`'s own, which it passes on.
    """
    if NAME in strategies:
        raise ConfigError("compute_optimal cannot be a candidate of its own policy")
    own = {k: v for k, v in pairs.items() if "." not in k}
    per = strategy_specs(strategies, {k: v for k, v in pairs.items() if "." in k})
    specs = []
    for spec in per:
        configuration = Configuration(spec.name, tuple(sorted(spec.params.items())))
        params = {**own, "force": str(configuration), "pilot": str(pilot)}
        specs.append(StrategySpec(NAME, params, shown=("force",)))
    return tuple(specs)


def make_policy(
    rows: list[Row], *, bins: int, pilot: int, models: dict[str, Any], made_with: dict[str, Any]
) -> Policy:
    """The policy that the stored calibration results support."""
    if not rows:
        raise ConfigError("no calibration results to make a policy from")
    readings: dict[tuple[str, str], float] = {}
    for row in rows:
        details = row.record.get("details", {})
        if "reading" not in details:
            raise ConfigError(f"result {row.key} has no pilot reading; is it a calibration run?")
        readings.setdefault((row.task, row.problem), details["reading"])
    edges = quantile_edges(list(readings.values()), bins)
    # (budget, bin) -> configuration -> correctness and tokens, over problems and seeds
    right: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tokens: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    members: dict[tuple[int, int], set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        forced = _forced(row.strategy)
        cell = (row.budget, bin_of(edges, readings[(row.task, row.problem)]))
        members[cell].add((row.task, row.problem))
        right[cell][forced].append(float(row.correct))
        tokens[cell][forced].append(float(row.generated_tokens))
    accuracy_in = {
        cell: {c: statistics.fmean(v) for c, v in by.items()} for cell, by in right.items()
    }
    tokens_in = {
        cell: {c: statistics.fmean(v) for c, v in by.items()} for cell, by in tokens.items()
    }
    table: dict[int, list[Entry]] = {}
    budgets = sorted({b for b, _ in right})
    for budget in budgets:
        choices = []
        for b in range(1, len(edges) + 2):
            if (budget, b) not in accuracy_in:
                raise ConfigError(f"no calibration results for budget {budget}, bin {b}")
            accuracies, spent = accuracy_in[(budget, b)], tokens_in[(budget, b)]
            # Every (configuration, budget) up to this one; on a tie the cheaper, then
            # the larger budget (the same cost measured: fewer samples were not needed).
            options = [
                (a, -tokens_in[(under, b)][c], under, c)
                for under in budgets
                if under <= budget
                for c, a in accuracy_in.get((under, b), {}).items()
            ]
            accuracy, _, spend, best = max(options)
            problems = len(members[(budget, b)])  # seeds repeat a problem
            choices.append(
                Entry(
                    configuration=best,
                    accuracy=round(accuracy, 4),
                    problems=problems,
                    accuracies={c: round(a, 4) for c, a in sorted(accuracies.items())},
                    generated_tokens={c: round(t, 1) for c, t in sorted(spent.items())},
                    budget=spend,
                )
            )
        table[budget] = choices
    return Policy(
        pilot=pilot,
        edges=tuple(round(e, 6) for e in edges),
        table={b: tuple(c) for b, c in table.items()},
        models=models,
        made_with=made_with,
    )


def _forced(label: str) -> str:
    """The configuration of a stored label "compute_optimal[force=...]"."""
    prefix = f"{NAME}[force="
    if not label.startswith(prefix) or not label.endswith("]"):
        raise ConfigError(f"{label!r} is not a calibration run's strategy")
    return str(Configuration.parse(label[len(prefix) : -1]))


def calibrate(
    config: EvalConfig,
    runs: str | Path,
    out: str | Path,
    *,
    bins: int,
    pilot: int,
    command: str,
    progress: Progress | None = None,
) -> Policy:
    """Run (or resume) the calibration sweep into `runs` and write the policy to `out`."""
    from ponder import __version__
    from ponder.sync import run_sync

    if any(s.name != NAME or "force" not in s.params for s in config.strategies):
        raise ConfigError("a calibration sweep runs compute_optimal forced to each candidate")
    sweep = Sweep(replace(config, difficulty_samples=0), runs, progress=progress)
    try:
        run_sync(sweep.run())
        models = {"generator": identify(sweep.generator), "verifier": identify(sweep.verifier)}
    finally:
        sweep.close()
    with Store(Path(runs) / "results.sqlite") as store:
        rows = list(store.rows())
    made_with = {
        "command": command,
        "tasks": list(config.tasks),
        "split": config.split,
        "problems": len({(r.task, r.problem) for r in rows}),
        "seeds": list(config.seeds),
        "budgets": list(config.budgets),
        "candidates": [s.params["force"] for s in config.strategies],
        "runs": str(runs),
        "ponder_version": __version__,
        "date": datetime.date.today().isoformat(),
    }
    policy = make_policy(rows, bins=bins, pilot=pilot, models=models, made_with=made_with)
    policy.save(out)
    return policy
