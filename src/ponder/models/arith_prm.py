"""Train the embedded arith PRM on the policy's own samples, Math-Shepherd style.

    python -m ponder.models.arith_prm OUT_DIR --policy POLICY_DIR [--problems 2000]
        [--samples 8] [--steps N] [--seed 0]

Data: the policy solves train-split problems at temperature 1.0; each distinct
solution's steps are labelled automatically. A step is good when it and every
step before it are right (`ponder.tasks.arith.step_labels`). arith has one right
solution per problem, so this label is exact; Math-Shepherd's Monte Carlo
estimate (the fraction of rollouts from a step that reach the right answer)
would approximate the same quantity at many rollouts per step, and is what a
task without a checkable step needs.

Model: a copy of the policy (same tokenizer, in which the step tag is one
token), trained so that at each step's tag the good token outscores the bad
one: cross-entropy over those two tokens only, exactly what `CausalLMPRM`
reads. The folder gets `ponder_prm.json` stating its format.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from ponder.models.arith_policy import PROMPT, STEP_TAG, sample_solutions
from ponder.models.export import store_bfloat16
from ponder.tasks.arith import arith_task, step_labels
from ponder.verifiers.base import Solution
from ponder.verifiers.prm import PRMFormat, encode_for_prm, label_token_ids

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
FORMAT = PRMFormat(
    prefix=PROMPT,
    step="{step} " + STEP_TAG + "\n",
    tag=STEP_TAG,
    good="+",
    bad="-",
)


def labelled_samples(
    policy: Path,
    problems: int,
    samples: int,
    seed: int,
    split: str = "train",
    max_tokens: int = 160,
) -> list[tuple[Solution, list[bool]]]:
    """Distinct policy solutions of `problems` problems of `split`, with their step labels."""
    task = arith_task(split, problems, seed=seed + 1)
    solutions = sample_solutions(
        policy, task.problems, samples=samples, seed=seed, max_tokens=max_tokens
    )
    data = []
    for problem, texts in zip(task.problems, solutions, strict=True):
        for steps in dict.fromkeys(task.split_steps(text) for text in texts):
            labels = step_labels(problem, "\n".join(steps))
            data.append((Solution(problem.question, steps), labels))
    return data


def train(
    out_dir: Path,
    policy: Path,
    *,
    problems: int,
    samples: int,
    steps: int,
    seed: int,
    batch: int = 32,
    lr: float = 3e-4,
    max_tokens: int = 160,
) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(seed)
    start = time.monotonic()
    data = labelled_samples(policy, problems, samples, seed, max_tokens=max_tokens)
    sampled_minutes = (time.monotonic() - start) / 60
    tokenizer = AutoTokenizer.from_pretrained(policy)
    model = LlamaForCausalLM.from_pretrained(policy, dtype=torch.float32)
    labels_ids = torch.tensor(label_token_ids(tokenizer, FORMAT))
    encoded = [(encode_for_prm(tokenizer, FORMAT, s), labels) for s, labels in data]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = random.Random(seed)
    log: list[dict[str, Any]] = []
    model.train()
    for step in range(steps):
        items = [encoded[rng.randrange(len(encoded))] for _ in range(batch)]
        width = max(len(ids) for (ids, _), _ in items)
        input_ids = torch.full((batch, width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for row, ((ids, positions), labels) in enumerate(items):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
            rows += [row] * len(positions)
            cols += positions
            targets += [0 if good else 1 for good in labels]
        hidden = model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        logits = hidden[rows, cols] @ model.lm_head.weight[labels_ids].T
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            log.append({"step": step, "loss": round(loss.item(), 4)})
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    for name in TOKENIZER_FILES:  # the policy's own files: tokenizer.model too, for llama.cpp
        shutil.copy(policy / name, out_dir / name)
    FORMAT.save(out_dir)
    good_steps = sum(label for _, labels in data for label in labels)
    all_steps = sum(len(labels) for _, labels in data)
    (out_dir / "training_log.json").write_text(
        json.dumps(
            {
                "policy": str(policy),
                "problems": problems,
                "samples": samples,
                "steps": steps,
                "seed": seed,
                "solutions": len(data),
                "labelled_steps": all_steps,
                "good_step_fraction": good_steps / max(all_steps, 1),
                "sampling_minutes": sampled_minutes,
                "minutes": (time.monotonic() - start) / 60,
                "log": log,
            },
            indent=1,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the embedded arith PRM.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(
        args.out,
        args.policy,
        problems=args.problems,
        samples=args.samples,
        steps=args.steps,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
