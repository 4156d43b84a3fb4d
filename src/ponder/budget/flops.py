"""Estimated floating-point operations of transformer inference.

ponder prices every call in FLOPs as well as tokens because, at test time, the
cost of a token grows with the context it attends to: Kinetics (Sadhukhan et
al., 2025) shows that for long generations attention, not the parameter
count, dominates, so a token budget alone favours long chains unfairly.

For a decoder with `N` matmul parameters, `L` layers and query width
`d_attn = num_heads * head_dim`, one token at position `t` (attending to `t`
tokens, itself included) costs

    2 * N  +  4 * L * d_attn * t

FLOPs: `2N` for the weight matmuls (a multiply and an add per parameter;
Kaplan et al., 2020) and `4 * L * d_attn * t` for attention, `2 * d_attn * t`
for the scores `QK^T` and as much again for the weighted sum with `V`
(Hoffmann et al., 2022 count both; grouped-query attention shares keys and
values but not this arithmetic). `N` counts every weight matrix the forward
pass multiplies by, the output head included, but not the input embedding,
which is a lookup: total parameters minus `vocab * hidden` when the embeddings
are untied, total parameters when they are tied.

Summing over positions, a prompt of `P` tokens (prefilled once per request, as
a server with prefix caching does) and one sample of `G` generated tokens cost

    prefill(P)   = 2N * P + 4 * L * d_attn * P (P + 1) / 2
    decode(P, G) = 2N * G + 4 * L * d_attn * (G * P + G (G + 1) / 2)

and a request for `n` samples costs `prefill(P) + sum of decode(P, G_i)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The few numbers of a model that its inference cost depends on."""

    matmul_params: int
    num_layers: int
    attn_width: int

    def __post_init__(self) -> None:
        if self.matmul_params <= 0 or self.num_layers <= 0 or self.attn_width <= 0:
            raise ConfigError(f"a ModelShape needs positive sizes, got {self}")

    @classmethod
    def from_hf_config(cls, config: Any, total_params: int) -> ModelShape:
        """Read the shape from a transformers config and the model's parameter count."""
        text = getattr(config, "text_config", None) or config
        hidden = text.hidden_size
        heads = text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or hidden // heads
        embedding = text.vocab_size * hidden
        tied = bool(getattr(config, "tie_word_embeddings", False))
        return cls(
            matmul_params=total_params if tied else total_params - embedding,
            num_layers=text.num_hidden_layers,
            attn_width=heads * head_dim,
        )

    @classmethod
    def of_folder(cls, folder: str | Path) -> ModelShape:
        """The shape of a Hugging Face model folder without loading its weights.

        For a model served elsewhere (a server does not tell its size): reads
        `config.json` and counts parameters from the safetensors headers.
        """
        from safetensors import safe_open
        from transformers import AutoConfig

        path = Path(folder)
        files = sorted(path.glob("*.safetensors"))
        if not (path / "config.json").is_file() or not files:
            raise ConfigError(f"{path} is not a model folder (config.json and *.safetensors)")
        try:
            config = AutoConfig.from_pretrained(path)
            total = 0
            for file in files:
                with safe_open(file, framework="numpy") as weights:
                    for key in weights.keys():  # noqa: SIM118 (a safetensors handle)
                        shape = weights.get_slice(key).get_shape()
                        count = 1
                        for size in shape:
                            count *= size
                        total += count
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the model's shape from {path}: {exc}") from exc
        return cls.from_hf_config(config, total)

    def prefill_flops(self, prompt_tokens: int) -> float:
        p = prompt_tokens
        return (
            2.0 * self.matmul_params * p + 4.0 * self.num_layers * self.attn_width * p * (p + 1) / 2
        )

    def decode_flops(self, prompt_tokens: int, generated_tokens: int) -> float:
        p, g = prompt_tokens, generated_tokens
        attended = g * p + g * (g + 1) / 2
        return 2.0 * self.matmul_params * g + 4.0 * self.num_layers * self.attn_width * attended

    def request_flops(self, prompt_tokens: int, generated: list[int] | tuple[int, ...]) -> float:
        """FLOPs of one request: the prompt prefilled once, then each sample decoded."""
        return self.prefill_flops(prompt_tokens) + sum(
            self.decode_flops(prompt_tokens, g) for g in generated
        )
