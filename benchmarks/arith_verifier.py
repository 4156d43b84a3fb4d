"""How well a verifier judges the policy's own held-out arith solutions: the embedded targets.

    python benchmarks/arith_verifier.py [--verifier FOLDER] [--kind auto|judge|prm]
        [--policy FOLDER] [--problems 200] [--samples 16] [--seed 0]
        [--votes 1 --temperature 0]

The policy (default: the embedded one) solves the first `problems` problems of
the arith test split (never used in training) with `samples` samples each at
temperature 1.0, the temperature the strategies sample at. The verifier
(default: the embedded one, read as its folder says: a judge that checks each
step) scores every distinct solution; the task's checker labels every step.
Printed, each with a 95% bootstrap interval over problems:

- step AUROC: each step's score against its label (right so far or not);
- final-answer AUROC: the solution's outcome score against whether its answer
  is right, over distinct solutions (each problem's one right solution against
  its distinct wrong ones) and over every sample as drawn; beside it, what a
  perfect process verifier would score (the exact step labels: a solution is
  right when every step is), which is less than 1 because some solutions reach
  the right answer through slips that cancel;
- the go/no-go of a verifier: of the policy's first wrong steps, the share the
  verifier lets pass (score >= 0.5), beside the policy's own per-step slip rate;
- best-of-N by the verifier's outcome against majority voting over the same
  samples (and their difference, paired), pass@1 and coverage pass@N;
- what the verification cost: tokens read and generated per solution, and its
  FLOPs beside the policy's for the same solutions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ponder import BudgetMeter, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import auroc, cluster_bootstrap_ci, pass_at_k
from ponder.models import embedded_policy, embedded_verifier
from ponder.tasks import extract_answer
from ponder.tasks.arith import arith_task, step_labels
from ponder.verifiers import KINDS, Solution, load_verifier


@dataclass(frozen=True)
class Judged:
    """One problem's samples and the verifier's view of them."""

    steps: list[tuple[float, bool]]  # (score, right so far) for every step of distinct solutions
    finals: list[tuple[float, bool]]  # (outcome, answer right) for distinct solutions
    perfect: list[tuple[float, bool]]  # (every step right, answer right), distinct solutions
    drawn: list[tuple[float, bool]]  # (outcome, answer right) for every sample as drawn
    first_wrong: list[float]  # the score of each distinct solution's first wrong step
    best: bool  # best-of-N right
    majority: bool  # majority vote right
    right: int  # right samples
    samples: int


def _auroc(pairs: Sequence[tuple[float, bool]]) -> float:
    return auroc([s for s, _ in pairs], [t for _, t in pairs])


def interval(groups: Sequence[Judged], statistic, digits: int = 3) -> str:  # type: ignore[no-untyped-def]
    low, high = cluster_bootstrap_ci(groups, statistic, seed=0)
    return f"{statistic(groups):.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verifier", type=Path, default=None)
    parser.add_argument("--kind", choices=KINDS, default="auto")
    parser.add_argument("--policy", type=Path, default=None)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--votes", type=int, default=1, help="a judge's chains of checks")
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="a judge's checks (votes need > 0)"
    )
    args = parser.parse_args()
    voting = {"votes": args.votes, "temperature": args.temperature}
    if voting != {"votes": 1, "temperature": 0.0}:
        if args.kind == "prm":
            parser.error("--votes and --temperature are a judge's; a PRM writes no checks")
    else:
        voting = {}  # the verifier's own defaults, whatever its reading
    policy = args.policy or embedded_policy()
    verifier_folder = args.verifier or embedded_verifier()

    task = arith_task("test", args.problems)
    meter = BudgetMeter()
    generator = meter.wrap(TransformersGenerator(policy))
    verifier = meter.wrap_verifier(load_verifier(verifier_folder, kind=args.kind, **voting))
    params = SamplingParams(n=args.samples, max_tokens=256, temperature=1.0, seed=args.seed)
    start = time.perf_counter()
    generations = run_sync(generator.generate([task.prompt(p) for p in task.problems], params))
    sampled, policy_cost = time.perf_counter() - start, meter.cost()

    keys = list(
        dict.fromkeys(
            (i, steps)
            for i, g in enumerate(generations)
            for c in g.completions
            if (steps := task.split_steps(c.text))
        )
    )
    start = time.perf_counter()
    verdicts = run_sync(verifier.score([Solution(task.problems[i].question, s) for i, s in keys]))
    scored = time.perf_counter() - start
    verifier_cost = meter.cost()
    verdict_of = dict(zip(keys, verdicts, strict=True))

    judged: list[Judged] = []
    step_count = first_wrong_count = 0
    for i, (problem, generation) in enumerate(zip(task.problems, generations, strict=True)):
        steps_scored, finals, perfect, first_wrong = [], [], [], []
        for (j, steps), verdict in verdict_of.items():
            if j != i:
                continue
            labels = step_labels(problem, "\n".join(steps))
            steps_scored += zip(verdict.step_scores, labels, strict=True)
            right = task.is_correct(extract_answer("\n".join(steps)), problem)
            finals.append((verdict.outcome, right))
            perfect.append((float(all(labels)), right))
            if False in labels:
                first_wrong.append(verdict.step_scores[labels.index(False)])
        texts = [c.text for c in generation.completions]
        marks = [task.is_correct(extract_answer(t), problem) for t in texts]
        outcomes = [
            verdict_of[(i, s)].outcome if (s := task.split_steps(t)) else 0.0 for t in texts
        ]
        votes = Counter(a for t in texts if (a := extract_answer(t)) is not None).most_common(1)
        judged.append(
            Judged(
                steps=steps_scored,
                finals=finals,
                perfect=perfect,
                drawn=list(zip(outcomes, marks, strict=True)),
                first_wrong=first_wrong,
                best=marks[max(range(len(texts)), key=outcomes.__getitem__)],
                majority=bool(votes) and task.is_correct(votes[0][0], problem),
                right=sum(marks),
                samples=len(texts),
            )
        )
        # The policy's slip rate: first wrong lines per line it wrote, over every sample.
        for text in texts:
            labels = step_labels(problem, "\n".join(task.split_steps(text)))
            step_count += labels.index(False) + 1 if False in labels else len(labels)
            first_wrong_count += False in labels

    n = args.samples
    distinct = sum(len(j.finals) for j in judged)
    print(
        f"{Path(verifier_folder).name} ({type(verifier.inner).__name__}) on {Path(policy).name}'s "
        f"samples: {len(task.problems)} test problems x {n} at T=1.0 ({sampled:.0f} s); "
        f"{distinct} distinct solutions, {sum(len(j.steps) for j in judged)} steps, "
        f"scored in {scored:.0f} s"
    )
    print(
        "right answers among distinct solutions "
        f"{sum(t for j in judged for _, t in j.finals) / distinct:.3f}; "
        "intervals: 95% bootstrap over problems"
    )

    def pooled(field: str):  # type: ignore[no-untyped-def]
        return lambda groups: _auroc([p for g in groups for p in getattr(g, field)])

    print(f"\nstep AUROC                         {interval(judged, pooled('steps'))}")
    print(f"final AUROC, distinct solutions    {interval(judged, pooled('finals'))}")
    print(f"final AUROC, samples as drawn      {interval(judged, pooled('drawn'))}")
    lucky = sum(t and s == 0 for j in judged for s, t in j.perfect)
    print(
        f"final AUROC of a perfect process verifier, distinct solutions "
        f"{interval(judged, pooled('perfect'))}: {lucky} right answers reached through wrong steps"
    )
    misses = [s >= 0.5 for j in judged for s in j.first_wrong]
    right_steps = [s < 0.5 for j in judged for s, t in j.steps if t]
    print(
        f"\nfirst wrong steps passed (>= 0.5)  {sum(misses) / len(misses):.3f} of {len(misses)}; "
        "right steps failed (< 0.5) "
        f"{sum(right_steps) / len(right_steps):.3f} of {len(right_steps)}"
    )
    print(f"policy's slip rate per line        {first_wrong_count / step_count:.3f}")

    def mean_of(field: str):  # type: ignore[no-untyped-def]
        return lambda groups: statistics.mean(float(getattr(g, field)) for g in groups)

    print(f"\nbest-of-{n} by the verifier        {interval(judged, mean_of('best'))}")
    print(f"majority@{n}                       {interval(judged, mean_of('majority'))}")
    print(
        f"best-of-{n} - majority@{n}          "
        f"{interval(judged, lambda g: statistics.mean(x.best - x.majority for x in g))}"
    )
    print(
        f"pass@1 {statistics.mean(j.right / j.samples for j in judged):.3f}   "
        f"pass@{n} {statistics.mean(pass_at_k(j.samples, j.right, j.samples) for j in judged):.3f}"
    )
    spent = verifier_cost.verifier_tokens
    print(
        f"\nverification: {spent / distinct:.0f} tokens read and "
        f"{verifier_cost.verifier_generated_tokens / distinct:.0f} generated "
        "per distinct solution; "
        f"{(verifier_cost.flops - policy_cost.flops) / 1e9:.1f} GFLOPs against the policy's "
        f"{policy_cost.flops / 1e9:.1f} for all {len(task.problems) * n} samples"
    )


if __name__ == "__main__":
    main()
