"""How well the arith policy solves and revises, by difficulty: the embedded model's targets.

    python benchmarks/arith_policy.py POLICY_FOLDER [--problems 200] [--samples 64] [--seed 0]

On the first `problems` problems of the arith test split, it draws `samples`
solutions per problem at temperature 1.0 and prints, by difficulty fifth:

- pass@1 (the mean fraction of right samples) and coverage, pass@k with the
  unbiased estimator of Chen et al. (2021), for k = samples;
- revisions: for up to 8 wrong samples of each problem, one revision written
  after the wrong attempt, and the rate at which revisions are right, beside
  the fresh-sample pass@1 of the same problems.

Fifths are by oracle difficulty as in Snell et al. (2024): problems ranked by
their own pass@1 over the samples. A second table uses the task's knobs
(number of operations) instead, which does not depend on the policy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder import BudgetMeter, Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import pass_at_k
from ponder.tasks import extract_answer
from ponder.tasks.arith import REVISION_TEMPLATE, arith_task


def fifths(values: list[int]) -> list[list[int]]:
    """Indices of `values` split into five equal groups, lowest values first."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    size = len(order) / 5
    return [order[round(b * size) : round((b + 1) * size)] for b in range(5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy", type=Path)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = arith_task("test", args.problems)
    generator = TransformersGenerator(args.policy)
    meter = BudgetMeter()
    metered = meter.wrap(generator)
    params = SamplingParams(n=args.samples, max_tokens=256, temperature=1.0, seed=args.seed)
    start = time.perf_counter()
    prompts = [task.prompt(p) for p in task.problems]
    generations = run_sync(metered.generate(prompts, params))
    right: list[list[bool]] = []
    wrong_attempts: list[list[str]] = []
    for problem, generation in zip(task.problems, generations, strict=True):
        marks = [task.is_correct(extract_answer(c.text), problem) for c in generation.completions]
        right.append(marks)
        wrong = [c.text for c, ok in zip(generation.completions, marks, strict=True) if not ok]
        wrong_attempts.append(wrong[:8])
    revision_prompts, owners = [], []
    for i, problem in enumerate(task.problems):
        for attempt in wrong_attempts[i]:
            text = REVISION_TEMPLATE.format(question=problem.question, attempt=attempt.strip())
            revision_prompts.append(Prompt.raw(text))
            owners.append(i)
    revised = run_sync(metered.generate(revision_prompts, params.replace(n=1)))
    revision_right: list[list[bool]] = [[] for _ in task.problems]
    for owner, generation in zip(owners, revised, strict=True):
        text = generation.completions[0].text if generation.completions else ""
        revision_right[owner].append(task.is_correct(extract_answer(text), task.problems[owner]))
    wall = time.perf_counter() - start

    n = args.samples
    correct = [sum(r) for r in right]
    cost = meter.cost()
    print(
        f"{args.policy.name}: {len(task.problems)} test problems x {n} samples at T=1.0, "
        f"{cost.generated_tokens} tokens generated in {wall:.0f} s"
    )

    def table(title: str, groups: list[list[int]]) -> None:
        print(f"\n{title}")
        print(
            f"{'bin':>4} {'problems':>8} {'pass@1':>7} {'pass@' + str(n):>8} "
            f"{'revisions':>9} {'rev. right':>10} {'fresh right':>11}"
        )
        for b, members in enumerate(groups, 1):
            p1 = statistics.mean(correct[i] / n for i in members)
            cov = statistics.mean(pass_at_k(n, correct[i], n) for i in members)
            revs = [ok for i in members for ok in revision_right[i]]
            fresh = (
                statistics.mean(correct[i] / n for i in members if revision_right[i])
                if any(revision_right[i] for i in members)
                else float("nan")
            )
            rate = sum(revs) / len(revs) if revs else float("nan")
            print(
                f"{b:>4} {len(members):>8} {p1:>7.3f} {cov:>8.3f} {len(revs):>9} "
                f"{rate:>10.3f} {fresh:>11.3f}"
            )

    table(
        "by oracle difficulty (fifths by the policy's own pass@1; 1 = easiest)",
        fifths([-c for c in correct]),
    )
    steps = [int(p.metadata["difficulty"]["steps"]) for p in task.problems]
    by_steps = [[i for i, s in enumerate(steps) if s == k] for k in sorted(set(steps))]
    table(f"by number of operations (1 to {max(steps)})", by_steps)


if __name__ == "__main__":
    main()
