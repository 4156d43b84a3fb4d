"""`ponder serve`, as a real server process, called by the official `openai` client (sync,
async, streaming), by raw SSE over httpx and by curl: answers, usage, strategy selection,
streaming progress, errors, auth, limits and client disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

EASY = "Start with 12. Add 7."
HARD = "Start with 37. Add 48. Multiply by 6. Subtract 25. Multiply by 7. Add 919. Subtract 88."
KEY = "sesame-test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(
    tmp: Path, *flags: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    port = port or _free_port()
    log = (tmp / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ponder.cli", "serve", "--port", str(port), *flags],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"ponder serve exited: {(tmp / f'serve-{port}.log').read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("ponder serve did not come up in 180 s")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _server(tmp_path_factory.mktemp("serve"), "--max-budget", "16") as base:
        yield base


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with a key (from the environment) and tight limits: one request at a time,
    none queued, 2 s deadline, 4 KB bodies."""
    flags = ["--max-concurrent", "1", "--max-queued", "0", "--deadline-s", "2"]
    flags += ["--max-body-bytes", "4096", "--max-budget", "64"]
    with _server(tmp_path_factory.mktemp("guarded"), *flags, env={"PONDER_API_KEY": KEY}) as base:
        yield base


def client(base: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)


def metric(base: str, name: str, key: str | None = None, **labels: str) -> float:
    """The sum of a Prometheus counter's samples whose labels include `labels`."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    text = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def ask(text: str = EASY) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_models_health_and_a_compute_optimal_answer(server):
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["arith"]
    assert httpx.get(f"{server}/health").json()["status"] == "ok"

    response = client(server).chat.completions.create(model="arith", messages=ask())
    assert response.choices[0].message.role == "assistant"
    assert response.choices[0].message.content.strip().endswith("The answer is 19.")
    extra = response.model_extra["ponder"]
    assert extra["strategy"] == "compute_optimal" and extra["answer"] == "19"
    assert extra["details"]["pilot"] == 4
    usage = response.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens > 0 and extra["verifier_tokens"] > 0


def test_usage_counts_every_token_the_policy_generated(server):
    response = client(server).chat.completions.create(
        model="arith@majority:4",
        messages=ask(HARD),
        seed=1,
        extra_body={"ponder": {"return_candidates": True}},
    )
    candidates = response.model_extra["ponder"]["candidates"]
    assert len(candidates) == 4
    assert response.usage.completion_tokens == sum(c["tokens"] for c in candidates)
    assert response.model_extra["ponder"]["samples"] == 4


def test_the_model_name_and_the_ponder_object_select_the_same_run(server):
    by_name = client(server).chat.completions.create(
        model="arith@weighted_majority:4", messages=ask(HARD), seed=7
    )
    by_body = client(server).chat.completions.create(
        model="arith",
        messages=ask(HARD),
        seed=7,
        extra_body={"ponder": {"strategy": "weighted_majority", "budget": 4}},
    )
    assert by_name.choices[0].message.content == by_body.choices[0].message.content
    assert by_name.usage == by_body.usage
    assert by_name.model_extra["ponder"]["strategy"] == "weighted_majority"


def test_request_sampling_fields_reach_the_strategy(server):
    response = client(server).chat.completions.create(
        model="arith@single", messages=ask(HARD), max_tokens=5, temperature=0
    )
    assert response.usage.completion_tokens == 5
    assert response.choices[0].finish_reason == "length"
    assert response.model_extra["ponder"]["params"] == {"max_tokens": "5", "temperature": "0.0"}


def test_n_returns_the_best_distinct_candidates_chosen_first(server):
    response = client(server).chat.completions.create(
        model="arith@majority:8",
        messages=ask(HARD),
        n=3,
        seed=2,
        extra_body={"ponder": {"return_candidates": True}},
    )
    texts = [c.message.content for c in response.choices]
    assert len(texts) == len(set(texts)) >= 2
    assert texts[0].strip().endswith(f"The answer is {response.model_extra['ponder']['answer']}.")


def test_vendor_fields_a_local_model_cannot_take_are_listed_as_ignored(server):
    response = client(server).chat.completions.create(
        model="arith@single", messages=ask(), extra_body={"top_k": 5, "user": "me"}
    )
    assert response.model_extra["ponder"]["ignored_fields"] == ["top_k"]


def test_text_completions_and_curl(server):
    response = client(server).completions.create(model="arith@single", prompt=EASY)
    assert response.choices[0].text.strip().endswith("The answer is 19.")
    body = json.dumps({"model": "arith@majority:2", "prompt": EASY})
    out = subprocess.run(
        ["curl", "-sS", "-H", "Content-Type: application/json", "-d", body,
         f"{server}/v1/completions"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    assert answer["object"] == "text_completion" and answer["ponder"]["answer"] == "19"


def test_the_async_client_streams(server):
    async def streamed() -> str:
        async with openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0) as c:
            stream = await c.chat.completions.create(
                model="arith@majority:4", messages=ask(), stream=True
            )
            pieces = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
        return "".join(p or "" for p in pieces)

    assert asyncio.run(streamed()).strip().endswith("The answer is 19.")


def six_at_once(base: str) -> tuple[list[str], float]:
    """The answers of six `majority:4` requests sent at once, and the generator calls they made."""

    async def many() -> list[str]:
        async_client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        async with async_client:
            responses = await asyncio.gather(
                *(
                    async_client.chat.completions.create(
                        model="arith@majority:4", messages=ask(HARD), seed=s
                    )
                    for s in range(6)
                )
            )
        return [r.model_extra["ponder"]["answer"] for r in responses]

    before = metric(base, "ponder_upstream_calls_total", role="generator")
    answers = asyncio.run(many())
    return answers, metric(base, "ponder_upstream_calls_total", role="generator") - before


def test_concurrent_requests_share_upstream_calls(server):
    answers, calls = six_at_once(server)
    assert len(answers) == 6
    assert calls < 6, "each request went to the model on its own"


def test_streaming_with_the_openai_client_shows_each_round(server):
    began = time.perf_counter()
    stream = client(server).chat.completions.create(
        model="arith@beam_search:4",
        messages=ask(HARD),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    first = chunks[0]
    assert first.choices[0].delta.role == "assistant" and first.id.startswith("chatcmpl-")
    assert {c.id for c in chunks} == {first.id}
    rounds = [
        c.choices[0].delta.model_extra["reasoning_content"]
        for c in chunks
        if c.choices and c.choices[0].delta.model_extra.get("reasoning_content")
    ]
    assert len(rounds) >= 3 and rounds[0].startswith("round 1:")
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "The answer is" in content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert time.perf_counter() - began < 120


def test_single_streams_its_tokens_as_they_are_generated(server):
    whole = client(server).chat.completions.create(model="arith@single", messages=ask(HARD))
    stream = client(server).chat.completions.create(
        model="arith@single", messages=ask(HARD), stream=True
    )
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 20, "the answer came in one piece, not as it was generated"
    assert "".join(pieces) == whole.choices[0].message.content


def test_first_finish_streams_its_racing_samples_tokens(server):
    body = {"ponder": {"params": {"chunk_tokens": 8}}}
    stream = client(server).chat.completions.create(
        model="arith@first_finish:4", messages=ask(HARD), stream=True, extra_body=body
    )
    texts: dict[int, str] = {}
    pieces, content = 0, ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta, extra = chunk.choices[0].delta, chunk.model_extra.get("ponder") or {}
        if "sample" in extra:
            sample = extra["sample"]
            texts[sample] = texts.get(sample, "") + delta.model_extra["reasoning_content"]
            pieces += 1
        content += delta.content or ""
    assert sorted(texts) == [0, 1, 2, 3]
    assert pieces > 40, "the samples came in rounds, not as they were generated"
    assert content in texts.values(), "the answer is the racing sample that finished first"


def test_raw_server_sent_events_over_httpx(server):
    body = {"model": "arith@majority:4", "prompt": EASY, "stream": True}
    with httpx.stream("POST", f"{server}/v1/completions", json=body, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(e["object"] == "text_completion" for e in events)
    assert "The answer is 19." in "".join(e["choices"][0]["text"] for e in events if e["choices"])


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "nope", "messages": ask()}, 404, "serves arith"),
        ({"model": "arith@nope", "messages": ask()}, 400, "unknown strategy 'nope'"),
        ({"model": "arith@majority:99", "messages": ask()}, 400, "cap of 16"),
        ({"model": "arith@majority:x", "messages": ask()}, 400, "whole number"),
        ({"model": "arith@single", "messages": ask(), "max_tokens": 99999}, 400, "cap of 2048"),
        (
            {"model": "arith", "messages": ask(), "ponder": {"params": {"beam_widt": 2}}},
            400,
            "no parameter 'beam_widt'",
        ),
        ({"model": "arith", "messages": ask(), "ponder": {"budgte": 2}}, 400, "budgte"),
        ({"model": "arith", "messages": []}, 400, "messages"),
        ({"model": "arith", "messages": ask("  ")}, 400, "empty"),
        ({"model": "arith", "messages": ask(), "logprobs": True}, 400, "log-probabilities"),
        ({"model": "arith", "messages": ask(), "temperature": -1}, 400, "temperature"),
        ({"messages": ask()}, 400, "model"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_to_do(server, body, status, says):
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == status
    error = response.json()["error"]
    assert says in error["message"] and error["type"]


def test_a_body_that_is_not_json_is_a_400(server):
    response = httpx.post(
        f"{server}/v1/chat/completions",
        content=b"{bad",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_metrics_count_requests_by_model_strategy_and_status(server):
    before = metric(server, "ponder_rejected_total", reason="invalid")
    client(server).chat.completions.create(model="arith@single", messages=ask())
    with pytest.raises(openai.BadRequestError):
        client(server).chat.completions.create(model="arith@no_such_strategy", messages=ask())
    assert metric(server, "ponder_requests_total", strategy="single", status="200") >= 1
    assert metric(server, "ponder_generated_tokens_total", strategy="single") > 0
    assert metric(server, "ponder_rejected_total", reason="invalid") == before + 1


def test_start_up_is_out_of_the_garbage_collectors_reach(server):
    """`ponder serve` freezes what start-up made (so full collections stay short) and says
    so in /metrics, beside the process's CPU, memory and collections."""
    assert metric(server, "ponder_gc_frozen_objects") > 10_000
    assert metric(server, "process_resident_memory_bytes") > 10_000_000
    assert metric(server, "process_cpu_seconds_total") > 0
    assert metric(server, "python_gc_collections_total", generation="0") > 0


