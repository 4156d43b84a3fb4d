"""What every strategy shares: the `Strategy` protocol and a runner's plumbing.

A strategy is built from a generator, a task (prompt format, step boundary,
extractor) and one validated parameter object, and solves one problem under a
budget. It orchestrates calls and nothing else: no printing, no files, no
global state. The budget is enforced by the meter, never by the strategy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ponder.budget import Budget
from ponder.tasks import Problem
from ponder.types import Result


@runtime_checkable
class Strategy(Protocol):
    """A test-time scaling strategy. `arun` is the async core; `run` is its synchronous face."""

    name: str

    async def arun(self, problem: Problem, budget: Budget | None = None) -> Result: ...

    def run(self, problem: Problem, budget: Budget | None = None) -> Result: ...
