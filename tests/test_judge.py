"""The generative verifier: checks written step by step, verdicts read from log-probabilities."""

from __future__ import annotations

import math
import shutil

import pytest

from ponder import ConfigError, ModelLoadError, run_sync
from ponder.budget import BudgetMeter
from ponder.generators.transformers import TransformersGenerator
from ponder.models import embedded_policy, embedded_verifier
from ponder.models.arith_checks import JUDGE_FORMAT
from ponder.types import Completion, TokenLogprob
from ponder.verifiers import (
    VERIFIER_FILE,
    GenerativeVerifier,
    JudgeFormat,
    Solution,
    declare_kind,
    declared_kind,
    load_verifier,
)
from ponder.verifiers.judge import JUDGE_FILE

QUESTION = "Start with 37. Add 48. Multiply by 6. Subtract 25."
RIGHT = ("37 + 48 = 85", "85 * 6 = 510", "510 - 25 = 485", "The answer is 485.")
CARRY_SLIP = ("37 + 48 = 85", "85 * 6 = 520", "520 - 25 = 495", "The answer is 495.")


def completion(tokens: list[tuple[str, list[tuple[str, float]]]]) -> Completion:
    logprobs = tuple(
        TokenLogprob(token=t, logprob=top[0][1] if top else 0.0, top=tuple(top))
        for t, top in tokens
    )
    return Completion(
        text="".join(t for t, _ in tokens),
        num_tokens=len(tokens),
        finish_reason="stop",
        logprobs=logprobs,
    )


def test_the_verdict_is_read_at_the_token_after_the_tag():
    fmt = JudgeFormat(tag="ки", good="+", bad="-")
    written = completion(
        [
            ("8", []),
            ("5", []),
            (" ", []),
            ("ки", []),
            ("-", [("-", math.log(0.7)), ("+", math.log(0.2))]),
        ]
    )
    assert fmt.verdict(written) == pytest.approx(0.2 / 0.9)
    no_tag = completion([("8", []), ("5", [])])
    assert fmt.verdict(no_tag) is None
    nothing_after = completion([("8", []), (" ки", [])])
    assert fmt.verdict(nothing_after) is None
    other = completion([("ки", []), ("?", [("?", 0.0)])])
    assert fmt.verdict(other) is None, "neither label among the alternatives: no verdict"


@pytest.mark.parametrize(
    "fields",
    [
        {"prefix": "no question"},
        {"step": "no step"},
        {"tag": " "},
        {"good": "+", "bad": " + "},
        {"end": ""},
    ],
)
def test_a_judge_format_is_validated(fields):
    with pytest.raises(ConfigError):
        JudgeFormat(**fields)


def test_a_judge_format_round_trips_through_its_file(tmp_path):
    JUDGE_FORMAT.save(tmp_path)
    assert JudgeFormat.of_folder(tmp_path) == JUDGE_FORMAT
    assert JudgeFormat.of_folder(tmp_path / "missing") is None
    (tmp_path / JUDGE_FILE).write_text("{not json")
    with pytest.raises(Exception, match="not a valid judge format"):
        JudgeFormat.of_folder(tmp_path)


@pytest.fixture(scope="module")
def judge():
    return load_verifier(embedded_verifier(), kind="judge")


def test_the_embedded_verifier_loads_as_a_judge_and_as_a_prm(judge):
    assert isinstance(judge, GenerativeVerifier)
    assert judge.format == JUDGE_FORMAT
    prm = load_verifier(embedded_verifier(), kind="prm")
    assert not isinstance(prm, GenerativeVerifier)
    [verdict] = run_sync(prm.score([Solution(QUESTION, RIGHT)]))
    assert len(verdict.step_scores) == len(RIGHT) and verdict.generated_tokens == 0


def test_a_folder_names_its_default_reading(tmp_path):
    folder = tmp_path / "verifier"
    shutil.copytree(embedded_verifier(), folder)
    (folder / VERIFIER_FILE).unlink()
    assert declared_kind(folder) is None
    assert isinstance(load_verifier(folder), GenerativeVerifier), "a judge format: a judge"
    declare_kind(folder, "prm")
    assert declared_kind(folder) == "prm"
    assert not isinstance(load_verifier(folder), GenerativeVerifier)
    assert isinstance(load_verifier(folder, kind="judge"), GenerativeVerifier)
    (folder / JUDGE_FILE).unlink()
    declare_kind(folder, "judge")
    with pytest.raises(ModelLoadError, match="has no judge format"):
        load_verifier(folder)
    (folder / VERIFIER_FILE).write_text('{"kind": "oracle"}')
    with pytest.raises(ModelLoadError, match='"prm" or "judge"'):
        load_verifier(folder)


