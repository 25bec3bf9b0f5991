"""Text VAE (Bowman et al. 2016) and its label-conditioned form, the CVAE.

    encoder    h = [h_fw; h_bw] of a bidirectional GRU/LSTM over `text <eos>` (packed)
    posterior  q(z|x) = N(mu(h), diag(exp(logvar(h)))),   z = mu + sigma * eps   (reparameterised)
    decoder    c = [z; e_y] (CVAE: e_y embeds the label),  s_0 = tanh(W c),
               s_t = RNN([E[x_{t-1}]; c], s_{t-1})          (c at every step when `z_every_step`)
    output     logits_t = W_out s_t

The CVAE's encoder does not read the label, so a sentence's z can be decoded with another label
(style transfer); `adversary` > 0 adds a classifier that tries to read the label from z, trained
through a gradient reversal so the encoder learns to keep the label out of z. Training applies word
dropout to the decoder inputs (each word becomes `<unk>` with probability `word_dropout`), which
makes the decoder lean on z; `bow` > 0 adds a bag-of-words loss (Zhao et al. 2017): an MLP reading z
alone predicts every word of the sentence, so z has to carry them. The KL schedule and free bits
belong to the objective (`vae_elbo`).

Generation runs the decoder through the step interface given `z` (and `label`) in the
conditioning, so every decoding strategy works; `importance_nll` estimates log p(x) with k
importance samples (Burda et al. 2016) for test NLL and perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import SENTENCE, ModelConfig
from ..tokenizers import UNK_ID
from .base import Conditioning
from .layers.recurrent import Hidden, encode_right_padded, last_hidden, run_left_padded, select_rows, top_layer

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class VAEConfig(ModelConfig):
    kind: ClassVar[str] = SENTENCE
    family: Literal["vae"] = "vae"
    context: int = Field(40, ge=1, description="the longest sentence in tokens (longer ones are cut)")
    cell: Literal["gru", "lstm"] = "lstm"
    n_embd: int = Field(256, ge=1)
    hidden: int = Field(512, ge=2, description="decoder width; the bidirectional encoder has hidden/2 per direction")
    layers: int = Field(1, ge=1, description="layers of the encoder and of the decoder")
    latent: int = Field(32, ge=1, description="dimensions of z")
    z_every_step: bool = Field(True, description="feed z to the decoder at every step, not only as its start state")
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    word_dropout: float = Field(0.25, ge=0.0, le=1.0, description="share of decoder input words replaced by <unk>")
    kl_schedule: Literal["constant", "linear", "cyclical"] = "linear"
    kl_warmup_steps: int = Field(2000, ge=1, description="linear: steps for beta to go from 0 to 1")
    kl_cycle_steps: int = Field(2000, ge=1, description="cyclical: steps per cycle")
    kl_cycle_ratio: float = Field(0.5, gt=0.0, le=1.0, description="cyclical: share of a cycle spent raising beta")
    free_bits: float = Field(0.0, ge=0.0, description="minimum KL per latent dimension in nats (0: off)")
    bow: float = Field(0.0, ge=0.0, description="weight of the bag-of-words loss: the sentence's words predicted from z "
                                                "alone, which makes z carry them (0: off)")

    @model_validator(mode="after")
    def _even_hidden(self) -> VAEConfig:
        if self.hidden % 2:
            raise ValueError(f"hidden ({self.hidden}) is split between the encoder's two directions: make it even")
        return self


class CVAEConfig(VAEConfig):
    family: Literal["cvae"] = "cvae"
    label_dim: int = Field(16, ge=1, description="width of the label embedding")
    adversary: float = Field(0.0, ge=0.0, description="weight of the adversarial label classifier on z (0: off)")


class VAEOutput(NamedTuple):
    logits: Tensor                 # (B, T, V)
    mu: Tensor                     # (B, Z)
    logvar: Tensor                 # (B, Z)
    adversary_loss: Tensor | None  # cross-entropy of the label classifier reading z, if any
    bow_nll: Tensor | None         # summed NLL of the sentence's words under the bag-of-words head, if any


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


@dataclass
class VAEState:
    hidden: Hidden  # decoder state (layers, B, H)
    cond: Tensor    # (B, Z [+ L]) z and the label embedding, fed at every step


class VAE(nn.Module):
    Config = VAEConfig
    objective = "vae_elbo"
    kind = VAEConfig.kind
    latent = True  # an encoder to a latent space: reconstruct, interpolate, transfer
    labelled = False
    max_context = None  # a recurrent decoder has no position limit

    def __init__(self, cfg: VAEConfig, vocab_size: int, n_labels: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, H, Z, L = cfg.n_embd, cfg.hidden, cfg.latent, cfg.layers
        rnn = _CELLS[cfg.cell]
        self.embed = nn.Embedding(vocab_size, E, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = rnn(E, H // 2, num_layers=L, batch_first=True, bidirectional=True,
                           dropout=cfg.dropout if L > 1 else 0.0)
        self.to_mu = nn.Linear(H, Z)
        self.to_logvar = nn.Linear(H, Z)
        self.label_embed = nn.Embedding(n_labels, cfg.label_dim) if self.labelled else None
        cond = Z + (cfg.label_dim if self.labelled else 0)
        self.to_hidden = nn.Linear(cond, H * L)
        self.to_cell = nn.Linear(cond, H * L) if cfg.cell == "lstm" else None
        self.decoder = rnn(E + (cond if cfg.z_every_step else 0), H, num_layers=L, batch_first=True,
                           dropout=cfg.dropout if L > 1 else 0.0)
        self.head = nn.Linear(H, vocab_size)
        adversary = getattr(cfg, "adversary", 0.0)
        self.adversary = nn.Sequential(nn.Linear(Z, H // 2), nn.ReLU(), nn.Linear(H // 2, n_labels)) if adversary else None
        self.bow_head = nn.Sequential(nn.Linear(Z, H), nn.Tanh(), nn.Linear(H, vocab_size)) if cfg.bow else None
        nn.init.normal_(self.embed.weight, mean=0.0, std=E ** -0.5)

    # -- parts ---------------------------------------------------------------------------------------
    def encode(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T+1) `<bos> text <eos>` batches -> posterior mean and log-variance, each (B, Z)."""
        x = tokens[:, 1:]  # the encoder reads `text <eos>`
        _, final = encode_right_padded(self.encoder, self.drop(self.embed(x)), x.ne(0))
        h = top_layer(final[0] if isinstance(final, tuple) else final, self.cfg.layers, True)  # (B, H)
        return self.to_mu(h), self.to_logvar(h)

    def condition(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """What the decoder is conditioned on: z, and the label's embedding for a CVAE."""
        if self.label_embed is None:
            return z
        if labels is None or bool((labels < 0).any()):
            raise ValueError("a CVAE decodes with a label for every row")
        return torch.cat([z, self.label_embed(labels)], -1)

    def initial_state(self, cond: Tensor) -> Hidden:
        spread = lambda x: x.view(x.shape[0], self.cfg.layers, -1).transpose(0, 1).contiguous()  # noqa: E731
        h = spread(torch.tanh(self.to_hidden(cond)))
        return (h, spread(torch.tanh(self.to_cell(cond)))) if self.to_cell is not None else h

    def decode(self, tgt_in: Tensor, cond: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) of `tgt_in` (B, T) given the conditioning (B, C)."""
        if self.training and self.cfg.word_dropout > 0:
            drop = torch.rand(tgt_in.shape, device=tgt_in.device) < self.cfg.word_dropout
            drop[:, 0] = False  # <bos> stays
            tgt_in = tgt_in.masked_fill(drop & tgt_in.ne(0), UNK_ID)
        x = self.drop(self.embed(tgt_in))  # (B, T, E)
        if self.cfg.z_every_step:
            x = torch.cat([x, cond[:, None].expand(-1, x.shape[1], -1)], -1)
        out, _ = self.decoder(x, self.initial_state(cond))  # (B, T, H)
        return self.head(self.drop(out))

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> VAEOutput:
        """Encode `<bos> text <eos>` batches, draw z from the posterior and reconstruct them."""
        mu, logvar = self.encode(tokens)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decode(tokens[:, :-1], self.condition(z, labels))
        adversary_loss = bow_nll = None
        if self.adversary is not None and self.training:
            adversary_loss = F.cross_entropy(self.adversary(_ReverseGradient.apply(z)), labels)
        if self.bow_head is not None and self.training:
            words = tokens[:, 1:]  # `text <eos>`, padded with 0
            log_probs = F.log_softmax(self.bow_head(z).float(), -1).gather(1, words)  # (B, T)
            bow_nll = -(log_probs * words.ne(0)).sum()
        return VAEOutput(logits, mu, logvar, adversary_loss, bow_nll)

    @torch.no_grad()
    def importance_nll(self, tokens: Tensor, labels: Tensor | None = None, samples: int = 50) -> Tensor:
        """-log p(x) per sentence (B,), estimated as -log mean_k p(x, z_k) / q(z_k | x), z_k ~ q(z|x)."""
        mu, logvar = self.encode(tokens)
        std = torch.exp(0.5 * logvar)
        targets = tokens[:, 1:]
        log_w = []
        for _ in range(samples):
            z = mu + torch.randn_like(mu) * std
            logits = self.decode(tokens[:, :-1], self.condition(z, labels))
            log_px = -F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=0, reduction="none").sum(1)
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_qz = -0.5 * (((z - mu) / std).pow(2) + math.log(2 * math.pi) + logvar).sum(1)
            log_w.append(log_px + log_pz - log_qz)
        return -(torch.logsumexp(torch.stack(log_w), 0) - math.log(samples))

    # -- the step interface: the decoder given z (and a label) ---------------------------------------
    def start(self, cond: Conditioning) -> VAEState:
        c = self.condition(cond.extras["z"], cond.extras.get("label"))
        return VAEState(self.initial_state(c), c)

    def step(self, tokens: Tensor, state: VAEState, mask: Tensor | None = None) -> tuple[Tensor, VAEState]:
        x = self.embed(tokens)  # (B, T, E)
        if self.cfg.z_every_step:
            x = torch.cat([x, state.cond[:, None].expand(-1, x.shape[1], -1)], -1)
        state.hidden = run_left_padded(self.decoder, x, state.hidden, mask)
        return self.head(last_hidden(state.hidden)), state  # (B, V)

    def reorder(self, state: VAEState, index: Tensor) -> VAEState:
        return VAEState(select_rows(state.hidden, index), state.cond.index_select(0, index))


class CVAE(VAE):
    Config = CVAEConfig
    labelled = True

    def __init__(self, cfg: CVAEConfig, vocab_size: int, n_labels: int = 0) -> None:
        if n_labels < 1:
            raise ValueError("a CVAE needs the number of labels")
        super().__init__(cfg, vocab_size, n_labels)
