"""Keywords of a text, for keyword-to-text pairs: TF-IDF over the corpus, or TextRank per text.

Candidate words are Latin words of two or more letters (scored lowercased, scikit-learn's English stop
words removed) and Chinese words: jieba's segmentation when it is installed (`pip install
'textmill[zh]'`), otherwise single characters, with common function words removed. A keyword keeps
the surface form of its first occurrence, and a text's keywords are returned in text order, so the
source reads like a skeleton of its target.

- TF-IDF (Sparck Jones 1972, with scikit-learn's smoothing): tf * (ln((1 + N) / (1 + df)) + 1),
  where df counts the texts of the corpus that contain the word.
- TextRank (Mihalcea & Tarau 2004): PageRank over the graph of candidates that co-occur within a
  window of `window` candidates; it needs no corpus statistics.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from ..tokenizers.word import CJK

log = logging.getLogger(__name__)

_WORD = re.compile(rf"[{CJK}]+|[^\W\d_{CJK}]{{2,}}(?:['’][^\W\d_{CJK}]+)*")
_CJK_RUN = re.compile(rf"[{CJK}]")
ZH_STOP = frozenset(
    "的 了 是 在 我 你 他 她 它 们 这 那 和 与 也 都 就 而 及 着 吧 吗 呢 啊 呀 哦 嗯 不 没 有 个 一 上 下 很 还 把 被 让 "
    "给 从 到 对 说 要 会 能 又 才 再 更 最 太 得 地 之 其 以 为 于 所 者 此 但 却 或 如 若 则 即 并 等 么 哪 谁 "
    "我们 你们 他们 她们 它们 自己 什么 怎么 这个 那个 这些 那些 一个 一些 因为 所以 但是 如果 虽然 可是 而且 "
    "就是 还是 已经 可以 没有 不是 这样 那样 非常 真是 觉得 感觉 比较 还有 然后 时候 现在 一下 一点 东西".split())


def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@lru_cache(maxsize=1)
def chinese_cut() -> Callable[[str], list[str]]:
    try:
        import jieba
    except ImportError:
        log.warning("jieba is not installed: Chinese keywords are single characters (pip install 'textmill[zh]')")
        return list
    jieba.setLogLevel(60)
    return jieba.lcut


class Candidates:
    """Splits a text into (key, surface) candidate words, stop words removed."""

    def __init__(self) -> None:
        self.stop = _english_stop_words() | ZH_STOP
        self._cut: Callable[[str], list[str]] | None = None

    def __call__(self, text: str) -> list[tuple[str, str]]:
        out = []
        for m in _WORD.finditer(text):
            piece = m.group()
            if _CJK_RUN.match(piece):
                if self._cut is None:
                    self._cut = chinese_cut()
                words = [w for w in self._cut(piece) if w.strip()]
            else:
                words = [piece]
            out.extend((w.lower(), w) for w in words if w.lower() not in self.stop)
        return out


def _in_text_order(cands: list[tuple[str, str]], scores: dict[str, float], count: int) -> list[str]:
    first = {}
    for i, (key, surface) in enumerate(cands):
        first.setdefault(key, (i, surface))
    best = sorted(scores, key=lambda k: (-scores[k], first[k][0]))[:count]
    return [first[k][1] for k in sorted(best, key=lambda k: first[k][0])]


def tfidf_keywords(texts: Sequence[str], count: int) -> list[list[str]]:
    split = Candidates()
    cands = [split(t) for t in texts]
    df = Counter(k for c in cands for k in {key for key, _ in c})
    n = len(texts)
    out = []
    for c in cands:
        tf = Counter(key for key, _ in c)
        scores = {k: tf[k] / len(c) * (math.log((1 + n) / (1 + df[k])) + 1.0) for k in tf}
        out.append(_in_text_order(c, scores, count))
    return out


def textrank_scores(keys: Sequence[str], window: int = 3, damping: float = 0.85, iterations: int = 50) -> dict[str, float]:
    """PageRank of each distinct key over its co-occurrence graph (edges within `window` positions)."""
    vocab = list(dict.fromkeys(keys))
    if len(vocab) < 2:
        return {k: 1.0 for k in vocab}
    index = {k: i for i, k in enumerate(vocab)}
    ids = [index[k] for k in keys]
    weights = np.zeros((len(vocab), len(vocab)))
    for i, a in enumerate(ids):
        for b in ids[i + 1:i + window]:
            if a != b:
                weights[a, b] += 1.0
                weights[b, a] += 1.0
    out_degree = weights.sum(1, keepdims=True)
    transition = np.divide(weights, out_degree, out=np.zeros_like(weights), where=out_degree > 0)
    rank = np.full(len(vocab), 1.0 / len(vocab))
    for _ in range(iterations):
        new = (1.0 - damping) / len(vocab) + damping * transition.T @ rank
        if np.abs(new - rank).sum() < 1e-9:
            rank = new
            break
        rank = new
    return dict(zip(vocab, rank.tolist()))


def textrank_keywords(texts: Sequence[str], count: int, window: int = 3) -> list[list[str]]:
    split = Candidates()
    out = []
    for text in texts:
        c = split(text)
        out.append(_in_text_order(c, textrank_scores([k for k, _ in c], window), count))
    return out


def extract_keywords(texts: Sequence[str], method: str = "tfidf", count: int = 5) -> list[list[str]]:
    """The `count` best keywords of each text, in text order (fewer when a text has fewer candidates)."""
    if method == "tfidf":
        return tfidf_keywords(texts, count)
    if method == "textrank":
        return textrank_keywords(texts, count)
    raise ValueError(f"unknown keyword method {method!r}; choose tfidf or textrank")
