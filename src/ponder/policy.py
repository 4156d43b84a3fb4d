"""Compute-optimal policies: which configuration to run for a prompt's predicted difficulty.

Snell et al. (2024) choose, per prompt, the test-time strategy that does best
for prompts of its difficulty at the given budget, and so match best-of-N
with 4x less compute. Difficulty must be predicted without the gold answer:
ponder reads it from a pilot, a few samples of the prompt, as the share of
them that agree on the most common answer, averaged with their mean verifier
score when there is a verifier (Snell et al. use the verifier's mean score;
agreement is what self-consistency knows). High means easy.

A policy is made by `ponder calibrate` on a split the evaluation does not use
(`dev`): every candidate configuration runs at every budget behind the same
pilot, problems are binned by predicted difficulty (quantile bins of the
pilot's reading), and each (budget, bin) keeps the configuration with the best
accuracy there or at a smaller budget (the cheaper in generated tokens on a
tie): a budget is a cap, spent only where it helped. The file records
the models it was calibrated for, how it was made, and every accuracy it
chose from, so it is small, readable and auditable; `compute_optimal` refuses
it for other models.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.identity import identify as full_identity
from ponder.identity import portable, same_model

FORMAT = "ponder-compute-optimal/1"
# How a pilot is read: its answer agreement averaged with the verifier's mean score, or, for
# models served without a verifier, its agreement alone.
READINGS = ("agreement+verifier", "agreement")
# How `ponder calibrate` keeps one configuration per (budget, bin): the best estimate, or the
# fewest generated tokens within one standard error of it (ponder.evaluation.calibrate).
RULES = ("best", "one-se")
# Or, with "auto", per budget the one whose policy cross-validates better there; the file then
# records a rule per budget.
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Configuration:
    """A strategy and its parameters, written "name" or "name:key=value,key=value"."""

    strategy: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Configuration:
        name, _, rest = text.strip().partition(":")
        if not name:
            raise ConfigError(f"cannot read configuration {text!r}: write name:key=value,...")
        pairs = []
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"cannot read {item!r} in configuration {text!r}")
            pairs.append((key.strip(), value.strip()))
        return cls(name.strip(), tuple(sorted(pairs)))

    def __str__(self) -> str:
        if not self.params:
            return self.strategy
        return f"{self.strategy}:" + ",".join(f"{k}={v}" for k, v in self.params)


def identify(model: Any) -> dict[str, Any]:
    """What identifies a generator or verifier for a policy: its name and folder fingerprint,
    the parts of `ponder.identity.identify` that are the same on every machine."""
    return portable(full_identity(model))


@dataclass(frozen=True, slots=True)
class Entry:
    """The configuration kept for one (budget, difficulty bin), and what it was chosen from.

    `budget`: the samples to spend, at most the row's budget (None: all of it). A
    budget is a cap: where a smaller calibrated budget did as well for less, the
    policy spends that. `accuracy` is the chosen configuration's estimate (shrunk
    toward its accuracy over all bins, see `ponder.evaluation.calibrate.make_policy`),
    `raw_accuracy` its rate on this bin's problems alone and `stderr` the estimate's
    standard error (None in policies made before they were recorded).
    `accuracies` and `generated_tokens` are this budget's candidates; the smaller
    budgets' are in their own rows.
    """

    configuration: str
    accuracy: float
    problems: int
    accuracies: dict[str, float] = field(default_factory=dict)
    generated_tokens: dict[str, float] = field(default_factory=dict)
    budget: int | None = None
    raw_accuracy: float | None = None
    stderr: float | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Per budget, per predicted-difficulty bin, the configuration to run.

    `edges` are the pilot readings that separate the bins, highest first: bin 1
    (easiest) holds readings above `edges[0]`, the last bin those at or below
    `edges[-1]`. `table[budget][bin - 1]` is that bin's `Entry`. `reading` says how
    the pilot was read when the policy was made (one of `READINGS`), and so how it
    must be read when the policy is followed.
    """

    pilot: int
    edges: tuple[float, ...]
    table: dict[int, tuple[Entry, ...]]
    models: dict[str, Any]
    made_with: dict[str, Any] = field(default_factory=dict)
    reading: str = READINGS[0]

    @property
    def reads_verifier(self) -> bool:
        return self.reading == "agreement+verifier"

    def __post_init__(self) -> None:
        if self.reading not in READINGS:
            raise ConfigError(f"unknown pilot reading {self.reading!r}; use one of {READINGS}")
        if self.pilot < 1:
            raise ConfigError(f"a policy's pilot must be at least 1 sample, got {self.pilot}")
        if list(self.edges) != sorted(self.edges, reverse=True):
            raise ConfigError("a policy's bin edges must run from the highest reading down")
        if not self.table:
            raise ConfigError("a policy needs at least one budget")
        for budget, choices in self.table.items():
            if len(choices) != len(self.edges) + 1:
                raise ConfigError(
                    f"budget {budget}: {len(choices)} bins for {len(self.edges)} edges"
                )
            for choice in choices:
                Configuration.parse(choice.configuration)
                if choice.budget is not None and not 1 <= choice.budget <= budget:
                    raise ConfigError(
                        f"budget {budget}: a choice cannot spend {choice.budget} samples"
                    )

    @property
    def rule(self) -> str:
        """The rule its choices followed: one name, or with `--rule auto` one per budget."""
        rule = self.made_with.get("rule", RULES[0])
        if isinstance(rule, dict):
            by_budget = sorted(rule.items(), key=lambda item: int(item[0]))
            return f"{AUTO}, " + ", ".join(f"N={b} {r}" for b, r in by_budget)
        return str(rule)

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, reading: float) -> int:
        """The difficulty bin (1: easiest) of a pilot reading (high: easy)."""
        return bin_of(self.edges, reading)

    def budget_for(self, n: int) -> int:
        """The calibrated budget to follow at N: the largest at most N (else the smallest)."""
        below = [b for b in self.table if b <= n]
        return max(below) if below else min(self.table)

    def choose(self, n: int, reading: float) -> tuple[Configuration, int]:
        """The configuration for this reading at budget `n`, and the samples it may spend."""
        choice = self.table[self.budget_for(n)][self.bin_of(reading) - 1]
        return Configuration.parse(choice.configuration), min(n, choice.budget or n)

    def accuracy(self, n: int, reading: float) -> float:
        """The calibrated accuracy of the policy's choice at budget `n` for this reading."""
        return self.table[self.budget_for(n)][self.bin_of(reading) - 1].accuracy

    def allocate(self, readings: Sequence[float], total: int) -> list[int]:
        """Budgets for prompts with these pilot readings that together spend at most `total`.

        Every prompt gets at least the smallest calibrated budget (its pilot must
        be paid). The rest goes, increment by increment, where the calibrated
        accuracy gains most per sample: from one calibrated budget of a prompt to
        any larger one, best ratio of accuracy gained to samples first. Easy
        prompts (already right at the smallest budget) and hopeless ones (no
        better at larger budgets) get little, hard-but-solvable ones the most,
        as Snell et al. find they should. What no prompt gains from is left.
        """
        levels = sorted(self.table)
        floor = levels[0]
        if total < floor * len(readings):
            raise ConfigError(
                f"a total budget of {total} cannot give {len(readings)} prompts "
                f"{floor} samples each (the smallest calibrated budget)"
            )
        budgets = [floor] * len(readings)
        left = total - floor * len(readings)
        gains = [[self.accuracy(level, r) for level in levels] for r in readings]
        while True:
            best: tuple[float, int, int] | None = None
            for i, budget in enumerate(budgets):
                now = levels.index(budget)
                for j in range(now + 1, len(levels)):
                    cost = levels[j] - budget
                    gain = gains[i][j] - gains[i][now]
                    if cost <= left and gain > 0 and (best is None or gain / cost > best[0]):
                        best = (gain / cost, i, j)
            if best is None:
                return budgets
            _, i, j = best
            left -= levels[j] - budgets[i]
            budgets[i] = levels[j]

    def configurations(self) -> list[Configuration]:
        """Every configuration the policy may choose."""
        seen = dict.fromkeys(c.configuration for row in self.table.values() for c in row)
        return [Configuration.parse(c) for c in seen]

    def check_models(self, generator: Any, verifier: Any | None) -> None:
        """Refuse models other than those the policy was calibrated for (a policy that reads
        agreement alone does not depend on the verifier)."""
        roles = [("generator", generator)]
        if self.reads_verifier:
            roles.append(("verifier", verifier))
        for role, model in roles:
            want = self.models.get(role)
            have = identify(model) if model is not None else None
            if not same_model(want, have):
                where = self.made_with.get("path", "this policy")
                raise ConfigError(
                    f"{where} was calibrated for the {role} {_describe(want)}, not "
                    f"{_describe(have)}: run `ponder calibrate` with these models"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "made_with": self.made_with,
            "models": self.models,
            "pilot": self.pilot,
            "reading": self.reading,
            "edges": list(self.edges),
            "table": {str(b): [asdict(c) for c in row] for b, row in sorted(self.table.items())},
        }

    def save(self, path: str | Path) -> None:
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """The policy in a file (read again only when the file changed: `compute_optimal`
        loads it for every strategy object it makes, and a server makes one a request)."""
        source = Path(path)
        try:
            stat = source.stat()
        except FileNotFoundError:
            raise ConfigError(
                f"no policy file at {source}: make one with `ponder calibrate`"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read the policy {source}: {exc}") from None
        return _load(source, stat.st_mtime_ns, stat.st_size)

    @classmethod
    def _read(cls, source: Path) -> Policy:
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the policy {source}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{source} is not a ponder compute-optimal policy ({FORMAT})")
        try:
            return cls(
                pilot=int(data["pilot"]),
                edges=tuple(float(e) for e in data["edges"]),
                table={int(b): tuple(Entry(**c) for c in row) for b, row in data["table"].items()},
                models=data["models"],
                made_with={**data.get("made_with", {}), "path": str(source)},
                reading=data.get("reading", READINGS[0]),  # files made before it was recorded
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source} is not a valid policy: {exc}") from None


@functools.lru_cache(maxsize=16)
def _load(source: Path, mtime_ns: int, size: int) -> Policy:
    return Policy._read(source)


def _describe(identity: dict[str, Any] | None) -> str:
    if identity is None:
        return "(none)"
    files, weights = identity.get("sha256_of_files"), identity.get("sha256_of_weights")
    shown = ", ".join(
        f"{what} {sha}" for what, sha in (("files", files), ("weights", weights)) if sha
    )
    return f"{identity['name']!r}" + (f" ({shown})" if shown else "")


def bin_of(edges: tuple[float, ...], reading: float) -> int:
    """The bin (1: easiest) of a reading among descending `edges`: the edges it does not exceed."""
    return 1 + bisect.bisect_right([-e for e in edges], -reading)


def quantile_edges(readings: list[float], bins: int) -> tuple[float, ...]:
    """Edges splitting `readings` into `bins` bins of near-equal size, highest first."""
    if bins < 1:
        raise ConfigError(f"bins must be at least 1, got {bins}")
    ordered = sorted(readings, reverse=True)
    distinct = sorted(set(readings), reverse=True)
    edges = []
    for k in range(1, bins):
        edge = ordered[min(len(ordered) - 1, k * len(ordered) // bins)]
        if edge == distinct[0] and len(distinct) > 1:
            # Bin 1 holds readings above its edge: the readings tied at the top go there
            # together, not into an empty bin 1.
            edge = distinct[1]
        edges.append(edge)
    # Equal readings cannot be split: repeated edges would make empty bins.
    return tuple(sorted(set(edges), reverse=True))
