"""How well the arith policy solves and revises, by difficulty: the embedded model's targets.

    python benchmarks/arith_policy.py [--policy FOLDER] [--verifier FOLDER]
        [--problems 200] [--samples 64] [--seed 0]

On the first `problems` problems of the arith test split, it draws `samples`
solutions per problem at temperature 1.0 and prints, by difficulty fifth
(problems ranked by their own pass@1 over the samples, as in Snell et al. 2024):

- pass@1 and coverage, pass@k with the unbiased estimator of Chen et al.
  (2021), for k = samples;
- revisions: for up to 8 wrong samples of each problem, one revision written
  after the wrong attempt ("Revision:"), its rate of right answers beside the
  fresh-sample pass@1 of the same problems, and their difference with a 95%
  bootstrap interval over problems;
- verifier-guided revisions of the same wrong attempts: the verifier scores the
  attempt, the policy keeps the steps it trusts and writes the rest anew from
  the first step it doubts (the `revision` strategy's `guide=verifier`); right
  rate, its difference from fresh pass@1 (95% bootstrap interval over problems)
  and generated tokens per attempt beside a fresh sample's.

Then the policy's input class: greedy accuracy of one-operation problems by
start digits x operand digits x operation (problems outside the train split),
and of a few problems a person would type.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder import BudgetMeter, Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import cluster_bootstrap_ci, pass_at_k
from ponder.models import embedded_policy, embedded_verifier
from ponder.tasks import extract_answer
from ponder.tasks.arith import ARITH_FORMAT, VERBS, apply, arith_task, split_of
from ponder.verifiers import Solution, load_verifier

TYPED = (
    ("Start with 12. Add 7.", 19),
    ("Start with 5. Add 38.", 43),
    ("Start with 0. Add 9.", 9),
    ("Start with 100. Subtract 1.", 99),
    ("Start with 250. Multiply by 3.", 750),
    ("Start with 7. Multiply by 0.", 0),
    ("Start with 999. Subtract 0.", 999),
    ("Start with 37. Add 48. Multiply by 6. Subtract 25.", 485),
)


def fifths(values: list[int]) -> list[list[int]]:
    """Indices of `values` split into five equal groups, lowest values first."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    size = len(order) / 5
    return [order[round(b * size) : round((b + 1) * size)] for b in range(5)]


def interval(groups: Sequence[int], statistic: Callable[[Sequence[int]], float]) -> str:
    low, high = cluster_bootstrap_ci(list(groups), statistic, seed=0)
    return f"{statistic(groups):+.3f} [{low:+.3f}, {high:+.3f}]"


