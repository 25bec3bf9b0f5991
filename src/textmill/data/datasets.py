"""Deterministic train/validation splits and token streams for language modelling.

Documents are encoded as `<bos> text <eos>` and concatenated into one token stream (nanoGPT style).
Training draws random windows of `context + 1` tokens; validation walks fixed, non-overlapping
windows, so every evaluation of a run sees the same tokens.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ..tokenizers import Tokenizer


def split_documents(docs: list[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """One document splits by characters (first 1-f for training, the tail for validation, as
    char-rnn and nanoGPT do); several are shuffled with `seed` and the first fraction held out."""
    if len(docs) == 1:
        text = docs[0]
        cut = int(len(text) * (1.0 - val_fraction))
        if cut == 0 or cut == len(text):
            raise DataError(f"the corpus has {len(text)} characters, too few to hold out {val_fraction:.0%} for validation")
        return [text[:cut]], [text[cut:]]
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, math.ceil(len(docs) * val_fraction))
    if n_val >= len(docs):
        raise DataError(f"{len(docs)} documents are too few to hold out {val_fraction:.0%} for validation")
    val = sorted(order[:n_val])
    held = set(val)
    return [d for i, d in enumerate(docs) if i not in held], [docs[i] for i in val]


def encode_stream(tokenizer: Tokenizer, docs: list[str]) -> np.ndarray:
    """`<bos> doc <eos>` for every document, concatenated; int32 token ids."""
    ids: list[int] = []
    for d in docs:
        ids.extend(tokenizer.encode(d, add_bos=True, add_eos=True))
    return np.asarray(ids, dtype=np.int32)


@dataclass
class TokenStream:
    """A token stream cut into (input, target) windows of `context` tokens."""

    tokens: torch.Tensor  # (N,) int64
    context: int
    n_chars: int  # characters of the text behind the stream (for bits per character)

    @classmethod
    def from_docs(cls, tokenizer: Tokenizer, docs: list[str], context: int, what: str) -> TokenStream:
        tokens = torch.from_numpy(encode_stream(tokenizer, docs)).long()
        if len(tokens) < context + 1:
            raise DataError(
                f"the {what} split has {len(tokens)} tokens, fewer than one window of context+1={context + 1}; "
                "use more data, a smaller model.context or a smaller data.val_fraction"
            )
        return cls(tokens, context, sum(len(d) for d in docs))

    @property
    def tokens_per_char(self) -> float:
        return len(self.tokens) / max(self.n_chars, 1)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` random windows: inputs and next-token targets, both (B, T)."""
        starts = torch.randint(len(self.tokens) - self.context, (batch_size,), generator=generator)
        idx = starts[:, None] + torch.arange(self.context + 1)  # (B, T+1)
        window = self.tokens[idx]
        return window[:, :-1], window[:, 1:]

    def windows(self, batch_size: int, max_batches: int | None = None):
        """Fixed, non-overlapping windows in order, `batch_size` at a time."""
        n = (len(self.tokens) - 1) // self.context
        starts = torch.arange(n) * self.context
        for b, i in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            idx = starts[i : i + batch_size, None] + torch.arange(self.context + 1)
            window = self.tokens[idx]
            yield window[:, :-1], window[:, 1:]
