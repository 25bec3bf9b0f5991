"""The step interface that every token model exposes, so that one decoding engine serves all.

    state = model.start(cond)                       # encode source / init hidden / empty KV cache
    logits, state = model.step(tokens, state, mask) # (B, T) new tokens -> (B, V) next-token logits
    state = model.reorder(state, index)             # keep rows `index` (beam search)

`mask` (B, T) marks real tokens (True) and left padding (False) among the new tokens; it is only
needed for the first, padded prompt step and defaults to all real. Encoder-decoder models read their
source from `cond.extras["source"]` and `["source_mask"]` (B, S) in `start`; their target prompts
are never padded. Models that do not predict tokens (the template grammar) implement `generate(...)` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@dataclass
class Conditioning:
    """What a model is conditioned on before the first token: the batch size, and for conditional
    families their source, latent code or label (carried in `extras` by name)."""

    batch_size: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    extras: dict[str, Any] = field(default_factory=dict)

    def repeat_interleave(self, k: int) -> Conditioning:
        """Each row `k` times in a row (beams, several samples per prompt): tensors repeat along dim 0."""
        if k == 1:
            return self
        extras = {n: v.repeat_interleave(k, 0) if torch.is_tensor(v) else v for n, v in self.extras.items()}
        return Conditioning(self.batch_size * k, self.device, extras)


State = Any


@runtime_checkable
class StepModel(Protocol):
    #: The longest sequence the model can attend to (None: unbounded, e.g. an RNN).
    max_context: int | None
    #: config.DECODER, ENCODER_DECODER or SENTENCE (a family's config class declares it).
    kind: str

    def start(self, cond: Conditioning) -> State: ...

    def step(self, tokens: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]: ...

    def reorder(self, state: State, index: Tensor) -> State: ...


def count_parameters(model: torch.nn.Module) -> int:
    """Parameters, counting tied weights once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def sample_tokens(logits: Tensor, generator: torch.Generator | None = None, uniforms: Tensor | None = None) -> Tensor:
    """(B, V) next-token logits -> (B,) tokens drawn from their softmax (-inf: never drawn).

    Inverse-CDF sampling: one uniform number per row against the row's cumulative (unnormalised)
    probabilities. On CPU `torch.multinomial` draws an exponential number for every vocabulary entry,
    which is ~4x slower for a 5,000-word vocabulary and 1,024 rows (SeqGAN's rollouts). A token of
    probability 0 adds exactly 0 to the running sum, so it is never drawn; if rounding puts the number
    at the sum itself, the last token of positive probability is drawn. `uniforms` (B, 1): the numbers
    to draw with, instead of drawing them from `generator` (rows of several generators at once)."""
    logits = logits.float()
    cdf = (logits - logits.amax(-1, keepdim=True)).exp_().cumsum_(-1)
    total = cdf[:, -1:].contiguous()
    if uniforms is None:
        uniforms = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device)
    u = uniforms * total
    idx = torch.searchsorted(cdf, u, right=True)
    return torch.minimum(idx, torch.searchsorted(cdf, total)).squeeze(1)
