"""Strategies by name, with their parameters from text: what the CLI and the server select from.

make_strategy("beam_search", generator, task, verifier, {"beam_width": "4"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ponder.generators.base import Generator
from ponder.strategies.base import BaseStrategy
from ponder.strategies.catalog import CATALOG, build, lookup, parse_pairs, parse_params_of
from ponder.strategies.compute_optimal import ComputeOptimal
from ponder.tasks import Task
from ponder.verifiers.base import Verifier

STRATEGIES: dict[str, type[BaseStrategy[Any]]] = {**CATALOG, ComputeOptimal.name: ComputeOptimal}

__all__ = [
    "STRATEGIES",
    "make_strategy",
    "needs_verifier",
    "parse_pairs",
    "parse_params",
    "strategy_class",
]


def strategy_class(name: str) -> type[BaseStrategy[Any]]:
    return lookup(name, STRATEGIES)


def parse_params(name: str, values: Mapping[str, str]) -> Any:
    """The parameter object of strategy `name` from text values, each converted to its type."""
    return parse_params_of(strategy_class(name), values)


def needs_verifier(name: str, params: Mapping[str, str] | Any = None) -> bool:
    """Whether strategy `name` with `params` calls a verifier."""
    cls = strategy_class(name)
    if params is None or isinstance(params, Mapping):
        params = parse_params(name, params or {})
    return cls.uses_verifier(params)


def make_strategy(
    name: str,
    generator: Generator,
    task: Task,
    verifier: Verifier | None = None,
    params: Mapping[str, str] | Any = None,
    *,
    seed: int | None = 0,
) -> BaseStrategy[Any]:
    """Strategy `name` over these models; `params` is its parameter object or text values."""
    return build(strategy_class(name), generator, task, verifier, params, seed=seed)
