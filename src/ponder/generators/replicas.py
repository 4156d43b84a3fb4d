"""Several replicas of one served model behind one generator or verifier.

`--model URL1,URL2` (and `--verifier URL1,URL2`) spread a run's requests over
replicas of the same model: each prompt (each solution, for a verifier) goes to
the replica with the fewest requests outstanding, ties to the one that has
served fewer. A replica whose request fails for a reason of its own (refused
connection, timeout, HTTP 5xx or 429) is taken out for `cooldown_s` seconds
and the request is retried on another; a request the replica refused as bad
(HTTP 400) is the caller's fault and fails at once. With every replica out,
the one out longest is tried again rather than failing a request untried.

Prompts keep the seeds they would have had in one call to one server, so a
run's samples do not depend on which replica drew them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ponder.budget.flops import ModelShape
from ponder.errors import BackendError, ConfigError, ModelLoadError
from ponder.generators.base import Generator, SamplingParams, seeded_prompts
from ponder.generators.http import UpstreamError
from ponder.types import Generation, Prompt
from ponder.verifiers.base import Solution, Verdict, Verifier

log = logging.getLogger(__name__)
Member = TypeVar("Member", Generator, Verifier)
Out = TypeVar("Out")
COOLDOWN_S = 30.0


def replica_urls(spec: str) -> list[str] | None:
    """The URLs of a comma-separated replica list, or None for a single model."""
    if "," not in spec:
        return None
    urls = [part.strip() for part in spec.split(",")]
    if not all(u.startswith(("http://", "https://")) for u in urls):
        raise ConfigError(f"replicas are OpenAI-compatible URLs, comma-separated, not {spec!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"a replica is listed twice in {spec!r}")
    return urls


def _replica_fault(exc: Exception) -> bool:
    """Whether a failure is the replica's own (another may succeed), not the request's."""
    cause = exc.__cause__
    if isinstance(exc, ModelLoadError):
        return True
    if isinstance(cause, UpstreamError):
        # No answer (refused, reset, timed out), a server error, or too busy.
        return cause.status is None or cause.status >= 500 or cause.status == 429
    return False


@dataclass
class _Replica(Generic[Member]):
    member: Member
    url: str
    outstanding: int = 0
    served: int = 0
    failed: int = 0
    out_until: float = 0.0


class Pool(Generic[Member]):
    """The replicas and the choice among them; what each has served and failed."""

    def __init__(self, members: Sequence[Member], urls: Sequence[str], cooldown_s: float) -> None:
        self.replicas = [_Replica(m, u) for m, u in zip(members, urls, strict=True)]
        self.cooldown_s = cooldown_s

    def _pick(self, tried: set[int]) -> int | None:
        now = time.monotonic()
        fresh = [i for i in range(len(self.replicas)) if i not in tried]
        if not fresh:
            return None
        up = [i for i in fresh if self.replicas[i].out_until <= now]
        if not up:  # every untried replica is out: try the one out longest
            return min(fresh, key=lambda i: self.replicas[i].out_until)
        return min(up, key=lambda i: (self.replicas[i].outstanding, self.replicas[i].served, i))

    async def call(self, send: Callable[[Member], Awaitable[Out]]) -> Out:
        """`send` to the best replica, and on to the others while replicas fail."""
        tried: set[int] = set()
        failures: list[str] = []
        while (index := self._pick(tried)) is not None:
            replica = self.replicas[index]
            tried.add(index)
            replica.outstanding += 1
            try:
                out = await send(replica.member)
            except (BackendError, ModelLoadError) as exc:
                if not _replica_fault(exc):
                    raise
                replica.failed += 1
                replica.out_until = time.monotonic() + self.cooldown_s
                failures.append(str(exc))
                log.warning(
                    "replica %s failed (%s); out for %g s", replica.url, exc, self.cooldown_s
                )
                continue
            finally:
                replica.outstanding -= 1
            replica.served += 1
            return out
        raise BackendError("every replica failed: " + "; ".join(failures))

    async def connect(self) -> str:
        """Connect every replica; those that do not answer start out. They must serve one model."""
        results = await asyncio.gather(
            *(r.member.connect() for r in self.replicas), return_exceptions=True
        )
        names, failures = set(), []
        for replica, result in zip(self.replicas, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception) or not _replica_fault(result):
                    raise result
                replica.out_until = time.monotonic() + self.cooldown_s
                failures.append(str(result))
                log.warning("replica %s is out: %s", replica.url, result)
            else:
                names.add(result)
        if not names:
            raise ModelLoadError("no replica answers: " + "; ".join(failures))
        if len(names) > 1:
            raise ConfigError(f"the replicas serve different models: {', '.join(sorted(names))}")
        return names.pop()

    async def aclose(self) -> None:
        await asyncio.gather(*(r.member.aclose() for r in self.replicas))


class _Replicated(Generic[Member]):
    """What a replicated generator and verifier share: the pool, and the first replica's
    name and shape (they serve one model)."""

    def __init__(
        self, members: Sequence[Member], urls: Sequence[str], cooldown_s: float = COOLDOWN_S
    ) -> None:
        self.pool: Pool[Member] = Pool(members, urls, cooldown_s)
        self._first = members[0]

    @property
    def name(self) -> str:
        return self._first.name

    @property
    def shape(self) -> ModelShape | None:
        return self._first.shape

    @property
    def folder(self) -> Path | None:
        return None

    async def connect(self) -> str:
        return await self.pool.connect()

    async def aclose(self) -> None:
        await self.pool.aclose()


class ReplicatedGenerator(_Replicated[Generator]):
    """A `Generator` over replicas of one served model, each prompt to one replica."""

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        return await self.pool.call(lambda g: g.count_prompt_tokens(prompts))

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        seeded = seeded_prompts(prompts, params.seed)
        return list(
            await asyncio.gather(
                *(self.pool.call(lambda g, p=p: _one(g.generate([p], params))) for p in seeded)
            )
        )

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        seeded = seeded_prompts(prompts, params.seed)

        async def one(i: int, prompt: Prompt) -> Generation:
            handed = False

            def forward(j: int, piece: str) -> None:
                nonlocal handed
                handed = True
                on_text(i * params.n + j, piece)

            async def send(g: Generator) -> Generation:
                try:
                    return await _one(g.stream([prompt], params, forward))
                except (BackendError, ModelLoadError) as exc:
                    if handed:  # text already handed on cannot be drawn again elsewhere
                        raise BackendError(f"a replica failed mid-stream: {exc}") from None
                    raise

            return await self.pool.call(send)

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(seeded))))


class ReplicatedVerifier(_Replicated[Verifier]):
    """A `Verifier` over replicas of one served model, each solution to one replica."""

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        return list(
            await asyncio.gather(
                *(self.pool.call(lambda v, s=s: _one(v.score([s]))) for s in solutions)
            )
        )

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        return await self.pool.call(lambda v: v.count_tokens(solutions))


async def _one(call: Awaitable[list[Out]]) -> Out:
    [out] = await call
    return out
