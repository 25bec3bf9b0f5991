"""SeqGAN (Yu et al. 2017): an LSTM generator trained by maximum likelihood, then by policy gradient
against a CNN discriminator, with Monte Carlo rollout rewards.

    generator      an `rnn` language model (LSTM or GRU) that samples sentences token by token
    discriminator  for each filter width w: num_filters[w] filters over the embedded tokens -> ReLU ->
                   max over time (Kim 2014); the features concatenated -> highway layer -> dropout ->
                   one logit, real vs generated
    rollout        a delayed copy of the generator, theta_r <- u * theta_r + (1 - u) * theta_g before
                   each policy-gradient step (u = `rollout_update`), that completes partial sentences

The reward of token t of a generated sentence is the discriminator's mean probability of "real" over
`rollouts` completions of its first t tokens (the whole sentence for the last token). Rollouts run
in one batch of rollouts * B rows per position. The phases (MLE pretraining, discriminator
pretraining, alternating rounds) are the `gan` objective's. Generation uses the generator alone, so
every decoding strategy works.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import SENTENCE, ModelConfig
from ..tokenizers import BOS_ID, EOS_ID, PAD_ID
from .base import Conditioning, sample_tokens
from .rnn import RNNLM, RNNConfig


class GANConfig(ModelConfig):
    kind: ClassVar[str] = SENTENCE
    family: Literal["gan"] = "gan"
    context: int = Field(40, ge=2, description="the longest sentence in tokens, real or generated")
    cell: Literal["lstm", "gru"] = "lstm"
    n_embd: int = Field(64, ge=1)
    hidden: int = Field(128, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="generator dropout (MLE pretraining)")
    d_embd: int = Field(64, ge=1)
    filter_sizes: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 8, 10])
    num_filters: list[int] = Field(default_factory=lambda: [64, 128, 128, 128, 128, 64, 64, 64])
    d_dropout: float = Field(0.25, ge=0.0, lt=1.0)
    d_lr_scale: float = Field(1.0, gt=0.0, description="the discriminator's learning rate relative to train.lr")
    pretrain_g_steps: int = Field(2000, ge=0, description="maximum-likelihood steps before adversarial training")
    pretrain_d_steps: int = Field(500, ge=0, description="discriminator steps before adversarial training")
    g_steps: int = Field(1, ge=1, description="policy-gradient generator steps per adversarial round")
    d_steps: int = Field(3, ge=1, description="discriminator steps per adversarial round")
    rollouts: int = Field(16, ge=1, le=256, description="Monte Carlo completions per token for its reward")
    rollout_update: float = Field(0.8, ge=0.0, lt=1.0, description="how much of the old rollout policy each update keeps")

    @model_validator(mode="after")
    def _filters(self) -> GANConfig:
        if len(self.filter_sizes) != len(self.num_filters) or not self.filter_sizes:
            raise ValueError(f"filter_sizes ({len(self.filter_sizes)}) and num_filters ({len(self.num_filters)}) "
                             "must be non-empty lists of the same length")
        if min(self.filter_sizes) < 1 or min(self.num_filters) < 1:
            raise ValueError("filter sizes and filter counts must be positive")
        return self


class Discriminator(nn.Module):
    def __init__(self, vocab_size: int, cfg: GANConfig) -> None:
        super().__init__()
        self.widest = max(cfg.filter_sizes)
        self.embed = nn.Embedding(vocab_size, cfg.d_embd, padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.d_embd, n, w) for w, n in zip(cfg.filter_sizes, cfg.num_filters))
        width = sum(cfg.num_filters)
        self.gate = nn.Linear(width, width)
        self.transform = nn.Linear(width, width)
        self.drop = nn.Dropout(cfg.d_dropout)
        self.out = nn.Linear(width, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) sentences (`text <eos>`, padded) -> (B,) logits of being real."""
        if tokens.shape[1] < self.widest:  # every filter needs a full window
            tokens = nn.functional.pad(tokens, (0, self.widest - tokens.shape[1]), value=PAD_ID)
        x = self.embed(tokens).transpose(1, 2)  # (B, E, T)
        f = torch.cat([torch.relu(conv(x)).amax(2) for conv in self.convs], 1)  # (B, F)
        g = torch.sigmoid(self.gate(f))
        h = g * torch.relu(self.transform(f)) + (1.0 - g) * f  # highway
        return self.out(self.drop(h)).squeeze(1)


