"""Byte-level BPE trained with Hugging Face `tokenizers` (GPT-2 style: any UTF-8 text round-trips)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from .base import Tokenizer


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, control_tokens: Sequence[str] = (), vocab_size: int = 8000, min_frequency: int = 2,
                 prefix_space: bool = False) -> None:
        super().__init__(control_tokens, prefix_space)
        self.max_vocab = vocab_size
        self.min_frequency = min_frequency
        self.hf = self._empty()

    @staticmethod
    def _empty() -> HFTokenizer:
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        return tok

    def train(self, texts: Iterable[str]) -> BPETokenizer:
        trainer = trainers.BpeTrainer(
            vocab_size=self.max_vocab,
            min_frequency=self.min_frequency,
            special_tokens=self.specials,  # ids 0..n-1, the same ids the base class assigns
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        self.hf.train_from_iterator(self.plain_text(texts), trainer=trainer)
        return self

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def _encode_piece(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def _decode_piece(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=False)

    def _state(self) -> dict[str, Any]:
        return {"hf": self.hf.to_str()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.hf = HFTokenizer.from_str(state["hf"])

    def _make_room(self, doc: dict[str, Any], at: int, tokens: list[str]) -> dict[str, Any]:
        hf, count = json.loads(doc["hf"]), len(tokens)
        vocab = {t: i + count if i >= at else i for t, i in hf["model"]["vocab"].items()}
        vocab.update({t: at + j for j, t in enumerate(tokens)})
        hf["model"]["vocab"] = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
        for added in hf["added_tokens"]:
            added["id"] += count if added["id"] >= at else 0
        template = hf["added_tokens"][0]
        hf["added_tokens"] = sorted(hf["added_tokens"] + [{**template, "id": at + j, "content": t} for j, t in enumerate(tokens)],
                                    key=lambda a: a["id"])
        return {"hf": json.dumps(hf, ensure_ascii=False)}
