"""Train the embedded arith verifier: a small Llama that checks each step before its verdict.

    python -m ponder.models.arith_verifier OUT_DIR --policy POLICY_DIR [--steps 1500]
        [--problems 3000] [--samples 4] [--seed 0] [--lr 1.5e-3] [--init FOLDER]
        [--verdict-weight 1] [--bad-weight 1] [--check-slips 0] [--learn-steps]
        [--batch 32] [--minutes M] [--layers L]
        [--reads-as judge|prm]

(The shipped verifier: three runs, each `--init` the one before; see its MODEL_CARD.md.)

The verifier reads a solution step by step; before each step it writes a
check (the step that should come next, redone digit by digit,
`ponder.models.arith_checks`) and the cue `->`; after the step and the tag
`ки` it writes a verdict, `+` or `-`: whether the step is the line its check
arrived at. `ponder.verifiers.GenerativeVerifier` reads it so
(`ponder_judge.json`). The same model also reads the Math-Shepherd layout, a
tag after each step and no check (`ponder_prm.json`, through
`ponder.verifiers.CausalLMPRM`): one forward pass, so it judges in its head and
does worse, which is the point of showing it. `--reads-as` names the reading
used by default (`ponder_verifier.json`).

Data, all from the arith train split: solutions the policy samples at
temperature 1.0 (its real slips) and synthetic attempts with the same kinds
of slips, half each; one in five texts is in the PRM layout, labelled right
so far. Labels are exact: a step is right when it is the line that should
follow the one before it. Without `--init` the model is a fresh one four times
smaller than the policy (every token of a check is a single-digit operation or
a copy); with it, it starts from those weights (the policy's, which already
write checks in its revisions). `--verdict-weight` weighs the loss on each
verdict, a few tokens in a long text. `--check-slips` shows that share of
checks slipped, as the verifier's own would be, so that it learns to go on
from the step and not from its slipped check.
`--layers` deepens the `--init` model to L layers before training, each of
its layers repeated in place (depth up-scaling, as SOLAR 10.7B was made): a
verifier larger than the policy that starts from what the smaller one knows.
It trains on CUDA when there is one; `--minutes` caps the run's time by
cutting its steps once, after measuring their speed (the log records the
steps taken, and `--steps` with that number replays the run).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ponder.models.arith_checks import JUDGE_FORMAT, PRM_FORMAT, judge_text
from ponder.models.arith_policy import (
    Encoded,
    batches,
    encode,
    fit,
    sample_solutions,
    synthetic_attempt,
    training_device,
    verdict_id,
)
from ponder.models.export import store_bfloat16
from ponder.models.tiny import llama_config
from ponder.tasks.arith import GRID, arith_problems, make_problem, split_of, step_labels
from ponder.tasks.base import Problem
from ponder.verifiers import declare_kind
from ponder.verifiers.base import Solution, VerifierKind
from ponder.verifiers.prm import label_token_ids

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def policy_solutions(
    policy: Path, *, problems: int, samples: int, seed: int
) -> list[tuple[str, list[str], list[str]]]:
    """(question, gold lines, solution lines) for the policy's distinct samples of train
    problems."""
    chosen = arith_problems("train", problems, seed=seed + 11)
    texts = sample_solutions(policy, chosen, samples=samples, seed=seed + 11, max_tokens=256)
    return [
        (
            problem.question,
            str(problem.metadata["solution"]).split("\n"),
            [line.strip() for line in text.split("\n") if line.strip()],
        )
        for problem, solutions in zip(chosen, texts, strict=True)
        for text in solutions
    ]


def examples(
    owned: list[tuple[str, list[str], list[str]]], rng: random.Random, prm_share: float = 0.2
) -> Iterator[tuple[str, list[str], list[str], bool]]:
    """(question, gold, solution, in the PRM layout?) forever: half the policy's own
    solutions, half synthetic attempts (70% with slips, 30% right)."""
    while True:
        if owned and rng.random() < 0.5:
            question, gold, steps = rng.choice(owned)
        else:
            question, gold, _ = make_problem(rng, rng.choice(GRID))
            if split_of(question) != "train":
                continue
            steps = synthetic_attempt(question, rng) if rng.random() < 0.7 else gold
        yield question, gold, steps, rng.random() < prm_share


def encoder(
    tokenizer: Any,
    rng: random.Random | None = None,
    check_slips: float = 0.0,
    learn_steps: bool = False,
) -> Callable[[tuple[str, list[str], list[str], bool]], Encoded]:
    """Token ids and labels of an example: in the judge layout, the checks and verdicts the
    model writes (with `check_slips`, some checks slipped, as its own would be, and not
    targets: `judge_text`); in the PRM layout, the label token at each tag, right so far."""
    good, bad = label_token_ids(tokenizer, PRM_FORMAT)

    def encoded(item: tuple[str, list[str], list[str], bool]) -> Encoded:
        question, gold, steps, prm = item
        if not prm:
            return encode(tokenizer, judge_text(question, steps, rng, check_slips, learn_steps))
        text, ends = PRM_FORMAT.render(Solution(question, tuple(steps)))
        problem = Problem("train", question, metadata={"solution": "\n".join(gold)})
        rows = tokenizer(text, return_offsets_mapping=True)
        ids = list(rows.input_ids)
        labels = [-100] * len(ids)
        for end, right in zip(ends, step_labels(problem, "\n".join(steps)), strict=True):
            tag = next(i for i, (_, stop) in enumerate(rows.offset_mapping) if stop >= end)
            if tag + 1 < len(ids):  # read at the tag: the label of the position after it
                labels[tag + 1] = good if right else bad
        return ids, labels

    return encoded


def train(
    out_dir: Path,
    policy: Path,
    *,
    steps: int,
    problems: int,
    samples: int,
    seed: int,
    batch: int = 32,
    lr: float = 1.5e-3,
    init: Path | None = None,
    verdict_weight: float = 1.0,
    reads_as: VerifierKind = "judge",
    check_slips: float = 0.0,
    learn_steps: bool = False,
    bad_weight: float = 1.0,
    minutes: float | None = None,
    layers: int | None = None,
) -> None:
    """Sample the policy's solutions, then train a verifier: a fresh small model, or one that
    starts from the weights of `init` (the policy, which already writes checks in its
    revisions), deepened to `layers`; the loss on each verdict counts `verdict_weight` times."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    if layers is not None and init is None:
        raise SystemExit("--layers deepens the --init model; give --init")
    torch.manual_seed(seed)
    start = time.monotonic()
    owned = policy_solutions(policy, problems=problems, samples=samples, seed=seed)
    sampled = (time.monotonic() - start) / 60
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:  # the policy's own tokenizer: one vocabulary for both
        shutil.copy(policy / name, out_dir / name)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    if init is None:
        config = llama_config(tokenizer, hidden=128, layers=4, heads=4, kv_heads=4, ffn=344)
        model = LlamaForCausalLM(config)
    else:
        model = LlamaForCausalLM.from_pretrained(init, dtype=torch.float32)
        if model.config.vocab_size != len(tokenizer):
            raise SystemExit(f"{init} does not share the policy's vocabulary")
        if layers is not None:
            model = deepened(model, layers)
    tag = tokenizer.convert_tokens_to_ids(JUDGE_FORMAT.tag)
    slips = encoder(tokenizer, random.Random(seed + 3), check_slips, learn_steps)
    stream = map(slips, examples(owned, random.Random(seed + 1)))
    log = fit(
        model,
        tokenizer,
        batches(stream, batch, random.Random(seed + 2)),
        steps=steps,
        lr=lr,
        warmup=100,
        weight_decay=0.1,
        emphasis=(tag, verdict_weight),
        rare=(verdict_id(tokenizer, JUDGE_FORMAT.bad), bad_weight),
        deadline=None if minutes is None else start + 60 * minutes,  # sampling included
    )
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    JUDGE_FORMAT.save(out_dir)
    PRM_FORMAT.save(out_dir)
    declare_kind(out_dir, reads_as)
    record = {
        "policy": str(policy),
        "problems": problems,
        "samples": samples,
        "policy_solutions": len(owned),
        "steps": log[-1]["step"] + 1,
        "seed": seed,
        "batch": batch,
        "device": training_device(),
        "lr": lr,
        "init": None if init is None else str(init),
        "layers": model.config.num_hidden_layers,
        "verdict_weight": verdict_weight,
        "check_slips": check_slips,
        "learn_steps": learn_steps,
        "bad_weight": bad_weight,
        "sampling_minutes": sampled,
        "minutes": (time.monotonic() - start) / 60,
        "log": log,
    }
    (out_dir / "training_log.json").write_text(json.dumps(record, indent=1))