def _lm_config(cfg: GANConfig) -> RNNConfig:
    return RNNConfig(cell=cfg.cell, n_layer=cfg.layers, n_embd=cfg.n_embd, hidden=cfg.hidden, dropout=cfg.dropout,
                     context=cfg.context)


class SeqGAN(nn.Module):
    Config = GANConfig
    objective = "gan"
    kind = GANConfig.kind
    max_context = None

    def __init__(self, cfg: GANConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.generator = RNNLM(_lm_config(cfg), vocab_size)
        self.discriminator = Discriminator(vocab_size, cfg)
        self.rollout = RNNLM(_lm_config(cfg), vocab_size)
        self.rollout.requires_grad_(False)

    def lr_scales(self) -> dict[str, float]:
        return {"discriminator": self.cfg.d_lr_scale}

    def forward(self, idx: Tensor) -> Tensor:
        """The generator's next-token logits (B, T, V), as for any language model."""
        return self.generator(idx)

    # -- sampling and rewards --------------------------------------------------------------------------
    @torch.no_grad()
    def _complete(self, policy: RNNLM, logits: Tensor, state, steps: int, done: Tensor) -> Tensor:
        """Sample `steps` tokens from `policy` given the next-token `logits` and `state`; rows that are
        `done` (or reach <eos>) get padding."""
        out = logits.new_full((len(done), steps), PAD_ID, dtype=torch.long)
        for i in range(steps):
            if bool(done.all()):  # the rest is padding
                break
            tok = sample_tokens(logits).masked_fill(done, PAD_ID)
            out[:, i] = tok
            done = done | tok.eq(EOS_ID)
            if i + 1 < steps:
                logits, state = policy.step(tok[:, None], state)
        return out

    @torch.no_grad()
    def sample(self, n: int, policy: RNNLM | None = None) -> Tensor:
        """`n` sentences (`text <eos>`, padded, at most `context` tokens) sampled from the generator."""
        policy = policy or self.generator
        was_training = policy.training
        policy.eval()
        dev = self.generator.embed.weight.device
        logits, state = policy.step(torch.full((n, 1), BOS_ID, device=dev), policy.start(Conditioning(n, dev)))
        tokens = self._complete(policy, logits, state, self.cfg.context, torch.zeros(n, dtype=torch.bool, device=dev))
        policy.train(was_training)
        return tokens[:, : int(tokens.ne(PAD_ID).sum(1).max().clamp(min=1))]

    @torch.no_grad()
    def rewards(self, samples: Tensor) -> Tensor:
        """(B, T) generated sentences -> (B, T) rewards: for each prefix, the discriminator's mean
        probability of "real" over `rollouts` completions by the rollout policy."""
        B, T = samples.shape
        n = self.cfg.rollouts
        rows = samples.repeat(n, 1)  # (n*B, T)
        was_training = self.discriminator.training
        self.discriminator.eval()
        state = self.rollout.start(Conditioning(n * B, samples.device))
        _, state = self.rollout.step(torch.full((n * B, 1), BOS_ID, device=samples.device), state)
        rewards = samples.new_zeros(B, T, dtype=torch.float)
        for t in range(T - 1):
            logits, state = self.rollout.step(rows[:, t:t + 1], state)  # the prefix y_1..y_(t+1) is read
            done = rows[:, :t + 1].eq(EOS_ID).any(1) | rows[:, t].eq(PAD_ID)
            full = torch.cat([rows[:, :t + 1], self._complete(self.rollout, logits, state, T - 1 - t, done)], 1)
            rewards[:, t] = torch.sigmoid(self.discriminator(full)).view(n, B).mean(0)
        rewards[:, T - 1] = torch.sigmoid(self.discriminator(samples))
        self.discriminator.train(was_training)
        return rewards * samples.ne(PAD_ID)

    @torch.no_grad()
    def update_rollout(self, keep: float) -> None:
        """theta_rollout <- keep * theta_rollout + (1 - keep) * theta_generator (keep 0: a copy)."""
        for r, g in zip(self.rollout.parameters(), self.generator.parameters()):
            r.mul_(keep).add_(g, alpha=1.0 - keep)

    # -- the step interface: the generator -----------------------------------------------------------
    def start(self, cond: Conditioning):
        return self.generator.start(cond)

    def step(self, tokens: Tensor, state, mask: Tensor | None = None):
        return self.generator.step(tokens, state, mask)

    def reorder(self, state, index: Tensor):
        return self.generator.reorder(state, index)
