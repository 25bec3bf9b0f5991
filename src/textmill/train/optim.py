"""AdamW with decay/no-decay parameter groups, and warmup + cosine learning-rate decay."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """Matrices and embeddings decay; biases and norm gains (1-D) do not. Tied weights appear once."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, foreach=True)


def lr_at(step: int, cfg: TrainConfig, budget_fraction: float | None = None) -> float:
    """Linear warmup to `lr` over `warmup_steps`, then cosine decay to `min_lr` at the end.

    The end is `max_steps`, or for a time-budgeted run whichever comes first of `max_steps` and the
    budget (`budget_fraction`: the spent share of it)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    ratio = (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)
    if budget_fraction is not None:
        ratio = max(ratio, budget_fraction)
    ratio = min(max(ratio, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)
