"""Filters between a generator and the output: each removes candidates for one stated reason.

A filter sees a chunk of candidates at a time (`keep` returns one verdict per candidate and may
write scores into them) and is told which candidates the whole chain kept (`commit`), so the
duplicate filters compare each sample with every sample kept before it, across chunks and resumed
runs. Order (cheap and certain first): normalise, length, charset, exact duplicates, copies of
training texts, near duplicates, personal information, content, fluency (when asked for), label
consistency, then any extra filter.

Texts are compared in *metric tokens* (words, and each CJK character on its own), lowercased.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..evaluation.metrics import metric_tokens
from .classify import ClassifierKind, text_classifier


@dataclass
class Candidate:
    text: str
    label: str
    scores: dict[str, float] = field(default_factory=dict)
    source: str | None = None  # which generator of a mix wrote it (None: the run's one generator)


def units(text: str) -> list[str]:
    return [t.lower() for t in metric_tokens(text)]


def shingles(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The n-grams of `tokens` (the whole text as one n-gram when it is shorter than n)."""
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class Filter:
    name = "filter"
    reason = "removed"

    def keep(self, batch: list[Candidate]) -> list[bool]:
        raise NotImplementedError

    def commit(self, kept: Sequence[Candidate]) -> None:
        """The chain kept these candidates (also called with the rows of a resumed output)."""


_SPECIAL = re.compile(r"<(?:pad|bos|eos|unk|sep|user|bot|label=[^>]*)>")


class Normalise(Filter):
    """Unicode NFC (not NFKC, which would turn Chinese full-width punctuation into ASCII), whitespace
    collapsed and trimmed; texts left empty or holding a model's special tokens (an `<unk>` the
    tokenizer could not spell) are removed."""

    name, reason = "normalise", "empty or holds special tokens"

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts = []
        for c in batch:
            c.text = " ".join(unicodedata.normalize("NFC", c.text).split())
            verdicts.append(bool(c.text) and not _SPECIAL.search(c.text))
        return verdicts


class Length(Filter):
    name, reason = "length", "shorter or longer than the real texts"

    def __init__(self, min_tokens: int, max_tokens: int) -> None:
        self.min_tokens, self.max_tokens = min_tokens, max_tokens

    def keep(self, batch: list[Candidate]) -> list[bool]:
        return [self.min_tokens <= len(metric_tokens(c.text)) <= self.max_tokens for c in batch]


class Charset(Filter):
    """Removes texts with more than `max_foreign` of their characters outside the real data's
    characters (another script or language, mojibake, stray symbols)."""

    name, reason = "charset", "characters the real data never uses"

    def __init__(self, real_texts: Sequence[str], max_foreign: float = 0.1) -> None:
        self.chars = {ch for t in real_texts for ch in unicodedata.normalize("NFC", t.lower()) if not ch.isspace()}
        self.max_foreign = max_foreign

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts = []
        for c in batch:
            chars = [ch for ch in c.text.lower() if not ch.isspace()]
            foreign = sum(ch not in self.chars for ch in chars) / max(len(chars), 1)
            c.scores["foreign_chars"] = round(foreign, 4)
            verdicts.append(foreign <= self.max_foreign)
        return verdicts


class ExactDuplicates(Filter):
    name, reason = "duplicate", "repeats a kept synthetic text"

    def __init__(self) -> None:
        self.seen: set[tuple[str, ...]] = set()

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts, fresh = [], set()
        for c in batch:
            key = tuple(units(c.text))
            verdicts.append(key not in self.seen and key not in fresh)
            fresh.add(key)
        return verdicts

    def commit(self, kept: Sequence[Candidate]) -> None:
        self.seen.update(tuple(units(c.text)) for c in kept)


class TrainingOverlap:
    """For a text, the largest share of its n-grams found in any one training text (1.0: a copy or a
    part of one). An inverted index from n-gram to training rows makes this exact and fast."""

    def __init__(self, train_texts: Sequence[str], n: int = 3) -> None:
        self.n = n
        self.index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, t in enumerate(train_texts):
            for g in shingles(units(t), n):
                self.index[g].append(i)

    def overlap(self, text: str) -> float:
        grams = shingles(units(text), self.n)
        if not grams:
            return 0.0
        shared = Counter(i for g in grams for i in self.index.get(g, ()))
        return max(shared.values(), default=0) / len(grams)


class TrainingCopies(Filter):
    """The privacy floor: removes texts whose n-gram overlap with one training text is at least
    `max_overlap` (1.0 removes verbatim copies and copied fragments only)."""

    name, reason = "training_copy", "copies a training text"

    def __init__(self, overlap: TrainingOverlap, max_overlap: float = 0.9) -> None:
        self.overlap, self.max_overlap = overlap, max_overlap

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts = []
        for c in batch:
            c.scores["train_overlap"] = round(self.overlap.overlap(c.text), 4)
            verdicts.append(c.scores["train_overlap"] < self.max_overlap)
        return verdicts


