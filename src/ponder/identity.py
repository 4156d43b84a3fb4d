"""What identifies a model: its name and, for a local folder, a fingerprint of the files that
define it. Evaluation runs record it (a resumed run must use the same models) and
compute-optimal policies check it (a policy calibrated for other models is refused).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# What a policy file compares: the same on every machine (a folder's path is not).
PORTABLE = ("name", "sha256_of_files")


def identify(model: Any, folder: str | Path | None = None) -> dict[str, Any]:
    """A generator's or verifier's name and, when it has a local folder (its own, else
    `folder`: a served model's config folder), that folder's `fingerprint`."""
    identity: dict[str, Any] = {"name": model.name}
    folder = model.folder or folder
    if folder is not None:
        identity.update(fingerprint(folder))
    return identity


def fingerprint(folder: str | Path) -> dict[str, Any]:
    """What identifies a local model folder: the names and sizes of the files that define the
    model (config, weights, tokenizer, ponder's reading formats) and the content of its JSON.

    Cheap for any model size (weights are not read); enough to notice that a
    folder now holds another model. Its documentation (a model card, a training
    log) is not counted: editing it leaves the model the same.
    """
    path = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and not _documents(p)):
        digest.update(f"{file.name}:{file.stat().st_size}\n".encode())
        if file.suffix == ".json":
            digest.update(file.read_bytes())
    config = (
        json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    )
    return {
        "path": str(path.resolve()),
        "architectures": config.get("architectures"),
        "sha256_of_files": digest.hexdigest()[:16],
    }


def _documents(file: Path) -> bool:
    return file.suffix.lower() in (".md", ".html", ".png") or file.name == "training_log.json"