def test_the_api_key_is_required_except_for_health(guarded):
    with pytest.raises(openai.AuthenticationError):
        client(guarded).models.list()
    with pytest.raises(openai.AuthenticationError):
        client(guarded, "wrong").chat.completions.create(model="arith@single", messages=ask())
    assert httpx.get(f"{guarded}/metrics").status_code == 401
    assert httpx.get(f"{guarded}/health").status_code == 200
    answer = client(guarded, KEY).chat.completions.create(model="arith@single", messages=ask())
    assert answer.model_extra["ponder"]["answer"] == "19"
    assert metric(guarded, "ponder_rejected_total", KEY, reason="auth") >= 3


def test_a_body_over_the_limit_is_a_413(guarded):
    body = {"model": "arith@single", "messages": ask("Start with 1. " + "Add 1. " * 1000)}
    response = httpx.post(
        f"{guarded}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["error"]["message"]


@contextlib.contextmanager
def _long_stream(base: str) -> Iterator[httpx.Response]:
    """A streamed search that runs past the deadline, from its first chunk until the client
    hangs up (on leaving the block)."""
    body = {"model": "arith@beam_search:64", "messages": ask(HARD), "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=60) as http:
        request = http.build_request(
            "POST", f"{base}/v1/chat/completions", json=body, headers=headers
        )
        response = http.send(request, stream=True)
        assert response.status_code == 200
        lines = response.iter_lines()  # kept: a dropped iterator closes the stream
        next(lines)
        try:
            yield response
        finally:
            response.close()


def test_a_busy_server_answers_429_with_retry_after(guarded):
    with _long_stream(guarded):
        response = httpx.post(
            f"{guarded}/v1/chat/completions",
            json={"model": "arith@single", "messages": ask()},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]["message"]


def test_a_request_past_the_deadline_is_a_504(guarded):
    with pytest.raises(openai.APIStatusError) as raised:
        client(guarded, KEY).chat.completions.create(
            model="arith@beam_search:64", messages=ask(HARD)
        )
    assert raised.value.status_code == 504
    assert "deadline of 2 s" in raised.value.message


def test_a_client_that_goes_away_cancels_its_request(guarded):
    time.sleep(2.5)  # the requests of earlier tests are over (their deadline is 2 s)
    with _long_stream(guarded):
        pass
    time.sleep(1.0)  # the server sees the disconnect
    calls = metric(guarded, "ponder_upstream_calls_total", KEY)
    time.sleep(2.0)
    assert metric(guarded, "ponder_upstream_calls_total", KEY) == calls
    assert metric(guarded, "ponder_requests_total", KEY, status="499") >= 1
    answer = client(guarded, KEY).chat.completions.create(model="arith@single", messages=ask())
    assert answer.model_extra["ponder"]["answer"] == "19"


class _Faulty:
    """A real listening socket on `port` that takes each request and then, by `mode`: closes
    the connection unanswered ("hangup": an upstream that dies mid-request), answers HTTP 500
    ("error"), or keeps it open without a word ("silent": an upstream that times out)."""

    def __init__(self, port: int, mode: str) -> None:
        self.mode = mode
        self.socket = socket.create_server(("127.0.0.1", port))
        self.socket.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        held = []
        while not self.stop:
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            connection.settimeout(2)
            with contextlib.suppress(OSError):
                connection.recv(65536)
                if self.mode == "error":
                    body = b'{"error": {"message": "engine failed", "type": "internal"}}'
                    connection.sendall(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json"
                        b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                    )
            if self.mode == "silent":
                held.append(connection)
            else:
                connection.close()
        for connection in held:
            connection.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.socket.close()


def test_upstream_faults_are_named_json_errors_and_the_server_recovers(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    flags = ["--model", url, "--served-model", "arith", "--format", "chat", "--verifier", "none"]
    flags += ["--upstream-timeout", "0.5"]
    with _server(tmp_path, *flags) as base:
        # Nothing listens there: 503, naming the model and the upstream.
        refused = httpx.post(
            f"{base}/v1/chat/completions", json={"model": "arith", "messages": ask()}, timeout=60
        )
        assert refused.status_code == 503
        message = refused.json()["error"]["message"]
        assert "'arith'" in message and url in message
        # An upstream that takes the request and dies: 503 again, and a seeded request is told
        # what vLLM on CPU does to seeded requests.
        faults = {}
        for mode in ("hangup", "error", "silent"):
            faulty = _Faulty(port, mode)
            try:
                faults[mode] = httpx.post(
                    f"{base}/v1/chat/completions",
                    json={"model": "arith", "messages": ask(), "seed": 3},
                    timeout=120,
                )
            finally:
                faulty.close()
        assert faults["hangup"].status_code == 503
        assert "no-enable-chunked-prefill" in faults["hangup"].json()["error"]["message"]
        assert faults["error"].status_code == 502
        assert "engine failed" in faults["error"].json()["error"]["message"]
        assert faults["silent"].status_code == 504
        for response in faults.values():
            assert url in response.json()["error"]["message"]
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        # The upstream comes back (another ponder server, as an OpenAI-compatible upstream).
        upstream = ["--strategy", "single", "--verifier", "none"]
        with _server(tmp_path, *upstream, port=port):
            back = httpx.post(
                f"{base}/v1/chat/completions",
                json={"model": "arith", "messages": ask()},
                timeout=120,
            )
        assert back.status_code == 200, back.text
        assert back.json()["usage"]["completion_tokens"] > 0


@pytest.fixture(scope="module")
def over_vllm(vllm_arith_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ponder serving the embedded policy from a real vLLM server, judged by the local verifier."""
    from ponder.models import embedded_policy

    folder = str(embedded_policy())
    flags = ["--model", vllm_arith_url, "--served-model", "arith-policy", "--format", folder]
    flags += ["--model-config", folder, "--verifier", "embedded", "--strategy", "best_of_n"]
    with _server(tmp_path_factory.mktemp("over-vllm"), *flags) as base:
        yield base


@pytest.mark.vllm
def test_a_vllm_upstream_answers_with_search_and_streams_tokens(over_vllm):
    searched = client(over_vllm).chat.completions.create(
        model="arith@best_of_n:4", messages=ask(), seed=1
    )
    assert searched.model_extra["ponder"]["answer"] == "19"
    assert searched.model_extra["ponder"]["verifier_calls"] == 1
    assert searched.model_extra["ponder"]["flops"] > 0  # the served model's size is known
    stream = client(over_vllm).chat.completions.create(
        model="arith@single", messages=ask(HARD), stream=True
    )
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    whole = client(over_vllm).chat.completions.create(model="arith@single", messages=ask(HARD))
    assert len(pieces) > 5 and "".join(pieces) == whole.choices[0].message.content


@pytest.mark.vllm
def test_concurrent_requests_to_a_served_model_go_as_they_come(over_vllm):
    # The local model sees the same six requests merged (the test above); vLLM batches them
    # itself, and merged, each would wait for the slowest of its call.
    answers, calls = six_at_once(over_vllm)
    assert len(answers) == 6 and all(answers)
    assert calls == 6


@pytest.mark.vllm
def test_vendor_fields_reach_a_vllm_upstream(over_vllm):
    greedy = client(over_vllm).chat.completions.create(
        model="arith@single", messages=ask(HARD), temperature=0
    )
    top_1 = client(over_vllm).chat.completions.create(
        model="arith@single", messages=ask(HARD), temperature=1.0, seed=5, extra_body={"top_k": 1}
    )
    assert top_1.choices[0].message.content == greedy.choices[0].message.content
    assert "ignored_fields" not in top_1.model_extra["ponder"]
    with pytest.raises(openai.BadRequestError) as refused:
        client(over_vllm).chat.completions.create(
            model="arith@single", messages=ask(), extra_body={"top_k": -7}
        )
    assert "top_k" in refused.value.message


ROUTES = """
[server]
max_budget = 8

[[route]]
name = "arith"

[[route]]
name = "arith-voting"
verifier = ""
strategy = "majority"
budget = 4
params = { temperature = 0.8 }
"""


def test_several_routes_from_a_config_file_share_one_model(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text(ROUTES)
    with _server(tmp_path, "--config", str(config)) as base:
        assert [m.id for m in client(base).models.list().data] == ["arith", "arith-voting"]
        voted = client(base).chat.completions.create(model="arith-voting", messages=ask())
        extra = voted.model_extra["ponder"]
        assert (extra["strategy"], extra["budget"], extra["params"]) == (
            "majority",
            4,
            {"temperature": "0.8"},
        )
        with pytest.raises(openai.BadRequestError) as refused:
            client(base).chat.completions.create(model="arith-voting@best_of_n", messages=ask())
        assert "served without one" in refused.value.message
        searched = client(base).chat.completions.create(model="arith@best_of_n:4", messages=ask())
        assert searched.model_extra["ponder"]["answer"] == "19"
        with pytest.raises(openai.BadRequestError):
            client(base).chat.completions.create(model="arith@majority:9", messages=ask())
        log = next(tmp_path.glob("serve-*.log")).read_text()
        assert "arith (compute_optimal@8), arith-voting (majority@4)" in log


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "0.0.0.0"], "--api-key"),
        (["--config", "/nonexistent/serve.toml"], "no config file"),
        (["--model", "/nonexistent/model"], "/nonexistent/model"),
        (["--format", "/nonexistent/format.json"], "prompt format"),
        (["--budget", "0"], "budget"),
    ],
)
def test_bad_serve_options_are_one_line_errors(ponder_cli, args, says):
    out = subprocess.run(
        [*ponder_cli, "serve", "--port", str(_free_port()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PONDER_API_KEY": ""},
    )
    assert out.returncode == 1, out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr


def test_a_config_file_with_mistakes_says_where(ponder_cli, tmp_path):
    for text, says in (
        ("[server]\nmax_budgt = 3\n[[route]]\n", "unknown keys ['max_budgt']"),
        ("[server]\napi_key = 'x'\n[[route]]\n", "keep the API key out of files"),
        ("[[route]]\nname = 'a@b'\n", "route name 'a@b'"),
        ("[server\n", "not valid TOML"),
    ):
        config = tmp_path / "bad.toml"
        config.write_text(text)
        out = subprocess.run(
            [*ponder_cli, "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 1 and says in out.stderr, (text, out.stderr)


FUZZ_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,negative_data_rejection"
)


def test_fuzzing_the_openapi_schema_finds_no_5xx_and_no_response_off_the_schema(tmp_path):
    flags = ["--max-budget", "2", "--max-tokens", "24", "--deadline-s", "20"]
    with _server(tmp_path, *flags) as base:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
             "--checks", FUZZ_CHECKS, "--max-examples", "40", "--workers", "1",
             "--seed", "1"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks",
                 "PYTHONPATH": str(Path(__file__).parent)},
        )  # fmt: skip
        assert out.returncode == 0, out.stdout[-6000:]
        assert "passed" in out.stdout
        # The hooks point bodies at the route: strategies really ran.
        assert metric(base, "ponder_requests_total", status="200") >= 5
