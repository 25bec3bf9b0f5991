import pytest

from textmill.evaluate import bits_per_char, distinct_n, length_stats, metric_tokens, perplexity, self_bleu


def test_metric_tokens_split_cjk_by_character():
    assert metric_tokens("Hello, world! 床前明月光。") == ["Hello", ",", "world", "!", "床", "前", "明", "月", "光", "。"]


def test_distinct_n_exact():
    texts = ["a b a b", "a b c"]
    # unigrams: a b a b a b c -> 3 unique / 7; bigrams: ab ba ab ab bc -> 3 unique / 5
    assert distinct_n(texts, 1) == pytest.approx(3 / 7)
    assert distinct_n(texts, 2) == pytest.approx(3 / 5)
    assert distinct_n(["a"], 2) == 0.0


def test_self_bleu_extremes():
    same = ["the cat sat on the mat today"] * 5
    assert self_bleu(same) == pytest.approx(100.0)
    different = ["alpha beta gamma delta", "one two three four", "red green blue yellow"]
    assert self_bleu(different) == pytest.approx(0.0, abs=1e-6)
    assert 0 < self_bleu(["床前明月光", "床前明月来", "举头望明月"]) < 100


def test_length_stats_and_conversions():
    stats = length_stats(["a b c", "a"])
    assert stats["mean_tokens"] == 2 and stats["max_tokens"] == 3 and stats["min_tokens"] == 1
    assert perplexity(0.0) == 1.0
    assert bits_per_char(0.6931471805599453, 0.5) == pytest.approx(0.5)
