"""Float32 training on a CPU multiplies its linear layers through oneDNN instead of MKL.

PyTorch sends a float32 `F.linear` to MKL's sgemm, and uses oneDNN only for bf16 (or where float32
may be rounded to tf32 or bf16). On this project's machine (AMD EPYC, Zen 5, AVX-512) a linear
layer of SmolLM2's shapes, forward and backward, runs at 175 GFLOP/s through MKL and at 340-370
through oneDNN's own kernels (130 against 220 for its 49,152-word output layer; idle, median of 3).
Inside `onednn_linear()`, each float32 `F.linear` on the CPU (every `nn.Linear`, the tied output
layer, the base layer of a LoRA adapter) runs forward and backward as three oneDNN products:
y = x W^T + b, dx = dy W, dW = dy^T x. They are float32 products summed in another order (results
within about 1e-6 of MKL's, relative), not a lower precision. Under bf16 autocast nothing changes:
PyTorch already multiplies bf16 through oneDNN.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

MIN_MACS = 1 << 22  # smaller products stay with MKL: oneDNN's fixed cost per call outweighs its speed


def _mm(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ w.T (+ bias) for 2-D x and w, through oneDNN's matmul (strided operands are read as they are)."""
    return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(flat, weight)
        ctx.x_shape, ctx.has_bias = x.shape, bias is not None
        return _mm(flat, weight, bias).reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        flat, weight = ctx.saved_tensors
        dy = grad.reshape(-1, grad.shape[-1])
        dx = _mm(dy, weight.t()).reshape(ctx.x_shape) if ctx.needs_input_grad[0] else None
        dw = _mm(dy.t(), flat.t()) if ctx.needs_input_grad[1] else None
        db = dy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def _takes(x: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """A plain float32 product on the CPU, large enough to gain, outside autocast."""
    plain = all(t is None or (type(t) in (Tensor, torch.nn.Parameter) and t.layout == torch.strided and t.device.type == "cpu"
                              and t.dtype == torch.float32) for t in (x, weight, bias))
    return (plain and weight.dim() == 2 and x.dim() >= 1 and x.shape[-1] == weight.shape[1]
            and x.numel() * weight.shape[0] >= MIN_MACS and not torch.is_autocast_enabled("cpu"))


class _Mode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight, *rest = args
            bias = rest[0] if rest else kwargs.get("bias")
            if _takes(x, weight, bias):
                return _OneDNNLinear.apply(x, weight, bias)
        return func(*args, **kwargs)


@functools.cache
def available() -> bool:
    """oneDNN is built in and multiplies a float32 matrix here."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        _mm(torch.ones(2, 3), torch.ones(4, 3))
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def onednn_linear() -> Iterator[None]:
    """Inside: float32 linear layers on the CPU multiply through oneDNN (see the module docstring);
    where oneDNN is missing, nothing changes."""
    if not available():
        yield
        return
    with _Mode():
        yield
