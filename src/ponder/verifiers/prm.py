"""Process reward models in the Math-Shepherd convention, from a local model folder.

Math-Shepherd (Wang et al., 2024) writes a solution with a tag after every step
and trains a causal LM to predict a "good" or a "bad" token at each tag; the
step's score is the good token's probability against the bad one's. Any PRM
trained that way scores through this class (Math-Shepherd's own model uses
the tag "ки" and the tokens "+" and "-", the default `PRMFormat`). A folder may
describe its own convention in a `ponder_prm.json` file holding `PRMFormat`'s
fields.

All solutions of a call are scored in batches of one forward pass each; the
good-versus-bad logits are computed at the tag positions only, never over the
whole vocabulary at every position.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError, ModelLoadError
from ponder.hf import LocalModel
from ponder.prefix_cache import CachedPrefix, PrefixCache, prefill, supports_prefix_cache
from ponder.verifiers.base import AGGREGATIONS, Aggregation, Solution, Verdict, aggregate

PRM_FILE = "ponder_prm.json"


@dataclass(frozen=True, slots=True)
class PRMFormat:
    """How a solution is written for the PRM: `prefix` holds the question, `step` one step."""

    prefix: str = "{question} "
    step: str = "{step} ки\n"
    tag: str = "ки"
    good: str = "+"
    bad: str = "-"

    def __post_init__(self) -> None:
        if "{question}" not in self.prefix:
            raise ConfigError("a PRM format's prefix needs a {question} field")
        if "{step}" not in self.step or self.tag not in self.step.split("{step}")[1]:
            raise ConfigError("a PRM format's step needs a {step} field followed by the tag")

    @classmethod
    def of_folder(cls, folder: Path) -> PRMFormat:
        """The folder's own convention when it ships `ponder_prm.json`, else Math-Shepherd's."""
        file = Path(folder) / PRM_FILE
        if not file.is_file():
            return cls()
        return cls.of_file(file)

    @classmethod
    def of_file(cls, file: Path) -> PRMFormat:
        """The convention a `ponder_prm.json` file states."""
        try:
            values = json.loads(file.read_text())
            return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        except OSError as exc:
            raise ConfigError(f"cannot read the PRM format {file}: {exc.strerror}") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ModelLoadError(f"{file} is not a valid PRM format: {exc}") from exc

    def save(self, folder: Path) -> None:
        """Declare this convention in a PRM folder, for `of_folder` to find."""
        (Path(folder) / PRM_FILE).write_text(json.dumps(asdict(self), indent=1))

    def render(self, solution: Solution) -> tuple[str, list[int]]:
        """The PRM's input text and, for each step, the offset just past its tag."""
        text = self.prefix.format(question=solution.question)
        ends = []
        before_tag, after = self.step.split("{step}")
        tag_end = after.index(self.tag) + len(self.tag)
        for step in solution.steps:
            ends.append(len(text) + len(before_tag) + len(step) + tag_end)
            text += before_tag + step + after
        return text, ends


def label_token_ids(tokenizer: Any, format: PRMFormat) -> list[int]:
    """The ids of the good and the bad token.

    As Math-Shepherd's own code does, "good bad" is tokenized and must give two
    tokens (with SentencePiece, "▁+" and "▁-"); failing that, each label must be a
    token of the vocabulary as written.
    """
    good, bad = format.good, format.bad
    ids = tokenizer(f"{good} {bad}", add_special_tokens=False).input_ids
    if len(ids) == 2:
        return [int(ids[0]), int(ids[1])]
    exact = [tokenizer.convert_tokens_to_ids(t) for t in (good, bad)]
    if tokenizer.unk_token_id in exact or None in exact:
        raise ConfigError(f"the PRM labels {good!r} and {bad!r} are not single tokens")
    return [int(i) for i in exact]


def encode_for_prm(
    tokenizer: Any, format: PRMFormat, solution: Solution
) -> tuple[list[int], list[int]]:
    """Token ids of `solution` written in `format`, and the position of each step's tag.

    The PRM's training uses this too, so a PRM is scored exactly where it was taught.
    """
    text, ends = format.render(solution)
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = encoded.input_ids, encoded.offset_mapping
    positions = []
    for end in ends:
        position = next((i for i, (_, stop) in enumerate(offsets) if stop >= end), None)
        if position is None or offsets[position][1] != end:
            raise ConfigError("a step tag does not end a token; steps must not run into it")
        positions.append(position)
    return list(ids), positions


