"""Transformer: the encoder-decoder of Vaswani et al. (2017), with pre-LayerNorm blocks.

    encoder  x = E_src[src] * sqrt(C) + PE;  N x { x += SelfAttn(LN(x), source padding mask); x += MLP(LN(x)) };  LN
    decoder  y = E_tgt[tgt] * sqrt(C) + PE;  N x { y += CausalSelfAttn(LN(y)); y += CrossAttn(LN(y), memory);
                                                   y += MLP(LN(y)) };  LN;  logits = y W_out

Positions are sinusoidal, so targets have no length limit at generation time. Embeddings start at
N(0, 1/C) and are scaled by sqrt(C) (as in fairseq); the source and target embeddings can be one
matrix (`share_embeddings`, with a shared vocabulary) and the output layer can reuse the target
embedding (`tie_weights`). Generation: `start` encodes the source once and projects every decoder
layer's cross-attention keys and values from it; `step` runs only the new target tokens against a
self-attention KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import ENCODER_DECODER, ModelConfig
from .base import Conditioning
from .layers import MLP, CrossAttention, SelfAttention, init_transformer_weights


class TransformerConfig(ModelConfig):
    kind: ClassVar[str] = ENCODER_DECODER
    family: Literal["transformer"] = "transformer"
    context: int = Field(128, ge=1, description="the longest target in tokens (longer training targets are cut)")
    max_source_len: int = Field(256, ge=2, description="the longest source in tokens (longer sources are cut)")
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(3, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(256, ge=1)
    ffn: int = Field(1024, ge=1, description="hidden width of the feed-forward layers")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    bias: bool = True
    share_embeddings: bool = Field(True, description="one embedding matrix for source and target (shared vocabulary)")
    tie_weights: bool = Field(True, description="the output layer reuses the target embedding")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        return self


def sinusoids(positions: Tensor, dim: int) -> Tensor:
    """(T,) positions -> (T, dim) sinusoidal encodings: sines in the first half, cosines in the second."""
    inv = torch.exp(torch.arange(0, dim // 2, device=positions.device) * (-math.log(10000.0) / max(dim // 2 - 1, 1)))
    angles = positions.float()[:, None] * inv[None, :]  # (T, dim/2)
    pe = torch.cat([angles.sin(), angles.cos()], dim=1)
    return nn.functional.pad(pe, (0, dim - pe.shape[1]))  # an odd width gets one zero column


class EncoderBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = SelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg.n_embd, cfg.ffn, cfg.dropout, cfg.bias)

    def forward(self, x: Tensor, src_mask: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x), src_mask)
        return x + self.mlp(self.ln2(x))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = SelfAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.cross = CrossAttention(cfg.n_embd, cfg.n_head, cfg.dropout, cfg.bias)
        self.ln3 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg.n_embd, cfg.ffn, cfg.dropout, cfg.bias)

    def forward(self, y: Tensor, memory_kv: tuple[Tensor, Tensor], src_mask: Tensor, cache=None, start: int = 0,
                self_mask: Tensor | None = None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Training: `cache` is None and self-attention is causal. Generation: keys and values go into
        `cache` at `start`, and `self_mask` (1, 1, T, start+T) limits what the new tokens see."""
        y = y + self.attn(self.ln1(y), self_mask, is_causal=cache is None, cache=cache, start=start)
        h, weights = self.cross(self.ln2(y), memory_kv, src_mask, need_weights)
        y = y + h
        return y + self.mlp(self.ln3(y)), weights


@dataclass
class TransformerState:
    memory_kv: list[tuple[Tensor, Tensor]]  # per decoder layer, cross-attention keys and values (B, H, S, D)
    src_mask: Tensor                         # (B, 1, 1, S) True at real source tokens
    self_kv: list[tuple[Tensor, Tensor]]     # per decoder layer, self-attention cache (B, H, capacity, D)
    length: int = 0                          # target positions filled so far


