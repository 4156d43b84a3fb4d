"""The program-made checks the embedded verifier and the policy's revisions learn to write."""

from __future__ import annotations

import random
import re

import pytest

from ponder.models.arith_checks import (
    columns,
    expected_step,
    judge_text,
    judgements,
    revision_target,
    slipped_check,
)
from ponder.models.arith_policy import synthetic_attempt
from ponder.tasks.arith import GRID, SOLUTION_MARKER, apply, make_problem, parse_question

COLUMN = re.compile(r"^(\d+)(?:([+*-])(\d+))?(?:([+-])(\d+))?(?:-(\d+))?=(\d+)$")


def redo(a: int, op: str, b: int) -> int:
    """The result the columns of `a op b` spell, each column's arithmetic checked on the way."""
    digits, carry = [], 0
    for column in columns(a, op, b).split(" "):
        left, right = column.split("=")
        total = eval(left)  # only digits and + - * here
        assert total == int(right), f"{column} is miscomputed"
        if op == "-":
            digits.append(int(right))
        else:
            digits.append(int(right) % 10)
            carry = int(right) // 10
    number = int("".join(map(str, reversed(digits))))
    if op != "-" and carry:
        number += carry * 10 ** len(digits)
    return number


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_columns_spell_the_result(op):
    rng = random.Random(op)
    for _ in range(500):
        a = rng.randint(0, 999)
        b = rng.randint(0, 9) if op == "*" else rng.randint(0, min(99, a if op == "-" else 99))
        assert redo(a, op, b) == apply(a, op, b), columns(a, op, b)


def test_columns_show_carries_and_borrows():
    assert columns(37, "+", 48) == "7+8=15 3+4+1=8"
    assert columns(85, "-", 27) == "15-7=8 8-1-2=5"
    assert columns(100, "-", 1) == "10-1=9 10-1-0=9 1-1-0=0"
    assert columns(85, "*", 6) == "5*6=30 8*6+3=51"
    assert columns(5, "+", 37) == "5+7=12 0+3+1=4"


def test_the_check_redoes_the_step_that_should_come_next():
    question = "Start with 37. Add 48. Multiply by 6."
    assert expected_step(question, []) == ("37 + 48 = 85", "37+48: 7+8=15 3+4+1=8 = 85")
    line, check = expected_step(question, ["37 + 48 = 86"])  # goes on from what is written
    assert line == "86 * 6 = 516" and check.startswith("86*6:")
    assert expected_step(question, ["37 + 48 = 85", "85 * 6 = 510"]) == (
        "The answer is 510.",
        "answer 510",
    )
    assert expected_step(question, ["a line without a number"]) is None


def test_verdicts_are_local_and_catch_every_kind_of_slip():
    rng = random.Random(0)
    caught = 0
    for _ in range(300):
        question, gold, _ = make_problem(rng, rng.choice(GRID))
        assert all(right for _, right in judgements(question, gold))
        attempt = synthetic_attempt(question, rng)
        verdicts = [right for _, right in judgements(question, attempt)]
        if attempt != gold:
            padded = [*attempt, *[""] * len(gold)]
            first = next(i for i, (a, g) in enumerate(zip(padded, gold, strict=False)) if a != g)
            if first < len(attempt):
                assert not verdicts[first], (question, attempt)
                assert all(verdicts[:first])
                caught += 1
    assert caught > 150


def test_synthetic_attempts_carry_on_from_what_they_wrote():
    rng = random.Random(1)
    wrong = lines = jumps = 0
    for _ in range(300):
        question, gold, _ = make_problem(rng, rng.choice(GRID))
        attempt = synthetic_attempt(question, rng)
        assert attempt[-1].startswith("The answer is ")
        wrong += attempt != gold
        value, _ = parse_question(question)
        for line in attempt[:-1]:
            left, _, _, _, result = line.split(" ")
            lines += 1
            jumps += int(left) != value  # only the slip that miscopies the value carried in
            value = int(result)
    assert wrong > 280, "synthetic attempts are wrong (the right ones are the gold solutions)"
    assert jumps / lines < 0.01


