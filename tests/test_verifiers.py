"""The verifier protocol and the Math-Shepherd-style PRM adapter, on a real model folder.

The tiny model is no trained PRM, so these tests check the plumbing (which
positions are scored, batching, formats, accounting), not the scores' quality.
"""

from __future__ import annotations

import json
import shutil

import pytest

from ponder import Budget, BudgetExhausted, BudgetMeter, ConfigError, ModelLoadError
from ponder.sync import run_sync
from ponder.verifiers import CausalLMPRM, PRMFormat, Solution, Verdict, Verifier, aggregate

# In the tiny vocabulary "=" is a token, and so are the digits used as labels.
FORMAT = PRMFormat(prefix="{question}\n", step="{step} =\n", tag="=", good="1", bad="2")
SOLUTIONS = [
    Solution("What is 2 + 3?", ("2 + 3 = 5", "The answer is 5.")),
    Solution("What is 12 + 7?", ("12 + 7 = 19",)),
    Solution("What is 9 + 9?", ("9 + 9 = 18", "18 + 0 = 18", "The answer is 18.")),
]


@pytest.fixture(scope="module")
def prm(tiny_model):
    return CausalLMPRM(tiny_model, format=FORMAT)


def test_one_score_per_step_and_the_outcome_is_the_last(prm):
    assert isinstance(prm, Verifier)
    verdicts = run_sync(prm.score(SOLUTIONS))
    assert [len(v.step_scores) for v in verdicts] == [2, 1, 3]
    for verdict in verdicts:
        assert all(0.0 <= s <= 1.0 for s in verdict.step_scores)
        assert verdict.outcome == verdict.step_scores[-1]
        assert verdict.tokens > 0