class Transformer(nn.Module):
    Config = TransformerConfig
    objective = "seq2seq"
    kind = TransformerConfig.kind
    max_context = None  # sinusoidal positions: targets may grow past `context` at generation time

    def __init__(self, cfg: TransformerConfig, vocab_size: int, source_vocab_size: int | None = None) -> None:
        super().__init__()
        if cfg.share_embeddings and source_vocab_size is not None:
            raise ValueError("share_embeddings needs one vocabulary for source and target")
        self.cfg = cfg
        self.vocab_size = vocab_size
        C = cfg.n_embd
        self.tgt_embed = nn.Embedding(vocab_size, C, padding_idx=0)
        self.src_embed = self.tgt_embed if cfg.share_embeddings else nn.Embedding(source_vocab_size or vocab_size, C, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.encoder_layers))
        self.enc_ln = nn.LayerNorm(C, bias=cfg.bias)
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        self.dec_ln = nn.LayerNorm(C, bias=cfg.bias)
        self.lm_head = nn.Linear(C, vocab_size, bias=False)
        init_transformer_weights(self, cfg.encoder_layers + cfg.decoder_layers)
        for emb in {id(e): e for e in (self.tgt_embed, self.src_embed)}.values():
            nn.init.normal_(emb.weight, mean=0.0, std=C ** -0.5)
            with torch.no_grad():
                emb.weight[0].zero_()
        if cfg.tie_weights:
            self.lm_head.weight = self.tgt_embed.weight

    def _embed(self, embedding: nn.Embedding, ids: Tensor, start: int = 0) -> Tensor:
        pos = sinusoids(torch.arange(start, start + ids.shape[1], device=ids.device), self.cfg.n_embd)
        return self.drop(embedding(ids) * math.sqrt(self.cfg.n_embd) + pos)  # (B, T, C)

    def encode(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) source ids and mask -> (B, S, C) memory."""
        mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        x = self._embed(self.src_embed, src)
        for block in self.encoder:
            x = block(x, mask)
        return self.enc_ln(x)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_weights: bool = False):
        """Teacher-forced logits (B, T, V); with `need_weights`, also the last decoder layer's
        cross-attention weights averaged over heads (B, T, S)."""
        memory = self.encode(src, src_mask)
        mask = src_mask[:, None, None, :]
        y = self._embed(self.tgt_embed, tgt_in)
        weights = None
        for i, block in enumerate(self.decoder):
            last = need_weights and i == len(self.decoder) - 1
            y, weights = block(y, block.cross.memory_kv(memory), mask, need_weights=last)
        logits = self.lm_head(self.dec_ln(y))
        return (logits, weights) if need_weights else logits

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> TransformerState:
        src, src_mask = cond.extras["source"], cond.extras["source_mask"]
        memory = self.encode(src, src_mask)
        B, H, D = src.shape[0], self.cfg.n_head, self.cfg.n_embd // self.cfg.n_head
        shape = (B, H, self.cfg.context, D)
        return TransformerState(
            memory_kv=[block.cross.memory_kv(memory) for block in self.decoder],
            src_mask=src_mask[:, None, None, :],
            self_kv=[(memory.new_empty(shape), memory.new_empty(shape)) for _ in self.decoder],
        )

    def step(self, tokens: Tensor, state: TransformerState, mask: Tensor | None = None) -> tuple[Tensor, TransformerState]:
        if mask is not None and not bool(mask.all()):
            raise ValueError("encoder-decoder models take unpadded target prompts (every row starts with <bos>)")
        T, L = tokens.shape[1], state.length
        if L + T > state.self_kv[0][0].shape[2]:  # past the preallocated length: double the cache
            grow = max(L + T, 2 * state.self_kv[0][0].shape[2])
            state.self_kv = [tuple(torch.cat([c, c.new_empty(*c.shape[:2], grow - c.shape[2], c.shape[3])], 2) for c in kv)
                             for kv in state.self_kv]
        self_mask = None
        if T > 1:  # several new tokens: causal among themselves, all of the cache before them
            q = torch.arange(T, device=tokens.device)[:, None] + L
            self_mask = (torch.arange(L + T, device=tokens.device)[None, :] <= q)[None, None]  # (1, 1, T, L+T)
        y = self._embed(self.tgt_embed, tokens, start=L)
        for block, mem, cache in zip(self.decoder, state.memory_kv, state.self_kv):
            y, _ = block(y, mem, state.src_mask, cache=cache, start=L, self_mask=self_mask)
        state.length = L + T
        return self.lm_head(self.dec_ln(y[:, -1])), state  # (B, V)

    def reorder(self, state: TransformerState, index: Tensor) -> TransformerState:
        L = state.length
        if len(index) == state.src_mask.shape[0]:  # same size (beam search): permute the filled cache in place
            for k, v in state.self_kv:
                k[:, :, :L] = k[index, :, :L]
                v[:, :, :L] = v[index, :, :L]
            self_kv = state.self_kv
        else:
            self_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in state.self_kv]
        memory_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in state.memory_kv]
        return TransformerState(memory_kv, state.src_mask.index_select(0, index), self_kv, L)
