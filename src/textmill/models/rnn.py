"""Recurrent language models: Elman RNN, LSTM or GRU; multi-layer, dropout, optional tied embeddings.

Training runs the whole window at once (cuDNN-style fused kernels); generation carries the hidden
state through `step`. Left-padded prompts are packed, so padding never touches the hidden state and a
prompt's result does not depend on the batch it sits in.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import model_validator
from torch import Tensor, nn

from ..config import DECODER, ModelConfig
from .base import Conditioning
from .layers.recurrent import last_hidden, run_left_padded, select_rows

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNConfig(ModelConfig):
    kind: ClassVar[str] = DECODER
    family: Literal["rnn"] = "rnn"
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    n_layer: int = 2
    n_embd: int = 128
    hidden: int = 256
    dropout: float = 0.0
    tie_weights: bool = False

    @model_validator(mode="after")
    def _sizes(self) -> RNNConfig:
        if self.n_layer < 1 or self.n_embd < 1 or self.hidden < 1:
            raise ValueError("n_layer, n_embd and hidden must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        return self


State = Tensor | tuple[Tensor, Tensor]  # (layers, B, H), or (h, c) for an LSTM


class RNNLM(nn.Module):
    Config = RNNConfig
    objective = "lm"
    kind = RNNConfig.kind
    max_context = None  # a recurrent model has no position limit

    def __init__(self, cfg: RNNConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, cfg.n_embd)
        self.rnn = _CELLS[cfg.cell](cfg.n_embd, cfg.hidden, num_layers=cfg.n_layer, batch_first=True,
                                    dropout=cfg.dropout if cfg.n_layer > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        # Tying needs the output width to equal the embedding width: project down when they differ.
        self.proj = nn.Linear(cfg.hidden, cfg.n_embd) if cfg.tie_weights and cfg.hidden != cfg.n_embd else nn.Identity()
        self.head = nn.Linear(cfg.n_embd if cfg.tie_weights else cfg.hidden, vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, V) logits from a zero initial state (the training path)."""
        out, _ = self.rnn(self.drop(self.embed(idx)))  # (B, T, H)
        return self.head(self.proj(self.drop(out)))   # (B, T, V)

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> State:
        h = torch.zeros(self.cfg.n_layer, cond.batch_size, self.cfg.hidden, device=cond.device)
        return (h, h.clone()) if self.cfg.cell == "lstm" else h

    def step(self, tokens: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
        state = run_left_padded(self.rnn, self.embed(tokens), state, mask)
        return self.head(self.proj(last_hidden(state))), state  # (B, V) from the last layer at the last real token

    def reorder(self, state: State, index: Tensor) -> State:
        return select_rows(state, index)
