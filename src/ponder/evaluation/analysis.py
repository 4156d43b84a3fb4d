"""From stored results to the numbers of a report: accuracy with intervals, bins, coverage, ratios.

Accuracy is per problem first (the mean over seeds), then over problems; its
interval is a percentile bootstrap over problems, so seeds are not counted as
independent problems.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError, PonderError
from ponder.evaluation.config import EvalConfig
from ponder.evaluation.runner import STORE_FILE, load_config
from ponder.evaluation.store import Difficulty, Row, Store
from ponder.metrics import (
    CoverageLaw,
    bootstrap_ci,
    compute_to_reach,
    coverage_curve,
    fit_coverage_law,
    quantile_bins,
)
from ponder.policy import Policy
from ponder.strategies.registry import strategy_class

BINS = 5


@dataclass(frozen=True, slots=True)
class Summary:
    """One (task, strategy, budget) point of a scaling curve."""

    task: str
    strategy: str
    budget: int
    n_problems: int
    accuracy: float
    ci_low: float
    ci_high: float
    generated_tokens_mean: float
    prompt_tokens_mean: float
    verifier_tokens_mean: float
    verifier_generated_tokens_mean: float
    flops_mean: float
    wall_seconds_mean: float
    generated_tokens_total: int
    reused: bool

    def as_json(self) -> dict[str, object]:
        return {
            "task": self.task,
            "strategy": self.strategy,
            "budget": self.budget,
            "n_problems": self.n_problems,
            "accuracy": self.accuracy,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "generated_tokens_mean": self.generated_tokens_mean,
            "flops_mean": self.flops_mean,
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    """Coverage (pass@k) against k for one source of i.i.d. samples, and its fitted law."""

    task: str
    source: str
    ks: tuple[int, ...]
    coverage: tuple[float, ...]
    law: CoverageLaw | None


@dataclass(frozen=True, slots=True)
class Ratio:
    """The compute `reference` needs to match `strategy`'s accuracy at `budget`, over its own."""

    task: str
    strategy: str
    reference: str
    budget: int
    accuracy: float
    tokens: float
    reference_tokens: float | None
    ratio: float | None


@dataclass
class Analysis:
    """Everything a report shows, for one or more runs."""

    runs: list[str]
    configs: dict[str, dict[str, object]]
    summaries: list[Summary]
    bins: dict[str, list[tuple[int, Summary]]] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    difficulty: dict[str, dict[str, Difficulty]] = field(default_factory=dict)
    # The compute-optimal policies the runs' `compute_optimal` strategies read, by file.
    policies: dict[str, Policy] = field(default_factory=dict)


def policies_of(configs: Iterable[dict[str, Any]]) -> dict[str, Policy]:
    """The policy files of the runs' `compute_optimal` strategies (the shipped one when a
    strategy names none), read; a file that is gone or unreadable is left out."""
    from ponder.strategies.compute_optimal import embedded_policy_file

    found: dict[str, Policy] = {}
    for config in configs:
        for spec in config.get("strategies", []):
            if spec.get("name") != "compute_optimal":
                continue
            file = str(spec.get("params", {}).get("policy") or embedded_policy_file())
            if file in found:
                continue
            try:
                found[file] = Policy.load(file)
            except PonderError:
                continue
    return found


def summarize(rows: Iterable[Row], *, seed: int = 0) -> list[Summary]:
    """One `Summary` per (task, strategy, budget), in the order first seen."""
    groups: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.strategy, row.budget)].append(row)
    out = []
    for (task, strategy, budget), members in groups.items():
        per_problem: dict[str, list[float]] = defaultdict(list)
        for row in members:
            per_problem[row.problem].append(float(row.correct))
        # By problem id, not the order rows were stored in (a Ray sweep stores them as its
        # workers finish): the seeded bootstrap then repeats whatever that order was.
        accuracies = [statistics.fmean(per_problem[p]) for p in sorted(per_problem)]
        low, high = bootstrap_ci(accuracies, seed=seed)
        out.append(
            Summary(
                task=task,
                strategy=strategy,
                budget=budget,
                n_problems=len(per_problem),
                accuracy=statistics.fmean(accuracies),
                ci_low=low,
                ci_high=high,
                generated_tokens_mean=statistics.fmean(r.generated_tokens for r in members),
                prompt_tokens_mean=statistics.fmean(r.prompt_tokens for r in members),
                verifier_tokens_mean=statistics.fmean(r.verifier_tokens for r in members),
                verifier_generated_tokens_mean=statistics.fmean(
                    r.record.get("cost", {}).get("verifier_generated_tokens", 0) for r in members
                ),
                flops_mean=statistics.fmean(r.flops for r in members),
                wall_seconds_mean=statistics.fmean(r.wall_seconds for r in members),
                generated_tokens_total=sum(r.generated_tokens for r in members),
                reused=any(r.reused for r in members),
            )
        )
    return sorted(out, key=lambda s: (s.task, s.strategy, s.budget))


