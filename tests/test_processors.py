"""Ramp-logit tests: scores 0, 1, ..., V-1 make every processor's effect exact."""

import pytest
import torch

from textmill.decoding import BadWords, MinNewTokens, MinP, NoRepeatNGram, RepetitionPenalty, SuppressTokens, Temperature, TopK, TopP
from textmill.errors import ConfigError

INF = float("-inf")


def ramp(v=6, rows=1):
    return torch.arange(v, dtype=torch.float).repeat(rows, 1)


def ids(*rows):
    return torch.tensor(rows)


def check_pure(proc, input_ids, scores):
    before = scores.clone()
    out = proc(input_ids, scores)
    assert torch.equal(scores, before), "a processor modified its input"
    return out


def test_temperature():
    out = check_pure(Temperature(2.0), ids([0]), ramp())
    assert out.tolist() == [[0, 0.5, 1, 1.5, 2, 2.5]]
    with pytest.raises(ConfigError):
        Temperature(0)


def test_top_k():
    assert check_pure(TopK(2), ids([0]), ramp()).tolist() == [[INF, INF, INF, INF, 4, 5]]
    assert check_pure(TopK(99), ids([0]), ramp()).tolist() == ramp().tolist()


def test_top_p_keeps_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.15, 0.3, 0.5]])
    scores = probs.log()
    # 0.5 < 0.6 so the 0.3 token is needed too; 0.5 + 0.3 = 0.8 >= 0.6 so nothing more
    out = check_pure(TopP(0.6), ids([0]), scores)
    assert torch.isinf(out[0, :2]).all() and torch.isfinite(out[0, 2:]).all()
    assert torch.isfinite(TopP(0.5)(ids([0]), scores)).tolist() == [[False, False, False, True]]
    assert torch.isfinite(TopP(1.0)(ids([0]), scores)).all()


def test_top_p_over_a_large_vocabulary_keeps_what_a_full_sort_keeps():
    """Peaked rows take the 256-candidate path, broader ones 4,096, flat ones the full sort; a batch
    mixing them, in any order, keeps in every row the set that sorting the whole vocabulary gives."""
    V = 10_000
    torch.manual_seed(0)
    rows = [-torch.arange(V, dtype=torch.float) * slope for slope in (1.0, 0.002, 0.0001)]
    scores = torch.stack([r[torch.randperm(V)] for r in rows])

    def by_sorting(row, p):
        s, order = row.sort(descending=True)
        probs = s.softmax(-1)
        kept = order[(probs.cumsum(-1) - probs) < p]
        return set(kept.tolist())

    for batch in (scores[:1], scores[:2], scores, scores.flip(0), scores[[2, 0, 2, 1]]):  # each row goes its own way
        out = TopP(0.9)(ids([0] * len(batch)), batch)
        for row, o in zip(batch, out):
            assert set(torch.isfinite(o).nonzero().flatten().tolist()) == by_sorting(row, 0.9)
    assert [int(torch.isfinite(o).sum()) for o in TopP(0.9)(ids([0] * 3), scores)][:2] == [3, 1152]


def test_min_p_scales_with_top_probability():
    probs = torch.tensor([[0.04, 0.16, 0.3, 0.5]])
    out = check_pure(MinP(0.3), ids([0]), probs.log())  # threshold 0.15
    assert torch.isfinite(out).tolist() == [[False, True, True, True]]


def test_repetition_penalty_divides_positive_and_multiplies_negative():
    scores = torch.tensor([[2.0, -2.0, 3.0, 1.0]])
    out = check_pure(RepetitionPenalty(2.0), ids([0, 1, 1]), scores)
    assert out.tolist() == [[1.0, -4.0, 3.0, 1.0]]


def test_no_repeat_ngram_bans_completions():
    # sequence 1 2 3 1 2: the bigram prefix (2,) was followed by 3, the trigram prefix (1, 2) by 3
    out = check_pure(NoRepeatNGram(3), ids([1, 2, 3, 1, 2]), ramp())
    assert out.tolist() == [[0, 1, 2, INF, 4, 5]]
    out = NoRepeatNGram(2)(ids([1, 2, 3, 1, 2]), ramp())
    assert out.tolist() == [[0, 1, 2, INF, 4, 5]]  # after 2 only 3 was seen
    assert NoRepeatNGram(1)(ids([4, 5]), ramp()).tolist() == [[0, 1, 2, 3, INF, INF]]


def test_min_new_tokens_blocks_eos_until_reached():
    proc = MinNewTokens(min_new=2, prompt_len=3, eos_id=2)
    assert check_pure(proc, ids([1, 1, 1, 4]), ramp())[0, 2] == INF
    assert proc(ids([1, 1, 1, 4, 4]), ramp())[0, 2] == 2


def test_bad_words_single_and_multi_token():
    proc = BadWords(((5,), (3, 4)))
    out = check_pure(proc, ids([1, 3], [1, 2]), ramp(rows=2))
    assert out.tolist() == [[0, 1, 2, 3, INF, INF], [0, 1, 2, 3, 4, INF]]


def test_suppress_tokens():
    assert check_pure(SuppressTokens((0, 1)), ids([2]), ramp()).tolist() == [[INF, INF, 2, 3, 4, 5]]


def test_invalid_values_raise_config_errors():
    for make in (lambda: TopK(0), lambda: TopP(0), lambda: TopP(1.5), lambda: MinP(0), lambda: RepetitionPenalty(0),
                 lambda: NoRepeatNGram(0)):
        with pytest.raises(ConfigError):
            make()
