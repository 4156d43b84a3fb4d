"""The arith models' training data and training commands (a few steps, not the full runs)."""

from __future__ import annotations

import itertools
import json
import random
import shutil
import time

import pytest

from ponder import Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.models.arith_checks import JUDGE_FORMAT, PRM_FORMAT
from ponder.models.arith_policy import (
    PROMPT,
    encode,
    examples,
    revision_examples,
    train,
    train_revisions,
)
from ponder.models.arith_verifier import encoder
from ponder.models.arith_verifier import examples as verifier_examples
from ponder.models.arith_verifier import train as train_verifier
from ponder.tasks.arith import SOLUTION_MARKER, split_of
from ponder.verifiers import (
    CausalLMPRM,
    GenerativeVerifier,
    Solution,
    declared_kind,
    load_verifier,
)


def question_of(text: str) -> str:
    return text.split("\n")[0].removeprefix("Problem: ")


def test_training_examples_come_from_the_train_split_only():
    items = list(itertools.islice(examples(random.Random(1), revisions=0.25), 2000))
    assert all(split_of(question_of(text)) == "train" for text, _ in items)
    revisions = [text for text, _ in items if "\nRevision:\n" in text]
    assert 0.18 < len(revisions) / len(items) < 0.32
    solutions = [text for text, _ in items if "\nRevision:\n" not in text]
    assert all(text.startswith("Problem: ") for text in solutions)
    for text, spans in items[:200]:  # the model writes what follows its prompt, to the end
        marker = "Revision:\n" if "\nRevision:\n" in text else "Solution:\n"
        assert spans == [(text.rindex(marker) + len(marker), -1)]


