"""Summaries of the user's documents, extractive or written by a pretrained model.

**Extractive** (`ExtractiveSummarizer`, the default): each sentence of a document is scored by a
logistic regression over where it stands (its position, the document's length), what it is (its
length, a number, a quotation) and how central it is (the cosine of its TF-IDF vector to the
document's mean, the TF-IDF fitted on the document's own sentences; with `features: pretrained`
the same cosine in a pretrained model's feature space too). The regression learns from reference
summaries which sentences they take: the greedy oracle adds, one at a time, the sentence that most
raises ROUGE-1 + ROUGE-2 against the reference (for the BBC summaries, which are sentences of the
article, it finds those). A summary is the best-scored sentences until it holds `ratio` of the
document's words (learned: the median ratio of the references), in the document's order. The
default scorer, `DEFAULT_SCORER`, was fitted on the BBC News Summary training split by
`benchmarks/summarization.py --fit` (English news; its features carry over to other languages, not
measured).

**Prompted** (`PromptedSummarizer`): an instruct model (SmolLM2-135M-Instruct by default, any
pretrained source or run) is asked for a summary of about as many sentences as the extractive one
would take; a base model continues `Article: ... Summary:`. A run fine-tuned on summaries as chats
(`data.task: summarization` from an instruct model) is asked as it was trained (its task's
instruction, the article cut to fit its context). An article longer than the model's context keeps
its beginning.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config import DECODER
from ..data.datasets import fit_chat
from ..data.tasks import Task, build_task
from ..errors import ConfigError, DataError
from ..evaluation.metrics import is_chinese, join_sentences, metric_tokens, split_sentences
from ..files import atomic_write_text
from ..rundir import read_run_config

DEFAULT_SCORER = Path(__file__).with_name("summarizer_bbc.json")
FeatureKind = Literal["tfidf", "pretrained"]
FEATURES = ("position", "inverse_index", "log_sentences", "log_length", "relative_length", "tfidf_centrality",
            "tfidf_centrality_rank", "has_number", "has_quote")
PRETRAINED_FEATURES = ("pretrained_centrality", "pretrained_centrality_z")
_WORD = re.compile(r"\w")


def words(text: str) -> list[str]:
    """The units a budget and ROUGE count: lowercased words and numbers, each CJK character."""
    return [t.lower() for t in metric_tokens(text) if _WORD.match(t)]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n))))


def _f1(overlap: int, produced: int, wanted: int) -> float:
    return 0.0 if not overlap else 2 * overlap / (produced + wanted)


def oracle_labels(sentences: Sequence[str], reference: str) -> list[int]:
    """1 for each sentence the greedy oracle takes: start empty, add the sentence that most raises
    ROUGE-1 + ROUGE-2 F1 against `reference`, stop when none raises it."""
    ref = words(reference)
    wanted = [_ngrams(ref, 1), _ngrams(ref, 2)]
    units = [words(s) for s in sentences]
    chosen: list[int] = []
    tokens: list[str] = []
    best = 0.0

    def score(candidate: list[str]) -> float:
        return sum(_f1(sum((_ngrams(candidate, n) & wanted[n - 1]).values()), max(len(candidate) - n + 1, 0),
                       sum(wanted[n - 1].values())) for n in (1, 2))

    while True:
        gains = [(score(tokens + units[i]), i) for i in range(len(sentences)) if i not in chosen and units[i]]
        if not gains:
            break
        value, i = max(gains)
        if value <= best:
            break
        best, tokens = value, tokens + units[i]
        chosen.append(i)
    return [int(i in chosen) for i in range(len(sentences))]


def _centrality(vectors: np.ndarray) -> np.ndarray:
    centre = vectors.mean(0)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(centre)
    return np.divide(vectors @ centre, norms, out=np.zeros(len(vectors)), where=norms > 0)


def sentence_features(sentences: Sequence[str], pretrained: Any = None) -> np.ndarray:
    """One row of `FEATURES` (then `PRETRAINED_FEATURES` when a `PretrainedFeatures` is given) per sentence."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(sentences)
    units = [words(s) for s in sentences]
    try:
        tfidf = TfidfVectorizer(analyzer=lambda s: words(s) + [" ".join(b) for b in _ngrams(words(s), 2)],
                                sublinear_tf=True).fit_transform(sentences).toarray()
        central = _centrality(tfidf)
    except ValueError:  # no sentence has a word
        central = np.zeros(n)
    longest = max(1, *map(len, units))
    rows = [[i / n, 1 / (i + 1), math.log(n), math.log1p(len(u)), len(u) / longest, central[i],
             central[i] / (central.max() or 1), bool(re.search(r"\d", s)), bool(re.search(r"[\"“”「」]", s))]
            for i, (s, u) in enumerate(zip(sentences, units))]
    table = np.asarray(rows, dtype=float)
    if pretrained is not None:
        deep = _centrality(pretrained.transform(list(sentences)))
        z = (deep - deep.mean()) / (deep.std() or 1)
        table = np.hstack([table, deep[:, None], z[:, None]])
    return table


