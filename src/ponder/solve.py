"""`solve`: one question, one model, one strategy, one answer, and what it cost."""

from __future__ import annotations

from pathlib import Path

from ponder.budget import Budget
from ponder.errors import ConfigError
from ponder.generators import Generator, load_generator
from ponder.strategies import Single, SingleParams
from ponder.sync import run_sync
from ponder.tasks import MATH_CHAT, MATH_RAW, Problem, PromptFormat, Task
from ponder.types import Result


def default_format(generator: Generator) -> PromptFormat:
    """How to prompt `generator` when nobody says.

    The format its model folder declares (`ponder_prompt.json`, as the embedded
    arith policy does), else chat prompts for models with a chat template and
    raw prompts for base models.
    """
    folder = getattr(generator, "folder", None)
    declared = PromptFormat.of_folder(folder) if folder is not None else None
    if declared is not None:
        return declared
    tokenizer = getattr(generator, "tokenizer", None)
    if tokenizer is not None and not getattr(tokenizer, "chat_template", None):
        return MATH_RAW
    return MATH_CHAT


async def asolve(
    question: str,
    generator: Generator,
    *,
    budget: Budget | None = None,
    prompt_format: PromptFormat | None = None,
    params: SingleParams | None = None,
) -> Result:
    """Answer `question` with `generator` (async)."""
    if not question.strip():
        raise ConfigError("the problem is empty: give the question to solve")
    task = Task(
        name="question", problems=(), prompt_format=prompt_format or default_format(generator)
    )
    strategy = Single(generator, task, params)
    return await strategy.arun(Problem(id="question", question=question), budget)


def solve(
    question: str,
    model: str | Path | Generator | None = None,
    *,
    budget: Budget | None = None,
    prompt_format: PromptFormat | None = None,
    params: SingleParams | None = None,
) -> Result:
    """Answer `question` with `model`: a model folder, a server URL, or a Generator.

    With no model, ponder's embedded arith policy answers.
    """
    generator = model if isinstance(model, Generator) else load_generator(model)
    return run_sync(
        asolve(question, generator, budget=budget, prompt_format=prompt_format, params=params)
    )
