"""Evaluation: metrics, the `eval` runner (language models and encoder-decoders), `compare`, plots."""

from .compare import compare, markdown_table
from .metrics import (
    bits_per_char,
    bleu,
    chrf,
    distinct_n,
    exact_match,
    length_stats,
    metric_tokens,
    perplexity,
    reference_scores,
    rouge,
    self_bleu,
)
from .pairs import score_pairs
from .runner import evaluate, likelihood, sample_metrics

__all__ = ["bits_per_char", "bleu", "chrf", "compare", "distinct_n", "evaluate", "exact_match", "length_stats",
           "likelihood", "markdown_table", "metric_tokens", "perplexity", "reference_scores", "rouge", "sample_metrics",
           "score_pairs", "self_bleu"]
