"""Particle filtering over reasoning steps, with PRM-derived weights.

Puri et al. (2025), "A Probabilistic Inference Approach to Inference-Time
Scaling of LLMs using Particle-Based Monte Carlo Methods": treat the right
solution as the posterior of a state-space model whose likelihood the PRM
estimates, and track it with sequential Monte Carlo instead of greedy
pruning, so that paths the PRM doubts keep some chance to survive.

N particles each extend one step per round (one generator call, one verifier
call for all). A particle's potential is its PRM score (aggregated as
`aggregation` says) to the power 1 / `temperature`; its weight is multiplied
by the potential's change since the last round. When the effective sample
size 1 / sum(w^2) of the normalised weights falls below `resample_below` * N,
the particles are resampled by systematic resampling (low variance: one
uniform draw, N evenly spaced pointers) and the weights reset to uniform.
Finished particles stay in the population, unextended. The answer is the
answer with the largest total weight over the final particles
(`select="weighted"`) or the heaviest particle (`select="best"`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import vote
from ponder.strategies.steps import ROOT, Partial, StepSearch, expand, finish, score


@dataclass(frozen=True, slots=True)
class ParticleFilterParams(StepSearch):
    """`temperature` is the sampling temperature; `weight_temperature` sharpens (< 1) or
    flattens (> 1) the potentials; `resample_below`: the ESS share that triggers resampling;
    `select`: "weighted" (vote by weight) or "best" (the heaviest particle)."""

    weight_temperature: float = 1.0
    resample_below: float = 0.5
    select: str = "weighted"

    def __post_init__(self) -> None:
        StepSearch.__post_init__(self)
        if self.weight_temperature <= 0:
            raise ConfigError(f"weight_temperature must be > 0, got {self.weight_temperature}")
        if not 0 <= self.resample_below <= 1:
            raise ConfigError(f"resample_below must be in [0, 1], got {self.resample_below}")
        if self.select not in ("weighted", "best"):
            raise ConfigError(f"select must be 'weighted' or 'best', got {self.select!r}")


def systematic_resample(weights: list[float], rng: random.Random) -> list[int]:
    """Indices of the particles that survive: one uniform u, pointers (u + i) / N."""
    n = len(weights)
    total = sum(weights)
    u = rng.random() / n
    picks, cumulative, j = [], weights[0] / total, 0
    for i in range(n):
        pointer = u + i / n
        while pointer > cumulative and j < n - 1:
            j += 1
            cumulative += weights[j] / total
        picks.append(j)
    return picks


def effective_sample_size(weights: list[float]) -> float:
    total = sum(weights)
    return 1.0 / sum((w / total) ** 2 for w in weights) if total > 0 else 0.0


class ParticleFilter(BaseStrategy[ParticleFilterParams]):
    """N particles extended a step at a time, reweighted by the PRM, resampled when degenerate."""

    name = "particle_filter"
    Params = ParticleFilterParams
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n * self.params.max_steps

    def _potential(self, particle: Partial) -> float:
        value = max(particle.value(self.params.aggregation), 1e-6)
        return value ** (1.0 / self.params.weight_temperature)

    async def solve(self, run: Run) -> Choice:
        rng = random.Random(run.call_seed())
        [first] = await expand(run, [ROOT], run.n, self.params)
        first = await score(run, first)
        # Merged duplicate first steps: the population keeps its size by repeating them.
        particles: list[Partial] = [first[i % len(first)] for i in range(run.n)] if first else []
        weights = [self._potential(p) for p in particles]
        for _ in range(1, self.params.max_steps):
            if not particles or all(p.done for p in particles):
                break
            if effective_sample_size(weights) < self.params.resample_below * len(particles):
                picks = systematic_resample(weights, rng)
                particles = [particles[i] for i in picks]
                weights = [1.0] * len(particles)
            open_ones = [i for i, p in enumerate(particles) if not p.done]
            grown = await expand(run, [particles[i] for i in open_ones], 1, self.params)
            children = await score(run, [g[0] for g in grown if g])
            it = iter(children)
            for i, group in zip(open_ones, grown, strict=True):
                if not group:  # no sample came back: the particle stays where it was
                    continue
                child = next(it)
                weights[i] *= self._potential(child) / self._potential(particles[i])
                particles[i] = child
        final: dict[int, int] = {}
        for p in particles:
            if p.node not in final:
                final[p.node] = len(run.candidates)
                finish(run, p, self.params.aggregation)
        weight_of = [0.0] * len(run.candidates)
        for p, w in zip(particles, weights, strict=True):
            weight_of[final[p.node]] += w
        return self._pick(run, weight_of)

    def _pick(self, run: Run, weight_of: list[float]) -> Choice:
        candidates = run.candidates
        if not candidates:
            return Choice(None)
        if self.params.select == "best":
            i = max(range(len(candidates)), key=lambda i: (weight_of[i], -i))
            return run.pick(i)
        winner = vote(run.task, candidates, weight_of.__getitem__)
        if winner is None:
            return self.select(run)
        i = max(winner, key=lambda i: (weight_of[i], -i))
        return run.pick(i)
