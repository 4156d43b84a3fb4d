"""One backend call for many problems: merging the calls that strategies make concurrently.

A strategy is written for one problem: each round it makes one generator call
(its whole frontier) and one verifier call. Run over many problems at once,
the problems' coroutines reach their calls in the same turn of the event loop,
and `CoalescingGenerator` and `CoalescingVerifier` send all of those calls as
one call to the backend, then hand each caller its own part of the answer.
A local model then decodes every problem's frontier in one batch, and a
server receives them together.

Merging must not change what a problem samples, so each prompt of a seeded
call is given its own seed, derived as the backend would have derived it had
the call gone alone (`Prompt.seed`). Calls with different sampling parameters
(other than the seed) are not merged. When a merged call fails, its calls are
retried one by one, so that one problem's bad input fails that problem only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from ponder.budget.flops import ModelShape
from ponder.generators.base import Generator, GeneratorWrapper, SamplingParams, seeded_prompts
from ponder.types import Generation, Prompt
from ponder.verifiers.base import Solution, Verdict, Verifier

In = TypeVar("In")
Out = TypeVar("Out")


class _Coalescer(Generic[In, Out]):
    """Collects the calls made in one turn of the event loop and runs them as one per key.

    With `in_flight` set, calls made while that many merged calls run wait, and go
    together when one ends: for a backend that runs one call at a time (a local model),
    the callers that arrive during a call share the next one instead of queueing one by one.
    """

    def __init__(
        self,
        call: Callable[[Hashable, list[In]], Awaitable[list[Out]]],
        in_flight: int | None = None,
    ) -> None:
        self._call = call
        self._in_flight = in_flight
        self._pending: dict[Hashable, list[tuple[list[In], asyncio.Future[list[Out]]]]] = {}
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, items: list[In]) -> list[Out]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Out]] = loop.create_future()
        self._pending.setdefault(key, []).append((items, future))
        if not self._scheduled:
            # Callers woken by the same finished call are already queued, so the flush
            # runs after all of them have made their next call.
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        if self._in_flight is not None and len(self._running) >= self._in_flight:
            return  # `_ended` flushes when a running call ends
        pending, self._pending = self._pending, {}
        for key, waiting in pending.items():
            entries = [(items, future) for items, future in waiting if not future.done()]
            if not entries:  # every caller was cancelled while it waited
                continue
            task = asyncio.ensure_future(self._run(key, entries))
            self._running.add(task)
            task.add_done_callback(self._ended)
            futures = [future for _, future in entries]

            def abandon(
                _: object,
                task: asyncio.Task[None] = task,
                futures: list[asyncio.Future[list[Out]]] = futures,
            ) -> None:
                # No caller is left to read the answer: make no more calls for them.
                if all(f.cancelled() for f in futures):
                    task.cancel()

            for future in futures:
                future.add_done_callback(abandon)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._pending and not self._scheduled:
            # After the callers this call woke (queued already) have made their next calls.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _run(
        self, key: Hashable, entries: list[tuple[list[In], asyncio.Future[list[Out]]]]
    ) -> None:
        try:
            results = await self._call(key, [item for items, _ in entries for item in items])
        except Exception as exc:
            if len(entries) == 1:
                _settle(entries[0][1], exception=exc)
                return
            for items, future in entries:  # isolate the caller that failed
                if future.done():
                    continue
                try:
                    _settle(future, result=await self._call(key, items))
                except Exception as single:
                    _settle(future, exception=single)
            return
        offset = 0
        for items, future in entries:
            _settle(future, result=results[offset : offset + len(items)])
            offset += len(items)


def _settle(
    future: asyncio.Future[list[Out]],
    *,
    result: list[Out] | None = None,
    exception: BaseException | None = None,
) -> None:
    if future.done():  # the caller was cancelled
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result or [])


class CoalescingGenerator(GeneratorWrapper):
    """A `Generator` that merges concurrent calls into one call of `inner`.

    `in_flight`: merged calls run at once (None: no limit; see `_Coalescer`);
    `on_call(prompts)` is told of each call made to `inner`. `merge=False` passes
    each call on as it comes (counted all the same): for a server, which batches
    concurrent requests itself, so that a call returns when its own answer does,
    not when the slowest of those merged with it does.
    """

    def __init__(
        self,
        inner: Generator,
        *,
        in_flight: int | None = None,
        on_call: Callable[[int], None] | None = None,
        merge: bool = True,
    ) -> None:
        super().__init__(inner)
        self._on_call = on_call
        self._merge = merge
        self._coalescer: _Coalescer[Prompt, Generation] = _Coalescer(self._generate, in_flight)

    @classmethod
    def over(cls, inner: Generator) -> Generator:
        """`inner` with concurrent calls merged: `inner` itself where it is a coalescing
        generator already (a server's shared model, `ponder.serve.upstream`)."""
        return inner if isinstance(inner, CoalescingGenerator) else cls(inner)

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        if not prompts:
            return []
        if not self._merge:
            return await self._generate(params, list(prompts))
        prompts = seeded_prompts(prompts, params.seed)
        return await self._coalescer.submit(params.replace(seed=None), prompts)

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        """Not merged: samples whose text goes to their caller as it comes."""
        if self._on_call is not None:
            self._on_call(len(prompts))
        return await self.inner.stream(prompts, params, on_text)

    async def _generate(self, params: Hashable, prompts: list[Prompt]) -> list[Generation]:
        assert isinstance(params, SamplingParams)
        if self._on_call is not None:
            self._on_call(len(prompts))
        return await self.inner.generate(prompts, params)


class CoalescingVerifier:
    """A `Verifier` that merges concurrent calls into one call of `inner` (the arguments as
    `CoalescingGenerator`'s)."""

    def __init__(
        self,
        inner: Verifier,
        *,
        in_flight: int | None = None,
        on_call: Callable[[int], None] | None = None,
        merge: bool = True,
    ) -> None:
        self.inner = inner
        self._on_call = on_call
        self._merge = merge
        self._coalescer: _Coalescer[Solution, Verdict] = _Coalescer(self._score, in_flight)

    @classmethod
    def over(cls, inner: Verifier) -> Verifier:
        """`inner` with concurrent calls merged (as `CoalescingGenerator.over`)."""
        return inner if isinstance(inner, CoalescingVerifier) else cls(inner)

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

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        return await self.inner.count_tokens(solutions)

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        if not solutions:
            return []
        if not self._merge:
            return await self._score(None, list(solutions))
        return await self._coalescer.submit(None, list(solutions))

    async def _score(self, _: Hashable, solutions: list[Solution]) -> list[Verdict]:
        if self._on_call is not None:
            self._on_call(len(solutions))
        return await self.inner.score(solutions)

    async def aclose(self) -> None:
        await self.inner.aclose()
