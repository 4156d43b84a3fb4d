"""The numbers of compute-optimal scaling, on the arith test split (never used for calibration).

    python benchmarks/compute_optimal.py [--problems 200] [--runs runs/bench-compute-optimal]
        [--policy FILE] [--bootstrap 1000]

Runs (resumably, through the evaluation harness, into `--runs`):
- baselines: majority and weighted majority at N = 1, 2, 4, ..., 128 (sample reuse);
- policy-DIGEST: `compute_optimal` following the policy at N = 4, 16, 64;
- configurations: every configuration the policy was calibrated with, each forced
  behind the same pilot, at N = 4, 16, 64;
- adaptive: adaptive voting at N = 16 and 64, at confidence 0.9, 0.95 and 0.99.

Then prints:
1. compute-efficiency ratio: the generated tokens the better baseline needs to
   reach compute_optimal's accuracy at N = 4, 16, 64 (interpolated linearly in
   log tokens between its budgets), over the tokens compute_optimal used, with a
   95% bootstrap interval over problems; and the same in total FLOPs, the
   verifier's included;
2. compute_optimal against every fixed configuration and the baselines at equal N;
3. adaptive voting at each confidence: samples used against fixed N = 16 and 64,
   and the accuracy lost against majority voting at that N (paired bootstrap
   interval);
4. one budget for the batch: compute_optimal with a total of 16 x problems
   allocated by the pilots' readings (`run_allocated`), against N = 16 each.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder.evaluation import EvalConfig, Store, StrategySpec, Sweep
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import compute_to_reach
from ponder.models import embedded_policy
from ponder.policy import Policy
from ponder.strategies import make_strategy
from ponder.strategies.compute_optimal import embedded_policy_file
from ponder.sync import run_sync
from ponder.tasks.arith import arith_task
from ponder.verifiers import load_verifier

BASELINES = ("majority", "weighted_majority")
BASELINE_BUDGETS = (1, 2, 4, 8, 16, 32, 64, 128)
POLICY_BUDGETS = (4, 16, 64)
ADAPTIVE_BUDGETS = (16, 64)
CONFIDENCES = ("0.9", "0.95", "0.99")  # 0.95: adaptive's default
SHARED = {"max_tokens": "256"}


def sweep(out: Path, strategies: list[StrategySpec], budgets: tuple[int, ...], problems: int):
    config = EvalConfig(
        tasks=("arith",),
        strategies=tuple(strategies),
        budgets=budgets,
        limit=problems,
        difficulty_samples=0,
    )
    runner = Sweep(config, out)
    try:
        run_sync(runner.run())
    finally:
        runner.close()
    with Store(out / "results.sqlite") as store:
        rows = list(store.rows())
    table: dict[tuple[str, int], dict[str, tuple[float, float, float, float]]] = {}
    for r in rows:
        table.setdefault((r.strategy, r.budget), {})[r.problem] = (
            float(r.correct),
            float(r.generated_tokens),
            float(r.samples),
            float(r.flops),
        )
    return table


def adaptive_spec(confidence: str) -> StrategySpec:
    if confidence == "0.95":  # the default, stored as plain "adaptive"
        return StrategySpec("adaptive", dict(SHARED))
    return StrategySpec("adaptive", {**SHARED, "confidence": confidence}, shown=("confidence",))


def adaptive_label(confidence: str) -> str:
    return "adaptive" if confidence == "0.95" else f"adaptive[confidence={confidence}]"


def arrays(table, strategy, budget, problems):
    cells = table[(strategy, budget)]
    # [problem, (correct, generated tokens, samples, FLOPs)]
    return np.array([[*cells[p]] for p in problems])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-compute-optimal"))
    parser.add_argument("--policy", type=Path, default=embedded_policy_file())
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    policy = Policy.load(args.policy)
    # Every candidate it was calibrated with, whether chosen anywhere or not.
    forced = list(policy.made_with.get("candidates") or map(str, policy.configurations()))
    digest = hashlib.sha256(args.policy.read_bytes()).hexdigest()[:12]

    baselines = sweep(
        args.runs / "baselines",
        [StrategySpec(name, dict(SHARED)) for name in BASELINES],
        BASELINE_BUDGETS,
        args.problems,
    )
    own = {**SHARED, "policy": str(args.policy), "pilot": str(policy.pilot)}
    # The policy's own runs are stored by its file's digest, so another policy at the
    # same path is never read from an old store; the forced configurations do not
    # depend on the policy, and a run extends with new ones.
    chosen = sweep(
        args.runs / f"policy-{digest}",
        [StrategySpec("compute_optimal", own)],
        POLICY_BUDGETS,
        args.problems,
    )
    chosen |= sweep(
        args.runs / "configurations",
        [
            StrategySpec(
                "compute_optimal",
                {**SHARED, "force": f, "pilot": str(policy.pilot)},
                shown=("force",),
            )
            for f in forced
        ],
        POLICY_BUDGETS,
        args.problems,
    )
    adaptive = sweep(
        args.runs / "adaptive",
        [adaptive_spec(c) for c in CONFIDENCES],
        ADAPTIVE_BUDGETS,
        args.problems,
    )
    problems = sorted(baselines[("majority", 1)])
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(problems), len(problems)) for _ in range(args.bootstrap)]

    measured = {
        name: [arrays(baselines, name, b, problems) for b in BASELINE_BUDGETS] for name in BASELINES
    }

    def curve(name, pick, spent):
        return [(d[pick, spent].mean(), d[pick, 0].mean()) for d in measured[name]]

    def needed(accuracy, pick, spent=1):
        reach = [compute_to_reach(curve(name, pick, spent), accuracy) for name in BASELINES]
        found = [r for r in reach if r is not None]
        return min(found) if found else None

    print(
        f"{len(problems)} arith test problems; policy {args.policy} "
        f"(pilot {policy.pilot}, {policy.bins} bins, configurations: {', '.join(forced)})"
    )
    print("\n1. compute-efficiency ratio against the better of majority and weighted majority")
    everyone = np.arange(len(problems))
    for spent, unit, fmt in ((1, "tokens", ".0f"), (3, "FLOPs", ".3g")):
        if spent == 3:
            print("  in total FLOPs, the verifier's included:")
        for budget in POLICY_BUDGETS:
            co = arrays(chosen, "compute_optimal", budget, problems)
            acc, used = co[:, 0].mean(), co[:, spent].mean()
            base = needed(acc, everyone, spent)
            ratios = []
            for pick in draws:
                b = needed(co[pick, 0].mean(), pick, spent)
                ratios.append(np.inf if b is None else b / co[pick, spent].mean())
            low, high = np.percentile(ratios, [2.5, 97.5], method="nearest")  # inf: not reached
            shown = "never reached (up to N=128)" if base is None else f"{base:{fmt}} {unit}"
            ratio = "inf" if base is None else f"{base / used:.2f}"
            print(
                f"  N={budget:<3} compute_optimal acc {acc:.3f} at {used:{fmt}} {unit}; "
                f"baseline needs {shown}; ratio {ratio} [95% CI {low:.2f}, {high:.2f}]"
            )

    print("\n2. at equal N: accuracy (generated tokens per problem)")
    labels = ["compute_optimal", *(f"compute_optimal[force={f}]" for f in forced)]
    for budget in POLICY_BUDGETS:
        cells = []
        for label in labels:
            d = arrays(chosen, label, budget, problems)
            cells.append(
                f"{label.replace('compute_optimal[force=', '')[:-1] if '[' in label else label} "
                f"{d[:, 0].mean():.3f} ({d[:, 1].mean():.0f})"
            )
        for name in BASELINES:
            d = arrays(baselines, name, budget, problems)
            cells.append(f"plain {name} {d[:, 0].mean():.3f} ({d[:, 1].mean():.0f})")
        print(f"  N={budget}: " + "; ".join(cells))

    print("\n3. adaptive voting against majority voting at fixed N")
    for confidence in CONFIDENCES:
        for budget in ADAPTIVE_BUDGETS:
            a = arrays(adaptive, adaptive_label(confidence), budget, problems)
            m = arrays(baselines, "majority", budget, problems)
            lost = m[:, 0] - a[:, 0]
            intervals = np.percentile([lost[p].mean() for p in draws], [2.5, 97.5])
            used = a[:, 2].mean()
            print(
                f"  confidence {confidence} N={budget}: {used:.1f} samples per problem "
                f"({budget / used:.1f}x fewer), accuracy {a[:, 0].mean():.3f} vs majority "
                f"{m[:, 0].mean():.3f}: lost {100 * lost.mean():.1f} points [95% CI "
                f"{100 * intervals[0]:.1f}, {100 * intervals[1]:.1f}]; tokens "
                f"{a[:, 1].mean():.0f} vs {m[:, 1].mean():.0f}"
            )
    print("\n4. one total budget for the batch (16 x problems), allocated vs uniform")
    generator = TransformersGenerator(embedded_policy())
    strategy = make_strategy(
        "compute_optimal", generator, arith_task("test", args.problems),
        load_verifier(), own, seed=0,
    )  # fmt: skip
    start = time.perf_counter()
    allocated = strategy.run_allocated(list(strategy.task.problems), 16 * len(problems))
    right = [
        strategy.task.is_correct(r.answer, p)
        for r, p in zip(allocated, strategy.task.problems, strict=True)
    ]
    uniform = arrays(chosen, "compute_optimal", 16, problems)
    shares = Counter(r.budget for r in allocated)
    print(
        f"  allocated: accuracy {np.mean(right):.3f}, {sum(r.cost.samples for r in allocated)} "
        f"samples, budgets {dict(sorted(shares.items()))} ({time.perf_counter() - start:.0f} s); "
        f"uniform N=16: accuracy {uniform[:, 0].mean():.3f}, {uniform[:, 2].sum():.0f} samples"
    )
    print(
        f"\nmedian samples per problem, adaptive at N=64: "
        f"{statistics.median(arrays(adaptive, 'adaptive', 64, problems)[:, 2]):.0f}"
    )


if __name__ == "__main__":
    main()
