"""GPT: a decoder-only Transformer (pre-norm, tied embeddings, KV cache).

Read top to bottom like nanoGPT's model.py. Training runs `forward` over whole windows with a causal
mask; generation runs `step` over a key/value cache. Left-padded prompts get position ids counted
from each row's first real token, and padding is masked out of every attention.

GPT-2's layout is the default (LayerNorm, learned positions, GELU MLP, biases). The options that
Llama-style weights need make the same model modern: `norm: rmsnorm`, `positions: rope` (rotary,
`rope_theta`), `n_kv_head` (grouped-query attention), `mlp: swiglu` with its `ffn` width, `bias:
false`; models/hf.py imports Llama checkpoints (SmolLM2) into it. Gemma 3's need a few more:
`head_dim` wider than `n_embd / n_head`, `qk_norm`, `sandwich_norm`, `embed_scale`, `mlp: geglu`, and
sliding-window attention in `local_layers` (`window`, with their own `local_rope_theta`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import DECODER, ModelConfig
from .base import Conditioning
from .layers import MLP, SelfAttention, init_transformer_weights


class GPTConfig(ModelConfig):
    kind: ClassVar[str] = DECODER
    family: Literal["gpt"] = "gpt"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True
    n_kv_head: int | None = Field(None, description="key/value heads (grouped-query attention); default n_head")
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = Field(1e-5, gt=0)
    positions: Literal["learned", "rope"] = "learned"
    rope_theta: float = Field(10000.0, gt=0)
    mlp: Literal["gelu", "gelu_tanh", "swiglu", "geglu"] = Field(
        "gelu", description="gelu_tanh: GPT-2's tanh approximation; swiglu (Llama) and geglu (Gemma: gelu_tanh) are gated")
    ffn: int | None = Field(None, ge=1, description="MLP hidden width; default 4 * n_embd")
    head_dim: int | None = Field(None, ge=1, description="width of each attention head; default n_embd / n_head")
    qk_norm: bool = Field(False, description="RMS-normalise each head's queries and keys before rotating them (Gemma 3)")
    sandwich_norm: bool = Field(False, description="normalise the attention's and the MLP's outputs too, before each "
                                                   "residual sum (Gemma 2 and 3)")
    embed_scale: bool = Field(False, description="multiply token embeddings by sqrt(n_embd) (Gemma)")
    window: int | None = Field(None, ge=1, description="sliding-window attention: in local_layers a query sees only the "
                                                       "`window` most recent positions, itself included")
    local_layers: list[int] = Field(default_factory=list, description="the layers (0-based) that attend within `window`")
    local_rope_theta: float | None = Field(None, gt=0, description="the rotary base of local_layers; default rope_theta")

    @property
    def head_width(self) -> int:
        return self.head_dim or self.n_embd // self.n_head

    @model_validator(mode="after")
    def _heads_divide_width(self) -> GPTConfig:
        if self.n_layer < 1 or self.n_head < 1 or self.n_embd < 1:
            raise ValueError("n_layer, n_head and n_embd must be positive")
        if self.head_dim is None and self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head}), or set head_dim")
        if bool(self.window) != bool(self.local_layers):
            raise ValueError("window and local_layers go together: the layers that attend locally, and how far they see")
        if any(not 0 <= i < self.n_layer for i in self.local_layers):
            raise ValueError(f"local_layers {self.local_layers} must name layers 0 to {self.n_layer - 1}")
        if self.local_rope_theta is not None and not self.local_layers:
            raise ValueError("local_rope_theta is the rotary base of local_layers; set local_layers and window too")
        if self.local_rope_theta is not None and self.positions != "rope":
            raise ValueError("local_rope_theta needs positions: rope")
        if self.n_kv_head is not None and (self.n_kv_head < 1 or self.n_head % self.n_kv_head):
            raise ValueError(f"n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        return self


def norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.norm_eps, bias=cfg.bias)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, local: bool = False) -> None:
        super().__init__()
        self.local = local  # attends within cfg.window (GPT hands it the local mask and rotary)
        self.ln1 = norm(cfg)
        self.attn = SelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias, n_kv_head=cfg.n_kv_head,
                                  head_dim=cfg.head_dim, qk_norm_eps=cfg.norm_eps if cfg.qk_norm else None)
        self.ln2 = norm(cfg)
        self.mlp = MLP(cfg.n_embd, cfg.ffn or 4 * cfg.n_embd, cfg.dropout, cfg.bias, kind=cfg.mlp)
        self.post_attn, self.post_mlp = (norm(cfg), norm(cfg)) if cfg.sandwich_norm else (nn.Identity(), nn.Identity())

    def forward(self, x: Tensor, cache=None, start: int = 0, attn_mask: Tensor | None = None,
                rotary: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Training: `cache` is None and attention is causal (or as `attn_mask` says: a local layer's
        window). Generation: keys and values go into the preallocated `cache` at `start`, and
        `attn_mask` (B, 1, T, start+T) says what each query sees (None: everything cached). `rotary`
        is the (cos, sin) of each position (rope models)."""
        causal = cache is None and attn_mask is None
        x = x + self.post_attn(self.attn(self.ln1(x), attn_mask, is_causal=causal, cache=cache, start=start, rotary=rotary))
        return x + self.post_mlp(self.mlp(self.ln2(x)))


