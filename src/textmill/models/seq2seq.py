"""seq2seq: an RNN encoder-decoder with attention (Sutskever 2014, Bahdanau 2015, Luong 2015).

    encoder   h_1..h_S = (Bi)GRU/LSTM(E_src[x])                 packed, so padding never enters the state
    bridge    s_0 = tanh(W_b [h_S fw; h_1 bw])                   the decoder starts from the encoder's summary
    decoder   per target step, with e = E_tgt[y_{t-1}]:
      none            s_t = RNN(e, s_{t-1});                 a_t = tanh(W_c s_t)
      bahdanau        c_t = attend(s_{t-1});  s_t = RNN([e; c_t], s_{t-1});  a_t = tanh(W_c [s_t; c_t])
      luong-dot/general  s_t = RNN([e; a_{t-1}] if input_feeding else e, s_{t-1});
                      c_t = attend(s_t);  a_t = tanh(W_c [s_t; c_t])
    output    logits = W_out a_t                                 W_out can be the target embedding (tie_weights)

Scores: bahdanau v^T tanh(W_q s + W_k h_j); luong-dot s^T h_j; luong-general s^T W h_j. Keys that do
not depend on the query (W_k h_j, W h_j) are computed once per source. Encoder states are `hidden`
wide (each direction of a bidirectional encoder has hidden / 2 units).

Training is teacher-forced; `teacher_forcing < 1` feeds the model's own previous prediction for a
random share of the tokens (scheduled sampling, Bengio et al. 2015). When no step depends on the
previous one (luong without input feeding, or no attention, with full teacher forcing) the decoder
runs over the whole target in one fused call; otherwise it loops over the target positions.

Weights keep PyTorch's fan-in scaled initialisation and embeddings start at N(0, 1/E). (The
uniform(-0.1, 0.1) of Luong et al. suits their 1000-unit layers; at small widths it leaves the
signal so weak that the decoder settles on the unigram distribution and tanh saturates.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import ENCODER_DECODER, ModelConfig
from ..errors import ConfigError
from .base import Conditioning
from .layers.recurrent import Hidden, encode_right_padded, last_hidden, select_rows, top_layer

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class Seq2SeqConfig(ModelConfig):
    kind: ClassVar[str] = ENCODER_DECODER
    family: Literal["seq2seq"] = "seq2seq"
    context: int = Field(128, ge=1, description="the longest target in tokens (longer training targets are cut)")
    max_source_len: int = Field(256, ge=2, description="the longest source in tokens (longer sources are cut)")
    cell: Literal["gru", "lstm"] = "gru"
    n_embd: int = Field(256, ge=1)
    hidden: int = Field(512, ge=2, description="decoder state width; also the width of the encoder's states")
    encoder_layers: int = Field(1, ge=1)
    decoder_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    attention: Literal["none", "bahdanau", "luong-dot", "luong-general"] = "bahdanau"
    input_feeding: bool = Field(True, description="luong: feed the previous attentional vector into the next step")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    teacher_forcing: float = Field(1.0, ge=0.0, le=1.0, description="share of training steps fed the gold previous token")
    tie_weights: bool = Field(True, description="the output layer reuses the target embedding")
    share_embeddings: bool = Field(False, description="one embedding matrix for source and target (shared vocabulary)")

    @model_validator(mode="after")
    def _sizes(self) -> Seq2SeqConfig:
        if self.bidirectional and self.hidden % 2:
            raise ValueError(f"a bidirectional encoder splits hidden ({self.hidden}) between two directions: make it even")
        return self


@dataclass
class Seq2SeqState:
    memory: Tensor          # (B, S, H) encoder states
    keys: Tensor            # (B, S, A) attention keys precomputed from the memory
    src_mask: Tensor        # (B, S) True at real source tokens
    hidden: Hidden          # decoder state (layers, B, H)
    feed: Tensor            # (B, E) the previous attentional vector (input feeding)


class Seq2Seq(nn.Module):
    Config = Seq2SeqConfig
    objective = "seq2seq"
    kind = Seq2SeqConfig.kind
    max_context = None  # a recurrent decoder has no position limit

    def __init__(self, cfg: Seq2SeqConfig, vocab_size: int, source_vocab_size: int | None = None) -> None:
        super().__init__()
        if cfg.share_embeddings and source_vocab_size is not None:
            raise ValueError("share_embeddings needs one vocabulary for source and target")
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, H, dirs = cfg.n_embd, cfg.hidden, 2 if cfg.bidirectional else 1
        self.tgt_embed = nn.Embedding(vocab_size, E, padding_idx=0)
        self.src_embed = self.tgt_embed if cfg.share_embeddings else nn.Embedding(source_vocab_size or vocab_size, E, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        rnn = _CELLS[cfg.cell]
        self.encoder = rnn(E, H // dirs, num_layers=cfg.encoder_layers, batch_first=True, bidirectional=cfg.bidirectional,
                           dropout=cfg.dropout if cfg.encoder_layers > 1 else 0.0)
        self.bridge = nn.Linear(H, H * cfg.decoder_layers)
        self.bridge_cell = nn.Linear(H, H * cfg.decoder_layers) if cfg.cell == "lstm" else None
        attn = cfg.attention
        feeds = attn == "bahdanau" or (attn.startswith("luong") and cfg.input_feeding)
        self.decoder = rnn(E + (H if attn == "bahdanau" else E if feeds else 0), H, num_layers=cfg.decoder_layers,
                           batch_first=True, dropout=cfg.dropout if cfg.decoder_layers > 1 else 0.0)
        self.key: nn.Linear | None = None  # keys are the memory itself for luong-dot
        if attn == "bahdanau":
            self.query = nn.Linear(H, H)
            self.key = nn.Linear(H, H, bias=False)
            self.energy = nn.Linear(H, 1, bias=False)
        elif attn == "luong-general":
            self.key = nn.Linear(H, H, bias=False)
        # No bias, as in Luong et al.: with one, tanh saturates into a constant vector early in training.
        self.combine = nn.Linear(H if attn == "none" else 2 * H, E, bias=False)
        self.head = nn.Linear(E, vocab_size)
        for emb in {id(e): e for e in (self.tgt_embed, self.src_embed)}.values():
            nn.init.normal_(emb.weight, mean=0.0, std=E ** -0.5)  # unit-scale logits when tied to the output layer
        if cfg.tie_weights:
            self.head.weight = self.tgt_embed.weight

    # -- encoder and attention -----------------------------------------------------------------------
    def encode(self, src: Tensor, src_mask: Tensor) -> Seq2SeqState:
        """The decoder's start state for a batch of right-padded sources."""
        memory, final = encode_right_padded(self.encoder, self.drop(self.src_embed(src)), src_mask)  # (B, S, H)
        top = lambda h: top_layer(h, self.cfg.encoder_layers, self.cfg.bidirectional)  # noqa: E731  (B, H)
        hidden: Hidden = self._spread(torch.tanh(self.bridge(top(final[0] if isinstance(final, tuple) else final))))
        if self.bridge_cell is not None:
            hidden = (hidden, self._spread(torch.tanh(self.bridge_cell(top(final[1])))))
        keys = memory if self.key is None else self.key(memory)  # (B, S, H)
        return Seq2SeqState(memory, keys, src_mask, hidden, memory.new_zeros(src.shape[0], self.cfg.n_embd))

    def _spread(self, x: Tensor) -> Tensor:
        """(B, H * layers) -> (layers, B, H)."""
        return x.view(x.shape[0], self.cfg.decoder_layers, -1).transpose(0, 1).contiguous()

    def attend(self, query: Tensor, state: Seq2SeqState) -> tuple[Tensor, Tensor]:
        """query (B, T, H) -> context (B, T, H) and weights (B, T, S) over the unmasked source."""
        if self.cfg.attention == "bahdanau":
            scores = self.energy(torch.tanh(self.query(query)[:, :, None] + state.keys[:, None])).squeeze(-1)  # (B, T, S)
        else:
            scores = query @ state.keys.transpose(1, 2)  # (B, T, S)
        weights = scores.masked_fill(~state.src_mask[:, None, :], float("-inf")).softmax(-1)
        return weights @ state.memory, weights

    # -- decoder -------------------------------------------------------------------------------------
    def _decode(self, emb: Tensor, state: Seq2SeqState) -> tuple[Tensor, Tensor | None]:
        """Run the decoder over `emb` (B, T, E) from `state` (updated in place); return the attentional
        vectors (B, T, E) and attention weights (B, T, S). T > 1 only where no step feeds the next."""
        attn = self.cfg.attention
        weights = None
        if attn == "bahdanau":
            context, weights = self.attend(last_hidden(state.hidden)[:, None], state)  # query (B, 1, H)
            out, state.hidden = self.decoder(torch.cat([emb, context], -1), state.hidden)
        elif attn != "none" and self.cfg.input_feeding:
            out, state.hidden = self.decoder(torch.cat([emb, state.feed[:, None]], -1), state.hidden)
        else:
            out, state.hidden = self.decoder(emb, state.hidden)  # (B, T, H)
        if attn == "none":
            vec = torch.tanh(self.combine(out))
        else:
            if attn != "bahdanau":
                context, weights = self.attend(out, state)
            vec = torch.tanh(self.combine(torch.cat([out, context], -1)))  # (B, T, E)
        state.feed = vec[:, -1]
        return vec, weights

    def _parallel(self) -> bool:
        return self.cfg.attention != "bahdanau" and not (self.cfg.attention != "none" and self.cfg.input_feeding)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_weights: bool = False):
        """Logits (B, T, V) for every target position; with `need_weights`, also the attention
        weights (B, T, S)."""
        state = self.encode(src, src_mask)
        sampled = self.training and self.cfg.teacher_forcing < 1.0
        if self._parallel() and not sampled:
            vec, weights = self._decode(self.drop(self.tgt_embed(tgt_in)), state)
            logits = self.head(self.drop(vec))
        else:
            steps, all_weights, token = [], [], tgt_in[:, 0]
            for t in range(tgt_in.shape[1]):
                if t and sampled:  # scheduled sampling: some rows get the model's own previous guess
                    gold = torch.rand(tgt_in.shape[0], device=tgt_in.device) < self.cfg.teacher_forcing
                    token = torch.where(gold, tgt_in[:, t], steps[-1][:, 0].detach().argmax(-1))
                elif t:
                    token = tgt_in[:, t]
                vec, w = self._decode(self.drop(self.tgt_embed(token[:, None])), state)
                steps.append(self.head(self.drop(vec)))
                all_weights.append(w)
            logits = torch.cat(steps, 1)  # (B, T, V)
            weights = None if all_weights[0] is None else torch.cat(all_weights, 1)
        if need_weights:
            if weights is None:
                raise ConfigError("this model has no attention to show (model.attention: none)")
            return logits, weights
        return logits

    # -- the step interface ------------------------------------------------------------------------
    def start(self, cond: Conditioning) -> Seq2SeqState:
        return self.encode(cond.extras["source"], cond.extras["source_mask"])

    def step(self, tokens: Tensor, state: Seq2SeqState, mask: Tensor | None = None) -> tuple[Tensor, Seq2SeqState]:
        if mask is not None and not bool(mask.all()):
            raise ValueError("encoder-decoder models take unpadded target prompts (every row starts with <bos>)")
        for t in range(tokens.shape[1]):
            vec, _ = self._decode(self.tgt_embed(tokens[:, t:t + 1]), state)
        return self.head(vec[:, -1]), state  # (B, V)

    def reorder(self, state: Seq2SeqState, index: Tensor) -> Seq2SeqState:
        return Seq2SeqState(state.memory.index_select(0, index), state.keys.index_select(0, index),
                            state.src_mask.index_select(0, index), select_rows(state.hidden, index),
                            state.feed.index_select(0, index))
