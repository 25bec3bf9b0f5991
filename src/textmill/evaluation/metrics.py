"""Text metrics that work on English and Chinese alike.

Diversity and length metrics count *metric tokens*: each CJK character, each run of letters or
digits, each punctuation mark. Perplexity is per model token; bits per character divides by the
characters of the text instead, so it compares models with different tokenizers.

Reference-based metrics: BLEU and chrF come from sacrebleu on detokenized text (its `zh` tokenizer
when the references are Chinese, `13a` otherwise; the signature is reported with the score); ROUGE
from rouge-score with a tokenizer that keeps each CJK character as a token (its default drops them).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence

from ..tokenizers.word import CJK

_METRIC_TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+|[^\w\s]")
_CJK_CHAR = re.compile(rf"[{CJK}]")
_CJK_SPLIT = re.compile(rf"([{CJK}])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")


def metric_tokens(text: str) -> list[str]:
    return _METRIC_TOKEN.findall(text)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`: a sentence ends at . ! ? followed by space, at 。！？, or at a line
    break (abbreviations such as "U.S." can end one early)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def join_sentences(sentences: Sequence[str]) -> str:
    """Sentences as one text: Chinese ones run on, others take a space between."""
    return ("" if is_chinese(sentences) else " ").join(sentences)


def perplexity(mean_nll: float) -> float:
    """exp(mean negative log-likelihood per token in nats), capped to stay finite."""
    return math.exp(min(mean_nll, 700.0))


def bits_per_char(mean_nll: float, tokens_per_char: float) -> float:
    return mean_nll * tokens_per_char / math.log(2)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over the whole set (Li et al. 2016); 0 when there are none."""
    grams = [tuple(toks[i:i + n]) for toks in map(metric_tokens, texts) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str], n: int = 4) -> float:
    """Self-BLEU-n (0-100; Zhu et al. 2018): the mean BLEU of each text against all the others, as
    Texygen computes it (see bleu.py). Higher means less diverse. Texts are split into metric tokens,
    so Chinese is scored by character."""
    from .bleu import self_bleu as _self_bleu

    pool = [toks for toks in map(metric_tokens, texts) if toks]
    return 100 * _self_bleu(pool, n) if len(pool) > 1 else 0.0


def corpus_bleu_against(hypotheses: Sequence[str], references: Sequence[str], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[str, float]:
    """BLEU-n (0-100) of each hypothesis against all the references, averaged (Texygen's protocol
    for unconditional generation; see bleu.py), for each n in `orders`."""
    from .bleu import ReferenceSet

    refs = ReferenceSet([metric_tokens(r) for r in references], max(orders))
    hyps = [metric_tokens(h) for h in hypotheses]
    return {f"bleu_{n}": 100 * refs.bleu(hyps, n) for n in orders}


def is_chinese(texts: Sequence[str], sample: int = 200) -> bool:
    """Whether CJK characters make up at least a third of the non-space characters."""
    chars = "".join(texts[:sample]).replace(" ", "")
    return bool(chars) and len(_CJK_CHAR.findall(chars)) / len(chars) >= 1 / 3


def bleu(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 4) -> tuple[float, str]:
    """Corpus BLEU-`max_n` (0-100) of detokenized text and its sacrebleu signature."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize="zh" if is_chinese(references) else "13a", max_ngram_order=max_n)
    return metric.corpus_score(list(hypotheses), [list(references)]).score, str(metric.get_signature())


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """Corpus chrF (0-100; character n-grams, so no tokenizer) and its sacrebleu signature."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return metric.corpus_score(list(hypotheses), [list(references)]).score, str(metric.get_signature())


class RougeTokenizer:
    """rouge-score's tokenizer (lowercase alphanumeric runs, Porter stemming) plus one token per CJK
    character, which its default silently drops."""

    def __init__(self, use_stemmer: bool = True) -> None:
        from rouge_score.tokenizers import DefaultTokenizer

        self.base = DefaultTokenizer(use_stemmer=use_stemmer)

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for i, piece in enumerate(_CJK_SPLIT.split(text)):
            if i % 2:
                out.append(piece)
            elif piece.strip():
                out.extend(self.base.tokenize(piece))
        return out


def rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (0-100)."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=RougeTokenizer())
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for h, r in zip(hypotheses, references):
        for key, score in scorer.score(r, h).items():
            totals[key] += score.fmeasure
    return {k: 100 * v / max(len(hypotheses), 1) for k, v in totals.items()}


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share (0-100) of hypotheses equal to their reference, ignoring case and runs of whitespace."""
    norm = lambda t: " ".join(t.lower().split())  # noqa: E731
    return 100 * sum(norm(h) == norm(r) for h, r in zip(hypotheses, references)) / max(len(hypotheses), 1)


def reference_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """Every reference-based score of a set of outputs, plus distinct-1/2 and the length ratio."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    scores: dict[str, float | str] = {}
    scores["bleu"], scores["bleu_signature"] = bleu(hypotheses, references)
    for n in (1, 2):
        scores[f"bleu_{n}"] = bleu(hypotheses, references, n)[0]
    scores["chrf"], scores["chrf_signature"] = chrf(hypotheses, references)
    scores.update(rouge(hypotheses, references))
    scores["exact_match"] = exact_match(hypotheses, references)
    scores["distinct_1"], scores["distinct_2"] = distinct_n(hypotheses, 1), distinct_n(hypotheses, 2)
    ref_len = sum(len(metric_tokens(r)) for r in references)
    scores["length_ratio"] = sum(len(metric_tokens(h)) for h in hypotheses) / max(ref_len, 1)
    return scores


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Length in metric tokens and in characters."""
    toks = [len(metric_tokens(t)) for t in texts] or [0]
    chars = [len(t) for t in texts] or [0]
    return {"mean_tokens": statistics.fmean(toks), "median_tokens": statistics.median(toks),
            "min_tokens": min(toks), "max_tokens": max(toks),
            "std_tokens": statistics.pstdev(toks), "mean_chars": statistics.fmean(chars)}
