"""Faster generation for decoder-only transformers: smaller weights and compiled blocks.

Decoding one token reads every weight once, so at batch 1 its speed is set by the bytes of weights
(memory traffic) and by the number of small operations (overhead); at batch 32 and beyond by
arithmetic. Each option attacks one of them, measured in benchmarks/pretrained.py:

- `quantize="int4"`: every linear layer (the output layer too, which gets its own copy when tied to
  the embedding) keeps 4-bit weights in groups of 32 along the input, each group with a bfloat16 scale
  and offset, and multiplies through PyTorch's packed int4 CPU kernel (activations in bfloat16). An
  eighth of float32's bytes: the fastest for one prompt at a time (chat, a single user).
- `quantize="bf16"`: bfloat16 weights and cache; the CPU's bf16 matrix units make it the fastest
  for batches (synth), and it changes the logits least. On a CPU with oneDNN's bf16 kernel, each
  linear layer's weight is packed once into the kernel's blocked layout (`PackedLinear`): handed a
  plain weight, the kernel rearranges it at every call, which cost a fifth of a batch-32 step.
- `compile=True`: `torch.compile` each block of a textmill GPT (one graph serves every layer), which
  removes most of the per-operation overhead; the first calls compile (about 20 s).

Both change the numbers a model computes. The float32 default stays the reference that equals
transformers and gives a prompt the same tokens in any batch; bf16's kernels choose their blocking by
the batch's size, so on a real model (SmolLM2, batch 32) a greedy prompt can change with its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

QUANTIZE = ("bf16", "int4")
GROUP = 32      # input features that share one scale and offset
N_MULTIPLE = 16  # the packed kernel's output features come in multiples of 16 (padded, then cut off)


class Int4Linear(nn.Module):
    """A linear layer with 4-bit weights: w ~ q * scale + low, q in 0..15, per group of `GROUP` inputs."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        self.in_features, self.out_features = w.shape[1], w.shape[0]
        padded = -self.out_features % N_MULTIPLE
        w = F.pad(w, (0, 0, 0, padded)).reshape(self.out_features + padded, -1, GROUP)  # (N, K / GROUP, GROUP)
        low, high = w.amin(-1), w.amax(-1)
        scale = ((high - low) / 15).clamp(min=1e-8)
        q = ((w - low[..., None]) / scale[..., None]).round().clamp(0, 15).to(torch.int32).flatten(1)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        # the kernel computes (q - 8) * scale + zero, so zero = low + 8 * scale; layout (K / GROUP, N, 2)
        self.register_buffer("scale_zero", torch.stack([scale, low + 8 * scale], -1).transpose(0, 1).contiguous()
                             .to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @staticmethod
    def fits(linear: nn.Linear) -> bool:
        return linear.in_features % GROUP == 0

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scale_zero)
        y = y[:, :self.out_features].to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group={GROUP}"


@torch.library.custom_op("textmill::packed_linear", mutates_args=())
def packed_linear(x: Tensor, weight: Tensor, bias: Tensor | None, out_features: int) -> Tensor:
    """`x @ W.T + bias` through oneDNN, with `weight` the oneDNN-packed W. An operator of its own, so
    that torch.compile calls it as it is instead of lowering it as a linear layer of a plain weight."""
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


@packed_linear.register_fake
def _(x: Tensor, weight: Tensor, bias: Tensor | None, out_features: int) -> Tensor:
    return x.new_empty((*x.shape[:-1], out_features))


class PackedLinear(nn.Module):
    """A bf16 linear layer whose weight oneDNN packed once into its kernel's layout (16 x 64 blocks,
    pairs of inputs interleaved); the same numbers as `nn.Linear` in bf16, in any batch."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().to(torch.bfloat16)
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(w), persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16),
                             persistent=False)

    @staticmethod
    def available(device: torch.device) -> bool:
        return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()

    def forward(self, x: Tensor) -> Tensor:
        return packed_linear(x.to(torch.bfloat16), self.packed, self.bias, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def optimize(model: nn.Module, quantize: str | None = None, compile: bool = False) -> nn.Module:
    """`model` (a textmill GPT or a transformers causal LM wrapper) in place, with its weights
    quantized and/or its blocks compiled; see the module docstring."""
    from .gpt import GPT
    from .hf import HFCausalLM

    if quantize is None and not compile:
        return model
    if not isinstance(model, (GPT, HFCausalLM)):
        raise ConfigError(f"quantize and compile apply to decoder-only transformers (gpt runs and pretrained models), "
                          f"not to a {type(model).__name__}; load it without them")
    if quantize not in (None, *QUANTIZE):
        raise ConfigError(f"quantize {quantize!r} is not one of {', '.join(QUANTIZE)} (or none for float32)")
    if next(model.parameters()).device.type != "cpu" and quantize == "int4":
        raise ConfigError("quantize='int4' runs on the CPU kernel; use bf16 on an accelerator")
    model.eval().requires_grad_(False)
    if quantize == "bf16":
        model.to(torch.bfloat16)
        if PackedLinear.available(next(model.parameters()).device):
            _swap_linears(model, PackedLinear, lambda linear: True)
    elif quantize == "int4":
        _swap_linears(model, Int4Linear, Int4Linear.fits)
    if compile:
        if not isinstance(model, GPT):
            raise ConfigError("compile applies to textmill's GPT (runs, and Llama, Gemma 3 or GPT-2 sources on the native engine)")
        # Compiled graphs are cached per code object: every compiled model, weight format and kind of
        # call (prefill, one token, scoring) is another entry of Block.forward's cache, beyond the default 8.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        for block in model.blocks:
            block.compile(dynamic=True)
    return model


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether `device` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU for which
    oneDNN has bf16 kernels (AVX-512 BF16 or AMX). On an AVX2-only CPU bf16 is emulated and slower
    than float32 (3.3x for SmolLM2 sampling at batch 32, 7x for a forward, on a Zen 3 EPYC)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return PackedLinear.available(device)


def batch_format(device: torch.device | str = "cpu") -> str | None:
    """The weights' format that samples batches fastest on `device`: bf16 where it is native, else float32
    (None)."""
    return "bf16" if native_bf16(device) else None


def faster_format(model: nn.Module, ids: Tensor, repeats: int = 3) -> nn.Module:
    """`model` (float32, as loaded) in whichever of float32 and bf16 runs a forward of `ids` faster on
    this machine (the median of `repeats` after a warm-up), for work that reads whole texts (features,
    losses). Where oneDNN has no bf16 kernel for this CPU (AVX2 only: bf16 is emulated, 7x slower than
    float32 for SmolLM2 on a Zen 3 EPYC) float32 is kept without measuring; elsewhere it is measured."""
    import copy
    import time

    def median_seconds(m: nn.Module) -> float:
        with torch.no_grad():
            m(ids)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                m(ids)
                times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    model.eval().requires_grad_(False)
    if not native_bf16(ids.device):
        return model
    bf16 = optimize(copy.deepcopy(model), "bf16")
    return bf16 if median_seconds(bf16) < median_seconds(model) else model


def _swap_linears(module: nn.Module, make, fits) -> None:
    """Every `nn.Linear` below `module` that `fits` becomes `make(linear)` (a tied output layer gets a
    copy of its own; the embedding keeps the original)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and fits(child):
            setattr(module, name, make(child))
        else:
            _swap_linears(child, make, fits)
