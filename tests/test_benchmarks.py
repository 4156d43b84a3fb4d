"""The benchmarks' own plumbing: a measurement kept in the repository is restored in a fresh
checkout, printed from there, and extended there (benchmarks/arith_sweep.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ponder.evaluation import StrategySpec

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from arith_sweep import ROWS, arith_sweep, keep

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
            row.record.get("cost"),  # the verifier's generated tokens are only there
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
    assert all(line["record"]["cost"]["generated_tokens"] > 0 for line in lines)

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


def test_results_kept_without_their_cost_are_written_again(tmp_path):
    kept, here = tmp_path / "kept", tmp_path / "here"
    arith_sweep(here, [MAJORITY], (1,), 2, kept=kept)
    lines = [json.loads(line) for line in (kept / ROWS).read_text().splitlines()]
    for line in lines:  # as kept before a result's cost was
        del line["record"]["cost"]
    (kept / ROWS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    keep(here, kept)
    again = [json.loads(line) for line in (kept / ROWS).read_text().splitlines()]
    assert [line["record"]["cost"]["samples"] for line in again] == [1, 1]


def test_a_policy_run_that_chose_one_configuration_everywhere_stands_for_its_forced_run(
    tmp_path,
):
    """On the kept measurement (benchmarks/results/compute-optimal): the policy shipped
    before chose revision at the whole budget for every problem at N = 16 and 64, the one
    shipped now only at N = 16 (at 64 it spends 16 in four bins); N = 4 is the pilot's own
    vote; and a run behind another pilot stands for nothing."""
    from compute_optimal import POLICY_BUDGETS, policy_is_forced

    kept = Path(__file__).parents[1] / "benchmarks" / "results" / "compute-optimal"
    forced = ["majority", "weighted_majority", "beam_search", "revision", "adaptive"]

    def stored(digest: str):
        folder = f"policy-{digest}"
        return arith_sweep(
            tmp_path / folder, [], POLICY_BUDGETS, 200, run=False, kept=kept / folder
        )

    before, now = stored("22fbc4380cde"), stored("f8ae48d5a1a1")
    assert policy_is_forced(before, forced, 200, 4) == {("revision", 16), ("revision", 64)}
    assert policy_is_forced(now, forced, 200, 4) == {("revision", 16)}
    assert policy_is_forced(before, forced, 200, 8) == set()
    assert policy_is_forced(before, forced, 201, 4) == set()  # not every problem measured