@pytest.fixture(scope="module")
def briefly_trained_policy(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "policy"
    train(out, steps=2, seed=0, batch=4)
    return out


def test_labels_cover_what_the_model_writes_and_its_end(briefly_trained_policy):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(briefly_trained_policy)
    prompt = PROMPT.format(question="Start with 3. Add 4.")
    ids, labels = encode(tokenizer, (prompt + "3 + 4 = 7\nThe answer is 7.", [(len(prompt), -1)]))
    written = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    assert tokenizer.decode(written[:-1]) == "3 + 4 = 7\nThe answer is 7."
    assert written[-1] == tokenizer.eos_token_id
    prompt_ids = tokenizer(prompt).input_ids
    assert ids[: len(prompt_ids)] == prompt_ids, "the prompt tokenizes as it will at inference"


def test_the_training_command_writes_a_loadable_model(briefly_trained_policy):
    out = briefly_trained_policy
    assert (out / "training_log.json").is_file()
    generator = TransformersGenerator(out)
    prompt = Prompt.raw(PROMPT.format(question="Start with 3. Add 4."))
    [generation] = run_sync(generator.generate([prompt], SamplingParams(max_tokens=8, seed=0)))
    assert generation.completions[0].num_tokens >= 1


def test_the_revision_phase_mixes_own_attempts_with_phase_one_examples():
    question, gold = "Start with 3. Add 4.", ["3 + 4 = 7", "The answer is 7."]
    attempts = [(question, gold, ["3 + 4 = 8", "The answer is 8."]), (question, gold, gold)]
    items = list(itertools.islice(revision_examples(attempts, random.Random(0)), 2000))
    own_wrong = sum(
        "Solution:\n3 + 4 = 8\nThe answer is 8.\nRevision:\n" in text for text, _ in items
    )
    own_right = sum(
        "Solution:\n3 + 4 = 7\nThe answer is 7.\nRevision:\n" in text for text, _ in items
    )
    assert 0.45 < own_wrong / len(items) < 0.55
    assert 0.07 < own_right / len(items) < 0.13
    revised = next(text for text, _ in items if "is 8.\nRevision:\n" in text)
    assert revised.endswith(SOLUTION_MARKER + "\n".join(gold)), "the revision ends right"
    assert "= 7 -> 3 + 4 = 8 ки-" in revised, "the check comes before the step it judges"


def test_holding_solving_learns_the_policys_own_samples_as_drawn():
    question, gold = "Start with 3. Add 4.", ["3 + 4 = 7", "The answer is 7."]
    wrong = ["3 + 4 = 8", "The answer is 8."]
    drawn = [(question, gold, wrong), (question, gold, wrong), (question, gold, gold)]
    mix = revision_examples(drawn, random.Random(0), hold_solving=True)
    items = [text for text, _ in itertools.islice(mix, 3000)]
    prompt = PROMPT.format(question=question)
    solved_wrong = sum(text == prompt + "\n".join(wrong) for text in items)
    solved_right = sum(text == prompt + "\n".join(gold) for text in items)
    assert 0.27 < (solved_wrong + solved_right) / len(items) < 0.33
    assert 1.6 < solved_wrong / solved_right < 2.5, "samples weigh as often as they were drawn"
    solved = sum("Revision:" not in text for text in items)
    assert solved == solved_wrong + solved_right, "every solution learned is one the policy drew"
    revised_wrong = sum("is 8.\nRevision:\n" in text for text in items)
    assert 0.45 < revised_wrong / len(items) < 0.55, "each distinct attempt revised as before"


def test_the_revision_phase_fine_tunes_the_policy_in_place(briefly_trained_policy, tmp_path):
    out = tmp_path / "policy"
    shutil.copytree(briefly_trained_policy, out)
    before = (out / "model.safetensors").read_bytes()
    train_revisions(out, steps=2, seed=0, problems=2, samples=2, batch=4)
    assert (out / "model.safetensors").read_bytes() != before
    record = json.loads((out / "training_log.json").read_text())
    [phase] = record["revision_phases"]
    assert phase["steps"] == 2 and phase["attempts"] >= 1 and phase["init"] == str(out)
    assert (out / "ponder_prompt.json").is_file()
    # Again, from other weights, revising another folder's samples, verdicts weighed: both
    # runs stay in the record.
    train_revisions(
        out, steps=1, seed=1, problems=2, samples=1, batch=2, attempts_from=briefly_trained_policy,
        init=briefly_trained_policy, verdict_weight=5.0, bad_weight=4.0,
    )  # fmt: skip
    first, second = json.loads((out / "training_log.json").read_text())["revision_phases"]
    assert first == phase
    assert second["init"] == second["attempts_from"] == str(briefly_trained_policy)
    assert (second["steps"], second["verdict_weight"], second["bad_weight"]) == (1, 5.0, 4.0)


def test_a_time_limit_cuts_the_steps_once_and_the_schedule_runs_over_them():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ponder.models.arith_policy import fit

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2, pad_token_id=0)
    )  # fmt: skip
    stream = itertools.repeat(([[1, 5, 4, 7]] * 2, [[-100, 5, 4, 7]] * 2))

    class Tokenizer:
        pad_token_id = 0

    log = fit(model, Tokenizer(), stream, steps=10**6, lr=1e-3, warmup=5, weight_decay=0.0,
              deadline=time.monotonic())  # fmt: skip
    assert log[-1]["step"] == 40, "cut at step 40 to the one step the time left allows"
    log = fit(model, Tokenizer(), stream, steps=45, lr=1e-3, warmup=5, weight_decay=0.0,
              deadline=time.monotonic() + 3600)  # fmt: skip
    assert log[-1]["step"] == 44, "never more steps than asked"


def test_verifier_examples_label_checks_verdicts_and_prm_tags(briefly_trained_policy):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(briefly_trained_policy)
    gold = ["3 + 4 = 7", "The answer is 7."]
    judge_ids, judge_labels = encoder(tokenizer)(("Start with 3. Add 4.", gold, gold, False))
    written = tokenizer.decode(
        [i for i, lab in zip(judge_ids, judge_labels, strict=True) if lab != -100]
    )
    assert "3+4: 3+4=7 = 7 ->" in written, "the check and its cue are written"
    assert "3 + 4 = 7" not in written, "the steps are given, not written"
    wrong = ["3 + 4 = 8", "The answer is 8."]
    _, prm_labels = encoder(tokenizer)(("Start with 3. Add 4.", gold, wrong, True))
    labelled = [lab for lab in prm_labels if lab != -100]
    assert len(labelled) == 2, "one label per step, read at its tag"
    assert len(set(labelled)) == 1, "a wrong first step: both steps wrong so far"
    items = list(itertools.islice(verifier_examples([], random.Random(0)), 500))
    assert 0.1 < sum(prm for *_, prm in items) / len(items) < 0.3


