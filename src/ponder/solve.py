"""`solve`: one question, one model, one strategy, one answer, and what it cost."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ponder.budget import Budget
from ponder.errors import ConfigError
from ponder.generators import Generator, load_generator
from ponder.strategies import make_strategy
from ponder.strategies.registry import needs_verifier
from ponder.sync import run_sync
from ponder.tasks import MATH_CHAT, MATH_RAW, Problem, PromptFormat, Task
from ponder.types import Result
from ponder.verifiers import Verifier, load_verifier


def default_format(generator: Generator) -> PromptFormat:
    """How to prompt `generator` when nobody says.

    The format its model folder declares (`ponder_prompt.json`, as the embedded
    arith policy does), else chat prompts for models with a chat template and
    raw prompts for base models.
    """
    folder = generator.folder
    if folder is None:  # a served model: the server applies its chat template
        return MATH_CHAT
    declared = PromptFormat.of_folder(folder)
    if declared is not None:
        return declared
    return MATH_CHAT if has_chat_template(folder) else MATH_RAW


def has_chat_template(folder: Path) -> bool:
    """Whether the tokenizer in a model folder has a chat template (in its own file, as
    transformers writes it now, or in tokenizer_config.json, as it did before)."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("chat_template"))


def question_task(prompt_format: PromptFormat) -> Task:
    """A task for questions without gold answers, in `prompt_format` (and its step separator)."""
    return Task(
        name="question",
        problems=(),
        prompt_format=prompt_format,
        step_separator=prompt_format.step_separator or "\n\n",
    )


async def asolve(
    question: str,
    generator: Generator,
    *,
    strategy: str = "single",
    budget: Budget | int | None = None,
    verifier: Verifier | None = None,
    prompt_format: PromptFormat | None = None,
    params: Mapping[str, str] | Any = None,
    seed: int | None = 0,
) -> Result:
    """Answer `question` with `generator` and `strategy` at `budget` (async)."""
    if not question.strip():
        raise ConfigError("the problem is empty: give the question to solve")
    task = question_task(prompt_format or default_format(generator))
    chosen = make_strategy(strategy, generator, task, verifier, params, seed=seed)
    return await chosen.arun(Problem(id="question", question=question), budget)


def solve(
    question: str,
    model: str | Path | Generator | None = None,
    *,
    strategy: str = "single",
    budget: Budget | int | None = None,
    verifier: str | Path | Verifier | None = None,
    prompt_format: PromptFormat | None = None,
    params: Mapping[str, str] | Any = None,
    seed: int | None = 0,
) -> Result:
    """Answer `question` with `model` (a model folder, a server URL, or a Generator).

    With no model, ponder's embedded arith policy answers; a strategy that needs
    a verifier then gets the embedded arith verifier unless `verifier` says otherwise.
    """
    generator = model if isinstance(model, Generator) else load_generator(model)
    if verifier is None and model is None and needs_verifier(strategy, params):
        verifier = load_verifier(None)
    elif verifier is not None and not isinstance(verifier, Verifier):
        verifier = load_verifier(verifier)
    return run_sync(
        asolve(
            question,
            generator,
            strategy=strategy,
            budget=budget,
            verifier=verifier,
            prompt_format=prompt_format,
            params=params,
            seed=seed,
        )
    )
