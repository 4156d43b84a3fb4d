"""Program-made checks of arith steps: what the embedded verifier and the policy's revisions write.

A check redoes, digit by digit, the step that should come next, from the
question and the line before it, *before* the step is shown; the step follows
the cue "->", and the verdict after the tag says whether it is the line the
check arrived at:

    37+48: 7+8=15 3+4+1=8 = 85 -> 37 + 48 = 85 ки+
    (check: operands, columns ones first, result; cue; the step judged; tag; verdict)

Each column is one single-digit operation with its carry (or borrow), so a
small model that writes the check makes far fewer slips than one that writes
the result at once, which is what the policy does. Writing the check before
seeing the step keeps it from copying the step's slip (a checker shown the step
first learns to echo its digits). A verdict judges its step given the lines
before it (a step computed right from a wrong line is right locally); a
solution is right so far while every verdict is good, which is how the
verifier's step scores are read (`ponder.verifiers.judge`).

The checks are training targets: the verifier learns to write them after each
step, and the policy learns to write them in a revision, before its corrected
solution (`revision_target`).
"""

from __future__ import annotations

import random
import re

from ponder.tasks.arith import SOLUTION_MARKER, apply, parse_question
from ponder.verifiers.judge import JudgeFormat
from ponder.verifiers.prm import PRMFormat

TAG = "ки"
CUE = " ->"
GOOD, BAD = "+", "-"
# A text and the character spans a model learns to write in it (-1: to the end, and EOS).
Example = tuple[str, list[tuple[int, int]]]
# The verifier's layouts: with checks (a generative verifier), and without (a
# Math-Shepherd PRM reading the same model in one pass, for comparison).
JUDGE_FORMAT = JudgeFormat(
    prefix="Problem: {question}\nSolution:\n",
    step=" {step} ",
    tag=TAG,
    good=GOOD,
    bad=BAD,
    end="\n",
    cue=CUE,
)
PRM_FORMAT = PRMFormat(
    prefix="Problem: {question}\nSolution:\n",
    step="{step} " + TAG + "\n",
    tag=TAG,
    good=GOOD,
    bad=BAD,
)
_NUMBER = re.compile(r"\d+")
_COMPUTED = re.compile(r"(?:= ?|^answer )(\d+)")  # what a check computes, not what it copies


