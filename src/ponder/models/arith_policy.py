"""Train the embedded arith policy: a small Llama that solves arith problems and revises attempts.

    python -m ponder.models.arith_policy OUT_DIR [--steps 2600] [--revision-steps 600] [--seed 0]

Training data comes from the arith train split only (never dev or test), in two
phases. Phase 1 trains a fresh model on examples generated on the fly: three in
four are a problem and its gold solution; one in four is a revision: the
problem, an earlier attempt and the gold solution after it, the attempt mostly
a synthetic wrong one (one step's result a near miss, later steps computed
from it) and otherwise right (to be copied). Phase 2 (`train_revisions`) has
the phase-1 model sample train problems and fine-tunes it to write the gold
solution after its *own* attempts, mixed with phase-1 examples. Loss is on the
solution only. Everything is seeded; the log of losses goes beside the weights.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ponder.generators.base import SamplingParams
from ponder.models.export import store_bfloat16
from ponder.models.tiny import llama_config
from ponder.models.tokenizer import train_sentencepiece
from ponder.tasks.arith import (
    ARITH_FORMAT,
    GRID,
    REVISION_TEMPLATE,
    arith_problems,
    integer_grader,
    make_problem,
    split_of,
)
from ponder.tasks.base import Problem
from ponder.tasks.extract import extract_answer

PROMPT = ARITH_FORMAT.template
VOCAB_SIZE = 384
# The step tag of Math-Shepherd-style PRMs: one token, so the PRM (fine-tuned from this policy,
# with its tokenizer) can be scored at each step's end.
STEP_TAG = "ки"


def corrupt(lines: list[str], rng: random.Random) -> list[str]:
    """`lines` with one step's result wrong and the steps after it computed from it."""
    steps = [line.split(" ") for line in lines[:-1]]  # "a op b = c"
    k = rng.randrange(len(steps))
    value = int(steps[k][0])
    out = [" ".join(s) for s in steps[:k]]
    for i, (_, op, operand, _, result) in enumerate(steps[k:]):
        right = {"+": value + int(operand), "-": value - int(operand), "*": value * int(operand)}[
            op
        ]
        if i == 0:
            right = _near_miss(int(result), rng)
        out.append(f"{value} {op} {operand} = {right}")
        value = right
    out.append(f"The answer is {value}.")
    return out


def _near_miss(value: int, rng: random.Random) -> int:
    digits = list(str(value))
    position = rng.randrange(len(digits))
    choices = [d for d in "0123456789" if d != digits[position]]
    if position == 0 and len(digits) > 1:
        choices.remove("0")
    digits[position] = rng.choice(choices)
    return int("".join(digits))


def examples(rng: random.Random) -> Iterator[tuple[str, str]]:
    """(prompt, completion) pairs from the train split, forever."""
    while True:
        question, lines, _ = make_problem(rng, rng.choice(GRID))
        if split_of(question) != "train":
            continue
        gold = "\n".join(lines)
        if rng.random() < 0.75:
            yield PROMPT.format(question=question), gold
        else:
            attempt = corrupt(lines, rng) if rng.random() < 0.7 else lines
            yield REVISION_TEMPLATE.format(question=question, attempt="\n".join(attempt)), gold


def build_tokenizer(out: Path, seed: int) -> Any:
    from transformers import AutoTokenizer

    rng = random.Random(seed)
    stream = examples(rng)
    texts = (p + c for p, c in (next(stream) for _ in range(4000)))
    train_sentencepiece(out, texts, VOCAB_SIZE, user_symbols=(STEP_TAG,))
    return AutoTokenizer.from_pretrained(out)


def _batches(
    stream: Iterator[tuple[str, str]], tokenizer: Any, batch: int, rng: random.Random, pool: int = 8
) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
    """Token ids and labels (-100 on the prompt) in batches of similar lengths, to pad little."""
    while True:
        encoded = []
        for prompt, completion in (next(stream) for _ in range(batch * pool)):
            p = tokenizer(prompt).input_ids
            c = [*tokenizer(completion, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
            encoded.append((p + c, [-100] * len(p) + c))
        encoded.sort(key=lambda pair: len(pair[0]))
        groups = [encoded[i : i + batch] for i in range(0, len(encoded), batch)]
        rng.shuffle(groups)
        for group in groups:
            yield [ids for ids, _ in group], [labels for _, labels in group]


def _fit(
    model: Any,
    tokenizer: Any,
    batches: Iterator[tuple[list[list[int]], list[list[int]]]],
    *,
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float,
) -> list[dict[str, float]]:
    """AdamW with warm-up and a cosine decay to lr/10; returns the loss log."""
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    log: list[dict[str, float]] = []
    start = time.monotonic()
    model.train()
    for step in range(steps):
        ids, labels = next(batches)
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x in ids])
        target = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
        mask = (torch.arange(width)[None, :] < torch.tensor([len(x) for x in ids])[:, None]).long()
        warm = min(1.0, (step + 1) / warmup)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr * warm * cosine
        loss = model(input_ids=input_ids, attention_mask=mask, labels=target).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            elapsed = time.monotonic() - start
            log.append({"step": step, "loss": round(loss.item(), 4), "minutes": elapsed / 60})
            eta = elapsed / (step + 1) * (steps - step - 1) / 60
            minutes = f"{elapsed / 60:.1f} min, eta {eta:.1f} min"
            print(f"step {step:5d}  loss {loss.item():.4f}  {minutes}", flush=True)
    model.eval()
    return log


