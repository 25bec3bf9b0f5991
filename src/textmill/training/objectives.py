"""Per-family training objectives. The trainer loop is shared; only the loss differs.

Each model class names its objective (`objective = "lm"`); the registry builds it from the run config.
An objective says what data it trains on (`data`: a token stream, source/target pairs, or
sentences), turns a batch into a loss plus numbers worth logging, and scores a validation set; its
`val_loss` picks the checkpoint to keep (the best one, or the latest when `select_best` is False).
`counts` (n-gram models) is fitted in one pass by `fit_counts` (counts.py) instead of by the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..data import LMBatch, PairBatch, PairDataset, TokenStream
from ..data.datasets import IGNORE, SentenceBatch, SentenceDataset
from ..registry import Registry
from ..tokenizers import BOS_ID, PAD_ID


class Objective(Protocol):
    data: Literal["stream", "pairs", "sentences"]
    select_best: bool

    def loss(self, model: nn.Module, batch: Any, step: int) -> tuple[Tensor, dict[str, float]]:
        """The mean training loss of a batch at `step`, and extra numbers to log."""
        ...

    def evaluate(self, model: nn.Module, data: Any, batch_size: int, max_batches: int | None = None) -> dict[str, Any]:
        """Validation metrics; `val_loss` (lower is better) picks the best checkpoint."""
        ...


OBJECTIVES: Registry[Callable[[RunConfig], Objective]] = Registry("objective")


def cross_entropy(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Token cross-entropy of (B, T, V) logits; IGNORE targets (padding) are skipped."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                           label_smoothing=label_smoothing, reduction=reduction)


def token_metrics(nll_sum: float, count: int, tokens_per_char: float) -> dict[str, float]:
    """Mean NLL per predicted token (nats), its perplexity, and bits per character."""
    loss = nll_sum / max(count, 1)
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0)), "val_bpc": loss * tokens_per_char / math.log(2)}


@torch.no_grad()
def token_nll(model: nn.Module, batches: Iterable[tuple[tuple[Tensor, ...], Tensor]]) -> tuple[float, int]:
    """Summed NLL (nats) and number of non-padding targets over `(inputs, targets)` batches, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in batches:
        total += float(cross_entropy(model(*inputs), targets, reduction="sum"))
        count += int(targets.ne(IGNORE).sum())
    model.train(was_training)
    return total, count


