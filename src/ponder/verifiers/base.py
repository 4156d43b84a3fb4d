"""The verifier protocol: scores for candidate solutions, step by step and as a whole.

A process reward model (PRM) scores each step: the probability that the
solution is still right after it. An outcome reward model (ORM) or a judge
scores the whole candidate. Verifiers are asynchronous and batched like
generators: one call scores every candidate of a search frontier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError

Aggregation = Literal["last", "min", "product", "mean"]
AGGREGATIONS: tuple[Aggregation, ...] = ("last", "min", "product", "mean")
# How a verifier model is read: as a PRM (one pass), as a judge (checks, then a verdict),
# or as its folder says.
VerifierKind = Literal["auto", "prm", "judge"]
KINDS: tuple[VerifierKind, ...] = ("auto", "prm", "judge")


@dataclass(frozen=True, slots=True)
class Solution:
    """What a verifier judges: the question and a (possibly partial) solution's steps."""

    question: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's scores for one solution, in [0, 1], and the tokens it read and wrote.

    `step_scores` has one score per step for a process verifier and is empty for
    an outcome-only one; `outcome` is the score of the solution as a whole.
    `tokens` is the length of what the verifier read (a generative verifier's
    own checks included); `generated_tokens`, what it generated for this
    verdict in this call (a generative verifier's checks; 0 for a PRM).
    """

    step_scores: tuple[float, ...]
    outcome: float
    tokens: int
    generated_tokens: int = 0

    def aggregate(self, how: Aggregation) -> float:
        """The step scores folded into one (the outcome when there are none)."""
        return aggregate(self.step_scores, how) if self.step_scores else self.outcome


def aggregate(scores: Sequence[float], how: Aggregation) -> float:
    """Fold step scores as the PRM literature does.

    "last" takes the final step's score (Snell et al. 2024 found it best for
    their PRM), "min" the weakest step (Lightman et al. 2023), "product" the
    chance that every step is right if they were independent, "mean" the average.
    """
    if not scores:
        raise ConfigError("cannot aggregate an empty list of step scores")
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "product":
        product = 1.0
        for s in scores:
            product *= s
        return product
    if how == "mean":
        return float(sum(scores) / len(scores))
    raise ConfigError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")


@runtime_checkable
class Verifier(Protocol):
    """A scorer of solutions. Implementation: `CausalLMPRM` (Math-Shepherd-style PRMs)."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> ModelShape | None:
        """The model's shape for FLOPs estimates, or None when unknown."""
        ...

    @property
    def folder(self) -> Path | None:
        """The local folder the model was loaded from; None for a served model (the default
        of a class that subclasses `Verifier`)."""
        return None

    async def connect(self) -> str:
        """Check that the backend answers and has the model; return the model's name (the
        default: nothing to check)."""
        return self.name

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        """One verdict per solution, in order."""
        ...

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        """Each solution's input length in tokens, as `score` would read it."""
        ...

    async def aclose(self) -> None: ...
