import pytest

from textmill.evaluation import bits_per_char, distinct_n, length_stats, metric_tokens, perplexity, self_bleu


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


def test_bleu_against_many_references_equals_nltk():
    import random

    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    from textmill.evaluation.bleu import ReferenceSet, self_bleu_scores

    rng = random.Random(0)
    words = "a b c d e f g".split()
    refs = [[rng.choice(words) for _ in range(rng.randint(1, 8))] for _ in range(30)]
    hyps = [[rng.choice(words) for _ in range(rng.randint(1, 8))] for _ in range(40)]
    prepared = ReferenceSet(refs, 5)
    smooth = SmoothingFunction().method1
    for n in (2, 3, 4, 5):
        for h in hyps:
            assert prepared.sentence_bleu(h, n) == pytest.approx(sentence_bleu(refs, h, (1 / n,) * n, smoothing_function=smooth))
    scores = self_bleu_scores(refs, 3)
    for i in range(len(refs)):
        others = refs[:i] + refs[i + 1:]
        assert scores[i] == pytest.approx(sentence_bleu(others, refs[i], (1 / 3,) * 3, smoothing_function=smooth))


def test_bleu_against_references_handles_chinese():
    from textmill.evaluation.metrics import corpus_bleu_against

    same = corpus_bleu_against(["床前明月光"], ["床前明月光", "疑是地上霜"])
    assert same["bleu_2"] == pytest.approx(100.0)
    assert corpus_bleu_against(["举头望明月"], ["床前明月光"])["bleu_2"] < 50

