"""Per-family training objectives. The trainer loop is shared; only the loss differs.

An objective turns a batch into a loss (plus any numbers worth logging) and scores a validation
set. Each model class names its objective (`objective = "lm"`); `counts` (n-gram models) is fitted
in one pass by `fit_counts` instead of by the loop.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig
from ..data import LMBatch, PairBatch, PairDataset, TokenStream
from ..registry import Registry


class Objective(Protocol):
    def loss(self, model: nn.Module, batch: Any, step: int, cfg: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        """The mean training loss of a batch, and extra numbers to log."""
        ...

    def evaluate(self, model: nn.Module, data: Any, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        """Validation metrics; `val_loss` (lower is better) picks the best checkpoint."""
        ...


OBJECTIVES: Registry[Objective] = Registry("objective")


def token_metrics(nll_sum: float, count: int, tokens_per_char: float) -> dict[str, float]:
    """Mean NLL per predicted token (nats), its perplexity, and bits per character."""
    loss = nll_sum / max(count, 1)
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0)), "val_bpc": loss * tokens_per_char / math.log(2)}


def _cross_entropy(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0,
                           label_smoothing=label_smoothing, reduction=reduction)


class LanguageModelling:
    """Next-token cross-entropy over windows of a token stream."""

    def loss(self, model: nn.Module, batch: LMBatch, step: int, cfg: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        return _cross_entropy(model(batch.inputs), batch.targets, cfg.label_smoothing), {}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: TokenStream, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        return token_metrics(*_nll(model, (((b.inputs,), b.targets) for b in data.batches(batch_size, max_batches))),
                             data.tokens_per_char)


class SequenceToSequence:
    """Cross-entropy of each target token given the source and the target prefix (teacher forcing)."""

    def loss(self, model: nn.Module, batch: PairBatch, step: int, cfg: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        return _cross_entropy(logits, batch.tgt_out, cfg.label_smoothing), {}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: PairDataset, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        batches = (((b.src, b.src_mask, b.tgt_in), b.tgt_out) for b in data.batches(batch_size, max_batches))
        return token_metrics(*_nll(model, batches), data.tokens_per_char)


def _nll(model: nn.Module, batches) -> tuple[float, int]:
    """Summed NLL (nats) and number of non-padding targets over `(inputs, targets)` batches, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in batches:
        total += float(_cross_entropy(model(*inputs), targets, reduction="sum"))
        count += int(targets.ne(0).sum())
    model.train(was_training)
    return total, count


OBJECTIVES.register("lm")(LanguageModelling())
OBJECTIVES.register("seq2seq")(SequenceToSequence())
