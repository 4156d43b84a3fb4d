"""The benchmarks' own plumbing: a measurement kept in the repository is restored in a fresh
checkout, printed from there, and extended there (benchmarks/arith_sweep.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ponder.evaluation import StrategySpec

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from arith_sweep import ROWS, arith_sweep

MAJORITY = StrategySpec("majority", {"max_tokens": "160"})


def summary(table) -> dict:
    return {
        (label, budget, problem): (
            row.correct,
            row.answer,
            row.samples,
            row.generated_tokens,
            row.flops,
            row.record.get("details"),
        )
        for (label, budget), rows in table.items()
        for problem, row in rows.items()
    }


def test_a_kept_measurement_is_restored_elsewhere_and_extends_there(tmp_path):
    kept = tmp_path / "kept"
    measured = arith_sweep(tmp_path / "here", [MAJORITY], (1, 2), 3, kept=kept)
    assert len(summary(measured)) == 2 * 3
    lines = [json.loads(line) for line in (kept / ROWS).read_text().splitlines()]
    assert len(lines) == 2 * 3
    assert all("candidates" not in line["record"] for line in lines)  # the store keeps those

    # A fresh checkout: no store, only what was kept.
    elsewhere = tmp_path / "elsewhere"
    assert summary(arith_sweep(elsewhere, [MAJORITY], (1, 2), 3, run=False, kept=kept)) == (
        summary(measured)
    )
    extended = arith_sweep(elsewhere, [MAJORITY], (1, 2, 4), 3, kept=kept)
    assert {k: v for k, v in summary(extended).items() if k[1] < 4} == summary(measured)
    assert {k[1] for k in summary(extended)} == {1, 2, 4}
    assert len((kept / ROWS).read_text().splitlines()) == 3 * 3


def test_kept_results_of_other_models_are_refused(tmp_path):
    kept = tmp_path / "kept"
    arith_sweep(tmp_path / "here", [MAJORITY], (1,), 2, kept=kept)
    config = json.loads((kept / "config.json").read_text())
    config["models"]["generator"]["sha256_of_files"] = "0" * 16
    (kept / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="different models"):
        arith_sweep(tmp_path / "here", [MAJORITY], (1,), 2, kept=kept)
