"""Verifiers: process reward models, outcome scorers and judges behind one protocol."""

from ponder.verifiers.base import AGGREGATIONS, Solution, Verdict, Verifier, aggregate
from ponder.verifiers.prm import CausalLMPRM, PRMFormat, encode_for_prm, label_token_ids

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
]
