"""Train the embedded arith policy: a small Llama that solves arith problems and revises attempts.

    python -m ponder.models.arith_policy OUT_DIR [--steps 2600] [--seed 0]

The training data is generated on the fly from the arith train split (never dev
or test). Three examples in four are a problem and its gold solution; one in
four is a revision: the problem, an earlier attempt and the gold solution after
it. Most attempts are wrong (a gold solution with one step's result corrupted
and every later step computed from the wrong value, the kind of mistake the
policy itself makes); the rest are right and are copied. Loss is on the
solution only. Everything is seeded; the log of losses goes beside the weights.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ponder.models.export import store_bfloat16
from ponder.models.tiny import llama_config
from ponder.models.tokenizer import train_sentencepiece
from ponder.tasks.arith import ARITH_FORMAT, GRID, REVISION_TEMPLATE, make_problem, split_of
from ponder.tasks.base import PROMPT_FORMAT_FILE

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


def write_prompt_format(folder: Path) -> None:
    """Declare in `folder` the prompt layout the policy was trained on, for `default_format`."""
    fields = {"template": ARITH_FORMAT.template, "chat": ARITH_FORMAT.chat}
    (folder / PROMPT_FORMAT_FILE).write_text(json.dumps(fields, indent=1) + "\n")


def train(out_dir: Path, *, steps: int, seed: int, batch: int = 32, lr: float = 1.5e-3) -> None:
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir, seed)
    tokenizer.padding_side = "right"
    config = llama_config(tokenizer, hidden=256, layers=4, heads=4, kv_heads=4, ffn=688)
    model = LlamaForCausalLM(config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    batches = _batches(examples(random.Random(seed + 1)), tokenizer, batch, random.Random(seed + 2))
    log: list[dict[str, float]] = []
    start = time.monotonic()
    model.train()
    for step in range(steps):
        ids, labels = next(batches)
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x in ids])
        target = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
        mask = (torch.arange(width)[None, :] < torch.tensor([len(x) for x in ids])[:, None]).long()
        warm = min(1.0, (step + 1) / 100)
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
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    write_prompt_format(out_dir)
    (out_dir / "training_log.json").write_text(
        json.dumps(
            {
                "steps": steps,
                "seed": seed,
                "batch": batch,
                "lr": lr,
                "minutes": (time.monotonic() - start) / 60,
                "log": log,
            },
            indent=1,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the embedded arith policy.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=2600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(args.out, steps=args.steps, seed=args.seed)


if __name__ == "__main__":
    main()
