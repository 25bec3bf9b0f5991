"""GPT: a decoder-only Transformer (pre-LayerNorm, learned positions, tied embeddings, KV cache).

Read top to bottom like nanoGPT's model.py. Training runs `forward` over whole windows with a causal
mask; generation runs `step` over a key/value cache. Left-padded prompts get position ids counted
from each row's first real token, and padding is masked out of every attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import model_validator
from torch import Tensor, nn

from ..config import ModelConfig
from .base import DECODER, Conditioning
from .layers import MLP, SelfAttention, init_transformer_weights


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


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = SelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg.n_embd, 4 * cfg.n_embd, cfg.dropout, cfg.bias)

    def forward(self, x: Tensor, cache=None, start: int = 0, attn_mask: Tensor | None = None) -> Tensor:
        """Training: `cache` is None and attention is causal. Generation: keys and values go into the
        preallocated `cache` at `start`, and `attn_mask` (B, 1, T, start+T) says what each query sees
        (None: everything cached)."""
        x = x + self.attn(self.ln1(x), attn_mask, is_causal=cache is None, cache=cache, start=start)
        return x + self.mlp(self.ln2(x))


@dataclass
class GPTState:
    """A KV cache preallocated to the context; `step` fills it in place and returns the same state."""

    kv: list[tuple[Tensor, Tensor]]  # per layer, keys and values, each (B, H, context, D)
    tokens: Tensor                    # (B, context) the tokens seen, to rebuild the cache past the context
    mask: Tensor                      # (B, context) True where a token is real, False for left padding
    pos: Tensor                       # (B,) the position id of the next real token
    length: int = 0                   # positions filled so far


class GPT(nn.Module):
    Config = GPTConfig
    objective = "lm"
    kind = DECODER

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
        init_transformer_weights(self, cfg.n_layer)

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) logits, causal, no padding (the training path)."""
        B, T = idx.shape
        if T > self.max_context:
            raise ValueError(f"sequence of {T} tokens is longer than the context ({self.max_context})")
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> GPTState:
        B, dev, C = cond.batch_size, cond.device, self.max_context
        shape = (B, self.cfg.n_head, C, self.cfg.n_embd // self.cfg.n_head)
        return GPTState(
            kv=[(torch.empty(shape, device=dev), torch.empty(shape, device=dev)) for _ in range(self.cfg.n_layer)],
            tokens=torch.zeros(B, C, dtype=torch.long, device=dev),
            mask=torch.zeros(B, C, dtype=torch.bool, device=dev),
            pos=torch.zeros(B, dtype=torch.long, device=dev),
        )

    def step(self, tokens: Tensor, state: GPTState, mask: Tensor | None = None) -> tuple[Tensor, GPTState]:
        B, T = tokens.shape
        L = state.length
        real = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()
        if L + T > self.max_context:
            # Past the context: keep the most recent tokens and rebuild the cache (positions restart).
            keep = self.max_context
            all_tokens = torch.cat([state.tokens[:, :L], tokens], 1)[:, -keep:]
            all_mask = torch.cat([state.mask[:, :L], real], 1)[:, -keep:]
            return self.step(all_tokens, self.start(Conditioning(B, tokens.device)), all_mask)
        state.tokens[:, L:L + T] = tokens
        state.mask[:, L:L + T] = real
        positions = (state.pos[:, None] + real.long().cumsum(1) - 1).clamp(min=0)  # (B, T)
        key_mask = state.mask[:, :L + T]  # (B, L+T)
        if T == 1 and mask is None and bool(key_mask.all()):
            attn_mask = None  # one new token and no padding: it may see everything cached
        else:
            q_idx = torch.arange(T, device=tokens.device)[:, None] + L
            k_idx = torch.arange(L + T, device=tokens.device)[None, :]
            allowed = (k_idx <= q_idx)[None] & key_mask[:, None, :]  # (B, T, L+T) causal and not padding
            attn_mask = (allowed | (k_idx == q_idx)[None])[:, None]   # a padding query sees itself (no empty rows)
        x = self.wte(tokens) + self.wpe(positions)  # (B, T, C)
        for block, cache in zip(self.blocks, state.kv):
            x = block(x, cache, L, attn_mask)
        state.pos = state.pos + real.sum(1)
        state.length = L + T
        return self.lm_head(self.ln_f(x[:, -1])), state  # (B, V)

    def reorder(self, state: GPTState, index: Tensor) -> GPTState:
        if len(index) != state.pos.shape[0]:  # a different batch size: new buffers
            return GPTState([(k.index_select(0, index), v.index_select(0, index)) for k, v in state.kv],
                            state.tokens.index_select(0, index), state.mask.index_select(0, index),
                            state.pos.index_select(0, index), state.length)
        L = state.length  # same size (beam search): permute the filled part in place
        for k, v in state.kv:
            k[:, :, :L] = k[index, :, :L]
            v[:, :, :L] = v[index, :, :L]
        state.tokens[:, :L] = state.tokens[index, :L]
        state.mask[:, :L] = state.mask[index, :L]
        state.pos = state.pos[index]
        return state

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L H Q T."""
        n = sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()
        c = self.cfg
        return 6 * n + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.context
