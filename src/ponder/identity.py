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
PORTABLE = ("name", "sha256_of_files", "sha256_of_weights")
# Recorded since 2026-12-05: an identity recorded before it (a policy file, a run's
# configuration) is compared without it.
ADDED_LATER = ("sha256_of_weights",)
# Bytes read from each file that is not JSON (weights, a tokenizer model): at its start, its
# middle and its end. Retrained weights of the same shape have the same size; their bytes differ.
SAMPLE_BYTES = 1 << 16


def portable(identity: dict[str, Any]) -> dict[str, Any]:
    """The parts of an `identify` answer that are the same on every machine."""
    return {key: identity[key] for key in PORTABLE if key in identity}


def same_model(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two identities name the same model: their portable parts are equal, leaving
    out a part added later that only one of them records."""
    if a is None or b is None:
        return a is None and b is None
    mine, theirs = portable(a), portable(b)
    for key in ADDED_LATER:
        if (key in mine) != (key in theirs):
            mine.pop(key, None)
            theirs.pop(key, None)
    return mine == theirs


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
    model (config, weights, tokenizer, ponder's reading formats) and the content of its JSON
    (`sha256_of_files`), and samples of the other files' bytes (`sha256_of_weights`: three
    64 KiB pieces of each, so that weights retrained in the same shape are another model).

    Cheap for any model size (at most 192 KiB of each weight file is read); enough to
    notice that a folder now holds another model. Its documentation (a model card, a
    training log) is not counted: editing it leaves the model the same.
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
    weights = hashlib.sha256()
    for name, size, _ in stamps:
        if not name.endswith(".json"):
            weights.update(f"{name}\n".encode())
            middle, end = size // 2 - SAMPLE_BYTES // 2, size - SAMPLE_BYTES
            with (path / name).open("rb") as f:
                for offset in sorted({0, max(0, middle), max(0, end)}):
                    f.seek(offset)
                    weights.update(f.read(SAMPLE_BYTES))
    return (
        ("path", str(path)),
        ("architectures", architectures),
        ("sha256_of_files", digest.hexdigest()[:16]),
        ("sha256_of_weights", weights.hexdigest()[:16]),
    )


def _documents(file: Path) -> bool:
    return file.suffix.lower() in (".md", ".html", ".png") or file.name == "training_log.json"
