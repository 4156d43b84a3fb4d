"""The committed embedded models: plain Hugging Face folders, a policy whose accuracy falls with
difficulty, a verifier that tells right solutions from wrong ones (as a judge and as a PRM),
and the default of `ponder solve`.

The full measurements (fifths by oracle difficulty, revisions, AUROCs with intervals on 200
problems) are in benchmarks/arith_policy.py and benchmarks/arith_verifier.py; these tests
check the same properties on a fixed small sample, with wide margins.
"""

from __future__ import annotations

import json
import statistics

import pytest

from ponder import Prompt, SamplingParams, load_generator, run_sync, solve
from ponder.cli import main
from ponder.generators.openai import OpenAIGenerator
from ponder.generators.transformers import TransformersGenerator
from ponder.metrics import auroc
from ponder.models import embedded, embedded_policy, embedded_verifier
from ponder.tasks import extract_answer
from ponder.tasks.arith import arith_task, step_labels
from ponder.verifiers import GenerativeVerifier, Solution, load_verifier

SAMPLES = 8
PER_BIN = 24
# Floors under what these 48 problems measure (judge: final 0.89, step 0.986, wrong answers
# passed 0.01; PRM: 0.82, 0.88, 0.06); the verifier's MODEL_CARD has the 200-problem numbers.
FINAL_AUROC_JUDGE = 0.80
STEP_AUROC_JUDGE = 0.93
PASSED_JUDGE = 0.10
FINAL_AUROC_PRM = 0.72
STEP_AUROC_PRM = 0.80
PASSED_PRM = 0.2


@pytest.fixture(scope="module")
def policy():
    return TransformersGenerator(embedded_policy())


@pytest.fixture(scope="module")
def bins():
    """The first test problems with 1-2 operations (easy) and with 7-8 two-digit ones (hard)."""
    task = arith_task("test")
    knobs = [p.metadata["difficulty"] for p in task.problems]
    easy = [p for p, k in zip(task.problems, knobs, strict=True) if k["steps"] <= 2]
    hard = [
        p
        for p, k in zip(task.problems, knobs, strict=True)
        if k["steps"] >= 7 and k["digits"] == 2 and k["multiply"]
    ]
    assert len(easy) >= PER_BIN and len(hard) >= PER_BIN
    return task, {"easy": easy[:PER_BIN], "hard": hard[:PER_BIN]}


@pytest.fixture(scope="module")
def samples(policy, bins):
    """SAMPLES solutions at temperature 1.0 for each problem of both bins."""
    task, groups = bins
    problems = groups["easy"] + groups["hard"]
    params = SamplingParams(n=SAMPLES, max_tokens=200, temperature=1.0, seed=0)
    generations = run_sync(policy.generate([task.prompt(p) for p in problems], params))
    return {
        p.id: [c.text for c in g.completions] for p, g in zip(problems, generations, strict=True)
    }


