"""Logits processors: small pure callables `(input_ids (B, T), scores (B, V)) -> scores (B, V)`.

None of them modifies its input (as in Hugging Face's design), so they compose in any order; the
order is the one the caller lists. Banned tokens get -inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..errors import ConfigError

NEG_INF = float("-inf")


class LogitsProcessor(Protocol):
    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor: ...


def apply_processors(processors: Sequence[LogitsProcessor], input_ids: Tensor, scores: Tensor) -> Tensor:
    for p in processors:
        scores = p(input_ids, scores)
    return scores


def reads_history(processor: LogitsProcessor) -> bool:
    """Whether a processor reads the tokens so far (penalties, n-gram and bad-word bans, min length),
    rather than the scores alone: the ones that do need each row's own history."""
    return not isinstance(processor, (Temperature, TopK, TopP, MinP, SuppressTokens))


@dataclass(frozen=True)
class Temperature:
    temperature: float

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0 (got {self.temperature}); use greedy decoding for 'temperature 0'")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        return scores / self.temperature


@dataclass(frozen=True)
class TopK:
    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"top_k must be >= 1 (got {self.k})")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        k = min(self.k, scores.shape[-1])
        kth = scores.topk(k, dim=-1).values[:, -1:]  # (B, 1)
        return scores.masked_fill(scores < kth, NEG_INF)


@dataclass(frozen=True)
class TopP:
    """Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches p."""

    p: float

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1] (got {self.p})")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        """Sorting a 49k vocabulary for 32 rows costs more than a SmolLM2 step, so each row first tries
        its most likely 256, then 4,096 tokens: where they hold mass p, its nucleus lies among them and
        only they need sorting (the same set as the full sort's). Only the rows they do not cover go on
        to the next size: one flat distribution no longer makes the whole batch sort everything. The
        kept scores are scattered into a row of -inf rather than the rest masked out, and a batch whose
        rows are all still to do is not copied: Gemma 3's 262,144-token rows made those passes most of
        the processor's time."""
        if self.p >= 1.0:
            return scores
        probs, (batch, vocab) = scores.float().softmax(-1), scores.shape
        out = torch.full_like(scores, NEG_INF)
        rows = torch.arange(batch, device=scores.device)
        for k in (256, 4096, vocab):
            every = len(rows) == batch
            top, order = (probs if every else probs[rows]).topk(min(k, vocab), dim=-1)  # most likely first
            covered = top.sum(-1) >= self.p if k < vocab else torch.ones_like(rows, dtype=torch.bool)
            before = top.cumsum(-1) - top  # probability mass strictly above each token; the top token's is 0
            kept = torch.where(before < self.p, (scores if every else scores[rows]).gather(-1, order), NEG_INF)
            if every and bool(covered.all()):
                return out.scatter_(-1, order, kept)
            done = rows[covered]
            out[done] = out[done].scatter_(-1, order[covered], kept[covered])
            rows = rows[~covered]
            if not len(rows):
                break
        return out


@dataclass(frozen=True)
class MinP:
    """Keep tokens whose probability is at least `p` times that of the most likely token."""

    p: float

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise ConfigError(f"min_p must be in (0, 1] (got {self.p})")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        probs = scores.softmax(-1)
        return scores.masked_fill(probs < self.p * probs.max(-1, keepdim=True).values, NEG_INF)


@dataclass(frozen=True)
class RepetitionPenalty:
    """CTRL's penalty: scores of tokens already present are divided by it (multiplied when negative)."""

    penalty: float

    def __post_init__(self) -> None:
        if not self.penalty > 0:
            raise ConfigError(f"repetition_penalty must be > 0 (got {self.penalty}); 1.0 means no penalty")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        seen = scores.gather(1, input_ids)
        seen = torch.where(seen > 0, seen / self.penalty, seen * self.penalty)
        return scores.scatter(1, input_ids, seen)


@dataclass(frozen=True)
class OccurrencePenalty:
    """OpenAI's presence and frequency penalties on the tokens generated after the (padded) prompt
    of `prompt_len`: each token's score drops by `presence` once it has appeared and by `frequency`
    for every time it has appeared (negative values encourage repetition)."""

    presence: float
    frequency: float
    prompt_len: int

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        new = input_ids[:, self.prompt_len:]
        if new.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, new, torch.ones_like(new, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


@dataclass(frozen=True)
class NoRepeatNGram:
    """Ban any token that would repeat an n-gram already in the sequence."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"no_repeat_ngram_size must be >= 1 (got {self.n})")

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        T = input_ids.shape[1]
        if T + 1 < self.n:
            return scores
        out = scores.clone()
        for row, ids in enumerate(input_ids.tolist()):
            prefix = tuple(ids[T - self.n + 1:]) if self.n > 1 else ()
            banned = [ids[i + self.n - 1] for i in range(T - self.n + 1) if tuple(ids[i:i + self.n - 1]) == prefix]
            out[row, banned] = NEG_INF
        return out


@dataclass(frozen=True)
class MinNewTokens:
    """Forbid end-of-sequence until `min_new` tokens follow the (padded) prompt of `prompt_len`."""

    min_new: int
    prompt_len: int
    eos_id: int

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if input_ids.shape[1] - self.prompt_len >= self.min_new:
            return scores
        out = scores.clone()
        out[:, self.eos_id] = NEG_INF
        return out


@dataclass(frozen=True)
class BadWords:
    """Never complete any of these token sequences (a one-token sequence is banned outright)."""

    sequences: tuple[tuple[int, ...], ...]

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        out = scores.clone()
        ids = input_ids.tolist()
        for seq in self.sequences:
            *prefix, last = seq
            for row, row_ids in enumerate(ids):
                if not prefix or row_ids[len(row_ids) - len(prefix):] == prefix:
                    out[row, last] = NEG_INF
        return out


@dataclass(frozen=True)
class SuppressTokens:
    """Tokens that are never valid output (padding, beginning-of-sequence)."""

    token_ids: tuple[int, ...]

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        out = scores.clone()
        out[:, list(self.token_ids)] = NEG_INF
        return out
