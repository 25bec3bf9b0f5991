"""Whitespace tokenizer for pre-tokenized text (COCO or Yelp style, ARPA files from KenLM/SRILM).

Tokens are the whitespace-separated words; decoding joins them with one space, so runs of
whitespace and newlines do not survive a round trip (use `word` for raw text)."""

from __future__ import annotations

from .base import VocabTokenizer


class WhitespaceTokenizer(VocabTokenizer):
    kind = "whitespace"
    joiner = " "

    def split(self, text: str) -> list[str]:
        return text.split()
