"""Does the embedded testbed show what the papers report? Search against voting, every strategy.

    python benchmarks/testbed.py [--problems 200] [--runs runs/bench-testbed]
        [--kept benchmarks/results/testbed]

The measurement is kept in the repository (`--kept`, as `arith_sweep.keep` writes it): a
fresh checkout prints it without running again, and resumes a run left unfinished.

Runs (resumably, through the evaluation harness, into `--runs`), on the first
`problems` problems of the arith test split (never used in training or
calibration), with the embedded policy and verifier, max_tokens 256, seed 0:

- curves: majority, weighted majority, best-of-N and PRM beam search at
  N = 1, 2, 4, 8, 16, 32 (the sampling strategies reuse one set of samples);
- every strategy at N = 8; oracle difficulty from 16 more samples per problem
  (the harness's difficulty pass), in fifths.

Then prints, each with a 95% bootstrap interval over problems (paired where two
strategies are compared):

1. the table: accuracy, accuracy on the two hardest oracle fifths, generated
   tokens, the verifier's tokens read and written, and total FLOPs per problem;
2. search against voting at N = 16: beam search minus majority, overall and on
   the two hardest fifths, its generated tokens and total FLOPs (verifier
   included) against majority's;
3. whether best-of-N and weighted majority fall as N grows: the change from
   each budget to the next;
4. every strategy at N = 8 against one sample (majority at N = 1).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from arith_sweep import Table, arith_sweep

from ponder.errors import ConfigError, PonderError
from ponder.evaluation import Store, StrategySpec
from ponder.evaluation.store import Row
from ponder.metrics import cluster_bootstrap_ci
from ponder.strategies import STRATEGIES

CURVES = ("majority", "weighted_majority", "best_of_n", "beam_search")
CURVE_BUDGETS = (1, 2, 4, 8, 16, 32)
AT = 8
SHARED = {"max_tokens": "256"}


def sweep(
    runs: Path,
    kept: Path,
    folder: str,
    names: Sequence[str],
    budgets: tuple[int, ...],
    problems: int,
) -> Table:
    """`names` at `budgets` in `runs / folder`, kept in `kept / folder`."""
    specs = [StrategySpec(name, dict(SHARED)) for name in names]
    return arith_sweep(
        runs / folder, specs, budgets, problems, difficulty_samples=16, kept=kept / folder
    )


def ci(
    problems: Sequence[str], statistic: Callable[[Sequence[str]], float], scale: float = 1
) -> str:
    low, high = cluster_bootstrap_ci(list(problems), statistic, seed=0)
    return f"{scale * statistic(problems):+.3f} [{scale * low:+.3f}, {scale * high:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-testbed"))
    parser.add_argument(
        "--kept",
        type=Path,
        default=Path(__file__).parent / "results" / "testbed",
        help="where the measurement is kept, to commit (default: %(default)s)",
    )
    args = parser.parse_args()

    table = sweep(args.runs, args.kept, "curves", CURVES, CURVE_BUDGETS, args.problems)
    others = [name for name in STRATEGIES if name not in (*CURVES, "compute_optimal")]
    table |= sweep(args.runs, args.kept, "all", others, (1, AT), args.problems)
    try:  # it follows the shipped policy, which must have been calibrated for these models
        table |= sweep(
            args.runs, args.kept, "compute_optimal", ["compute_optimal"], (AT,), args.problems
        )
    except PonderError as exc:
        print(f"compute_optimal left out: {exc}")
    with Store(args.runs / "curves" / "results.sqlite") as store:
        oracle = {p: d.oracle_pass_rate for p, d in store.difficulty("arith").items()}
    problems = sorted(table[("majority", 1)])
    ranked = sorted(problems, key=lambda p: -oracle[p])
    hard = set(ranked[len(ranked) * 3 // 5 :])

    def mean(key: tuple[str, int], field: str, among: Sequence[str]) -> float:
        return statistics.fmean(float(_value(table[key][p], field)) for p in among)

    def accuracy(key: tuple[str, int]) -> Callable[[Sequence[str]], float]:
        return lambda among: mean(key, "correct", among)

    def hardest(among: Sequence[str]) -> list[str]:
        """The problems of the two hardest fifths among `among` (a bootstrap resample of
        a few problems may hold none: the statistic is undefined there, and skipped)."""
        chosen = [p for p in among if p in hard]
        if not chosen:
            raise ConfigError("no problem of the two hardest fifths in this resample")
        return chosen

    def hard_accuracy(key: tuple[str, int]) -> Callable[[Sequence[str]], float]:
        return lambda among: mean(key, "correct", hardest(among))

    print(
        f"{len(problems)} arith test problems; oracle pass@1 (16 samples each) "
        f"{statistics.fmean(oracle.values()):.3f}, two hardest fifths "
        f"{statistics.fmean(oracle[p] for p in hard):.3f}; 95% bootstrap intervals over problems"
    )
    print(
        f"\n1. {'strategy':<18} {'N':>3} {'accuracy':>24} {'hard 2/5':>7} {'gen tok':>8} "
        f"{'ver read':>8} {'ver gen':>8} {'GFLOPs':>7}"
    )
    for key in sorted(table, key=lambda k: (k[0] not in CURVES, k[0], k[1])):
        low, high = cluster_bootstrap_ci(problems, accuracy(key), seed=0)
        print(
            f"   {key[0]:<18} {key[1]:>3} {accuracy(key)(problems):>8.3f} [{low:.3f}, {high:.3f}] "
            f"{hard_accuracy(key)(problems):>7.3f} {mean(key, 'generated_tokens', problems):>8.0f} "
            f"{mean(key, 'verifier_tokens', problems):>8.0f} "
            f"{mean(key, 'verifier_generated_tokens', problems):>8.0f} "
            f"{mean(key, 'flops', problems) / 1e9:>7.2f}"
        )

    def difference(a: tuple[str, int], b: tuple[str, int], among_hard: bool = False):  # type: ignore[no-untyped-def]
        def statistic(among: Sequence[str]) -> float:
            chosen = hardest(among) if among_hard else among
            return mean(a, "correct", chosen) - mean(b, "correct", chosen)

        return statistic

    beam, majority = ("beam_search", 16), ("majority", 16)
    print("\n2. search against voting at N=16 (beam search width 4 against majority voting)")
    print(f"   accuracy, beam - majority:           {ci(problems, difference(beam, majority))}")
    print(
        f"   two hardest fifths, beam - majority: "
        f"{ci(problems, difference(beam, majority, among_hard=True))}"
    )
    # At equal or fewer tokens: against majority at the first N that spends at least as many.
    spent = mean(beam, "generated_tokens", problems)
    richer = next(
        (
            ("majority", b)
            for b in CURVE_BUDGETS
            if mean(("majority", b), "generated_tokens", problems) >= spent
        ),
        None,
    )
    if richer is not None and richer != majority:
        print(
            f"   against {richer[0]}@{richer[1]}, the first to spend as many tokens: "
            f"{ci(problems, difference(beam, richer))} overall, "
            f"{ci(problems, difference(beam, richer, among_hard=True))} on the hardest two fifths"
        )
    for field, what in (
        ("generated_tokens", "generated tokens"),
        ("flops", "FLOPs, verifier included"),
    ):
        b, m = mean(beam, field, problems), mean(majority, field, problems)
        print(f"   {what:<26} beam {b:.4g}, majority {m:.4g}: ratio {b / m:.2f}")

    print("\n3. does accuracy fall as N grows? change from each budget to the next")
    for name in ("best_of_n", "weighted_majority", "majority", "beam_search"):
        steps = [
            f"{a}->{b} {ci(problems, difference((name, b), (name, a)))}"
            for a, b in itertools.pairwise(CURVE_BUDGETS)
        ]
        print(f"   {name:<18} " + "; ".join(steps))

    print(f"\n4. every strategy at N={AT} against one sample (majority at N=1)")
    one = ("majority", 1)
    for name in STRATEGIES:
        key = (name, AT)
        if key in table:
            print(f"   {name:<18} {ci(problems, difference(key, one))}")


def _value(row: Row, field: str) -> float:
    if field == "verifier_generated_tokens":
        return float(row.record.get("cost", {}).get(field, 0))
    return float(getattr(row, field))


if __name__ == "__main__":
    main()
