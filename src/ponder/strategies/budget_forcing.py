"""Budget forcing: when an attempt ends, append a hint and let the model go on.

Muennighoff et al. (2025), "s1: Simple test-time scaling", extend a reasoning
model's thinking by suppressing its end and appending "Wait"; START (Li et al.
2025, hint-infer) appends a hint that invites a check. Both are sequential
scaling without a verifier: the model re-reads its own solution and may
correct it. At budget N the first attempt is followed by up to N - 1
extensions, each the hint (on its own step) and a continuation; `max_tokens`
bounds the tokens of all of them together (s1's thinking budget). The answer
is the last one the whole text gives (s1's rule).

The hint must be one the model goes on after. A model trained to check its
work after some words declares them in its prompt format (`PromptFormat.hint`:
the embedded arith policy revises its solution after "Revision:"), and that
hint is the default; otherwise s1's "Wait".
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.scoring import Sampling
from ponder.types import Completion

GENERIC_HINT = "Wait, let me check that step."


@dataclass(frozen=True, slots=True)
class BudgetForcingParams(Sampling):
    """`hint`: the text appended, as its own step, each time the model ends (default: the
    model's own, from its prompt format, else "Wait, let me check that step.")."""

    hint: str | None = None

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.hint is not None and not self.hint.strip():
            raise ConfigError("the hint must not be empty")


class BudgetForcing(BaseStrategy[BudgetForcingParams]):
    """One attempt, then up to N - 1 hinted continuations, each one call."""

    name = "budget_forcing"
    Params = BudgetForcingParams

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        separator = run.task.step_separator
        hint = self.params.hint or run.task.prompt_format.hint or GENERIC_HINT
        text, tokens, parent = "", 0, 0
        for extension in range(run.n):
            room = self.params.max_tokens - tokens
            if room < 1:
                break
            if extension:
                text += separator + hint + separator
            params = self.params.params(1, run.call_seed()).replace(max_tokens=room)
            [generation] = await run.generator.generate([run.prompt(text)], params)
            if not generation.completions:
                break
            completion = generation.completions[0]
            text += completion.text
            tokens += completion.num_tokens
            shown = (hint + separator if extension else "") + completion.text
            parent = run.trace.add(parent, shown, kind="attempt")
            whole = Completion(text=text, num_tokens=tokens, finish_reason=completion.finish_reason)
            run.keep(run.task.candidate(whole), parent)
        return self._latest(run)

    def _latest(self, run: Run) -> Choice:
        for i in reversed(range(len(run.candidates))):
            if run.candidates[i].answer is not None:
                return run.pick(i)
        if run.candidates:
            return run.pick(-1)
        return Choice(None)

    def select(self, run: Run) -> Choice:
        return self._latest(run)
