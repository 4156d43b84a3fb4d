"""The budget meter and the FLOPs model, on the real transformers backend."""

from __future__ import annotations

import asyncio

import pytest

from ponder import Budget, BudgetExhausted, BudgetMeter, ConfigError, Prompt, SamplingParams
from ponder.budget.flops import ModelShape
from ponder.sync import run_sync

PROMPTS = [Prompt.raw("Question: What is 12 + 30?\nStep:"), Prompt.raw("Question: What is 7?\n")]


def test_flops_formula_by_hand():
    shape = ModelShape(matmul_params=1000, num_layers=2, attn_width=8)
    # Prefill of 3 tokens: 2*1000*3 + 4*2*8*(1+2+3).
    assert shape.prefill_flops(3) == 6000 + 64 * 6
    # Decoding 2 tokens after 3: positions 4 and 5.
    assert shape.decode_flops(3, 2) == 4000 + 64 * (4 + 5)
    assert shape.request_flops(3, [2, 2]) == shape.prefill_flops(3) + 2 * shape.decode_flops(3, 2)


def test_attention_term_grows_with_context():
    shape = ModelShape(matmul_params=10**6, num_layers=4, attn_width=256)
    short = shape.decode_flops(100, 1)
    long = shape.decode_flops(100_000, 1)
    assert long - short == pytest.approx(4 * 4 * 256 * (100_000 - 100))


def test_untied_embeddings_are_not_matmul_parameters():
    class Config:
        hidden_size, num_attention_heads, num_hidden_layers, vocab_size = 64, 4, 3, 100
        tie_word_embeddings = False

    shape = ModelShape.from_hf_config(Config(), total_params=50_000)
    assert shape.matmul_params == 50_000 - 100 * 64
    assert (shape.num_layers, shape.attn_width) == (3, 64)


def test_a_folders_shape_without_loading_it_is_the_loaded_models(tiny_model, tmp_path):
    from ponder.hf import LocalModel
    from ponder.models import embedded_policy

    for folder in (tiny_model, embedded_policy()):
        assert ModelShape.of_folder(folder) == LocalModel(folder).shape
    with pytest.raises(ConfigError, match="not a model folder"):
        ModelShape.of_folder(tmp_path)


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("16", Budget(samples=16)),
        ("samples=4", Budget(samples=4)),
        ("tokens=4096", Budget(tokens=4096)),
        ("flops=2e9", Budget(flops=2e9)),
    ],
)
def test_budget_parse(text, budget):
    assert Budget.parse(text) == budget


@pytest.mark.parametrize("text", ["", "abc", "tokens=1.5", "samples=0", "watts=3"])
def test_budget_parse_rejects(text):
    with pytest.raises(ConfigError):
        Budget.parse(text)


def _generate(meter, generator, prompts=PROMPTS, **params):
    return run_sync(meter.wrap(generator).generate(prompts, SamplingParams(**params)))


def test_meter_counts_exactly_what_the_backend_reports(hf_generator):
    meter = BudgetMeter()
    out = _generate(meter, hf_generator, n=3, max_tokens=12, seed=0)
    cost = meter.cost()
    assert cost.calls == 1
    assert cost.samples == 6
    assert cost.prompt_tokens == sum(g.prompt_tokens for g in out)
    assert cost.generated_tokens == sum(c.num_tokens for g in out for c in g.completions)
    shape = hf_generator.shape
    assert cost.flops == pytest.approx(
        sum(
            shape.request_flops(g.prompt_tokens, [c.num_tokens for c in g.completions]) for g in out
        )
    )
    assert cost.wall_seconds > 0


def test_sample_budget_refuses_a_call_that_does_not_fit(hf_generator):
    meter = BudgetMeter(Budget(samples=5))
    _generate(meter, hf_generator, n=2, max_tokens=4, seed=0)  # 4 samples
    with pytest.raises(BudgetExhausted, match="2 samples exceeds the 1 left"):
        _generate(meter, hf_generator, n=1, max_tokens=4, seed=0)
    _generate(meter, hf_generator, prompts=PROMPTS[:1], n=1, max_tokens=4, seed=0)
    assert meter.cost().samples == 5
    assert meter.remaining_samples() == 0


def test_token_budget_shortens_calls_and_is_never_exceeded(hf_generator):
    meter = BudgetMeter(Budget(tokens=50))
    seen = []
    with pytest.raises(BudgetExhausted):
        for seed in range(100):
            out = _generate(meter, hf_generator, n=2, max_tokens=16, seed=seed)
            seen.extend(c.num_tokens for g in out for c in g.completions)
            assert meter.cost().generated_tokens <= 50
    assert max(seen) <= 16
    assert min(seen) >= 1
    assert meter.cost().generated_tokens == sum(seen)
    assert meter.remaining_tokens() < 4, "it stopped only when one token per sample no longer fit"


def test_flops_budget_is_never_exceeded(hf_generator):
    shape = hf_generator.shape
    limit = 3 * shape.request_flops(20, [10] * 2)
    meter = BudgetMeter(Budget(flops=limit))
    with pytest.raises(BudgetExhausted):
        for seed in range(100):
            _generate(meter, hf_generator, n=2, max_tokens=32, seed=seed)
            assert meter.cost().flops <= limit
    assert 0 < meter.cost().flops <= limit


def test_concurrent_calls_cannot_overspend_together(hf_generator):
    meter = BudgetMeter(Budget(samples=6))
    generator = meter.wrap(hf_generator)
    params = SamplingParams(n=2, max_tokens=4, seed=0)

    async def many():
        calls = [generator.generate(PROMPTS[:1], params) for _ in range(5)]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run_sync(many())
    refused = [o for o in outcomes if isinstance(o, BudgetExhausted)]
    assert len(refused) == 2
    assert meter.cost().samples == 6


def test_a_failed_call_releases_its_reservation(hf_generator):
    meter = BudgetMeter(Budget(samples=2))
    with pytest.raises(ConfigError):
        _generate(meter, hf_generator, prompts=[Prompt.raw("x" * 5000)], n=2, max_tokens=4)
    assert meter.remaining_samples() == 2
    assert meter.cost().samples == 0


def test_flops_budget_needs_a_model_shape():
    from ponder.generators.openai import OpenAIGenerator

    meter = BudgetMeter(Budget(flops=1e9))
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", model="x", max_retries=0)
    with pytest.raises(ConfigError, match="model shape"):
        run_sync(meter.wrap(generator).generate(PROMPTS, SamplingParams(max_tokens=4)))
