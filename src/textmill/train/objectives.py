"""Per-family training objectives. The trainer loop is shared; only the loss differs."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import TokenStream
from ..registry import Registry

Objective = Callable[[nn.Module, Tensor, Tensor], Tensor]
OBJECTIVES: Registry[Objective] = Registry("objective")


@OBJECTIVES.register("lm")
def lm_loss(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats per token). inputs, targets: (B, T)."""
    logits = model(inputs)  # (B, T, V)
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


#: The objective each model family trains with.
FAMILY_OBJECTIVE = {"gpt": "lm", "rnn": "lm"}


@torch.no_grad()
def lm_eval_loss(model: nn.Module, stream: TokenStream, batch_size: int, max_batches: int | None = None) -> float:
    """Mean next-token cross-entropy (nats per token) over the stream's fixed validation windows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in stream.windows(batch_size, max_batches):
        logits = model(inputs)
        total += float(F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"))
        count += targets.numel()
    model.train(was_training)
    return total / max(count, 1)
