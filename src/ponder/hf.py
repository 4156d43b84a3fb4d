"""A local Hugging Face causal LM as ponder's backends hold it: loaded once, run on one thread.

Both the transformers generator and the PRM verifier use this. Every async call
runs on the model's own worker thread: torch's OpenMP pool is per thread, and
pools from several threads spin against each other on few cores (measured here:
3x slower generation). A lock keeps one call at a time on the model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError, ModelLoadError

T = TypeVar("T")


def cache_argument(forward: Callable[..., Any]) -> str:
    """The keyword that passes a KV cache to `forward`: "cache" since transformers renamed it
    (5.x; the old name warns and goes in 5.40), "past_key_values" before."""
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


class LocalModel:
    """A tokenizer and causal LM from `path`, on `device` (default: CUDA when available).

    `dtype` is a torch dtype name; by default float32 on CPU and the folder's own
    dtype on GPU.
    """

    def __init__(self, path: str | Path, *, device: str | None = None, dtype: str | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ConfigError(
                "local models need torch and transformers: pip install 'ponder[hf]'"
            ) from exc
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"model folder not found: {folder}")
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"{folder} is not a Hugging Face model folder (no config.json)")
        self.torch = torch
        self.folder = folder
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is not None:
            torch_dtype: Any = getattr(torch, dtype)
        else:
            torch_dtype = torch.float32 if self.device.type == "cpu" else "auto"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"could not load the model in {folder}: {exc}") from exc
        self.model.to(self.device).eval()
        total = sum(p.numel() for p in self.model.parameters())
        self.shape = ModelShape.from_hf_config(self.model.config, total)
        self.context: int | None = getattr(self.model.config, "max_position_embeddings", None)
        # The KV cache's keyword in this transformers (the model and its base model agree).
        self.cache_argument = cache_argument(self.model.forward)
        self._lock = threading.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ponder-hf")

    def run_blocking(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` in the calling thread, holding the model."""
        with self._lock, self.torch.inference_mode():
            return work(*args)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` on the model's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self.run_blocking, work, *args)

    def close(self) -> None:
        self._worker.shutdown(wait=False)
