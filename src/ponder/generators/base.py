"""The generator protocol: what every LLM backend offers to strategies.

A generator is asynchronous and batched: one call takes many prompts and
returns `n` samples for each, so a strategy can expand a whole search frontier
in one call and a server can batch it and reuse shared prefixes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError
from ponder.types import Generation, Prompt


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample, validated once, shared by every prompt of a call.

    - `n`: samples per prompt. Greedy decoding (`temperature=0`) has one
      outcome, so a generator returns a single completion for it whatever `n` is.
    - `max_tokens`: generated tokens per sample, at most.
    - `temperature`: 0 means greedy decoding.
    - `top_p`: nucleus sampling mass, in (0, 1].
    - `seed`: makes a call reproducible; `None` draws fresh randomness. Each
      prompt of a call (and, where the backend allows, each sample) gets its
      own stream derived from the seed, so prompts do not share random numbers.
    - `stop`: strings that end a sample (a step boundary such as "\\n" is one);
      the returned text excludes the stop string, and `Completion.stop_string`
      says which one matched.
    - `logprobs`: `None` for no log-probabilities; `k >= 0` for the sampled
      token's log-probability and the `k` most likely alternatives at each step.
    - `extra`: vendor sampling fields (`top_k`, `min_p`, `chat_template_kwargs`, ...)
      sent as they are to an OpenAI-compatible server; a local model ignores them.
      Given as a mapping of JSON values, kept as sorted (name, JSON text) pairs so the
      parameters stay hashable (calls are merged by equal parameters).
    """

    n: int = 1
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.extra, Mapping):
            try:
                pairs = tuple(sorted((str(k), json.dumps(v)) for k, v in self.extra.items()))
            except TypeError as exc:
                raise ConfigError(f"extra sampling fields must be JSON values: {exc}") from None
            object.__setattr__(self, "extra", pairs)
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not s for s in self.stop):
            raise ConfigError("stop strings must not be empty")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            raise ConfigError(f"logprobs must be None or between 0 and 20, got {self.logprobs}")

    def replace(self, **changes: Any) -> SamplingParams:
        return dataclasses.replace(self, **changes)

    def extra_body(self) -> dict[str, Any]:
        """The vendor fields, as a request body's extra keys."""
        return {name: json.loads(value) for name, value in self.extra}


def derive_seed(seed: int, *indices: int | str) -> int:
    """An independent 63-bit seed for item `indices` of a call seeded with `seed`."""
    key = ":".join(str(i) for i in (seed, *indices)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def prompt_seed(prompt: Prompt, call_seed: int, index: int) -> int:
    """The random stream of the prompt at `index` of a call: its own seed, else the call's."""
    return prompt.seed if prompt.seed is not None else derive_seed(call_seed, index)


def seeded_prompts(prompts: Sequence[Prompt], call_seed: int | None) -> list[Prompt]:
    """Each prompt carrying the seed its place in a call seeded `call_seed` gives it
    (`prompt_seed`), so that it samples the same sent alone or in another call."""
    if call_seed is None:
        return list(prompts)
    return [
        p if p.seed is not None else p.seeded(derive_seed(call_seed, i))
        for i, p in enumerate(prompts)
    ]


@runtime_checkable
class Generator(Protocol):
    """An LLM backend. Implementations: `TransformersGenerator`, `OpenAIGenerator`."""

    @property
    def name(self) -> str:
        """The model's name, as results and cost reports show it."""
        ...

    @property
    def shape(self) -> ModelShape | None:
        """The model's shape for FLOPs estimates, or None when unknown."""
        ...

    @property
    def folder(self) -> Path | None:
        """The local folder the model was loaded from; None for a served model (the default
        of a class that subclasses `Generator`)."""
        return None

    async def connect(self) -> str:
        """Check that the backend answers and has the model; return the model's name.

        A served model's server is asked; a local model is loaded already (the default:
        nothing to check).
        """
        return self.name

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        """Sample `params.n` completions for each prompt, in order.

        A backend may return fewer than `n` completions for a prompt (a server
        that drops some); callers must not assume exactly `n`.
        """
        ...

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        """`generate`, each sample's text handed to `on_text(index, piece)` piece by piece
        as it is generated, where prompt i's sample j has index `i * params.n + j`.

        The default, for a backend that cannot stream: `generate`, then each whole text.
        """
        return await stream_by_generating(self, prompts, params, on_text)

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        """Each prompt's length in tokens: exact where the backend can tell, else an upper bound."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or memory the generator holds."""
        ...


class GeneratorWrapper:
    """A generator that hands every call to `inner`. A wrapper (call merging, vendor
    fields, sample reuse) subclasses it and overrides only the calls it changes."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def shape(self) -> ModelShape | None:
        return self.inner.shape

    @property
    def folder(self) -> Path | None:
        return self.inner.folder

    async def connect(self) -> str:
        return await self.inner.connect()

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        return await self.inner.count_prompt_tokens(prompts)

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        return await self.inner.generate(prompts, params)

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        return await self.inner.stream(prompts, params, on_text)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def stream_by_generating(
    generator: Generator,
    prompts: Sequence[Prompt],
    params: SamplingParams,
    on_text: Callable[[int, str], None],
) -> list[Generation]:
    """`Generator.stream` for a backend that cannot stream: `generate`, then each whole text."""
    generations = await generator.generate(prompts, params)
    for i, generation in enumerate(generations):
        for j, completion in enumerate(generation.completions):
            on_text(i * params.n + j, completion.text)
    return generations
