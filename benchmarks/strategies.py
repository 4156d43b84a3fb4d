"""Every strategy at budgets 1, 4, 16 and 64 on a fixed slice of the arith test split.

    python benchmarks/strategies.py [--problems 60] [--budgets 1,4,16,64]
        [--strategies all] [--policy DIR] [--verifier DIR] [--seed 0] [--out rows.json]

For each strategy and budget N, the strategy solves the first `problems` test
problems together (`run_many`: one backend call per round for all of them)
and the script prints accuracy, generated and verifier tokens per problem and
the wall time. Then:

- hard bins: problems are binned by oracle difficulty, the share of right
  answers among majority voting's 64 samples (Snell et al. 2024); the bottom
  two fifths are "hard". Each strategy's hard-bin accuracy is compared with
  majority voting's at the *same generated tokens* (majority's accuracy
  interpolated, linearly in log tokens, between its budgets);
- the wall time of a batched beam search against plain sampling of the same
  number of generated tokens (one call, n samples per problem), both on the
  same slice: the ratio of seconds per generated token, measured `--repeats`
  times alternately (the median is the figure), with the share of beam
  search's time spent in verification.

`--strategies none --budgets 16` measures the ratio alone; `--no-prefix-cache`
turns off the local backends' prefix caching, for comparison.

Default models: the embedded arith policy and verifier (a judge that checks
each step). Every strategy runs with its default parameters and max_tokens=256.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder import SamplingParams
from ponder.generators.transformers import TransformersGenerator
from ponder.models import embedded_policy, embedded_verifier
from ponder.strategies import STRATEGIES, make_strategy
from ponder.sync import run_sync
from ponder.tasks.arith import arith_task
from ponder.verifiers import Verifier, load_verifier


def interpolate(tokens: float, curve: list[tuple[float, float]]) -> float | None:
    """Accuracy on `curve` ((tokens, accuracy) by budget) at `tokens`, linear in log tokens."""
    curve = sorted(curve)
    if not curve or tokens < curve[0][0] or tokens > curve[-1][0]:
        return None
    for (t0, a0), (t1, a1) in itertools.pairwise(curve):
        if t0 <= tokens <= t1:
            if t1 == t0:
                return max(a0, a1)
            w = (math.log(tokens) - math.log(t0)) / (math.log(t1) - math.log(t0))
            return a0 + w * (a1 - a0)
    return curve[-1][1]


class TimedVerifier:
    """A verifier that adds up the seconds its `score` calls take."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def score(self, solutions: list) -> list:
        start = time.perf_counter()
        try:
            return await self.inner.score(solutions)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=60)
    parser.add_argument("--budgets", default="1,4,16,64")
    parser.add_argument("--strategies", default="all")
    parser.add_argument("--policy", type=Path, default=embedded_policy())
    parser.add_argument("--verifier", type=Path, default=embedded_verifier())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="beam vs sampling measurements")
    parser.add_argument(
        "--no-prefix-cache", action="store_true", help="the backends without prefix caching"
    )
    parser.add_argument("--out", type=Path, help="also write every row as JSON here")
    args = parser.parse_args()

    budgets = [int(b) for b in args.budgets.split(",")]
    named = {"all": list(STRATEGIES), "none": []}
    names = named[args.strategies] if args.strategies in named else args.strategies.split(",")
    task = arith_task("test", args.problems)
    cache_mb = {"prefix_cache_mb": 0} if args.no_prefix_cache else {}
    generator = TransformersGenerator(args.policy, **cache_mb)
    prm = load_verifier(args.verifier, **cache_mb)
    problems = list(task.problems)

    # Oracle difficulty first, from majority voting's samples at the largest budget.
    oracle_n = max(budgets)
    majority = make_strategy("majority", generator, task, prm, {"max_tokens": "256"}, seed=99)
    oracle_runs = majority.run_many(problems, oracle_n)
    share = [
        statistics.mean(task.is_correct(c.answer, p) for c in r.candidates) if r.candidates else 0
        for p, r in zip(problems, oracle_runs, strict=True)
    ]
    order = sorted(range(len(problems)), key=lambda i: -share[i])
    hard = set(order[len(order) * 3 // 5 :])
    print(
        f"{len(problems)} arith test problems; oracle pass@1 (majority's {oracle_n} samples, "
        f"seed 99): all {statistics.mean(share):.3f}, hard two fifths "
        f"{statistics.mean(share[i] for i in hard):.3f}",
        flush=True,
    )

    rows = []
    header = (
        f"{'strategy':<18} {'N':>3} {'acc':>6} {'hard':>6} {'gen tok':>8} {'ver tok':>8} "
        f"{'samples':>8} {'wall s':>7}"
    )
    print("\n" + header, flush=True)
    for name in names:
        for n in budgets:
            strategy = make_strategy(
                name, generator, task, prm, {"max_tokens": "256"}, seed=args.seed
            )
            start = time.perf_counter()
            results = strategy.run_many(problems, n)
            wall = time.perf_counter() - start
            right = [task.is_correct(r.answer, p) for p, r in zip(problems, results, strict=True)]
            row = {
                "strategy": name,
                "budget": n,
                "accuracy": statistics.mean(right),
                "hard_accuracy": statistics.mean(right[i] for i in hard),
                "generated_tokens": statistics.mean(r.cost.generated_tokens for r in results),
                "hard_generated_tokens": statistics.mean(
                    results[i].cost.generated_tokens for i in hard
                ),
                "verifier_tokens": statistics.mean(r.cost.verifier_tokens for r in results),
                "samples": statistics.mean(r.cost.samples for r in results),
                "wall_seconds": wall,
            }
            rows.append(row)
            print(
                f"{name:<18} {n:>3} {row['accuracy']:>6.3f} {row['hard_accuracy']:>6.3f} "
                f"{row['generated_tokens']:>8.0f} {row['verifier_tokens']:>8.0f} "
                f"{row['samples']:>8.1f} {wall:>7.1f}",
                flush=True,
            )

    curve = [
        (r["hard_generated_tokens"], r["hard_accuracy"])
        for r in rows
        if r["strategy"] == "majority"
    ]
    if curve:
        print("\nhard bins, against majority voting at the same generated tokens:")
        for r in rows:
            if r["strategy"] == "majority":
                continue
            base = interpolate(r["hard_generated_tokens"], curve)
            verdict = (
                "outside majority's token range"
                if base is None
                else f"majority {base:.3f} -> {'BEATS' if r['hard_accuracy'] > base else 'no'}"
            )
            print(
                f"  {r['strategy']:<18} N={r['budget']:<3} hard acc {r['hard_accuracy']:.3f} at "
                f"{r['hard_generated_tokens']:.0f} tokens; {verdict}"
            )

    # Beam search against plain sampling of as many generated tokens, alternately.
    timed = TimedVerifier(prm)
    per_sample = statistics.mean(c.num_tokens for r in oracle_runs for c in r.candidates)
    prompts = [task.prompt(p) for p in problems]
    measured = []
    for repeat in range(args.repeats):
        beam = make_strategy("beam_search", generator, task, timed, {"max_tokens": "256"}, seed=1)
        timed.seconds = 0.0
        start = time.perf_counter()
        beam_results = beam.run_many(problems, 16)
        beam_wall = time.perf_counter() - start
        beam_tokens = sum(r.cost.generated_tokens for r in beam_results)
        n = max(1, round(beam_tokens / len(problems) / per_sample))
        params = SamplingParams(n=n, max_tokens=256, temperature=1.0, seed=2 + repeat)
        start = time.perf_counter()
        sampled = run_sync(generator.generate(prompts, params))
        sample_wall = time.perf_counter() - start
        sample_tokens = sum(c.num_tokens for g in sampled for c in g.completions)
        ratio = (beam_wall / beam_tokens) / (sample_wall / sample_tokens)
        generation_ratio = ((beam_wall - timed.seconds) / beam_tokens) / (
            sample_wall / sample_tokens
        )
        measured.append(
            {
                "beam_tokens": beam_tokens,
                "beam_wall": beam_wall,
                "beam_prm_seconds": timed.seconds,
                "sample_n": n,
                "sample_tokens": sample_tokens,
                "sample_wall": sample_wall,
                "ratio": ratio,
                "ratio_without_prm": generation_ratio,
            }
        )
        print(
            f"\nbeam search N=16 (width 4): {beam_tokens} generated tokens in {beam_wall:.1f} s "
            f"({timed.seconds:.1f} s of it PRM scoring); plain sampling n={n}: {sample_tokens} "
            f"tokens in {sample_wall:.1f} s; seconds per token, beam / sampling: {ratio:.2f} "
            f"({generation_ratio:.2f} without the PRM's time)",
            flush=True,
        )
    ratio = statistics.median(m["ratio"] for m in measured)
    print(
        f"median over {len(measured)}: beam / sampling {ratio:.2f}, without the PRM's time "
        f"{statistics.median(m['ratio_without_prm'] for m in measured):.2f}"
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "oracle_share": share,
                    "hard": sorted(hard),
                    "beam_vs_sampling": measured,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
