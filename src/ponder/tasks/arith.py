"""`arith`: multi-step integer arithmetic, ponder's own test bed for test-time scaling.

A problem is a chain of operations on one running value, stated in words; its
gold solution does one operation per line and ends with a fixed answer line:

    Problem: Start with 37. Add 48. Multiply by 6. Subtract 25.
    Solution:
    37 + 48 = 85
    85 * 6 = 510
    510 - 25 = 485
    The answer is 485.

The right solution is unique, so a step is right exactly when it and every
step before it match the gold lines; `step_labels` says so for any attempt.

The input class: a start value from 0 to 999, then 1 to 8 operations, each
"Add N." or "Subtract N." with N from 0 to 99, or "Multiply by N." with N
from 0 to 9, such that every value along the chain stays within 0..999.
Difficulty has three knobs: the number of operations, the largest digit count
of the added and subtracted operands (1 or 2; within a problem each operand
has 1 to that many digits, and the start value up to one digit more), and
whether the chain multiplies. Every single step is small enough for a
3M-parameter model to learn on a CPU in an hour: a problem is hard because its
chain is long and its steps carry, not because one step is beyond the model.
Problems are a pure function of the split and seed. The split of a question is
fixed by a hash of its text, so train, dev and test never share a problem
whatever their sizes.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from dataclasses import asdict, dataclass

from ponder.errors import ConfigError
from ponder.tasks.base import Problem, PromptFormat, Task

SPLITS = ("train", "dev", "test")
MAX_STEPS = 8
MAX_VALUE = 999
MAX_OPERAND = 99
PROMPT = "Problem: {question}\nSolution:\n"
# Sequential revision (Snell et al. 2024): after its solution, the policy is asked for a
# revision, in which it checks the solution's steps and writes a corrected one after the
# marker. The same words after a solution make budget forcing's hint.
REVISION_MARKER = "Revision:"
SOLUTION_MARKER = "Solution:\n"
REVISION_TEMPLATE = PROMPT + "{attempt}\n" + REVISION_MARKER + "\n"
STEP_SEPARATOR = "\n"
ARITH_FORMAT = PromptFormat(
    PROMPT,
    chat=False,
    revision=REVISION_TEMPLATE,
    step_separator=STEP_SEPARATOR,
    hint=REVISION_MARKER,
    final_marker=SOLUTION_MARKER,
)
VERBS = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}


@dataclass(frozen=True, slots=True)
class Difficulty:
    """The knobs of one problem: operations, operand digits, and whether it multiplies."""

    steps: int
    digits: int
    multiply: bool

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if not 1 <= self.digits <= 2:
            raise ConfigError(f"digits must be 1 or 2, got {self.digits}")
        if not isinstance(self.multiply, bool):
            raise ConfigError(f"multiply must be True or False, got {self.multiply!r}")


GRID = tuple(
    Difficulty(s, d, m)
    for s, d, m in itertools.product(range(1, MAX_STEPS + 1), (1, 2), (False, True))
)


def _number(rng: random.Random, most_digits: int) -> int:
    """A number of 1 to `most_digits` digits, each count equally likely (0 is a 1-digit one)."""
    digits = rng.randint(1, most_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def apply(value: int, op: str, operand: int) -> int:
    """One step of a chain."""
    return {"+": value + operand, "-": value - operand, "*": value * operand}[op]


def make_problem(rng: random.Random, difficulty: Difficulty) -> tuple[str, list[str], int]:
    """A question, its gold solution lines (answer line last) and its answer."""
    value = _number(rng, difficulty.digits + 1)
    sentences, lines = [f"Start with {value}."], []
    for _ in range(difficulty.steps):
        choices = ["+", "-"] if value > 0 else ["+"]
        if difficulty.multiply and 2 * value <= MAX_VALUE:
            choices.append("*")
        op = rng.choice(choices)
        if op == "*":
            # Mostly 2..9; now and then by 1 or 0, which a person may well type.
            top = min(9, MAX_VALUE // value) if value else 9
            operand = rng.randint(0, 1) if rng.random() < 0.08 else rng.randint(2, top)
        else:
            operand = _number(rng, difficulty.digits)
            if op == "+" and value + operand > MAX_VALUE:
                op = "-"
            if op == "-" and operand > value:  # stay non-negative, without piling up zeros
                operand = rng.randint(0, value)
        result = apply(value, op, operand)
        sentences.append(VERBS[op].format(operand))
        lines.append(f"{value} {op} {operand} = {result}")
        value = result
    lines.append(f"The answer is {value}.")
    return " ".join(sentences), lines, value


_START = re.compile(r"Start with (\d+)\.")
_OPERATION = re.compile(r"(Add|Subtract|Multiply by) (\d+)\.")
_OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}


def parse_question(question: str) -> tuple[int, list[tuple[str, int]]]:
    """The start value and the operations (op, operand) an arith question states, in order."""
    start = _START.match(question.strip())
    if start is None:
        raise ConfigError(f"not an arith question (it must begin 'Start with N.'): {question!r}")
    operations = [(_OPS[verb], int(n)) for verb, n in _OPERATION.findall(question)]
    return int(start.group(1)), operations


def split_of(question: str) -> str:
    """The split a question belongs to: 5% test, 5% dev, 90% train, by a hash of its text."""
    bucket = int.from_bytes(hashlib.blake2b(question.encode(), digest_size=4).digest(), "big") % 20
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def arith_problems(split: str, count: int, seed: int = 0) -> tuple[Problem, ...]:
    """`count` distinct problems of `split`, difficulties drawn uniformly from `GRID`."""
    if split not in SPLITS:
        raise ConfigError(f"unknown arith split {split!r}; use one of {', '.join(SPLITS)}")
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    rng = random.Random(f"arith:{split}:{seed}")
    problems: list[Problem] = []
    seen: set[str] = set()
    while len(problems) < count:
        difficulty = rng.choice(GRID)
        question, lines, answer = make_problem(rng, difficulty)
        if question in seen or split_of(question) != split:
            continue
        seen.add(question)
        problems.append(
            Problem(
                id=f"arith-{split}-{seed}-{len(problems)}",
                question=question,
                answer=str(answer),
                metadata={"solution": "\n".join(lines), "difficulty": asdict(difficulty)},
            )
        )
    return tuple(problems)


def integer_grader(answer: str | None, gold: str) -> bool:
    """Exact integer equality; anything that is not an integer is wrong."""
    if answer is None:
        return False
    try:
        return int(answer.strip().rstrip(".").replace(",", "")) == int(gold)
    except ValueError:
        return False


def step_labels(problem: Problem, solution: str) -> list[bool]:
    """For each non-empty line of `solution`: True when it and all lines before it are right."""
    gold = str(problem.metadata["solution"]).split(STEP_SEPARATOR)
    labels, right_so_far = [], True
    for i, line in enumerate(s for s in solution.split(STEP_SEPARATOR) if s.strip()):
        right_so_far = right_so_far and i < len(gold) and " ".join(line.split()) == gold[i]
        labels.append(right_so_far)
    return labels


def arith_task(split: str = "test", count: int = 500, seed: int = 0) -> Task:
    """The arith task over `count` problems of `split` (test and dev: 500 fixed problems)."""
    return Task(
        name="arith",
        problems=arith_problems(split, count, seed),
        prompt_format=ARITH_FORMAT,
        step_separator=STEP_SEPARATOR,
        grader=integer_grader,
    )
