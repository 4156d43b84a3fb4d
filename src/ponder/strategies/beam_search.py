"""Beam search against a process reward model.

Snell et al. (2024), section 5, and Hugging Face's search-and-learn: at budget
N with beam width M, the first step is sampled N times; every round the
N / M best unfinished paths by PRM score are kept and each is extended by M
sampled steps, so every round draws N step samples, like one step of N
independent solutions. Paths that finish are set aside; the search stops when
N / M paths have finished, none is left, or `max_steps` is reached, and the
finished path with the best score is the answer. Each round is one generator
call and one verifier call for the whole beam.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.steps import ROOT, BeamSearchBase, Partial, expand, finish, score


@dataclass(frozen=True, slots=True)
class BeamSearchParams(BeamSearchBase):
    """`beam_width` (M): steps sampled per kept path; N / M paths are kept."""


class BeamSearch(BaseStrategy[BeamSearchParams]):
    """Keep the N / M best paths, extend each by M steps, until N / M have finished."""

    name = "beam_search"
    Params = BeamSearchParams
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n * self.params.max_steps

    async def solve(self, run: Run) -> Choice:
        width = min(self.params.beam_width, run.n)
        beams = max(1, run.n // width)
        frontier: list[Partial] = [ROOT]
        finished = 0
        for depth in range(self.params.max_steps):
            k = run.n if depth == 0 else width
            children = [c for group in await expand(run, frontier, k, self.params) for c in group]
            children = await score(run, children)
            for child in children:
                if child.done:
                    finish(run, child, self.params.aggregation)
                    finished += 1
            live = [c for c in children if not c.done]
            if finished >= beams or not live:
                break
            live.sort(key=lambda p: -p.value(self.params.aggregation))  # stable: first on ties
            frontier = live[:beams]
        return self.select(run)