def select(sentences: Sequence[str], scores: Sequence[float], budget: float, max_sentences: int | None = None) -> list[int]:
    """The indexes of the best-scored sentences, taken until they hold `budget` words (the one that
    crosses the budget included), or the best `max_sentences`; in the document's order."""
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    if max_sentences is not None:
        return sorted(order[:max_sentences])
    chosen, held = [], 0
    for i in order:
        if held >= budget:
            break
        chosen.append(i)
        held += len(words(sentences[i]))
    return sorted(chosen)


class ExtractiveSummarizer:
    """Learns which sentences summaries take; summarizes by the best-scored sentences under a word budget."""

    def __init__(self, features: FeatureKind = "tfidf", source: str | None = None) -> None:
        if features not in ("tfidf", "pretrained"):
            raise ConfigError(f"summarizer features {features!r}: choose tfidf or pretrained")
        self.features, self.source = features, source
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.ratio = 0.4
        self._pretrained: Any = None

    def _reader(self, chinese: bool) -> Any:
        if self.features != "pretrained":
            return None
        if self._pretrained is None:
            from ..features import FEATURE_SOURCES, PretrainedFeatures

            self.source = self.source or FEATURE_SOURCES[chinese]
            self._pretrained = PretrainedFeatures(self.source, max_len=96, batch_size=64)
        return self._pretrained

    def fit(self, pairs: Sequence[tuple[str, str]], progress: Any = None) -> ExtractiveSummarizer:
        """Fit on (document, reference summary) pairs."""
        from sklearn.linear_model import LogisticRegression

        pairs = [(d, s) for d, s in pairs if d.strip() and s.strip()]
        if len(pairs) < 2:
            raise DataError(f"fitting a summarizer needs at least 2 documents with a summary; got {len(pairs)}")
        reader = self._reader(is_chinese([d for d, _ in pairs]))
        tables, labels, ratios = [], [], []
        for k, (document, summary) in enumerate(pairs):
            sentences = split_sentences(document)
            tables.append(sentence_features(sentences, reader))
            labels += oracle_labels(sentences, summary)
            ratios.append(len(words(summary)) / max(1, len(words(document))))
            if progress:
                progress("reading documents", k + 1, len(pairs))
        if len(set(labels)) < 2:
            raise DataError("the references take every sentence or none of them; a summarizer cannot learn which to take")
        model = LogisticRegression(max_iter=5000).fit(np.vstack(tables), labels)
        self.coef, self.intercept = model.coef_[0], float(model.intercept_[0])
        self.ratio = float(np.median(ratios))
        return self

    def scores(self, sentences: Sequence[str]) -> np.ndarray:
        if self.coef is None:
            raise ConfigError("this summarizer is not fitted; call fit(pairs) or load a fitted one")
        return sentence_features(sentences, self._reader(is_chinese(sentences))) @ self.coef + self.intercept

    def summarize(self, documents: Sequence[str], ratio: float | None = None, sentences: int | None = None) -> list[str]:
        """A summary of each document: its best sentences up to `ratio` of its words (default: the
        fitted ratio), or its best `sentences`."""
        check_length(ratio, sentences)
        out = []
        for document in documents:
            parts = split_sentences(document)
            if not parts:
                out.append("")
                continue
            budget = (ratio or self.ratio) * len(words(document))
            out.append(join_sentences([parts[i] for i in select(parts, self.scores(parts), budget, sentences)]))
        return out

    def save(self, path: str | Path) -> None:
        if self.coef is None:
            raise ConfigError("this summarizer is not fitted; there is nothing to save")
        names = FEATURES + (PRETRAINED_FEATURES if self.features == "pretrained" else ())
        atomic_write_text(Path(path), json.dumps({
            "kind": "extractive", "features": self.features, "source": self.source, "ratio": self.ratio,
            "intercept": self.intercept, "weights": dict(zip(names, map(float, self.coef)))}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ExtractiveSummarizer:
        p = Path(path)
        try:
            spec = json.loads(p.read_text(encoding="utf-8"))
            summarizer = cls(spec["features"], spec.get("source"))
            names = FEATURES + (PRETRAINED_FEATURES if summarizer.features == "pretrained" else ())
            summarizer.coef = np.array([spec["weights"][n] for n in names], dtype=float)
            summarizer.intercept, summarizer.ratio = float(spec["intercept"]), float(spec["ratio"])
        except FileNotFoundError:
            raise ConfigError(f"summarizer {path} does not exist") from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not a summarizer written by ExtractiveSummarizer.save ({e!r}); "
                              "fit one with `textmill summarize --fit PAIRS --save PATH`") from None
        return summarizer


def check_length(ratio: float | None, sentences: int | None) -> None:
    if ratio is not None and sentences is not None:
        raise ConfigError("give a summary's length as a ratio of the document's words or as a number of sentences, not both")
    if ratio is not None and not 0 < ratio <= 1:
        raise ConfigError(f"ratio={ratio}: a summary holds a share of the document's words, between 0 (exclusive) and 1")
    if sentences is not None and sentences < 1:
        raise ConfigError(f"sentences={sentences}: a summary takes at least 1 sentence")


class PromptedSummarizer:
    """A pretrained model writes each summary (abstractive), greedy, asked for about as many sentences
    as the default extractive summary takes (at least 2)."""

    def __init__(self, source: str, **load_options: Any) -> None:
        from ..loading import load

        self.source = source
        self.gen = load(source, **load_options)
        self.chat = bool(self.gen.info.get("chat"))
        self.extractive = ExtractiveSummarizer.load(DEFAULT_SCORER)
        self.task = trained_task(Path(source))

    def prompt(self, document: str, count: int) -> Any:
        chinese = is_chinese([document])
        if self.task is not None:  # a chat fine-tune on summaries: asked as it learned, with room for the summary
            return fit_chat(self.gen.tokenizer, self.task, document, self.gen.model.cfg.context - self.budget(count))[0]
        if self.chat:
            ask = f"用{count}句话总结这篇文章。" if chinese else f"Summarize this article in {count} sentences."
            return [{"role": "user", "content": f"{ask}\n\n{document}"}]
        return f"文章：{document}\n\n摘要：" if chinese else f"Article: {document}\n\nSummary:"

    def budget(self, count: int) -> int:
        """New tokens for a summary of `count` sentences: about 40 a news sentence (a chat fine-tune: at
        most the half of its context that its training summaries could take)."""
        return 40 * count if self.task is None else min(40 * count, self.gen.model.cfg.context // 2)

    def summarize(self, documents: Sequence[str], ratio: float | None = None, sentences: int | None = None,
                  batch_size: int = 8, **options: Any) -> list[str]:
        check_length(ratio, sentences)
        prompts, budgets = [], []
        for document in documents:
            parts = split_sentences(document)
            count = sentences or max(2, len(select(parts, self.extractive.scores(parts) if parts else [],
                                                   (ratio or self.extractive.ratio) * len(words(document)))))
            prompts.append(self.prompt(document, count))
            budgets.append(count)
        options.setdefault("strategy", "greedy")
        options.setdefault("repetition_penalty", 1.1)
        max_new_tokens = options.pop("max_new_tokens", None)
        out = []
        for start in range(0, len(prompts), batch_size):
            longest = max(budgets[start:start + batch_size])
            out += self.gen.generate(prompts[start:start + batch_size], truncate_prompt=True,
                                     max_new_tokens=max_new_tokens or self.budget(longest), **options)
        return [" ".join(text.split()) for text in out]


def trained_task(run: Path) -> Task | None:
    """The summarization task a decoder-only run was fine-tuned on as chats (its `data.task`), or None."""
    if not (run / "train.yaml").is_file():
        return None
    cfg = read_run_config(run)
    return build_task(cfg.data) if cfg.data.task == "summarization" and cfg.model.kind == DECODER else None


def summarizer(model: str | None = None, **load_options: Any) -> ExtractiveSummarizer | PromptedSummarizer:
    """The summarizer `model` names: None or `extractive` (the default scorer), a `.json` file a
    fitted `ExtractiveSummarizer` saved, or a pretrained source or run that writes summaries."""
    if model in (None, "extractive"):
        return ExtractiveSummarizer.load(DEFAULT_SCORER)
    if str(model).endswith(".json"):
        return ExtractiveSummarizer.load(model)
    return PromptedSummarizer(str(model), **load_options)


def summarize(documents: str | Sequence[str], model: str | None = None, *, ratio: float | None = None,
              sentences: int | None = None, **options: Any) -> Any:
    """Summaries of `documents` (one string gives one summary): `textmill.summarize(article)`,
    `textmill.summarize(articles, model="embedded:smollm2-135m-instruct", sentences=3)`."""
    single = isinstance(documents, str)
    docs = [documents] if single else list(documents)
    chosen = summarizer(model)
    if options and isinstance(chosen, ExtractiveSummarizer):
        raise ConfigError(f"decoding options ({', '.join(options)}) apply to a model that writes summaries; "
                          "the extractive summarizer takes only ratio or sentences")
    out = chosen.summarize(docs, ratio=ratio, sentences=sentences, **options)
    return out[0] if single else out
