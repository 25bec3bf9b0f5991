"""Canaries (Carlini et al. 2019): random secrets of a fixed format inserted into the training split
a chosen number of times, so that `textmill audit` can later measure how well the model learned them.

The secrets follow from the config alone (its seed), so the audit regenerates them from the run's
saved config; the training split's other documents are untouched and the validation split never
holds a canary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..config import CanaryConfig


@dataclass(frozen=True)
class Canary:
    text: str  # the template with its secret
    secret: str
    repeats: int  # times it was inserted
    prefix: str = ""  # labelled data: the label's control token the canary was inserted under


def random_secret(cfg: CanaryConfig, rng: random.Random) -> str:
    return cfg.separator.join(rng.choice(cfg.alphabet) for _ in range(cfg.length))


def spelled_alphabet(cfg: CanaryConfig | None) -> list[str]:
    """A document holding every character a secret may use, added to what the tokenizer is built
    from (not trained on), so that a word-level vocabulary can spell every candidate secret."""
    return [cfg.separator.join(cfg.alphabet)] if cfg is not None else []


def make_canaries(cfg: CanaryConfig, prefixes: list[str] | None = None) -> list[Canary]:
    """`per_repeat` distinct canaries per repetition count; with `prefixes` (label tokens), each under
    one of them, drawn with the same seed."""
    rng = random.Random(cfg.seed)
    seen: set[str] = set()
    out = []
    for repeats in cfg.repeats:
        for _ in range(cfg.per_repeat):
            secret = random_secret(cfg, rng)
            while secret in seen:
                secret = random_secret(cfg, rng)
            seen.add(secret)
            prefix = rng.choice(prefixes) if prefixes else ""
            out.append(Canary(cfg.template.replace("{secret}", secret), secret, repeats, prefix))
    return out


def insert_canaries(docs: list[str], canaries: list[Canary], seed: int) -> list[str]:
    """The training documents with each canary's copies placed at random positions among them."""
    rng = random.Random(seed)
    out = list(docs)
    for c in canaries:
        for _ in range(c.repeats):
            out.insert(rng.randrange(len(out) + 1), c.prefix + c.text)
    return out
