"""The arith task: deterministic, disjoint splits, right gold solutions, exact step labels."""

from __future__ import annotations

import random
import re

import pytest

from ponder import ConfigError
from ponder.tasks import extract_answer, load_task
from ponder.tasks.arith import (
    GRID,
    MAX_VALUE,
    Difficulty,
    arith_problems,
    integer_grader,
    make_problem,
    split_of,
    step_labels,
)

LINE = re.compile(r"^(\d+) ([+\-*]) (\d+) = (\d+)$")


def test_problems_are_a_pure_function_of_split_and_seed():
    assert arith_problems("test", 40) == arith_problems("test", 40)
    assert arith_problems("test", 40) != arith_problems("test", 40, seed=1)
    assert arith_problems("test", 500)[:40] == arith_problems("test", 40)


def test_splits_never_share_a_problem():
    questions = {
        s: {p.question for p in arith_problems(s, n)}
        for s, n in [("train", 4000), ("dev", 500), ("test", 500)]
    }
    assert not questions["train"] & questions["test"]
    assert not questions["train"] & questions["dev"]
    assert not questions["dev"] & questions["test"]
    assert all(split_of(q) == "test" for q in questions["test"])
    assert len(questions["test"]) == 500, "problems within a split are distinct"


@pytest.mark.parametrize("difficulty", GRID[::5])
def test_gold_solutions_compute_the_chain_the_question_states(difficulty):
    rng = random.Random(0)
    for _ in range(30):
        question, lines, answer = make_problem(rng, difficulty)
        sentences = question.split(". ")
        value = int(sentences[0].removeprefix("Start with ").rstrip("."))
        assert len(lines) == difficulty.steps + 1
        for sentence, line in zip(sentences[1:], lines[:-1], strict=True):
            left, op, right, result = LINE.fullmatch(line).groups()
            assert int(left) == value
            assert right in sentence
            assert (
                int(result)
                == {"+": value + int(right), "-": value - int(right), "*": value * int(right)}[op]
            )
            if op != "*":
                assert len(right) <= difficulty.digits
            else:
                assert difficulty.multiply and len(right) == 1
            value = int(result)
            assert 0 <= value <= MAX_VALUE
        assert lines[-1] == f"The answer is {answer}." and value == answer


def test_the_task_grades_its_gold_solutions_right_and_others_wrong():
    task = load_task("arith", split="test", limit=200)
    assert len(task.problems) == 200
    for problem in task.problems:
        solution = problem.metadata["solution"]
        assert task.is_correct(extract_answer(solution), problem)
        assert not task.is_correct(str(int(problem.answer) + 1), problem)
    prompt = task.prompt(task.problems[0])
    assert not prompt.is_chat
    assert prompt.text == f"Problem: {task.problems[0].question}\nSolution:\n"


def test_step_labels_mark_the_first_wrong_step_and_all_after_it():
    problem = next(p for p in arith_problems("dev", 50) if p.metadata["difficulty"]["steps"] >= 3)
    lines = problem.metadata["solution"].split("\n")
    assert step_labels(problem, problem.metadata["solution"]) == [True] * len(lines)
    wrong = [*lines[:1], lines[1].replace("=", "= 1"), *lines[2:]]
    assert step_labels(problem, "\n".join(wrong)) == [True] + [False] * (len(lines) - 1)
    assert step_labels(problem, "  " + lines[0] + "\n\n" + lines[1]) == [True, True]
    assert step_labels(problem, "\n".join([*lines, "extra"])) == [True] * len(lines) + [False]


@pytest.mark.parametrize(
    ("answer", "gold", "right"),
    [
        ("385", "385", True),
        ("385.", "385", True),
        ("1,255", "1255", True),
        (" 7 ", "7", True),
        ("386", "385", False),
        ("3.85", "385", False),
        ("abc", "1", False),
        (None, "1", False),
    ],
)
def test_integer_grader(answer, gold, right):
    assert integer_grader(answer, gold) is right


@pytest.mark.parametrize(
    "knobs", [(0, 1, False), (9, 1, False), (1, 0, False), (1, 3, False), (1, 1, 2)]
)
def test_difficulty_knobs_are_validated(knobs):
    with pytest.raises(ConfigError):
        Difficulty(*knobs)


def test_unknown_split_and_task():
    with pytest.raises(ConfigError, match="unknown arith split"):
        arith_problems("validation", 3)
    with pytest.raises(ConfigError, match="unknown task"):
        load_task("nope")
