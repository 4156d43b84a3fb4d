"""Verifiers: process reward models, outcome scorers and judges behind one protocol."""

from pathlib import Path

from ponder.errors import ConfigError
from ponder.verifiers.base import AGGREGATIONS, Solution, Verdict, Verifier, aggregate
from ponder.verifiers.prm import CausalLMPRM, PRMFormat, encode_for_prm, label_token_ids


def load_verifier(spec: str | Path | None = None, **options: object) -> Verifier:
    """A verifier for a local PRM folder; None means ponder's embedded arith PRM."""
    if spec is None:
        from ponder.models import embedded_prm

        spec = embedded_prm()
    if str(spec).startswith(("http://", "https://")):
        raise ConfigError(
            f"cannot use {spec} as a verifier: PRMs are loaded from local model folders"
        )
    return CausalLMPRM(spec, **options)  # type: ignore[arg-type]


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
