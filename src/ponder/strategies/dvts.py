"""Diverse verifier tree search (DVTS): independent subtrees, one beam each.

Beeching, Tunstall and Rush (2024), Hugging Face's search-and-learn: beam
search at large N collapses onto a few high-scoring prefixes, so DVTS splits
the budget into N / M subtrees that never compete. The first step is sampled
N times and dealt into N / M subtrees of M; every round each subtree keeps its
single best unfinished path (by PRM score) and extends it by M sampled steps,
so every round draws N step samples, as beam search does. A subtree stops
when its path finishes; the finished path with the best score is the answer.
Each round is one generator call and one verifier call over all subtrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.steps import ROOT, BeamSearchBase, Partial, expand, finish, score


@dataclass(frozen=True, slots=True)
class DVTSParams(BeamSearchBase):
    """`beam_width` (M): steps sampled per subtree per round; there are N / M subtrees."""


class DVTS(BaseStrategy[DVTSParams]):
    """N / M independent greedy-by-PRM subtrees, expanded M steps at a time."""

    name = "dvts"
    Params = DVTSParams
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n * self.params.max_steps

    async def solve(self, run: Run) -> Choice:
        width = min(self.params.beam_width, run.n)
        subtrees = max(1, run.n // width)
        aggregation = self.params.aggregation
        [first] = await expand(run, [ROOT], subtrees * width, self.params)
        first = await score(run, first)
        # Deal the first steps into subtrees; merged duplicates leave some subtrees smaller.
        groups = [first[t::subtrees] for t in range(subtrees)]
        heads: list[Partial | None] = []
        for group in groups:
            heads.append(self._advance(run, group, aggregation))
        for _ in range(1, self.params.max_steps):
            live = [h for h in heads if h is not None]
            if not live:
                break
            children = await expand(run, live, width, self.params)
            flat = await score(run, [c for group in children for c in group])
            it = iter(flat)
            scored = [[next(it) for _ in group] for group in children]
            for i, group in zip(
                [i for i, h in enumerate(heads) if h is not None], scored, strict=True
            ):
                heads[i] = self._advance(run, group, aggregation)
        return self.select(run)

    @staticmethod
    def _advance(run: Run, group: list[Partial], aggregation: str) -> Partial | None:
        """Finished paths become candidates; the subtree goes on from its best path
        (by score, the first on ties), or stops when that path is finished."""
        for p in group:
            if p.done:
                finish(run, p, aggregation)
        if not group:
            return None
        top = max(group, key=lambda p: p.value(aggregation))
        return None if top.done else top
