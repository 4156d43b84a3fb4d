"""JSON over HTTP to OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama, OpenAI).

ponder's served generator and PRM, and so every request `ponder serve` relays,
go through `APIClient`. It is not the official `openai` client because of what
that costs per request: against an instant local server, on the 2-core machine
this project is built on, a completion request took 1.6 ms of CPU through the
`openai` client (its request building, its httpx transport, its response
models), 1.1 ms through it with its aiohttp transport, and 0.17 ms as plain
JSON over aiohttp (`benchmarks/serve.py` measures what the server adds). ponder
reads a handful of fields from each answer, so plain dicts are enough; the
tests check ponder's own server with the `openai` client's types.

Kept from the `openai` client: its retry policy (exponential backoff from 0.5 s,
capped at 8 s, with jitter, honouring `Retry-After` up to 60 s; on connection
errors, timeouts, 408, 409, 429 and 5xx, never on other 4xx; a stream is
retried only until its answer starts), its timeout (for connecting and for each
read, not for the whole answer, so a long stream is not cut) and its error
message (the server's `error.message`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp

log = logging.getLogger(__name__)
RETRIED = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 60.0
T = TypeVar("T")


class UpstreamError(Exception):
    """A request an OpenAI-compatible server did not answer well.

    `status`: the HTTP status it answered with, or None when it gave no answer (the
    connection was refused or dropped, or the request timed out: `timed_out`);
    `retry_after`: the wait in seconds it asked for, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        timed_out: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.timed_out = timed_out
        self.retry_after = retry_after

    @property
    def dropped(self) -> bool:
        """The server took no request or closed the connection without an answer."""
        return self.status is None and not self.timed_out

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRIED or self.status >= 500

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class APIClient:
    """Requests to one server's API root (e.g. "http://127.0.0.1:8000/v1").

    The connection pool belongs to the event loop that first uses it (ponder runs
    on one loop; a call from another loop gets a pool of its own).
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 120.0, max_retries: int = 3
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": _user_agent(),
        }
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, path: str) -> Any:
        """The JSON answer to GET `path`."""
        return await self._retrying(path, lambda: self._json("GET", path, None))

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON answer to POST `body` to `path`."""
        data = json.dumps(body, ensure_ascii=False)
        return await self._retrying(path, lambda: self._json("POST", path, data))

    async def stream(self, path: str, body: Mapping[str, Any]) -> AsyncIterator[Any]:
        """The server-sent events of POST `body` to `path`, each one's JSON data, to [DONE].

        Retried until an answer begins; an error event in the stream raises."""
        data = json.dumps(body, ensure_ascii=False)
        response = await self._retrying(path, lambda: self._request("POST", path, data))
        async with response:
            event: list[bytes] = []
            try:
                async for raw in response.content:
                    line = raw.rstrip(b"\r\n")
                    if line.startswith(b"data:"):
                        event.append(line[5:].lstrip(b" "))
                    elif not line and event:  # a blank line ends an event
                        payload, event = b"\n".join(event), []
                        if payload == b"[DONE]":
                            return
                        yield _event(payload)
            except TimeoutError as exc:
                raise UpstreamError("Request timed out.", timed_out=True) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(f"Connection error: {_reason(exc)}") from exc
            if event and (payload := b"\n".join(event)) != b"[DONE]":
                yield _event(payload)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its loop has ended
                await self._session.close()
        self._session = None

    def __del__(self) -> None:
        # Dropped unclosed (a script's generator at exit): its sockets are closed here,
        # quietly, where aiohttp would log an error for the session and its connector.
        session = self._session
        if session is not None and not session.closed:
            connector = session.connector
            session.detach()
            if connector is not None:
                with contextlib.suppress(Exception):
                    connector._close()  # the synchronous part of `await connector.close()`

    async def _retrying(self, path: str, once: Callable[[], Awaitable[T]]) -> T:
        for attempt in itertools.count():
            try:
                return await once()
            except UpstreamError as failure:
                if not failure.retryable or attempt >= self.max_retries:
                    raise
                wait = _backoff(attempt, failure.retry_after)
                log.info(  # as the openai client does: the caller sees the last failure
                    "%s/%s: %s; retry %d of %d in %.2f s",
                    self.base_url,
                    path,
                    failure.describe(),
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, data: str | None) -> Any:
        """One request's JSON answer (no retry)."""
        async with await self._request(method, path, data) as response:
            body = await _read(response)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise UpstreamError(
                f"the server's answer is not JSON: {body[:200]!r}", status=response.status
            ) from exc

    async def _request(self, method: str, path: str, data: str | None) -> aiohttp.ClientResponse:
        """One request's response with a good status, its body unread (no retry)."""
        try:
            response = await self._open().request(method, f"{self.base_url}/{path}", data=data)
        except TimeoutError as exc:
            raise UpstreamError("Request timed out.", timed_out=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"Connection error: {_reason(exc)}") from exc
        if response.status < 400:
            return response
        async with response:
            body = await _read(response)
        raise UpstreamError(
            _message(body, response.reason),
            status=response.status,
            retry_after=_retry_after(response.headers),
        )

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # No limit on connections: callers bound their own concurrency.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                headers=self._headers,
                timeout=self._timeout,
            )
            self._loop = loop
        return self._session


def _user_agent() -> str:
    try:
        return f"ponder/{importlib.metadata.version('ponder')}"
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "ponder"


async def _read(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except TimeoutError as exc:
        raise UpstreamError("Request timed out.", timed_out=True) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"Connection error: {_reason(exc)}") from exc


def _event(payload: bytes) -> Any:
    """An event's data; an error event (vLLM sends one when a stream fails) raises."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        message = f"the server sent an event that is not JSON: {payload[:200]!r}"
        raise UpstreamError(message) from exc
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        code = error.get("code")
        status = code if isinstance(code, int) and code >= 400 else 500
        raise UpstreamError(str(error.get("message") or error), status=status)
    return data


def _message(body: bytes, reason: str | None) -> str:
    """What an error answer says: its `error.message` (OpenAI, vLLM), `message` or `detail`."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:500] or reason or "error"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return str(data)[:500]


def _reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error.strerror or str(exc.os_error)
        return f"cannot connect to {exc.host}:{exc.port} ({cause})"
    return str(exc) or type(exc).__name__


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for (`retry-after-ms`, `retry-after` in seconds), if sane."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        with contextlib.suppress(TypeError, ValueError):
            seconds = float(headers.get(name)) * scale  # type: ignore[arg-type]
            if 0 < seconds <= MAX_RETRY_AFTER_S:
                return seconds
    return None


def _backoff(attempt: int, asked: float | None) -> float:
    """Seconds before retry `attempt + 1`: what the server asked for, else exponential from
    0.5 s, at most 8 s, less up to a quarter at random."""
    if asked is not None:
        return asked
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())
