"""Prefix caching in the local backends: reused prefixes change nothing but the work done."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ponder import SamplingParams
from ponder.generators.transformers import TransformersGenerator
from ponder.models import embedded_policy, embedded_verifier
from ponder.prefix_cache import CachedPrefix, PrefixCache
from ponder.sync import run_sync
from ponder.tasks.arith import arith_task
from ponder.verifiers import CausalLMPRM, Solution

TASK = arith_task("test", 6)


def entry(ids: list[int], tokens_per_id: int = 1) -> CachedPrefix:
    """An entry whose tensors take 8 bytes per token per layer (one float32 key and value)."""
    size = len(ids) * tokens_per_id
    return CachedPrefix(
        ids=tuple(ids), keys=[torch.zeros(1, size, 1)], values=[torch.zeros(1, size, 1)]
    )


def test_the_longest_stored_proper_prefix_is_found():
    cache = PrefixCache(max_bytes=10_000)
    for ids in ([1, 2], [1, 2, 3, 4], [1, 2, 3, 4, 5, 6], [7, 8, 9]):
        cache.add(entry(ids))
    assert cache.find([1, 2, 3, 4, 5]).ids == (1, 2, 3, 4)
    assert cache.find([1, 2, 3, 4, 5, 6, 0]).ids == (1, 2, 3, 4, 5, 6)
    # A stored sequence equal to the query is no proper prefix: the last token must be read.
    assert cache.find([1, 2, 3, 4]).ids == (1, 2)
    assert cache.find([1, 3, 3, 4, 5]) is None  # same length and position, other tokens
    assert cache.find([7, 8]) is None
    assert (cache.hits, cache.reused_tokens) == (3, 4 + 6 + 2)


def test_the_least_recently_used_are_evicted_beyond_the_byte_budget():
    cache = PrefixCache(max_bytes=8 * 10)  # ten tokens' worth
    cache.add(entry([1, 2, 3]))
    cache.add(entry([4, 5, 6]))
    assert cache.find([1, 2, 3, 0]) is not None  # [1, 2, 3] is now the most recent
    cache.add(entry([7, 8, 9, 10]))
    assert cache.nbytes == 8 * 10 and len(cache) == 3
    cache.add(entry([11]))
    assert cache.find([4, 5, 6, 0]) is None  # evicted first
    assert cache.find([1, 2, 3, 0]) is not None and cache.nbytes <= 8 * 10
    cache.add(entry(list(range(100, 120))))  # larger than the whole budget: not kept
    assert cache.find([*range(100, 120), 0]) is None
    off = PrefixCache(max_bytes=0)
    off.add(entry([1, 2]))
    assert len(off) == 0


def extended(prompts, generations):
    """Each prompt with its first sample appended as a new step, as a step search does."""
    return [
        dataclasses.replace(p, continuation=p.continuation + g.completions[0].text + "\n")
        for p, g in zip(prompts, generations, strict=True)
    ]


def test_a_generator_reusing_prefixes_samples_exactly_what_it_would_without():
    cached = TransformersGenerator(embedded_policy(), max_batch_size=8)
    plain = TransformersGenerator(embedded_policy(), prefix_cache_mb=0)
    assert cached.prefix_cache is not None and plain.prefix_cache is None
    prompts = [TASK.prompt(p) for p in TASK.problems]
    params = SamplingParams(n=3, max_tokens=40, temperature=1.0, seed=5, stop=("\n",), logprobs=0)
    for _ in range(3):
        mine = run_sync(cached.generate(prompts, params))
        theirs = run_sync(plain.generate(prompts, params))
        for a, b in zip(mine, theirs, strict=True):
            assert a.prompt_tokens == b.prompt_tokens
            for x, y in zip(a.completions, b.completions, strict=True):
                assert (x.text, x.num_tokens, x.finish_reason) == (
                    y.text,
                    y.num_tokens,
                    y.finish_reason,
                )
                assert [t.logprob for t in x.logprobs] == pytest.approx(
                    [t.logprob for t in y.logprobs], abs=1e-4
                )
        prompts = extended(prompts, mine)
    # Rounds two and three each found every prompt's previous round.
    assert cached.prefix_cache.hits == 2 * len(prompts)
    assert cached.prefix_cache.reused_tokens > 0


def test_a_prm_reusing_prefixes_scores_exactly_as_without():
    cached = CausalLMPRM(embedded_verifier(), max_batch_size=4)
    plain = CausalLMPRM(embedded_verifier(), prefix_cache_mb=0)
    assert cached.prefix_cache is not None and plain.prefix_cache is None
    gold = [(p.question, TASK.split_steps(p.metadata["solution"])) for p in TASK.problems]
    for depth in range(1, 6):
        # The gold prefix and a sibling whose last step is wrong: siblings share a prefix.
        solutions = [Solution(q, tuple(s[:depth])) for q, s in gold]
        solutions += [Solution(q, (*s[: depth - 1], "1 + 1 = 3")) for q, s in gold]
        mine = cached.score_blocking(solutions)
        theirs = plain.score_blocking(solutions)
        for a, b in zip(mine, theirs, strict=True):
            assert a.tokens == b.tokens
            assert a.step_scores == pytest.approx(b.step_scores, abs=1e-5)
    assert cached.prefix_cache.hits >= 4 * 2 * len(gold)
