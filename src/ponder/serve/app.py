"""The OpenAI-compatible server: each request is solved by a strategy over a route's models.

`create_app(config)` builds a FastAPI app; `ponder serve` runs it with uvicorn.
A request names a route and, optionally, a strategy and budget in its model
name ("arith@beam_search:16") or in its `ponder` object; the answer is the
chosen solution, `usage` counts every token the policy read and wrote for it,
and `ponder` says what was spent and found. Streamed, a request gets its first
chunk at once, a `reasoning_content` delta as each round of the search ends (and
the tokens of `first_finish`'s racing samples as they are generated), then the
answer. See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import ponder.serve.protocol as protocol
from ponder import __version__
from ponder.errors import BackendError, ConfigError, ModelLoadError, PonderError
from ponder.generators.http import UpstreamError
from ponder.serve.config import ServeConfig
from ponder.serve.metrics import Metrics
from ponder.serve.upstream import Selection, Upstream
from ponder.strategies.base import Progress
from ponder.tasks import Problem
from ponder.types import Result

log = logging.getLogger("ponder.serve")

# A request's problem id: the same seed then samples the same, whatever else is running.
PROBLEM_ID = "request"


class HTTPProblem(HTTPException):
    """A request the server answers with an error status and an OpenAI-style error body.

    An `HTTPException`, so that FastAPI lets it through while it reads a body."""

    def __init__(
        self, status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message, dict(headers or {}))
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return protocol.error_body(self.detail, self.kind, self.status_code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


class Admission:
    """At most `running` requests solved at once and `queued` waiting; past that, 429."""

    def __init__(self, running: int, queued: int) -> None:
        self._slots = asyncio.Semaphore(running)
        self._queued = queued
        self.waiting = 0
        self.active = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self._queued:
            raise HTTPProblem(
                429,
                "the server is busy: every slot and queue place is taken; retry shortly",
                "rate_limit_error",
                {"Retry-After": "1"},
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()


class Guard:
    """The API key (401 without it) and the body limit (413 over it, before and while the
    body is read), checked before anything else runs. `/health` needs no key."""

    OPEN = frozenset({"/health"})

    def __init__(
        self, app: ASGIApp, api_key: str | None, limit: int, on_reject: Callable[[str], None]
    ) -> None:
        self.app, self.limit, self.on_reject = app, limit, on_reject
        self.expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        guarded = self.expected is not None and scope["path"] not in self.OPEN
        if guarded and not hmac.compare_digest(
            headers.get(b"authorization", b""), self.expected or b""
        ):
            self.on_reject("auth")
            message = "missing or wrong API key: send the header 'Authorization: Bearer KEY'"
            await self._refuse(send, HTTPProblem(401, message, "authentication_error"))
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            self.on_reject("body")
            await self._refuse(send, HTTPProblem(413, self._message(), "invalid_request_error"))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPProblem(413, self._message(), "invalid_request_error")
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request body is over this server's limit of {self.limit} bytes"

    async def _refuse(self, send: Send, problem: HTTPProblem) -> None:
        await problem.response()({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    config: ServeConfig,
    upstreams: Mapping[str, Upstream] | None = None,
    *,
    freeze_gc: bool = False,
) -> FastAPI:
    """The server's app. `upstreams` (by route name) are loaded from the config when not given.

    `freeze_gc` (what `ponder serve` asks for; an app in a process that does other work
    should not): once started, everything made so far (modules, models, the app) is put
    out of the garbage collector's reach with `gc.freeze()`, as it lives as long as the
    server. Then a full collection scans only what requests left behind: measured on a
    relay route, ~340,000 start-up objects made each full collection a pause of
    ~150 ms, every ~20 s under load, straight into the latency tail."""
    state = _State(config, dict(upstreams) if upstreams is not None else None)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="ponder",
        version=__version__,
        summary="Test-time scaling behind the OpenAI API",
        lifespan=lifespan,
    )

    @app.exception_handler(HTTPException)
    async def _problem(_: Request, exc: HTTPException) -> JSONResponse:
        if not isinstance(exc, HTTPProblem):
            # FastAPI's and Starlette's own (an unreadable body, an unknown path or method),
            # in the OpenAI error shape every other error has.
            kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
            exc = HTTPProblem(exc.status_code, str(exc.detail), kind, exc.headers)
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return HTTPProblem(400, _validation_message(exc), "invalid_request_error").response()

    @app.get("/health", response_model=protocol.Health)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "routes": list(state.upstreams), "active": state.admission.active}

    @app.get("/metrics", response_class=PlainTextResponse, responses={401: protocol.ERRORS[401]})
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type=state.metrics.content_type)

    @app.get("/v1/models", response_model=protocol.ModelList, responses={401: protocol.ERRORS[401]})
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": state.started, "owned_by": "ponder"}
                for name in state.upstreams
            ],
        }

    @app.post(
        "/v1/chat/completions",
        response_model=None,
        responses=protocol.streamed(protocol.ChatCompletionResponse),
    )
    async def chat(body: protocol.ChatCompletionRequest, request: Request) -> Response:
        return await state.complete(body, request, chat=True)

    @app.post(
        "/v1/completions",
        response_model=None,
        responses=protocol.streamed(protocol.CompletionResponse),
    )
    async def completions(body: protocol.CompletionRequest, request: Request) -> Response:
        return await state.complete(body, request, chat=False)

    app.add_middleware(
        Guard,
        api_key=config.api_key,
        limit=config.limits.max_body_bytes,
        on_reject=state.metrics.rejected,
    )
    return app


class _State:
    """The server's long-lived parts: routes, admission, metrics."""

    def __init__(self, config: ServeConfig, upstreams: dict[str, Upstream] | None) -> None:
        self.config = config
        self.limits = config.limits
        self.upstreams: dict[str, Upstream] = upstreams or {}
        self._owned = upstreams is None
        self._models: list[Any] = []
        self.admission = Admission(self.limits.max_concurrent, self.limits.max_queued)
        self.metrics = Metrics(lambda: (self.admission.active, self.admission.waiting))
        self.started = int(time.time())
        if self._owned:  # loaded now, so a bad folder or format fails before serving starts
            loaded: dict[tuple[Any, ...], Any] = {}
            self.upstreams = {
                r.name: Upstream(r, self.metrics.upstream_call, loaded) for r in config.routes
            }
            self._models = list(loaded.values())

    async def start(self) -> None:
        for name, upstream in self.upstreams.items():
            try:
                await upstream.connect()
            except PonderError as exc:
                if not upstream.is_served:
                    raise
                # A server may come up later: its requests get 503 until it does.
                log.warning("model %r: its upstream does not answer yet: %s", name, exc)

    async def stop(self) -> None:
        for model in self._models:  # each once, however many routes share it
            await model.aclose()

    def route(self, model: str) -> tuple[Upstream, str | None]:
        name, _, suffix = model.partition("@")
        upstream = self.upstreams.get(name)
        if upstream is None:
            self.metrics.rejected("model")
            raise HTTPProblem(
                404,
                f"no model {name!r} here; this server serves {', '.join(self.upstreams)} "
                "(add @strategy:budget to choose how, e.g. "
                f"{next(iter(self.upstreams))}@beam_search:8)",
                "invalid_request_error",
            )
        return upstream, suffix or None

    async def complete(self, body: protocol._Request, request: Request, *, chat: bool) -> Response:
        began = time.perf_counter()
        upstream, suffix = self.route(body.model)
        try:
            body.refuse_unsupported()
            question = body.question()  # type: ignore[attr-defined]
            selection = upstream.select(suffix, body.ponder, body.sampling(), self.limits)
            vendor = body.vendor_fields()
            extra = vendor if upstream.is_served else {}
            ignored = [] if upstream.is_served else list(vendor)
            strategy = upstream.strategy(selection, body.seed, extra)
        except ConfigError as exc:
            self.metrics.rejected("invalid")
            raise HTTPProblem(400, str(exc), "invalid_request_error") from None
        job = _Job(self, upstream, selection, strategy, question, body, chat, ignored, began)
        if body.stream:
            return await job.stream()
        async with self.admission.slot():
            result = await job.solve_watching(request)
        return JSONResponse(job.response(result))