def test_the_embedded_verifier_is_read_as_its_folder_says():
    judges = declared_kind(embedded_verifier()) == "judge"
    assert isinstance(load_verifier(), GenerativeVerifier) == judges


def test_the_judge_passes_a_right_solution_and_fails_a_carry_slip_where_it_happens(judge):
    right, slip = run_sync(judge.score([Solution(QUESTION, RIGHT), Solution(QUESTION, CARRY_SLIP)]))
    assert min(right.step_scores) > 0.9  # measured: 1.000, 0.999, 0.996, 0.994
    assert slip.step_scores[0] == right.step_scores[0], "the same first step, the same verdict"
    assert max(slip.step_scores[1:]) < 0.01, "85 * 6 = 520 fails, and so does all after it"
    assert right.outcome == right.step_scores[-1], "the outcome: every step right"
    scores = list(slip.step_scores)
    assert scores == sorted(scores, reverse=True), "a running product never rises"
    assert right.generated_tokens > 4 * len(RIGHT), "each step gets a written check"


def test_checks_of_a_prefix_are_kept_so_a_search_pays_for_new_steps_only():
    verifier = load_verifier(embedded_verifier(), kind="judge")
    meter = BudgetMeter()
    metered = meter.wrap_verifier(verifier)
    [first] = run_sync(metered.score([Solution(QUESTION, RIGHT[:2])]))
    spent = meter.cost().verifier_generated_tokens
    [longer] = run_sync(metered.score([Solution(QUESTION, RIGHT)]))
    assert longer.step_scores[:2] == first.step_scores
    assert 0 < longer.generated_tokens < spent * 2, "only the two new steps are checked"
    [again] = run_sync(metered.score([Solution(QUESTION, RIGHT)]))
    assert again.generated_tokens == 0 and again.step_scores == longer.step_scores
    assert meter.cost().verifier_generated_tokens == spent + longer.generated_tokens
    text = verifier.transcript(Solution(QUESTION, RIGHT))
    assert text is not None and text.startswith(JUDGE_FORMAT.prefix.format(question=QUESTION))
    assert text.count(JUDGE_FORMAT.tag) == len(RIGHT), "each step and the judge's verdict on it"
    assert all(f" {step} {JUDGE_FORMAT.tag}" in text for step in RIGHT)
    assert verifier.transcript(Solution(QUESTION, CARRY_SLIP)) is None, "never judged"


def test_votes_average_sampled_chains_of_checks():
    generator = TransformersGenerator(embedded_verifier())
    with pytest.raises(ConfigError, match="temperature"):
        GenerativeVerifier(generator, JUDGE_FORMAT, votes=3)
    greedy = GenerativeVerifier(generator, JUDGE_FORMAT)
    voting = GenerativeVerifier(generator, JUDGE_FORMAT, votes=4, temperature=1.0, seed=1)
    [one] = run_sync(greedy.score([Solution(QUESTION, CARRY_SLIP)]))
    [verdict] = run_sync(voting.score([Solution(QUESTION, CARRY_SLIP)]))
    assert all(0 <= s <= 1 for s in verdict.step_scores)
    assert verdict.generated_tokens > 2 * one.generated_tokens, "four chains of checks"
    again = GenerativeVerifier(generator, JUDGE_FORMAT, votes=4, temperature=1.0, seed=1)
    assert run_sync(again.score([Solution(QUESTION, CARRY_SLIP)])) == [verdict], "seeded"
    # The judge is sure of these checks: at temperature 1 two seeds can write the same chains,
    # so the seeds' difference shows where sampling is free to wander.
    hot = [
        GenerativeVerifier(generator, JUDGE_FORMAT, votes=4, temperature=4.0, seed=seed)
        for seed in (1, 2)
    ]
    first, second = (run_sync(v.score([Solution(QUESTION, CARRY_SLIP)])) for v in hot)
    assert first != second, "sampled"


def test_any_generator_can_be_a_judge_given_its_format(judge, tmp_path):
    """The policy folder declares no judge format: the verifier says what to give."""
    with pytest.raises(ConfigError, match="declares no judge format"):
        load_verifier(embedded_policy(), kind="judge")
    JUDGE_FORMAT.save(tmp_path)
    given = load_verifier(embedded_verifier(), kind="judge", format=tmp_path / JUDGE_FILE)
    solutions = [Solution(QUESTION, RIGHT), Solution(QUESTION, CARRY_SLIP)]
    mine, theirs = run_sync(given.score(solutions)), run_sync(judge.score(solutions))
    assert [v.step_scores for v in mine] == [v.step_scores for v in theirs]
    assert all(v.generated_tokens > 0 for v in mine), "its own checks, written anew"
