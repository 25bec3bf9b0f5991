"""Low-rank adapters (LoRA, Hu et al. 2021) for fine-tuning: `train.lora: {rank: 8, alpha: 16}`.

The chosen linear layers of the model become `LoRALinear`: the pretrained weight W is frozen and
the layer computes x W^T + (alpha / rank) x A^T B^T with A (rank, in) drawn small and B (out, rank)
zero, so training starts from the base model exactly and trains only A and B (every other weight is
frozen too). The resume checkpoint holds the adapters; the best weights the trainer writes are
merged (W + (alpha / rank) B A), so a LoRA run loads, generates and exports like any run.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ..config import LoRAConfig
from ..errors import ConfigError


class LoRALinear(nn.Linear):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None,
                         device=base.weight.device, dtype=base.weight.dtype)
        self.weight, self.bias = base.weight, base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear draws its weight

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=self.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.weight + self.scale * self.lora_b @ self.lora_a)
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> nn.Module:
    """Freeze `model` and put adapters on the linear layers whose names end in one of `cfg.targets`."""
    for p in model.parameters():
        p.requires_grad_(False)
    found = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not isinstance(child, LoRALinear) and child_name in cfg.targets:
                setattr(module, child_name, LoRALinear(child, cfg.rank, cfg.alpha))
                found.append(full)
    if not found:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ConfigError(f"train.lora.targets {cfg.targets} name no linear layer of this model; its linear layers are "
                          f"named: {', '.join(linear)}")
    return model


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` with every adapter folded into its weight (plain linear layers again)."""
    out = copy.deepcopy(model)
    for module in list(out.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
    return out


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoRALinear) for m in model.modules())
