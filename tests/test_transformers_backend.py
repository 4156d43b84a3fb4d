"""The transformers backend, on a real (tiny, random) Llama folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ponder import ConfigError, Message, ModelLoadError, Prompt, SamplingParams
from ponder.generators.transformers import TransformersGenerator
from ponder.sync import run_sync

RAW = Prompt.raw("Question: What is 12 + 30?\nStep:")
OTHER = Prompt.raw("Question: What is 7 * 6?\n")


def generate(generator, prompts, **params):
    return run_sync(generator.generate(prompts, SamplingParams(**params)))


def test_returns_n_samples_per_prompt_with_counts(hf_generator):
    out = generate(hf_generator, [RAW, OTHER], n=3, max_tokens=16, seed=0)
    assert [len(g.completions) for g in out] == [3, 3]
    tokenizer = hf_generator.tokenizer
    assert out[0].prompt_tokens == len(tokenizer(RAW.text).input_ids)
    for completion in out[0].completions + out[1].completions:
        assert 1 <= completion.num_tokens <= 16
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert completion.num_tokens == 16


def test_same_seed_same_samples_and_other_seed_differs(hf_generator):
    first = generate(hf_generator, [RAW, OTHER], n=4, max_tokens=24, seed=7)
    again = generate(hf_generator, [RAW, OTHER], n=4, max_tokens=24, seed=7)
    other = generate(hf_generator, [RAW, OTHER], n=4, max_tokens=24, seed=8)
    texts = lambda gens: [c.text for g in gens for c in g.completions]  # noqa: E731
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    assert len(set(texts(first))) > 1, "samples of one call must differ from each other"


def test_a_sample_does_not_depend_on_its_batch(hf_generator):
    batched = generate(hf_generator, [RAW, OTHER], n=2, max_tokens=24, seed=3)
    alone = generate(hf_generator, [RAW], n=2, max_tokens=24, seed=3)
    assert [c.text for c in batched[0].completions] == [c.text for c in alone[0].completions]


def test_stop_string_cuts_the_sample_where_it_first_appears(hf_generator):
    [free] = generate(hf_generator, [RAW], n=1, max_tokens=40, seed=11)
    text = free.completions[0].text
    assert len(text) > 6
    stop = text[3:5]
    [stopped] = generate(hf_generator, [RAW], n=1, max_tokens=40, seed=11, stop=(stop, "\x00zz"))
    completion = stopped.completions[0]
    assert completion.text == text[: text.index(stop)]
    assert completion.finish_reason == "stop"
    assert completion.stop_string == stop
    assert completion.num_tokens < free.completions[0].num_tokens


def streamed(generator, prompts, params) -> tuple[list, dict[int, list[str]]]:
    """A stream's generations and the pieces it handed on, by sample index."""
    pieces: dict[int, list[str]] = {}
    out = run_sync(
        generator.stream(prompts, params, lambda i, t: pieces.setdefault(i, []).append(t))
    )
    return out, pieces


def test_a_stream_hands_on_each_sample_piece_by_piece_as_generate_draws_it(hf_generator):
    params = SamplingParams(n=3, max_tokens=40, seed=11)
    out, pieces = streamed(hf_generator, [RAW, OTHER], params)
    assert out == generate(hf_generator, [RAW, OTHER], n=3, max_tokens=40, seed=11)
    assert sorted(pieces) == list(range(6))
    for i, generation in enumerate(out):
        for j, completion in enumerate(generation.completions):
            assert len(pieces[i * 3 + j]) > 5
            assert "".join(pieces[i * 3 + j]) == completion.text


def test_a_greedy_stream_numbers_its_samples_as_asked(hf_generator):
    out, pieces = streamed(hf_generator, [RAW, OTHER], SamplingParams(n=2, temperature=0))
    assert [len(g.completions) for g in out] == [1, 1]  # greedy draws one a prompt
    assert sorted(pieces) == [0, 2]
    assert "".join(pieces[2]) == out[1].completions[0].text


