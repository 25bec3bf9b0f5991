"""Style transfer that keeps the content: rewrite only the words that carry the style.

After Li et al. 2018 ("Delete, Retrieve, Generate"), with a pretrained model choosing the fills
instead of a trained decoder writing them. `fit` reads labelled texts (no parallel pairs):

- **markers**: the word n-grams (1 to 3; jieba words for Chinese) far more frequent in one label's texts than in the others'
  (salience = (count in the label + 1) / (count in the others + 1) >= `salience`, seen at least
  `min_count` times), as in Li et al., less any n-gram that holds a shorter marker ("was cold and"
  holds "cold"); weak markers likewise at `weak_salience`, for texts without a marker;
- **retrieval**: each label's texts indexed by their content words (TF-IDF of the words that are
  not unigram markers);
- **a classifier** (TF-IDF + logistic regression) of the labels.

`transfer(texts, to)` finds the markers of the other labels in a text (longest first; weak ones if
there are none) and replaces the most salient one with the fill that scores best, then the next,
until the classifier gives label `to` a probability above `confidence`: as few edits as the new
label needs. The fills: the `to` markers in the `retrieve` texts of label `to` nearest in content
(Li et al.'s "retrieve": words that suit what the sentence is about), the `candidates` most frequent
unigram markers of `to`, and nothing (deletion). The retrieved fills and the `shortlist` the
classifier likes best are scored by the pretrained model's log-likelihood of the whole new sentence
(its fluency) plus `weight` x the classifier's log-probability of `to`. A text with no marker at all
gets the best of those markers inserted before its final punctuation. Everything but the replaced
spans stays as written, so BLEU to the source stays high; the price is fluency where a replaced word
needed its neighbours to change too.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..evaluation.metrics import is_chinese
from ..tokenizers.word import jieba_cut

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+(?:'[^\W\u3400-\u9fff]+)?|[^\w\s]")  # CJK chars, words, marks
_END = re.compile(r"\s*[.!?。！？]+\s*$")


def _tokens(text: str, segment: Any = None) -> list[tuple[str, int, int]]:
    """(lowercased token, start, end) of each word, number and mark, and each CJK character; with
    `segment` (jieba's cut) each Chinese word instead."""
    if segment is None:
        return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    out, at = [], 0
    for piece in segment(text):
        if piece.strip():
            out.append((piece.lower(), at, at + len(piece)))
        at += len(piece)
    return out


def _grams(words: Sequence[str], max_n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1))