def columns(a: int, op: str, b: int) -> str:
    """`a op b` worked column by column, ones first, each column with its carry or borrow.

    "7+8=15 3+4+1=8" for 37 + 48; "15-7=8 8-1-2=5" for 85 - 27 (a column that
    borrows shows its digit plus ten, the next one subtracts the borrow);
    "5*6=30 8*6+3=51" for 85 * 6.
    """
    da = [int(d) for d in reversed(str(a))]
    db = [int(d) for d in reversed(str(b))]
    cols = []
    if op == "+":
        carry = 0
        for k in range(max(len(da), len(db))):
            x, y = _digit(da, k), _digit(db, k)
            total = x + y + carry
            cols.append(f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={total}")
            carry = total // 10
    elif op == "-":
        borrow = 0
        for k in range(len(da)):
            x, y = da[k], _digit(db, k)
            need = x - borrow < y
            top = x + 10 if need else x
            cols.append(f"{top}" + ("-1" if borrow else "") + f"-{y}={top - borrow - y}")
            borrow = int(need)
    elif op == "*":
        carry = 0
        for x in da:
            total = x * b + carry
            cols.append(f"{x}*{b}" + (f"+{carry}" if carry else "") + f"={total}")
            carry = total // 10
    else:
        raise ValueError(f"unknown operation {op!r}")
    return " ".join(cols)


def _digit(digits: list[int], k: int) -> int:
    return digits[k] if k < len(digits) else 0


def expected_step(question: str, previous: list[str]) -> tuple[str, str] | None:
    """The line that should follow `previous` and its check, or None when nothing can follow.

    The value carried in is the last number of the line before (the start
    value for the first step), as written: a check judges a step locally.
    """
    start, operations = parse_question(question)
    if previous:
        numbers = _NUMBER.findall(previous[-1])
        if not numbers:
            return None
        value = int(numbers[-1])
    else:
        value = start
    i = len(previous)
    if i < len(operations):
        op, operand = operations[i]
        result = apply(value, op, operand)
        check = f"{value}{op}{operand}: {columns(value, op, operand)} = {result}"
        return f"{value} {op} {operand} = {result}", check
    if i == len(operations):
        return f"The answer is {value}.", f"answer {value}"
    return "", "end"


def judgements(question: str, steps: list[str]) -> list[tuple[str, bool]]:
    """Each step's check and whether the step is the line its check arrived at."""
    out = []
    for i, step in enumerate(steps):
        expected = expected_step(question, steps[:i])
        if expected is None:  # the line before has no number to go on from
            out.append(("?", False))
            continue
        line, check = expected
        out.append((check, " ".join(step.split()) == line))
    return out


def judge_line(check: str, step: str, right: bool) -> str:
    """One step as the verifier reads it: its check, the cue, the step, the tag, the verdict."""
    fmt = JUDGE_FORMAT
    verdict = fmt.good if right else fmt.bad
    return check + str(fmt.cue) + fmt.step.format(step=step) + fmt.tag + verdict + fmt.end


def judge_text(
    question: str,
    steps: list[str],
    rng: random.Random | None = None,
    check_slips: float = 0.0,
    learn_steps: bool = False,
) -> Example:
    """The verifier's text for a solution and the character spans it writes itself.

    It writes each check with its cue, and each verdict with its end; after a
    last step that is not an answer, the check of the step that should follow
    (as it does for a partial solution), and after an answer, nothing more.

    With `check_slips` (and `rng`), each check is, with that probability, one
    the verifier got wrong (`slipped_check`): it stays in the text, as the
    verifier's own slip would at inference, but neither it nor the verdict
    after it is a target, and the next check still starts from the step's own
    value. So the verifier learns that a check goes on from the step, not from
    the check before it.
    """
    fmt = JUDGE_FORMAT
    text = fmt.prefix.format(question=question)
    spans: list[tuple[int, int]] = []
    for step, (check, right) in zip(steps, judgements(question, steps), strict=True):
        shown = check
        if rng is not None and check != "?" and rng.random() < check_slips:
            shown = slipped_check(check, rng)
        line = judge_line(shown, step, right)
        if shown == check:  # a slipped check and the verdict after it are not learned
            verdict = len(text) + len(line) - len(fmt.end) - 1
            written = len(text) + len(check) + len(CUE)
            spans.append((len(text), written))
            if learn_steps and right:
                spans.append((written, written + len(fmt.step.format(step=step).rstrip())))
            spans.append((verdict, len(text) + len(line)))
        text += line
    expected = expected_step(question, steps)
    if (steps and steps[-1].startswith("The answer is")) or expected is None:
        spans.append((len(text), -1))  # the end of a solution: the verifier stops
    else:
        spans.append((len(text), len(text) + len(expected[1]) + len(CUE)))
        text += expected[1] + CUE
    return text, spans


def slipped_check(check: str, rng: random.Random) -> str:
    """`check` with one digit it computed changed (a column's result, the result, or the value
    in "answer N"), as a verifier's own slip; a check with no such digit, unchanged."""
    spots = [
        position
        for match in _COMPUTED.finditer(check)
        for position in range(match.start(1), match.end(1))
    ]
    if not spots:
        return check
    at = rng.choice(spots)
    digit = rng.choice([d for d in "0123456789" if d != check[at]])
    return check[:at] + digit + check[at + 1 :]


def revision_target(question: str, attempt: list[str], gold: list[str]) -> str:
    """What the policy writes after "Revision:": the attempt's steps checked one by one up
    to the first that fails, then the marker and the right solution.

    Each line is the verifier's (`judge_line`): the check, then the attempt's
    step, then the verdict. A step that passes its check is right (every one
    before it passed too), so the right solution keeps the attempt's lines up to
    the failing one and redoes the rest; a right attempt is checked to its end
    and kept.
    """
    text = ""
    for step, (check, right) in zip(attempt, judgements(question, attempt), strict=True):
        text += judge_line(check, step, right)
        if not right:
            break
    return text + SOLUTION_MARKER + "\n".join(gold)
