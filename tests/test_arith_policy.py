"""The arith policy's training data and training command (a few steps, not the full run)."""

from __future__ import annotations

import itertools
import random

from ponder import Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.models.arith_policy import PROMPT, corrupt, examples, train
from ponder.tasks.arith import GRID, make_problem, split_of


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


def test_the_training_command_writes_a_loadable_model(tmp_path):
    out = tmp_path / "policy"
    train(out, steps=2, seed=0, batch=4)
    assert (out / "training_log.json").is_file()
    generator = TransformersGenerator(out)
    prompt = Prompt.raw(PROMPT.format(question="Start with 3. Add 4."))
    [generation] = run_sync(generator.generate([prompt], SamplingParams(max_tokens=8, seed=0)))
    assert generation.completions[0].num_tokens >= 1
