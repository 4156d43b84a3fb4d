"""Tasks: benchmarks, prompt formats, answer extraction and grading."""

from ponder.tasks.base import MATH_CHAT, MATH_RAW, Problem, PromptFormat, Task
from ponder.tasks.benchmarks import BENCHMARKS, load_benchmark
from ponder.tasks.extract import extract_answer, last_boxed
from ponder.tasks.grading import MathGrader

__all__ = [
    "BENCHMARKS",
    "MATH_CHAT",
    "MATH_RAW",
    "MathGrader",
    "Problem",
    "PromptFormat",
    "Task",
    "extract_answer",
    "last_boxed",
    "load_benchmark",
]
