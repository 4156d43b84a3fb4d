"""Lookahead search: beam search whose steps are judged by rolling them out first.

Snell et al. (2024), section 5: a PRM judges a step better once it sees where
the step leads, so each candidate step is rolled out `lookahead` more steps at
temperature 0 and scored by the PRM at the end of its rollout; the beam keeps
the candidate steps (not the rollouts) with the best such scores. A rollout
costs samples, so at budget N a round has C = N / (lookahead + 1) candidate
steps (at least 1) and keeps C / M paths: C + C * lookahead <= N samples per
round, as Snell et al. count it. Each rollout step is one generator call for
all rollouts; each round has one verifier call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.steps import ROOT, BeamSearchBase, Partial, expand, finish, score


@dataclass(frozen=True, slots=True)
class LookaheadParams(BeamSearchBase):
    """`beam_width` (M): steps sampled per kept path; `lookahead`: rollout steps per candidate."""

    lookahead: int = 1

    def __post_init__(self) -> None:
        BeamSearchBase.__post_init__(self)
        if self.lookahead < 0:
            raise ConfigError(f"lookahead must be >= 0, got {self.lookahead}")


class Lookahead(BaseStrategy[LookaheadParams]):
    """Beam search over steps scored by the PRM at the end of a greedy rollout."""

    name = "lookahead"
    Params = LookaheadParams
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n * self.params.max_steps

    async def solve(self, run: Run) -> Choice:
        per_round = max(1, run.n // (self.params.lookahead + 1))
        width = min(self.params.beam_width, per_round)
        beams = max(1, per_round // width)
        aggregation = self.params.aggregation
        greedy = replace(self.params, temperature=0.0)
        frontier: list[Partial] = [ROOT]
        finished = 0
        for depth in range(self.params.max_steps):
            k = per_round if depth == 0 else width
            children = [c for group in await expand(run, frontier, k, self.params) for c in group]
            ends = list(children)  # each child's rollout end, the child itself when done
            for _ in range(self.params.lookahead):
                rolling = [i for i, end in enumerate(ends) if not end.done]
                if not rolling:
                    break
                more = await expand(run, [ends[i] for i in rolling], 1, greedy, kind="lookahead")
                for i, group in zip(rolling, more, strict=True):
                    if group:
                        ends[i] = group[0]
            scored = await score(run, ends)
            values = [end.value(aggregation) for end in scored]
            children = [
                replace(child, scores=end.scores[: len(child.steps)] or child.scores)
                for child, end in zip(children, scored, strict=True)
            ]
            for child, value in zip(children, values, strict=True):
                run.trace.update(child.node, score=value)
                if child.done:
                    finish(run, child, aggregation)
                    finished += 1
            live = sorted(
                (i for i, c in enumerate(children) if not c.done), key=lambda i: -values[i]
            )
            if finished >= beams or not live:
                break
            frontier = [children[i] for i in live[:beams]]
        return self.select(run)
