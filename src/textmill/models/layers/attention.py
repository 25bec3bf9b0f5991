"""Transformer parts shared by `gpt` (decoder-only) and `transformer` (encoder-decoder).

Layers take their sizes as arguments. Attention runs through `scaled_dot_product_attention`; a
boolean `attn_mask` is True where a query may attend. `attention_weights` computes the same
softmax explicitly for the rare caller that wants to look at it (attention plots).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(B, T, C) -> (B, H, T, C/H)."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H*D)."""
    B, H, T, D = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, H * D)


def attention_weights(q: Tensor, k: Tensor, attn_mask: Tensor | None) -> Tensor:
    """softmax(q k^T / sqrt(d)) with masked keys removed: (B, H, T, S)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return scores.softmax(-1)


EXPLICIT_MAX_T = 128  # bf16 causal windows up to this long attend explicitly on a CPU (see causal_softmax_attention)


def causal_softmax_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Causal softmax(q k^T / sqrt(d)) v written out, the softmax in float32 and grouped key/value heads
    repeated. Training under bf16 autocast on a CPU, for windows of up to 128 tokens, it beats SDPA's
    flash kernel, whose backward took a fifth of a LoRA step on SmolLM2 (batch 4 x 128: 3.9 against
    6.5 ms a layer forward and backward; LoRA steps 7% faster); from 256 tokens on it is slower."""
    T, group = q.shape[2], q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return scores.softmax(-1).to(q.dtype) @ v


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary position embedding (RoFormer), in the half-split layout Llama checkpoints use:
    x (B, H, T, D), cos and sin (B, 1, T, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection and an optional KV cache.

    Training passes `is_causal=True` (decoders) or a padding `attn_mask` (encoders). Generation passes
    `cache=(keys, values)`, buffers of shape (B, H_kv, capacity, D): this call's keys and values are
    written at `start` and the queries attend to every cached position that `attn_mask` allows.
    `n_kv_head` < `n_head` is grouped-query attention (each key/value head serves n_head / n_kv_head
    query heads); `rotary=(cos, sin)` rotates queries and keys by their positions first, and with
    `qk_norm_eps` each head's queries and keys are RMS-normalised before that (Gemma 3)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, n_kv_head: int | None = None,
                 head_dim: int | None = None, qk_norm_eps: float | None = None) -> None:
        super().__init__()
        if head_dim is None and n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.n_head, self.n_kv_head = n_head, n_kv_head or n_head
        self.head_dim = head_dim or n_embd // n_head
        self.qkv = nn.Linear(n_embd, (self.n_head + 2 * self.n_kv_head) * self.head_dim, bias=bias)
        self.q_norm = self.k_norm = None
        if qk_norm_eps is not None:
            self.q_norm, self.k_norm = nn.RMSNorm(self.head_dim, eps=qk_norm_eps), nn.RMSNorm(self.head_dim, eps=qk_norm_eps)
        self.proj = nn.Linear(self.n_head * self.head_dim, n_embd, bias=bias)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False,
                cache: tuple[Tensor, Tensor] | None = None, start: int = 0,
                rotary: tuple[Tensor, Tensor] | None = None) -> Tensor:
        B, T, D = *x.shape[:2], self.head_dim
        q, k, v = self.qkv(x).split([self.n_head * D, self.n_kv_head * D, self.n_kv_head * D], dim=2)
        q, k, v = split_heads(q, self.n_head), split_heads(k, self.n_kv_head), split_heads(v, self.n_kv_head)  # (B, H, T, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rotary is not None:
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        if cache is not None:
            cache[0][:, :, start:start + T] = k
            cache[1][:, :, start:start + T] = v
            k, v = cache[0][:, :, :start + T], cache[1][:, :, :start + T]  # (B, H_kv, start+T, D)
        if cache is not None and T == 1 and self.n_kv_head != self.n_head:
            # Decoding a token: the query heads that share a key/value head attend as one group of
            # queries, which reads each cached key once; SDPA's grouped-query path reads them once
            # per query head, 4-7x slower at bf16 (the same numbers; measured in benchmarks/pretrained.py)
            grouped = q.reshape(B, self.n_kv_head, self.n_head // self.n_kv_head, D)
            y = F.scaled_dot_product_attention(grouped, k, v, attn_mask=attn_mask).view(B, self.n_head, 1, D)
        elif (cache is None and is_causal and attn_mask is None and T <= EXPLICIT_MAX_T and q.dtype == torch.bfloat16
              and q.device.type == "cpu" and not (self.training and self.dropout)):
            y = causal_softmax_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                               dropout_p=self.dropout if self.training else 0.0,
                                               enable_gqa=self.n_kv_head != self.n_head)  # (B, H, T, D)
        return self.resid_drop(self.proj(merge_heads(y)))


class CrossAttention(nn.Module):
    """Decoder-to-encoder attention. The memory's keys and values are projected once per source
    (`memory_kv`) and reused at every decoding step."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.n_head = n_head
        self.q = nn.Linear(n_embd, n_embd, bias=bias)
        self.kv = nn.Linear(n_embd, 2 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S, C) encoder output -> keys and values, each (B, H, S, D)."""
        k, v = self.kv(memory).split(memory.shape[-1], dim=2)
        return split_heads(k, self.n_head), split_heads(v, self.n_head)

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], attn_mask: Tensor | None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B, T, C) attends to kv; attn_mask (B, 1, 1|T, S). Returns the output and, if asked,
        the weights averaged over heads (B, T, S)."""
        q = split_heads(self.q(x), self.n_head)  # (B, H, T, D)
        k, v = kv
        if need_weights:
            w = attention_weights(q, k, attn_mask)  # (B, H, T, S)
            y, weights = w @ v, w.mean(1)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                               dropout_p=self.dropout if self.training else 0.0)
            weights = None
        return self.resid_drop(self.proj(merge_heads(y))), weights


MLP_KINDS = ("gelu", "gelu_tanh", "swiglu", "geglu")


class MLP(nn.Module):
    """GELU MLP (`gelu_tanh`: GPT-2's approximation of it), or gated, gate and up fused: Llama's
    SwiGLU proj(silu(gate(x)) * up(x)), or Gemma's GeGLU with tanh-approximated GELU for silu."""

    def __init__(self, n_embd: int, hidden: int, dropout: float = 0.0, bias: bool = True, kind: str = "gelu") -> None:
        super().__init__()
        if kind not in MLP_KINDS:
            raise ValueError(f"MLP kind {kind!r} is not one of {', '.join(MLP_KINDS)}")
        self.gated, self.kind = kind in ("swiglu", "geglu"), kind
        self.fc = nn.Linear(n_embd, 2 * hidden if self.gated else hidden, bias=bias)
        self.proj = nn.Linear(hidden, n_embd, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if not self.gated:
            return self.drop(self.proj(F.gelu(self.fc(x), approximate="tanh" if self.kind == "gelu_tanh" else "none")))
        gate, up = self.fc(x).chunk(2, dim=-1)
        gate = F.silu(gate) if self.kind == "swiglu" else F.gelu(gate, approximate="tanh")
        return self.drop(self.proj(gate * up))


def init_transformer_weights(model: nn.Module, n_layer: int) -> None:
    """GPT-2's init: N(0, 0.02) for linear and embedding weights, zero biases, and residual
    projections (`proj.weight`) scaled by 1/sqrt(2 * layers)."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    model.apply(init)
    for name, p in model.named_parameters():
        if name.endswith("proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