def difficulty_bins(
    difficulty: dict[str, Difficulty], kind: str = "oracle", bins: int = BINS
) -> dict[str, int]:
    """Problem -> bin (1 easiest .. `bins` hardest), by oracle pass rate or predicted score."""
    ids = [p for p, d in difficulty.items() if kind == "oracle" or d.predicted is not None]
    values = [
        difficulty[p].oracle_pass_rate if kind == "oracle" else float(difficulty[p].predicted or 0)
        for p in ids
    ]
    return dict(zip(ids, quantile_bins(values, bins), strict=True))


def coverage_of(task: str, source: str, samples: Sequence[tuple[int, int]]) -> Coverage | None:
    """Coverage at k = 1, 2, 4, ... up to the smallest sample count, and its law."""
    if not samples:
        return None
    most = min(n for n, _ in samples)
    if most < 1:
        return None
    ks = []
    k = 1
    while k <= most:
        ks.append(k)
        k *= 2
    if ks[-1] != most:
        ks.append(most)
    values = coverage_curve(samples, ks)
    return Coverage(task, source, tuple(ks), tuple(values), fit_coverage_law(ks, values))


def compute_ratios(summaries: Sequence[Summary], reference: str) -> list[Ratio]:
    """Compute-matched ratios of every strategy against `reference`, per task and budget,
    compute being generated tokens per problem."""
    out = []
    for task in dict.fromkeys(s.task for s in summaries):
        curve = [
            (s.generated_tokens_mean, s.accuracy)
            for s in summaries
            if s.task == task and s.strategy == reference
        ]
        if not curve:
            continue
        for s in summaries:
            if s.task != task or s.strategy == reference:
                continue
            needed = compute_to_reach(curve, s.accuracy)
            ratio = None
            if needed is not None and s.generated_tokens_mean > 0:
                ratio = needed / s.generated_tokens_mean
            out.append(
                Ratio(
                    task,
                    s.strategy,
                    reference,
                    s.budget,
                    s.accuracy,
                    s.generated_tokens_mean,
                    needed,
                    ratio,
                )
            )
    return out


