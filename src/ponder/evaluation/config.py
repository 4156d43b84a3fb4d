"""What an evaluation run is: tasks x strategies x budgets x seeds, the models, the options.

The configuration is stored in the run's folder (`config.json` and the store's
meta table), so a run can be repeated or resumed from its folder alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.errors import ConfigError
from ponder.identity import same_model
from ponder.strategies.registry import parse_params, strategy_class
from ponder.tasks import TASKS, Problem
from ponder.tasks.files import BUILDERS, FileFields, grading, is_data_file

# Options that change how a run executes, not what it measures: a resumed run may differ in them.
EXECUTION_ONLY = ("batch",)
# Lists a resumed run may add to: what was stored before stays valid.
EXTENSIBLE = ("strategies", "budgets", "seeds")


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A strategy by name and its parameters as text (validated by the registry).

    `shown` names the parameters its label shows: those set for this strategy
    alone, not those every strategy of the sweep shares.
    """

    name: str
    params: dict[str, str] = field(default_factory=dict)
    shown: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_params(self.name, self.params)  # unknown names and bad values fail here

    @property
    def label(self) -> str:
        """The name results are stored under: the strategy, and its parameters if any."""
        if not self.shown:
            return self.name
        return f"{self.name}[{','.join(f'{k}={self.params[k]}' for k in sorted(self.shown))}]"


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """An evaluation sweep.

    - `tasks`: task names ("arith", "math500", "gsm8k", "aime2024") or paths of
      your own data files (.jsonl, .json, .csv, .parquet), read through
      `question_field`, `answer_field` and `id_field`, graded by `grader`
      (`ponder.tasks.files`); `task_files` holds each file's content hash
      (filled in by the sweep). `data`: a folder holding `<task>/<split>.jsonl`
      for the benchmarks (None: the Hub). `prompt_template` (with `{question}`)
      replaces the template of every task but arith.
    - `model`: a model folder or an OpenAI-compatible URL (None: the embedded
      arith policy); `served_model` names it on a server; `model_config` is the
      served model's folder (its config and weights), read for FLOPs estimates.
    - `prm`: the verifier's folder or server URL for strategies that use one
      (None: the embedded arith verifier, with the embedded policy only);
      `served_prm` names it on a server, `prm_format` is its `ponder_judge.json`
      or `ponder_prm.json`, `prm_config` its folder, for FLOPs; `verifier_kind`
      how it is read ("judge", "prm", or "auto": as its folder says).
    - `difficulty_samples`: samples per problem for the difficulty bins (0: none).
    - `reuse`: draw the samples of `samples_once` strategies once, at the largest budget.
    - `batch`: problems solved together (their calls merged).
    - `shard`: "i/n" runs only the i-th of n interleaved slices of every task's
      problems (1 <= i <= n), for one job of an array; `ponder report` over the n
      shards' folders reads them as one run.
    """

    tasks: tuple[str, ...]
    strategies: tuple[StrategySpec, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    split: str = "test"
    limit: int | None = None
    data: str | None = None
    model: str | None = None
    served_model: str | None = None
    model_config: str | None = None
    prm: str | None = None
    served_prm: str | None = None
    prm_config: str | None = None
    prm_format: str | None = None
    verifier_kind: str = "auto"
    prompt_format: str = "auto"
    difficulty_samples: int = 16
    reuse: bool = True
    batch: int = 16
    question_field: str = "question"
    answer_field: str = "answer"
    id_field: str = "id"
    grader: str = "math"
    prompt_template: str | None = None
    task_files: dict[str, str] = field(default_factory=dict)
    shard: str | None = None
    models: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("give at least one task")
        for task in self.tasks:
            if task not in TASKS and not is_data_file(task):
                raise ConfigError(
                    f"unknown task {task!r}; known: {', '.join(TASKS)}, "
                    f"or a data file ({', '.join(BUILDERS)})"
                )
        grading(self.grader)  # a bad grader or pattern fails here, before any work
        if self.shard is not None:
            parse_shard(self.shard)
        if self.prompt_template is not None and "{question}" not in self.prompt_template:
            raise ConfigError("a prompt template needs a {question} field")
        if not self.strategies:
            raise ConfigError("give at least one strategy")
        labels = [s.label for s in self.strategies]
        if len(set(labels)) != len(labels):
            raise ConfigError("a strategy is given twice with the same parameters")
        if not self.budgets or any(b < 1 for b in self.budgets):
            raise ConfigError("budgets must be positive integers")
        if len(set(self.budgets)) != len(self.budgets):
            raise ConfigError("a budget is given twice")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("give distinct seeds")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.difficulty_samples < 0 or self.difficulty_samples == 1:
            raise ConfigError("difficulty_samples must be 0 (none) or at least 2")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.prompt_format not in ("auto", "chat", "raw"):
            raise ConfigError("prompt_format must be auto, chat or raw")

    @property
    def shard_of(self) -> tuple[int, int] | None:
        """(i, n) of a shard "i/n", None for a whole run."""
        return None if self.shard is None else parse_shard(self.shard)

    def shard_problems(self, problems: Sequence[Problem]) -> tuple[Problem, ...]:
        """This shard's problems of a task: every n-th, from the i-th (all for a whole run)."""
        if (of := self.shard_of) is None:
            return tuple(problems)
        i, n = of
        return tuple(problems[i - 1 :: n])

    @property
    def fields(self) -> FileFields:
        """How data-file tasks are read and graded."""
        return FileFields(self.question_field, self.answer_field, self.id_field, self.grader)

    @property
    def uses_verifier(self) -> bool:
        return any(
            strategy_class(s.name).uses_verifier(parse_params(s.name, s.params))
            for s in self.strategies
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        try:
            values = dict(data)
            values.pop("ponder_version", None)
            values["strategies"] = tuple(
                StrategySpec(s["name"], s["params"], tuple(s.get("shown", ())))
                for s in values["strategies"]
            )
            for key in ("tasks", "budgets", "seeds"):
                values[key] = tuple(values[key])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not an evaluation configuration: {exc}") from None

    def differences(self, other: EvalConfig) -> list[str]:
        """The fields that make `other` a different run (execution options aside).

        `other` may extend this run: more strategies, budgets or seeds measure more
        of the same thing, and every result stored stays valid.
        """
        mine, theirs = self.to_dict(), other.to_dict()
        # A model is the same wherever its folder lies (a checkout or run moved elsewhere).
        models = mine.pop("models"), theirs.pop("models")
        same = models[0].keys() == models[1].keys() and all(
            same_model(identity, models[1][role]) for role, identity in models[0].items()
        )
        return [
            k
            for k in mine
            if k not in EXECUTION_ONLY
            and mine[k] != theirs[k]
            and not (k in EXTENSIBLE and all(v in theirs[k] for v in mine[k]))
        ] + ([] if same else ["models"])


def parse_shard(text: str) -> tuple[int, int]:
    """(i, n) of a shard "i/n"."""
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = 0, 0
    if not 1 <= i <= n:
        raise ConfigError(f"a shard is i/n with 1 <= i <= n (e.g. 2/8), not {text!r}")
    return i, n


def strategy_specs(names: list[str], pairs: dict[str, str]) -> tuple[StrategySpec, ...]:
    """Strategies by name with their parameters from NAME=VALUE pairs.

    "beam_search.beam_width" sets a parameter of one strategy; a bare
    "max_tokens" sets it for every listed strategy that has it (and must fit one).
    """
    import dataclasses

    params: dict[str, dict[str, str]] = {name: {} for name in names}
    shown: dict[str, list[str]] = {name: [] for name in names}
    for key, value in pairs.items():
        strategy, dot, field_name = key.rpartition(".")
        if dot:
            if strategy not in params:
                raise ConfigError(f"--param {key}: {strategy!r} is not among the strategies")
            params[strategy][field_name] = value
            shown[strategy].append(field_name)
            continue
        takers = [
            name
            for name in names
            if field_name in {f.name for f in dataclasses.fields(strategy_class(name).Params)}
        ]
        if not takers:
            raise ConfigError(f"--param {key}: no listed strategy has a parameter {key!r}")
        for name in takers:
            params[name][field_name] = value
    return tuple(StrategySpec(name, params[name], tuple(shown[name])) for name in names)
