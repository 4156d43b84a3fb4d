"""Your own problems: a local JSON Lines, CSV or Parquet file as a task.

The file is read with `datasets` (its packaged `json`, `csv` and `parquet`
builders, from the local file only: nothing is downloaded). Each row is a
problem: its question and gold answer from named columns, its id from an id
column when the file has one (else `<file stem>-<row>`). Problem ids seed the
samples, so a file that keeps a benchmark's ids gets the same samples, answers
and accuracy as the benchmark itself.

How answers are graded is chosen by name (`GRADERS`, or `regex:PATTERN`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError, DatasetError
from ponder.tasks.arith import integer_grader
from ponder.tasks.base import MATH_CHAT, Extractor, Grader, Problem, Task
from ponder.tasks.extract import extract_answer
from ponder.tasks.grading import MathGrader

# The `datasets` builder that reads each kind of file.
BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
GRADERS = ("math", "integer", "exact", "regex:PATTERN")


def is_data_file(spec: str) -> bool:
    """Whether a task named `spec` is a data file (by its suffix) rather than a known task."""
    return Path(spec).suffix.lower() in BUILDERS


def fingerprint(path: str | Path) -> str:
    """The file's content hash: a resumed run refuses a file that changed under it."""
    digest = hashlib.sha256()
    with Path(path).expanduser().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class FileFields:
    """How a data file's rows become problems and how their answers are graded.

    `grader`: "math" (math-verify: equal as numbers, sets, expressions...),
    "integer" (equal as integers), "exact" (equal as text, stripped), or
    "regex:PATTERN" (the answer is the last match of PATTERN in the solution,
    its first group if it has one, compared with the gold answer as text).
    """

    question: str = "question"
    answer: str = "answer"
    id: str = "id"
    grader: str = "math"

    def __post_init__(self) -> None:
        grading(self.grader)  # a bad grader or pattern fails here, before any work


def grading(spec: str) -> tuple[Extractor, Grader]:
    """The answer extractor and grader a `--grader` spec names."""
    if spec == "math":
        return extract_answer, MathGrader()
    if spec == "integer":
        return extract_answer, integer_grader
    if spec == "exact":
        return extract_answer, _exact
    if spec.startswith("regex:"):
        pattern = spec.removeprefix("regex:")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"--grader regex:{pattern} is not a valid pattern: {exc}") from None
        if not pattern:
            raise ConfigError("--grader regex: needs a pattern after the colon")
        return _LastMatch(compiled), _exact
    raise ConfigError(f"unknown grader {spec!r}; use one of {', '.join(GRADERS)}")


def _exact(answer: str | None, gold: str) -> bool:
    return answer is not None and answer.strip() == gold.strip()


@dataclass(frozen=True, slots=True)
class _LastMatch:
    """The last match of a pattern in a solution (its first group, if it has groups)."""

    pattern: re.Pattern[str]

    def __call__(self, text: str) -> str | None:
        matches = list(self.pattern.finditer(text))
        if not matches:
            return None
        found = matches[-1]
        return (found.group(1) if self.pattern.groups else found.group(0)).strip()


def load_file_task(
    path: str | Path, fields: FileFields = FileFields(), *, limit: int | None = None
) -> Task:
    """The problems of a local .jsonl/.json/.csv/.parquet file as a task named after the file."""
    file = Path(path).expanduser()
    builder = BUILDERS.get(file.suffix.lower())
    if builder is None:
        raise ConfigError(f"{file}: a data file ends in {', '.join(BUILDERS)}")
    if not file.is_file():
        raise DatasetError(f"data file not found: {file}")
    rows = _read(file, builder)
    columns = set(rows.column_names) if rows is not None else set()
    for what, name in (("question", fields.question), ("answer", fields.answer)):
        if rows is not None and name not in columns:
            raise DatasetError(
                f"{file} has no column {name!r} (--{what}-field); its columns: "
                + ", ".join(sorted(columns))
            )
    if rows is None or len(rows) == 0:
        raise DatasetError(f"{file} holds no problems")
    extractor, grader = grading(fields.grader)
    problems = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        problems.append(_problem(file, row, index, fields))
    return Task(
        name=file.stem,
        problems=tuple(problems),
        prompt_format=MATH_CHAT,
        extractor=extractor,
        grader=grader,
    )


def _problem(file: Path, row: dict[str, Any], index: int, fields: FileFields) -> Problem:
    question, answer = row[fields.question], row[fields.answer]
    if question is None or not str(question).strip():
        raise DatasetError(f"{file}: row {index} has an empty {fields.question!r}")
    if answer is None or not str(answer).strip():
        raise DatasetError(f"{file}: row {index} has an empty {fields.answer!r}")
    has_id = row.get(fields.id) is not None
    metadata = {
        k: v for k, v in row.items() if k not in (fields.question, fields.answer, fields.id)
    }
    return Problem(
        id=str(row[fields.id]) if has_id else f"{file.stem}-{index}",
        question=str(question),
        answer=_text(answer),
        metadata=metadata,
    )


def _text(value: Any) -> str:
    """A gold answer as text: a whole float (a CSV column of integers with a gap) as an int."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read(file: Path, builder: str) -> Any:
    """The file's rows (a `datasets.Dataset`), or None for a file with no rows at all."""
    if file.stat().st_size == 0:
        return None
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(
            "reading a data file needs `datasets` (pip install 'ponder[datasets]')"
        ) from exc
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()  # a bad file is our error message, not its log
    try:
        return datasets.load_dataset(builder, data_files=str(file), split="train")
    except Exception as exc:  # datasets wraps parse errors of every format in its own types
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise DatasetError(f"cannot read {file} as {builder}: {cause}") from None
