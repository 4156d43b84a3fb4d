"""LLM backends behind one asynchronous, batched `Generator` protocol."""

from __future__ import annotations

from pathlib import Path

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError
from ponder.generators.base import Generator, SamplingParams

__all__ = ["Generator", "SamplingParams", "load_generator"]


def load_generator(
    spec: str | Path | None = None,
    *,
    model: str | None = None,
    shape_from: str | Path | None = None,
    **options: object,
) -> Generator:
    """A generator for a local model folder or an OpenAI-compatible server URL.

    `spec` is a folder path (transformers backend) or an `http(s)://` URL such as
    "http://127.0.0.1:8000/v1" (openai backend; `model` names the served model,
    and `shape_from`, the served model's folder, gives its size for FLOPs), or
    several such URLs, comma-separated: replicas of one model
    (`ponder.generators.replicas`). None means ponder's embedded arith policy.
    """
    if spec is None:
        from ponder.models import embedded_policy

        spec = embedded_policy()
    text = str(spec)
    if text.startswith(("http://", "https://")):
        from ponder.generators.openai import OpenAIGenerator
        from ponder.generators.replicas import ReplicatedGenerator, replica_urls

        if shape_from is not None:
            options["shape"] = ModelShape.of_folder(shape_from)
        urls = replica_urls(text)
        if urls is not None:
            members = [OpenAIGenerator(u, model=model, **options) for u in urls]  # type: ignore[arg-type]
            return ReplicatedGenerator(members, urls)
        return OpenAIGenerator(text, model=model, **options)  # type: ignore[arg-type]
    if shape_from is not None:
        raise ConfigError("a model config only applies to a server URL (a folder has its own)")
    from ponder.generators.transformers import TransformersGenerator

    return TransformersGenerator(text, **options)  # type: ignore[arg-type]
