"""Character-level tokenizer: one token per Unicode code point, the most frequent `vocab_size` kept."""

from __future__ import annotations

from .base import VocabTokenizer


class CharTokenizer(VocabTokenizer):
    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    def set_vocab(self, tokens):
        return super().set_vocab(sorted(tokens))
