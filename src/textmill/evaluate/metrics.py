"""Text metrics that work on English and Chinese alike.

Diversity and length metrics count *metric tokens*: each CJK character, each run of letters or
digits, each punctuation mark. Perplexity is per model token; bits per character divides by the
characters of the text instead, so it compares models with different tokenizers.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Sequence

from ..tokenizers.word import CJK

_METRIC_TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+|[^\w\s]")


def metric_tokens(text: str) -> list[str]:
    return _METRIC_TOKEN.findall(text)


def perplexity(mean_nll: float) -> float:
    """exp(mean negative log-likelihood per token in nats), capped to stay finite."""
    return math.exp(min(mean_nll, 700.0))


def bits_per_char(mean_nll: float, tokens_per_char: float) -> float:
    return mean_nll * tokens_per_char / math.log(2)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over the whole set (Li et al. 2016); 0 when there are none."""
    grams = [tuple(toks[i:i + n]) for toks in map(metric_tokens, texts) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str], max_n: int = 4, max_texts: int = 200, seed: int = 0) -> float:
    """Mean sentence BLEU (sacrebleu, 0-100) of each text against all the others (Zhu et al. 2018).

    Higher means less diverse. Texts are pre-split into metric tokens, so Chinese is scored by
    character. Above `max_texts` a seeded sample is scored (the cost is quadratic)."""
    from sacrebleu.metrics import BLEU

    pool = [" ".join(metric_tokens(t)) for t in texts]
    pool = [p for p in pool if p]
    if len(pool) < 2:
        return 0.0
    if len(pool) > max_texts:
        pool = random.Random(seed).sample(pool, max_texts)
    bleu = BLEU(tokenize="none", max_ngram_order=max_n, effective_order=True)
    scores = [bleu.sentence_score(h, pool[:i] + pool[i + 1:]).score for i, h in enumerate(pool)]
    return statistics.fmean(scores)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Length in metric tokens and in characters."""
    toks = [len(metric_tokens(t)) for t in texts] or [0]
    chars = [len(t) for t in texts] or [0]
    return {"mean_tokens": statistics.fmean(toks), "median_tokens": statistics.median(toks),
            "min_tokens": min(toks), "max_tokens": max(toks),
            "std_tokens": statistics.pstdev(toks), "mean_chars": statistics.fmean(chars)}
