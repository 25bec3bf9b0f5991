"""Character-level tokenizer: one token per Unicode code point, the most frequent `vocab_size` kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .base import Tokenizer


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, control_tokens: Sequence[str] = (), vocab_size: int = 1 << 20, min_frequency: int = 1) -> None:
        super().__init__(control_tokens)
        self.max_vocab = vocab_size
        self.min_frequency = min_frequency
        self.itos: list[str] = list(self.specials)
        self.stoi: dict[str, int] = {}

    def train(self, texts: Iterable[str]) -> CharTokenizer:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(t)
        room = max(self.max_vocab - len(self.specials), 0)
        kept = [c for c, n in counts.most_common() if n >= self.min_frequency][:room]
        self._set_vocab(sorted(kept))
        return self

    def _set_vocab(self, symbols: list[str]) -> None:
        self.itos = [*self.specials, *symbols]
        self.stoi = {s: i for i, s in enumerate(self.itos) if i >= len(self.specials)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def _encode_piece(self, text: str) -> list[int]:
        get, unk = self.stoi.get, self.unk_id
        return [get(c, unk) for c in text]

    def _decode_piece(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids)

    def _state(self) -> dict[str, Any]:
        return {"vocab": self.itos[len(self.specials):]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._set_vocab(state["vocab"])
