"""Generation with latent-variable models (`vae`, `cvae`): sampling from the prior, reconstruction,
interpolation between sentences, and for a CVAE text with a chosen label and style transfer.

Prompts are decoder prefixes, as for language models (usually empty). The decoder is conditioned on
`z` from the conditioning (`conditioning={"z": (B, Z) tensor}`), otherwise on a draw from the prior
N(0, I) made with the generation seed, so sampling is reproducible. Every decoding strategy works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..data.datasets import pad_right
from ..errors import GenerationError
from ..models.base import Conditioning
from .generator import Generator
from .options import GenerationOptions


class LatentGenerator(Generator):
    @property
    def labels(self) -> list[str]:
        return list(self.info.get("labels", []))

    def label_id(self, label: str) -> int:
        if not self.model.labelled:
            raise GenerationError("this model was trained without labels; a cvae run generates text with a label")
        if label not in self.labels:
            raise GenerationError(f"label {label!r} was not seen in training; labels: {', '.join(self.labels)}")
        return self.labels.index(label)

    def prepare(self, prompts: Sequence[str], opts: GenerationOptions,
                 conditioning: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor, Conditioning]:
        ids, mask = self.encode_prompts(prompts, opts.truncate_prompt)
        B, extras = len(prompts), dict(conditioning or {})
        if "z" not in extras:
            prior = opts.random(self.device)
            extras["z"] = torch.randn(B, self.model.cfg.latent, generator=prior, device=self.device)
        if opts.label is not None:
            extras["label"] = torch.full((B,), self.label_id(opts.label), dtype=torch.long, device=self.device)
        elif self.model.labelled and "label" not in extras:
            raise GenerationError(f"this CVAE writes text with a label: pass label= one of {', '.join(self.labels)}")
        return ids, mask, Conditioning(B, self.device, extras)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """The posterior mean of z for each text: (B, Z)."""
        limit = self.model.cfg.context + 1
        rows = [self.tokenizer.encode(t, add_bos=True, add_eos=True)[:limit] for t in texts]
        mu, _ = self.model.encode(pad_right(rows)[0].to(self.device))
        return mu

    def _decode(self, z: torch.Tensor, options: dict[str, Any]) -> list[str]:
        return self.generate([""] * len(z), conditioning={"z": z}, **{"strategy": "greedy", **options})

    def reconstruct(self, texts: str | Sequence[str], **options: Any) -> Any:
        """Decode each text's posterior mean (greedy unless `options` say otherwise)."""
        single = isinstance(texts, str)
        out = self._decode(self.encode([texts] if single else list(texts)), options)
        return out[0] if single else out

    def interpolate(self, a: str, b: str, steps: int = 5, **options: Any) -> list[str]:
        """Decode `steps` points on the line between the posterior means of `a` and `b` (both ends included)."""
        if steps < 2:
            raise GenerationError(f"interpolation needs at least 2 steps (got {steps})")
        za, zb = self.encode([a, b])
        t = torch.linspace(0.0, 1.0, steps, device=self.device)[:, None]
        return self._decode((1 - t) * za + t * zb, options)

    def transfer(self, texts: str | Sequence[str], to: str, **options: Any) -> Any:
        """Style transfer: decode each text's z with the label `to`."""
        self.label_id(to)
        return self.reconstruct(texts, label=to, **options)
