"""How well the arith PRM judges the policy's own held-out solutions: the embedded PRM's targets.

    python benchmarks/arith_prm.py PRM_FOLDER --policy POLICY_FOLDER
        [--problems 200] [--samples 16] [--seed 0]

The policy solves the first `problems` problems of the arith test split (never
used to train the PRM, which learns from the train split) with `samples`
samples each at temperature 1.0. Every distinct solution is scored by the PRM,
and its steps are labelled by the task's checker (`step_labels`). Printed:

- step AUROC: each step's score against its label (right so far or not);
- final-answer AUROC: the solution's outcome score (the answer line's step
  score, "last"; also "min" and "product") against whether its answer is right,
  over distinct solutions (each problem's one right solution against its many
  distinct wrong ones), and over every sample as drawn (a frequent solution
  counted as often as it is sampled);
- false-positive rates at the 0.5 threshold: the share of wrong steps and of
  wrong answers that the PRM scores as good, and the false-negative rates;
- best-of-N: the accuracy of the answer the PRM scores highest among each
  problem's `samples` samples, beside pass@1 and coverage, pass@N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder import SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import auroc, pass_at_k
from ponder.tasks import extract_answer
from ponder.tasks.arith import arith_task, step_labels
from ponder.verifiers import CausalLMPRM, Solution, aggregate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prm", type=Path)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = arith_task("test", args.problems)
    generator = TransformersGenerator(args.policy)
    prm = CausalLMPRM(args.prm)
    params = SamplingParams(n=args.samples, max_tokens=256, temperature=1.0, seed=args.seed)
    start = time.perf_counter()
    generations = run_sync(generator.generate([task.prompt(p) for p in task.problems], params))
    sampled = time.perf_counter() - start

    # Distinct solutions per problem, for the AUROCs; every sample, for best-of-N.
    distinct: dict[tuple[int, tuple[str, ...]], None] = {}
    for i, generation in enumerate(generations):
        for completion in generation.completions:
            distinct.setdefault((i, task.split_steps(completion.text)), None)
    keys = [key for key in distinct if key[1]]
    start = time.perf_counter()
    verdicts = prm.score_blocking([Solution(task.problems[i].question, s) for i, s in keys])
    scored = time.perf_counter() - start
    verdict_of = dict(zip(keys, verdicts, strict=True))

    step_scores, step_truth, answer_truth = [], [], []
    outcomes: dict[str, list[float]] = {"last": [], "min": [], "product": []}
    for (i, steps), verdict in verdict_of.items():
        problem = task.problems[i]
        step_scores += verdict.step_scores
        step_truth += step_labels(problem, "\n".join(steps))
        answer_truth.append(task.is_correct(extract_answer("\n".join(steps)), problem))
        for how, values in outcomes.items():
            values.append(aggregate(verdict.step_scores, how))

    def rates(scores: list[float], truth: list[bool]) -> tuple[float, float]:
        negatives = [s for s, t in zip(scores, truth, strict=True) if not t]
        positives = [s for s, t in zip(scores, truth, strict=True) if t]
        fpr = sum(s >= 0.5 for s in negatives) / max(len(negatives), 1)
        fnr = sum(s < 0.5 for s in positives) / max(len(positives), 1)
        return fpr, fnr

    n = args.samples
    right = []
    best_right = []
    drawn_scores: list[float] = []  # every sample as drawn, duplicates included
    drawn_truth: list[bool] = []
    for i, (problem, generation) in enumerate(zip(task.problems, generations, strict=True)):
        marks = [task.is_correct(extract_answer(c.text), problem) for c in generation.completions]
        right.append(sum(marks))
        scores = [
            verdict_of[(i, s)].outcome if (s := task.split_steps(c.text)) else 0.0
            for c in generation.completions
        ]
        best_right.append(marks[max(range(len(scores)), key=scores.__getitem__)])
        drawn_scores += scores
        drawn_truth += marks

    print(
        f"{args.prm.name} on {args.policy.name}'s samples: {len(task.problems)} test problems x "
        f"{n} at T=1.0 ({sampled:.0f} s), {len(keys)} distinct solutions, "
        f"{len(step_truth)} steps scored in {scored:.0f} s"
    )
    print(
        f"good steps {sum(step_truth) / len(step_truth):.3f}, "
        f"right answers {sum(answer_truth) / len(answer_truth):.3f} (of distinct solutions)"
    )
    step_fpr, step_fnr = rates(step_scores, step_truth)
    print(
        f"\nstep AUROC          {auroc(step_scores, step_truth):.3f}   "
        f"FPR@0.5 {step_fpr:.3f}  FNR@0.5 {step_fnr:.3f}"
    )
    for how, values in outcomes.items():
        fpr, fnr = rates(values, answer_truth)
        print(
            f"final AUROC ({how:<7}) {auroc(values, answer_truth):.3f}   "
            f"FPR@0.5 {fpr:.3f}  FNR@0.5 {fnr:.3f}"
        )
    print(
        f"final AUROC (last, every sample as drawn, duplicates included: {len(drawn_truth)}) "
        f"{auroc(drawn_scores, drawn_truth):.3f}"
    )
    print(
        f"\nbest-of-{n} by PRM (last) {statistics.mean(best_right):.3f}   "
        f"pass@1 {statistics.mean(r / n for r in right):.3f}   "
        f"pass@{n} {statistics.mean(pass_at_k(n, r, n) for r in right):.3f}"
    )


if __name__ == "__main__":
    main()