def test_scores_match_a_direct_forward_pass(prm, tiny_model):
    """The score of a step is P(good) / (P(good) + P(bad)) at the token closing its tag."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    solution = SOLUTIONS[0]
    text = "What is 2 + 3?\n2 + 3 = 5 =\nThe answer is 5. =\n"
    ids = tokenizer(text).input_ids
    tag = tokenizer.convert_tokens_to_ids("=")
    good, bad = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("2")
    # The tags are the "=" tokens followed by a newline byte: the last two "=" tokens.
    positions = [i for i, t in enumerate(ids) if t == tag][-2:]
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]
    expected = [torch.softmax(logits[p, [good, bad]], -1)[0].item() for p in positions]
    [verdict] = run_sync(prm.score([solution]))
    assert verdict.step_scores == pytest.approx(expected, abs=1e-5)
    assert verdict.tokens == len(ids)


def test_batching_does_not_change_scores(prm, tiny_model):
    one_by_one = CausalLMPRM(tiny_model, format=FORMAT, max_batch_size=1)
    batched = run_sync(prm.score(SOLUTIONS))
    single = run_sync(one_by_one.score(SOLUTIONS))
    for a, b in zip(batched, single, strict=True):
        assert a.step_scores == pytest.approx(b.step_scores, abs=1e-5)


def test_a_solution_without_steps_gets_the_lowest_outcome(prm):
    [verdict] = run_sync(prm.score([Solution("What is 1 + 1?", ())]))
    assert verdict.step_scores == ()
    assert verdict.outcome == 0.0


@pytest.mark.parametrize(
    ("how", "expected"),
    [("last", 0.5), ("min", 0.2), ("product", 0.9 * 0.2 * 0.5), ("mean", (0.9 + 0.2 + 0.5) / 3)],
)
def test_aggregations(how, expected):
    assert aggregate([0.9, 0.2, 0.5], how) == pytest.approx(expected)
    assert Verdict((0.9, 0.2, 0.5), 0.5, 10).aggregate(how) == pytest.approx(expected)


def test_aggregation_errors():
    with pytest.raises(ConfigError):
        aggregate([], "min")
    with pytest.raises(ConfigError):
        aggregate([0.5], "median")  # type: ignore[arg-type]
    assert Verdict((), 0.7, 3).aggregate("min") == 0.7


def test_outcome_aggregation_is_configurable(tiny_model):
    prm = CausalLMPRM(tiny_model, format=FORMAT, outcome="min")
    verdict = run_sync(prm.score(SOLUTIONS[2:]))[0]
    assert verdict.outcome == min(verdict.step_scores)


def test_a_folder_states_its_own_format(tiny_model, tmp_path):
    folder = tmp_path / "prm"
    shutil.copytree(tiny_model, folder)
    (folder / "ponder_prm.json").write_text(
        json.dumps(
            {
                "prefix": "{question}\n",
                "step": "{step} =\n",
                "tag": "=",
                "good": "1",
                "bad": "2",
            }
        )
    )
    assert CausalLMPRM(folder).format == FORMAT


def test_a_saved_format_is_the_folders_format(tmp_path):
    FORMAT.save(tmp_path)
    assert PRMFormat.of_folder(tmp_path) == FORMAT
    assert PRMFormat.of_folder(tmp_path / "elsewhere") == PRMFormat(), "Math-Shepherd's default"


def test_labels_must_be_single_tokens(tiny_model):
    with pytest.raises(ModelLoadError, match="not single tokens"):
        CausalLMPRM(tiny_model, format=PRMFormat(good="good", bad="bad"))


@pytest.mark.parametrize(
    "fields", [{"prefix": "no question"}, {"step": "{step}\n"}, {"step": "ки {step}\n"}]
)
def test_formats_are_validated(fields):
    with pytest.raises(ConfigError):
        PRMFormat(**fields)


def test_meter_counts_verifier_calls_tokens_and_flops(prm):
    meter = BudgetMeter()
    verdicts = run_sync(meter.wrap_verifier(prm).score(SOLUTIONS))
    cost = meter.cost()
    assert cost.verifier_calls == 1
    assert cost.verifier_tokens == sum(v.tokens for v in verdicts)
    assert cost.flops == pytest.approx(sum(prm.shape.prefill_flops(v.tokens) for v in verdicts))
    assert cost.generated_tokens == 0


def test_flops_budget_refuses_a_verifier_call_that_does_not_fit(prm):
    tokens = run_sync(prm.count_tokens(SOLUTIONS))
    needed = sum(prm.shape.prefill_flops(t) for t in tokens)
    meter = BudgetMeter(Budget(flops=needed * 1.5))
    verifier = meter.wrap_verifier(prm)
    run_sync(verifier.score(SOLUTIONS))
    with pytest.raises(BudgetExhausted, match="verifier call"):
        run_sync(verifier.score(SOLUTIONS))
    assert meter.cost().verifier_calls == 1
    assert meter.cost().flops <= needed * 1.5


def _arith_solutions() -> list[Solution]:
    from ponder.tasks.arith import arith_task

    solutions = []
    for problem in arith_task("test", 4).problems:
        gold = tuple(str(problem.metadata["solution"]).split("\n"))
        solutions.append(Solution(problem.question, gold))
        solutions.append(Solution(problem.question, (*gold[:1], "1 + 1 = 3", "The answer is 3.")))
    return solutions


@pytest.mark.vllm
def test_a_served_prm_scores_as_the_local_one(vllm_verifier_url):
    from ponder.models import embedded_verifier
    from ponder.verifiers import load_verifier

    solutions = _arith_solutions()
    local = CausalLMPRM(embedded_verifier()).score_blocking(solutions)
    served = load_verifier(
        vllm_verifier_url, kind="prm", format=embedded_verifier(), model="arith-verifier"
    )
    assert isinstance(served, Verifier)
    remote = run_sync(served.score(solutions))
    for mine, theirs in zip(local, remote, strict=True):
        assert len(theirs.step_scores) == len(mine.step_scores)
        assert theirs.step_scores == pytest.approx(mine.step_scores, abs=2e-3)
        assert theirs.outcome == pytest.approx(mine.outcome, abs=2e-3)
        assert theirs.tokens == pytest.approx(mine.tokens, abs=2)
    assert run_sync(served.score([Solution("Start with 3.", ())]))[0].outcome == 0.0
    run_sync(served.aclose())


@pytest.mark.vllm
def test_a_served_judge_judges_as_the_local_one(vllm_verifier_url):
    """The generative verifier over any generator: here vLLM serving the embedded verifier.

    Greedy checks can part between backends at a near-tie (float32 here, vLLM's kernels
    there), so the served judge's own transcript is read again by the local model: each of
    its verdicts must be the number the local model gives at that point of that text.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ponder.models import embedded_verifier
    from ponder.verifiers import GenerativeVerifier, load_verifier

    solutions = _arith_solutions()
    served = load_verifier(vllm_verifier_url, format=embedded_verifier(), model="arith-verifier")
    assert isinstance(served, GenerativeVerifier)
    remote = run_sync(served.score(solutions))
    model = AutoModelForCausalLM.from_pretrained(embedded_verifier(), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(embedded_verifier())
    fmt = served.format

    def label_ids(label: str) -> list[int]:
        return [i for t, i in tokenizer.get_vocab().items() if t.replace("▁", "").strip() == label]

    good, bad = label_ids(fmt.good), label_ids(fmt.bad)
    for solution, theirs in zip(solutions, remote, strict=True):
        text = served.transcript(solution)
        assert text is not None
        rows = tokenizer(text, return_offsets_mapping=True)
        ends = enumerate(rows.offset_mapping)
        tags = [i for i, (_, stop) in ends if text.endswith(fmt.tag, 0, stop)]
        assert len(tags) == len(solution.steps), "one verdict after each step's tag"
        with torch.no_grad():  # one pass reads every verdict: what follows each tag
            probs = model(torch.tensor([rows.input_ids])).logits[0, tags].softmax(-1)
        running, mine = 1.0, []
        for p_good, p_bad in zip(probs[:, good].sum(-1), probs[:, bad].sum(-1), strict=True):
            running *= float(p_good / (p_good + p_bad))
            mine.append(running)
        assert theirs.step_scores == pytest.approx(mine, abs=5e-3)
        assert theirs.generated_tokens > 0
    run_sync(served.aclose())