class Rotary(nn.Module):
    """cos and sin of rotary position embeddings for given positions: (B, T) -> 2 x (B, 1, T, D)."""

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        self.register_buffer("inv_freq", theta ** (-torch.arange(0, head_dim, 2).float() / head_dim), persistent=False)

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        angles = positions[..., None].float() * self.inv_freq  # (B, T, D/2)
        angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, T, D)
        return angles.cos().to(dtype), angles.sin().to(dtype)


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
    kind = GPTConfig.kind

    def __init__(self, cfg: GPTConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.max_context = cfg.context
        self.wte = nn.Embedding(vocab_size, cfg.n_embd)
        if cfg.positions == "learned":
            self.wpe = nn.Embedding(cfg.context, cfg.n_embd)
        else:
            self.rotary = Rotary(cfg.head_width, cfg.rope_theta)
            if cfg.local_rope_theta is not None:
                self.rotary_local = Rotary(cfg.head_width, cfg.local_rope_theta)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, local=i in cfg.local_layers) for i in range(cfg.n_layer))
        self.ln_f = norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight
        init_transformer_weights(self, cfg.n_layer)

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) logits, causal, no padding (the training path)."""
        return self.lm_head(self.features(idx))  # (B, T, V)

    def features(self, idx: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, C) the final hidden states, causal: padding on the right never
        changes the states of the tokens before it."""
        B, T = idx.shape
        if T > self.max_context:
            raise ValueError(f"sequence of {T} tokens is longer than the context ({self.max_context})")
        x, rotary = self.embed(idx, torch.arange(T, device=idx.device)[None])  # (B, T, C)
        x = self.drop(x)
        window = None
        if self.cfg.window and T > self.cfg.window:  # causal, and within the window
            i = torch.arange(T, device=idx.device)
            window = self._windowed((i[None] <= i[:, None])[None, None], 0, T, idx.device)  # (1, 1, T, T)
        for block, rot in zip(self.blocks, rotary):
            x = block(x, attn_mask=window if block.local else None, rotary=rot)
        return self.ln_f(x)

    def embed(self, idx: Tensor, positions: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor] | None]]:
        """Token embeddings (plus learned position embeddings), and each layer's rotary (cos, sin)
        (None with learned positions)."""
        x = self.wte(idx)  # (B, T, C)
        if self.cfg.embed_scale:
            x = x * self.cfg.n_embd ** 0.5
        if self.cfg.positions == "learned":  # per-row positions: DP-SGD needs per-sample gradients
            return x + self.wpe(positions.expand(idx.shape[0], -1)), [None] * len(self.blocks)
        positions = positions.expand(idx.shape[0], -1)
        rotary = self.rotary(positions, x.dtype)
        local = self.rotary_local(positions, x.dtype) if self.cfg.local_rope_theta is not None else rotary
        return x, [local if block.local else rotary for block in self.blocks]

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> GPTState:
        B, dev, C = cond.batch_size, cond.device, self.max_context
        shape = (B, self.cfg.n_kv_head or self.cfg.n_head, C, self.cfg.head_width)
        dtype = self.wte.weight.dtype  # the cache holds what the weights compute in (bf16 weights: bf16 keys)
        return GPTState(
            kv=[(torch.empty(shape, device=dev, dtype=dtype), torch.empty(shape, device=dev, dtype=dtype))
                for _ in range(self.cfg.n_layer)],
            tokens=torch.zeros(B, C, dtype=torch.long, device=dev),
            mask=torch.zeros(B, C, dtype=torch.bool, device=dev),
            pos=torch.zeros(B, dtype=torch.long, device=dev),
        )

    def step(self, tokens: Tensor, state: GPTState, mask: Tensor | None = None) -> tuple[Tensor, GPTState]:
        B, T = tokens.shape
        L = state.length
        real = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask.bool()
        if L + T > self.max_context:
            # Past the context: rebuild the cache from the most recent three quarters of it (positions
            # restart), so the next quarter of the context's tokens step on the cache again. Keeping the
            # whole context re-read it at every step past the end: 64 times the work for a 64-token one.
            keep = min(self.max_context, max(T, 3 * self.max_context // 4))
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
        local_mask = self._windowed(attn_mask, L, T, tokens.device) if self.cfg.window and L + T > self.cfg.window else attn_mask
        x, rotary = self.embed(tokens, positions)  # (B, T, C)
        for block, cache, rot in zip(self.blocks, state.kv, rotary):
            x = block(x, cache, L, local_mask if block.local else attn_mask, rot)
        state.pos = state.pos + real.sum(1)
        state.length = L + T
        return self.lm_head(self.ln_f(x[:, -1])).float(), state  # (B, V)

    def _windowed(self, attn_mask: Tensor | None, L: int, T: int, device: torch.device) -> Tensor:
        """`attn_mask` of a step, narrowed to the window of local layers (cache positions count, as in
        transformers' sliding-window masks)."""
        q_idx = torch.arange(T, device=device)[:, None] + L
        k_idx = torch.arange(L + T, device=device)[None, :]
        near = (k_idx > q_idx - self.cfg.window)[None, None]  # (1, 1, T, L+T)
        return near if attn_mask is None else attn_mask & near

    def reorder(self, state: GPTState, index: Tensor) -> GPTState:
        L = state.length
        if len(index) != state.pos.shape[0]:  # a different batch size: new buffers, of which only the filled part is copied
            out = self.start(Conditioning(len(index), state.pos.device))
            for (k, v), (k_out, v_out) in zip(state.kv, out.kv):
                k_out[:, :, :L] = k[index, :, :L]
                v_out[:, :, :L] = v[index, :, :L]
            out.tokens[:, :L] = state.tokens[index, :L]
            out.mask[:, :L] = state.mask[index, :L]
            out.pos, out.length = state.pos[index], L
            return out
        # same size (beam search): permute the filled part in place
        for k, v in state.kv:
            k[:, :, :L] = k[index, :, :L]
            v[:, :, :L] = v[index, :, :L]
        state.tokens[:, :L] = state.tokens[index, :L]
        state.mask[:, :L] = state.mask[index, :L]
        state.pos = state.pos[index]
        return state

    def merge(self, states: list[GPTState]) -> GPTState:
        """One state holding the rows of `states` one after another, so that requests can join a
        running batch between steps. Each state's filled positions are right-aligned to the longest
        (what lies before them is left padding), and positions that are padding in every row are
        dropped. The cached keys carry their rotary positions, so aligning them changes nothing."""
        L = max(s.length for s in states)
        out = self.start(Conditioning(sum(len(s.pos) for s in states), states[0].pos.device))
        row = 0
        for s in states:
            rows, off = slice(row, row + len(s.pos)), L - s.length
            for (k, v), (k_out, v_out) in zip(s.kv, out.kv):
                k_out[rows, :, :off] = 0  # masked out, but never garbage: NaN there would leak through attention
                v_out[rows, :, :off] = 0
                k_out[rows, :, off:L] = k[:, :, :s.length]
                v_out[rows, :, off:L] = v[:, :, :s.length]
            out.tokens[rows, off:L] = s.tokens[:, :s.length]
            out.mask[rows, off:L] = s.mask[:, :s.length]
            out.pos[rows] = s.pos
            row += len(s.pos)
        used = out.mask[:, :L].any(0)
        drop = int(used.long().argmax()) if bool(used.any()) else L  # the first position a row still uses
        if drop:
            for k, v in out.kv:
                k[:, :, :L - drop] = k[:, :, drop:L].clone()
                v[:, :, :L - drop] = v[:, :, drop:L].clone()
            out.tokens[:, :L - drop] = out.tokens[:, drop:L].clone()
            out.mask[:, :L - drop] = out.mask[:, drop:L].clone()
            out.mask[:, L - drop:] = False
        out.length = L - drop
        return out

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L H Q T."""
        n = sum(p.numel() for p in self.parameters()) - (self.wpe.weight.numel() if self.cfg.positions == "learned" else 0)
        c = self.cfg
        return 6 * n + 12 * c.n_layer * c.n_head * c.head_width * c.context