def stream_nll(model: nn.Module, data: TokenStream, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
    """Token metrics of a language model over the fixed windows of a stream."""
    batches = (((b.inputs,), b.targets) for b in data.batches(batch_size, max_batches))
    return token_metrics(*token_nll(model, batches), data.tokens_per_char)


@OBJECTIVES.register("lm")
class LanguageModelling:
    """Next-token cross-entropy over windows of a token stream."""

    data = "stream"
    select_best = True

    def __init__(self, cfg: RunConfig) -> None:
        self.label_smoothing = cfg.train.label_smoothing

    def loss(self, model: nn.Module, batch: LMBatch, step: int) -> tuple[Tensor, dict[str, float]]:
        return cross_entropy(model(batch.inputs), batch.targets, self.label_smoothing), {}

    def evaluate(self, model: nn.Module, data: TokenStream, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        return stream_nll(model, data, batch_size, max_batches)


@OBJECTIVES.register("seq2seq")
class SequenceToSequence:
    """Cross-entropy of each target token given the source and the target prefix (teacher forcing)."""

    data = "pairs"
    select_best = True

    def __init__(self, cfg: RunConfig) -> None:
        self.label_smoothing = cfg.train.label_smoothing

    def loss(self, model: nn.Module, batch: PairBatch, step: int) -> tuple[Tensor, dict[str, float]]:
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        return cross_entropy(logits, batch.tgt_out, self.label_smoothing), {}

    def evaluate(self, model: nn.Module, data: PairDataset, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        return pairs_nll(model, data, batch_size, max_batches)


def pairs_nll(model: nn.Module, data: PairDataset, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
    """Token metrics of an encoder-decoder over the targets of pairs, teacher-forced."""
    batches = (((b.src, b.src_mask, b.tgt_in), b.tgt_out) for b in data.batches(batch_size, max_batches))
    return token_metrics(*token_nll(model, batches), data.tokens_per_char)


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) for each example and latent dimension: (B, Z)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


@OBJECTIVES.register("vae_elbo")
class EvidenceLowerBound:
    """The negative ELBO of a text VAE: reconstruction NLL + beta * KL(q(z|x) || p(z)), per token.

    beta follows `model.kl_schedule`: `constant` (1), `linear` (0 -> 1 over `kl_warmup_steps`, Bowman et
    al. 2016) or `cyclical` (Fu et al. 2019: cycles of `kl_cycle_steps`, rising over the first
    `kl_cycle_ratio` of each and 1 for the rest). With `free_bits` > 0, each latent dimension's KL
    (averaged over the batch) counts as at least that many nats (Kingma et al. 2016), so the encoder
    is not pushed to collapse the dimensions it barely uses. CVAE runs add `adversary` times the
    cross-entropy of a label classifier reading z through a gradient reversal; `bow` > 0 adds that
    many times the bag-of-words NLL of the sentence given z, per token."""

    data = "sentences"
    select_best = True

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg.model

    def beta(self, step: int) -> float:
        c = self.cfg
        if c.kl_schedule == "constant":
            return 1.0
        if c.kl_schedule == "linear":
            return min(1.0, step / max(c.kl_warmup_steps, 1))
        position = (step % c.kl_cycle_steps) / c.kl_cycle_steps
        return min(1.0, position / c.kl_cycle_ratio)

    def loss(self, model: nn.Module, batch: SentenceBatch, step: int) -> tuple[Tensor, dict[str, float]]:
        out = model(batch.tokens, batch.labels)
        recon = cross_entropy(out.logits, batch.targets, reduction="sum")
        kl = kl_per_dim(out.mu, out.logvar)  # (B, Z)
        B = kl.shape[0]
        kl_term = kl.mean(0).clamp(min=self.cfg.free_bits).sum() * B if self.cfg.free_bits > 0 else kl.sum()
        beta = self.beta(step)
        n_tokens = max(batch.n_tokens, 1)
        loss = (recon + beta * kl_term) / n_tokens
        logs = {"recon": recon.item() / B, "kl": kl.sum().item() / B, "beta": beta}
        if out.adversary_loss is not None:
            loss = loss + self.cfg.adversary * out.adversary_loss
            logs["adversary_loss"] = out.adversary_loss.item()
        if out.bow_nll is not None:
            loss = loss + self.cfg.bow * out.bow_nll / n_tokens
            logs["bow"] = out.bow_nll.item() / B
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: SentenceDataset, batch_size: int, max_batches: int | None = None) -> dict[str, float]:
        was_training = model.training
        model.eval()
        recon = kl = 0.0
        tokens = sentences = 0
        means = []
        for batch in data.batches(batch_size, max_batches):
            out = model(batch.tokens, batch.labels)
            recon += float(cross_entropy(out.logits, batch.targets, reduction="sum"))
            kl += float(kl_per_dim(out.mu, out.logvar).sum())
            tokens += batch.n_tokens
            sentences += batch.tokens.shape[0]
            means.append(out.mu)
        model.train(was_training)
        metrics = token_metrics(recon + kl, tokens, data.tokens_per_char)  # the ELBO bounds the NLL from above
        return {**metrics, "val_recon": recon / sentences, "val_kl": kl / sentences,
                "active_units": active_units(torch.cat(means))}


def active_units(mu: Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data (Burda et al. 2016): Var_x(E_q[z_d]) > 0.01."""
    return int((mu.var(0, unbiased=False) > threshold).sum()) if len(mu) > 1 else 0


@OBJECTIVES.register("gan")
class Adversarial:
    """SeqGAN's schedule, a function of the step alone (so a resumed run repeats it exactly):
    `pretrain_g_steps` of maximum likelihood, `pretrain_d_steps` of discriminator training, then
    rounds of `g_steps` policy-gradient steps and `d_steps` discriminator steps.

    - mle: next-token cross-entropy of real sentences;
    - d: binary cross-entropy of the discriminator on real sentences and as many fresh samples;
    - pg: -sum_t log G(y_t | y_<t) * Q_t over fresh samples, Q from rollouts (REINFORCE, no baseline,
      as in SeqGAN: a per-position mean-reward baseline, measured on COCO, taught the generator to
      postpone <eos> and lowered BLEU-2 at the published Self-BLEU from 79.3 to 74.5); the rollout
      policy moves toward the generator first (a plain copy at the first adversarial step).

    Adversarial training trades likelihood for sample quality, so the latest checkpoint is kept, not
    the one with the best validation NLL."""

    data = "sentences"
    select_best = False

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg.model
        self.adversarial_start = self.cfg.pretrain_g_steps + self.cfg.pretrain_d_steps

    def phase(self, step: int) -> Literal["mle", "d", "pg"]:
        c = self.cfg
        if step < c.pretrain_g_steps:
            return "mle"
        if step < self.adversarial_start:
            return "d"
        return "pg" if (step - self.adversarial_start) % (c.g_steps + c.d_steps) < c.g_steps else "d"

    def loss(self, model: nn.Module, batch: SentenceBatch, step: int) -> tuple[Tensor, dict[str, float]]:
        phase = self.phase(step)
        if phase == "mle":
            return cross_entropy(model.generator(batch.tgt_in), batch.targets), {}
        if phase == "d":
            real = batch.tgt_out
            fake = model.sample(real.shape[0])
            logits = torch.cat([model.discriminator(real), model.discriminator(fake)])
            truth = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, truth)
            return loss, {"d_loss": loss.item(), "d_accuracy": float(((logits > 0).float() == truth).float().mean())}
        model.update_rollout(0.0 if step == self.adversarial_start else self.cfg.rollout_update)
        samples = model.sample(batch.tgt_out.shape[0])
        rewards = model.rewards(samples)  # (B, T), 0 at padding
        real = samples.ne(PAD_ID)
        inputs = torch.cat([torch.full_like(samples[:, :1], BOS_ID), samples[:, :-1]], 1)  # <bos> y_1 .. y_(T-1)
        logp = model.generator(inputs).float().log_softmax(-1).gather(2, samples[:, :, None]).squeeze(2)  # (B, T)
        loss = -(logp * rewards).sum() / real.sum().clamp(min=1)
        return loss, {"reward": float(rewards.sum() / real.sum().clamp(min=1))}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: SentenceDataset, batch_size: int, max_batches: int | None = None) -> dict[str, Any]:
        batches = [b for b in data.batches(batch_size, max_batches)]
        metrics = token_metrics(*token_nll(model, (((b.tgt_in,), b.targets) for b in batches)), data.tokens_per_char)
        was_training = model.training
        model.eval()
        real = batches[0].tgt_out
        fake = model.sample(len(real))
        correct = (model.discriminator(real) > 0).float().sum() + (model.discriminator(fake) <= 0).float().sum()
        model.train(was_training)
        samples = [data.tokenizer.decode(row) for row in fake[:5].tolist()]
        return {**metrics, "d_accuracy": float(correct) / (2 * len(real)), "samples": samples}
