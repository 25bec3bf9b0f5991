"""Float32 training multiplies its linear layers through oneDNN (training/linear.py): the same products
as PyTorch's, forward and backward, within float32 rounding; bf16 autocast, other dtypes and small
products are left to PyTorch; the trainer uses it for float32 steps and for evaluation (always
float32), and a run stays reproducible."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import textmill
from textmill.training import linear

from .helpers import tiny_config

pytestmark = pytest.mark.skipif(not linear.available(), reason="PyTorch built without oneDNN")


def products(x, w, b):
    y = F.linear(x, w, b)
    grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.shape[-1])).sum(), [t for t in (x, w, b) if t is not None])
    return y, grads


@pytest.mark.parametrize("bias", [True, False])
def test_float32_products_and_gradients_equal_pytorchs(bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 256, generator=g, requires_grad=True)
    w = torch.randn(300, 256, generator=g, requires_grad=True)
    b = torch.randn(300, generator=g, requires_grad=True) if bias else None
    want_y, want_grads = products(x, w, b)
    with linear.onednn_linear():
        y, grads = products(x, w, b)
    assert type(y.grad_fn).__name__ == "_OneDNNLinearBackward"
    assert y.shape == want_y.shape
    for got, want in zip((y, *grads), (want_y, *want_grads)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4 * want.abs().max().item())


def test_autocast_other_dtypes_and_small_products_are_left_to_pytorch():
    x, w = torch.randn(4, 256, 512, requires_grad=True), torch.randn(512, 512, requires_grad=True)
    with linear.onednn_linear():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = F.linear(x, w)
        assert y.dtype == torch.bfloat16 and type(y.grad_fn).__name__ != "_OneDNNLinearBackward"
        assert type(F.linear(x.double(), w.double()).grad_fn).__name__ != "_OneDNNLinearBackward"
        assert type(F.linear(x[:1, :2, :8], w[:8, :8]).grad_fn).__name__ != "_OneDNNLinearBackward"
        assert type(F.linear(x, w).grad_fn).__name__ == "_OneDNNLinearBackward"


def losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "train"]


def test_float32_training_multiplies_through_it_and_repeats_exactly(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(linear, "MIN_MACS", 0)  # the tiny model's products are below the size that gains
    calls = []
    apply = linear._OneDNNLinear.apply
    monkeypatch.setattr(linear._OneDNNLinear, "apply", lambda *a: calls.append(torch.is_grad_enabled()) or apply(*a))
    cfg = tiny_config(corpus, max_steps=6, log_every=1)
    textmill.train(cfg, tmp_path / "a", progress=False)
    assert True in calls and False in calls  # training steps and evaluation
    textmill.train(cfg, tmp_path / "b", progress=False)
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) == 6
    calls.clear()
    cfg["train"]["precision"] = "bf16"
    textmill.train(cfg, tmp_path / "c", progress=False)
    assert calls and True not in calls  # bf16 steps autocast; evaluation is float32
