"""GPT: a decoder-only Transformer (pre-LayerNorm, learned positions, tied embeddings, KV cache).

Read top to bottom like nanoGPT's model.py. Training runs `forward` over whole windows with a causal
mask; generation runs `step` over a key/value cache. Left-padded prompts get position ids counted
from each row's first real token, and padding is masked out of every attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import Tensor, nn

from ..config import ModelConfig
from .base import Conditioning


class GPTConfig(ModelConfig):
    family: Literal["gpt"] = "gpt"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True

    @model_validator(mode="after")
    def _heads_divide_width(self) -> GPTConfig:
        if self.n_layer < 1 or self.n_head < 1 or self.n_embd < 1:
            raise ValueError("n_layer, n_head and n_embd must be positive")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        return self


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, past: tuple[Tensor, Tensor] | None = None,
                attn_mask: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, L+T, D)
            v = torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, past=None, attn_mask=None):
        a, kv = self.attn(self.ln1(x), past, attn_mask)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv


@dataclass
class GPTState:
    kv: list[tuple[Tensor, Tensor]]  # per layer, each (B, H, L, D)
    tokens: Tensor                    # (B, L) every token seen, to rebuild the cache past the context
    mask: Tensor                      # (B, L) True where a token is real, False for left padding
    pos: Tensor                       # (B,) the position id of the next real token


class GPT(nn.Module):
    Config = GPTConfig

    def __init__(self, cfg: GPTConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.max_context = cfg.context
        self.wte = nn.Embedding(vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.context, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) logits, causal, no padding (the training path)."""
        B, T = idx.shape
        if T > self.max_context:
            raise ValueError(f"sequence of {T} tokens is longer than the context ({self.max_context})")
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))  # (B, T, C)
        for block in self.blocks:
            x, _ = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> GPTState:
        B, dev = cond.batch_size, cond.device
        empty = torch.empty(B, self.cfg.n_head, 0, self.cfg.n_embd // self.cfg.n_head, device=dev)
        return GPTState(
            kv=[(empty, empty)] * self.cfg.n_layer,
            tokens=torch.empty(B, 0, dtype=torch.long, device=dev),
            mask=torch.empty(B, 0, dtype=torch.bool, device=dev),
            pos=torch.zeros(B, dtype=torch.long, device=dev),
        )

    def step(self, tokens: Tensor, state: GPTState, mask: Tensor | None = None) -> tuple[Tensor, GPTState]:
        B, T = tokens.shape
        mask = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()
        if state.tokens.shape[1] + T > self.max_context:
            # Past the context: drop the oldest tokens and rebuild the cache from the rest (positions restart).
            keep_tokens = torch.cat([state.tokens, tokens], 1)[:, -self.max_context:]
            keep_mask = torch.cat([state.mask, mask], 1)[:, -self.max_context:]
            return self.step(keep_tokens, self.start(Conditioning(B, tokens.device)), keep_mask)
        L = state.tokens.shape[1]
        positions = (state.pos[:, None] + mask.long().cumsum(1) - 1).clamp(min=0)  # (B, T)
        key_mask = torch.cat([state.mask, mask], 1)  # (B, L+T)
        q_idx = torch.arange(T, device=tokens.device)[:, None] + L
        k_idx = torch.arange(L + T, device=tokens.device)[None, :]
        allowed = (k_idx <= q_idx)[None] & key_mask[:, None, :]   # (B, T, L+T) causal and not padding
        allowed = allowed | (k_idx == q_idx)[None]                 # a padding query sees itself (no empty rows)
        x = self.wte(tokens) + self.wpe(positions)  # (B, T, C)
        kv = []
        for block, past in zip(self.blocks, state.kv):
            x, layer_kv = block(x, past, allowed[:, None])
            kv.append(layer_kv)
        logits = self.lm_head(self.ln_f(x[:, -1]))  # (B, V)
        new = GPTState(kv, torch.cat([state.tokens, tokens], 1), key_mask, state.pos + mask.sum(1))
        return logits, new

    def reorder(self, state: GPTState, index: Tensor) -> GPTState:
        return GPTState(
            kv=[(k.index_select(0, index), v.index_select(0, index)) for k, v in state.kv],
            tokens=state.tokens.index_select(0, index),
            mask=state.mask.index_select(0, index),
            pos=state.pos.index_select(0, index),
        )

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L H Q T."""
        n = sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()
        c = self.cfg
        return 6 * n + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.context
