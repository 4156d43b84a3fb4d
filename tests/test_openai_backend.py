"""The openai backend over real HTTP: a real vLLM server, and a loopback server for faults."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ponder import BackendError, Message, ModelLoadError, Prompt, SamplingParams
from ponder.generators.openai import OpenAIGenerator
from ponder.sync import run_sync

RAW = Prompt.raw("Question: What is 12 + 30?\nStep:")
OTHER = Prompt.raw("Question: What is 7 * 6?\n")


def generate(generator, prompts, **params):
    return run_sync(generator.generate(prompts, SamplingParams(**params)))


@pytest.fixture(scope="module")
def server_generator(vllm_url):
    generator = OpenAIGenerator(vllm_url)
    assert run_sync(generator.connect()) == "tiny"
    yield generator
    run_sync(generator.aclose())


@pytest.mark.vllm
def test_samples_counts_and_usage(server_generator, hf_generator):
    out = generate(server_generator, [RAW, OTHER], n=3, max_tokens=16, seed=0)
    assert [len(g.completions) for g in out] == [3, 3]
    assert out[0].prompt_tokens == len(hf_generator.tokenizer(RAW.text).input_ids)
    for completion in out[0].completions:
        assert 1 <= completion.num_tokens <= 16
        assert completion.logprobs is None, "logprobs only when asked for"


@pytest.mark.vllm
def test_greedy_output_matches_the_transformers_backend(server_generator, hf_generator):
    server = generate(server_generator, [RAW, OTHER], n=1, max_tokens=20, temperature=0)
    local = generate(hf_generator, [RAW, OTHER], n=1, max_tokens=20, temperature=0)
    for s, h in zip(server, local, strict=True):
        assert s.completions[0].text == h.completions[0].text
        assert s.completions[0].num_tokens == h.completions[0].num_tokens
        assert s.prompt_tokens == h.prompt_tokens


@pytest.mark.vllm
def test_seeds_reproduce_and_prompts_get_their_own_streams(server_generator):
    first = generate(server_generator, [RAW, RAW], n=2, max_tokens=16, seed=4)
    again = generate(server_generator, [RAW, RAW], n=2, max_tokens=16, seed=4)
    assert first == again
    # The same prompt twice in one call is two independent draws, not a copy.
    assert first[0].completions != first[1].completions


@pytest.mark.vllm
@pytest.mark.parametrize("prompt", [RAW, Prompt.chat([Message("user", "What is 2 + 2?")])])
def test_a_stream_is_generate_with_each_sample_handed_on_as_it_comes(server_generator, prompt):
    params = SamplingParams(n=3, max_tokens=16, seed=4)
    pieces: dict[int, list[str]] = {}
    on_text = lambda i, t: pieces.setdefault(i, []).append(t)  # noqa: E731
    out = run_sync(server_generator.stream([prompt, OTHER], params, on_text))
    assert out == run_sync(server_generator.generate([prompt, OTHER], params))
    assert sorted(pieces) == list(range(6))
    for i, generation in enumerate(out):
        for j, completion in enumerate(generation.completions):
            assert "".join(pieces[i * 3 + j]) == completion.text
            assert completion.num_tokens >= len(pieces[i * 3 + j]) > 1


@pytest.mark.vllm
def test_stop_strings_and_which_one_matched(server_generator):
    [free] = generate(server_generator, [RAW], n=1, max_tokens=40, seed=11)
    text = free.completions[0].text
    stop = text[3:5]
    [stopped] = generate(server_generator, [RAW], n=1, max_tokens=40, seed=11, stop=(stop,))
    completion = stopped.completions[0]
    assert completion.text == text[: text.index(stop)]
    assert (completion.finish_reason, completion.stop_string) == ("stop", stop)


@pytest.mark.vllm
def test_logprobs_have_one_entry_per_generated_token(server_generator):
    [out] = generate(server_generator, [RAW], n=2, max_tokens=12, seed=1, logprobs=2)
    for completion in out.completions:
        assert completion.logprobs is not None
        assert len(completion.logprobs) == completion.num_tokens
        assert all(t.logprob <= 0 and t.top for t in completion.logprobs)


@pytest.mark.vllm
def test_chat_and_chat_continuation(server_generator, hf_generator):
    chat = Prompt.chat([Message("user", "What is 2 + 2?")])
    [plain] = generate(server_generator, [chat], n=2, max_tokens=8, seed=0)
    assert len(plain.completions) == 2
    partial = chat.continued("The answer")
    [server] = generate(server_generator, [partial], n=1, max_tokens=10, temperature=0)
    [local] = generate(hf_generator, [partial], n=1, max_tokens=10, temperature=0)
    assert server.completions[0].text == local.completions[0].text
    assert server.prompt_tokens == local.prompt_tokens


@pytest.mark.vllm
def test_unknown_model_is_a_clear_error(vllm_url):
    generator = OpenAIGenerator(vllm_url, model="no-such-model")
    with pytest.raises(ModelLoadError, match="does not serve 'no-such-model'"):
        run_sync(generator.connect())


@pytest.mark.vllm
def test_a_prompt_longer_than_the_context_is_a_backend_error(server_generator):
    too_long = Prompt.raw("1 + 1 = 2. " * 400)
    with pytest.raises(BackendError, match="HTTP 400"):
        generate(server_generator, [too_long], max_tokens=4)


def test_unreachable_server_is_a_clear_error():
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", max_retries=0, timeout=5)
    with pytest.raises(ModelLoadError, match="cannot reach"):
        run_sync(generator.connect())


# Faults a real server will not produce on demand (a 503, a slow reply) come from a
# loopback HTTP server that speaks just enough of the API.
class _Faulty(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        state = self.server.state  # type: ignore[attr-defined]
        with state["lock"]:
            state["requests"] += 1
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
            status = state["statuses"].pop(0) if state["statuses"] else 200
        time.sleep(state["delay"])
        headers = {"Content-Type": "application/json"}
        if state["events"] is not None:  # a stream: these events, then the connection closes
            payload = "".join(f"data: {json.dumps(e)}\n\n" for e in state["events"]).encode()
            status, headers = 200, {"Content-Type": "text/event-stream"}
        elif status == 200:
            payload = json.dumps(
                {
                    "id": "x",
                    "object": "text_completion",
                    "created": 0,
                    "model": "fake",
                    "choices": [
                        {"index": 0, "text": " 42", "finish_reason": "stop", "logprobs": None}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
            ).encode()
        else:
            payload = json.dumps({"error": {"message": "try again", "type": "server_error"}})
            payload = payload.encode()
            if status == 429:
                headers["Retry-After"] = str(state["retry_after"])
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        with state["lock"]:
            state["in_flight"] -= 1


@pytest.fixture
def faulty_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Faulty)
    server.state = {  # type: ignore[attr-defined]
        "lock": threading.Lock(),
        "requests": 0,
        "in_flight": 0,
        "peak": 0,
        "statuses": [],
        "delay": 0.0,
        "retry_after": 1,
        "events": None,
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_retries_retryable_errors_with_backoff(faulty_server):
    faulty_server.state["statuses"] = [503, 503]
    generator = OpenAIGenerator(_url(faulty_server), model="fake", max_retries=3)
    [out] = generate(generator, [RAW], max_tokens=4)
    assert out.completions[0].text == " 42"
    assert out.completions[0].num_tokens == 2
    assert faulty_server.state["requests"] == 3


def test_does_not_retry_a_bad_request(faulty_server):
    faulty_server.state["statuses"] = [400, 400, 400]
    generator = OpenAIGenerator(_url(faulty_server), model="fake", max_retries=3)
    with pytest.raises(BackendError, match="HTTP 400"):
        generate(generator, [RAW], max_tokens=4)
    assert faulty_server.state["requests"] == 1


def test_gives_up_after_max_retries(faulty_server):
    faulty_server.state["statuses"] = [503] * 10
    generator = OpenAIGenerator(_url(faulty_server), model="fake", max_retries=2)
    with pytest.raises(BackendError, match="HTTP 503"):
        generate(generator, [RAW], max_tokens=4)
    assert faulty_server.state["requests"] == 3


def test_concurrency_limit_holds(faulty_server):
    faulty_server.state["delay"] = 0.2
    generator = OpenAIGenerator(_url(faulty_server), model="fake", max_concurrency=2)
    out = generate(generator, [RAW] * 6, max_tokens=4)
    assert len(out) == 6
    assert faulty_server.state["peak"] == 2


def test_timeouts_are_retried_then_reported(faulty_server):
    faulty_server.state["delay"] = 1.5
    generator = OpenAIGenerator(_url(faulty_server), model="fake", timeout=0.3, max_retries=1)
    with pytest.raises(BackendError, match="timed out"):
        generate(generator, [RAW], max_tokens=4)
    assert faulty_server.state["requests"] == 2


def test_a_429_is_retried_after_the_wait_the_server_asks_for(faulty_server):
    faulty_server.state["statuses"] = [429]
    faulty_server.state["retry_after"] = 2  # longer than the first backoff (at most 0.5 s)
    generator = OpenAIGenerator(_url(faulty_server), model="fake", max_retries=1)
    began = time.monotonic()
    [out] = generate(generator, [RAW], max_tokens=4)
    assert out.completions[0].text == " 42"
    assert faulty_server.state["requests"] == 2
    assert time.monotonic() - began >= 2


def test_an_error_in_a_stream_is_a_backend_error_with_its_message(faulty_server):
    piece = {"choices": [{"index": 0, "text": " 4", "finish_reason": None, "logprobs": None}]}
    failure = {"error": {"message": "the engine died", "type": "internal", "code": 500}}
    faulty_server.state["events"] = [piece, failure]
    generator = OpenAIGenerator(_url(faulty_server), model="fake")
    seen = []
    with pytest.raises(BackendError, match="HTTP 500: the engine died"):
        run_sync(generator.stream([RAW], SamplingParams(max_tokens=4), lambda i, t: seen.append(t)))
    assert seen == [" 4"]
