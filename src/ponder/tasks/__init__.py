"""Tasks: benchmarks, prompt formats, answer extraction and grading."""

from pathlib import Path

from ponder.errors import ConfigError
from ponder.tasks.arith import arith_task
from ponder.tasks.base import MATH_CHAT, MATH_RAW, Problem, PromptFormat, Task
from ponder.tasks.benchmarks import BENCHMARKS, load_benchmark
from ponder.tasks.extract import extract_answer, last_boxed
from ponder.tasks.grading import MathGrader

__all__ = [
    "BENCHMARKS",
    "MATH_CHAT",
    "MATH_RAW",
    "TASKS",
    "MathGrader",
    "Problem",
    "PromptFormat",
    "Task",
    "arith_task",
    "extract_answer",
    "last_boxed",
    "load_benchmark",
    "load_task",
]

TASKS = ("arith", *sorted(BENCHMARKS))


def load_task(
    name: str, path: str | Path | None = None, *, split: str = "test", limit: int | None = None
) -> Task:
    """A task by name: "arith" (generated; 500 problems unless `limit`) or a benchmark."""
    if name == "arith":
        if path is not None:
            raise ConfigError("the arith task is generated; it takes no path")
        return arith_task(split, limit or 500)
    if name in BENCHMARKS:
        return load_benchmark(name, path, split=split, limit=limit)
    raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
