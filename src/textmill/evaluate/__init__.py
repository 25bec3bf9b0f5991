"""Evaluation: metrics, the `eval` runner, and the `compare` leaderboard."""

from .compare import compare, markdown_table
from .metrics import bits_per_char, distinct_n, length_stats, metric_tokens, perplexity, self_bleu
from .runner import evaluate, likelihood, sample_metrics

__all__ = ["bits_per_char", "compare", "distinct_n", "evaluate", "length_stats", "likelihood", "markdown_table",
           "metric_tokens", "perplexity", "sample_metrics", "self_bleu"]
