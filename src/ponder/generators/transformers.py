"""Local Hugging Face causal LMs, batched, with a KV cache, on CPU or GPU.

ponder runs its own decoding loop instead of `model.generate` for three reasons:
each sample gets its own random stream (so a sample does not change when other
prompts share its batch), stop strings are checked on each row's new text only,
and log-probabilities come from the raw logits one step at a time instead of a
stored `[steps, batch, vocab]` tensor. A prompt is prefilled once and its cache
repeated for its `n` samples, and rows that have finished leave the batch. A
prompt that extends one read before (the next round of a step-level search) is
prefilled only past it (`ponder.prefix_cache`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError, ModelLoadError
from ponder.generators.base import SamplingParams, derive_seed, prompt_seed
from ponder.hf import LocalModel
from ponder.prefix_cache import PrefixCache, prefill, supports_prefix_cache
from ponder.types import Completion, Generation, Prompt, TokenLogprob

_ANCHOR_TOKENS = 4


@dataclass(slots=True)
class _Row:
    """One sample being decoded."""

    anchor: list[int]  # the prompt's last tokens, to decode the sample in context
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: str | None = None
    stop_string: str | None = None


class TransformersGenerator:
    """A `Generator` over a local Hugging Face causal-LM folder.

    Args:
        path: the model folder (`config.json`, weights, tokenizer files).
        device: "cpu", "cuda", "cuda:1", ...; default: CUDA when available.
        dtype: torch dtype name; default float32 on CPU and the folder's own dtype on GPU.
        max_batch_size: most sequences decoded together; larger calls are split.
        name: the name reported in results; default: the folder's name.
        prefix_cache_mb: memory for the keys and values of prompts read lately,
            reused when a later prompt extends one (0: off).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 64,
        name: str | None = None,
        prefix_cache_mb: float = 1024,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if prefix_cache_mb < 0:
            raise ConfigError(f"prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        self._local = LocalModel(path, device=device, dtype=dtype)
        self._torch = self._local.torch
        self._device = self._local.device
        self._tokenizer = self._local.tokenizer
        self._model = self._local.model
        self._shape = self._local.shape
        self._context = self._local.context
        self._name = name or self._local.folder.name
        self._max_batch_size = max_batch_size
        self._eos_ids = self._find_eos_ids()
        pad = self._tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else min(self._eos_ids)
        self.prefix_cache: PrefixCache | None = None
        if prefix_cache_mb and supports_prefix_cache(self._model):
            self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20))

    def _find_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (self._model.generation_config, self._model.config, self._tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(v for v in value if isinstance(v, int))
        if not ids:
            raise ModelLoadError(f"{self._name} declares no end-of-sequence token")
        return frozenset(ids)

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> ModelShape:
        return self._shape

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def folder(self) -> Path:
        """The model folder this generator loaded."""
        return self._local.folder

    async def connect(self) -> str:
        return self._name  # loaded already

    def render(self, prompt: Prompt) -> str:
        """The exact text the model continues for `prompt`."""
        if prompt.messages is None:
            return (prompt.text or "") + prompt.continuation
        if not getattr(self._tokenizer, "chat_template", None):
            raise ConfigError(
                f"{self._name} has no chat template; give it raw-text prompts instead of messages"
            )
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        text = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return text + prompt.continuation

    def _encode(self, prompt: Prompt) -> list[int]:
        # Chat templates write their own special tokens; raw text gets the tokenizer's (BOS).
        ids = self._tokenizer(self.render(prompt), add_special_tokens=not prompt.is_chat).input_ids
        if not ids:
            raise ConfigError("cannot generate from an empty prompt")
        if self._context is not None and len(ids) >= self._context:
            raise ConfigError(
                f"prompt of {len(ids)} tokens does not fit {self._name}'s context "
                f"of {self._context}"
            )
        return ids

    async def count_prompt_tokens(self, prompts: Sequence[Prompt]) -> list[int]:
        return [len(self._encode(p)) for p in prompts]

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[Generation]:
        return await self._local.run(self._generate, prompts, params)

    def generate_blocking(
        self, prompts: Sequence[Prompt], params: SamplingParams
    ) -> list[Generation]:
        """`generate`, in the calling thread (one generation at a time per model)."""
        return self._local.run_blocking(self._generate, prompts, params)

    async def stream(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_text: Callable[[int, str], None],
    ) -> list[Generation]:
        """`generate`, each sample's text handed to `on_text` (on the event loop) as it is
        decoded.

        A piece is held back while it ends in an incomplete character or could begin a
        stop string, so what is handed on is always a prefix of the final text.
        """
        loop = asyncio.get_running_loop()
        hold = max((len(s) for s in params.stop), default=1) - 1
        sent: dict[int, int] = {}
        n = 1 if params.temperature == 0 else params.n

        def on_step(drawn: int, row: _Row) -> None:
            index = drawn // n * params.n + drawn % n  # greedy draws one sample a prompt
            if row.finish is not None:
                return  # the final text (a stop string cut off) is handed on below
            text = self._decode_in_context(row).rstrip("\ufffd")
            ready = len(text) - hold
            if ready > sent.get(index, 0):
                loop.call_soon_threadsafe(on_text, index, text[sent.get(index, 0) : ready])
                sent[index] = ready

        generations = await self._local.run(self._generate, prompts, params, on_step)
        for i, generation in enumerate(generations):
            for j, completion in enumerate(generation.completions):
                index = i * params.n + j
                if len(completion.text) > sent.get(index, 0):
                    on_text(index, completion.text[sent.get(index, 0) :])
        return generations

    def _generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        on_step: Callable[[int, _Row], None] | None = None,
    ) -> list[Generation]:
        encoded = [self._encode(p) for p in prompts]
        if params.temperature == 0:
            params = params.replace(n=1)
        call_seed = params.seed if params.seed is not None else secrets.randbits(62)
        seeds = [prompt_seed(p, call_seed, i) for i, p in enumerate(prompts)]
        per_chunk = max(1, self._max_batch_size // params.n)
        results: list[Generation] = []
        for start in range(0, len(encoded), per_chunk):
            end = start + per_chunk
            step = None if on_step is None else _offset(on_step, start * params.n)
            results.extend(self._decode_chunk(encoded[start:end], params, seeds[start:end], step))
        return results

    def _decode_chunk(
        self,
        chunk: list[list[int]],
        params: SamplingParams,
        seeds: list[int],
        on_step: Callable[[int, _Row], None] | None = None,
    ) -> list[Generation]:
        torch = self._torch
        n, device = params.n, self._device
        width = max(len(ids) for ids in chunk)
        room = (
            params.max_tokens
            if self._context is None
            else min(params.max_tokens, self._context - width)
        )
        rows = [_Row(anchor=ids[-_ANCHOR_TOKENS:]) for ids in chunk for _ in range(n)]
        # Each sample draws all its uniforms up front from its own stream, so what it
        # samples depends on its seed alone, not on the rows it shares a batch with.
        uniforms = torch.stack(
            [
                1.0
                - torch.rand(
                    max(room, 1),
                    generator=torch.Generator().manual_seed(derive_seed(seeds[b], i)),
                )
                for b in range(len(chunk))
                for i in range(n)
            ]
        ).to(device)
        # Left padding keeps every row's last token aligned.
        prefilled = prefill(
            torch,
            self._model,
            chunk,
            pad_id=self._pad_id,
            device=device,
            store=self.prefix_cache,
            run=lambda ids, mask, positions, cache: self._model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                **{self._local.cache_argument: cache},
                use_cache=True,
                logits_to_keep=1,
            ),
        )
        cache, mask, positions = prefilled.cache, prefilled.mask, prefilled.positions
        logits = prefilled.output.logits[:, -1, :].float()
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            positions = positions.repeat_interleave(n, dim=0)
        next_position = positions[:, -1:] + 1
        active = list(range(len(rows)))  # the rows still in the batch, in cache order
        for step in range(room):
            chosen = self._sample(logits, params, uniforms[:, step : step + 1])
            self._record([rows[i] for i in active], chosen, logits, params)
            if on_step is not None:  # a stream: every sample still being decoded
                for i in active:
                    on_step(i, rows[i])
            live = [j for j, i in enumerate(active) if not rows[i].finish]
            if not live:
                break
            if 4 * (len(active) - len(live)) >= len(active):
                # A quarter of the batch has finished: decode only the others from now on.
                keep = torch.tensor(live, device=device)
                cache.batch_select_indices(keep)
                mask, next_position = mask[keep], next_position[keep]
                uniforms, chosen = uniforms[keep], chosen[keep]
                active = [active[j] for j in live]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            out = self._model(
                input_ids=chosen.unsqueeze(1),
                attention_mask=mask,
                position_ids=next_position,
                **{self._local.cache_argument: cache},
                use_cache=True,
            )
            logits = out.logits[:, -1, :].float()
            next_position = next_position + 1
        return [
            Generation(
                completions=tuple(
                    self._completion(r, params.stop) for r in rows[b * n : (b + 1) * n]
                ),
                prompt_tokens=len(ids),
            )
            for b, ids in enumerate(chunk)
        ]

    def _sample(self, logits: Any, params: SamplingParams, uniform: Any) -> Any:
        """Greedy, or inverse-CDF sampling with one uniform in (0, 1] per row."""
        torch = self._torch
        if params.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = sorted_probs.cumsum(dim=-1) - sorted_probs > params.top_p
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        cdf = probs.cumsum(dim=-1)
        # u in (0, 1] scaled to the total mass lands on a token of positive probability.
        chosen = torch.searchsorted(cdf, uniform * cdf[:, -1:]).squeeze(1)
        return chosen.clamp(max=probs.shape[-1] - 1)

    def _record(self, rows: list[_Row], chosen: Any, logits: Any, params: SamplingParams) -> None:
        """Append each live row's new token, then end rows that hit EOS or a stop string."""
        logp = self._torch.log_softmax(logits, dim=-1) if params.logprobs is not None else None
        lookback = 4 * max((len(s) for s in params.stop), default=0) + 8
        for r, row in enumerate(rows):
            if row.finish is not None:
                continue
            token = int(chosen[r])
            row.tokens.append(token)
            if logp is not None:
                row.logprobs.append(self._token_logprob(logp[r], token, params.logprobs or 0))
            if token in self._eos_ids:
                row.finish = "stop"
            elif params.stop:
                tail = self._tokenizer.decode(row.tokens[-lookback:], skip_special_tokens=True)
                hit = next((s for s in params.stop if s in tail), None)
                if hit is not None:
                    row.finish, row.stop_string = "stop", hit

    def _token_logprob(self, logp: Any, token: int, top: int) -> TokenLogprob:
        decode = self._tokenizer.decode
        alternatives: tuple[tuple[str, float], ...] = ()
        if top:
            values, ids = logp.topk(top)
            alternatives = tuple(
                (decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)
            )
        return TokenLogprob(token=decode([token]), logprob=float(logp[token]), top=alternatives)

    def _decode_in_context(self, row: _Row) -> str:
        """The sample's text as it continues the prompt.

        Decoding the new tokens alone would drop the space SentencePiece marks on
        a first token ("▁is" -> "is"); decoding them after the prompt's last tokens
        and removing those keeps it, as a server's incremental detokenizer does.
        """
        decode = self._tokenizer.decode
        anchor = decode(row.anchor, skip_special_tokens=True)
        both = decode(row.anchor + row.tokens, skip_special_tokens=True)
        if anchor and both.startswith(anchor):
            return both[len(anchor) :]
        return decode(row.tokens, skip_special_tokens=True)

    def _completion(self, row: _Row, stop: tuple[str, ...]) -> Completion:
        text = self._decode_in_context(row)
        stop_string = None
        hits = sorted((text.find(s), s) for s in stop if s in text) if row.stop_string else []
        if hits:
            cut, stop_string = hits[0]
            text = text[:cut]
        return Completion(
            text=text,
            num_tokens=len(row.tokens),
            finish_reason="stop" if row.finish else "length",
            stop_string=stop_string,
            logprobs=tuple(row.logprobs) if row.logprobs else None,
        )

    async def aclose(self) -> None:
        self._local.close()


def _offset(on_step: Callable[[int, _Row], None], offset: int) -> Callable[[int, _Row], None]:
    """`on_step` for a chunk of a call whose rows begin at `offset`."""
    return lambda index, row: on_step(offset + index, row)
