"""Verifiers: process reward models, outcome scorers and judges behind one protocol."""

import json
from pathlib import Path

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError, ModelLoadError
from ponder.verifiers.base import (
    AGGREGATIONS,
    KINDS,
    Solution,
    Verdict,
    Verifier,
    VerifierKind,
    aggregate,
)
from ponder.verifiers.judge import JUDGE_FILE, GenerativeVerifier, JudgeFormat
from ponder.verifiers.prm import (
    PRM_FILE,
    CausalLMPRM,
    PRMFormat,
    encode_for_prm,
    label_token_ids,
)

# A folder that declares both readings names its default here: {"kind": "judge"} or "prm".
VERIFIER_FILE = "ponder_verifier.json"


def load_verifier(
    spec: str | Path | None = None,
    *,
    kind: VerifierKind = "auto",
    format: str | Path | None = None,
    model: str | None = None,
    shape_from: str | Path | None = None,
    **options: object,
) -> Verifier:
    """A verifier from a local model folder or an OpenAI-compatible server URL.

    `kind` says how the model is read: "prm", in one forward pass with a score
    at each step's tag (`CausalLMPRM`, `OpenAIPRM`); "judge", writing a check
    of each step before its verdict (`GenerativeVerifier`); "auto", as a judge
    when the folder declares a judge format (`ponder_judge.json`), else as a PRM,
    unless the folder names its default reading (`ponder_verifier.json`,
    `declared_kind`), as ponder's embedded verifier, which declares both, does.
    None means the embedded verifier.
    `format` is a `ponder_prm.json` or `ponder_judge.json` file (or a folder
    holding one) stating how the model reads solutions; by default a folder's
    own, and Math-Shepherd's convention for a PRM server. `model` names the
    model on a server (default: the first it serves); `shape_from`, the served
    model's folder, gives its size for FLOPs.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown verifier kind {kind!r}; use one of {', '.join(KINDS)}")
    if spec is None:
        from ponder.models import embedded_verifier

        spec = embedded_verifier()
    if _reads_as_judge(spec, kind, format):
        return _judge(spec, format, model, shape_from, options)
    chosen = None
    if format is not None:
        path = Path(format)
        chosen = PRMFormat.of_folder(path) if path.is_dir() else PRMFormat.of_file(path)
    if str(spec).startswith(("http://", "https://")):
        from ponder.generators.replicas import ReplicatedVerifier, replica_urls
        from ponder.verifiers.openai_prm import OpenAIPRM

        if shape_from is not None:
            options["shape"] = ModelShape.of_folder(shape_from)
        urls = replica_urls(str(spec))
        if urls is not None:
            members = [OpenAIPRM(u, model=model, format=chosen, **options) for u in urls]  # type: ignore[arg-type]
            return ReplicatedVerifier(members, urls)
        return OpenAIPRM(str(spec), model=model, format=chosen, **options)  # type: ignore[arg-type]
    if model is not None or shape_from is not None:
        raise ConfigError("a served model name or config only applies to a PRM server URL")
    return CausalLMPRM(spec, format=chosen, **options)  # type: ignore[arg-type]


def _is_url(spec: str | Path) -> bool:
    return str(spec).startswith(("http://", "https://"))


def _reads_as_judge(spec: str | Path, kind: VerifierKind, format: str | Path | None) -> bool:
    if kind != "auto":
        return kind == "judge"
    if format is not None:  # a folder holding a judge format, or the file itself by its name
        path = Path(format)
        return (path / JUDGE_FILE).is_file() if path.is_dir() else path.name == JUDGE_FILE
    if _is_url(spec):
        return False
    declared = declared_kind(spec)
    return declared == "judge" if declared is not None else JudgeFormat.of_folder(spec) is not None


def declared_kind(folder: str | Path) -> VerifierKind | None:
    """The reading a model folder names as its default in `ponder_verifier.json`, if any."""
    file = Path(folder) / VERIFIER_FILE
    if not file.is_file():
        return None
    try:
        kind = json.loads(file.read_text()).get("kind")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelLoadError(f"{file} is not a valid verifier declaration: {exc}") from None
    if kind not in ("prm", "judge"):
        raise ModelLoadError(f'{file} must name a kind, "prm" or "judge", not {kind!r}')
    if not (Path(folder) / (JUDGE_FILE if kind == "judge" else PRM_FILE)).is_file():
        raise ModelLoadError(f"{file} names the {kind} reading; {folder} has no {kind} format")
    return kind  # type: ignore[no-any-return]


def declare_kind(folder: str | Path, kind: VerifierKind) -> None:
    """Name a folder's default reading, for `load_verifier(kind="auto")` to find."""
    (Path(folder) / VERIFIER_FILE).write_text(json.dumps({"kind": kind}) + "\n")


def _judge(
    spec: str | Path,
    format: str | Path | None,
    model: str | None,
    shape_from: str | Path | None,
    options: dict[str, object],
) -> GenerativeVerifier:
    """A generative verifier over a folder or a served model, in the format it declares."""
    from ponder.generators import load_generator

    source = format if format is not None else (None if _is_url(spec) else spec)
    judge_format = None
    if source is not None:
        path = Path(source)
        judge_format = JudgeFormat.of_folder(path) if path.is_dir() else JudgeFormat.of_file(path)
    if judge_format is None:
        raise ConfigError(
            f"{spec} declares no judge format: "
            "give one (a ponder_judge.json) with --verifier-format"
        )
    model_options = ("device", "dtype", "prefix_cache_mb")  # the judge's model's, not its own
    generator_options = {k: options.pop(k) for k in model_options if k in options}
    generator = load_generator(spec, model=model, shape_from=shape_from, **generator_options)
    return GenerativeVerifier(generator, judge_format, **options)  # type: ignore[arg-type]


__all__ = [
    "AGGREGATIONS",
    "KINDS",
    "CausalLMPRM",
    "GenerativeVerifier",
    "JudgeFormat",
    "PRMFormat",
    "Solution",
    "Verdict",
    "Verifier",
    "VerifierKind",
    "aggregate",
    "declare_kind",
    "declared_kind",
    "encode_for_prm",
    "label_token_ids",
    "load_verifier",
]
