"""Replicas of one served model: a live vLLM server (under two names) and a dead port."""

from __future__ import annotations

import socket
import time

import pytest

from ponder import BackendError, SamplingParams
from ponder.generators import load_generator
from ponder.generators.openai import OpenAIGenerator
from ponder.generators.replicas import ReplicatedGenerator, ReplicatedVerifier
from ponder.sync import run_sync
from ponder.tasks import arith_task

PROMPTS = [arith_task("test", 8).prompt(p) for p in arith_task("test", 8).problems]
PARAMS = SamplingParams(n=2, max_tokens=40, seed=3)


def dead_url() -> str:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def alias(url: str) -> str:
    """The same server under another name: a second replica as the pool sees it."""
    return url.replace("127.0.0.1", "localhost")


def replicas(*urls: str, cooldown_s: float = 30.0) -> ReplicatedGenerator:
    members = [OpenAIGenerator(u, model="arith-policy", max_retries=0) for u in urls]
    return ReplicatedGenerator(members, urls, cooldown_s=cooldown_s)


@pytest.mark.vllm
def test_prompts_go_to_the_least_busy_replica_and_sample_as_on_one_server(vllm_arith_url):
    one = load_generator(vllm_arith_url, model="arith-policy")
    both = load_generator(f"{vllm_arith_url},{alias(vllm_arith_url)}", model="arith-policy")
    assert isinstance(both, ReplicatedGenerator)
    assert run_sync(both.connect()) == "arith-policy"
    assert run_sync(both.generate(PROMPTS, PARAMS)) == run_sync(one.generate(PROMPTS, PARAMS))
    assert [r.served for r in both.pool.replicas] == [4, 4]
    assert [r.outstanding for r in both.pool.replicas] == [0, 0]


@pytest.mark.vllm
def test_a_failing_replica_is_taken_out_for_a_while_and_its_requests_retried(vllm_arith_url):
    one = load_generator(vllm_arith_url, model="arith-policy")
    expected = run_sync(one.generate(PROMPTS, PARAMS))
    mixed = replicas(dead_url(), vllm_arith_url, cooldown_s=1.5)
    dead, live = mixed.pool.replicas
    assert run_sync(mixed.generate(PROMPTS, PARAMS)) == expected
    # The prompts sent before its first failure came back were all retried on the other.
    assert (dead.served, live.served) == (0, 8) and dead.failed >= 1
    failed = dead.failed
    assert run_sync(mixed.generate(PROMPTS[:2], PARAMS)) == expected[:2]
    assert dead.failed == failed, "a replica taken out is not tried again within its cooldown"
    time.sleep(1.6)
    assert run_sync(mixed.generate(PROMPTS[:1], PARAMS)) == expected[:1]
    assert dead.failed == failed + 1, "after the cooldown it is tried again"
    # A stream is retried too while nothing of it was handed on.
    pieces: dict[int, str] = {}

    def on_text(index: int, piece: str) -> None:
        pieces[index] = pieces.get(index, "") + piece

    time.sleep(1.6)
    streamed = run_sync(mixed.stream(PROMPTS[:2], PARAMS, on_text))
    assert streamed == expected[:2]
    assert [pieces[i] for i in range(4)] == [c.text for g in streamed for c in g.completions]


@pytest.mark.vllm
def test_a_bad_request_is_not_retried_and_no_replica_left_is_a_clear_error(vllm_arith_url):
    pool = replicas(vllm_arith_url, alias(vllm_arith_url))
    bad = PARAMS.replace(extra=(("top_k", "-7"),))
    with pytest.raises(BackendError, match="HTTP 400"):
        run_sync(pool.generate(PROMPTS[:1], bad))
    assert [(r.served, r.failed) for r in pool.pool.replicas] == [(0, 0), (0, 0)]
    gone = [dead_url(), dead_url()]
    with pytest.raises(BackendError, match="every replica failed") as raised:
        run_sync(replicas(*gone).generate(PROMPTS[:1], PARAMS))
    assert all(url in str(raised.value) for url in gone)


@pytest.mark.vllm
def test_verifier_replicas_score_as_one_server(vllm_verifier_url):
    from ponder.models import embedded_verifier
    from ponder.verifiers import Solution, load_verifier

    solutions = [
        Solution("Start with 12. Add 7.", ("12 + 7 = 19", "The answer is 19.")),
        Solution("Start with 12. Add 7.", ("12 + 7 = 18", "The answer is 18.")),
        Solution("Start with 5. Multiply by 3.", ("5 * 3 = 15", "The answer is 15.")),
    ]
    options = {"kind": "prm", "format": embedded_verifier(), "model": "arith-verifier"}
    one = load_verifier(vllm_verifier_url, **options)
    pool = load_verifier(f"{dead_url()},{vllm_verifier_url}", **options)
    assert isinstance(pool, ReplicatedVerifier)
    assert run_sync(pool.score(solutions)) == run_sync(one.score(solutions))
    assert [r.served for r in pool.pool.replicas] == [0, 3] and pool.pool.replicas[0].failed


def test_a_replica_list_must_be_urls_each_once():
    from ponder.errors import ConfigError

    with pytest.raises(ConfigError, match="comma-separated"):
        load_generator("http://127.0.0.1:1/v1,some/folder")
    with pytest.raises(ConfigError, match="listed twice"):
        load_generator("http://127.0.0.1:1/v1,http://127.0.0.1:1/v1")
