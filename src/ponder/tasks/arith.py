"""`arith`: multi-step integer arithmetic, ponder's own test bed for test-time scaling.

A problem is a chain of operations on one running value, stated in words; its
gold solution does one operation per line and ends with a fixed answer line:

    Problem: Start with 37. Add 48. Multiply by 6. Subtract 125.
    Solution:
    37 + 48 = 85
    85 * 6 = 510
    510 - 125 = 385
    The answer is 385.

The right solution is unique, so a step is right exactly when it and every
step before it match the gold lines; `step_labels` says so for any attempt.
Difficulty has three knobs: the number of operations, the digits of the added
and subtracted operands, and the digits of multipliers (0: no multiplication).
Values stay non-negative and below a million. Problems are a pure function of
the split and seed. The split of a question is fixed by a hash of its text, so
train, dev and test never share a problem whatever their sizes.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import asdict, dataclass

from ponder.errors import ConfigError
from ponder.tasks.base import Problem, PromptFormat, Task

SPLITS = ("train", "dev", "test")
MAX_STEPS = 6
MAX_VALUE = 999_999
ARITH_FORMAT = PromptFormat("Problem: {question}\nSolution:\n", chat=False)
# Sequential revision (Snell et al. 2024): the policy writes a new solution after an earlier one.
REVISION_TEMPLATE = "Problem: {question}\nAttempt:\n{attempt}\nRevision:\n"
STEP_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class Difficulty:
    """The knobs of one problem: operations, operand digits, multiplier digits (0: none)."""

    steps: int
    digits: int
    mul_digits: int

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if not 1 <= self.digits <= 3:
            raise ConfigError(f"digits must be in 1..3, got {self.digits}")
        if not 0 <= self.mul_digits <= 2:
            raise ConfigError(f"mul_digits must be in 0..2, got {self.mul_digits}")


GRID = tuple(
    Difficulty(s, d, m)
    for s, d, m in itertools.product(range(1, MAX_STEPS + 1), range(1, 4), range(3))
)


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def _multiplier(rng: random.Random, digits: int) -> int:
    return rng.randint(2, 9) if digits == 1 else rng.randint(10, 99)


def make_problem(rng: random.Random, difficulty: Difficulty) -> tuple[str, list[str], int]:
    """A question, its gold solution lines (answer line last) and its answer."""
    value = _operand(rng, difficulty.digits)
    sentences, lines = [f"Start with {value}."], []
    for _ in range(difficulty.steps):
        choices = ["+", "-"] if value > 0 else ["+"]
        if difficulty.mul_digits and value * 10**difficulty.mul_digits <= MAX_VALUE:
            choices.append("*")
        op = rng.choice(choices)
        if op == "*":
            operand = _multiplier(rng, difficulty.mul_digits)
        else:
            operand = _operand(rng, difficulty.digits)
            if op == "+" and value + operand > MAX_VALUE:
                op = "-"
            if op == "-" and operand > value:  # stay non-negative, without piling up zeros
                operand = rng.randint(0, value)
        result = {"+": value + operand, "-": value - operand, "*": value * operand}[op]
        verb = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}[op]
        sentences.append(verb.format(operand))
        lines.append(f"{value} {op} {operand} = {result}")
        value = result
    lines.append(f"The answer is {value}.")
    return " ".join(sentences), lines, value


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
