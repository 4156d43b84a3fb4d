"""A route's models, loaded once and shared by every request, and a request's choice of strategy.

Each route holds one generator and one verifier for the server's life, each
behind a `CoalescingGenerator` / `CoalescingVerifier`. For a local model, the
calls that concurrent requests make in the same turn of the event loop (or while
the model is busy) reach it as one call, as the problems of an evaluation sweep
do. A served model (vLLM, SGLang, ...) batches concurrent requests itself, so
each request's calls go to it as they are made and return with their own answer
(merged, each would wait for the slowest of its call). A request builds its own
strategy object over them (cheap: a strategy is its parameters), so nothing a
request asks for is written into an object another request reads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.generators import Generator, SamplingParams, load_generator
from ponder.generators.base import GeneratorWrapper
from ponder.serve.config import EMBEDDED, Limits, Route
from ponder.serve.protocol import PonderOptions
from ponder.solve import default_format, question_task
from ponder.strategies.base import BaseStrategy
from ponder.strategies.batching import CoalescingGenerator, CoalescingVerifier
from ponder.strategies.registry import (
    make_strategy,
    needs_verifier,
    parse_params,
    strategy_class,
)
from ponder.tasks import MATH_CHAT, MATH_RAW, PromptFormat, Task
from ponder.tasks.base import PROMPT_FORMAT_FILE
from ponder.types import Generation, Prompt
from ponder.verifiers import Verifier, load_verifier


@dataclass(frozen=True, slots=True)
class Selection:
    """What one request runs: a strategy by name, its budget N and its parameters (text)."""

    strategy: str
    budget: int
    params: Mapping[str, str]
    parsed: Any  # `params` as the strategy's parameter object, parsed once


class Upstream:
    """A route's loaded models and prompt format (see the module docstring)."""

    def __init__(
        self,
        route: Route,
        on_call: Callable[[str, str, int], None] | None = None,
        loaded: dict[tuple[Any, ...], Any] | None = None,
    ) -> None:
        """`loaded` holds the models routes have loaded so far (by spec): routes that name
        the same model share it, and their requests' calls are merged too."""
        self.route = route
        loaded = {} if loaded is None else loaded
        told = functools.partial(on_call, route.name) if on_call is not None else None
        key = ("generator", route.model, route.served_model, route.model_config)
        if key not in loaded:
            model = None if route.model == EMBEDDED else route.model
            served = model is not None and model.startswith(("http://", "https://"))
            options = {"timeout": route.timeout_s} if served else {}
            backend = load_generator(
                model, model=route.served_model, shape_from=route.model_config, **options
            )
            # A local model runs one call at a time: what arrives meanwhile goes in the next.
            loaded[key] = CoalescingGenerator(
                backend,
                in_flight=1,
                on_call=functools.partial(told, "generator") if told is not None else None,
                merge=backend.folder is not None,
            )
        self.generator: CoalescingGenerator = loaded[key]
        self.is_served = self.generator.folder is None
        self.verifier: CoalescingVerifier | None = None
        if route.verifier is not None:
            key = ("verifier", route.verifier, route.served_verifier)
            if key not in loaded:
                spec = None if route.verifier == EMBEDDED else route.verifier
                verifier = load_verifier(spec, model=route.served_verifier)
                loaded[key] = CoalescingVerifier(
                    verifier,
                    in_flight=1,
                    on_call=functools.partial(told, "verifier") if told is not None else None,
                    merge=verifier.folder is not None,
                )
            self.verifier = loaded[key]
        self.task: Task = question_task(prompt_format(route.prompt_format, self.generator))

    async def connect(self) -> None:
        """Check that the upstreams answer (a server) before the first request comes."""
        await self.generator.connect()
        if self.verifier is not None:
            await self.verifier.connect()

    def select(
        self,
        suffix: str | None,
        options: PonderOptions | None,
        sampling: Mapping[str, Any],
        limits: Limits,
    ) -> Selection:
        """The strategy, budget and parameters of a request.

        Highest first: the body's `ponder` object (validated by its model), the model
        name's suffix ("beam_search:16"), the route's defaults. `sampling` holds the
        request's own temperature, top_p and max_tokens, given to the strategy where it
        takes them.
        """
        strategy, budget = self.route.strategy, self.route.budget
        if suffix:
            name, _, count = suffix.partition(":")
            strategy = name or strategy
            if count:
                if not count.isdigit() or int(count) < 1:
                    raise ConfigError(
                        f"the model name's budget must be a whole number N >= 1, not {count!r}"
                    )
                budget = int(count)
        given: Mapping[str, Any] = {}
        if options is not None:
            strategy = options.strategy or strategy
            budget = options.budget or budget
            given = options.params or {}
        cls = strategy_class(strategy)  # an unknown one is refused with the names to choose from
        if budget > limits.max_budget:
            raise ConfigError(
                f"budget {budget} is over this server's cap of {limits.max_budget}; "
                "ask for less (or start the server with a higher --max-budget)"
            )
        params = dict(self.route.params) if strategy == self.route.strategy else {}
        params.update({k: _text(v) for k, v in given.items()})
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        for name, value in sampling.items():
            if value is not None and name in fields and name not in given:
                params[name] = _text(value)
        unasked = "max_tokens" in fields and "max_tokens" not in params
        if unasked and int(fields["max_tokens"].default) > limits.max_tokens:
            params["max_tokens"] = str(limits.max_tokens)  # unasked: within the cap
        if strategy == "compute_optimal" and self.route.policy and "policy" not in params:
            params["policy"] = self.route.policy
        parsed = parse_params(strategy, params)
        if "max_tokens" in fields and parsed.max_tokens > limits.max_tokens:
            raise ConfigError(
                f"max_tokens {parsed.max_tokens} is over this server's cap of {limits.max_tokens}"
            )
        if self.verifier is None and needs_verifier(strategy, parsed):
            raise ConfigError(
                f"the {strategy} strategy needs a verifier, and model {self.route.name!r} is "
                "served without one: choose a strategy that needs none (majority, single, ...)"
            )
        return Selection(strategy, budget, params, parsed)

    def strategy(
        self, selection: Selection, seed: int | None, extra: Mapping[str, Any]
    ) -> BaseStrategy[Any]:
        """A strategy object for one request, over the shared models."""
        generator: Generator = self.generator
        if extra:
            generator = WithExtra(self.generator, SamplingParams(extra=extra).extra)
        verifier: Verifier | None = self.verifier
        return make_strategy(
            selection.strategy, generator, self.task, verifier, selection.parsed, seed=seed
        )


class WithExtra(GeneratorWrapper):
    """A generator whose every call carries a request's vendor sampling fields."""

    def __init__(self, inner: Generator, extra: tuple[tuple[str, str], ...]) -> None:
        super().__init__(inner)
        self.extra = extra

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        return await self.inner.generate(prompts, params.replace(extra=self.extra))

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        return await self.inner.stream(prompts, params.replace(extra=self.extra), on_text)


def prompt_format(spec: str, generator: Generator) -> PromptFormat:
    """A route's prompt format: auto, chat, raw, or a folder or file with ponder_prompt.json."""
    named = {"chat": MATH_CHAT, "raw": MATH_RAW}
    if spec == "auto":
        return default_format(generator)
    if spec in named:
        return named[spec]
    path = Path(spec)
    if path.is_dir():
        found = PromptFormat.of_folder(path)
        if found is None:
            raise ConfigError(f"{path} holds no {PROMPT_FORMAT_FILE}")
        return found
    if path.is_file():
        return PromptFormat.of_file(path)
    raise ConfigError(
        f"prompt format {spec!r} is none of auto, chat, raw, or a folder or file that exists"
    )


def _text(value: str | float | bool | None) -> str:
    """A JSON scalar as the text a strategy parameter is parsed from."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)
