"""Majority voting (self-consistency): sample N solutions, answer what most of them answer.

Wang et al. (2023), "Self-Consistency Improves Chain of Thought Reasoning in
Language Models". Votes count *graded-equivalent* answers as one (the task's
grader decides: "0.5" and "1/2" agree for MATH), solutions without an
extractable answer do not vote, and a tie goes to the answer seen first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling, sample, vote


@dataclass(frozen=True, slots=True)
class MajorityParams(Sampling):
    """Sampling only: majority voting needs no verifier."""


class Majority(BaseStrategy[MajorityParams]):
    """N samples in one call; the largest group of equivalent answers wins."""

    name = "majority"
    Params = MajorityParams
    samples_once = True

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        await sample(run, self.params.params(run.n, run.call_seed()))
        return self.select(run)

    def select(self, run: Run) -> Choice:
        winner = vote(run.task, run.candidates)  # the first of equal groups wins
        if winner is None:
            return Choice(None)
        return run.pick(winner[0])
