"""The OpenAI API's request and response shapes, as the server reads and writes them.

Requests are pydantic models (so the server's OpenAPI schema states them);
fields a model does not name are kept (`model_extra`) and passed through to an
OpenAI-compatible upstream as vendor sampling fields (`top_k`, `min_p`,
`chat_template_kwargs`, ...). Responses are plain dicts in the shapes of the
official `openai` client's types (`ChatCompletion`, `ChatCompletionChunk`,
`Completion`), which the tests parse them with, plus a `ponder` object.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import ConfigError
from ponder.strategies.base import Progress
from ponder.strategies.registry import STRATEGIES
from ponder.strategies.scoring import tally, vote
from ponder.tasks import Task
from ponder.types import Candidate, Cost, Result

# Fields of OpenAI's request that say nothing about sampling: accepted and not forwarded.
METADATA_FIELDS = frozenset(
    {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "tool_choice", "tools"}
)


class PonderOptions(BaseModel):
    """The `ponder` extension object of a request body (`extra_body={"ponder": {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal[tuple(STRATEGIES)] | None = Field(  # type: ignore[valid-type]
        None, description="a strategy's name, e.g. beam_search"
    )
    budget: int | None = Field(None, ge=1, description="the budget N")
    params: dict[str, str | int | float | bool | None] | None = Field(
        None, description="the strategy's parameters, e.g. {'beam_width': 4}"
    )
    return_candidates: bool = Field(False, description="list every candidate in the response")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class _Request(BaseModel):
    """What chat and text completions share."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        description="a route, optionally with @strategy[:budget]",
        examples=["arith", "arith@beam_search:4"],
    )
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    logprobs: bool | int | None = None
    ponder: PonderOptions | None = None

    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]

    def vendor_fields(self) -> dict[str, Any]:
        """Fields this model does not name and that are not metadata: vendor sampling fields."""
        extra = self.model_extra or {}
        return {k: v for k, v in extra.items() if k not in METADATA_FIELDS}

    def refuse_unsupported(self) -> None:
        if self.logprobs:
            raise ConfigError("ponder does not return log-probabilities; leave logprobs unset")
        if (self.model_extra or {}).get("tools"):
            raise ConfigError("ponder does not call tools; send the request without tools")
        response_format = (self.model_extra or {}).get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            raise ConfigError("ponder answers in text only; leave response_format unset")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        for part in self.content:
            if part.type != "text":
                raise ConfigError(f"ponder reads text only; a message has a {part.type!r} part")
        return "".join(part.text or "" for part in self.content)


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def sampling(self) -> dict[str, Any]:
        return {**super().sampling(), "max_tokens": self.max_completion_tokens or self.max_tokens}

    def question(self) -> str:
        """The problem: the last user message (earlier turns and system messages are not read)."""
        for message in reversed(self.messages):
            if message.role == "user":
                text = message.text()
                if not text.strip():
                    raise ConfigError("the last user message is empty: give the problem to solve")
                return text
        raise ConfigError("the messages hold no user message: give the problem as one")


class CompletionRequest(_Request):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)] = Field(
        description="the problem: one string (or a list of one)"
    )
    echo: bool = False

    def question(self) -> str:
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]  # a list of one
        if not prompt.strip():
            raise ConfigError("the prompt is empty: give the problem to solve")
        return prompt


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    """OpenAI's `ChatCompletion`, plus the `ponder` object (what was spent and found)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    ponder: dict[str, Any]


class TextChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class CompletionResponse(BaseModel):
    """OpenAI's `Completion`, plus the `ponder` object."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage
    ponder: dict[str, Any]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int | str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"]
    routes: list[str]
    active: int


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": what}
    for status, what in (
        (400, "an invalid request: unknown strategy or parameter, a cap exceeded, bad JSON"),
        (401, "a missing or wrong API key"),
        (404, "no such model (route)"),
        (413, "a body over the server's limit"),
        (429, "every slot and queue place taken (see Retry-After)"),
        (502, "the upstream failed"),
        (503, "the upstream is out of reach"),
        (504, "the request ran past the deadline, or the upstream timed out"),
    )
}


def streamed(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 200 response of an endpoint that streams server-sent events when asked."""
    return {
        200: {
            "model": model,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "the completion; with stream=true, server-sent events",
        },
        **ERRORS,
    }


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def usage(cost: Cost) -> dict[str, int]:
    """OpenAI's usage: every token the policy read and generated for the request."""
    return {
        "prompt_tokens": cost.prompt_tokens,
        "completion_tokens": cost.generated_tokens,
        "total_tokens": cost.prompt_tokens + cost.generated_tokens,
    }


def ranked(task: Task, result: Result) -> list[Candidate]:
    """The distinct candidates, the chosen one first, then by their answer's votes and their
    best score: what `n > 1` returns its first n of."""
    candidates = list(result.candidates)
    groups, votes = tally(task, candidates)
    votes_of = {i: votes[g] for g, group in enumerate(groups) for i in group}
    order = sorted(
        range(len(candidates)),
        key=lambda i: (-votes_of.get(i, 0.0), -max(candidates[i].scores.values(), default=0.0), i),
    )
    chosen = [result.chosen] if result.chosen is not None else []
    seen: set[str] = set()
    out = []
    for candidate in chosen + [candidates[i] for i in order]:
        if candidate.text not in seen:
            seen.add(candidate.text)
            out.append(candidate)
    return out


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first of `stops` (the request's stop strings), and whether one hit."""
    hits = [text.find(s) for s in stops if s in text]
    return (text[: min(hits)], True) if hits else (text, False)


def ponder_object(
    selection: Any, result: Result, *, wall: float, candidates: bool, ignored: Sequence[str]
) -> dict[str, Any]:
    """What ponder adds to a response: the strategy, the spend and what it found."""
    cost = result.cost
    body: dict[str, Any] = {
        "strategy": selection.strategy,
        "budget": selection.budget,
        "params": dict(selection.params),
        "answer": result.answer,
        "samples": cost.samples,
        "generator_calls": cost.calls,
        "verifier_calls": cost.verifier_calls,
        "verifier_tokens": cost.verifier_tokens,
        "verifier_generated_tokens": cost.verifier_generated_tokens,
        "flops": cost.flops,
        "wall_seconds": round(wall, 4),
        "stopped_by_budget": result.stopped_by_budget,
        "details": dict(result.details),
    }
    if ignored:
        body["ignored_fields"] = sorted(ignored)
    if candidates:
        body["candidates"] = [
            {
                "text": c.text,
                "answer": c.answer,
                "tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
                "scores": dict(c.scores),
            }
            for c in result.candidates
        ]
    return body


def progress_object(task: Task, progress: Progress) -> dict[str, Any]:
    """One round's news: the leading answer and its votes among the candidates kept so far."""
    leading = vote(task, progress.candidates)
    leader = progress.candidates[leading[0]].answer if leading else None
    cost = progress.cost
    return {
        "round": progress.round,
        "candidates": len(progress.candidates),
        "leader": leader,
        "votes": len(leading) if leading else 0,
        "samples": cost.samples,
        "generated_tokens": cost.generated_tokens,
        "verifier_tokens": cost.verifier_tokens,
    }


def progress_text(news: dict[str, Any]) -> str:
    leader = (
        f"leader {news['leader']} ({news['votes']:g} of {news['candidates']})"
        if news["leader"] is not None
        else f"{news['candidates']} finished"
    )
    return (
        f"round {news['round']}: {leader}; {news['samples']} samples, "
        f"{news['generated_tokens']} tokens so far\n"
    )


def finish_reason(candidate: Candidate | None, stopped: bool) -> str:
    if stopped:
        return "stop"
    return "length" if candidate is not None and candidate.finish_reason == "length" else "stop"


def completion(
    rid: str,
    model: str,
    texts: list[tuple[str, str]],
    cost: Cost,
    ponder: dict[str, Any],
    *,
    chat: bool,
) -> dict[str, Any]:
    """A whole answer: OpenAI's `ChatCompletion` (`chat`) or `Completion`, one choice per
    (text, finish reason), with usage and the `ponder` object."""
    choices = []
    for i, (text, reason) in enumerate(texts):
        said = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
        choices.append({"index": i, **said, "finish_reason": reason, "logprobs": None})
    return {
        "id": rid,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(cost),
        "ponder": ponder,
    }


def chunk(
    rid: str,
    model: str,
    created: int,
    *,
    chat: bool,
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    index: int = 0,
    extra: dict[str, Any] | None = None,
    usage_of: Cost | None = None,
) -> dict[str, Any]:
    """One streamed chunk (`chat.completion.chunk` or a streamed `text_completion`).

    `usage_of` makes the last, choice-less chunk that `stream_options.include_usage` asks for.
    """
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [],
    }
    if usage_of is not None:
        body["usage"] = usage(usage_of)
    else:
        choice: dict[str, Any] = {"index": index, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["delta"] = delta or {}
        else:
            choice["text"] = (delta or {}).get("content", "")
        body["choices"] = [choice]
    if extra:
        body.update(extra)
    return body


def error_body(message: str, kind: str, code: int | str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
