"""Build a tiny Llama folder for smoke tests and the first demo, in 1.5 minutes on a CPU.

The folder is an ordinary Hugging Face model folder (`config.json`,
`model.safetensors`, `tokenizer.model`, `tokenizer.json`, a chat template), so the
same files exercise the transformers backend and a real vLLM server. The model
is trained briefly on sums of two numbers from 0 to 20, written in ponder's
default math chat format, so that its next-token distributions are peaked
(greedy decoding is stable across backends) and `ponder solve` on such a sum
gives a well-formed answer, right about two times in three (68 of 100 random
sums, greedy). It is a placeholder, not a reasoner: the trained embedded models
replace it as ponder's default (see the embedded-default issue).

    python -m ponder.models.tiny OUT_DIR
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from ponder.models.tokenizer import train_sentencepiece

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
# The instruction of ponder.tasks.MATH_CHAT, kept literal: the model must not change with it.
INSTRUCTION = (
    "Solve the following problem step by step. Put your final answer within \\boxed{}.\n\n"
)


def _example(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    return f"What is {a} + {b}?", f"{a} + {b} = {a + b}\n\nThe answer is \\boxed{{{a + b}}}."


def train_tokenizer(out_dir: Path, seed: int = 0, vocab_size: int = 320) -> None:
    """Train the tiny model's tokenizer on its own sums into `out_dir`."""
    rng = random.Random(seed)
    texts = (
        f"user: {INSTRUCTION}{q}\nassistant: {a}" for q, a in (_example(rng) for _ in range(2000))
    )
    train_sentencepiece(out_dir, texts, vocab_size, chat_template=CHAT_TEMPLATE)


def llama_config(
    tokenizer: Any, *, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int
) -> Any:
    """A Llama config with tied embeddings whose vocabulary and special tokens match `tokenizer`."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_model(out_dir: str | Path, seed: int = 0, steps: int = 600) -> Path:
    """Write a tiny Llama (2 layers, hidden 128, ~0.3M parameters), trained `steps` steps."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_tokenizer(out, seed)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = llama_config(tokenizer, hidden=128, layers=2, heads=2, kv_heads=1, ffn=256)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    _train(model, tokenizer, seed, steps)
    model.save_pretrained(out)
    return out


def _train(model, tokenizer, seed: int, steps: int, batch: int = 32) -> None:
    import torch

    rng = random.Random(seed + 1)
    tokenizer.padding_side = "right"  # positions then start at 0 in every row, as at inference
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(steps):
        prompts, answers = [], []
        for _ in range(batch):
            question, answer = _example(rng)
            prompts.append(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": INSTRUCTION + question}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
            )
            answers.append(answer + tokenizer.eos_token)
        encoded = tokenizer(
            [p + a for p, a in zip(prompts, answers, strict=True)],
            add_special_tokens=False,
            padding=True,
            return_tensors="pt",
        )
        labels = encoded.input_ids.masked_fill(encoded.attention_mask == 0, -100)
        for group in optimizer.param_groups:  # linear decay to a tenth
            group["lr"] = 3e-3 * (1 - 0.9 * step / steps)
        loss = model(**encoded, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ponder.models.tiny OUT_DIR")
    print(build_tiny_model(sys.argv[1]))