def one_operation_cells(
    per_cell: int, seed: int
) -> dict[tuple[int, int, str], list[tuple[str, int]]]:
    """Questions of one operation outside the train split, by (start digits, operand digits, op)."""
    rng = random.Random(seed)
    cells: dict[tuple[int, int, str], list[tuple[str, int]]] = {}
    for start_digits in (1, 2, 3):
        for op, operand_digits in (("+", 1), ("+", 2), ("-", 1), ("-", 2), ("*", 1)):
            found: dict[str, int] = {}
            for _ in range(200 * per_cell):
                start = rng.randint(
                    0 if start_digits == 1 else 10 ** (start_digits - 1), 10**start_digits - 1
                )
                low = 0 if operand_digits == 1 else 10
                operand = rng.randint(low, 10**operand_digits - 1)
                result = apply(start, op, operand)
                if not 0 <= result <= 999:
                    continue
                question = f"Start with {start}. " + VERBS[op].format(operand)
                if split_of(question) != "train":
                    found[question] = result
                if len(found) == per_cell:
                    break
            cells[(start_digits, operand_digits, op)] = list(found.items())
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=None)
    parser.add_argument("--verifier", type=Path, default=None)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--per-cell", type=int, default=100, help="problems per input-class cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    policy = args.policy or embedded_policy()

    task = arith_task("test", args.problems)
    generator = TransformersGenerator(policy)
    meter = BudgetMeter()
    metered = meter.wrap(generator)
    params = SamplingParams(n=args.samples, max_tokens=256, temperature=1.0, seed=args.seed)
    start = time.perf_counter()
    generations = run_sync(metered.generate([task.prompt(p) for p in task.problems], params))
    sampled = meter.cost()
    right: list[list[bool]] = []
    wrong_attempts: list[list[str]] = []
    sample_tokens = [statistics.mean(c.num_tokens for c in g.completions) for g in generations]
    for problem, generation in zip(task.problems, generations, strict=True):
        marks = [task.is_correct(extract_answer(c.text), problem) for c in generation.completions]
        right.append(marks)
        wrong = [c.text for c, ok in zip(generation.completions, marks, strict=True) if not ok]
        wrong_attempts.append(wrong[:8])
    owners = [i for i, attempts in enumerate(wrong_attempts) for _ in attempts]
    attempts = [a for attempts in wrong_attempts for a in attempts]

    # The policy's own revisions, written after the attempt.
    prompts = [
        ARITH_FORMAT.render_revision(task.problems[i].question, "\n".join(task.split_steps(a)))
        for i, a in zip(owners, attempts, strict=True)
    ]
    revised = run_sync(metered.generate(prompts, params.replace(n=1, max_tokens=512)))
    revision_right: list[list[bool]] = [[] for _ in task.problems]
    revision_tokens = []
    for owner, generation in zip(owners, revised, strict=True):
        completion = generation.completions[0] if generation.completions else None
        text = completion.text if completion else ""
        revision_tokens.append(completion.num_tokens if completion else 0)
        revision_right[owner].append(task.is_correct(extract_answer(text), task.problems[owner]))

    # Verifier-guided revisions: keep what the verifier trusts, redo from the first doubt.
    verifier = load_verifier(args.verifier or embedded_verifier())
    steps = [task.split_steps(a) for a in attempts]
    verdicts = run_sync(
        verifier.score(
            [Solution(task.problems[i].question, s) for i, s in zip(owners, steps, strict=True)]
        )
    )
    redo, prefixes = [], []
    guided_right: list[list[bool]] = [[] for _ in task.problems]
    guided_tokens: list[list[int]] = [[] for _ in task.problems]
    for k, (owner, attempt_steps, verdict) in enumerate(zip(owners, steps, verdicts, strict=True)):
        doubted = next((j for j, v in enumerate(verdict.step_scores) if v < 0.5), None)
        if doubted is None:  # trusted: the wrong attempt stands, and nothing is spent
            guided_right[owner].append(False)
            guided_tokens[owner].append(0)
            continue
        redo.append(k)
        prefixes.append("".join(line + "\n" for line in attempt_steps[:doubted]))
    redone = run_sync(
        metered.generate(
            [
                Prompt.raw(task.prompt(task.problems[owners[k]]).text or "", p)
                for k, p in zip(redo, prefixes, strict=True)
            ],
            params.replace(n=1),
        )
    )
    for k, prefix, generation in zip(redo, prefixes, redone, strict=True):
        completion = generation.completions[0] if generation.completions else None
        owner = owners[k]
        text = prefix + (completion.text if completion else "")
        guided_right[owner].append(task.is_correct(extract_answer(text), task.problems[owner]))
        guided_tokens[owner].append(completion.num_tokens if completion else 0)
    wall = time.perf_counter() - start

    n = args.samples
    correct = [sum(r) for r in right]
    fresh_tokens = sampled.generated_tokens / (len(task.problems) * n)
    print(
        f"{Path(policy).name}: {len(task.problems)} test problems x {n} samples at T=1.0 "
        f"({fresh_tokens:.1f} tokens a sample); {len(attempts)} wrong attempts revised; "
        f"{wall:.0f} s"
    )

    def table(title: str, groups: list[list[int]]) -> None:
        print(f"\n{title}")
        print(
            f"{'bin':>4} {'problems':>8} {'pass@1':>7} {'pass@' + str(n):>8} {'revisions':>9} "
            f"{'rev. right':>10} {'fresh right':>11}   {'revision - fresh [95% CI]':<26}"
            f"{'guided right':>12} {'guided - fresh [95% CI]':<26}{'tokens':>7} "
            f"{'fresh tokens':>12}"
        )
        for b, members in enumerate(groups, 1):
            p1 = statistics.mean(correct[i] / n for i in members)
            cov = statistics.mean(pass_at_k(n, correct[i], n) for i in members)
            revised_members = [i for i in members if revision_right[i]]
            revs = [ok for i in revised_members for ok in revision_right[i]]
            if not revs:
                print(f"{b:>4} {len(members):>8} {p1:>7.3f} {cov:>8.3f} {0:>9}")
                continue

            def gain(group: Sequence[int], source: list[list[bool]] = revision_right) -> float:
                pooled = [ok for i in group for ok in source[i]]
                fresh_rate = statistics.mean(correct[i] / n for i in group)
                return sum(pooled) / len(pooled) - fresh_rate

            fresh = statistics.mean(correct[i] / n for i in revised_members)
            guided = [ok for i in revised_members for ok in guided_right[i]]
            tokens = [t for i in revised_members for t in guided_tokens[i]]
            print(
                f"{b:>4} {len(members):>8} {p1:>7.3f} {cov:>8.3f} {len(revs):>9} "
                f"{sum(revs) / len(revs):>10.3f} {fresh:>11.3f}   "
                f"{interval(revised_members, gain):<26}"
                f"{sum(guided) / len(guided):>12.3f} "
                f"{interval(revised_members, lambda g: gain(g, guided_right)):<26}"
                f"{statistics.mean(tokens):>7.1f} "
                f"{statistics.mean(sample_tokens[i] for i in revised_members):>12.1f}"
            )

    table(
        "by oracle difficulty (fifths by the policy's own pass@1; 1 = easiest); "
        "guided: verifier-guided revision, tokens it generates per wrong attempt; "
        "fresh tokens: a fresh sample's, same problems",
        fifths([-c for c in correct]),
    )
    steps_of = [int(p.metadata["difficulty"]["steps"]) for p in task.problems]
    table(
        f"by number of operations (1 to {max(steps_of)})",
        [[i for i, s in enumerate(steps_of) if s == k] for k in sorted(set(steps_of))],
    )
    print(
        f"\nrevisions: {statistics.mean(revision_tokens):.1f} tokens each; "
        f"a fresh sample {fresh_tokens:.1f}"
    )

    # The input class, greedy.
    cells = one_operation_cells(args.per_cell, args.seed)
    questions = [q for cell in cells.values() for q, _ in cell] + [q for q, _ in TYPED]
    greedy = SamplingParams(n=1, max_tokens=64, temperature=0.0)
    answers = run_sync(generator.generate([ARITH_FORMAT.render(q) for q in questions], greedy))
    got = {
        q: extract_answer(g.completions[0].text) for q, g in zip(questions, answers, strict=True)
    }
    print(
        "\ngreedy accuracy of one operation, by start digits x operand digits "
        "(problems outside the train split)"
    )
    print(f"{'start':>5} {'operand':>7} {'+':>12} {'-':>12} {'*':>12}")
    for start_digits in (1, 2, 3):
        for operand_digits in (1, 2):
            row = []
            for op in "+-*":
                cell = cells.get((start_digits, operand_digits, op))
                if not cell:
                    row.append(f"{'':>12}")
                    continue
                ok = sum(got[q] == str(a) for q, a in cell)
                row.append(f"{ok / len(cell):>6.3f} ({len(cell):>3})")
            print(f"{start_digits:>5} {operand_digits:>7} {' '.join(row)}")
    print("\nproblems a person would type (greedy):")
    for question, answer in TYPED:
        mark = "right" if got[question] == str(answer) else "WRONG"
        print(f"  {question:<55} -> {got[question]} ({mark}, {answer})")


if __name__ == "__main__":
    main()
