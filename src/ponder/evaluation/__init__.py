"""Evaluation: sweeps of tasks x strategies x budgets x seeds into a resumable store, and reports.

ponder eval --task arith --strategies majority,beam_search --budgets 1,4,16 --out runs/NAME
ponder report runs/NAME
"""

from ponder.evaluation.analysis import Analysis, Summary, analyze, summarize
from ponder.evaluation.config import EvalConfig, StrategySpec
from ponder.evaluation.report import write_report
from ponder.evaluation.runner import Sweep, load_config
from ponder.evaluation.store import Difficulty, Row, Store

__all__ = [
    "Analysis",
    "Difficulty",
    "EvalConfig",
    "Row",
    "Store",
    "StrategySpec",
    "Summary",
    "Sweep",
    "analyze",
    "load_config",
    "summarize",
    "write_report",
]
