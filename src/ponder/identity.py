"""What identifies a model: its name and, for a local folder, a fingerprint of the files that
define it. Evaluation runs record it (a resumed run must use the same models) and
compute-optimal policies check it (a policy calibrated for other models is refused).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

# What a policy file compares: the same on every machine (a folder's path is not).
PORTABLE = ("name", "sha256_of_files")


def portable(identity: dict[str, Any]) -> dict[str, Any]:
    """The parts of an `identify` answer that are the same on every machine."""
    return {key: identity[key] for key in PORTABLE if key in identity}


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
    path = Path(folder).resolve()
    files = sorted(p for p in path.iterdir() if p.is_file() and not _documents(p))
    # Read again only when a file changed: a server checks its models on every request.
    stamps = tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])
    return dict(_fingerprint(path, stamps))


@functools.lru_cache(maxsize=64)
def _fingerprint(
    path: Path, stamps: tuple[tuple[str, int, int], ...]
) -> tuple[tuple[str, Any], ...]:
    digest = hashlib.sha256()
    for name, size, _ in stamps:
        digest.update(f"{name}:{size}\n".encode())
        if name.endswith(".json"):
            digest.update((path / name).read_bytes())
    config = (
        json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    )
    architectures = config.get("architectures")
    return (
        ("path", str(path)),
        ("architectures", architectures),
        ("sha256_of_files", digest.hexdigest()[:16]),
    )


def _documents(file: Path) -> bool:
    return file.suffix.lower() in (".md", ".html", ".png") or file.name == "training_log.json"
