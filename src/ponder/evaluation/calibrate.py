"""`ponder calibrate`: measure candidate configurations behind one pilot and keep the best per bin.

Every candidate runs as `compute_optimal` with `force` set to it, so each one
pays for, and sees, the same pilot that `compute_optimal` will read at run
time. The runs go through the evaluation harness (a resumable store beside
the policy file, a progress bar), then `make_policy` bins the problems by the
pilot's reading and keeps, per (budget, bin), one configuration among those run at
that budget or at a smaller one: a budget is a cap, and where 16 samples did as well
as 64 the policy spends 16. Which one is the `rule`'s choice: "best", the best
estimated accuracy (the fewest generated tokens on a tie), or "one-se", the fewest
generated tokens among those whose estimate is within one standard error of the
best's (Breiman et al.'s one-standard-error rule: a difference the calibration
cannot tell from noise does not buy a costlier configuration). `calibrate` also takes
"auto": per budget, the rule whose policy cross-validates better there on the
calibration problems, the cheaper on a tie.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig, StrategySpec, strategy_specs
from ponder.evaluation.runner import Progress, Sweep
from ponder.evaluation.store import Row, Store
from ponder.policy import (
    AUTO,
    READINGS,
    RULES,
    Configuration,
    Entry,
    Policy,
    bin_of,
    identify,
    quantile_edges,
)

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


# How many problems' worth of weight a configuration's accuracy over all bins has in its
# estimate for one bin: a bin of 20 problems is then trusted about two thirds.
DEFAULT_SHRINK = 10.0
DEFAULT_FOLDS = 5
DEFAULT_RULE = RULES[0]


class _Option(NamedTuple):
    """One configuration measured at one budget, for one bin. Compared as a tuple, the
    best is the most accurate, then the cheapest, then the larger budget (the same
    cost measured: fewer samples were not needed)."""

    accuracy: float
    saved: float  # minus the generated tokens, so that max prefers the cheaper
    budget: int
    configuration: str


def make_policy(
    rows: list[Row],
    *,
    bins: int,
    pilot: int,
    models: dict[str, Any],
    made_with: dict[str, Any],
    shrink: float = DEFAULT_SHRINK,
    reading: str = READINGS[0],
    rule: str = DEFAULT_RULE,
) -> Policy:
    """The policy that the stored calibration results support.

    A configuration's accuracy in one (budget, bin) is estimated from the few
    problems of that bin, so the raw rate of each is shrunk toward the same
    configuration's rate over every bin at that budget, with the weight of
    `shrink` problems (empirical-Bayes partial pooling; 0: the raw rates). Each
    entry records its estimate, the raw rate and the estimate's standard error.
    `rule` says which of a (budget, bin)'s options is kept (see the module's text).
    """
    if not rows:
        raise ConfigError("no calibration results to make a policy from")
    if shrink < 0:
        raise ConfigError(f"shrink must be >= 0, got {shrink}")
    if rule not in RULES:
        raise ConfigError(f"unknown rule {rule!r}: one of {', '.join(RULES)}")
    readings = _readings(rows)
    edges = quantile_edges(list(readings.values()), bins)
    # (budget, bin) -> configuration -> correctness and tokens, over problems and seeds
    right: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tokens: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    overall: dict[tuple[int, str], list[float]] = defaultdict(list)
    members: dict[tuple[int, int], set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        forced = _forced(row.strategy)
        cell = (row.budget, bin_of(edges, readings[(row.task, row.problem)]))
        members[cell].add((row.task, row.problem))
        right[cell][forced].append(float(row.correct))
        tokens[cell][forced].append(float(row.generated_tokens))
        overall[(row.budget, forced)].append(float(row.correct))
    prior = {key: statistics.fmean(v) for key, v in overall.items()}

    def estimate(budget: int, configuration: str, outcomes: list[float]) -> tuple[float, float]:
        n = len(outcomes)
        p = (sum(outcomes) + shrink * prior[(budget, configuration)]) / (n + shrink)
        return p, (p * (1 - p) / (n + shrink)) ** 0.5

    estimated = {
        cell: {c: estimate(cell[0], c, v) for c, v in by.items()} for cell, by in right.items()
    }
    raw_in = {cell: {c: statistics.fmean(v) for c, v in by.items()} for cell, by in right.items()}
    tokens_in = {
        cell: {c: statistics.fmean(v) for c, v in by.items()} for cell, by in tokens.items()
    }
    table: dict[int, list[Entry]] = {}
    budgets = sorted({b for b, _ in right})
    for budget in budgets:
        choices = []
        for b in range(1, len(edges) + 2):
            if (budget, b) not in estimated:
                raise ConfigError(f"no calibration results for budget {budget}, bin {b}")
            options = [  # every (configuration, budget) up to this one
                _Option(est[0], -tokens_in[(under, b)][c], under, c)
                for under in budgets
                if under <= budget
                for c, est in estimated.get((under, b), {}).items()
            ]
            chosen = max(options)
            if rule == "one-se":  # the cheapest within one standard error of the best
                floor = chosen.accuracy - estimated[(chosen.budget, b)][chosen.configuration][1]
                near = [o for o in options if o.accuracy >= floor]
                chosen = max(near, key=lambda o: (o.saved, o.accuracy, o.budget, o.configuration))
            accuracy, spend, best = chosen.accuracy, chosen.budget, chosen.configuration
            problems = len(members[(budget, b)])  # seeds repeat a problem
            choices.append(
                Entry(
                    configuration=best,
                    accuracy=round(accuracy, 4),
                    problems=problems,
                    accuracies={
                        c: round(e[0], 4) for c, e in sorted(estimated[(budget, b)].items())
                    },
                    generated_tokens={
                        c: round(t, 1) for c, t in sorted(tokens_in[(budget, b)].items())
                    },
                    budget=spend,
                    raw_accuracy=round(raw_in[(spend, b)][best], 4),
                    stderr=round(estimated[(spend, b)][best][1], 4),
                )
            )
        table[budget] = choices
    return Policy(
        pilot=pilot,
        edges=tuple(round(e, 6) for e in edges),
        table={b: tuple(c) for b, c in table.items()},
        models=models,
        made_with={**made_with, "shrink": shrink, "rule": rule},
        reading=reading,
    )


def cross_validate(
    rows: list[Row],
    *,
    bins: int,
    pilot: int,
    shrink: float,
    folds: int = DEFAULT_FOLDS,
    rule: str = DEFAULT_RULE,
) -> dict[int, dict[str, Any]]:
    """Per budget, the accuracy and generated tokens of the policy on problems it was not
    made from.

    The problems are split into `folds` folds; a policy made from all but one
    fold chooses, for each problem of that fold, a configuration and budget by
    the problem's pilot reading, and the stored result of that configuration on
    that problem is what it scores. For comparison, the best single configuration
    on the other folds is scored the same way (`best_fixed`, and its name), and so
    is the in-sample accuracy the policy reports of itself (`in_sample`).
    `policy_tokens` and `fixed_tokens` are the mean generated tokens per problem of
    the held-out choices.
    """
    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    readings = _readings(rows)
    problems = sorted(readings)
    if len(problems) < folds:
        raise ConfigError(f"{len(problems)} problems cannot make {folds} folds")
    fold_of = {key: i % folds for i, key in enumerate(problems)}
    # (problem, configuration, budget) -> (correct, generated tokens) per seed
    outcome: dict[tuple[tuple[str, str], str, int], list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        outcome[((row.task, row.problem), _forced(row.strategy), row.budget)].append(
            (float(row.correct), float(row.generated_tokens))
        )

    def mean(stored: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.fmean(c for c, _ in stored), statistics.fmean(t for _, t in stored)

    budgets = sorted({r.budget for r in rows})
    scored: dict[int, dict[str, list[tuple[float, float]]]] = {
        b: defaultdict(list) for b in budgets
    }
    fixed_names: dict[int, list[str]] = defaultdict(list)

    def made(subset: list[Row]) -> Policy:
        return make_policy(
            subset, bins=bins, pilot=pilot, models={}, made_with={}, shrink=shrink, rule=rule
        )

    for fold in range(folds):
        train = [r for r in rows if fold_of[(r.task, r.problem)] != fold]
        held = [key for key in problems if fold_of[key] == fold]
        policy = made(train)
        for budget in budgets:
            fixed = _best_fixed(train, budget)
            fixed_names[budget].append(fixed)
            for key in held:
                configuration, spend = policy.choose(budget, readings[key])
                chosen = outcome.get((key, str(configuration), spend))
                if chosen:
                    scored[budget]["policy"].append(mean(chosen))
                stored = outcome.get((key, fixed, budget))
                if stored:
                    scored[budget]["best_fixed"].append(mean(stored))
    whole = made(rows)
    report: dict[int, dict[str, Any]] = {}
    for budget in budgets:
        in_sample = [
            mean(outcome[(key, str(c), n)])[0]
            for key in problems
            for c, n in [whole.choose(budget, readings[key])]
            if outcome.get((key, str(c), n))
        ]
        names = fixed_names[budget]
        policy_scores, fixed_scores = scored[budget]["policy"], scored[budget]["best_fixed"]
        report[budget] = {
            "policy": round(statistics.fmean(c for c, _ in policy_scores), 4),
            "best_fixed": round(statistics.fmean(c for c, _ in fixed_scores), 4),
            "fixed": max(set(names), key=names.count),
            "in_sample": round(statistics.fmean(in_sample), 4),
            "policy_tokens": round(statistics.fmean(t for _, t in policy_scores), 1),
            "fixed_tokens": round(statistics.fmean(t for _, t in fixed_scores), 1),
            "problems": len(problems),
            "folds": folds,
        }
    return report


def choose_rules(
    rows: list[Row], *, bins: int, pilot: int, shrink: float, folds: int = DEFAULT_FOLDS
) -> tuple[dict[int, str], dict[str, dict[int, dict[str, Any]]]]:
    """Per budget, the rule whose policy is the more accurate there on problems it was
    not made from (`cross_validate`), the cheaper on a tie; and each rule's
    cross-validation. A budget's row of a policy depends on the results at that budget
    and below only, so each budget may follow its own rule. The choice is made on the
    calibration problems alone: no test result picks it."""
    checked = {
        rule: cross_validate(rows, bins=bins, pilot=pilot, shrink=shrink, folds=folds, rule=rule)
        for rule in RULES
    }
    budgets = sorted(checked[RULES[0]])
    return {
        budget: max(
            RULES,
            key=lambda r: (checked[r][budget]["policy"], -checked[r][budget]["policy_tokens"]),
        )
        for budget in budgets
    }, checked


def _best_fixed(rows: list[Row], budget: int) -> str:
    """The configuration with the best accuracy at `budget` over `rows` (first by name on ties)."""
    by: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.budget == budget:
            by[_forced(row.strategy)].append(float(row.correct))
    return max(sorted(by), key=lambda c: statistics.fmean(by[c]))


def _readings(rows: list[Row]) -> dict[tuple[str, str], float]:
    """Each problem's pilot reading (every configuration saw the same pilot)."""
    readings: dict[tuple[str, str], float] = {}
    for row in rows:
        details = row.record.get("details", {})
        if "reading" not in details:
            raise ConfigError(f"result {row.key} has no pilot reading; is it a calibration run?")
        readings.setdefault((row.task, row.problem), details["reading"])
    return readings


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
    shrink: float = DEFAULT_SHRINK,
    folds: int = DEFAULT_FOLDS,
    rule: str = DEFAULT_RULE,
) -> Policy:
    """Run (or resume) the calibration sweep into `runs` and write the policy to `out`, with
    its cross-validated accuracy (`made_with["cross_validated"]`, see `cross_validate`)."""
    from ponder import __version__
    from ponder.sync import run_sync

    if any(s.name != NAME or "force" not in s.params for s in config.strategies):
        raise ConfigError("a calibration sweep runs compute_optimal forced to each candidate")
    if rule == AUTO and folds < 2:  # refused before the sweep, not after it
        raise ConfigError(
            f"--rule auto chooses by cross-validation: it needs --folds >= 2, not {folds}"
        )
    if rule not in (*RULES, AUTO):
        raise ConfigError(f"unknown rule {rule!r}: one of {', '.join((*RULES, AUTO))}")
    sweep = Sweep(dataclasses.replace(config, difficulty_samples=0), runs, progress=progress)
    try:
        run_sync(sweep.run())
        verifier = sweep.verifier
        models = {
            "generator": identify(sweep.generator),
            "verifier": identify(verifier) if verifier is not None else None,
        }
    finally:
        sweep.close()
    # Without a verifier the pilots were read by their agreement alone, and so must be later.
    reading = READINGS[0] if verifier is not None else "agreement"
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
    problems = made_with["problems"]

    def made(rule: str) -> Policy:
        return make_policy(
            rows,
            bins=bins,
            pilot=pilot,
            models=models,
            made_with=made_with,
            shrink=shrink,
            reading=reading,
            rule=rule,
        )

    if rule == AUTO:
        if problems < folds:
            raise ConfigError(
                f"--rule auto chooses by cross-validation over {folds} folds: {problems} "
                "problems are too few (give more, or fewer --folds)"
            )
        rules, checked = choose_rules(rows, bins=bins, pilot=pilot, shrink=shrink, folds=folds)
        made_with["rule_chosen_from"] = {
            r: {str(b): {k: v[k] for k in ("policy", "policy_tokens")} for b, v in cv.items()}
            for r, cv in checked.items()
        }
        made_with["cross_validated"] = {str(b): checked[r][b] for b, r in rules.items()}
        each = {r: made(r) for r in set(rules.values())}
        some = next(iter(each.values()))
        policy = dataclasses.replace(
            some,
            table={b: each[r].table[b] for b, r in rules.items()},
            made_with={**some.made_with, "rule": {str(b): r for b, r in rules.items()}},
        )
    else:
        if folds > 1 and problems >= folds:
            made_with["cross_validated"] = {
                str(b): v
                for b, v in cross_validate(
                    rows, bins=bins, pilot=pilot, shrink=shrink, folds=folds, rule=rule
                ).items()
            }
        policy = made(rule)
    policy.save(out)
    return policy
