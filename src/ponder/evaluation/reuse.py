"""Sample reuse: run a sampling strategy once at its largest budget, replay prefixes for the rest.

For strategies that draw all N samples in one call and then select among them
(best-of-N, majority and their variants: `BaseStrategy.samples_once`), the
first n of N i.i.d. samples are distributed exactly as n fresh samples, so
the budget-n result can be computed from the budget-N samples, as
search-and-learn does. `Recorder` keeps what the generator returned at the
largest budget; `Replayer` serves the first n of those samples to the same
call at budget n. The strategy runs unchanged through its budget meter, so
the tokens and FLOPs it is charged are those of the n samples it selects from.
A call the recording does not hold goes to the real generator.

`VerdictCache` does the same for the verifier: a solution scored once is not
scored again (scores are deterministic); the meter still charges the tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from ponder.budget.flops import ModelShape
from ponder.generators.base import Generator, GeneratorWrapper, SamplingParams
from ponder.types import Generation, Prompt
from ponder.verifiers.base import Solution, Verdict, Verifier

Key = tuple[Prompt, SamplingParams]


def _key(prompt: Prompt, params: SamplingParams) -> Key:
    return prompt, params.replace(n=1)


class _Wrapper(GeneratorWrapper):
    async def aclose(self) -> None:
        """The wrapped generator outlives the wrapper."""


class Recorder(_Wrapper):
    """A generator that keeps every generation it returns, by prompt and parameters."""

    def __init__(self, inner: Generator) -> None:
        super().__init__(inner)
        self.recorded: dict[Key, Generation] = {}

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        generations = await self.inner.generate(prompts, params)
        for prompt, generation in zip(prompts, generations, strict=True):
            self.recorded[_key(prompt, params)] = generation
        return generations


class Replayer(_Wrapper):
    """A generator that answers from a `Recorder`'s generations where it can.

    `missed` counts the prompts it had to send to the real generator.
    """

    def __init__(self, inner: Generator, recorded: dict[Key, Generation]) -> None:
        super().__init__(inner)
        self.recorded = recorded
        self.missed = 0

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        out: list[Generation | None] = []
        misses = []
        for i, prompt in enumerate(prompts):
            found = self.recorded.get(_key(prompt, params))
            if found is not None and len(found.completions) >= params.n:
                out.append(Generation(found.completions[: params.n], found.prompt_tokens))
            else:
                out.append(None)
                misses.append(i)
        if misses:
            self.missed += len(misses)
            fresh = await self.inner.generate([prompts[i] for i in misses], params)
            for i, generation in zip(misses, fresh, strict=True):
                out[i] = generation
        return [g for g in out if g is not None]


class VerdictCache:
    """A verifier that scores each distinct solution once."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self._verdicts: dict[Solution, Verdict] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def shape(self) -> ModelShape | None:
        return self.inner.shape

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        return await self.inner.count_tokens(solutions)

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        todo = list(dict.fromkeys(s for s in solutions if s not in self._verdicts))
        if todo:
            for solution, verdict in zip(todo, await self.inner.score(todo), strict=True):
                self._verdicts[solution] = verdict
        return [self._verdicts[s] for s in solutions]

    def clear(self) -> None:
        self._verdicts.clear()

    async def aclose(self) -> None:
        """The wrapped verifier outlives the cache."""
