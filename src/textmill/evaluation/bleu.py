"""BLEU against a large reference set, and Self-BLEU, as the text-GAN literature computes them.

Texygen (Zhu et al. 2018) and TextBox score each generated sentence with NLTK's `sentence_bleu`
against *all* reference sentences (uniform weights over 1..n, smoothing method 1) and average.
Clipping only needs, for every n-gram, its largest count in any one reference, and the brevity
penalty only needs the set of reference lengths, so both are computed once; scoring a hypothesis is
then linear in its length. Self-BLEU scores each sentence of a set against all the others: the two
largest counts of every n-gram (and who holds them) give each leave-one-out maximum.

The results equal NLTK's `sentence_bleu` (checked in the tests) at a small fraction of the cost.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence

Tokens = Sequence[str]
EPSILON = 0.1  # NLTK's smoothing method 1: a zero-match precision becomes 0.1 / (hypothesis n-grams)


def ngrams(tokens: Tokens, n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _closest(lengths: list[int], hyp_len: int) -> int:
    """The reference length closest to `hyp_len` (the shorter one on a tie), from sorted `lengths`."""
    i = bisect.bisect_left(lengths, hyp_len)
    candidates = lengths[max(i - 1, 0):i + 1]
    return min(candidates, key=lambda r: (abs(r - hyp_len), r))


def _bleu(hyp: Tokens, max_n: int, clip: callable, ref_len: int) -> float:
    """Smoothed sentence BLEU-max_n of `hyp`, given `clip(gram) -> largest reference count` and the
    closest reference length."""
    if not hyp:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        counts = ngrams(hyp, n)
        total = max(1, sum(counts.values()))
        matched = sum(min(c, clip(g)) for g, c in counts.items())
        if n == 1 and matched == 0:
            return 0.0  # NLTK: no unigram in common, BLEU 0
        log_sum += math.log((matched or EPSILON) / total) / max_n
    bp = 1.0 if len(hyp) > ref_len else math.exp(1.0 - ref_len / len(hyp))
    return bp * math.exp(log_sum)


class ReferenceSet:
    """References prepared once for many BLEU-n queries (n up to `max_n`)."""

    def __init__(self, references: Sequence[Tokens], max_n: int = 5) -> None:
        if not references:
            raise ValueError("BLEU needs at least one reference")
        self.max_n = max_n
        self.best: list[dict[tuple[str, ...], int]] = [{} for _ in range(max_n + 1)]
        for ref in references:
            for n in range(1, max_n + 1):
                table = self.best[n]
                for g, c in ngrams(ref, n).items():
                    if c > table.get(g, 0):
                        table[g] = c
        self.lengths = sorted({len(r) for r in references})

    def sentence_bleu(self, hyp: Tokens, n: int) -> float:
        table = self.best
        return _bleu(hyp, n, lambda g: table[len(g)].get(g, 0), _closest(self.lengths, len(hyp)))

    def bleu(self, hypotheses: Sequence[Tokens], n: int) -> float:
        """Mean sentence BLEU-n (0-1) of the hypotheses against all the references."""
        if n > self.max_n:
            raise ValueError(f"this reference set was prepared for BLEU up to {self.max_n}")
        return sum(self.sentence_bleu(h, n) for h in hypotheses) / max(len(hypotheses), 1)


def self_bleu_scores(texts: Sequence[Tokens], n: int) -> list[float]:
    """Each text's sentence BLEU-n against all the other texts."""
    top: list[dict[tuple[str, ...], tuple[int, int, int]]] = [{} for _ in range(n + 1)]  # gram -> (max, who, second)
    for i, t in enumerate(texts):
        for k in range(1, n + 1):
            table = top[k]
            for g, c in ngrams(t, k).items():
                best, who, second = table.get(g, (0, -1, 0))
                if c > best:
                    table[g] = (c, i, best)
                elif c > second:
                    table[g] = (best, who, c)
    lengths = Counter(len(t) for t in texts)
    scores = []
    for i, t in enumerate(texts):
        def clip(g: tuple[str, ...], i: int = i) -> int:
            best, who, second = top[len(g)].get(g, (0, -1, 0))
            return second if who == i else best

        others = sorted(length for length, c in lengths.items() if c > (length == len(t)))
        scores.append(_bleu(t, n, clip, _closest(others, len(t))) if others else 0.0)
    return scores


def self_bleu(texts: Sequence[Tokens], n: int = 4) -> float:
    """Mean Self-BLEU-n (0-1): higher means the texts repeat each other more (less diverse)."""
    return sum(self_bleu_scores(texts, n)) / len(texts) if len(texts) > 1 else 0.0
