"""ponder's values: what goes into a generator, and what comes out of a strategy.

All of them are frozen dataclasses, so they can be shared between concurrent
calls, cached, and compared in tests. `to_dict` gives their JSON form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ponder.errors import ConfigError

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a generator continues: raw text, or chat messages, plus a partial answer.

    `continuation` is a partial solution the model must carry on from (the steps
    chosen so far in a step-level search). For raw prompts the backend continues
    `text + continuation` verbatim; for chat prompts it renders the messages,
    opens the assistant turn and appends `continuation` to it.

    `seed`, when set, is this prompt's own random stream: its samples are then
    the same whatever call, batch or position it is sent in (the call's seed
    applies to prompts without one). Strategies that merge the calls of many
    problems into one rely on it.
    """

    text: str | None = None
    messages: tuple[Message, ...] | None = None
    continuation: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.messages is None):
            raise ConfigError("a Prompt needs exactly one of `text` or `messages`")
        if self.messages is not None and not self.messages:
            raise ConfigError("a chat Prompt needs at least one message")

    @classmethod
    def raw(cls, text: str, continuation: str = "") -> Prompt:
        return cls(text=text, continuation=continuation)

    @classmethod
    def chat(cls, messages: list[Message] | tuple[Message, ...], continuation: str = "") -> Prompt:
        return cls(messages=tuple(messages), continuation=continuation)

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def continued(self, more: str) -> Prompt:
        """This prompt with `more` appended to the partial answer."""
        return dataclasses.replace(self, continuation=self.continuation + more)

    def seeded(self, seed: int | None) -> Prompt:
        """This prompt with its own random stream `seed`."""
        return dataclasses.replace(self, seed=seed)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token, its log-probability under the model, and the top alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled continuation.

    `finish_reason` is "stop" when the model ended its answer or hit a stop string
    (then `stop_string` says which; the text excludes it) and "length" when it ran
    out of `max_tokens`.
    """

    text: str
    num_tokens: int
    finish_reason: FinishReason
    stop_string: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """A generator's answer to one prompt: its samples and the prompt's length in tokens."""

    completions: tuple[Completion, ...]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Step:
    """One reasoning step of a solution, with its process score once a verifier scored it."""

    text: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate solution: its text, its steps, its extracted answer and its scores.

    `scores` is keyed by what produced the score ("prm_min", "outcome",
    "mean_logprob", ...), so strategies can combine several.
    """

    text: str
    steps: tuple[Step, ...]
    answer: str | None
    num_tokens: int
    finish_reason: FinishReason = "stop"
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cost:
    """What a run spent. Token counts are exact counts reported by the backends.

    `flops` is an estimate (see `ponder.budget.flops`); `wall_seconds` is elapsed time.
    """

    calls: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    verifier_calls: int = 0
    verifier_tokens: int = 0
    verifier_generated_tokens: int = 0
    flops: float = 0.0
    wall_seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True, slots=True)
class TraceNode:
    """One node of a strategy's search trace: a (partial) solution and how it was reached."""

    id: int
    parent: int | None
    text: str
    score: float | None = None
    kind: str = "sample"


@dataclass(frozen=True, slots=True)
class Result:
    """What a strategy returns: the answer, the chosen candidate, all candidates, cost, trace.

    `budget` is the N the strategy ran at; `chosen_node` is the trace node of the
    chosen candidate; `stopped_by_budget` says a token or FLOPs cap cut the run short.
    `details` is what a strategy reports about its own run (adaptive sampling: the
    samples it drew and why it stopped).
    """

    strategy: str
    answer: str | None
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]
    cost: Cost
    trace: tuple[TraceNode, ...] = ()
    stopped_by_budget: bool = False
    budget: int = 1
    chosen_node: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
