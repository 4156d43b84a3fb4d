"""The numbers of compute-optimal scaling, on the arith test split (never used for calibration).

    python benchmarks/compute_optimal.py [--problems 200] [--runs runs/bench-compute-optimal]
        [--kept benchmarks/results/compute-optimal] [--policy FILE] [--bootstrap 1000] [--no-run]
        [--stages baselines,policy,adaptive,allocated,configurations,extended]

The measurement is kept in the repository (`--kept`: each stage's results without their
candidates, `arith_sweep.keep`), so a fresh checkout prints the numbers with `--no-run`
and resumes what an earlier machine left unfinished; `--runs` holds the working stores.

Runs (resumably, through the evaluation harness, into `--runs`), in this order,
the cheapest and most needed first:
- baselines: majority and weighted majority at N = 1, 2, 4, ..., 128 (sample reuse);
- policy-DIGEST: `compute_optimal` following the policy at N = 4, 16, 64;
- adaptive: adaptive voting at N = 16 and 64, at confidence 0.9, 0.95 and 0.99;
- allocated-DIGEST-K.json (in `--kept`): `compute_optimal` with one total of K x problems samples
  shared by the pilots' readings (`run_allocated`), K = 16 and 11;
- configurations/NAME: every configuration the policy was calibrated with, each forced
  behind the same pilot, at N = 4, 16, 64; where the policy chose one configuration at
  the whole budget for every problem, its run at that N is that configuration's forced
  run (the same pilot, seeds and calls) and is not run again; so is such a run of a
  policy measured before (a `policy-DIGEST` folder kept beside this one's);
- extended: the baselines again at N = 256, so that their curve reaches past
  compute_optimal's tokens (at N = 16 and 64 its tokens are those of 39 and 76 samples).

`--stages` runs only the stages named (the report still reads every stage stored). Two
processes with disjoint stages can run at once, e.g. `baselines,extended` and
`policy,adaptive,allocated,configurations` (configurations after policy: it reuses the
policy's runs): each keeps about one core busy (py-spy on the same sweeps in testbed.py: 95% in the
models' forward passes, whose small matrices torch does not spread well over two threads).
Give each one thread, `OMP_NUM_THREADS=1`: on 2 cores, two such processes did the same work
in 41 s against 55 s with torch's default threads, which only wait for each other.

Then prints, from what is stored (`--no-run`: only that, while a run goes on):
1. compute-efficiency ratio: the generated tokens the better baseline needs to
   reach compute_optimal's accuracy at N = 4, 16, 64 (interpolated linearly in
   log tokens between its budgets), over the tokens compute_optimal used, with a
   95% bootstrap interval over problems (where no baseline reaches it, the most
   they spent stands in: the ratio and its interval are then lower bounds); and
   the same in total FLOPs, the verifier's included;
2. compute_optimal against every fixed configuration and the baselines at equal N;
3. adaptive voting at each confidence: samples used against fixed N = 16 and 64,
   and the accuracy lost against majority voting at that N (paired bootstrap
   interval);
4. one budget for the batch: each allocated total against `compute_optimal` at
   N = 16 each (paired bootstrap interval of the difference).
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

from arith_sweep import Table, arith_sweep

from ponder.evaluation import StrategySpec
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import compute_to_reach
from ponder.models import embedded_policy
from ponder.policy import Policy
from ponder.strategies import make_strategy
from ponder.strategies.compute_optimal import embedded_policy_file
from ponder.tasks.arith import arith_task
from ponder.verifiers import load_verifier

BASELINES = ("majority", "weighted_majority")
BASELINE_BUDGETS = (1, 2, 4, 8, 16, 32, 64, 128)
# Measured late: the baselines reach past compute_optimal's tokens. Majority was run at 512 as
# well (0.795; kept, not read); weighted majority's judge made 512 cost 52 s a problem here.
EXTENDED_BUDGETS = (256,)
POLICY_BUDGETS = (4, 16, 64)
ADAPTIVE_BUDGETS = (16, 64)
CONFIDENCES = ("0.9", "0.95", "0.99")  # 0.95: adaptive's default
ALLOCATED_TOTALS = (16, 11)  # samples per problem on average: N=16's, and 31% fewer
SHARED = {"max_tokens": "256"}
STAGES = ("baselines", "policy", "adaptive", "allocated", "configurations", "extended")


def adaptive_spec(confidence: str) -> StrategySpec:
    if confidence == "0.95":  # the default, stored as plain "adaptive"
        return StrategySpec("adaptive", dict(SHARED))
    return StrategySpec("adaptive", {**SHARED, "confidence": confidence}, shown=("confidence",))


def adaptive_label(confidence: str) -> str:
    return "adaptive" if confidence == "0.95" else f"adaptive[confidence={confidence}]"


def arrays(table: Table, strategy: str, budget: int, problems: list[str]) -> np.ndarray:
    """[problem, (correct, generated tokens, samples, FLOPs)]"""
    cells = table[(strategy, budget)]
    return np.array(
        [
            [cells[p].correct, cells[p].generated_tokens, cells[p].samples, cells[p].flops]
            for p in problems
        ],
        dtype=float,
    )


def allocated(
    path: Path, run: bool, policy_file: Path, own: dict[str, str], problems: int, per_problem: int
) -> dict:
    """`compute_optimal` over the first `problems` with one total budget of `per_problem` x
    problems samples (`run_allocated`), kept in `path` (one allocation is one unit of
    work: rerun whole if it was cut off); run first unless `run` is false."""
    import json

    if path.exists():
        return json.loads(path.read_text())
    if not run:
        return {}
    total = per_problem * problems
    generator = TransformersGenerator(embedded_policy())
    task = arith_task("test", problems)
    strategy = make_strategy("compute_optimal", generator, task, load_verifier(), own, seed=0)
    start = time.perf_counter()
    results = strategy.run_allocated(list(task.problems), total)
    kept = {
        "policy": str(policy_file),
        "total": total,
        "seconds": time.perf_counter() - start,
        "problems": {
            p.id: {
                "correct": task.is_correct(r.answer, p),
                "budget": r.budget,
                "samples": r.cost.samples,
                "generated_tokens": r.cost.generated_tokens,
            }
            for r, p in zip(results, task.problems, strict=True)
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".part").write_text(json.dumps(kept, indent=1))
    path.with_suffix(".part").replace(path)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-compute-optimal"))
    parser.add_argument(
        "--kept",
        type=Path,
        default=Path(__file__).parent / "results" / "compute-optimal",
        help="where the measurement is kept, to commit (default: %(default)s)",
    )
    parser.add_argument("--policy", type=Path, default=embedded_policy_file())
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--no-run", action="store_true", help="print what is stored so far; run nothing"
    )
    parser.add_argument(
        "--stages",
        type=lambda text: text.split(","),
        default=list(STAGES),
        help=f"the stages to run, of {','.join(STAGES)} (default: all)",
    )
    args = parser.parse_args()
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {','.join(STAGES)}")
    policy = Policy.load(args.policy)
    # Every candidate it was calibrated with, whether chosen anywhere or not.
    forced = list(policy.made_with.get("candidates") or map(str, policy.configurations()))
    digest = hashlib.sha256(args.policy.read_bytes()).hexdigest()[:12]
    own = {**SHARED, "policy": str(args.policy), "pilot": str(policy.pilot)}

    # Cheapest and most needed first, so that a run cut short has printed what it could.
    # The policy's own runs are stored by its file's digest, so another policy at the
    # same path is never read from an old store; the forced configurations do not
    # depend on the policy, and a run extends with new ones.
    baseline_specs = [StrategySpec(name, dict(SHARED)) for name in BASELINES]
    forced_specs = [
        StrategySpec(
            "compute_optimal", {**SHARED, "force": f, "pilot": str(policy.pilot)}, shown=("force",)
        )
        for f in forced
    ]
    # (stage, folder, strategies, budgets), in the order they run
    sweeps = [
        ("baselines", "baselines", baseline_specs, BASELINE_BUDGETS),
        ("policy", f"policy-{digest}", [StrategySpec("compute_optimal", own)], POLICY_BUDGETS),
        ("adaptive", "adaptive", [adaptive_spec(c) for c in CONFIDENCES], ADAPTIVE_BUDGETS),
        ("allocated", "", None, ALLOCATED_TOTALS),
        ("configurations", "configurations", forced_specs, POLICY_BUDGETS),
        ("extended", "baselines", baseline_specs, BASELINE_BUDGETS + EXTENDED_BUDGETS),
    ]
    assert [stage for stage, *_ in sweeps] == list(STAGES)

    def sweep(where: Path, specs: list[StrategySpec], budgets: tuple[int, ...], run: bool):
        """A stage's sweep in its working store `--runs/where`, kept in `--kept/where`."""
        return arith_sweep(
            args.runs / where, specs, budgets, args.problems, run=run, kept=args.kept / where
        )

    pooled: Table = {}
    shares: dict[int, dict] = {}
    same: dict[tuple[str, int], tuple[str, dict]] = {}
    for stage, folder, specs, budgets in sweeps:
        run = not args.no_run and stage in args.stages
        if specs is None:
            for per_problem in budgets:
                path = args.kept / f"allocated-{digest}-{per_problem}.json"
                shares[per_problem] = allocated(
                    path, run, args.policy, own, args.problems, per_problem
                )
        elif folder == "configurations":
            same = {
                key: ("the policy chose it everywhere", pooled[("compute_optimal", key[1])])
                for key in policy_is_forced(pooled, forced, args.problems, policy.pilot)
            }
            # A policy shipped before ran behind the same pilot, with the same seeds and calls:
            # its run at N where it chose one configuration everywhere is that one's run too.
            for earlier in sorted(args.kept.glob("policy-*")):
                if earlier.name == f"policy-{digest}":
                    continue
                theirs = sweep(Path(earlier.name), [], POLICY_BUDGETS, run=False)
                for key in policy_is_forced(theirs, forced, args.problems, policy.pilot):
                    why = f"{earlier.name}'s, which chose it everywhere"
                    same.setdefault(key, (why, theirs[("compute_optimal", key[1])]))
            for f, spec in zip(forced, forced_specs, strict=True):
                pooled |= {(spec.label, n): rows for (g, n), (_, rows) in same.items() if g == f}
                left = tuple(n for n in budgets if (f, n) not in same)
                if not left:
                    continue
                pooled |= sweep(Path(folder) / f.replace(":", "_"), [spec], left, run)
        else:
            pooled |= sweep(Path(folder), specs, budgets, run)
    report(args, policy, forced, pooled, shares, same)