def test_the_verifier_training_command_writes_a_judge_that_is_also_a_prm(
    briefly_trained_policy, tmp_path
):
    out = tmp_path / "verifier"
    train_verifier(out, briefly_trained_policy, steps=2, problems=3, samples=2, seed=0, batch=4)
    judge = load_verifier(out)
    assert isinstance(judge, GenerativeVerifier) and judge.format == JUDGE_FORMAT
    prm = load_verifier(out, kind="prm")
    assert isinstance(prm, CausalLMPRM) and prm.format == PRM_FORMAT
    solution = Solution("Start with 3. Add 4.", ("3 + 4 = 7", "The answer is 7."))
    for verifier in (judge, prm):
        [verdict] = run_sync(verifier.score([solution]))
        assert len(verdict.step_scores) == 2
        assert all(0 <= s <= 1 for s in verdict.step_scores)
    record = json.loads((out / "training_log.json").read_text())
    assert record["steps"] == 2 and record["policy_solutions"] >= 1


def test_the_verifier_can_start_from_the_policy_and_weigh_its_verdicts(
    briefly_trained_policy, tmp_path
):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "from-policy"
    train_verifier(
        out, briefly_trained_policy, steps=1, problems=2, samples=1, seed=0, batch=2,
        init=briefly_trained_policy, verdict_weight=5.0, lr=1e-9, check_slips=0.1,
        learn_steps=True, bad_weight=3.0, reads_as="prm",
    )  # fmt: skip
    start = AutoModelForCausalLM.from_pretrained(briefly_trained_policy)
    trained = AutoModelForCausalLM.from_pretrained(out)
    assert trained.config.hidden_size == start.config.hidden_size, "the policy's architecture"
    for a, b in zip(start.parameters(), trained.parameters(), strict=True):
        assert (a - b).abs().max() < 1e-2, "one tiny step from the policy's weights"
    record = json.loads((out / "training_log.json").read_text())
    assert record["init"] == str(briefly_trained_policy) and record["verdict_weight"] == 5.0
    assert (record["check_slips"], record["learn_steps"], record["bad_weight"]) == (0.1, True, 3.0)
    assert declared_kind(out) == "prm"


def test_a_deeper_verifier_starts_from_each_layer_of_the_smaller_one_repeated(
    briefly_trained_policy, tmp_path
):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "deeper"
    train_verifier(
        out, briefly_trained_policy, steps=1, problems=2, samples=1, seed=0, batch=2,
        init=briefly_trained_policy, lr=1e-9, layers=8,
    )  # fmt: skip
    start = AutoModelForCausalLM.from_pretrained(briefly_trained_policy)
    deeper = AutoModelForCausalLM.from_pretrained(out)
    have = start.config.num_hidden_layers
    assert deeper.config.num_hidden_layers == 8 and have < 8
    for j in range(8):
        a = start.model.layers[j * have // 8].mlp.down_proj.weight
        b = deeper.model.layers[j].mlp.down_proj.weight
        assert (a - b).abs().max() < 1e-2, f"layer {j} starts as layer {j * have // 8}"
    assert json.loads((out / "training_log.json").read_text())["layers"] == 8
    with pytest.raises(SystemExit, match="--init"):
        train_verifier(
            tmp_path / "x", briefly_trained_policy, steps=1, problems=1, samples=1, seed=0, layers=8
        )


def test_the_emphasized_loss_is_the_plain_loss_at_weight_one_and_weighs_tokens_after_one():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ponder.models.arith_policy import _emphasized_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2)
    )  # fmt: skip
    ids = torch.tensor([[1, 5, 4, 7, 4, 9, 2]])
    labels = torch.tensor([[-100, -100, 4, 7, 4, 9, 2]])
    mask = torch.ones_like(ids)
    plain = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.isclose(_emphasized_loss(model, ids, mask, labels, 4, 1.0), plain, atol=1e-6)
    heavy = _emphasized_loss(model, ids, mask, labels, 4, 1e6)
    logits = model(input_ids=ids).logits[0]
    after_tag = torch.nn.functional.cross_entropy(logits[[2, 4]], torch.tensor([7, 9]))
    assert torch.isclose(heavy, after_tag, atol=1e-4), "only the tokens after 4 count"
    rare = _emphasized_loss(model, ids, mask, labels, 4, 1e6, rare=(9, 1e6))
    assert torch.isclose(rare, torch.nn.functional.cross_entropy(logits[[4]], torch.tensor([9])),
                         atol=1e-3), "among them, the rare label counts the most"  # fmt: skip
