"""Sequential revisions: each attempt written after the previous one.

Snell et al. (2024), section 6: a model fine-tuned to revise writes a chain of
attempts, each conditioned on the one before, and the best answer of the
chain is picked by a verifier or by voting. Easy problems gain most from
sequential revision and hard ones from parallel sampling, so the N attempts
can be split into `chains` parallel chains of N / chains attempts each (the
sequential-to-parallel ratio). Each round is one generator call for every
chain. The prompt of a revision is the task's prompt format's (`revision`:
the embedded arith policy declares the one it was trained on).

`guide="verifier"` makes the revisions verifier-guided: the verifier scores
each chain's latest attempt, the chain keeps the steps it trusts (score at
least `trust`) and the model writes the rest anew from the first step the
verifier doubts; a chain whose every step is trusted stops, leaving the rest of
its budget unspent. The revision only pays for the steps it redoes.

`select`: "weighted" (votes weighted by verifier score over all attempts,
Snell et al.'s choice), "best" (the best-scored attempt), "majority" (no
verifier), or "last" (each chain's final attempt, by majority).
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import (
    Sampling,
    check_aggregation,
    score_key,
    verify,
    vote,
)

SELECTIONS = ("weighted", "best", "majority", "last")
GUIDES = ("none", "verifier")


@dataclass(frozen=True, slots=True)
class RevisionParams(Sampling):
    """`chains`: parallel chains (N / chains attempts each); `select`: how the answer is
    picked; `aggregation`: how a PRM's step scores make an attempt's score; `guide`:
    "verifier" to redo each attempt from the first step the verifier scores below
    `trust`, "none" for the model's own revisions."""

    chains: int = 1
    select: str = "weighted"
    aggregation: str = "last"
    guide: str = "none"
    trust: float = 0.5

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.chains < 1:
            raise ConfigError(f"chains must be at least 1, got {self.chains}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}, not {self.select!r}")
        if self.guide not in GUIDES:
            raise ConfigError(f"guide must be one of {', '.join(GUIDES)}, not {self.guide!r}")
        if not 0 < self.trust < 1:
            raise ConfigError(f"trust must be in (0, 1), got {self.trust}")
        check_aggregation(self.aggregation)


class Revision(BaseStrategy[RevisionParams]):
    """`chains` chains of attempts, each revising the last; one call per round for all."""

    name = "revision"
    Params = RevisionParams

    @classmethod
    def uses_verifier(cls, params: RevisionParams) -> bool:
        return params.select in ("weighted", "best") or params.guide == "verifier"

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        chains = min(self.params.chains, run.n)
        [first] = await run.generator.generate(
            [run.prompt()], self.params.params(chains, run.call_seed())
        )
        last: list[int] = []  # each chain's latest attempt, as an index of run.candidates
        for completion in first.completions:
            candidate = run.task.candidate(completion)
            run.keep(candidate, run.trace.add(0, candidate.text, kind="attempt"))
            last.append(len(run.candidates) - 1)
        open_chains = list(range(len(last)))  # positions in `last` of the chains going on
        for _ in range(1, run.n // chains):
            if not open_chains:
                break
            step = self._redo_doubted if self.params.guide == "verifier" else self._revise
            updated = await step(run, [last[c] for c in open_chains])
            for chain, index in zip(open_chains, updated, strict=True):
                if index is not None:
                    last[chain] = index
            open_chains = [c for c, i in zip(open_chains, updated, strict=True) if i is not None]
        if self.uses_verifier(self.params):
            await verify(run, list(run.candidates))
        return self._pick(run, last)

    async def _revise(self, run: Run, chains: list[int]) -> list[int | None]:
        """One revision of each chain's latest attempt, written after it by the model."""
        fmt, separator = run.task.prompt_format, run.task.step_separator
        prompts = [
            fmt.render_revision(
                run.problem.question, separator.join(s.text for s in run.candidates[i].steps)
            )
            for i in chains
        ]
        generations = await run.generator.generate(prompts, self.params.params(1, run.call_seed()))
        latest: list[int | None] = []
        for before, generation in zip(chains, generations, strict=True):
            if not generation.completions:  # the backend dropped it: the chain keeps its attempt
                latest.append(before)
                continue
            candidate = run.task.candidate(generation.completions[0])
            run.keep(candidate, run.trace.add(run.nodes[before], candidate.text, kind="attempt"))
            latest.append(len(run.candidates) - 1)
        return latest

    async def _redo_doubted(self, run: Run, chains: list[int]) -> list[int | None]:
        """Each chain's latest attempt redone from the first step the verifier doubts (None
        for a chain whose every step it trusts: it is done)."""
        scored = await verify(run, [run.candidates[i] for i in chains])
        separator = run.task.step_separator
        prefixes: list[str | None] = []
        for candidate in scored:
            scores = [s.score if s.score is not None else 0.0 for s in candidate.steps]
            doubted = next((k for k, v in enumerate(scores) if v < self.params.trust), None)
            if doubted is None and candidate.answer is not None:
                prefixes.append(None)  # trusted to the end: nothing to redo
                continue
            kept = candidate.steps[: doubted if doubted is not None else len(candidate.steps)]
            prefixes.append("".join(s.text + separator for s in kept))
        redo = [(i, p) for i, p in zip(chains, prefixes, strict=True) if p is not None]
        if not redo:
            return [None] * len(chains)
        generations = await run.generator.generate(
            [run.prompt(prefix) for _, prefix in redo], self.params.params(1, run.call_seed())
        )
        redone: dict[int, int] = {}
        for (before, prefix), generation in zip(redo, generations, strict=True):
            if not generation.completions:  # dropped by the backend: the chain keeps its attempt
                redone[before] = before
                continue
            candidate = run.task.candidate(generation.completions[0], prefix=prefix)
            node = run.trace.add(run.nodes[before], candidate.text, kind="attempt")
            run.keep(candidate, node)
            redone[before] = len(run.candidates) - 1
        return [redone.get(i) for i in chains]

    def _pick(self, run: Run, last: list[int]) -> Choice:
        candidates = run.candidates
        pool = last if self.params.select == "last" else list(range(len(candidates)))
        key = score_key(self.params.aggregation)
        weight = {i: candidates[i].scores.get(key, 0.0) for i in pool}
        if self.params.select == "best":
            answered = [i for i in pool if candidates[i].answer is not None] or pool
            if not answered:
                return Choice(None)
            i = max(answered, key=lambda i: (weight[i], -i))
            return run.pick(i)
        by_weight = (lambda j: weight[pool[j]]) if self.params.select == "weighted" else None
        chosen = vote(run.task, [candidates[i] for i in pool], by_weight)
        if chosen is None:
            return Choice(None)
        winner = [pool[j] for j in chosen]
        i = (
            max(winner, key=lambda i: (weight[i], i))
            if self.params.select == "weighted"
            else winner[-1]
        )
        return run.pick(i)