def analyze(folders: Sequence[str | Path], reference: str | None = None) -> Analysis:
    """Read run folders and compute a report's numbers.

    With several runs, a strategy that more than one of them holds is named
    `RUN/strategy`; the shards of one sweep (`--shard i/n`, their configurations
    equal but for the shard) are read as one run. The compute-matched reference
    is `reference`, else majority voting when present, else the first strategy.
    """
    loaded: list[tuple[str, list[Row]]] = []
    configs: dict[str, dict[str, object]] = {}
    names = []
    difficulty: dict[str, dict[str, Difficulty]] = {}
    for group in _runs(folders):
        name = _run_name(group)
        while name in configs:
            name += "'"
        names.append(name)
        configs[name] = group[0][1].to_dict()
        rows = []
        for folder, _ in group:
            store = Store(Path(folder) / STORE_FILE)
            shard_rows = list(store.rows())
            for task in dict.fromkeys(r.task for r in shard_rows):
                difficulty.setdefault(task, {}).update(store.difficulty(task))
            store.close()
            rows += shard_rows
        loaded.append((name, rows))
    seen: dict[str, set[str]] = defaultdict(set)
    for name, rows in loaded:
        for row in rows:
            seen[row.strategy].add(name)
    all_rows: list[Row] = []
    for name, rows in loaded:
        for row in rows:
            if len(seen[row.strategy]) > 1:
                row = _renamed(row, f"{name}/{row.strategy}")
            all_rows.append(row)

    summaries = summarize(all_rows)
    analysis = Analysis(
        runs=names,
        configs=configs,
        summaries=summaries,
        difficulty=difficulty,
        policies=policies_of(configs.values()),
    )
    for kind in ("oracle", "predicted"):
        binned: list[tuple[int, Summary]] = []
        for task, known in difficulty.items():
            bins = difficulty_bins(known, kind)
            task_rows = [r for r in all_rows if r.task == task and r.problem in bins]
            for b in range(1, BINS + 1):
                members = [r for r in task_rows if bins[r.problem] == b]
                binned += [(b, s) for s in summarize(members)]
        if binned:
            analysis.bins[kind] = binned

    for task, known in difficulty.items():
        cov = coverage_of(
            task, "policy samples", [(d.oracle_samples, d.oracle_right) for d in known.values()]
        )
        if cov is not None:
            analysis.coverage.append(cov)
    for (task, strategy), rows in _largest_budget_rows(all_rows).items():
        if not strategy_class(base_name(strategy)).samples_once:
            continue
        by_problem: dict[str, tuple[int, int]] = {}
        for r in rows:  # one seed's samples per problem: the first stored
            by_problem.setdefault(r.problem, (r.samples, r.right_samples))
        cov = coverage_of(task, strategy, list(by_problem.values()))
        if cov is None:
            continue
        # Strategies seeded alike draw the same samples (a paired comparison): one curve.
        same = next(
            (i for i, c in enumerate(analysis.coverage)
             if c.task == task and c.coverage == cov.coverage and c.source != "policy samples"),
            None,
        )  # fmt: skip
        if same is None:
            analysis.coverage.append(cov)
        else:
            kept = analysis.coverage[same]
            analysis.coverage[same] = replace(kept, source=f"{kept.source}, {strategy}")

    strategies = list(dict.fromkeys(s.strategy for s in summaries))
    if reference is None:
        majority = [s for s in strategies if base_name(s) == "majority"]
        reference = majority[0] if majority else (strategies[0] if strategies else "")
    analysis.ratios = compute_ratios(summaries, reference)
    return analysis


def _runs(folders: Sequence[str | Path]) -> list[list[tuple[str | Path, EvalConfig]]]:
    """The folders grouped into runs: each alone, but the shards of one sweep together."""
    groups: dict[str, list[tuple[str | Path, EvalConfig]]] = {}
    for index, folder in enumerate(folders):
        config = load_config(folder)
        if config.shard is None:
            groups[f"run {index}"] = [(folder, config)]
            continue
        whole = {k: v for k, v in config.to_dict().items() if k not in ("shard", "batch")}
        group = groups.setdefault(json.dumps(whole, sort_keys=True, default=str), [])
        if any(other.shard == config.shard for _, other in group):
            raise ConfigError(f"shard {config.shard} is given twice ({folder})")
        group.append((folder, config))
    for group in groups.values():
        group.sort(key=lambda member: member[1].shard_of or (0, 0))
    return list(groups.values())


def _run_name(group: list[tuple[str | Path, EvalConfig]]) -> str:
    """A run's name: its folder's, or what its shards' folder names share (and which they are,
    when some are missing)."""
    folders = [Path(folder).resolve().name for folder, _ in group]
    first = group[0][1].shard_of
    if first is None:
        return folders[0]
    shared = folders[0]  # the names' common prefix, character by character
    for other in folders[1:]:
        while not other.startswith(shared):
            shared = shared[:-1]
    shared = shared.rstrip("-_. ") or folders[0]
    have = [config.shard_of[0] for _, config in group if config.shard_of is not None]
    if len(have) < first[1]:
        shared += f" (shards {', '.join(map(str, have))} of {first[1]})"
    return shared


def base_name(label: str) -> str:
    """The registry name in a result label: "RUN/beam_search[beam_width=8]" -> "beam_search"."""
    return label.split("[", 1)[0].rsplit("/", 1)[-1]  # parameters may hold paths


def _largest_budget_rows(rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    largest: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.task, r.strategy)
        largest[key] = max(largest.get(key, 0), r.budget)
    out: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.budget == largest[(r.task, r.strategy)]:
            out[(r.task, r.strategy)].append(r)
    return out


def _renamed(row: Row, strategy: str) -> Row:
    return replace(row, strategy=strategy)
