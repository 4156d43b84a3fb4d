"""Shrink a trained model folder for committing: weights stored in bfloat16.

The models are trained in float32 and their config keeps saying float32, so
transformers and vLLM compute in float32 by default; only the file is halved.
Every number in the model cards is measured on the stored (rounded) weights.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = "model.safetensors"


def store_bfloat16(folder: Path) -> None:
    """Rewrite `folder`'s safetensors weights in bfloat16 (floating-point tensors only)."""
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(folder) / WEIGHTS
    tensors = load_file(path)
    rounded = {
        name: t.to(torch.bfloat16) if t.is_floating_point() else t for name, t in tensors.items()
    }
    save_file(rounded, path, metadata={"format": "pt"})