def test_a_stream_never_hands_on_a_stop_string(hf_generator):
    [free] = generate(hf_generator, [RAW], max_tokens=40, seed=11)
    text = free.completions[0].text
    stop = text[6:9]
    params = SamplingParams(max_tokens=40, seed=11, stop=(stop,))
    [out], pieces = streamed(hf_generator, [RAW], params)
    assert "".join(pieces[0]) == out.completions[0].text == text[: text.index(stop)]


def test_continuation_continues_the_partial_solution(hf_generator):
    partial = Prompt.raw("Question: What is 12 + 30?\n", continuation="Step:")
    whole = Prompt.raw("Question: What is 12 + 30?\nStep:")
    a = generate(hf_generator, [partial], n=2, max_tokens=12, seed=5)
    b = generate(hf_generator, [whole], n=2, max_tokens=12, seed=5)
    assert a[0].completions == b[0].completions
    assert partial.continued(" 1").continuation == "Step: 1"


def test_logprobs_are_per_token_and_greedy_picks_the_top_token(hf_generator):
    [out] = generate(hf_generator, [RAW], n=1, max_tokens=10, temperature=0, logprobs=3)
    completion = out.completions[0]
    assert completion.logprobs is not None
    assert len(completion.logprobs) == completion.num_tokens
    for token in completion.logprobs:
        assert token.logprob <= 0
        assert len(token.top) == 3
        assert [v for _, v in token.top] == sorted((v for _, v in token.top), reverse=True)
        assert token.logprob == pytest.approx(token.top[0][1])
    [plain] = generate(hf_generator, [RAW], n=1, max_tokens=10, temperature=0)
    assert plain.completions[0].logprobs is None


def test_greedy_returns_one_completion_whatever_n(hf_generator):
    [out] = generate(hf_generator, [RAW], n=4, max_tokens=8, temperature=0)
    assert len(out.completions) == 1


def test_chat_prompts_use_the_chat_template(hf_generator):
    chat = Prompt.chat([Message("user", "What is 2 + 2?")], continuation="The")
    rendered = hf_generator.render(chat)
    assert rendered == "<s>user: What is 2 + 2?\nassistant: The"
    [out] = generate(hf_generator, [chat], n=1, max_tokens=5, seed=0)
    assert out.prompt_tokens == len(
        hf_generator.tokenizer(rendered, add_special_tokens=False).input_ids
    )


def test_chat_prompt_without_template_is_a_clear_error(tiny_model, tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_model, folder)
    (folder / "chat_template.jinja").unlink()
    generator = TransformersGenerator(folder)
    with pytest.raises(ConfigError, match="no chat template"):
        generate(generator, [Prompt.chat([Message("user", "hi")])], max_tokens=2)


def test_large_calls_are_split_into_batches(tiny_model):
    small_batches = TransformersGenerator(tiny_model, max_batch_size=4)
    rows: list[int] = []  # the sequences in each forward pass of the real model
    hook = small_batches._model.register_forward_pre_hook(
        lambda _, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        wide = generate(small_batches, [RAW, OTHER, RAW], n=3, max_tokens=10, seed=2)
    finally:
        hook.remove()
    assert [len(g.completions) for g in wide] == [3, 3, 3]
    # 9 sequences asked for, at most 4 at a time: one prompt's 3 samples per batch.
    assert rows and max(rows) == 3 and rows.count(1) == 3, rows


@pytest.mark.parametrize(
    ("make_folder", "message"),
    [
        (lambda tmp: tmp / "missing", "not found"),
        (lambda tmp: tmp, "no config.json"),
    ],
)
def test_bad_model_folders_are_clear_errors(tmp_path: Path, make_folder, message):
    with pytest.raises(ModelLoadError, match=message):
        TransformersGenerator(make_folder(tmp_path))


def test_shape_is_read_from_the_config(hf_generator):
    shape = hf_generator.shape
    assert shape.num_layers == 2
    assert shape.attn_width == 128
    # Tied embeddings: the output head multiplies by every parameter.
    assert shape.matmul_params == sum(p.numel() for p in hf_generator._model.parameters())
