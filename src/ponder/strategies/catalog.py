"""The strategies that run on their own, by name, with their parameters from text.

`ponder.strategies.registry` adds `compute_optimal`, which runs one of these
behind its pilot and so looks them up here (a registry that held it and that it
imported would be an import circle).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from ponder.errors import ConfigError
from ponder.generators.base import Generator
from ponder.strategies.adaptive import Adaptive
from ponder.strategies.base import BaseStrategy
from ponder.strategies.beam_search import BeamSearch
from ponder.strategies.best_of_majority import BestOfMajority
from ponder.strategies.best_of_n import BestOfN
from ponder.strategies.budget_forcing import BudgetForcing
from ponder.strategies.dvts import DVTS
from ponder.strategies.first_finish import FirstFinish
from ponder.strategies.lookahead import Lookahead
from ponder.strategies.majority import Majority
from ponder.strategies.mcts import MCTS
from ponder.strategies.particle_filter import ParticleFilter
from ponder.strategies.revision import Revision
from ponder.strategies.self_certainty import SelfCertainty
from ponder.strategies.single import Single
from ponder.strategies.weighted_majority import WeightedMajority
from ponder.tasks import Task
from ponder.verifiers.base import Verifier

CATALOG: dict[str, type[BaseStrategy[Any]]] = {
    cls.name: cls
    for cls in (
        Single,
        BestOfN,
        Majority,
        WeightedMajority,
        BestOfMajority,
        SelfCertainty,
        FirstFinish,
        BeamSearch,
        Lookahead,
        DVTS,
        ParticleFilter,
        MCTS,
        Revision,
        BudgetForcing,
        Adaptive,
    )
}


def lookup(
    name: str, table: Mapping[str, type[BaseStrategy[Any]]] = CATALOG
) -> type[BaseStrategy[Any]]:
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose one of: {', '.join(table)}") from None


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """["beam_width=4", "aggregation=min"] as a dict; refuses malformed or repeated keys."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"cannot read parameter {pair!r}: write it as name=value")
        if key in values:
            raise ConfigError(f"parameter {key!r} is given twice")
        values[key] = value.strip()
    return values


def parse_params_of(cls: type[BaseStrategy[Any]], values: Mapping[str, str]) -> Any:
    """The parameter object of strategy `cls` from text values, each converted to its type."""
    name, params_type = cls.name, cls.Params
    hints, fields = _fields(params_type)
    converted: dict[str, Any] = {}
    for key, text in values.items():
        if key not in fields:
            raise ConfigError(
                f"{name} has no parameter {key!r}; its parameters: {', '.join(sorted(fields))}"
            )
        converted[key] = _convert(key, text, hints[key])
    return params_type(**converted)


@functools.cache
def _fields(params_type: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A parameter class's field types and names (read once: a server builds a strategy per
    request, and reading string annotations compiles them)."""
    hints = typing.get_type_hints(params_type)
    return hints, frozenset(f.name for f in dataclasses.fields(params_type))


def _convert(key: str, text: str, kind: Any) -> Any:
    optional = type(None) in typing.get_args(kind)
    if optional:
        if text.lower() in ("none", "null", ""):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"parameter {key} takes true or false, not {text!r}")
    try:
        return kind(text)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise ConfigError(f"parameter {key} takes {what}, not {text!r}") from None


def build(
    cls: type[BaseStrategy[Any]],
    generator: Generator,
    task: Task,
    verifier: Verifier | None = None,
    params: Mapping[str, str] | Any = None,
    *,
    seed: int | None = 0,
) -> BaseStrategy[Any]:
    """Strategy `cls` over these models; `params` is its parameter object or text values."""
    if isinstance(params, Mapping):
        params = parse_params_of(cls, params)
    return cls(generator, task, verifier, params, seed=seed)
