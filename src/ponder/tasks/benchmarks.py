"""Loaders for the math benchmarks: MATH-500, GSM8K and AIME 2024.

Each loads from a local JSON Lines file (or a folder holding `<split>.jsonl`),
or, when no path is given, from the Hugging Face Hub through `datasets`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError, DatasetError
from ponder.tasks.base import MATH_CHAT, Problem, Task


def _gsm8k_gold(row: Mapping[str, Any]) -> str:
    worked = str(row["answer"])
    if "####" not in worked:
        raise KeyError("answer has no '#### n' line")
    return worked.rsplit("####", 1)[1].strip().replace(",", "")


@dataclass(frozen=True, slots=True)
class Benchmark:
    """Where a benchmark lives and how its rows become problems."""

    name: str
    hub_path: str
    hub_config: str | None
    hub_split: str
    question_field: str
    gold: Callable[[Mapping[str, Any]], str]
    id_field: str | None = None
    solution_field: str = "solution"

    def problem(self, row: Mapping[str, Any], index: int) -> Problem:
        # Local copies of a benchmark do not always keep the Hub's id column.
        has_id = self.id_field is not None and self.id_field in row
        identifier = str(row[self.id_field]) if has_id else f"{self.name}-{index}"
        metadata = {k: v for k, v in row.items() if k not in (self.question_field, "answer")}
        if self.solution_field in row:  # the worked gold solution, under one name for all
            metadata["solution"] = row[self.solution_field]
        return Problem(
            id=identifier,
            question=str(row[self.question_field]),
            answer=self.gold(row),
            metadata=metadata,
        )


BENCHMARKS: dict[str, Benchmark] = {
    "math500": Benchmark(
        "math500",
        "HuggingFaceH4/MATH-500",
        None,
        "test",
        "problem",
        gold=lambda row: str(row["answer"]),
        id_field="unique_id",
    ),
    "gsm8k": Benchmark(
        "gsm8k",
        "openai/gsm8k",
        "main",
        "test",
        "question",
        gold=_gsm8k_gold,
        solution_field="answer",
    ),
    "aime2024": Benchmark(
        "aime2024",
        "HuggingFaceH4/aime_2024",
        None,
        "train",
        "problem",
        gold=lambda row: str(row["answer"]),
        id_field="id",
    ),
}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number} is not valid JSON: {exc.msg}") from None
    return rows


def _read_hub(benchmark: Benchmark) -> Iterable[Mapping[str, Any]]:
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(
            f"loading {benchmark.name} from the Hub needs `datasets` "
            "(pip install 'ponder[datasets]'),"
            " or give a local path to its JSONL file"
        ) from exc
    try:
        return datasets.load_dataset(  # type: ignore[no-any-return]
            benchmark.hub_path, benchmark.hub_config, split=benchmark.hub_split
        )
    except Exception as exc:  # network, authentication and format errors all end here
        raise DatasetError(
            f"could not load {benchmark.hub_path} from the Hub ({type(exc).__name__}: {exc}); "
            "without network access, give a local path to its JSONL file"
        ) from exc


def load_benchmark(
    name: str, path: str | Path | None = None, *, split: str = "test", limit: int | None = None
) -> Task:
    """The benchmark `name` as a Task, from `path` (a .jsonl file or a folder) or from the Hub."""
    benchmark = BENCHMARKS.get(name)
    if benchmark is None:
        raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    if path is None:
        rows: Iterable[Mapping[str, Any]] = _read_hub(benchmark)
        source = benchmark.hub_path
    else:
        file = Path(path).expanduser()
        if file.is_dir():
            file = file / f"{split}.jsonl"
        if not file.is_file():
            raise DatasetError(f"benchmark file not found: {file}")
        rows, source = _read_jsonl(file), str(file)
    problems = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        try:
            problems.append(benchmark.problem(row, index))
        except KeyError as exc:
            raise DatasetError(f"{source}: row {index} lacks the field {exc}") from None
    if not problems:
        raise DatasetError(f"{source} holds no problems")
    return Task(name=name, problems=tuple(problems), prompt_format=MATH_CHAT)