class CausalLMPRM:
    """A `Verifier` over a local Math-Shepherd-style PRM folder.

    Args:
        path: the model folder.
        format: how solutions are written; default: the folder's own or Math-Shepherd's.
        outcome: how step scores fold into the outcome score: "last", "min", "product", "mean".
        max_batch_size: solutions scored in one forward pass.
        prefix_cache_mb: memory for the keys and values (and step scores) of
            solutions read lately: a partial solution that extends one scored
            before (the next round of a search) is read only past it (0: off).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        format: PRMFormat | None = None,
        outcome: Aggregation = "last",
        max_batch_size: int = 16,
        device: str | None = None,
        dtype: str | None = None,
        name: str | None = None,
        prefix_cache_mb: float = 512,
    ) -> None:
        if outcome not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {outcome!r}; use one of {AGGREGATIONS}")
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if prefix_cache_mb < 0:
            raise ConfigError(f"prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        self._local = LocalModel(path, device=device, dtype=dtype)
        self._format = format or PRMFormat.of_folder(self._local.folder)
        self._outcome: Aggregation = outcome
        self._max_batch_size = max_batch_size
        self._name = name or self._local.folder.name
        try:
            self._label_ids = label_token_ids(self._local.tokenizer, self._format)
        except ConfigError as exc:
            raise ModelLoadError(f"{self._name}: {exc}") from None
        self.prefix_cache: PrefixCache | None = None
        if prefix_cache_mb and supports_prefix_cache(self._local.model):
            self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20))

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> ModelShape:
        return self._local.shape

    @property
    def folder(self) -> Path:
        """The model folder this PRM loaded."""
        return self._local.folder

    async def connect(self) -> str:
        return self._name  # loaded already

    @property
    def format(self) -> PRMFormat:
        return self._format

    def _encode(self, solution: Solution) -> tuple[list[int], list[int]]:
        ids, positions = encode_for_prm(self._local.tokenizer, self._format, solution)
        context = self._local.context
        if context is not None and len(ids) > context:
            raise ConfigError(
                f"a solution of {len(ids)} tokens does not fit {self._name}'s context of {context}"
            )
        return ids, positions

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        return [len(self._encode(s)[0]) for s in solutions]

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        return await self._local.run(self._score, solutions)

    def score_blocking(self, solutions: Sequence[Solution]) -> list[Verdict]:
        """`score`, in the calling thread."""
        return self._local.run_blocking(self._score, solutions)

    def _score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        encoded = [self._encode(s) for s in solutions]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        step_scores: dict[int, list[float]] = {}
        for start in range(0, len(order), self._max_batch_size):
            batch = order[start : start + self._max_batch_size]
            for index, scores in zip(
                batch, self._forward([encoded[i] for i in batch]), strict=True
            ):
                step_scores[index] = scores
        verdicts = []
        for i, (ids, _) in enumerate(encoded):
            scores = tuple(step_scores[i])
            # A solution with no steps says nothing right: it gets the lowest outcome.
            outcome = aggregate(scores, self._outcome) if scores else 0.0
            verdicts.append(Verdict(step_scores=scores, outcome=outcome, tokens=len(ids)))
        return verdicts

    def _forward(self, batch: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Each solution's good-step probability at its tags.

        The probability is computed at every position read (two rows of the
        output head), so that a cached prefix keeps it for the tags of any
        solution that extends it.
        """
        torch, model = self._local.torch, self._local.model
        head: Any = model.get_output_embeddings()
        weight = head.weight[self._label_ids].float()  # [2, hidden]: the good and the bad rows
        bias = head.bias[self._label_ids] if getattr(head, "bias", None) is not None else 0.0

        cache_name = self._local.cache_argument

        def good(ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
            hidden = model.base_model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                **{cache_name: cache},
                use_cache=True,
            ).last_hidden_state
            return torch.softmax(hidden.float() @ weight.T + bias, dim=-1)[..., 0]

        rows = [ids for ids, _ in batch]

        def whole(output: Any, b: int, found: CachedPrefix | None) -> Any:
            """Row b's probability at every position, the cached ones included."""
            reused = len(found.ids) if found is not None else 0
            new = output[b, output.shape[1] - (len(rows[b]) - reused) :]
            return new.clone() if found is None else torch.cat([found.extra, new])

        prefilled = prefill(
            torch,
            model,
            rows,
            pad_id=self._local.tokenizer.pad_token_id or 0,
            device=self._local.device,
            store=self.prefix_cache,
            run=good,
            extra=whole,
        )
        width = prefilled.output.shape[1]
        results = []
        for b, (ids, tags) in enumerate(batch):
            found = prefilled.found[b]
            reused = len(found.ids) if found is not None else 0
            new = prefilled.output[b].tolist()
            results.append(
                [
                    new[tag - len(ids) + width] if tag >= reused else float(found.extra[tag])  # type: ignore[union-attr]
                    for tag in tags
                ]
            )
        return results

    async def aclose(self) -> None:
        self._local.close()
