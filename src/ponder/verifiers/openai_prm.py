"""A Math-Shepherd-style PRM served by any OpenAI-compatible completions server (vLLM, SGLang).

A causal-LM PRM scores step i by the probabilities of its "good" and "bad"
tokens right after the i-th step tag. The completions API gives the
log-probabilities of a prompt's own tokens when asked to echo it, so for each
step this sends the solution up to that tag followed by the good token, and
again followed by the bad one, and reads the last token's log-probability:
score = p(good) / (p(good) + p(bad)), exactly what `CausalLMPRM` computes
locally. All prompts of a solution go in one request; a server with prefix
caching (vLLM's default) computes their shared prefix once.

The label tokens must be single tokens after the tag, as they are in the
Math-Shepherd convention; the echoed tokens are checked, so a format that
does not fit the served tokenizer is a clear error, not a wrong score.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from ponder.budget.flops import ModelShape
from ponder.errors import BackendError, ConfigError
from ponder.generators.http import UpstreamError
from ponder.generators.openai import api_client, served_model
from ponder.verifiers.base import AGGREGATIONS, Aggregation, Solution, Verdict, aggregate
from ponder.verifiers.prm import PRMFormat


class OpenAIPRM:
    """A `Verifier` over a PRM on an OpenAI-compatible server.

    Args:
        base_url: the server's API root, e.g. "http://127.0.0.1:8000/v1".
        model: the served model name; default: the first model the server lists.
        format: how solutions are written for the PRM (default: Math-Shepherd's).
        label_prefix: the text between the tag and a label, so that the label is the
            token the PRM was taught (" " for SentencePiece's "▁+").
        outcome: how step scores fold into the outcome score.
        max_concurrency: requests in flight at once.
        shape: the model's shape, for FLOPs estimates (a server does not tell it).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        format: PRMFormat | None = None,
        label_prefix: str = " ",
        outcome: Aggregation = "last",
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 3,
        shape: ModelShape | None = None,
    ) -> None:
        if outcome not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {outcome!r}; use one of {AGGREGATIONS}")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._base_url = base_url.rstrip("/")
        self._client = api_client(self._base_url, api_key, timeout, max_retries)
        self._model = model
        self._format = format or PRMFormat()
        self._label_prefix = label_prefix
        self._outcome: Aggregation = outcome
        self._shape = shape
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def name(self) -> str:
        return self._model or self._base_url

    @property
    def shape(self) -> ModelShape | None:
        return self._shape

    @property
    def format(self) -> PRMFormat:
        return self._format

    @property
    def folder(self) -> None:
        return None  # served

    async def connect(self) -> str:
        """Check that the server answers and serves the model; return its name."""
        self._model = await served_model(self._client, self._base_url, self._model)
        return self._model

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        # The server's tokenizer is out of reach: UTF-8 bytes bound the count.
        return [len(self._format.render(s)[0].encode()) + 8 for s in solutions]

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        if self._model is None:
            await self.connect()
        return list(await asyncio.gather(*(self._score_one(s) for s in solutions)))

    async def _score_one(self, solution: Solution) -> Verdict:
        text, ends = self._format.render(solution)
        if not ends:
            return Verdict(step_scores=(), outcome=0.0, tokens=0)
        prompts = [
            text[:end] + self._label_prefix + label
            for end in ends
            for label in (self._format.good, self._format.bad)
        ]
        async with self._slots:
            try:
                response = await self._client.post(
                    "completions",
                    {
                        "model": self._model or "",
                        "prompt": prompts,
                        "max_tokens": 1,
                        "temperature": 0.0,
                        "echo": True,
                        "logprobs": 0,
                    },
                )
            except UpstreamError as exc:
                raise BackendError(
                    f"{self._base_url} failed a PRM request: {exc.describe()}"
                ) from exc
        choices = sorted(response.get("choices") or (), key=lambda c: c.get("index", 0))
        label_logprobs, tokens = [], 0
        for prompt_index, choice in enumerate(choices):
            label = (self._format.good, self._format.bad)[prompt_index % 2]
            logprob, prompt_tokens = _echoed_label(choice, self._label_prefix + label)
            label_logprobs.append(logprob)
            tokens = max(tokens, prompt_tokens)
        scores = []
        for good, bad in zip(label_logprobs[::2], label_logprobs[1::2], strict=True):
            top = max(good, bad)
            scores.append(math.exp(good - top) / (math.exp(good - top) + math.exp(bad - top)))
        step_scores = tuple(scores)
        return Verdict(
            step_scores=step_scores,
            outcome=aggregate(step_scores, self._outcome),
            tokens=tokens,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _echoed_label(choice: dict[str, Any], expected: str) -> tuple[float, int]:
    """The log-probability of the label (the last echoed prompt token) and the prompt's length."""
    logprobs = choice.get("logprobs")
    if not logprobs or not logprobs.get("tokens"):
        raise BackendError("the PRM server did not echo the prompt's log-probabilities")
    # The echo is the prompt's tokens followed by the one generated token.
    tokens, values = logprobs["tokens"][:-1], logprobs["token_logprobs"][:-1]
    if not tokens or values[-1] is None:
        raise BackendError("the PRM server gave no log-probability for the label token")
    # Servers return each token as its text: the label with its leading space, if any.
    if tokens[-1] != expected:
        raise ConfigError(
            f"the label {expected!r} is not one token after the step tag for this server's "
            f"tokenizer (the prompt ends in {tokens[-1]!r}); check the PRM format and label_prefix"
        )
    return float(values[-1]), len(tokens)
