"""Verifiers: process reward models, outcome scorers and judges behind one protocol."""

from pathlib import Path

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError
from ponder.verifiers.base import AGGREGATIONS, Solution, Verdict, Verifier, aggregate
from ponder.verifiers.prm import CausalLMPRM, PRMFormat, encode_for_prm, label_token_ids


def load_verifier(
    spec: str | Path | None = None,
    *,
    format: str | Path | None = None,
    model: str | None = None,
    shape_from: str | Path | None = None,
    **options: object,
) -> Verifier:
    """A PRM from a local model folder or an OpenAI-compatible server URL.

    None means ponder's embedded arith PRM. `format` is a `ponder_prm.json` file
    (or a folder holding one) stating how the PRM reads solutions; by default a
    folder's own file, and Math-Shepherd's convention for a server. `model` names
    the PRM on a server (default: the first it serves); `shape_from`, the served
    PRM's folder, gives its size for FLOPs.
    """
    if spec is None:
        from ponder.models import embedded_prm

        spec = embedded_prm()
    chosen = None
    if format is not None:
        path = Path(format)
        chosen = PRMFormat.of_folder(path) if path.is_dir() else PRMFormat.of_file(path)
    if str(spec).startswith(("http://", "https://")):
        from ponder.verifiers.openai_prm import OpenAIPRM

        if shape_from is not None:
            options["shape"] = ModelShape.of_folder(shape_from)
        return OpenAIPRM(str(spec), model=model, format=chosen, **options)  # type: ignore[arg-type]
    if model is not None or shape_from is not None:
        raise ConfigError("a served model name or config only applies to a PRM server URL")
    return CausalLMPRM(spec, format=chosen, **options)  # type: ignore[arg-type]


__all__ = [
    "AGGREGATIONS",
    "CausalLMPRM",
    "PRMFormat",
    "Solution",
    "Verdict",
    "Verifier",
    "aggregate",
    "encode_for_prm",
    "label_token_ids",
    "load_verifier",
]
