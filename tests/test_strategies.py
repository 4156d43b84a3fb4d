"""Every strategy, on the embedded arith policy and PRM: budgets, answers, seeds and faults.

The models are real. The one stand-in is `Faulty`, which wraps the real
policy and then empties or drops some of its samples: a generator that
returns empty text or fewer samples than asked is a fault the real model
cannot be made to produce on demand.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from ponder import Budget, Prompt, SamplingParams
from ponder.generators.transformers import TransformersGenerator
from ponder.models import embedded_policy, embedded_verifier
from ponder.strategies import STRATEGIES, make_strategy
from ponder.strategies.batching import CoalescingGenerator
from ponder.strategies.particle_filter import effective_sample_size, systematic_resample
from ponder.sync import run_sync
from ponder.tasks.arith import arith_task
from ponder.types import Generation
from ponder.verifiers import load_verifier

NAMES = list(STRATEGIES)
SAMPLING = {"single", "best_of_n", "majority", "weighted_majority", "best_of_majority"}
SAMPLING |= {"self_certainty", "adaptive"}  # adaptive: its first round is 4 samples
STEP_LEVEL = {"beam_search", "lookahead", "dvts", "particle_filter"}
# Small enough to keep the suite fast; arith solutions are under 100 tokens.
FAST = {"max_tokens": "160"}


@pytest.fixture(scope="module")
def policy():
    return TransformersGenerator(embedded_policy())


@pytest.fixture(scope="module")
def prm():
    return load_verifier(embedded_verifier())


@pytest.fixture(scope="module")
def task():
    return arith_task("test", 40)


@pytest.fixture(scope="module")
def easy(task):
    """Two one- or two-operation problems."""
    return [p for p in task.problems if p.metadata["difficulty"]["steps"] <= 2][:2]


class Recording:
    """The real policy, recording how many prompts and samples each call asked for."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int]] = []  # (prompts, samples drawn)

    name = property(lambda self: self.inner.name)
    shape = property(lambda self: self.inner.shape)
    folder = property(lambda self: self.inner.folder)

    async def connect(self) -> str:
        return await self.inner.connect()

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        return await self.inner.count_prompt_tokens(prompts)

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        out = await self.inner.generate(prompts, params)
        self.calls.append((len(prompts), sum(len(g.completions) for g in out)))
        return out

    async def aclose(self) -> None:
        pass


class Faulty(Recording):
    """The real policy, then a fault: every sample's text emptied, or every other sample lost."""

    def __init__(self, inner, fault: str) -> None:
        super().__init__(inner)
        self.fault = fault

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        out = await self.inner.generate(prompts, params)
        if self.fault == "empty":
            kept = [
                dataclasses.replace(
                    g, completions=tuple(dataclasses.replace(c, text="") for c in g.completions)
                )
                for g in out
            ]
        else:
            kept = []
            for i, g in enumerate(out):  # fewer samples: every other one, none for some prompts
                completions = g.completions[::2] if i % 3 != 1 else ()
                kept.append(dataclasses.replace(g, completions=completions))
        self.calls.append((len(prompts), sum(len(g.completions) for g in kept)))
        return kept


def strategy(name, generator, prm, task, seed=0, **params):
    return make_strategy(name, generator, task, prm, {**FAST, **params}, seed=seed)


@pytest.mark.parametrize("name", NAMES)
def test_respects_its_budget_and_answers(name, policy, prm, task, easy):
    recorder = Recording(policy)
    chosen = strategy(name, recorder, prm, task)
    n = 4
    results = chosen.run_many(easy, n)
    for problem, result in zip(easy, results, strict=True):
        assert result.strategy == name and result.budget == n
        assert 0 < result.cost.samples <= chosen.sample_limit(n)
        assert result.answer is not None, result.chosen
        assert isinstance(task.is_correct(result.answer, problem), bool)
        assert result.cost.generated_tokens > 0
        assert (result.cost.verifier_tokens > 0) == chosen.uses_verifier(chosen.params)
        assert result.chosen is not None and result.chosen_node is not None
        assert result.trace[result.chosen_node].kind in ("sample", "answer", "attempt")
    per_problem = [r.cost.samples for r in results]
    if name == "single":
        assert per_problem == [1, 1]
    elif name in SAMPLING | {"mcts", "revision"}:
        assert per_problem == [n, n]
    elif name == "first_finish":
        assert recorder.calls[0][1] == len(easy) * n  # N samples each, then fewer
    elif name == "budget_forcing":
        assert all(1 <= s <= n for s in per_problem)
    if name in STEP_LEVEL:
        # Batched: every call holds both problems' frontiers, at most N step samples each.
        assert all(samples <= len(easy) * n for _, samples in recorder.calls)
        assert recorder.calls[0][0] == len(easy)


