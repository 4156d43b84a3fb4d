"""Test-time scaling strategies, each against the generator protocol and the budget meter."""

from ponder.strategies.base import Strategy
from ponder.strategies.single import Single, SingleParams

__all__ = ["Single", "SingleParams", "Strategy"]