def policy_is_forced(
    table: Table, forced: list[str], problems: int, pilot: int
) -> set[tuple[str, int]]:
    """(configuration, N) where a policy's stored run at N, behind a pilot of `pilot`
    samples, chose that configuration at the whole budget for every problem: the forced
    configuration's run would make the same calls with the same seeds (`compute_optimal`
    runs it behind the same pilot either way), so it is the same run."""
    same = set()
    for budget in POLICY_BUDGETS:
        rows = table.get(("compute_optimal", budget), {})
        if len(rows) < problems:
            continue
        details = [row.record.get("details", {}) for row in rows.values()]
        if any(d.get("pilot") != pilot for d in details):
            continue
        chosen = {(d.get("configuration"), d.get("spend")) for d in details}
        if len(chosen) == 1:
            [(configuration, spend)] = chosen
            if configuration in forced and spend == budget:
                same.add((configuration, budget))
    return same


def report(args, policy: Policy, forced: list[str], table, shares, same) -> None:
    problems = sorted(table.get(("majority", 1), {}))
    if len(problems) < args.problems:
        print("nothing measured yet: the baselines come first")
        return
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(problems), len(problems)) for _ in range(args.bootstrap)]

    def have(strategy, budget):
        return all(p in table.get((strategy, budget), {}) for p in problems)

    def data(strategy, budget):
        return arrays(table, strategy, budget, problems)

    reach = [b for b in BASELINE_BUDGETS + EXTENDED_BUDGETS if all(have(n, b) for n in BASELINES)]
    if not reach:
        print("nothing measured yet: the baselines come first (some are stored)")
        return
    measured = {name: [data(name, b) for b in reach] for name in BASELINES}

    def curve(name, pick, spent):
        return [(d[pick, spent].mean(), d[pick, 0].mean()) for d in measured[name]]

    def needed(accuracy, pick, spent=1):
        found = [compute_to_reach(curve(name, pick, spent), accuracy) for name in BASELINES]
        found = [r for r in found if r is not None]
        return min(found) if found else None

    def most(pick, spent):
        """Where no baseline reaches the accuracy, the most they spent: the ratio's lower
        bound (so an interval over draws that were not all reached is one of bounds)."""
        return max(curve(name, pick, spent)[-1][0] for name in BASELINES)

    print(
        f"{len(problems)} arith test problems; policy {args.policy} "
        f"(pilot {policy.pilot}, {policy.bins} bins, configurations: {', '.join(forced)}); "
        f"baselines measured up to N={reach[-1]}"
    )
    print("\n1. compute-efficiency ratio against the better of majority and weighted majority")
    everyone = np.arange(len(problems))
    for spent, unit, fmt in ((1, "tokens", ".0f"), (3, "FLOPs", ".3g")):
        if spent == 3:
            print("  in total FLOPs, the verifier's included:")
        for budget in POLICY_BUDGETS:
            if not have("compute_optimal", budget):
                print(f"  N={budget:<3} not measured yet")
                continue
            co = data("compute_optimal", budget)
            acc, used = co[:, 0].mean(), co[:, spent].mean()
            base = needed(acc, everyone, spent)
            ratios = []
            for pick in draws:
                b = needed(co[pick, 0].mean(), pick, spent) or most(pick, spent)
                ratios.append(b / co[pick, spent].mean())
            low, high = np.percentile(ratios, [2.5, 97.5])
            if base is None:
                spent_most = most(everyone, spent)
                shown = f"never reached (up to N={reach[-1]}, {spent_most:{fmt}} {unit})"
                ratio = f"> {spent_most / used:.2f}"
            else:
                shown, ratio = f"{base:{fmt}} {unit}", f"{base / used:.2f}"
            print(
                f"  N={budget:<3} compute_optimal acc {acc:.3f} at {used:{fmt}} {unit}; "
                f"baseline needs {shown}; ratio {ratio} [95% CI {low:.2f}, {high:.2f}]"
            )

    print(
        "\n2. at equal N: accuracy and generated tokens per problem; compute_optimal's "
        "accuracy minus each one's (points, paired 95% bootstrap interval)"
    )
    # (what the line says, the stored label)
    labels = [(f, f"compute_optimal[force={f}]") for f in forced]
    labels += [(f"plain {name}", name) for name in BASELINES]
    for budget in POLICY_BUDGETS:
        if not have("compute_optimal", budget):
            print(f"  N={budget}: compute_optimal not measured yet")
            continue
        co = data("compute_optimal", budget)
        print(f"  N={budget}: compute_optimal {co[:, 0].mean():.3f} ({co[:, 1].mean():.0f} tokens)")
        for shown, label in labels:
            if not have(label, budget):
                print(f"    {shown:<26} not measured yet")
                continue
            d = data(label, budget)
            gained = co[:, 0] - d[:, 0]
            low, high = np.percentile([gained[p].mean() for p in draws], [2.5, 97.5])
            why = same.get((shown, budget))
            mark = f" (the same run: {why[0]})" if why is not None else ""
            print(
                f"    {shown:<26} {d[:, 0].mean():.3f} ({d[:, 1].mean():>5.0f} tokens): "
                f"{100 * gained.mean():+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{mark}"
            )

    print("\n3. adaptive voting against majority voting at fixed N")
    for confidence in CONFIDENCES:
        for budget in ADAPTIVE_BUDGETS:
            if not have(adaptive_label(confidence), budget):
                print(f"  confidence {confidence} N={budget}: not measured yet")
                continue
            a = data(adaptive_label(confidence), budget)
            m = data("majority", budget)
            lost = m[:, 0] - a[:, 0]
            intervals = np.percentile([lost[p].mean() for p in draws], [2.5, 97.5])
            used = a[:, 2].mean()
            print(
                f"  confidence {confidence} N={budget}: {used:.1f} samples per problem "
                f"({budget / used:.1f}x fewer), accuracy {a[:, 0].mean():.3f} vs majority "
                f"{m[:, 0].mean():.3f}: lost {100 * lost.mean():.1f} points [95% CI "
                f"{100 * intervals[0]:.1f}, {100 * intervals[1]:.1f}]; tokens "
                f"{a[:, 1].mean():.0f} vs {m[:, 1].mean():.0f}; median samples "
                f"{statistics.median(a[:, 2]):.0f}"
            )

    print("\n4. one total budget for the batch, allocated by the pilots' readings, vs N=16 each")
    if not have("compute_optimal", 16):
        print("  uniform N=16 not measured yet")
        return
    uniform = data("compute_optimal", 16)
    for per_problem, kept in sorted(shares.items()):
        if not kept:
            print(f"  total {per_problem} x problems: not measured yet")
            continue
        right = np.array([float(kept["problems"][p]["correct"]) for p in problems])
        gained = right - uniform[:, 0]
        intervals = np.percentile([gained[p].mean() for p in draws], [2.5, 97.5])
        samples = sum(kept["problems"][p]["samples"] for p in problems)
        budgets = Counter(kept["problems"][p]["budget"] for p in problems)
        tokens = np.mean([kept["problems"][p]["generated_tokens"] for p in problems])
        print(
            f"  total {per_problem} x problems: accuracy {right.mean():.3f} with {samples} "
            f"samples ({1 - samples / uniform[:, 2].sum():.0%} fewer than uniform), "
            f"{tokens:.0f} tokens per problem, budgets {dict(sorted(budgets.items()))} "
            f"({kept['seconds']:.0f} s); against uniform N=16 (accuracy "
            f"{uniform[:, 0].mean():.3f}, {uniform[:, 2].sum():.0f} samples, "
            f"{uniform[:, 1].mean():.0f} tokens): {100 * gained.mean():+.1f} points "
            f"[95% CI {100 * intervals[0]:+.1f}, {100 * intervals[1]:+.1f}]"
        )


if __name__ == "__main__":
    main()
