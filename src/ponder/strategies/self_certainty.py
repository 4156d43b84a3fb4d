"""Self-certainty selection: rank samples by the model's own confidence, no reward model.

Kang et al. (2025), "Scalable Best-of-N Selection for Large Language Models via
Self-Certainty": a sample whose token distributions are far from uniform is
more often right, and ranking by it scales like a reward model at no extra
model. Servers return only the top-k log-probabilities, so the certainty used
is their top-k form, DeepConf's token confidence (Fu et al. 2025; see
`ponder.strategies.scoring.confidence`).

`select="max"` takes the most certain sample; `select="borda"` is Kang et al.'s
Borda voting: the sample ranked r-th by certainty gives its answer
(N - r + 1) ** `power` votes, which blends voting with certainty.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling, sample, vote


@dataclass(frozen=True, slots=True)
class SelfCertaintyParams(Sampling):
    """`top_k`: log-probabilities per token (at most 20, what servers allow);
    `select`: "max" or "borda"; `power`: the exponent of Borda votes."""

    top_k: int = 5
    select: str = "borda"
    power: float = 0.5

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if not 1 <= self.top_k <= 20:
            raise ConfigError(f"top_k must be between 1 and 20, got {self.top_k}")
        if self.select not in ("max", "borda"):
            raise ConfigError(f"select must be 'max' or 'borda', got {self.select!r}")
        if self.power < 0:
            raise ConfigError(f"power must be >= 0, got {self.power}")


class SelfCertainty(BaseStrategy[SelfCertaintyParams]):
    """N samples with their log-probabilities in one call; the most certain answer wins."""

    name = "self_certainty"
    Params = SelfCertaintyParams
    samples_once = True

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        params = self.params.params(run.n, run.call_seed(), logprobs=self.params.top_k)
        await sample(run, params)
        return self.select(run)

    def select(self, run: Run) -> Choice:
        candidates = run.candidates
        answered = [i for i, c in enumerate(candidates) if c.answer is not None]
        if not answered:
            return Choice(None)
        ranked = sorted(answered, key=lambda i: (-candidates[i].scores.get("confidence", 0.0), i))
        if self.params.select == "max":
            return run.pick(ranked[0])
        votes = {i: (len(ranked) - r) ** self.params.power for r, i in enumerate(ranked)}
        winner = vote(run.task, candidates, lambda i: votes.get(i, 0.0))
        assert winner is not None  # some candidate has an answer
        best = min(winner, key=ranked.index)
        return run.pick(best)