def deepened(model: Any, layers: int) -> Any:
    """`model` with `layers` decoder layers, layer j a copy of its layer j * L // layers (each
    of its L layers repeated in place); the embeddings, final norm and head are kept."""
    import copy

    from transformers import LlamaForCausalLM

    have = model.config.num_hidden_layers
    if layers < have:
        raise SystemExit(f"--layers {layers} is fewer than the {have} the model has")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[j * have // layers] for j in range(layers)]
    grown = LlamaForCausalLM(config)
    old = model.state_dict()
    state = {}
    for name in grown.state_dict():
        if name.startswith("model.layers."):
            j, rest = name.removeprefix("model.layers.").split(".", 1)
            name_old = f"model.layers.{int(j) * have // layers}.{rest}"
            state[name] = old[name_old].clone()
        else:
            state[name] = old[name].clone()
    grown.load_state_dict(state)
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the embedded arith verifier.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--problems", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--minutes", type=float, default=None, help="fewer steps if the run would take longer"
    )
    parser.add_argument("--init", type=Path, default=None, help="start from these weights")
    parser.add_argument(
        "--layers", type=int, default=None, help="deepen the --init model to this many layers"
    )
    parser.add_argument("--verdict-weight", type=float, default=1.0)
    parser.add_argument(
        "--check-slips", type=float, default=0.0, help="share of checks shown slipped"
    )
    parser.add_argument(
        "--learn-steps", action="store_true", help="right steps are targets after their check"
    )
    parser.add_argument(
        "--bad-weight", type=float, default=1.0, help="a bad verdict's loss counts this more"
    )
    parser.add_argument(
        "--reads-as", choices=("judge", "prm"), default="judge", help="the default reading"
    )
    args = parser.parse_args()
    train(
        args.out,
        args.policy,
        steps=args.steps,
        problems=args.problems,
        samples=args.samples,
        seed=args.seed,
        lr=args.lr,
        batch=args.batch,
        minutes=args.minutes,
        init=args.init,
        verdict_weight=args.verdict_weight,
        reads_as=args.reads_as,
        check_slips=args.check_slips,
        learn_steps=args.learn_steps,
        bad_weight=args.bad_weight,
        layers=args.layers,
    )


if __name__ == "__main__":
    main()