class NearDuplicates(Filter):
    """MinHash LSH (datasketch) over word 2-gram shingles: removes a text whose estimated Jaccard
    similarity to a kept synthetic text is at least `threshold`."""

    name, reason = "near_duplicate", "nearly repeats a kept synthetic text"

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, seed: int = 1) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.num_perm, self.seed = threshold, num_perm, seed
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.count = 0

    def _minhash(self, text: str):
        from datasketch import MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch([" ".join(g).encode("utf-8") for g in shingles(units(text), 2)] or [b""])
        return m

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts, pending = [], []
        for c in batch:
            m = self._minhash(c.text)
            similar = bool(self.lsh.query(m)) or any(m.jaccard(p) >= self.threshold for p in pending)
            verdicts.append(not similar)
            pending.append(m)
        return verdicts

    def commit(self, kept: Sequence[Candidate]) -> None:
        for c in kept:
            self.lsh.insert(str(self.count), self._minhash(c.text))
            self.count += 1


class PersonalInformation(Filter):
    """Removes texts holding personal information of `types` (textmill.safety: a phone number, an
    email, a card, an ID... the generator may have learned from its training rows)."""

    name, reason = "pii", "holds personal information"

    def __init__(self, types: Sequence[str]) -> None:
        self.types = list(types)

    def keep(self, batch: list[Candidate]) -> list[bool]:
        from ..safety import detect

        return [not detect(c.text, self.types) for c in batch]


class Content(Filter):
    """Removes texts the content filter finds abuse, hate, sexual content, self-harm, violence or a
    personal attack in (textmill.safety.ContentFilter, `categories` of them)."""

    name, reason = "content", "holds abusive, hateful, sexual, self-harm or violent content"

    def __init__(self, categories: Sequence[str]) -> None:
        from ..safety import ContentFilter

        self.filter = ContentFilter({c: "flag" for c in categories}, default="allow")

    def keep(self, batch: list[Candidate]) -> list[bool]:
        verdicts = []
        for c, v in zip(batch, self.filter.check_all([c.text for c in batch])):
            if v.hits:
                c.scores["content"] = ",".join(v.categories)  # type: ignore[assignment]
            verdicts.append(not v.hits)
        return verdicts


class Fluency(Filter):
    """A candidate must read as fluently to the language's pretrained model (SmolLM2; Gemma 3 for
    Chinese) as most real rows: its per-token loss at most the `percentile`-th percentile of the real
    training rows' losses (up to 1,000 of them, a seeded sample). N-gram rows that recombine a label's
    words into word salad score far above the real rows; rewrites of real rows score near them."""

    name, reason = "fluency", "reads less fluently to the pretrained model than most real rows"

    def __init__(self, texts: Sequence[str], chinese: bool, percentile: float, seed: int = 0) -> None:
        import numpy as np

        from ..features import FEATURE_SOURCES, reader

        self.reader = reader(FEATURE_SOURCES[chinese])
        sample = random.Random(seed).sample(list(texts), min(1000, len(texts)))
        self.limit = float(np.nanpercentile(self.reader.read(sample)[0], percentile))

    def keep(self, batch: list[Candidate]) -> list[bool]:
        # read, not losses: the features come from the same pass and wait in the reader's cache for the
        # pretrained label judge, which then embeds nothing twice
        losses = self.reader.read([c.text for c in batch])[0] if batch else []
        for c, loss in zip(batch, losses):
            c.scores["fluency_loss"] = round(float(loss), 4)
        return [bool(loss <= self.limit) for loss in losses]  # a text of no tokens (nan) is removed


class LabelConsistency(Filter):
    """A classifier trained on the real training texts must pick the intended label as its most
    likely one, with probability at least `min_probability` (LAMBADA's filter, Anaby-Tavor et al. 2020).
    `kind` is the classifier (classify.py): TF-IDF by default, `pretrained` for a stronger judge."""

    name, reason = "label", "a classifier trained on the real data reads another label"

    def __init__(self, texts: Sequence[str], labels: Sequence[str], chinese: bool, min_probability: float = 0.0,
                 kind: ClassifierKind = "tfidf") -> None:
        self.model = text_classifier(chinese, kind=kind).fit(texts, labels)
        self.classes = list(self.model.classes_)
        self.min_probability = min_probability

    def keep(self, batch: list[Candidate]) -> list[bool]:
        if not batch:
            return []
        probs = self.model.predict_proba([c.text for c in batch])
        verdicts = []
        for c, p in zip(batch, probs):
            mine = float(p[self.classes.index(c.label)])
            c.scores["label_prob"] = round(mine, 4)
            verdicts.append(mine >= p.max() and mine >= self.min_probability)
        return verdicts


class Custom(Filter):
    """The hook for further filters (safety, PII): a function text -> None to keep, or a reason."""

    def __init__(self, name: str, check: Callable[[str], str | None]) -> None:
        self.name, self.check, self.reason = name, check, f"flagged by {name}"

    def keep(self, batch: list[Candidate]) -> list[bool]:
        return [not self.check(c.text) for c in batch]


class FilterChain:
    """Runs the filters in order over a chunk and counts what each removed. The caller commits the
    candidates it keeps (perhaps fewer than passed), so a resumed run rebuilds the same state."""

    def __init__(self, filters: Sequence[Filter]) -> None:
        self.filters = list(filters)

    def __call__(self, batch: list[Candidate]) -> tuple[list[Candidate], dict[str, int]]:
        removed: dict[str, int] = {}
        for f in self.filters:
            verdicts = f.keep(batch)
            removed[f.name] = verdicts.count(False)
            batch = [c for c, ok in zip(batch, verdicts) if ok]
        return batch, removed

    def commit(self, kept: Sequence[Candidate]) -> None:
        for f in self.filters:
            f.commit(kept)

    def reasons(self) -> dict[str, str]:
        return {f.name: f.reason for f in self.filters}
