"""First-finish search: start N samples, keep the first one to finish.

Agarwal et al. (2025), "First Finish Search: Efficient Test-Time Scaling in
Large Language Models": among parallel samples of a reasoning model, the
shortest is more often right, and stopping every sample once the first
finishes saves most of the tokens of best-of-N. The N samples are decoded in
rounds of `chunk_tokens`; each round is one call continuing every sample still
running, and the run stops after the round in which a sample ends (the
shortest of those that ended wins, the first on ties). Samples cut there cost
only the tokens they generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.generators.base import SamplingParams
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling
from ponder.types import Completion, Generation, Prompt


@dataclass(frozen=True, slots=True)
class FirstFinishParams(Sampling):
    """`chunk_tokens`: tokens each running sample generates per round."""

    chunk_tokens: int = 32

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.chunk_tokens < 1:
            raise ConfigError(f"chunk_tokens must be at least 1, got {self.chunk_tokens}")


class FirstFinish(BaseStrategy[FirstFinishParams]):
    """N samples decoded in lock-step rounds; the first to end is the answer."""

    name = "first_finish"
    Params = FirstFinishParams

    def sample_limit(self, n: int) -> int:
        return n * math.ceil(self.params.max_tokens / self.params.chunk_tokens)

    async def solve(self, run: Run) -> Choice:
        start = len(run.candidates)  # a pilot's candidates come first
        chunk = min(self.params.chunk_tokens, self.params.max_tokens)
        params = self.params.params(run.n, run.call_seed()).replace(max_tokens=chunk)
        [generation] = await _draw(run, [run.prompt()], params, list(range(run.n)))
        texts = [c.text for c in generation.completions]
        tokens = [c.num_tokens for c in generation.completions]
        nodes = [run.trace.add(0, t, kind="sample") for t in texts]
        running = [i for i, c in enumerate(generation.completions) if c.finish_reason == "length"]
        ended = [i for i, c in enumerate(generation.completions) if c.finish_reason == "stop"]
        try:
            while not ended and running:
                room = self.params.max_tokens - tokens[running[0]]
                if room <= 0:
                    break
                params = self.params.params(1, run.call_seed()).replace(max_tokens=min(chunk, room))
                prompts = [run.prompt(texts[i]) for i in running]
                generations = await _draw(run, prompts, params, running)
                still = []
                for i, more in zip(running, generations, strict=True):
                    if not more.completions:  # the backend dropped it: it stops here
                        continue
                    piece = more.completions[0]
                    texts[i] += piece.text
                    tokens[i] += piece.num_tokens
                    run.trace.update(nodes[i], text=texts[i])
                    (ended if piece.finish_reason == "stop" else still).append(i)
                running = still
        finally:  # a cap may stop the rounds: what was written stays a candidate
            for i in range(len(texts)):
                finish = "stop" if i in ended else "length"
                completion = Completion(text=texts[i], num_tokens=tokens[i], finish_reason=finish)
                candidate = run.task.candidate(completion)
                run.keep(candidate, nodes[i])
                if i not in ended:
                    run.trace.update(nodes[i], kind="cut")
        if not ended:
            return self.select(run)
        first = min(ended, key=lambda i: (tokens[i], i))
        run.trace.update(nodes[first], kind="answer")
        return run.pick(start + first)

    def select(self, run: Run) -> Choice:
        finished = [i for i, c in enumerate(run.candidates) if c.finish_reason == "stop"]
        pool = finished or [i for i, c in enumerate(run.candidates) if c.answer is not None]
        if not pool:
            return Choice(None)
        first = min(pool, key=lambda i: (run.candidates[i].num_tokens, i))
        return run.pick(first)


async def _draw(
    run: Run, prompts: list[Prompt], params: SamplingParams, samples: list[int]
) -> list[Generation]:
    """One round's call; streamed to a caller that watches the race (`Run.on_sample`), where
    the call's k-th sample is the run's sample `samples[k]`."""
    on_sample = run.on_sample
    if on_sample is None:
        return await run.generator.generate(prompts, params)
    return await run.generator.stream(prompts, params, lambda k, t: on_sample(samples[k], t))
