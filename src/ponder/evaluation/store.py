"""The results store of an evaluation run: one SQLite file in the run's folder.

Why SQLite and not append-only JSONL: each problem's result is committed in its
own transaction, and SQLite's journal makes a commit all-or-nothing even when
the process is killed halfway through writing it (SIGKILL included), so a
restarted run never reads a torn record. The primary key (task, strategy,
budget, seed, problem) makes a second write of the same result impossible, so
no problem is counted twice, and the report's queries (per strategy, per
budget, per difficulty bin) are plain SQL. It is in Python's standard library.

Tables:
- `meta`: the run's configuration (JSON) and the ponder version that made it.
- `results`: one row per (task, strategy, budget, seed, problem): correctness,
  answer, cost, the candidates' counts, and the whole result as JSON.
- `traces`: the search trace of each result, apart, since it can be large.
- `difficulty`: per task and problem, the oracle pass rate (policy samples
  graded against the gold answer) and the predicted difficulty (the verifier's
  mean score or the answers' agreement, without the gold answer).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Row:
    """One stored result: a problem solved by a strategy at a budget under a seed."""

    task: str
    strategy: str
    budget: int
    seed: int
    problem: str
    correct: bool
    answer: str | None
    gold: str | None
    samples: int
    right_samples: int
    prompt_tokens: int
    generated_tokens: int
    verifier_tokens: int
    flops: float
    wall_seconds: float
    reused: bool
    stopped_by_budget: bool
    record: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, int, int, str]:
        return (self.task, self.strategy, self.budget, self.seed, self.problem)


# Each column's SQLite type, by the type of the `Row` field it stores.
_SQL_TYPES = {
    "str": "TEXT NOT NULL",
    "str | None": "TEXT",
    "int": "INTEGER NOT NULL",
    "bool": "INTEGER NOT NULL",
    "float": "REAL NOT NULL",
    "dict[str, Any]": "TEXT NOT NULL",  # JSON
}
RESULT_COLUMNS = tuple(f.name for f in fields(Row))  # declared once: by `Row`
_RESULTS = ",\n".join(f"    {f.name} {_SQL_TYPES[str(f.type)]}" for f in fields(Row))

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
{_RESULTS},
    PRIMARY KEY (task, strategy, budget, seed, problem)
);
CREATE TABLE IF NOT EXISTS traces (
    task TEXT NOT NULL,
    strategy TEXT NOT NULL,
    budget INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    problem TEXT NOT NULL,
    nodes TEXT NOT NULL,
    PRIMARY KEY (task, strategy, budget, seed, problem)
);
CREATE TABLE IF NOT EXISTS difficulty (
    task TEXT NOT NULL,
    problem TEXT NOT NULL,
    oracle_samples INTEGER NOT NULL,
    oracle_right INTEGER NOT NULL,
    predicted REAL,
    predicted_from TEXT NOT NULL,
    PRIMARY KEY (task, problem)
);
"""


@dataclass(frozen=True, slots=True)
class Difficulty:
    """A problem's difficulty: oracle pass rate over policy samples, and the prediction."""

    task: str
    problem: str
    oracle_samples: int
    oracle_right: int
    predicted: float | None
    predicted_from: str

    @property
    def oracle_pass_rate(self) -> float:
        return self.oracle_right / self.oracle_samples if self.oracle_samples else 0.0


class Store:
    """The SQLite results store at `path` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Made here, used from ponder's event-loop thread: one thread at a time, never two.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the results store {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_meta(self, key: str) -> Any:
        found = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else json.loads(found[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def add(self, rows: Iterable[tuple[Row, Any]]) -> None:
        """Store results (each a row and its trace nodes) in one transaction.

        All or none of them are stored; a result stored already is an error, not
        a second count.
        """
        with self._transaction():
            for row, nodes in rows:
                values = [getattr(row, c) for c in RESULT_COLUMNS]
                values[-1] = json.dumps(row.record, ensure_ascii=False)
                self._db.execute(
                    f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                    values,
                )
                self._db.execute(
                    "INSERT INTO traces VALUES (?, ?, ?, ?, ?, ?)",
                    (*row.key, json.dumps(nodes, ensure_ascii=False)),
                )

    def add_difficulty(self, rows: Iterable[Difficulty]) -> None:
        with self._transaction():
            for d in rows:
                self._db.execute(
                    "INSERT INTO difficulty VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        d.task,
                        d.problem,
                        d.oracle_samples,
                        d.oracle_right,
                        d.predicted,
                        d.predicted_from,
                    ),
                )

    def done(self, task: str, strategy: str, budget: int, seed: int) -> set[str]:
        """The problems with a stored result for this task, strategy, budget and seed."""
        cursor = self._db.execute(
            "SELECT problem FROM results WHERE task = ? AND strategy = ? AND budget = ? "
            "AND seed = ?",
            (task, strategy, budget, seed),
        )
        return {problem for (problem,) in cursor}

    def rows(self, task: str | None = None) -> Iterator[Row]:
        query = f"SELECT {', '.join(RESULT_COLUMNS)} FROM results"
        args: tuple[str, ...] = ()
        if task is not None:
            query, args = query + " WHERE task = ?", (task,)
        for values in self._db.execute(query + " ORDER BY rowid", args):
            fields = dict(zip(RESULT_COLUMNS, values, strict=True))
            fields["record"] = json.loads(fields["record"])
            for flag in ("correct", "reused", "stopped_by_budget"):
                fields[flag] = bool(fields[flag])
            yield Row(**fields)

    def trace(self, key: tuple[str, str, int, int, str]) -> Any:
        found = self._db.execute(
            "SELECT nodes FROM traces WHERE task = ? AND strategy = ? AND budget = ? "
            "AND seed = ? AND problem = ?",
            key,
        ).fetchone()
        return None if found is None else json.loads(found[0])

    def difficulty(self, task: str) -> dict[str, Difficulty]:
        cursor = self._db.execute(
            "SELECT task, problem, oracle_samples, oracle_right, predicted, predicted_from "
            "FROM difficulty WHERE task = ?",
            (task,),
        )
        return {values[1]: Difficulty(*values) for values in cursor}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
