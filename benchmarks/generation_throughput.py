"""Generation throughput of the transformers backend at batch 1 and batch 32.

    python benchmarks/generation_throughput.py [--model FOLDER ...] [--tokens 128] [--repeats 3]

Without --model it measures the tiny smoke-test Llama (.cache/tiny-llama, built if
missing) and a 20M-parameter Llama with random weights built into a temporary
folder (throughput does not depend on the weights' values). Each setting is
run `repeats` times after a warm-up; the median is printed. Throughput is
generated tokens (as the budget meter counts them) over wall time; the FLOP
rate uses ponder's FLOPs model (see ponder/budget/flops.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ponder import BudgetMeter, Prompt, SamplingParams, run_sync
from ponder.generators.transformers import TransformersGenerator
from ponder.models.tiny import llama_config

ROOT = Path(__file__).resolve().parents[1]


def build_small_llama(folder: Path, tokenizer_from: Path) -> Path:
    """A Llama with 8 layers of width 512 (about 20M parameters), random weights."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = llama_config(tokenizer, hidden=512, layers=8, heads=8, kv_heads=4, ffn=1408)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(generator: TransformersGenerator, batch: int, tokens: int, repeats: int) -> dict:
    prompts = [Prompt.raw(f"Question: What is {i} + {2 * i}?\n") for i in range(batch)]
    # Rates count the tokens actually generated, so samples that end early do not inflate them.
    params = SamplingParams(n=1, max_tokens=tokens, temperature=1.0, seed=0)
    run_sync(generator.generate(prompts, params.replace(max_tokens=8)))  # warm-up
    rates, flop_rates = [], []
    for repeat in range(repeats):
        meter = BudgetMeter()
        start = time.perf_counter()
        run_sync(meter.wrap(generator).generate(prompts, params.replace(seed=repeat)))
        wall = time.perf_counter() - start
        cost = meter.cost()
        rates.append(cost.generated_tokens / wall)
        flop_rates.append(cost.flops / wall)
    return {"tokens_per_s": statistics.median(rates), "flops_per_s": statistics.median(flop_rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, help="model folder (repeatable)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per sequence")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tiny = ROOT / ".cache" / "tiny-llama"
    with tempfile.TemporaryDirectory() as tmp:
        models = args.model
        if not models:
            if not (tiny / "config.json").is_file():
                from ponder.models.tiny import build_tiny_model

                build_tiny_model(tiny)
            models = [tiny, build_small_llama(Path(tmp) / "llama-20m", tiny)]
        import torch

        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{args.tokens} tokens per sequence, median of {args.repeats}"
        )
        print(f"{'model':<14} {'params':>8} {'batch':>5} {'tokens/s':>10} {'GFLOP/s':>8}")
        for folder in models:
            generator = TransformersGenerator(folder)
            params = generator.shape.matmul_params
            for batch in (1, 32):
                row = measure(generator, batch, args.tokens, args.repeats)
                print(
                    f"{folder.name:<14} {params / 1e6:>7.1f}M {batch:>5} "
                    f"{row['tokens_per_s']:>10.0f} {row['flops_per_s'] / 1e9:>8.2f}"
                )


if __name__ == "__main__":
    main()
