"""compute_optimal and its policies: lookup, refusal of other models, pilot accounting,
calibration end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess

import pytest

from ponder import ConfigError, run_sync
from ponder.evaluation.calibrate import choose_rules, cross_validate, make_policy
from ponder.evaluation.store import Row
from ponder.generators.transformers import TransformersGenerator
from ponder.identity import fingerprint
from ponder.models import embedded_policy, embedded_verifier
from ponder.policy import Configuration, Entry, Policy, identify, quantile_edges
from ponder.strategies import make_strategy
from ponder.tasks.arith import arith_task
from ponder.verifiers import load_verifier


def choice(name: str) -> Entry:
    return Entry(configuration=name, accuracy=0.5, problems=10)


def policy(models: dict | None = None) -> Policy:
    return Policy(
        pilot=4,
        edges=(0.8, 0.5),
        table={
            4: (choice("majority"), choice("majority"), choice("majority")),
            16: (choice("majority"), choice("beam_search:beam_width=4"), choice("revision")),
        },
        models=models or {},
    )


def test_lookup_by_reading_and_budget():
    p = policy()
    assert [p.bin_of(r) for r in (0.95, 0.81, 0.8, 0.6, 0.5, 0.1)] == [1, 1, 2, 2, 3, 3]
    assert [p.budget_for(n) for n in (1, 4, 15, 16, 64)] == [4, 4, 4, 16, 16]
    assert p.choose(16, 0.6) == (Configuration("beam_search", (("beam_width", "4"),)), 16)
    assert p.choose(64, 0.2) == (Configuration("revision"), 64)
    assert p.choose(8, 0.2) == (Configuration("majority"), 8)
    assert {str(c) for c in p.configurations()} == {
        "majority",
        "beam_search:beam_width=4",
        "revision",
    }


def test_configurations_read_and_write_alike():
    text = "beam_search:lookahead=2,beam_width=4"
    assert str(Configuration.parse(text)) == "beam_search:beam_width=4,lookahead=2"
    with pytest.raises(ConfigError):
        Configuration.parse("beam_search:beam_width")


def test_a_policy_file_round_trips_and_bad_ones_are_refused(tmp_path):
    path = tmp_path / "policy.json"
    policy({"generator": {"name": "g"}, "verifier": None}).save(path)
    loaded = Policy.load(path)
    assert loaded.table == policy().table and loaded.edges == (0.8, 0.5)
    assert loaded.made_with["path"] == str(path)
    data = json.loads(path.read_text())
    overspent = json.loads(json.dumps(data))
    overspent["table"]["4"][0]["budget"] = 16  # more than its row's budget
    for broken in (
        {**data, "format": "other"}, {**data, "edges": [0.5, 0.8]}, {"x": 1}, overspent,
    ):  # fmt: skip
        path.write_text(json.dumps(broken))
        with pytest.raises(ConfigError):
            Policy.load(path)
    with pytest.raises(ConfigError, match="ponder calibrate"):
        Policy.load(tmp_path / "missing.json")


def test_quantile_edges_make_near_equal_bins():
    readings = [i / 10 for i in range(10)]
    edges = quantile_edges(readings, 5)
    p = Policy(
        pilot=1, edges=edges, table={1: tuple(choice("majority") for _ in range(5))}, models={}
    )
    counts = [sum(p.bin_of(r) == b for r in readings) for b in range(1, 6)]
    assert counts == [2, 2, 2, 2, 2]
    assert quantile_edges([0.5] * 10, 5) == (0.5,)  # ties cannot be split
    # Readings tied at the top share bin 1 rather than leave it empty.
    assert quantile_edges([1.0] * 6 + [0.2, 0.1], 2) == (0.2,)


def row(problem: str, strategy: str, budget: int, correct: bool, reading: float, tokens=100):
    return Row(
        task="arith", strategy=f"compute_optimal[force={strategy}]", budget=budget, seed=0,
        problem=problem, correct=correct, answer=None, gold=None, samples=budget,
        right_samples=0, prompt_tokens=0, generated_tokens=tokens, verifier_tokens=0, flops=0.0,
        wall_seconds=0.0, reused=False, stopped_by_budget=False,
        record={"details": {"reading": reading}},
    )  # fmt: skip


def test_the_best_configuration_per_bin_is_kept_and_ties_go_to_the_cheaper():
    rows = []
    for i in range(4):  # easy problems (reading 0.9): both right; majority cheaper
        rows += [
            row(f"e{i}", "majority", 8, True, 0.9, 100),
            row(f"e{i}", "revision", 8, True, 0.9, 300),
        ]
    for i in range(4):  # hard problems (reading 0.2): revision right more often
        rows += [row(f"h{i}", "majority", 8, i == 0, 0.2), row(f"h{i}", "revision", 8, i < 3, 0.2)]
    made = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=0)
    easy, hard = made.table[8]
    assert (easy.configuration, easy.accuracy, easy.problems) == ("majority", 1.0, 4)
    assert (hard.configuration, hard.accuracy) == ("revision", 0.75)
    assert hard.accuracies == {"majority": 0.25, "revision": 0.75}
    assert easy.budget == hard.budget == 8


def test_a_smaller_budget_that_does_as_well_is_spent_instead(tmp_path):
    rows = []
    for i in range(4):  # easy: majority right at 4 and at 16; hard: only at 16
        rows += [
            row(f"e{i}", "majority", 4, True, 0.9, 200),
            row(f"e{i}", "majority", 16, True, 0.9, 800),
        ]
        rows += [
            row(f"h{i}", "majority", 4, False, 0.2, 200),
            row(f"h{i}", "majority", 16, i < 2, 0.2, 800),
        ]
    made = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=0)
    easy, hard = made.table[16]
    assert (easy.configuration, easy.budget, easy.accuracy) == ("majority", 4, 1.0)
    assert (hard.configuration, hard.budget, hard.accuracy) == ("majority", 16, 0.5)
    assert made.choose(64, 0.9) == (Configuration("majority"), 4)
    assert made.choose(16, 0.2) == (Configuration("majority"), 16)
    made.save(tmp_path / "policy.json")
    assert Policy.load(tmp_path / "policy.json").table == made.table


def test_a_bin_of_few_problems_is_shrunk_toward_the_configurations_overall_accuracy():
    rows = []
    for i in range(20):  # easy bin: majority right on 19 of 20, revision on 15 of 20
        rows += [
            row(f"e{i}", "majority", 8, i < 19, 0.9),
            row(f"e{i}", "revision", 8, i < 15, 0.9),
        ]
    for i in range(3):  # hard bin, 3 problems: revision 3 of 3, majority 2 of 3
        rows += [row(f"h{i}", "majority", 8, i < 2, 0.1), row(f"h{i}", "revision", 8, True, 0.1)]
    # The 20 easy readings tie at the top: they make bin 1 together (edge 0.1).
    raw = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=0)
    pooled = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=10)
    assert raw.edges == pooled.edges == (0.1,)
    assert raw.table[8][1].configuration == "revision"  # 3/3 beats 2/3 on its own
    hard = pooled.table[8][1]
    # Shrunk: majority (2 + 10 * 21/23) / 13 = 0.856 beats revision (3 + 10 * 18/23) / 13.
    assert hard.configuration == "majority"
    assert hard.accuracy == pytest.approx((2 + 10 * 21 / 23) / 13, abs=1e-4)
    assert hard.raw_accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert 0 < hard.stderr < 0.15
    assert pooled.made_with["shrink"] == 10


def test_the_one_se_rule_keeps_the_cheapest_configuration_within_one_standard_error():
    rows = []
    for i in range(20):  # easy: revision 18/20, majority 17/20; hard: 18/20 against 10/20
        rows += [
            row(f"e{i}", "majority", 8, i < 17, 0.9, 100),
            row(f"e{i}", "revision", 8, i < 18, 0.9, 300),
            row(f"h{i}", "majority", 8, i < 10, 0.1, 100),
            row(f"h{i}", "revision", 8, i < 18, 0.1, 300),
        ]
    best = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=0)
    assert [e.configuration for e in best.table[8]] == ["revision", "revision"]
    one_se = make_policy(rows, bins=2, pilot=4, models={}, made_with={}, shrink=0, rule="one-se")
    easy, hard = one_se.table[8]
    # Easy: 0.85 is within revision's 0.90 - sqrt(0.9 * 0.1 / 20) = 0.833; hard: 0.5 is not.
    assert (easy.configuration, easy.accuracy, easy.stderr) == ("majority", 0.85, 0.0798)
    assert hard.configuration == "revision"
    assert one_se.made_with["rule"] == "one-se" and best.made_with["rule"] == "best"
    with pytest.raises(ConfigError, match="unknown rule"):
        make_policy(rows, bins=2, pilot=4, models={}, made_with={}, rule="cheapest")


def test_auto_chooses_each_budgets_rule_by_held_out_accuracy_then_tokens():
    rows = []
    for i in range(20):  # one-se keeps majority on easy problems and is as accurate held out
        rows += [
            row(f"e{i}", "majority", 8, i < 17, 0.9, 100),
            row(f"e{i}", "revision", 8, i < 18, 0.9, 300),
            row(f"h{i}", "majority", 8, i < 10, 0.1, 100),
            row(f"h{i}", "revision", 8, i < 18, 0.1, 300),
        ]
    chosen, checked = choose_rules(rows, bins=2, pilot=4, shrink=0)
    assert checked["best"][8]["policy"] == checked["one-se"][8]["policy"] == 0.875
    assert checked["one-se"][8]["policy_tokens"] < checked["best"][8]["policy_tokens"]
    assert chosen == {8: "one-se"}
    rows = []
    for i in range(20):  # held out, majority (within one standard error) loses problems
        rows += [
            row(f"e{i:02d}", "majority", 8, i >= 4, 0.9, 100),
            row(f"e{i:02d}", "revision", 8, i >= 2, 0.9, 300),
        ]
    chosen, checked = choose_rules(rows, bins=1, pilot=4, shrink=0)
    assert (checked["best"][8]["policy"], checked["one-se"][8]["policy"]) == (0.9, 0.8)
    assert chosen == {8: "best"}


def test_a_policy_made_with_a_rule_per_budget_says_so_in_the_report():
    rows = [row(f"p{i}", "majority", n, True, 0.5) for i in range(4) for n in (4, 16)]
    made = make_policy(rows, bins=1, pilot=4, models={}, made_with={}, rule="one-se")
    assert made.rule == "one-se"
    auto = dataclasses.replace(made, made_with={"rule": {"16": "one-se", "4": "best"}})
    assert auto.rule == "auto, N=4 best, N=16 one-se"


def test_cross_validation_scores_the_policy_on_problems_it_was_not_made_from():
    rows = []
    for i in range(40):  # revision wins on hard problems, majority (cheaper) on easy ones
        hard = i % 2 == 0
        rows += [
            row(f"p{i}", "majority", 8, not hard or i % 8 == 0, 0.1 if hard else 0.9, 100),
            row(f"p{i}", "revision", 8, True if hard else i % 4 != 1, 0.1 if hard else 0.9, 300),
        ]
    report = cross_validate(rows, bins=2, pilot=4, shrink=0, folds=5)[8]
    # Held out, the policy picks revision for hard problems (all right) and majority for
    # easy ones (all right): 1.0; the best single configuration, revision (right on every
    # hard problem and half the easy ones; majority: every easy one, 5 of 20 hard), 0.75.
    assert (report["policy"], report["best_fixed"], report["fixed"]) == (1.0, 0.75, "revision")
    assert report["in_sample"] == 1.0 and (report["problems"], report["folds"]) == (40, 5)
    # Held out, revision (300 tokens) on the 20 hard problems and majority (100) on the rest.
    assert (report["policy_tokens"], report["fixed_tokens"]) == (200.0, 300.0)
    with pytest.raises(ConfigError, match="folds"):
        cross_validate(rows, bins=2, pilot=4, shrink=0, folds=1)


@pytest.fixture(scope="module")
def models():
    return TransformersGenerator(embedded_policy()), load_verifier(embedded_verifier())


@pytest.fixture(scope="module")
def task():
    return arith_task("test", 6)


def test_the_pilot_is_counted_and_its_samples_vote(models, task):
    generator, prm = models
    params = {"max_tokens": "160", "force": "majority"}
    strategy = make_strategy("compute_optimal", generator, task, prm, params, seed=0)
    assert strategy.sample_limit(8) == 8 and strategy.sample_limit(3) == 3
    for result in strategy.run_many(task.problems[:3], 8):
        assert result.cost.samples == len(result.candidates) == 8
        assert result.details["pilot"] == 4 and result.details["configuration"] == "majority"
        assert result.cost.verifier_tokens > 0  # the pilot's reading
        # Only the pilot was verified; all eight voted.
        assert sum("outcome" in c.scores for c in result.candidates) == 4
        answers = [c.answer for c in result.candidates if c.answer is not None]
        assert answers.count(result.answer) == max(answers.count(a) for a in answers)
    # A budget no larger than the pilot is the pilot alone.
    for n in (4, 2):
        for result in strategy.run_many(task.problems[:2], n):
            assert result.cost.samples == n and result.details["configuration"] == "pilot vote"


def test_a_budget_within_the_pilot_is_chosen_among_as_the_configuration_would(models, task):
    # Same seed, same pilot: each forced configuration sees the same four samples, scored.
    generator, prm = models
    picks = {}
    for force in ("majority", "weighted_majority", "revision"):
        params = {"max_tokens": "160", "force": force}
        strategy = make_strategy("compute_optimal", generator, task, prm, params, seed=0)
        picks[force] = strategy.run_many(task.problems, 4)
    for plain, weighted, revision in zip(*picks.values(), strict=True):
        assert [c.text for c in plain.candidates] == [c.text for c in weighted.candidates]
        for force, result in zip(picks, (plain, weighted, revision), strict=True):
            assert result.cost.samples == 4 and result.details["configuration"] == "pilot vote"
            assert result.details["chosen_as"] == force
        answers = [c.answer for c in plain.candidates if c.answer is not None]
        assert answers.count(plain.answer) == max(map(answers.count, answers))

        def totals(key: str, candidates=weighted.candidates) -> dict[str, float]:
            summed: dict[str, float] = {}
            for c in candidates:
                if c.answer is not None:
                    summed[c.answer] = summed.get(c.answer, 0.0) + c.scores[key]
            return summed

        by_last, by_outcome = totals("prm_last"), totals("outcome")  # weighted's default; a verdict
        assert by_last[weighted.answer] == max(by_last.values())
        # A revision has nothing to select with at this budget: it takes the weighted vote.
        assert by_outcome[revision.answer] == max(by_outcome.values())


def test_a_search_runs_behind_the_pilot_within_its_limit(models, task):
    generator, prm = models
    params = {"max_tokens": "160", "force": "beam_search:beam_width=2"}
    strategy = make_strategy("compute_optimal", generator, task, prm, params, seed=0)
    [result] = strategy.run_many(task.problems[:1], 8)
    assert 4 < result.cost.samples <= strategy.sample_limit(8)
    assert result.details["configuration"] == "beam_search:beam_width=2"
    assert result.answer is not None


def test_adaptive_behind_the_pilot_stops_on_it_when_it_agrees(models, task):
    generator, prm = models
    params = {"max_tokens": "160", "force": "adaptive"}
    strategy = make_strategy("compute_optimal", generator, task, prm, params, seed=0)
    unanimous = 0
    for result in strategy.run_many(task.problems, 32):
        pilot = [c.answer for c in result.candidates[:4]]
        assert result.cost.samples == len(result.candidates) == result.details["samples"] <= 32
        if None not in pilot and len(set(pilot)) == 1:  # sure already: nothing more drawn
            unanimous += 1
            assert result.cost.samples == 4 and result.details["stopped"] == "confident"
        else:  # the pilot votes on with rounds of 4 until the rule is sure or N is spent
            assert result.cost.samples > 4 and result.cost.samples % 4 == 0
            assert result.details["stopped"] == "confident" or result.cost.samples == 32
    assert unanimous > 0


def test_a_policy_for_other_models_is_refused(models, task, tiny_model, tmp_path):
    generator, prm = models
    path = tmp_path / "policy.json"
    policy({"generator": identify(generator), "verifier": identify(prm)}).save(path)
    ok = make_strategy("compute_optimal", generator, task, prm, {"policy": str(path)})
    assert ok.policy is not None
    other = TransformersGenerator(tiny_model)
    with pytest.raises(ConfigError, match="calibrated for the generator 'arith-policy'"):
        make_strategy("compute_optimal", other, task, prm, {"policy": str(path)})
    with pytest.raises(ConfigError, match="pilot of 4"):
        make_strategy("compute_optimal", generator, task, prm, {"policy": str(path), "pilot": "2"})
    # Without a policy, only the embedded models have one.
    with pytest.raises(ConfigError, match="ponder calibrate"):
        make_strategy("compute_optimal", other, task, prm)


def test_a_model_is_known_by_its_defining_files_not_its_card(tmp_path):
    folder = tmp_path / "policy"
    shutil.copytree(embedded_policy(), folder)
    before = fingerprint(folder)["sha256_of_files"]
    (folder / "MODEL_CARD.md").write_text("rewritten")
    (folder / "training_log.json").unlink()
    assert fingerprint(folder)["sha256_of_files"] == before
    original = (folder / "config.json").read_text()
    changed = original.replace('"rope_theta"', '"rope_theta_"')
    assert changed != original
    (folder / "config.json").write_text(changed)
    assert fingerprint(folder)["sha256_of_files"] != before
    (folder / "config.json").write_text(original)
    assert fingerprint(folder)["sha256_of_files"] == before
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert fingerprint(folder)["sha256_of_files"] != before


def test_weights_retrained_in_the_same_shape_are_another_model(models, task, tmp_path):
    """Same file names and sizes, other bytes: a policy calibrated for the old weights is
    refused; one recorded before weights were sampled (no sha256_of_weights) is not."""
    generator, prm = models
    folder = tmp_path / "arith-policy"
    shutil.copytree(embedded_policy(), folder)
    before = fingerprint(folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight, in the middle of the file
    weights.write_bytes(bytes(data))
    after = fingerprint(folder)
    assert after["sha256_of_files"] == before["sha256_of_files"]
    assert after["sha256_of_weights"] != before["sha256_of_weights"]

    retrained = TransformersGenerator(folder)
    path = tmp_path / "policy.json"
    policy({"generator": identify(generator), "verifier": identify(prm)}).save(path)
    with pytest.raises(ConfigError, match="calibrated for the generator 'arith-policy'") as no:
        make_strategy("compute_optimal", retrained, task, prm, {"policy": str(path)})
    message = str(no.value)  # it names both weights
    assert before["sha256_of_weights"] in message and after["sha256_of_weights"] in message
    older = {k: v for k, v in identify(generator).items() if k != "sha256_of_weights"}
    policy({"generator": older, "verifier": identify(prm)}).save(path)
    kept = make_strategy("compute_optimal", retrained, task, prm, {"policy": str(path)})
    assert kept.policy is not None


def test_without_a_verifier_the_pilot_is_read_by_its_agreement_alone(models, task, tmp_path):
    from ponder.strategies.registry import needs_verifier

    generator, prm = models
    made = Policy(
        pilot=4,
        edges=(0.6,),
        table={8: (choice("majority"), choice("self_certainty"))},
        models={"generator": identify(generator), "verifier": None},
        reading="agreement",
    )
    path = tmp_path / "agreement.json"
    made.save(path)
    assert Policy.load(path).reading == "agreement"
    params = {"policy": str(path), "max_tokens": "160"}
    assert not needs_verifier("compute_optimal", params)
    strategy = make_strategy("compute_optimal", generator, task, None, params, seed=0)
    for result in strategy.run_many(task.problems[:3], 8):
        details = result.details
        assert "verifier_score" not in details and details["reading"] == details["agreement"]
        assert result.cost.verifier_calls == 0 and result.cost.samples == 8
        expected = "majority" if details["reading"] > 0.6 else "self_certainty"
        assert details["configuration"] == expected
    # A policy made with the verifier's reading cannot be followed without a verifier.
    policy({"generator": identify(generator), "verifier": identify(prm)}).save(path)
    assert needs_verifier("compute_optimal", params)
    with pytest.raises(ConfigError, match="needs a verifier"):
        make_strategy("compute_optimal", generator, task, None, params)


def test_calibrate_then_solve_and_eval_with_the_policy(ponder_cli, tmp_path):
    out = tmp_path / "policy.json"
    calibrate = subprocess.run(
        [*ponder_cli, "calibrate", "--limit", "6", "--budgets", "4,6", "--strategies",
         "majority,weighted_majority", "--param", "max_tokens=160", "--bins", "2",
         "--rule", "auto", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert calibrate.returncode == 0, calibrate.stderr
    made = Policy.load(out)
    assert made.made_with["split"] == "dev" and made.made_with["problems"] == 6
    assert set(made.table) == {4, 6} and len(made.edges) == 1
    assert made.models["generator"]["name"] == "arith-policy"
    assert "N=4:" in calibrate.stdout and "N=6:" in calibrate.stdout
    # Its own accuracy on problems it was not made from, and every choice's uncertainty.
    assert "cross-validated (5 folds, 6 problems): policy" in calibrate.stdout
    # --rule auto: per budget, the rule whose policy did better held out, with both scores.
    assert set(made.made_with["rule"]) == {"4", "6"}
    assert set(made.made_with["rule"].values()) <= {"best", "one-se"}
    assert set(made.made_with["rule_chosen_from"]) == {"best", "one-se"}
    assert f"  rule: {made.made_with['rule']['6']} (held out: best " in calibrate.stdout
    assert "tokens)" in calibrate.stdout
    checked = made.made_with["cross_validated"]["6"]
    assert 0 <= checked["policy"] <= 1 and checked["fixed"] in ("majority", "weighted_majority")
    assert all(e.stderr is not None and e.raw_accuracy is not None for e in made.table[6])
    solve = subprocess.run(
        [*ponder_cli, "solve", "Start with 12. Add 7.", "--strategy", "compute_optimal",
         "--budget", "6", "--param", f"policy={out}", "--param", "max_tokens=160", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert solve.returncode == 0, solve.stderr
    details = json.loads(solve.stdout)["details"]
    assert details["policy_budget"] == 6 and details["bin"] in (1, 2)
    configuration, spend = made.choose(6, details["reading"])  # what the file says to run
    assert details["spend"] == spend and spend in (4, 6)
    assert details["configuration"] == ("pilot vote" if spend == 4 else str(configuration))
    runs = tmp_path / "eval"
    done = subprocess.run(
        [*ponder_cli, "eval", "--limit", "3", "--strategies", "compute_optimal,majority",
         "--budgets", "4,6", "--param", f"compute_optimal.policy={out}", "--param",
         "max_tokens=160", "--difficulty-samples", "0", "--out", str(runs), "--json",
         "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    labels = {r["strategy"] for r in json.loads(done.stdout)}
    assert labels == {"majority", f"compute_optimal[policy={out}]"}
    again = subprocess.run(
        [*ponder_cli, "calibrate", "--limit", "6", "--strategies", "compute_optimal",
         "--out", str(tmp_path / "x.json")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 2 and "cannot be a candidate" in again.stderr


def test_a_shared_budget_goes_to_the_hard_but_solvable():
    def row(*accuracies):
        return tuple(Entry("majority", a, 10) for a in accuracies)

    # bins: easy (right at once), hard but solvable (gains with N), hopeless (never right)
    table = {4: row(0.9, 0.3, 0.0), 16: row(0.9, 0.6, 0.0), 64: row(0.92, 0.7, 0.0)}
    p = Policy(pilot=4, edges=(0.8, 0.4), table=table, models={})
    readings = [0.9, 0.6, 0.1, 0.95, 0.5]  # easy, hard, hopeless, easy, hard
    budgets = p.allocate(readings, total=5 * 16)
    assert sum(budgets) <= 80 and all(b >= 4 for b in budgets)
    assert budgets[2] == 4  # nothing to gain
    assert budgets[1] == budgets[4] == 16 and budgets[0] == budgets[3] == 4
    # With more to share the hard ones go to 64 before the easy ones gain their 0.02.
    more = p.allocate(readings, total=4 + 64 + 4 + 4 + 64)
    assert more == [4, 64, 4, 4, 64]
    with pytest.raises(ConfigError, match="cannot give 5 prompts"):
        p.allocate(readings, total=19)


def allocating(models, task, tmp_path):
    """compute_optimal under a two-budget policy (4 or 8 samples) for the embedded models."""
    generator, prm = models
    path = tmp_path / "policy.json"
    table = {
        4: (choice("majority"), Entry("majority", 0.2, 5)),
        8: (choice("majority"), Entry("majority", 0.6, 5)),
    }
    Policy(
        pilot=4, edges=(0.5,), table=table,
        models={"generator": identify(generator), "verifier": identify(prm)},
    ).save(path)  # fmt: skip
    strategy = make_strategy(
        "compute_optimal", generator, task, prm, {"policy": str(path), "max_tokens": "160"}
    )
    return strategy


def test_a_batch_shares_one_budget_by_its_pilots(models, task, tmp_path):
    strategy = allocating(models, task, tmp_path)
    problems = task.problems[:4]
    results = strategy.run_allocated(problems, total=24)
    budgets = [r.budget for r in results]
    assert sum(budgets) <= 24 and set(budgets) <= {4, 8} and 8 in budgets
    for result in results:
        assert result.details["allocated"] == result.budget == result.cost.samples
        # Hard ones (reading <= 0.5) are the ones that got more.
        assert (result.budget == 8) <= (result.details["reading"] <= 0.5)
    with pytest.raises(ConfigError, match="cannot give 4 prompts"):
        strategy.run_allocated(problems, total=12)


def test_one_instance_serves_concurrent_calls_as_it_serves_them_apart(models, task, tmp_path):
    """Two allocations at once on the same strategy object (as a server would make them)
    give what each gives alone: the object keeps no per-call state."""
    strategy = allocating(models, task, tmp_path)
    first, second = task.problems[:3], task.problems[3:6]
    apart = [strategy.run_allocated(first, total=16), strategy.run_allocated(second, total=20)]

    async def together():
        return await asyncio.gather(
            strategy.arun_allocated(first, total=16), strategy.arun_allocated(second, total=20)
        )

    for alone, concurrent in zip(apart, run_sync(together()), strict=True):
        assert [r.budget for r in concurrent] == [r.budget for r in alone]
        assert [r.answer for r in concurrent] == [r.answer for r in alone]
        assert [r.cost.samples for r in concurrent] == [r.cost.samples for r in alone]


def test_calibrating_without_a_verifier_makes_an_agreement_policy(ponder_cli, tmp_path):
    out = tmp_path / "policy.json"
    calibrate = subprocess.run(
        [*ponder_cli, "calibrate", "--limit", "5", "--budgets", "4", "--strategies",
         "majority,self_certainty", "--param", "max_tokens=160", "--bins", "2", "--folds", "0",
         "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert calibrate.returncode == 0, calibrate.stderr
    made = Policy.load(out)
    assert made.reading == "agreement" and made.models["verifier"] is None
    assert "cross_validated" not in made.made_with
    solve = subprocess.run(
        [*ponder_cli, "solve", "Start with 12. Add 7.", "--strategy", "compute_optimal",
         "--budget", "4", "--param", f"policy={out}", "--param", "max_tokens=160", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert solve.returncode == 0, solve.stderr
    result = json.loads(solve.stdout)
    assert result["answer"] == "19" and "verifier_score" not in result["details"]
    assert result["cost"]["verifier_calls"] == 0
