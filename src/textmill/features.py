"""What a pretrained language model reads from texts: each text's features (the mean of its final
hidden states over its tokens) and its per-token loss (how fluent the model finds it). Synth's
`pretrained` classifier, the extractive summarizer and style transfer read texts through here.

A model is loaded once per process, in float32 or bf16, whichever reads a batch faster on this machine
(models/inference.py `faster_format`), and each text embedded once."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch.nn import functional as F

LOGITS_BUDGET = 2**27  # logits held at once when scoring losses (512 MB in float32)
FEATURE_SOURCES = {False: "embedded:smollm2-135m-instruct", True: "embedded:gemma3-270m"}  # by `chinese`


class PretrainedFeatures(TransformerMixin, BaseEstimator):
    """Texts -> the mean of a pretrained model's final hidden states over each text's tokens (its
    first `max_len`), as a scikit-learn transformer. Repeated fits (a report's, a summarizer's) cost
    one pass over the texts."""

    def __init__(self, source: str = FEATURE_SOURCES[False], max_len: int = 128, batch_size: int = 32):
        self.source, self.max_len, self.batch_size = source, max_len, batch_size

    def fit(self, texts: Sequence[str], labels: Any = None) -> PretrainedFeatures:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        encoder = reader(self.source)
        todo = sorted({t for t in texts if (self.max_len, t) not in encoder.cache}, key=len)  # similar lengths share a batch
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            for text, vector in zip(batch, encoder.embed(batch, self.max_len)):
                encoder.cache[self.max_len, text] = vector
        return np.stack([encoder.cache[self.max_len, t] for t in texts]) if len(texts) else np.zeros((0, encoder.width))


class Reader:
    """One pretrained model, read for features and losses."""

    def __init__(self, source: str) -> None:
        from .loading import load
        from .models import GPT
        from .models.inference import faster_format

        self.gen = load(source)
        ids, _ = self._batch(["The quick brown fox jumps over the lazy dog near the river bank today."] * 8, 32)
        self.gen.model = faster_format(self.gen.model, ids)
        self.native = isinstance(self.gen.model, GPT)
        model = self.gen.model
        self.width = model.cfg.n_embd if self.native else model.hf.config.hidden_size
        self.vocab = model.vocab_size if self.native else model.hf.config.vocab_size
        self.cache: dict[tuple[int, str], np.ndarray] = {}  # (max_len, text) -> features, from embed or read

    def _batch(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.gen.tokenizer
        rows = [tok.encode(t, add_bos=True)[:max_len] or [tok.eos_id] for t in texts]
        width = max(map(len, rows))
        ids = torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows])  # padding on the right: causal states ignore it
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return ids, mask

    def _states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.native:
            return self.gen.model.features(ids)
        return self.gen.model.hf(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]

    @torch.no_grad()
    def embed(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        ids, mask = self._batch(texts, max_len)
        states, m = self._states(ids, mask).float(), mask[..., None].float()
        return ((states * m).sum(1) / m.sum(1)).numpy()

    def losses(self, texts: Sequence[str], max_len: int = 128, batch_size: int = 32) -> np.ndarray:
        """Each text's mean per-token loss in nats (its first `max_len` tokens after <bos>): lower reads
        as more fluent to the model. A text of no tokens scores nan."""
        return self.read(texts, max_len, batch_size, features=False)[0]

    def read(self, texts: Sequence[str], max_len: int = 128, batch_size: int = 32,
             features: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Each text's mean per-token loss (as `losses`) and, from the same forward pass, its features
        (None with `features=False`): what `embed(texts, max_len)` gives, and cached as its, so a
        classifier on `PretrainedFeatures` reads the texts a fluency score read without a second pass."""
        totals, counts, states = self._nll(texts, max_len, batch_size, features)
        if states is not None:
            self.cache.update(((max_len, t), v) for t, v in zip(texts, states))
        return np.divide(totals, counts, out=np.full(len(texts), np.nan), where=counts > 0), states

    def log_likelihoods(self, texts: Sequence[str], max_len: int = 128, batch_size: int = 32) -> np.ndarray:
        """Each text's log-likelihood in nats (the sum over its first `max_len` tokens after <bos>)."""
        return -self._nll(texts, max_len, batch_size, False)[0]

    @torch.no_grad()
    def _nll(self, texts: Sequence[str], max_len: int, batch_size: int,
             features: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(summed negative log-likelihood, tokens scored, mean final hidden state or None) of each text."""
        totals, counts = np.zeros(len(texts)), np.zeros(len(texts))
        pooled = np.zeros((len(texts), self.width), dtype=np.float32) if features else None
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batch_size = max(1, min(batch_size, LOGITS_BUDGET // ((max_len + 1) * self.vocab)))  # Gemma 3: 262k logits a token
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = self._batch([texts[i] for i in chunk], max_len + 1)
            if self.native:
                states = self.gen.model.features(ids)
                logits = self.gen.model.lm_head(states)
            else:
                out = self.gen.model.hf(input_ids=ids, attention_mask=mask, output_hidden_states=features)
                logits, states = out.logits, out.hidden_states[-1] if features else None
            nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
            m = mask[:, 1:].float()
            totals[chunk], counts[chunk] = (nll * m).sum(1).numpy(), m.sum(1).numpy()
            if pooled is not None:
                first = mask[:, :max_len, None].float()  # the first max_len tokens, as embed reads them
                pooled[chunk] = ((states[:, :max_len].float() * first).sum(1) / first.sum(1)).numpy()
        return totals, counts, pooled


@functools.lru_cache(maxsize=2)
def reader(source: str) -> Reader:
    """The process's one `Reader` of `source`."""
    return Reader(source)
