"""`paraphrase[:SOURCE]`: no training. A pretrained instruct model rewrites each real row of a label in
other words, and the rewrite keeps the row's label: the LLM-era stand-in for back-translation (which
needs translation models this toolkit does not ship for English), as in Dai et al. 2023 (AugGPT) on a
small local model."""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field

from ...errors import ConfigError
from ..rows import Rows
from .base import GENERATORS
from .prompted import PromptGenerator, PromptOptions


class ParaphraseOptions(PromptOptions):
    shots: int = Field(1, ge=1, le=1, description="(one real row per prompt: the row to rewrite)")
    per_prompt: int = Field(2, ge=1, description="rewrites sampled of each real row in one pass")
    temperature: float = Field(0.7, gt=0, le=5, description="sampling temperature")
    top_p: float | None = Field(0.9, gt=0, le=1, description="nucleus sampling (None: the whole distribution)")


@GENERATORS.register("paraphrase")
class ParaphraseGenerator(PromptGenerator):
    """An instruct model (SmolLM2-135M-Instruct by default; `paraphrase:SOURCE` another instruct source,
    run or server) asked to rewrite each real row of the label, the rows taken in a seeded order and
    each `per_prompt` times; its reply starts "Rewritten:" so the rewrite comes first. A rewrite equal to
    its row (case and spacing aside) is dropped by synth's duplicate filter. A base model (without a chat
    template) continues `Sentence: ... / Paraphrase:` instead."""

    name = "paraphrase"
    Options = ParaphraseOptions

    def fit(self, rows: Rows, workdir: Any, chinese: bool, seed: int) -> None:
        super().fit(rows, workdir, chinese, seed)
        if self.remote and not self.chat:
            raise ConfigError("generator paraphrase: a served model is asked in chat messages; serve an instruct model")
        self.chinese = chinese

    def prompt(self, label: str, examples: list[str]) -> Any:
        text = examples[0]
        what = self.options.descriptions.get(label)
        about = f" It is one of {what}; keep it so." if what else ""
        if self.chat:
            ask = (f"用不同的词语改写下面这句话，保持原意。\n\n{text}" if self.chinese else
                   f"Rewrite the following text in different words, keeping its meaning.{about}\n\nText: {text}")
            return [{"role": "user", "content": ask}, {"role": "assistant", "content": "改写：" if self.chinese else "Rewritten:"}]
        return f"Sentence: {text}\nParaphrase:" if not self.chinese else f"原句：{text}\n改写："

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        texts = list(self.by_label[label])
        random.Random(f"{seed}/{label}/rows").shuffle(texts)
        rows = [texts[i % len(texts)] for i in range(-(-n // self.options.per_prompt))]  # each row in turn
        return self.replies([self.fitting_prompt(label, [t]) for t in rows], n, seed)
