"""Generation with encoder-decoder models: each prompt is a source; the output is a new target.

A source is formatted the way the run's task formatted its training sources (dialogue turns get
speaker markers, keyword lists are normalised), encoded as `text <eos>` and handed to the model's
`start` through the conditioning. Every target starts from `<bos>`, so greedy, sampling, beam search
(with length penalty and n-gram blocking) and streaming all work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.datasets import encode_source, pad_right
from ..data.tasks import Task
from ..errors import GenerationError
from ..models.base import Conditioning, StepModel
from ..tokenizers import Tokenizer
from .generator import Generator
from .options import GenerationOptions


@dataclass
class AttentionMap:
    """How much each target token looked at each source token."""

    source: list[str]    # the S source tokens, as text
    target: list[str]    # the T target tokens, as text
    weights: np.ndarray  # (T, S), each row sums to 1


class Seq2SeqGenerator(Generator):
    continues_prompt = False

    def __init__(self, model: StepModel, tokenizer: Tokenizer, info: dict[str, Any] | None = None, *,
                 source_tokenizer: Tokenizer | None = None, task: Task | None = None) -> None:
        super().__init__(model, tokenizer, info)
        self.source_tokenizer = source_tokenizer or tokenizer
        self.task = task
        self.keep = task.keep if task else "start"

    def format_source(self, text: str) -> str:
        return self.task.format_source(text) if self.task else text

    def encode_sources(self, sources: Sequence[str], truncate: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded `(ids, mask)` of `source <eos>` for each source, checked against max_source_len."""
        limit = self.model.cfg.max_source_len
        rows = []
        for text in sources:
            ids, cut = encode_source(self.source_tokenizer, self.format_source(text), limit, self.keep)
            if cut and not truncate:
                n = len(self.source_tokenizer.encode(self.format_source(text))) + 1
                raise GenerationError(
                    f"the source is {n} tokens (with <eos>) but the model reads at most {limit} (model.max_source_len); "
                    f"shorten it or pass truncate_prompt=True (CLI: --truncate-prompt) to keep its {self.keep}")
            rows.append(ids)
        ids, mask = pad_right(rows, self.source_tokenizer.pad_id)
        return ids.to(self.device), mask.to(self.device)

    def prepare(self, prompts: Sequence[str], opts: GenerationOptions,
                 conditioning: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor, Conditioning]:
        if opts.label is not None:
            raise GenerationError("encoder-decoder models are not label-conditioned; drop the label option")
        src, src_mask = self.encode_sources(prompts, opts.truncate_prompt)
        B = len(prompts)
        ids = torch.full((B, 1), self.tokenizer.bos_id, dtype=torch.long, device=self.device)
        extras = {**(conditioning or {}), "source": src, "source_mask": src_mask}
        return ids, torch.ones_like(ids, dtype=torch.bool), Conditioning(B, self.device, extras)

    @torch.no_grad()
    def attention(self, source: str, target: str | None = None, **options: Any) -> AttentionMap:
        """The attention weights over the source for each token of `target` (default: the model's own
        output for `options`, greedy unless they say otherwise). The model is deterministic at
        inference, so these are exactly the weights it used while generating that output."""
        if target is None:
            target = self.generate(source, **{"strategy": "greedy", **options})
        src, src_mask = self.encode_sources([source], truncate=True)
        out = self.tokenizer.encode(target) or [self.tokenizer.eos_id]  # row i: predicting out[i]
        tgt_in = torch.tensor([[self.tokenizer.bos_id, *out[:-1]]], device=self.device)
        _, weights = self.model(src, src_mask, tgt_in, need_weights=True)  # (1, T, S)
        pieces = lambda tok, ids: [tok.decode([i], skip_special=False) for i in ids]  # noqa: E731
        return AttentionMap(pieces(self.source_tokenizer, src[0].tolist()), pieces(self.tokenizer, out),
                            weights[0].float().cpu().numpy())
