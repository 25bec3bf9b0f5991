"""n-gram language models: interpolated modified Kneser-Ney (Chen & Goodman 1998) and add-k.

Counting is vectorised with NumPy: every n-gram is packed into one int64 key
`w1 * V**(k-1) + ... + wk`, so an order's table is a sorted key array searched with `searchsorted`.
Documents are `<s> tokens </s>` (the tokenizer's `<bos>`/`<eos>`); no n-gram crosses a document.

Storage (`model.safetensors`), for each order k = 1..n:

    keys_k      int64  (M_k,)  sorted packed n-gram keys
    counts_k    int64  (M_k,)  raw counts (0 for an imported ARPA model)
    logprob_k   float64 (M_k,) log10 p(wk | w1..wk-1), interpolated (what ARPA files hold)
    backoff_k   float64 (M_k,) log10 backoff weight of the n-gram as a context (orders < n; 0 if none)

and for add-k, `ctx_keys_k`/`ctx_totals_k`: the contexts of order-k n-grams and their total counts.
The unigram table covers the whole vocabulary except `<pad>` (so unseen tokens, `<unk>` included,
keep the probability mass that Kneser-Ney interpolation gives the uniform distribution); `<s>` is
listed with log10 probability -99 as the ARPA convention has it, since it is never predicted.
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import model_validator
from safetensors.numpy import load_file, save_file
from torch import Tensor

from ..config import DECODER, ModelConfig
from ..errors import ConfigError
from .base import Conditioning

log = logging.getLogger(__name__)
LOG10 = math.log(10.0)
NEVER = -99.0  # log10 probability of <s>, as in ARPA files
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


class NGramConfig(ModelConfig):
    kind: ClassVar[str] = DECODER
    family: Literal["ngram"] = "ngram"
    order: int = 3
    smoothing: Literal["kneser_ney", "add_k", "backoff"] = "kneser_ney"
    k: float = 1.0  # add-k pseudo-count

    @model_validator(mode="after")
    def _valid(self) -> NGramConfig:
        if not 1 <= self.order <= 10:
            raise ValueError(f"order must be between 1 and 10, got {self.order}")
        if self.k <= 0:
            raise ValueError(f"k (the add-k pseudo-count) must be > 0, got {self.k}")
        return self


def _windows(stream: np.ndarray, k: int, bos: int, eos: int) -> np.ndarray:
    """Packed keys of every k-gram inside a document: no `</s>` before the last position, no `<s>` after the first."""
    if len(stream) < k:
        return np.empty((0, k), dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(stream, k)  # (n, k)
    valid = ~(win[:, :-1] == eos).any(1) & ~(win[:, 1:] == bos).any(1) & (win[:, -1] != bos)
    return win[valid].astype(np.int64)


class NGramLM:
    """A count-based model behind the same step interface as the neural families."""

    Config = NGramConfig
    objective = "counts"  # fitted in one pass by `fit_counts`, not by the gradient loop
    kind = NGramConfig.kind
    max_context = None

    def __init__(self, cfg: NGramConfig, vocab_size: int, bos: int = 1, eos: int = 2, pad: int = 0) -> None:
        if vocab_size ** cfg.order >= 2**63:
            raise ConfigError(f"an order-{cfg.order} model over {vocab_size} tokens does not fit 64-bit n-gram keys; "
                              "lower model.order or tokenizer.vocab_size")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.bos, self.eos, self.pad = bos, eos, pad
        self.n = cfg.order
        self.tables: dict[str, np.ndarray] = {}
        self.device = torch.device("cpu")

    # -- packing -------------------------------------------------------------------------------------
    def _pack(self, grams: np.ndarray) -> np.ndarray:
        """(M, k) token ids -> (M,) int64 keys."""
        key = np.zeros(len(grams), dtype=np.int64)
        for j in range(grams.shape[1]):
            key = key * self.vocab_size + grams[:, j]
        return key

    def _lookup(self, k: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, index) of packed keys in the order-k table."""
        table = self.tables[f"keys_{k}"]
        if not len(table):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
        idx = np.minimum(np.searchsorted(table, keys), len(table) - 1)
        return table[idx] == keys, idx

    @property
    def predictable(self) -> np.ndarray:
        """Token ids that can be predicted (everything but padding and `<s>`)."""
        ids = np.arange(self.vocab_size)
        return ids[(ids != self.pad) & (ids != self.bos)]

    # -- training --------------------------------------------------------------------------------------
    def fit(self, stream: np.ndarray) -> NGramLM:
        """Count `stream` (`<s> doc </s>` concatenated) and estimate the smoothed tables."""
        if self.cfg.smoothing == "backoff":
            raise ConfigError("smoothing 'backoff' is for models imported from ARPA files; train with kneser_ney or add_k")
        stream = np.asarray(stream, dtype=np.int64)
        counts = {}
        for k in range(1, self.n + 1):
            keys, cnt = np.unique(self._pack(_windows(stream, k, self.bos, self.eos)), return_counts=True)
            counts[k] = (keys, cnt.astype(np.int64))
        if len(counts[1][0]) == 0:
            raise ConfigError("no n-grams to count: the training data is empty")
        # the unigram table lists the whole vocabulary (minus padding), <s> included as a context
        vocab = np.arange(self.vocab_size, dtype=np.int64)
        vocab = vocab[vocab != self.pad]
        uni = np.zeros(len(vocab), dtype=np.int64)
        uni[np.searchsorted(vocab, counts[1][0])] = counts[1][1]
        counts[1] = (vocab, uni)
        for k, (keys, cnt) in counts.items():
            self.tables[f"keys_{k}"] = keys
            self.tables[f"counts_{k}"] = cnt
        if self.cfg.smoothing == "kneser_ney":
            self._kneser_ney(counts)
        else:
            self._add_k_contexts(counts)
        return self

    def _adjusted_counts(self, counts: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
        """Raw counts at the highest order and for n-grams that start with <s>; continuation counts
        N1+(. w1..wk) (the number of distinct left extensions) below."""
        V = self.vocab_size
        adjusted = {self.n: counts[self.n][1].astype(np.float64)}
        for k in range(self.n - 1, 0, -1):
            keys, raw = counts[k]
            suffixes, n_left = np.unique(counts[k + 1][0] % V**k, return_counts=True)
            adj = np.zeros(len(keys), dtype=np.float64)
            adj[np.searchsorted(keys, suffixes)] = n_left
            starts_bos = keys // V ** (k - 1) == self.bos
            adj[starts_bos] = raw[starts_bos]
            adjusted[k] = adj
        return adjusted

    @staticmethod
    def _discounts(adj: np.ndarray, k: int) -> tuple[float, float, float]:
        n1, n2, n3, n4 = (int((adj == i).sum()) for i in (1, 2, 3, 4))
        if min(n1, n2, n3, n4) == 0:
            log.warning("order %d: too little data for modified Kneser-Ney discounts (count-of-counts %s); "
                        "using %s", k, (n1, n2, n3, n4), FALLBACK_DISCOUNTS)
            return FALLBACK_DISCOUNTS
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        return tuple(min(max(di, 0.0), float(i + 1)) for i, di in enumerate(d))  # type: ignore[return-value]

    def _kneser_ney(self, counts: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        V = self.vocab_size
        adjusted = self._adjusted_counts(counts)
        self.discounts = {}
        lower_prob = None  # interpolated probabilities of the previous order, aligned with its keys
        for k in range(1, self.n + 1):
            keys, adj = counts[k][0], adjusted[k]
            if not len(keys):  # too little text for this order (and every higher one)
                self.tables[f"logprob_{k}"] = self.tables[f"backoff_{k}"] = np.zeros(0)
                continue
            d = self._discounts(adj[adj > 0], k)
            self.discounts[k] = d
            disc = np.where(adj >= 3, d[2], np.where(adj == 2, d[1], np.where(adj == 1, d[0], 0.0)))
            ctx = keys // V
            ctx_ids, ctx_of = np.unique(ctx, return_inverse=True)
            denom = np.bincount(ctx_of, weights=adj)
            mass = np.bincount(ctx_of, weights=disc * (adj > 0))
            gamma = np.divide(mass, denom, out=np.ones_like(mass), where=denom > 0)
            if k == 1:
                lower = np.full(len(keys), 1.0 / len(self.predictable))
            else:
                found, idx = self._lookup(k - 1, keys % V ** (k - 1))
                assert found.all(), "every suffix of a seen n-gram is itself seen"
                lower = lower_prob[idx]
            with np.errstate(invalid="ignore", divide="ignore"):
                prob = np.maximum(adj - disc, 0.0) / denom[ctx_of] + gamma[ctx_of] * lower
            if k == 1:
                prob[keys == self.bos] = 0.0
            self.tables[f"logprob_{k}"] = np.where(prob > 0, np.log10(np.maximum(prob, 1e-300)), NEVER)
            self.tables[f"backoff_{k}"] = np.zeros(len(keys))
            if k > 1:  # the backoff weight of each context lives on the (k-1)-gram that is the context
                found, idx = self._lookup(k - 1, ctx_ids)
                g = gamma[found]  # 0 when no discount frees mass (tiny data): no backoff, like a zero probability
                self.tables[f"backoff_{k - 1}"][idx[found]] = np.where(g > 0, np.log10(np.maximum(g, 1e-300)), NEVER)
            lower_prob = prob

    def _add_k_contexts(self, counts: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        V = self.vocab_size
        for k in range(1, self.n + 1):
            keys, cnt = counts[k]
            ctx_ids, ctx_of = np.unique(keys // V, return_inverse=True)
            self.tables[f"ctx_keys_{k}"] = ctx_ids
            self.tables[f"ctx_totals_{k}"] = np.bincount(ctx_of, weights=cnt).astype(np.int64)

    # -- probabilities ---------------------------------------------------------------------------------
    def log_probs(self, history: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, V) natural-log next-token distributions for histories (B, n-1), right-aligned, of which
        the last `lengths[b]` tokens are real."""
        B, V = len(history), self.vocab_size
        if self.cfg.smoothing == "add_k":  # score every token as the next one, as streams are scored
            words = np.tile(np.arange(V, dtype=np.int64), B)
            grams = [words] + [np.repeat(self._pack(history[:, history.shape[1] - j:]), V) * V + words
                               for j in range(1, self.n)]
            out = self._add_k_score(grams, np.repeat(lengths, V)).reshape(B, V)
        else:
            out = np.full((B, V), NEVER)
            out[:, self.tables["keys_1"]] = self.tables["logprob_1"]
            for b in range(B):
                row = out[b]
                for j in range(1, min(int(lengths[b]), self.n - 1) + 1):
                    h = self._pack(history[b:b + 1, history.shape[1] - j:])
                    found, idx = self._lookup(j, h)
                    if not found[0]:
                        break
                    row += self.tables[f"backoff_{j}"][idx[0]]
                    keys = self.tables[f"keys_{j + 1}"]
                    lo, hi = np.searchsorted(keys, [h[0] * V, (h[0] + 1) * V])
                    row[keys[lo:hi] - h[0] * V] = self.tables[f"logprob_{j + 1}"][lo:hi]
            out *= LOG10
        out[:, [self.pad, self.bos]] = -np.inf
        return out

    def score_stream(self, stream: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token after a `<s>` in `stream`, vectorised (no Python loop
        per token): for Kneser-Ney the standard backoff recursion, for add-k the longest seen context."""
        stream = np.asarray(stream, dtype=np.int64)
        is_bos = stream == self.bos
        doc_start = np.maximum.accumulate(np.where(is_bos, np.arange(len(stream)), 0))
        pos = np.nonzero(~is_bos)[0]  # predicted positions
        avail = pos - doc_start[pos]  # tokens of history inside the document (>= 1: the <s>)
        V = self.vocab_size
        key = stream[pos].copy()  # the k-gram ending at each position, grown leftwards
        grams = [key]
        for j in range(1, self.n):
            key = stream[np.maximum(pos - j, 0)] * V**j + key
            grams.append(key)
        if self.cfg.smoothing == "add_k":
            return self._add_k_score(grams, avail)
        logp = np.zeros(len(pos))
        done = np.zeros(len(pos), dtype=bool)
        backoff = np.zeros(len(pos))
        for k in range(self.n, 0, -1):  # highest order first
            usable = ~done & (avail >= k - 1)
            found, idx = self._lookup(k, grams[k - 1])
            hit = usable & found
            logp[hit] = self.tables[f"logprob_{k}"][idx[hit]] + backoff[hit]
            done |= hit
            if k > 1:  # not found at order k: add the backoff weight of the (k-1)-token context
                ctx_found, ctx_idx = self._lookup(k - 1, grams[k - 1] // V)
                add = usable & ~found & ctx_found
                backoff[add] += self.tables[f"backoff_{k - 1}"][ctx_idx[add]]
        return logp * LOG10

    def _add_k_score(self, grams: list[np.ndarray], avail: np.ndarray) -> np.ndarray:
        """Add-k log-probabilities of packed n-grams, each under its longest context seen in training."""
        V, n_pred = self.vocab_size, len(self.predictable)
        count = np.zeros(len(avail))
        total = np.full(len(avail), float(self.tables["counts_1"].sum()))
        done = np.zeros(len(avail), dtype=bool)
        for k in range(self.n, 1, -1):
            ctx = self.tables[f"ctx_keys_{k}"]
            if not len(ctx):
                continue
            i = np.minimum(np.searchsorted(ctx, grams[k - 1] // V), max(len(ctx) - 1, 0))
            seen = ~done & (avail >= k - 1) & (ctx[i] == grams[k - 1] // V)
            total[seen] = self.tables[f"ctx_totals_{k}"][i[seen]]
            found, idx = self._lookup(k, grams[k - 1])
            count[seen & found] = self.tables[f"counts_{k}"][idx[seen & found]]
            done |= seen
        found, idx = self._lookup(1, grams[0])
        count[~done] = np.where(found, self.tables["counts_1"][idx], 0)[~done]
        return np.log((count + self.cfg.k) / (total + self.cfg.k * n_pred))

    # -- the step interface --------------------------------------------------------------------------
    def eval(self) -> NGramLM:
        return self

    def parameters(self):
        return iter(())

    def start(self, cond: Conditioning) -> np.ndarray:
        return np.full((cond.batch_size, max(self.n - 1, 1)), -1, dtype=np.int64)  # -1: no token

    def step(self, tokens: Tensor, state: np.ndarray, mask: Tensor | None = None) -> tuple[Tensor, np.ndarray]:
        toks = tokens.cpu().numpy()
        real = np.ones_like(toks, dtype=bool) if mask is None else mask.cpu().numpy().astype(bool)
        rows = []
        for b in range(len(toks)):
            hist = [t for t in state[b].tolist() if t >= 0] + toks[b][real[b]].tolist()
            rows.append(hist[-(self.n - 1):] if self.n > 1 else [])
        width = max(self.n - 1, 1)
        new = np.full((len(toks), width), -1, dtype=np.int64)
        for b, h in enumerate(rows):
            if h:
                new[b, width - len(h):] = h
        lengths = np.array([len(h) for h in rows])
        logits = self.log_probs(np.maximum(new, 0), lengths)
        return torch.from_numpy(logits).float(), new

    def reorder(self, state: np.ndarray, index: Tensor) -> np.ndarray:
        return state[index.cpu().numpy()]

    # -- storage -----------------------------------------------------------------------------------
    def save(self, path) -> None:
        save_file({k: np.ascontiguousarray(v) for k, v in self.tables.items()}, str(path))

    def load(self, path) -> NGramLM:
        self.tables = load_file(str(path))
        return self
