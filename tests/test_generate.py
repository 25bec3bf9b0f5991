import pytest
import torch

import textmill
from textmill.data import encode_stream
from textmill.decoding import Generator, beam_search, parse_options, token_loop
from textmill.decoding.stopping import EosToken, MaxNewTokens
from textmill.errors import ConfigError, GenerationError
from textmill.models import GPTConfig, NGramConfig, NGramLM, RNNConfig, build_model
from textmill.models.base import sample_tokens
from textmill.tokenizers import CharTokenizer, WordTokenizer

from .helpers import ENGLISH

TOK = CharTokenizer().train([ENGLISH])
PROMPTS = ["First", "All:\nSp", "You are all", "R"]


def generator(family):
    torch.manual_seed(0)
    cfg = (GPTConfig(n_layer=2, n_head=2, n_embd=32, context=24) if family == "gpt"
           else RNNConfig(cell=family, n_layer=1, n_embd=16, hidden=32, context=24))
    return Generator(build_model(cfg, TOK.vocab_size), TOK, {"model": cfg.model_dump()})


@pytest.fixture(params=["gpt", "lstm", "gru"])
def gen(request):
    return generator(request.param)


def test_beam_with_one_beam_equals_greedy(gen):
    greedy = gen.generate(PROMPTS, strategy="greedy", max_new_tokens=15)
    beam = gen.generate(PROMPTS, strategy="beam", num_beams=1, max_new_tokens=15)
    assert beam == greedy


@pytest.mark.parametrize("options", [dict(strategy="greedy"), dict(num_beams=3)])
def test_a_prompt_gives_the_same_output_in_any_batch(gen, options):
    batch = gen.generate(PROMPTS, max_new_tokens=12, **options)
    alone = [gen.generate(p, max_new_tokens=12, **options) for p in PROMPTS]
    assert batch == alone
    assert gen.generate(PROMPTS[::-1], max_new_tokens=12, **options) == batch[::-1]


def test_seeded_sampling_is_reproducible(gen):
    a = gen.generate(PROMPTS, max_new_tokens=20, seed=7, top_k=10, top_p=0.9, temperature=0.8)
    assert a == gen.generate(PROMPTS, max_new_tokens=20, seed=7, top_k=10, top_p=0.9, temperature=0.8)
    assert a != gen.generate(PROMPTS, max_new_tokens=20, seed=8, top_k=10, top_p=0.9, temperature=0.8)


def test_max_new_tokens_and_stop_strings(gen):
    out = gen.generate("F", strategy="greedy", max_new_tokens=20)
    assert len(TOK.encode(out)) <= 20
    stop = out[3:5]
    if stop:
        cut = gen.generate("F", strategy="greedy", max_new_tokens=20, stop=[stop])
        assert cut == out[: out.find(stop)]


@pytest.mark.parametrize("stop", [["\n\n"], ["a stop longer than the first pieces"]])
def test_stream_joins_to_generate(gen, stop):
    kwargs = dict(max_new_tokens=25, seed=3, stop=stop)
    assert "".join(gen.stream("All:", **kwargs)) == gen.generate("All:", **kwargs)
    with pytest.raises(ConfigError, match="beam search has no stream"):
        list(gen.stream("All:", num_beams=2))


def test_num_return_sequences_shapes(gen):
    out = gen.generate(["A", "B"], num_beams=3, num_return_sequences=2, max_new_tokens=5)
    assert len(out) == 2 and all(len(r) == 2 for r in out)
    out = gen.generate("A", num_return_sequences=3, max_new_tokens=5, seed=1)
    assert isinstance(out, list) and len(out) == 3


def test_the_samples_of_a_prompt_continue_that_prompt(gen):
    # a prompt is read once and its state repeated for its samples: with top_k=1 every sample of a
    # prompt is its greedy continuation, whatever the other prompts' lengths (left padding)
    samples = gen.generate(PROMPTS, num_return_sequences=3, top_k=1, max_new_tokens=12, seed=0)
    assert samples == [[g] * 3 for g in gen.generate(PROMPTS, strategy="greedy", max_new_tokens=12)]
    assert len({t for row in gen.generate(PROMPTS, num_return_sequences=3, max_new_tokens=12, seed=0) for t in row}) > 4


def test_min_new_tokens_forbids_early_eos():
    gen = generator("gpt")
    ids, mask = gen.encode_prompts(["A"], truncate=False)
    bias = torch.zeros(TOK.vocab_size)
    bias[TOK.eos_id] = 100.0  # end-of-sequence is overwhelmingly likely

    class EosLoving:
        max_context = None

        def start(self, cond):
            return gen.model.start(cond)

        def step(self, tokens, state, mask=None):
            logits, state = gen.model.step(tokens, state, mask)
            return logits + bias, state

        def reorder(self, state, index):
            return gen.model.reorder(state, index)

    model = EosLoving()
    stopping = [MaxNewTokens(10, ids.shape[1]), EosToken(TOK.eos_id)]
    steps = list(token_loop(model, ids, mask, [], stopping, do_sample=False, pad_id=0))
    assert len(steps) == 1 and int(steps[0][0][0]) == TOK.eos_id
    opts = gen.processors(parse_options({"min_new_tokens": 4, "strategy": "greedy"}), ids.shape[1])
    steps = list(token_loop(model, ids, mask, opts, stopping, do_sample=False, pad_id=0))
    assert len(steps) == 5 and int(steps[4][0][0]) == TOK.eos_id
    found = beam_search(model, ids, mask, opts, num_beams=2, max_new_tokens=10, eos_id=TOK.eos_id)
    assert len(found[0][0][1]) == 5


