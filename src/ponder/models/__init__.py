"""Model folders ponder makes itself, and where the committed ones live.

The embedded default is a policy and a verifier trained here on the `arith` task
(`ponder.models.arith_policy`, `ponder.models.arith_verifier`) and shipped with
the package as ordinary Hugging Face folders, each with its MODEL_CARD.md. The
tiny placeholder model (`ponder.models.tiny`) is built by the tests for chat
prompts, which the arith models do not use.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ponder.errors import ModelLoadError

EMBEDDED_POLICY = "arith-policy"
EMBEDDED_VERIFIER = "arith-verifier"


def embedded(name: str) -> Path:
    """The folder of a model shipped with ponder: "arith-policy" or "arith-verifier"."""
    if name not in (EMBEDDED_POLICY, EMBEDDED_VERIFIER):
        raise ModelLoadError(
            f"no embedded model {name!r}; "
            f"ponder ships {EMBEDDED_POLICY!r} and {EMBEDDED_VERIFIER!r}"
        )
    folder = Path(str(resources.files(__package__) / name))
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"the embedded model {name!r} is missing from {folder}")
    return folder


def embedded_policy() -> Path:
    """The embedded arith policy's folder (the default generator)."""
    return embedded(EMBEDDED_POLICY)


def embedded_verifier() -> Path:
    """The embedded arith verifier's folder (the default verifier). It reads as a generative
    judge and as a PRM; its `ponder_verifier.json` names the reading used by default."""
    return embedded(EMBEDDED_VERIFIER)
