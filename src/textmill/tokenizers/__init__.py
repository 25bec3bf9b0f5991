"""Tokenizers: char, word (CJK-aware), whitespace (pre-tokenized text), byte-level BPE.

All save and load one `tokenizer.json`."""

from __future__ import annotations

from collections.abc import Iterable

from ..config import TokenizerConfig
from ..registry import Registry
from .base import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    UNK,
    UNK_ID,
    Tokenizer,
    VocabTokenizer,
    load_tokenizer,
    tokenizer_from_document,
    vocab_index,
)
from .bpe import BPETokenizer
from .char import CharTokenizer
from .hf import HFTokenizer
from .whitespace import WhitespaceTokenizer
from .word import WordTokenizer

TOKENIZERS: Registry[type[Tokenizer]] = Registry("tokenizer kind")
TOKENIZERS.register("char")(CharTokenizer)
TOKENIZERS.register("word")(WordTokenizer)
TOKENIZERS.register("bpe")(BPETokenizer)
TOKENIZERS.register("whitespace")(WhitespaceTokenizer)
TOKENIZERS.register("hf")(HFTokenizer)  # a pretrained model's own; loaded with it, never trained from a config


def build_tokenizer(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """Train a tokenizer of `cfg.kind` on `texts`."""
    cls = TOKENIZERS.get(cfg.kind)
    kwargs = {"control_tokens": cfg.control_tokens, "vocab_size": cfg.vocab_size, "min_frequency": cfg.min_frequency,
              "prefix_space": cfg.prefix_space}
    if cfg.kind == "word":
        kwargs["segmenter"] = cfg.segmenter
    return cls(**kwargs).train(texts)


__all__ = ["BOS", "BOS_ID", "EOS", "EOS_ID", "PAD", "PAD_ID", "UNK", "UNK_ID", "TOKENIZERS", "Tokenizer",
           "build_tokenizer", "load_tokenizer", "tokenizer_from_document", "vocab_index", "CharTokenizer", "WordTokenizer",
           "WhitespaceTokenizer", "BPETokenizer", "HFTokenizer", "VocabTokenizer"]
