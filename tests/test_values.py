"""ponder's values and parameter objects validate themselves and serialise to JSON."""

from __future__ import annotations

import json

import pytest

from ponder import Candidate, ConfigError, Cost, Message, Prompt, Result, SamplingParams, Step


def test_prompt_needs_exactly_one_form():
    with pytest.raises(ConfigError):
        Prompt()
    with pytest.raises(ConfigError):
        Prompt(text="a", messages=(Message("user", "b"),))
    with pytest.raises(ConfigError):
        Prompt.chat([])
    assert Prompt.raw("a").continued("b").continued("c").continuation == "bc"


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 0},
        {"max_tokens": 0},
        {"temperature": -1},
        {"top_p": 0},
        {"top_p": 1.5},
        {"stop": ("",)},
        {"logprobs": 21},
        {"logprobs": -1},
    ],
)
def test_sampling_params_reject_nonsense(bad):
    with pytest.raises(ConfigError):
        SamplingParams(**bad)


def test_sampling_params_accept_a_single_stop_string():
    assert SamplingParams(stop="\n").stop == ("\n",)
    assert SamplingParams(stop=["a", "b"]).stop == ("a", "b")


def test_costs_add_field_by_field():
    total = Cost(calls=1, generated_tokens=5, flops=1.5) + Cost(calls=2, verifier_tokens=3)
    assert total == Cost(calls=3, generated_tokens=5, verifier_tokens=3, flops=1.5)


def test_result_serialises_to_json():
    candidate = Candidate(
        text="1 + 1 = 2\n\n\\boxed{2}",
        steps=(Step("1 + 1 = 2", 0.9), Step("\\boxed{2}")),
        answer="2",
        num_tokens=9,
        scores={"prm_min": 0.9},
    )
    result = Result("single", "2", candidate, (candidate,), Cost(calls=1))
    decoded = json.loads(json.dumps(result.to_dict()))
    assert decoded["chosen"]["steps"][0] == {"text": "1 + 1 = 2", "score": 0.9}
    assert decoded["cost"]["calls"] == 1