class _Job:
    """One request being solved."""

    def __init__(
        self,
        state: _State,
        upstream: Upstream,
        selection: Selection,
        strategy: Any,
        question: str,
        body: protocol._Request,
        chat: bool,
        ignored: list[str],
        began: float,
    ) -> None:
        self.state, self.upstream, self.selection = state, upstream, selection
        self.strategy, self.question, self.body, self.chat = strategy, question, body, chat
        self.ignored, self.began = ignored, began
        self.id = protocol.new_id("chatcmpl" if chat else "cmpl")
        self.created = int(time.time())
        self.labels = (upstream.route.name, selection.strategy)

    async def solve(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_sample: Callable[[int, str], None] | None = None,
    ) -> Result:
        """The strategy's run, under the server's deadline; upstream faults as HTTP errors."""
        problem = Problem(id=PROBLEM_ID, question=self.question)
        try:
            async with asyncio.timeout(self.state.limits.deadline_s):
                [result] = await self.strategy.arun_many(
                    [problem],
                    self.selection.budget,
                    on_progress=None if on_progress is None else lambda _, p: on_progress(p),
                    on_text=None if on_text is None else lambda _, t: on_text(t),
                    on_sample=None if on_sample is None else lambda _, i, t: on_sample(i, t),
                )
        except (TimeoutError, PonderError) as exc:
            problem = self._problem(exc)
            self.state.metrics.finished(*self.labels, problem.status_code)
            raise problem from None
        self.state.metrics.finished(*self.labels, 200, result, time.perf_counter() - self.began)
        return result

    def _problem(self, exc: Exception) -> HTTPProblem:
        """What a failed run answers: the deadline, an upstream fault, a bad request."""
        if isinstance(exc, TimeoutError):
            deadline = self.state.limits.deadline_s
            message = f"the request ran past this server's deadline of {deadline:g} s"
            return HTTPProblem(504, f"{message}; ask for a smaller budget", "timeout_error")
        if isinstance(exc, BackendError | ModelLoadError):
            where = f"upstream of model {self.upstream.route.name!r}: {exc}"
            return HTTPProblem(_upstream_status(exc), where, "upstream_error")
        if isinstance(exc, ConfigError):
            return HTTPProblem(400, str(exc), "invalid_request_error")
        return HTTPProblem(500, str(exc), "server_error")

    async def solve_watching(self, request: Request) -> Result:
        """`solve`, cancelled when the client goes away (no model call starts after that).

        It runs in the request's own task, which a watcher cancels on the disconnect (one
        task a request, not two and an `asyncio.wait`: this is every request's path)."""
        solving = asyncio.current_task()
        assert solving is not None
        gone = ended = False

        def went_away(watcher: asyncio.Future[None]) -> None:
            nonlocal gone
            if not ended and not watcher.cancelled() and watcher.exception() is None:
                gone = True
                solving.cancel()

        watching = asyncio.ensure_future(_disconnected(request))
        watching.add_done_callback(went_away)
        try:
            return await self.solve()
        except asyncio.CancelledError:
            if not gone:  # the server's own cancellation (it is stopping): not the client's
                raise
            solving.uncancel()
            self.state.metrics.finished(*self.labels, 499)
            raise HTTPProblem(499, "the client went away", "cancelled") from None
        finally:
            ended = True  # a disconnect seen from now on cancels nothing
            watching.cancel()

    def texts(self, result: Result) -> list[tuple[str, str]]:
        stops = self.body.stops()
        chosen = protocol.ranked(self.upstream.task, result)[: self.body.n]
        if not chosen:
            return [("", "stop")]
        out = []
        for candidate in chosen:
            text, hit = protocol.cut_at_stop(candidate.text, stops)
            out.append((text, protocol.finish_reason(candidate, hit)))
        return out

    def ponder(self, result: Result) -> dict[str, Any]:
        asked = self.body.ponder is not None and self.body.ponder.return_candidates
        return protocol.ponder_object(
            self.selection,
            result,
            wall=time.perf_counter() - self.began,
            candidates=asked,
            ignored=self.ignored,
        )

    def response(self, result: Result) -> dict[str, Any]:
        return protocol.completion(
            self.id,
            self.body.model,
            self.texts(result),
            result.cost,
            self.ponder(result),
            chat=self.chat,
        )

    async def stream(self) -> Response:
        held = contextlib.AsyncExitStack()
        # Taken before the response starts, so that a 429 is still a plain response; given
        # back when the response ends, however it ends (also when the client leaves before
        # its body begins, when the body's own `finally` would never run).
        await held.enter_async_context(self.state.admission.slot())
        events = self._events()

        async def body() -> AsyncGenerator[str]:
            try:
                async for event in events:
                    yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                await events.aclose()

        return _HeldStream(held, body())

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        def chunk(**values: Any) -> dict[str, Any]:
            return protocol.chunk(self.id, self.body.model, self.created, chat=self.chat, **values)

        news: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        task = self.upstream.task
        # Text streamed as it is generated cannot be taken back: not when the request's
        # own stop strings may cut it, nor when n > 1 candidates are ranked at the end.
        live = not self.body.stops() and self.body.n == 1
        solving = asyncio.ensure_future(
            self.solve(
                lambda p: news.put_nowait(("progress", protocol.progress_object(task, p))),
                (lambda t: news.put_nowait(("text", t))) if live else None,
                lambda i, t: news.put_nowait(("sample", (i, t))),
            )
        )
        solving.add_done_callback(lambda _: news.put_nowait(None))
        streamed = ""
        try:
            yield chunk(delta={"role": "assistant", "content": ""})
            while (item := await news.get()) is not None:
                kind, value = item
                if kind == "text":
                    streamed += value
                    yield chunk(delta={"content": value})
                elif kind == "sample":  # a racing sample's tokens, as its model writes them
                    sample, piece = value
                    if self.chat:
                        extra = {"ponder": {"sample": sample}}
                        yield chunk(delta={"reasoning_content": piece}, extra=extra)
                    else:
                        extra = {"ponder": {"sample": sample, "text": piece}}
                        yield chunk(delta={"content": ""}, extra=extra)
                elif self.chat:
                    text = protocol.progress_text(value)
                    yield chunk(delta={"reasoning_content": text}, extra={"ponder": value})
                else:
                    yield chunk(delta={"content": ""}, extra={"ponder": value})
            try:
                result = solving.result()
            except HTTPProblem as exc:
                yield exc.body()
                return
            for index, (text, reason) in enumerate(self.texts(result)):
                if streamed and index == 0 and text.startswith(streamed):
                    text = text[len(streamed) :]  # the rest of what was streamed, if any
                if text:
                    yield chunk(delta={"content": text}, index=index)
                done = {"ponder": self.ponder(result)}
                yield chunk(delta={}, finish=reason, index=index, extra=done)
            options = self.body.stream_options
            if options is not None and options.include_usage:
                yield chunk(usage_of=result.cost)
        finally:
            if not solving.done():
                solving.cancel()
                with contextlib.suppress(asyncio.CancelledError, HTTPProblem):
                    await solving
                self.state.metrics.finished(*self.labels, 499)


class _HeldStream(StreamingResponse):
    """An event stream that gives back what it holds (the admission slot) when the
    response ends, however it ends."""

    def __init__(self, held: contextlib.AsyncExitStack, body: AsyncGenerator[str]) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self._held, self._body = held, body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with self._held:
            try:
                await super().__call__(scope, receive, send)
            finally:  # the search stops before its slot is free (not when the body is collected)
                await self._body.aclose()


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away (the body is read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _upstream_status(exc: Exception) -> int:
    """400 for a request the upstream found invalid (a vendor field it refused), 502 for an
    upstream that failed otherwise, 503 for one out of reach, 504 for one that timed out."""
    cause = exc.__cause__
    if isinstance(exc, ModelLoadError):
        return 503
    if isinstance(cause, UpstreamError):
        if cause.timed_out:
            return 504
        if cause.status is None:
            return 503
        if cause.status in (400, 422):
            return 400
    return 502


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}"
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)
