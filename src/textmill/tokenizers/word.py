"""Word-level tokenizer that works on English and Chinese alike.

Latin words and numbers carry their one leading space (`" cat"`), as in SentencePiece and GPT-2, so
decoding is plain concatenation and round-trips exactly for in-vocabulary text. Punctuation is one
token per character; other whitespace runs are tokens. CJK text has no spaces between words: each
CJK character is a token, or, with `segmenter="jieba"` (needs `pip install textmill[zh]`), each
jieba word is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from .base import VocabTokenizer

CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_PATTERN = re.compile(
    rf" ?[{CJK}]+"            # a CJK run (split further below)
    rf"| ?[^\W_{CJK}]+(?:['’][^\W_{CJK}]+)*"  # a word or number, with inner apostrophes
    r"| ?(?:[^\w\s]|_)"      # one punctuation mark (the underscore too: it is no letter)
    r"|\s+(?!\S)|\s+",        # whitespace not attached to the next word
)
_CJK_START = re.compile(rf"[{CJK}]")


def jieba_cut():
    try:
        import jieba
    except ImportError:
        raise ConfigError("segmenter 'jieba' needs jieba: pip install 'textmill[zh]'") from None
    jieba.setLogLevel(60)
    return jieba.lcut


class WordTokenizer(VocabTokenizer):
    kind = "word"

    def __init__(self, control_tokens: Sequence[str] = (), vocab_size: int = 8000, min_frequency: int = 1,
                 segmenter: str = "none", prefix_space: bool = False) -> None:
        self.segmenter = segmenter
        self._cut = jieba_cut() if segmenter == "jieba" else None
        super().__init__(control_tokens, vocab_size, min_frequency, prefix_space)

    def split(self, text: str) -> list[str]:
        """The word pieces of `text`; `"".join(split(t)) == t` always holds."""
        out: list[str] = []
        for tok in _PATTERN.findall(text):
            core = tok.lstrip(" ")
            if _CJK_START.match(core):
                lead = tok[: len(tok) - len(core)]
                parts = self._cut(core) if self._cut else list(core)
                if lead:
                    out.append(lead)
                out.extend(parts)
            else:
                out.append(tok)
        return out

    def _state(self) -> dict[str, Any]:
        return {"segmenter": self.segmenter, **super()._state()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.segmenter = state.get("segmenter", "none")
        self._cut = jieba_cut() if self.segmenter == "jieba" else None
        super()._load_state(state)
