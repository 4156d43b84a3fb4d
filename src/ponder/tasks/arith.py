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
Difficulty has three knobs: the number of operations (1 to 8), the digits of
the start value and of the added and subtracted operands (1 or 2), and whether
the chain multiplies (by one digit). Values stay non-negative and below a
thousand, so every single step is small enough for a 3M-parameter model to
learn on a CPU in an hour: a problem is hard because its chain is long (each
operand must be found in the question and each step can slip), not because
one step is beyond the model. Problems are a pure function of
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
MAX_STEPS = 8
MAX_VALUE = 999
# Sequential revision (Snell et al. 2024): the policy writes a new solution after an earlier one.
REVISION_TEMPLATE = "Problem: {question}\nAttempt:\n{attempt}\nRevision:\n"
STEP_SEPARATOR = "\n"
ARITH_FORMAT = PromptFormat(
    "Problem: {question}\nSolution:\n",
    chat=False,
    revision=REVISION_TEMPLATE,
    step_separator=STEP_SEPARATOR,
)


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


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def make_problem(rng: random.Random, difficulty: Difficulty) -> tuple[str, list[str], int]:
    """A question, its gold solution lines (answer line last) and its answer."""
    value = _operand(rng, difficulty.digits)
    sentences, lines = [f"Start with {value}."], []
    for _ in range(difficulty.steps):
        choices = ["+", "-"] if value > 0 else ["+"]
        if difficulty.multiply and 2 * value <= MAX_VALUE:
            choices.append("*")
        op = rng.choice(choices)
        if op == "*":
            operand = rng.randint(2, min(9, MAX_VALUE // value)) if value else rng.randint(2, 9)
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
