"""ponder: compute-optimal test-time scaling for LLM reasoning.

import ponder
result = ponder.solve("What is 17 * 23?", model="path/to/model-folder")
print(result.answer, result.cost.generated_tokens)
"""

from ponder.budget import Budget, BudgetMeter, ModelShape
from ponder.errors import (
    BackendError,
    BudgetExhausted,
    ConfigError,
    DatasetError,
    GradingTimeout,
    ModelLoadError,
    PonderError,
)
from ponder.generators import Generator, SamplingParams, load_generator
from ponder.solve import asolve, solve
from ponder.sync import run_sync
from ponder.tasks import Problem, PromptFormat, Task, load_benchmark
from ponder.types import (
    Candidate,
    Completion,
    Cost,
    Generation,
    Message,
    Prompt,
    Result,
    Step,
    TokenLogprob,
    TraceNode,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Budget",
    "BudgetExhausted",
    "BudgetMeter",
    "Candidate",
    "Completion",
    "ConfigError",
    "Cost",
    "DatasetError",
    "Generation",
    "Generator",
    "GradingTimeout",
    "Message",
    "ModelLoadError",
    "ModelShape",
    "PonderError",
    "Problem",
    "Prompt",
    "PromptFormat",
    "Result",
    "SamplingParams",
    "Step",
    "Task",
    "TokenLogprob",
    "TraceNode",
    "__version__",
    "asolve",
    "load_benchmark",
    "load_generator",
    "run_sync",
    "solve",
]