def train(out_dir: Path, *, steps: int, seed: int, batch: int = 32, lr: float = 1.5e-3) -> None:
    """Phase 1: a fresh model on gold solutions and revisions of synthetic wrong attempts."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    start = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir, seed)
    tokenizer.padding_side = "right"
    config = llama_config(tokenizer, hidden=256, layers=4, heads=4, kv_heads=4, ffn=688)
    model = LlamaForCausalLM(config)
    batches = _batches(examples(random.Random(seed + 1)), tokenizer, batch, random.Random(seed + 2))
    log = _fit(model, tokenizer, batches, steps=steps, lr=lr, warmup=100, weight_decay=0.1)
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    ARITH_FORMAT.save(out_dir)  # so that ponder prompts it the way it was trained
    minutes = (time.monotonic() - start) / 60
    record = {
        "steps": steps,
        "seed": seed,
        "batch": batch,
        "lr": lr,
        "minutes": minutes,
        "log": log,
    }
    (out_dir / "training_log.json").write_text(json.dumps(record, indent=1))


def sample_solutions(
    folder: Path, problems: Sequence[Problem], *, samples: int, seed: int, max_tokens: int
) -> list[list[str]]:
    """The policy's distinct non-empty solutions (stripped) of each problem, at temperature 1.0."""
    from ponder.generators.transformers import TransformersGenerator

    generator = TransformersGenerator(folder)
    prompts = [ARITH_FORMAT.render(p.question) for p in problems]
    params = SamplingParams(n=samples, max_tokens=max_tokens, temperature=1.0, seed=seed)
    generations = generator.generate_blocking(prompts, params)
    return [
        [text for text in dict.fromkeys(c.text.strip() for c in g.completions) if text]
        for g in generations
    ]


def own_attempts(
    folder: Path, *, problems: int, samples: int, seed: int
) -> list[tuple[str, str, str, bool]]:
    """(question, gold solution, attempt, right) for the policy's own samples of train problems."""
    chosen = arith_problems("train", problems, seed=seed + 7)
    solutions = sample_solutions(folder, chosen, samples=samples, seed=seed + 7, max_tokens=256)
    attempts = []
    for problem, texts in zip(chosen, solutions, strict=True):
        gold = str(problem.metadata["solution"])
        for text in texts:
            right = integer_grader(extract_answer(text), str(problem.answer))
            attempts.append((problem.question, gold, text, right))
    return attempts


def revision_examples(
    attempts: list[tuple[str, str, str, bool]], rng: random.Random
) -> Iterator[tuple[str, str]]:
    """Phase 2's mix, forever: 4 in 10 phase-1 examples (so solving is not forgotten),
    5 in 10 revisions of the policy's own wrong attempts, 1 in 10 of its own right ones."""
    base = examples(rng)
    wrong = [a for a in attempts if not a[3]]
    right = [a for a in attempts if a[3]]
    while True:
        r = rng.random()
        if r < 0.4 or not wrong or not right:
            yield next(base)
            continue
        question, gold, attempt, _ = rng.choice(wrong if r < 0.9 else right)
        yield REVISION_TEMPLATE.format(question=question, attempt=attempt), gold


def train_revisions(
    out_dir: Path,
    *,
    steps: int,
    seed: int,
    problems: int = 3000,
    samples: int = 4,
    batch: int = 32,
    lr: float = 3e-4,
) -> None:
    """Phase 2: fine-tune the phase-1 policy in `out_dir` to revise its *own* wrong attempts.

    Phase 1's synthetic attempts have one kind of error (a near-miss result);
    the policy's own are of other kinds too (a wrong operand copied from the
    question, a dropped step), and a model that learned to copy an attempt up to
    a near miss copies those. So, as Snell et al. (2024) train their revision
    model on the policy's own samples, the policy samples train problems and
    learns to write the gold solution after its own attempts.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(seed)
    start = time.monotonic()
    attempts = own_attempts(out_dir, problems=problems, samples=samples, seed=seed)
    sampled = (time.monotonic() - start) / 60
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    tokenizer.padding_side = "right"
    model = LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    stream = revision_examples(attempts, random.Random(seed + 3))
    batches = _batches(stream, tokenizer, batch, random.Random(seed + 4))
    log = _fit(model, tokenizer, batches, steps=steps, lr=lr, warmup=50, weight_decay=0.1)
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    path = out_dir / "training_log.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    record["revision_phase"] = {
        "steps": steps,
        "seed": seed,
        "problems": problems,
        "samples": samples,
        "attempts": len(attempts),
        "wrong_attempts": sum(not a[3] for a in attempts),
        "batch": batch,
        "lr": lr,
        "sampling_minutes": sampled,
        "minutes": (time.monotonic() - start) / 60,
        "log": log,
    }
    path.write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the embedded arith policy.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=2600, help="phase 1 steps")
    parser.add_argument("--revision-steps", type=int, default=600, help="phase 2 steps (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(args.out, steps=args.steps, seed=args.seed)
    if args.revision_steps:
        train_revisions(args.out, steps=args.revision_steps, seed=args.seed)


if __name__ == "__main__":
    main()
