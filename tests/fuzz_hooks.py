"""Schemathesis hooks for the server fuzz test (loaded through $SCHEMATHESIS_HOOKS).

Random model names would almost all get 404 and never reach a strategy; each generated
body is pointed at the served route instead, with or without a strategy and budget,
chosen from the body itself so that a failure replays the same way.
"""

from __future__ import annotations

import random
from typing import Any

import schemathesis

MODELS = ("arith", "arith@single", "arith@majority:2", "arith@beam_search:2", "arith@best_of_n")


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        body["model"] = random.Random(repr(sorted(body))).choice(MODELS)
    return body
