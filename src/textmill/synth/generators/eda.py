"""`eda`: the EDA baseline (Wei and Zou 2019; augment.py): edits of the label's real sentences."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...config import Strict
from ..augment import EDA, build_thesaurus, eda_alpha
from ..rows import Rows
from .base import GENERATORS, SynthGenerator


class EDAOptions(Strict):
    thesaurus: Literal["auto", "wordnet", "corpus"] = Field(
        "auto", description="where synonyms come from: WordNet (English), the rows' own words (Chinese), or auto")
    alpha: float | None = Field(None, gt=0, le=1, description="share of a sentence's words each edit changes "
                                                               "(default: the paper's, by the number of rows)")


@GENERATORS.register("eda")
class EDAGenerator(SynthGenerator):
    """Each sample edits a real sentence of the label, taken in a shuffled round robin, with one of
    the four operations in turn."""

    name = "eda"
    Options = EDAOptions

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        texts = [t for t, _ in rows]
        self.thesaurus = build_thesaurus(self.options.thesaurus, texts)
        self.alpha = self.options.alpha or eda_alpha(len(rows))
        self.eda = EDA(self.thesaurus, self.alpha, chinese)
        self.by_label: dict[str, list[str]] = {}
        for t, label in rows:
            self.by_label.setdefault(label, []).append(t)

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        rng = random.Random(f"{seed}/{label}")
        sources = self.by_label[label]
        order = list(range(len(sources)))
        rng.shuffle(order)
        ops = EDA.OPERATIONS
        return [self.eda.augment(sources[order[i % len(order)]], ops[i % len(ops)], rng) for i in range(n)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "thesaurus": self.thesaurus.name, "alpha": self.alpha}
