"""A task: problems, how to prompt a model with one, and how to grade what it answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.tasks.extract import extract_answer
from ponder.tasks.grading import MathGrader
from ponder.types import Candidate, Completion, Message, Prompt, Step


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: an id, the question, the gold answer (None when unknown), extra fields."""

    id: str
    question: str
    answer: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


PROMPT_FORMAT_FILE = "ponder_prompt.json"


@dataclass(frozen=True, slots=True)
class PromptFormat:
    """How a question becomes a prompt.

    `template` has one `{question}` field. With `chat=True` the rendered template
    is the user message (after `system`, if any); with `chat=False` it is raw text
    for a base model to continue.

    `revision` is the prompt that asks for a new attempt after an earlier one
    (sequential revision, Snell et al. 2024), with `{question}` and `{attempt}`
    fields; `None` means a generic instruction after the question.
    `step_separator` is the text between the model's reasoning steps when the
    format fixes one (the arith policy writes one step per line).
    `hint` is what budget forcing appends when the model stops, for a model
    trained to go on after it (the arith policy revises its solution after
    "Revision:"); `None` leaves the strategy's own hint.
    `final_marker` is what a model writes between its reasoning and its final
    solution (the arith policy's revision checks the earlier steps, then writes
    "Solution:" and a corrected solution): a candidate's steps are read after
    the marker's last occurrence, so a verifier judges the solution, not the
    reasoning before it.
    """

    template: str = "{question}"
    chat: bool = True
    system: str | None = None
    revision: str | None = None
    step_separator: str | None = None
    hint: str | None = None
    final_marker: str | None = None

    def __post_init__(self) -> None:
        if "{question}" not in self.template:
            raise ConfigError("a prompt template needs a {question} field")
        if self.revision is not None and not all(
            f in self.revision for f in ("{question}", "{attempt}")
        ):
            raise ConfigError("a revision template needs {question} and {attempt} fields")
        if self.hint is not None and not self.hint.strip():
            raise ConfigError("a prompt format's hint must not be blank")
        if self.final_marker is not None and not self.final_marker.strip():
            raise ConfigError("a prompt format's final marker must not be blank")

    def final_part(self, text: str) -> str:
        """The final solution in `text`: what follows the last `final_marker` (all without one)."""
        if self.final_marker is None:
            return text
        return text.rpartition(self.final_marker)[2]

    @classmethod
    def of_folder(cls, folder: Path) -> PromptFormat | None:
        """The format a model folder declares in `ponder_prompt.json`, if it has one.

        A model trained on one prompt layout (ponder's arith policy, say) states
        it there, so that it is prompted the way it was trained by default.
        """
        path = Path(folder) / PROMPT_FORMAT_FILE
        return cls.of_file(path) if path.is_file() else None

    @classmethod
    def of_file(cls, path: Path) -> PromptFormat:
        """The format a `ponder_prompt.json` file (under any name) states."""
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid prompt format: {exc}") from None

    def save(self, folder: Path) -> None:
        """Declare this format in a model folder, for `of_folder` to find."""
        (Path(folder) / PROMPT_FORMAT_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    def render(self, question: str) -> Prompt:
        return self._prompt(self.template.format(question=question))

    def render_revision(self, question: str, attempt: str) -> Prompt:
        """The prompt for a new attempt at `question` after the earlier `attempt`."""
        if self.revision is not None:
            return self._prompt(self.revision.format(question=question, attempt=attempt.strip()))
        generic = GENERIC_REVISION if self.chat else GENERIC_RAW_REVISION
        text = self.template.format(question=question) + generic.format(attempt=attempt.strip())
        return self._prompt(text)

    def _prompt(self, text: str) -> Prompt:
        if not self.chat:
            return Prompt.raw(text)
        messages = [Message("system", self.system)] if self.system else []
        return Prompt.chat([*messages, Message("user", text)])


GENERIC_REVISION = (
    "\n\nHere is an earlier attempt at this problem. It may contain mistakes.\n\n"
    "{attempt}\n\nWrite a new, complete solution, correcting any mistakes."
)
GENERIC_RAW_REVISION = (
    " {attempt}\n\nThe solution above may contain mistakes. A new, complete solution:\n"
)


MATH_CHAT = PromptFormat(
    "Solve the following problem step by step. Put your final answer within \\boxed{{}}.\n\n"
    "{question}"
)
MATH_RAW = PromptFormat("Problem: {question}\nSolution:", chat=False)

Extractor = Callable[[str], "str | None"]
Grader = Callable[["str | None", str], bool]


@dataclass(frozen=True)
class Task:
    """Problems plus the prompt format, step boundary, answer extractor and grader that fit them.

    `step_separator` is the text between reasoning steps: step-level search stops
    generation on it, and candidates are split on it.
    """

    name: str
    problems: Sequence[Problem]
    prompt_format: PromptFormat = MATH_CHAT
    step_separator: str = "\n\n"
    extractor: Extractor = extract_answer
    grader: Grader = field(default_factory=MathGrader)

    def prompt(self, problem: Problem) -> Prompt:
        return self.prompt_format.render(problem.question)

    def candidate(self, completion: Completion, prefix: str = "") -> Candidate:
        """A completion, after a partial solution `prefix`, as a candidate with steps and answer.

        The steps are those of the final solution (`PromptFormat.final_part`).
        """
        text = prefix + completion.text
        final = self.prompt_format.final_part(text)
        steps = tuple(Step(s) for s in final.split(self.step_separator) if s.strip())
        return Candidate(
            text=text,
            steps=steps,
            answer=self.extractor(text),
            num_tokens=completion.num_tokens,
            finish_reason=completion.finish_reason,
        )

    def split_steps(self, text: str) -> tuple[str, ...]:
        """The steps of a solution text (its final part): split at the separator, stripped,
        empty ones dropped."""
        final = self.prompt_format.final_part(text)
        return tuple(s.strip() for s in final.split(self.step_separator) if s.strip())

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        if problem.answer is None:
            raise ConfigError(f"problem {problem.id} has no gold answer to grade against")
        return self.grader(answer, problem.answer)

    def with_format(self, prompt_format: PromptFormat) -> Task:
        """The task prompted by `prompt_format` (and split at its steps, if it fixes them)."""
        separator = prompt_format.step_separator or self.step_separator
        return replace(self, prompt_format=prompt_format, step_separator=separator)