class MarkerTransfer:
    """Delete a text's style markers and fill each gap with the target label's marker that a
    pretrained model and a classifier like best."""

    def __init__(self, source: str | None = None, *, max_n: int = 3, salience: float = 15.0, weak_salience: float = 3.0,
                 min_count: int = 5, candidates: int = 40, shortlist: int = 8, retrieve: int = 10, weight: float = 2.0,
                 confidence: float = 0.8, batch_size: int = 64) -> None:
        if not (max_n >= 1 and 1 < weak_salience <= salience and min_count >= 1 and 1 <= shortlist <= candidates
                and retrieve >= 0 and 0.5 <= confidence < 1):
            raise ConfigError("transfer options: max_n >= 1, 1 < weak_salience <= salience, min_count >= 1, "
                              "1 <= shortlist <= candidates, retrieve >= 0, 0.5 <= confidence < 1")
        self.source, self.max_n, self.salience, self.min_count = source, max_n, salience, min_count
        self.n_candidates, self.shortlist, self.weight, self.batch_size = candidates, shortlist, weight, batch_size
        self.confidence, self.retrieve = confidence, retrieve
        self.weak_salience = weak_salience
        self.markers: dict[str, dict[tuple[str, ...], float]] = {}
        self.weak: dict[str, dict[tuple[str, ...], float]] = {}
        self.candidates: dict[str, list[str]] = {}

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> MarkerTransfer:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(texts) != len(labels) or not texts:
            raise DataError("style transfer needs labelled texts: as many labels as texts, and at least one of each")
        if len(set(labels)) < 2:
            raise DataError(f"style transfer needs texts of at least 2 labels; got only {sorted(set(labels))}")
        self.chinese = is_chinese(list(texts))
        self.segment = None
        if self.chinese:
            try:
                self.segment = jieba_cut()
            except ConfigError:
                log.warning("Chinese style markers are characters without jieba; pip install 'textmill[zh]' for words")
        counts: dict[str, Counter] = {}
        for text, label in zip(texts, labels):
            counts.setdefault(label, Counter()).update(_grams([w for w, _, _ in self._tokens(text)], self.max_n))
        total = sum(counts.values(), Counter())
        for label, mine in counts.items():
            self.markers[label] = self._salient(mine, total, self.salience)
            self.weak[label] = self._salient(mine, total, self.weak_salience)
            frequent = sorted(self.markers[label], key=lambda g: -mine[g])
            self.candidates[label] = [g[0] for g in frequent if len(g) == 1][:self.n_candidates]
        analyzer = dict(analyzer="char", ngram_range=(1, 3)) if self.chinese else dict(ngram_range=(1, 2))
        self.classifier = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2 if len(texts) > 100 else 1, **analyzer),
                                        LogisticRegression(C=4.0, max_iter=2000)).fit(list(texts), list(labels))
        self.labels = sorted(counts)
        # retrieval: each label's texts by their content words (every word but the markers' unigrams)
        style = {g[0] for m in self.markers.values() for g in m if len(g) == 1}
        self.content = TfidfVectorizer(analyzer=lambda t: [w for w, _, _ in self._tokens(t) if w not in style],
                                       sublinear_tf=True)
        self.content.fit(texts)
        self.by_label = {label: [t for t, y in zip(texts, labels) if y == label] for label in self.labels}
        self.index = {label: self.content.transform(rows) for label, rows in self.by_label.items()}
        return self

    def _tokens(self, text: str) -> list[tuple[str, int, int]]:
        return _tokens(text, self.segment)

    def _salient(self, mine: Counter, total: Counter, threshold: float) -> dict[tuple[str, ...], float]:
        """The n-grams of one label at least `threshold` times likelier there than in the others, seen
        `min_count` times, less those that hold a shorter one: an n-gram holding a marker ("was cold
        and" holds "cold") owes its salience to it, and replacing it would drop the words around it."""
        salient = {g: (c + 1) / (total[g] - c + 1) for g, c in mine.items()
                   if c >= self.min_count and (c + 1) / (total[g] - c + 1) >= threshold and any(ch.isalnum() for ch in "".join(g))}
        return {g: v for g, v in salient.items()
                if not any(g[i:i + k] in salient for k in range(1, len(g)) for i in range(len(g) - k + 1))}

    def _reader(self) -> Any:
        from ..features import FEATURE_SOURCES, reader

        return reader(self.source or FEATURE_SOURCES[self.chinese])

    def spans(self, text: str, to: str, weak: bool = False) -> list[tuple[int, int, float]]:
        """(start, end, salience) of the other labels' markers (`weak`: their weak markers) in `text`,
        longest n-grams first, not overlapping; the most salient first."""
        markers = self.weak if weak else self.markers
        return self._find(text, [markers[label] for label in self.labels if label != to])

    def _spans_or_weak(self, text: str, to: str) -> list[tuple[int, int, float]]:
        return self.spans(text, to) or self.spans(text, to, weak=True)

    def _find(self, text: str, markers: list[dict[tuple[str, ...], float]]) -> list[tuple[int, int, float]]:
        tokens = self._tokens(text)
        words = [w for w, _, _ in tokens]
        taken = [False] * len(words)
        found = []
        for n in range(self.max_n, 0, -1):
            for i in range(len(words) - n + 1):
                gram = tuple(words[i:i + n])
                salience = max((m.get(gram, 0.0) for m in markers), default=0.0)
                if salience and not any(taken[i:i + n]):
                    taken[i:i + n] = [True] * n
                    found.append((tokens[i][1], tokens[i + n - 1][2], salience))
        return sorted(found, key=lambda s: -s[2])

    def retrieved(self, text: str, to: str) -> list[str]:
        """The target label's markers in its `retrieve` texts whose content words are nearest `text`'s
        (Li et al.'s "retrieve"): fills that suit what the sentence is about."""
        similarity = (self.index[to] @ self.content.transform([text]).T).toarray().ravel()
        fills: list[str] = []
        for i in np.argsort(-similarity)[:self.retrieve]:
            near = self.by_label[to][i]
            fills += [near[a:b].lower() for a, b, _ in self._find(near, [self.markers[to]])]
        return list(dict.fromkeys(f if self.chinese else " ".join(f.split()) for f in fills))

    def _score(self, texts: list[str], to: str) -> np.ndarray:
        column = list(self.classifier.classes_).index(to)
        label = np.log(self.classifier.predict_proba(texts)[:, column] + 1e-9)
        fluency = self._reader().log_likelihoods(texts, max_len=96, batch_size=self.batch_size)
        return fluency + self.weight * label

    def _choose(self, variants: list[str], to: str, near: int = 0) -> str:
        """The best-scored variant among the first `near` (from retrieved fills) and the `shortlist`
        the classifier likes best."""
        column = list(self.classifier.classes_).index(to)
        likely = self.classifier.predict_proba(variants)[:, column]
        chosen = list(dict.fromkeys(list(range(near)) + list(np.argsort(-likely)[:self.shortlist])))
        shortlist = [variants[i] for i in chosen]
        return shortlist[int(np.argmax(self._score(shortlist, to)))]

    def transfer(self, texts: Sequence[str], to: str) -> list[str]:
        """Each text rewritten with label `to`."""
        if not self.markers:
            raise ConfigError("this style transfer is not fitted; call fit(texts, labels) first")
        if to not in self.markers:
            raise ConfigError(f"unknown label {to!r}; the labels are {', '.join(self.labels)}")
        return [self._rewrite(text, to) for text in texts]

    def _probability(self, text: str, to: str) -> float:
        return float(self.classifier.predict_proba([text])[0, list(self.classifier.classes_).index(to)])

    def _rewrite(self, text: str, to: str) -> str:
        """Replace the most salient marker of another label, then the next, until the classifier reads
        the text as `to` (or no marker is left): as few edits as the new label needs."""
        text = text.strip() if self.chinese else " ".join(text.split())
        spans = self._spans_or_weak(text, to)
        if not spans and self._probability(text, to) <= self.confidence:
            end = _END.search(text)
            head, tail = (text[:end.start()], text[end.start():]) if end else (text, "")
            joiner = "，" if self.chinese else " , "
            return self._choose([f"{head}{joiner}{c}{tail}" for c in self.candidates[to]], to)
        for _ in range(len(spans)):
            if self._probability(text, to) > self.confidence:
                break
            start, end, _ = spans[0]
            near = self.retrieved(text, to)
            fills = list(dict.fromkeys(near + self.candidates[to] + [""]))
            text = self._choose([f"{text[:start]}{c}{text[end:]}" if self.chinese else
                                 " ".join(f"{text[:start]}{c}{text[end:]}".split()) for c in fills], to, len(near))
            spans = self._spans_or_weak(text, to)
            if not spans:
                break
        return text
