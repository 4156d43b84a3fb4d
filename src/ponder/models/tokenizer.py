"""SentencePiece tokenizers for the models ponder trains, saved as Hugging Face tokenizer files.

BPE with byte fallback (any text encodes), one token per digit (arithmetic needs
it), no normalisation (newlines and spaces survive, so a step boundary is a
token). The folder gets `tokenizer.model` as well as `tokenizer.json`: vLLM and
transformers read either, and llama.cpp's converter needs the SentencePiece file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path


def train_sentencepiece(
    out_dir: Path,
    texts: Iterable[str],
    vocab_size: int,
    *,
    chat_template: str | None = None,
    user_symbols: tuple[str, ...] = (),
) -> None:
    """Train on `texts` and save the tokenizer (<unk>, <s>, </s>, <pad> = 0..3) into `out_dir`."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("\n".join(texts))
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp, "sp")),
            vocab_size=vocab_size,
            model_type="bpe",
            byte_fallback=True,
            split_digits=True,
            character_coverage=1.0,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            user_defined_symbols=list(user_symbols),
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=3,
            num_threads=1,
            minloglevel=2,
        )
        src = Path(tmp, "hf")
        src.mkdir()
        shutil.copy(Path(tmp, "sp.model"), src / "tokenizer.model")
        (src / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "LlamaTokenizer",
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                    "unk_token": "<unk>",
                    "pad_token": "<pad>",
                    "add_bos_token": True,
                    "add_eos_token": False,
                    "legacy": False,
                }
            )
        )
        tokenizer = AutoTokenizer.from_pretrained(src)
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(out_dir)
        shutil.copy(src / "tokenizer.model", out_dir / "tokenizer.model")
