"""Prefix caching for local models: a prompt that extends one read before is prefilled only past it.

Step-level search sends, round after round, prompts that extend the previous
round's: the problem, then the problem and one step, then two steps. A server
(vLLM's automatic prefix caching) keeps the key/value tensors of prompts it has
read and computes only what is new; this module does the same for the local
transformers backends. Measured on the embedded arith models, beam search
spent more time re-reading its prefixes (policy prefill and PRM scoring) than
decoding its steps (benchmarks/strategies.py).

`PrefixCache` holds, for recently read token sequences, each layer's keys and
values, evicting the least recently used beyond a byte budget. A lookup finds
the longest stored sequence that is a proper prefix of the new one, through a
rolling hash of the new sequence's prefixes (one dictionary probe per length),
and checks the tokens on a hit. `prefill` runs a batch of sequences with their
cached prefixes placed in a `DynamicCache`: each row is laid out as
`[pad | cached | pad | new]` with an attention mask and position ids that make
the padding invisible, so the model sees exactly the sequence it would see
without the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_MOD = (1 << 61) - 1
_BASE = 1_000_003


def _prefix_hashes(ids: Sequence[int]) -> list[int]:
    """hashes[k] identifies ids[:k]."""
    hashes = [0]
    h = 0
    for token in ids:
        h = (h * _BASE + token + 1) % _MOD
        hashes.append(h)
    return hashes


@dataclass(slots=True)
class CachedPrefix:
    """One read sequence: per layer, keys and values of shape [heads, tokens, head_dim].

    `extra` is what the reader kept per position beside the tensors (the PRM
    keeps its good-step probability at every position).
    """

    ids: tuple[int, ...]
    keys: list[Any]
    values: list[Any]
    extra: Any = None
    nbytes: int = 0


class PrefixCache:
    """Keys and values of token sequences read lately, within `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.reused_tokens = 0
        self._entries: OrderedDict[tuple[int, int], CachedPrefix] = OrderedDict()
        self._lengths: dict[int, int] = {}  # stored sequence length -> how many

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, ids: Sequence[int]) -> CachedPrefix | None:
        """The longest stored sequence that is a proper prefix of `ids`."""
        if not self._entries:
            return None
        hashes = _prefix_hashes(ids)
        for length in sorted((n for n in self._lengths if n < len(ids)), reverse=True):
            entry = self._entries.get((length, hashes[length]))
            if entry is not None and entry.ids == tuple(ids[:length]):
                self._entries.move_to_end((length, hashes[length]))
                self.hits += 1
                self.reused_tokens += length
                return entry
        return None

    def add(self, entry: CachedPrefix) -> None:
        if self.max_bytes <= 0:
            return
        entry.nbytes = sum(t.numel() * t.element_size() for t in (*entry.keys, *entry.values))
        if entry.nbytes > self.max_bytes:
            return
        key = (len(entry.ids), _prefix_hashes(entry.ids)[-1])
        old = self._entries.pop(key, None)
        if old is not None:
            self._forget(old)
        self._entries[key] = entry
        self._lengths[len(entry.ids)] = self._lengths.get(len(entry.ids), 0) + 1
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._forget(evicted)

    def _forget(self, entry: CachedPrefix) -> None:
        self.nbytes -= entry.nbytes
        left = self._lengths[len(entry.ids)] - 1
        if left:
            self._lengths[len(entry.ids)] = left
        else:
            del self._lengths[len(entry.ids)]

    def clear(self) -> None:
        self._entries.clear()
        self._lengths.clear()
        self.nbytes = 0


@dataclass(slots=True)
class Prefilled:
    """A batch after its prefill.

    `output` is what `run` returned for the new tokens, `[batch, width, ...]`
    with each row's new tokens right-aligned; `cache` holds every row's whole
    sequence; `mask` (`[batch, cached width + width]`) and `positions`
    (`[batch, width]`) are the attention mask and position ids to go on with;
    `found[b]` is the cached prefix row b reused (None: none).
    """

    output: Any
    cache: Any
    mask: Any
    positions: Any
    found: list[CachedPrefix | None]


def supports_prefix_cache(model: Any) -> bool:
    """Whether every layer of `model`'s dynamic cache is plain full attention."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except (TypeError, ValueError):
        return False
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


def prefill(
    torch: Any,
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    device: Any,
    store: PrefixCache | None,
    run: Callable[[Any, Any, Any, Any], Any],
    extra: Callable[[Any, int, Any], Any] | None = None,
) -> Prefilled:
    """Read `rows` with `run(input_ids, attention_mask, position_ids, cache)`, reusing `store`.

    After the forward pass each row's keys and values (and `extra(output, b,
    found)`, if given, where `found` is the reused entry or None) go into
    `store` for later sequences that extend it.
    """
    from transformers import DynamicCache

    found = [store.find(ids) if store is not None else None for ids in rows]
    reused = [len(e.ids) if e is not None else 0 for e in found]
    news = [list(ids[r:]) for ids, r in zip(rows, reused, strict=True)]
    before, width = max(reused), max(len(n) for n in news)
    batch = len(rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, before + width), dtype=torch.long)
    positions = torch.zeros((batch, width), dtype=torch.long)
    for b, (new, r) in enumerate(zip(news, reused, strict=True)):
        input_ids[b, width - len(new) :] = torch.tensor(new)
        mask[b, before - r : before] = 1
        mask[b, before + width - len(new) :] = 1
        positions[b, width - len(new) :] = torch.arange(r, r + len(new))
    cache = DynamicCache(config=model.config)
    if before:
        sample = next(e for e in found if e is not None)
        for layer in range(len(sample.keys)):
            heads, _, dim = sample.keys[layer].shape
            like = sample.keys[layer]
            keys = like.new_zeros((batch, heads, before, dim))
            values = like.new_zeros((batch, heads, before, dim))
            for b, entry in enumerate(found):
                if entry is not None:
                    keys[b, :, before - reused[b] :] = entry.keys[layer]
                    values[b, :, before - reused[b] :] = entry.values[layer]
            cache.update(keys, values, layer)
    mask, positions = mask.to(device), positions.to(device)
    output = run(input_ids.to(device), mask, positions, cache)
    if store is not None and store.max_bytes > 0:
        end = before + width
        for b, ids in enumerate(rows):
            # The row's real tokens: its cached part, then its new part (slices copy fast;
            # `torch.cat` copies them out of the batch's tensors).
            old, new = slice(before - reused[b], before), slice(end - len(news[b]), end)
            store.add(
                CachedPrefix(
                    ids=tuple(ids),
                    keys=[
                        torch.cat([x.keys[b, :, old], x.keys[b, :, new]], 1) for x in cache.layers
                    ],
                    values=[
                        torch.cat([x.values[b, :, old], x.values[b, :, new]], 1)
                        for x in cache.layers
                    ],
                    extra=extra(output, b, found[b]) if extra is not None else None,
                )
            )
    return Prefilled(output=output, cache=cache, mask=mask, positions=positions, found=found)
