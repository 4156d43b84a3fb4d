"""Cost accounting: the budget meter every model call goes through, and the FLOPs model."""

from ponder.budget.flops import ModelShape
from ponder.budget.meter import Budget, BudgetMeter, MeteredGenerator, MeteredVerifier

__all__ = ["Budget", "BudgetMeter", "MeteredGenerator", "MeteredVerifier", "ModelShape"]