def test_the_verifier_text_interleaves_steps_and_the_checks_it_writes():
    question = "Start with 37. Add 48."
    text, spans = judge_text(question, ["37 + 48 = 84", "The answer is 84."])
    assert text == (
        "Problem: Start with 37. Add 48.\nSolution:\n"
        "37+48: 7+8=15 3+4+1=8 = 85 -> 37 + 48 = 84 ки-\n"
        "answer 84 -> The answer is 84. ки+\n"
    )
    assert spans[-1] == (len(text), -1), "after an answer it writes only the end"
    written = [text[a:b] for a, b in spans[:-1]]
    assert written == ["37+48: 7+8=15 3+4+1=8 = 85 ->", "-\n", "answer 84 ->", "+\n"]
    partial, spans = judge_text(question, ["37 + 48 = 85"])
    assert partial.endswith("ки+\nanswer 85 ->"), "a partial solution: the next step's check"
    assert partial[spans[-1][0] : spans[-1][1]] == "answer 85 ->"


def test_a_slipped_check_stays_in_the_text_but_is_not_learned():
    question = "Start with 37. Add 48. Multiply by 6."
    steps = ["37 + 48 = 85", "85 * 6 = 510", "The answer is 510."]
    clean, clean_spans = judge_text(question, steps)
    text, spans = judge_text(question, steps, random.Random(0), check_slips=1.0)
    lines = text.split("\n")[2:5]
    for line, want in zip(lines, clean.split("\n")[2:5], strict=True):
        check, wanted = line.split(" ->")[0], want.split(" ->")[0]
        assert check != wanted and len(check) == len(wanted), "one computed digit changed"
        assert check.partition(":")[1] == "" or check.split(":")[0] == wanted.split(":")[0], (
            "copied operands are kept"
        )
    assert spans == [(len(text), -1)], "no slipped check nor its verdict is a target"
    text, spans = judge_text(question, steps, random.Random(0), check_slips=0.0)
    assert (text, spans) == (clean, clean_spans)
    partial, spans = judge_text(question, steps[:1], random.Random(0), check_slips=1.0)
    assert partial[spans[-1][0] : spans[-1][1]] == "85*6: 5*6=30 8*6+3=51 = 510 ->", (
        "the next check goes on from the step's value, never from the slipped check"
    )
    assert slipped_check("?", random.Random(0)) == "?"


def test_right_steps_can_be_targets_after_their_check():
    question = "Start with 37. Add 48. Multiply by 6."
    text, spans = judge_text(question, ["37 + 48 = 85", "85 * 6 = 520"], learn_steps=True)
    assert [text[a:b] for a, b in spans] == [
        "37+48: 7+8=15 3+4+1=8 = 85 ->",
        " 37 + 48 = 85",
        "+\n",
        "85*6: 5*6=30 8*6+3=51 = 510 ->",
        "-\n",  # a wrong step is never a target: the verifier must not learn to write it
        "answer 520 ->",
    ]


def test_a_revision_checks_up_to_the_first_failing_step_then_writes_the_right_solution():
    question = "Start with 37. Add 48. Multiply by 6."
    gold = ["37 + 48 = 85", "85 * 6 = 510", "The answer is 510."]
    wrong = ["37 + 48 = 85", "85 * 6 = 520", "The answer is 520."]
    target = revision_target(question, wrong, gold)
    checks, _, solution = target.partition(SOLUTION_MARKER)
    assert checks == (
        "37+48: 7+8=15 3+4+1=8 = 85 -> 37 + 48 = 85 ки+\n"
        "85*6: 5*6=30 8*6+3=51 = 510 -> 85 * 6 = 520 ки-\n"
    )
    assert solution == "\n".join(gold)
    kept = revision_target(question, gold, gold)
    assert kept.count("ки+") == 3 and kept.endswith(SOLUTION_MARKER + "\n".join(gold))
