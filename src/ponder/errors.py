"""The exceptions ponder raises.

One root, `PonderError`, so a caller can catch everything ponder means to raise
and let real bugs through. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class PonderError(Exception):
    """Base class of every error ponder raises on purpose."""


class ConfigError(PonderError, ValueError):
    """A parameter, option or input is invalid (fix the call, not the machine)."""


class ModelLoadError(PonderError):
    """A model folder or server could not be loaded or reached at start-up."""


class BackendError(PonderError):
    """A generator or verifier backend failed while serving a request."""


class BudgetExhausted(PonderError):
    """The budget meter refused a call because it would exceed the budget.

    Strategies catch this to finish with what they have; it is not a failure.
    """


class DatasetError(PonderError):
    """A benchmark file or hub dataset is missing or has the wrong shape."""


class GradingTimeout(PonderError):
    """An answer comparison took longer than its time limit."""
