"""Sequential revisions: each attempt written after the previous one.

Snell et al. (2024), section 6: a model fine-tuned to revise writes a chain of
attempts, each conditioned on the one before, and the best answer of the
chain is picked by a verifier or by voting. Easy problems gain most from
sequential revision and hard ones from parallel sampling, so the N attempts
can be split into `chains` parallel chains of N / chains attempts each (the
sequential-to-parallel ratio). Each round is one generator call for every
chain. The prompt of a revision is the task's prompt format's (`revision`:
the embedded arith policy declares the one it was trained on).

`select`: "weighted" (votes weighted by verifier score over all attempts,
Snell et al.'s choice), "best" (the best-scored attempt), "majority" (no
verifier), or "last" (each chain's final attempt, by majority).
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling, answer_groups, check_aggregation, score_key, verify

SELECTIONS = ("weighted", "best", "majority", "last")


@dataclass(frozen=True, slots=True)
class RevisionParams(Sampling):
    """`chains`: parallel chains (N / chains attempts each); `select`: how the answer is
    picked; `aggregation`: how a PRM's step scores make an attempt's score."""

    chains: int = 1
    select: str = "weighted"
    aggregation: str = "last"

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.chains < 1:
            raise ConfigError(f"chains must be at least 1, got {self.chains}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}, not {self.select!r}")
        check_aggregation(self.aggregation)


class Revision(BaseStrategy[RevisionParams]):
    """`chains` chains of attempts, each revising the last; one call per round for all."""

    name = "revision"
    Params = RevisionParams

    @classmethod
    def uses_verifier(cls, params: RevisionParams) -> bool:
        return params.select in ("weighted", "best")

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        chains = min(self.params.chains, run.n)
        length = run.n // chains
        fmt = run.task.prompt_format
        last: list[int] = []  # each chain's latest attempt, as an index of run.candidates
        for round_ in range(length):
            if round_ == 0:
                prompts = [run.prompt()]
                params = self.params.params(chains, run.call_seed())
            else:
                prompts = [
                    fmt.render_revision(run.problem.question, run.candidates[i].text) for i in last
                ]
                params = self.params.params(1, run.call_seed())
            generations = await run.generator.generate(prompts, params)
            completions = (
                list(generations[0].completions)
                if round_ == 0
                else [g.completions[0] if g.completions else None for g in generations]
            )
            parents = [0] * len(completions) if round_ == 0 else [run.nodes[i] for i in last]
            previous = last if round_ else [None] * len(completions)
            last = []
            for completion, parent, before in zip(completions, parents, previous, strict=True):
                if completion is None:  # the backend dropped it: the chain keeps its attempt
                    if before is not None:
                        last.append(before)
                    continue
                candidate = run.task.candidate(completion)
                run.keep(candidate, run.trace.add(parent, candidate.text, kind="attempt"))
                last.append(len(run.candidates) - 1)
        if self.uses_verifier(self.params):
            await verify(run, list(run.candidates))
        return self._pick(run, last)

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
            return Choice(candidates[i], run.nodes[i])
        groups = answer_groups(run.task, [candidates[i] for i in pool])
        if not groups:
            return Choice(None)
        groups = [[pool[j] for j in g] for g in groups]
        if self.params.select == "weighted":
            totals = [sum(weight[i] for i in g) for g in groups]
        else:
            totals = [float(len(g)) for g in groups]
        winner = groups[max(range(len(groups)), key=lambda g: (totals[g], -g))]
        i = (
            max(winner, key=lambda i: (weight[i], i))
            if self.params.select == "weighted"
            else winner[-1]
        )
        return Choice(candidates[i], run.nodes[i])