@pytest.mark.parametrize("name", ["arith-policy", "arith-verifier"])
def test_the_folders_are_plain_small_hugging_face_models_with_a_card(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = embedded(name)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (folder / "tokenizer.model").is_file(), "SentencePiece model for llama.cpp and vLLM"
    assert (folder / "MODEL_CARD.md").is_file()
    assert (folder / "model.safetensors").stat().st_size < 25_000_000, "half of 50 MB in all"
    assert [tokenizer.decode([t]) for t in tokenizer("907", add_special_tokens=False).input_ids][
        -3:
    ] == ["9", "0", "7"], "every digit is its own token"
    if name == "arith-verifier":
        assert json.loads((folder / "ponder_judge.json").read_text())["tag"] == "ки"
        assert json.loads((folder / "ponder_prm.json").read_text())["tag"] == "ки"


def test_policy_accuracy_falls_steeply_with_difficulty(bins, samples):
    task, groups = bins
    rate = {
        name: statistics.mean(
            task.is_correct(extract_answer(text), p) for p in problems for text in samples[p.id]
        )
        for name, problems in groups.items()
    }
    assert rate["easy"] >= 0.7, rate
    assert rate["hard"] <= rate["easy"] - 0.4, rate


@pytest.fixture(scope="module")
def distinct(bins, samples):
    """The distinct sampled solutions, whether each answer is right, and each step's truth."""
    task, groups = bins
    solutions, answer_right, step_truth = [], [], []
    for problem in groups["easy"] + groups["hard"]:
        for text in dict.fromkeys(samples[problem.id]):
            steps = task.split_steps(text)
            if not steps:
                continue
            solutions.append(Solution(problem.question, steps))
            answer_right.append(task.is_correct(extract_answer(text), problem))
            step_truth.append(step_labels(problem, "\n".join(steps)))
    assert 0 < sum(answer_right) < len(answer_right)
    return solutions, answer_right, step_truth


@pytest.mark.parametrize(
    ("kind", "final", "step", "passed"),
    [
        ("judge", FINAL_AUROC_JUDGE, STEP_AUROC_JUDGE, PASSED_JUDGE),
        ("prm", FINAL_AUROC_PRM, STEP_AUROC_PRM, PASSED_PRM),
    ],
)
def test_the_verifier_tells_right_solutions_from_wrong_ones(distinct, kind, final, step, passed):
    solutions, answer_right, step_truth = distinct
    verifier = load_verifier(embedded_verifier(), kind=kind)
    assert isinstance(verifier, GenerativeVerifier) == (kind == "judge")
    verdicts = run_sync(verifier.score(solutions))
    assert auroc([v.outcome for v in verdicts], answer_right) >= final  # chance: 0.5
    scores = [s for v in verdicts for s in v.step_scores]
    assert auroc(scores, [t for truth in step_truth for t in truth]) >= step
    outcomes = zip(verdicts, answer_right, strict=True)
    wrong_passed = [v.outcome >= 0.5 for v, ok in outcomes if not ok]
    assert sum(wrong_passed) <= passed * len(wrong_passed), "wrong answers are scored as wrong"


def test_ponder_solve_uses_the_embedded_policy_with_no_flags(capsys):
    question = "Start with 37. Add 48. Multiply by 6. Subtract 25."
    assert main(["solve", question, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "arith-policy" and result["strategy"] == "single"
    lines = result["chosen"]["text"].strip("\n").split("\n")
    assert len(lines) == 4 and lines[0] == "37 + 48 = 85" and lines[1].startswith("85 * 6 = ")
    product, last = lines[1].split(" = ")[1], lines[2].split(" = ")[1]
    assert lines[2].startswith(f"{product} - 25 = ")
    assert lines[3] == f"The answer is {result['answer']}." == f"The answer is {last}."
    # Greedy, the policy slips on 85 * 6 (the product it gets wrong most); revising fixes it.
    assert main(["solve", question, "--strategy", "revision", "--budget", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == "485"


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Start with 12. Add 7.", "19"),
        ("Start with 7. Multiply by 0.", "0"),
        ("Start with 100. Subtract 1.", "99"),
    ],
)
def test_ponder_solve_answers_what_a_person_types(question, answer):
    """Start and operands of different digit counts, zero and a lone operation are in the class."""
    assert solve(question).answer == answer


def test_solve_and_load_generator_default_to_the_embedded_policy():
    assert load_generator().name == "arith-policy"
    assert solve("Start with 12. Add 7.").answer == "19"


@pytest.mark.vllm
def test_vllm_serves_the_policy_and_decodes_as_ponder_does(vllm_arith_url, policy, bins):
    task, groups = bins
    prompts = [task.prompt(p) for p in groups["easy"][:4] + groups["hard"][:4]]
    assert all(isinstance(p, Prompt) and not p.is_chat for p in prompts)
    params = SamplingParams(n=1, max_tokens=200, temperature=0.0)
    served = OpenAIGenerator(vllm_arith_url, model="arith-policy")
    try:
        remote = run_sync(served.generate(prompts, params))
    finally:
        run_sync(served.aclose())
    local = run_sync(policy.generate(prompts, params))
    assert [g.completions[0].text for g in remote] == [g.completions[0].text for g in local]
    assert all(g.completions[0].finish_reason == "stop" for g in remote)