@pytest.fixture(scope="module")
def hard(task):
    """Two five-operation problems or longer: the policy's samples of them differ."""
    return [p for p in task.problems if p.metadata["difficulty"]["steps"] >= 5][:2]


def spelled(trace, node: int) -> str:
    """The texts on the path from the problem to `node`, joined."""
    texts = []
    while trace[node].parent is not None:
        texts.append(trace[node].text)
        node = trace[node].parent
    return "\n".join(reversed(texts))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "compute_optimal"])
@pytest.mark.parametrize("behind_a_pilot", [False, True], ids=["alone", "behind-pilot"])
def test_the_chosen_node_holds_the_chosen_solution(name, behind_a_pilot, policy, prm, task, hard):
    """A whole-solution strategy's node holds the chosen text; a step-level one's (and budget
    forcing's) holds its last piece, and the path from the problem spells the solution."""
    if behind_a_pilot:
        chosen = strategy("compute_optimal", policy, prm, task, force=name)
        n = 8  # a pilot of 4, then 4 for the forced strategy
    else:
        chosen, n = strategy(name, policy, prm, task), 4
    for result in chosen.run_many(hard, n):
        assert result.chosen is not None and result.chosen_node is not None
        node = result.trace[result.chosen_node]
        words = result.chosen.text.split()
        assert node.text == result.chosen.text or (
            node.kind != "sample" and spelled(result.trace, node.id).split() == words
        ), (node, result.chosen.text)


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_under_a_seed_alone_or_in_a_batch(name, policy, prm, task, easy):
    first = strategy(name, policy, prm, task, seed=7).run_many(easy, 4)
    again = strategy(name, policy, prm, task, seed=7).run_many(easy, 4)
    alone = strategy(name, policy, prm, task, seed=7).run(easy[1], 4)
    for a, b in zip(first, again, strict=True):
        assert a.answer == b.answer
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert a.cost.generated_tokens == b.cost.generated_tokens
    assert [c.text for c in alone.candidates] == [c.text for c in first[1].candidates]


@pytest.mark.parametrize("name", NAMES)
def test_a_budget_of_one(name, policy, prm, task, easy):
    chosen = strategy(name, policy, prm, task)
    result = chosen.run(easy[0], 1)
    assert 1 <= result.cost.samples <= chosen.sample_limit(1)
    assert result.answer is not None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fault", ["empty", "fewer"])
def test_survives_empty_and_missing_samples(name, fault, policy, prm, task, easy):
    faulty = Faulty(policy, fault)
    result = strategy(name, faulty, prm, task).run(easy[0], 4)
    # The meter counts the calls made and the samples that came back, not those asked for.
    assert result.cost.calls == len(faulty.calls) >= 1
    assert result.cost.samples == sum(samples for _, samples in faulty.calls)
    if fault == "empty":  # nothing to extract: no answer, but a result with its cost
        assert result.answer is None and all(c.answer is None for c in result.candidates)
    else:  # half the samples lost: it answers from those it got
        assert result.cost.samples >= 1
        assert result.answer is not None and result.chosen in result.candidates


@pytest.mark.parametrize("name", NAMES)
def test_truncated_samples_have_no_answer_and_no_crash(name, policy, prm, task, easy):
    # Two tokens are a real sample cut short: unparsable, with no answer line.
    result = strategy(name, policy, prm, task, max_tokens="2").run(easy[0], 2)
    assert result.answer is None
    assert result.cost.generated_tokens <= 2 * strategy(
        name, policy, prm, task, max_tokens="2"
    ).sample_limit(2)


def test_token_cap_stops_a_run_with_what_it_has(policy, prm, task, easy):
    result = strategy("best_of_n", policy, prm, task).run(easy[0], Budget(samples=4, tokens=30))
    assert result.cost.generated_tokens <= 30
    result = strategy("revision", policy, prm, task, select="majority").run(
        easy[0], Budget(samples=8, tokens=40)
    )
    assert result.stopped_by_budget
    assert result.cost.generated_tokens <= 40
    assert result.candidates  # the attempts written before the cap


def test_merged_calls_one_backend_call_per_round(policy, prm, task):
    recorder = Recording(policy)
    strategy("majority", recorder, prm, task).run_many(task.problems[:6], 4)
    assert recorder.calls == [(6, 24)]
    recorder.calls.clear()
    results = strategy("beam_search", recorder, prm, task, beam_width="2").run_many(
        task.problems[:6], 4
    )
    # Each problem's rounds (its meter counts them as calls) share the backend calls.
    assert len(recorder.calls) == max(r.cost.calls for r in results)
    assert sum(r.cost.calls for r in results) > 3 * len(recorder.calls)


