"""The arith models' training data and training commands (a few steps, not the full runs)."""

from __future__ import annotations

import itertools
import json
import random
import shutil

import pytest

from ponder import Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.models.arith_policy import (
    PROMPT,
    corrupt,
    examples,
    revision_examples,
    train,
    train_revisions,
)
from ponder.models.arith_prm import FORMAT as PRM_FORMAT
from ponder.models.arith_prm import labelled_samples
from ponder.models.arith_prm import train as train_prm
from ponder.tasks.arith import GRID, make_problem, split_of
from ponder.verifiers import CausalLMPRM, Solution


def test_corrupted_attempts_are_wrong_but_consistent_after_the_error():
    rng = random.Random(0)
    for _ in range(200):
        _, lines, answer = make_problem(rng, rng.choice(GRID))
        attempt = corrupt(lines, rng)
        assert len(attempt) == len(lines)
        first_wrong = next(i for i, (a, g) in enumerate(zip(attempt, lines, strict=True)) if a != g)
        assert first_wrong < len(lines) - 1, "a step is wrong, not only the answer line"
        value = None
        for line in attempt[first_wrong:-1]:
            left, op, operand, _, result = line.split(" ")
            if value is not None:
                assert int(left) == value, "later steps continue from the wrong value"
                ops = {
                    "+": value + int(operand),
                    "-": value - int(operand),
                    "*": value * int(operand),
                }
                assert int(result) == ops[op]
            value = int(result)
        assert attempt[-1] == f"The answer is {value}."
        assert value != answer, "+c, -c and *k (k >= 2) carry the error to the answer"


def test_training_examples_come_from_the_train_split_only():
    pairs = list(itertools.islice(examples(random.Random(1)), 2000))
    questions = [p.split("\n")[0].removeprefix("Problem: ") for p, _ in pairs]
    assert all(split_of(q) == "train" for q in questions)
    revisions = [p for p, _ in pairs if "\nAttempt:\n" in p]
    assert 0.15 < len(revisions) / len(pairs) < 0.35
    assert sum(p.startswith("Problem: ") and p.endswith("Solution:\n") for p, _ in pairs) > 1000


@pytest.fixture(scope="module")
def briefly_trained_policy(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "policy"
    train(out, steps=2, seed=0, batch=4)
    return out


def test_the_training_command_writes_a_loadable_model(briefly_trained_policy):
    out = briefly_trained_policy
    assert (out / "training_log.json").is_file()
    generator = TransformersGenerator(out)
    prompt = Prompt.raw(PROMPT.format(question="Start with 3. Add 4."))
    [generation] = run_sync(generator.generate([prompt], SamplingParams(max_tokens=8, seed=0)))
    assert generation.completions[0].num_tokens >= 1


def test_the_revision_phase_mixes_own_attempts_with_phase_one_examples():
    question, gold = "Start with 3. Add 4.", "3 + 4 = 7\nThe answer is 7."
    attempts = [
        (question, gold, "3 + 4 = 8\nThe answer is 8.", False),
        (question, gold, "3 + 4 = 7\nThe answer is 7.", True),
    ]
    pairs = list(itertools.islice(revision_examples(attempts, random.Random(0)), 2000))
    own_wrong = sum("Attempt:\n3 + 4 = 8\n" in p and c == gold for p, c in pairs) / len(pairs)
    own_right = sum("Attempt:\n3 + 4 = 7\n" in p and c == gold for p, c in pairs) / len(pairs)
    assert 0.45 < own_wrong < 0.55
    assert 0.07 < own_right < 0.13
    assert all(split_of(p.split("\n")[0].removeprefix("Problem: ")) == "train" for p, _ in pairs)


def test_the_revision_phase_fine_tunes_the_policy_in_place(briefly_trained_policy, tmp_path):
    out = tmp_path / "policy"
    shutil.copytree(briefly_trained_policy, out)
    before = (out / "model.safetensors").read_bytes()
    train_revisions(out, steps=2, seed=0, problems=2, samples=2, batch=4)
    assert (out / "model.safetensors").read_bytes() != before
    record = json.loads((out / "training_log.json").read_text())
    assert record["revision_phase"]["steps"] == 2
    assert record["revision_phase"]["attempts"] >= 1
    assert (out / "ponder_prompt.json").is_file()


def test_prm_samples_are_labelled_by_the_checker(briefly_trained_policy):
    data = labelled_samples(briefly_trained_policy, problems=3, samples=4, seed=0, max_tokens=24)
    assert data, "an untrained policy still writes something"
    for solution, labels in data:
        assert len(labels) == len(solution.steps)
        assert labels == sorted(labels, reverse=True), "once wrong, a solution stays wrong"


def test_the_prm_training_command_writes_a_prm_that_scores_steps(briefly_trained_policy, tmp_path):
    out = tmp_path / "prm"
    train_prm(
        out, briefly_trained_policy, problems=3, samples=4, steps=2, seed=0, batch=4, max_tokens=24
    )
    prm = CausalLMPRM(out)
    assert prm.format == PRM_FORMAT
    solution = Solution("Start with 3. Add 4.", ("3 + 4 = 7", "The answer is 7."))
    [verdict] = run_sync(prm.score([solution]))
    assert len(verdict.step_scores) == 2
    assert all(0 <= s <= 1 for s in verdict.step_scores)