def test_prompt_longer_than_context():
    gen = generator("gpt")  # context 24
    long = "x" * 40
    with pytest.raises(GenerationError, match="context is 24.*truncate_prompt"):
        gen.generate(long, max_new_tokens=3)
    long = "All:\n" * 8  # 41 tokens with <bos>: its end is kept, and it is what the model continues
    ids, mask = gen.encode_prompts([long], truncate=True)
    assert mask.all() and ids[0].tolist() == TOK.encode(long, add_bos=True)[-24:]
    alone = gen.generate(long, max_new_tokens=3, truncate_prompt=True, strategy="greedy")
    kept = Generator(gen.model, TOK).generate([long], max_new_tokens=3, truncate_prompt=True, strategy="greedy")[0]
    assert alone == kept and 0 < len(TOK.encode(alone)) <= 3
    # an RNN has no context limit: the whole prompt is read, so its first characters change the output
    rnn = generator("lstm")
    whole = rnn.generate(long, max_new_tokens=3, strategy="greedy")
    assert rnn.encode_prompts([long], truncate=False)[0].shape[1] == len(TOK.encode(long, add_bos=True))
    assert len(TOK.encode(whole)) <= 3


def test_bad_options_are_clear():
    gen = generator("gpt")
    with pytest.raises(ConfigError, match="top_p"):
        gen.generate("A", top_p=2.0)
    with pytest.raises(ConfigError, match="num_beams=3 needs strategy 'beam'"):
        gen.generate("A", strategy="sample", num_beams=3)
    with pytest.raises(ConfigError, match="top_q: unknown option; allowed: max_new_tokens"):
        gen.generate("A", top_q=3)


def test_bad_words_never_appear():
    gen = generator("gpt")
    free = gen.generate(PROMPTS, strategy="greedy", max_new_tokens=30)
    common = max(set("".join(free)) - {"\n"}, key="".join(free).count)
    banned = gen.generate(PROMPTS, strategy="greedy", max_new_tokens=30, bad_words=[common])
    assert all(common not in text for text in banned)


def test_sample_tokens_follows_the_softmax_and_never_draws_a_masked_token(monkeypatch):
    probs = torch.tensor([0.1, 0.2, 0.0, 0.7, 0.0])
    logits = probs.log().expand(40_000, -1)  # log 0 = -inf: masked, as top-k and top-p leave it
    drawn = sample_tokens(logits, torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.bincount(drawn, minlength=5) / len(drawn), probs, atol=0.01, rtol=0)
    assert torch.equal(drawn, sample_tokens(logits, torch.Generator().manual_seed(0)))  # seeded: reproducible
    # the uniform number landing on the total (rounding) draws the last token of positive probability
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.ones(*shape))
    assert sample_tokens(logits[:3]).tolist() == [3, 3, 3]


def test_a_text_written_from_its_start_drops_the_prefix_space():
    docs = ["the cat sat", "a cat ran", "the dog sat", "a dog ran"] * 5
    tok = WordTokenizer(prefix_space=True).train(docs)
    assert " the" in tok.stoi and "the" not in tok.stoi  # one token per word, wherever it stands
    cfg = NGramConfig(order=2)
    gen = Generator(NGramLM(cfg, tok.vocab_size).fit(encode_stream(tok, docs)), tok, {"model": cfg.model_dump()})
    texts = gen.generate([""] * 20, strategy="sample", seed=0)
    assert all(t and t == t.lstrip() and set(t.split()) <= {"the", "a", "cat", "dog", "sat", "ran"} for t in texts)
    assert "".join(gen.stream("", strategy="sample", seed=3)) == gen.generate("", strategy="sample", seed=3)
    assert gen.generate("the cat", strategy="greedy") in (" sat", " ran")  # a continuation keeps its space


def test_end_of_text_stays_possible_when_bos_is_eos(tiny_run):
    """GPT-2 style vocabularies use one <|endoftext|> as bos and eos: suppressing bos must not forbid the end."""
    gen = textmill.load(tiny_run)

    class SameBosEos(type(gen.tokenizer)):
        @property
        def bos_id(self):
            return self.eos_id

    gen.tokenizer.__class__ = SameBosEos
    opts = parse_options({"strategy": "greedy"})
    suppressed = [p for p in gen.processors(opts, 1) if type(p).__name__ == "SuppressTokens"][0]
    assert gen.tokenizer.eos_id not in suppressed.token_ids and gen.tokenizer.pad_id in suppressed.token_ids


def test_seeded_and_unseeded_work_leaves_the_global_random_state_alone(tiny_run, corpus, tmp_path):
    """Seeded work draws from its own torch.Generator: generating (with a seed or without, where
    torch.seed() used to reseed the global generator), a batch engine's job and training all leave the
    caller's global random state where it was."""
    import threading

    from textmill.decoding.batching import BatchEngine, Finished, Job

    from .helpers import tiny_config

    gen = textmill.load(tiny_run)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    gen.generate(["Al", "Fi"], max_new_tokens=4)
    gen.generate("Al", max_new_tokens=4, seed=1)
    engine, done = BatchEngine(gen, max_rows=4), threading.Event()
    try:
        engine.submit(Job("Al", parse_options({"max_new_tokens": 4}), lambda e: isinstance(e, Finished) and done.set()))
        assert done.wait(30)
    finally:
        engine.close()
    textmill.train(tiny_config(corpus, max_steps=2), tmp_path / "r", progress=False)
    assert torch.equal(torch.rand(3), expected)