def test_calls_made_while_one_runs_wait_and_go_together(policy, task):
    recorder = Recording(policy)
    params = SamplingParams(max_tokens=8, seed=0)
    prompts = [task.prompt(p) for p in task.problems[:4]]

    async def go() -> None:
        shared = CoalescingGenerator(recorder, in_flight=1)
        first = asyncio.ensure_future(shared.generate(prompts[:1], params))
        await asyncio.sleep(0.05)  # the first call is running
        await asyncio.gather(first, *(shared.generate([p], params) for p in prompts[1:]))

    run_sync(go())
    assert [prompts for prompts, _ in recorder.calls] == [1, 3]


def test_a_merged_call_whose_callers_all_left_is_not_sent(policy, task):
    recorder = Recording(policy)
    params = SamplingParams(max_tokens=8, seed=0)
    prompts = [task.prompt(p) for p in task.problems[:3]]

    async def go() -> None:
        shared = CoalescingGenerator(recorder, in_flight=1)
        first = asyncio.ensure_future(shared.generate(prompts[:1], params))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(shared.generate([p], params)) for p in prompts[1:]]
        await asyncio.sleep(0)
        for call in waiting:
            call.cancel()
        await first
        await asyncio.sleep(0.05)

    run_sync(go())
    assert recorder.calls == [(1, 1)]


def test_single_hands_on_its_text_as_it_is_generated(policy, prm, task, easy):
    pieces: list[str] = []
    single = strategy("single", policy, None, task)
    [result] = run_sync(
        single.arun_many(easy[:1], 1, on_text=lambda index, piece: pieces.append(piece))
    )
    assert len(pieces) > 3 and "".join(pieces) == result.chosen.text
    assert result.cost.samples == 1 and result.cost.generated_tokens == result.chosen.num_tokens
    assert result.answer == run_sync(single.arun(easy[0])).answer


def test_first_finish_hands_on_each_racing_samples_text_as_it_is_generated(policy, task, hard):
    texts: dict[tuple[int, int], str] = {}

    def on_sample(index: int, sample: int, piece: str) -> None:
        texts[index, sample] = texts.get((index, sample), "") + piece

    race = strategy("first_finish", policy, None, task, chunk_tokens=8)
    results = run_sync(race.arun_many(hard, 4, on_sample=on_sample))
    for index, result in enumerate(results):
        # Every round of every sample arrived, in order: each sample's text, whole.
        assert [texts[index, s] for s in range(4)] == [c.text for c in result.candidates]
    unwatched = run_sync(race.arun_many(hard, 4))
    assert [r.candidates for r in results] == [r.candidates for r in unwatched]


def test_search_traces_are_trees(policy, prm, task, easy):
    for name in ("beam_search", "dvts", "particle_filter", "mcts", "lookahead"):
        result = strategy(name, policy, prm, task).run(easy[0], 8)
        ids = [node.id for node in result.trace]
        assert ids == list(range(len(ids)))
        assert result.trace[0].kind == "problem" and result.trace[0].parent is None
        assert all(0 <= n.parent < n.id for n in result.trace[1:])
        assert any(n.score is not None for n in result.trace)
        # The chosen candidate's steps are the texts on the path to its node.
        path, node = [], result.chosen_node
        while node:
            path.append(result.trace[node].text.strip())
            node = result.trace[node].parent
        assert [p for p in reversed(path) if p] == [s.text for s in result.chosen.steps], name


def test_systematic_resampling_keeps_counts_within_one_of_the_expectation():
    import random

    weights = [0.5, 0.25, 0.125, 0.125, 0.0]
    for seed in range(20):
        picks = systematic_resample(weights, random.Random(seed))
        assert len(picks) == 5
        for i, w in enumerate(weights):
            assert abs(picks.count(i) - 5 * w) < 1
    assert effective_sample_size([1, 1, 1, 1]) == pytest.approx(4)
    assert effective_sample_size([1, 0, 0, 0]) == pytest.approx(1)


def test_unknown_strategy_and_parameters_are_refused(policy, prm, task):
    from ponder import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("best_of_all", policy, task)
    with pytest.raises(ConfigError, match="no parameter 'beam'"):
        make_strategy("beam_search", policy, task, prm, {"beam": "4"})
    with pytest.raises(ConfigError, match="takes a whole number"):
        make_strategy("beam_search", policy, task, prm, {"beam_width": "four"})
    with pytest.raises(ConfigError, match="needs a verifier"):
        make_strategy("beam_search", policy, task)
    with pytest.raises(ConfigError, match="aggregation"):
        make_strategy("best_of_n", policy, task, prm, {"aggregation": "median"})
