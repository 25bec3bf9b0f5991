"""n-gram models: probabilities pinned by hand, normalisation, ARPA round trips, step == score."""

import math
import re
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import textmill
from textmill.config import validate_config
from textmill.data import encode_stream
from textmill.errors import ConfigError, DataError
from textmill.exchange.arpa import escape, export_arpa, import_arpa, unescape, write_arpa
from textmill.models import Conditioning, NGramConfig, NGramLM
from textmill.tokenizers import CharTokenizer, WhitespaceTokenizer

DOCS = ["a b", "a b", "a c"]


def fit(docs, order=2, smoothing="kneser_ney", tok=None):
    tok = tok or WhitespaceTokenizer().train(docs)
    model = NGramLM(NGramConfig(order=order, smoothing=smoothing), tok.vocab_size).fit(encode_stream(tok, docs))
    return model, tok


def token_logprobs(model, tok, text):
    return model.score_stream(encode_stream(tok, [text]))


def test_kneser_ney_probabilities_by_hand():
    # Unigram continuation counts: a 1 (after <s>), b 1, c 1, </s> 2 (after b and c); total 5.
    # Too little data for Chen-Goodman discounts, so the fallback D1=0.5, D2=1.0, D3+=1.5 applies.
    # gamma() = (3 x 0.5 + 1.0) / 5 = 0.5, uniform over 5 predictable tokens (</s> <unk> a b c):
    # p(a) = 0.5/5 + 0.5/5 = 0.2, p(</s>) = 1/5 + 0.1 = 0.3, p(<unk>) = 0.1.
    # Bigrams: p(a|<s>) = (3-1.5)/3 + 0.5 p(a) = 0.6; p(b|a) = (2-1)/3 + 0.5 p(b) = 0.4333...;
    # p(</s>|b) = (2-1)/2 + 0.5 p(</s>) = 0.65.
    model, tok = fit(DOCS)
    got = np.exp(token_logprobs(model, tok, "a b"))
    np.testing.assert_allclose(got, [0.6, 1 / 3 + 0.1, 0.65], rtol=1e-9)
    # unseen continuation of a: back off with gamma(a) = (1.0 + 0.5) / 3 = 0.5 -> p(a|a) = 0.5 x 0.2
    np.testing.assert_allclose(np.exp(token_logprobs(model, tok, "a a"))[1], 0.1, rtol=1e-9)
    np.testing.assert_allclose(np.exp(token_logprobs(model, tok, "zzz"))[0], 0.6 * 0 + 0.5 * 0.1, rtol=1e-9)


def test_add_k_probabilities_by_hand():
    model, tok = fit(DOCS, smoothing="add_k")
    # p(a|<s>) = (3+1)/(3+5), p(b|a) = (2+1)/(3+5), p(</s>|b) = (2+1)/(2+5)
    np.testing.assert_allclose(np.exp(token_logprobs(model, tok, "a b")), [4 / 8, 3 / 8, 3 / 7], rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(docs=st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=8).map(" ".join), min_size=1, max_size=8),
       order=st.integers(1, 4), smoothing=st.sampled_from(["kneser_ney", "add_k"]),
       history=st.lists(st.sampled_from("abcdez"), max_size=4))
def test_every_next_token_distribution_sums_to_one(docs, order, smoothing, history):
    model, tok = fit(docs, order, smoothing)
    ids = tok.encode(" ".join(history), add_bos=True)
    logits, _ = model.step(torch.tensor([ids]), model.start(Conditioning(1)))
    assert math.isclose(float(logits.double().exp().sum()), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_step_interface_matches_stream_scoring(smoothing):
    text = "the cat sat on the mat . the dog sat on the cat ."
    model, tok = fit([text, "a cat and a dog ."], order=3, smoothing=smoothing)
    target = "the dog sat on the mat ."
    ids = tok.encode(target, add_bos=True, add_eos=True)
    state = model.start(Conditioning(1))
    stepped = []
    for prev, nxt in zip(ids[:-1], ids[1:]):
        logits, state = model.step(torch.tensor([[prev]]), state)
        stepped.append(float(logits[0, nxt]))
    np.testing.assert_allclose(stepped, token_logprobs(model, tok, target), rtol=1e-5)


def independent_arpa_logprob(path, words):
    """A reader written from the ARPA format description: log10 P of `words` after <s>."""
    probs, backoffs, order = {}, defaultdict(float), 0
    for line in open(path, encoding="utf-8"):
        if m := re.match(r"\\(\d+)-grams:", line.strip()):
            order = int(m.group(1))
            continue
        parts = line.split()
        if order and len(parts) >= order + 1 and not line.startswith("\\"):
            gram = tuple(parts[1:order + 1])
            probs[gram] = float(parts[0])
            if len(parts) == order + 2:
                backoffs[gram] = float(parts[-1])
    n = max(map(len, probs))

    def p(history, w):
        if (*history, w) in probs:
            return probs[(*history, w)]
        return backoffs[tuple(history)] + p(history[1:], w)

    seq, total = ["<s>"], 0.0
    for w in words:
        total += p(seq[-(n - 1):] if n > 1 else [], w)
        seq.append(w)
    return total


@pytest.mark.parametrize("kind,order", [("char", 4), ("whitespace", 3)])
def test_arpa_export_scores_the_same_in_an_independent_reader(tmp_path, kind, order):
    docs = ["the cat sat on the mat", "the dog sat on a log", "a cat and a dog met"] * 3
    tok = CharTokenizer().train(docs) if kind == "char" else WhitespaceTokenizer().train(docs)
    model, tok = fit(docs, order, tok=tok)
    path = tmp_path / "lm.arpa"
    write_arpa(model, tok, path)
    for text in ("the cat sat on a log", "a dog met the mat"):
        pieces = [escape(tok.decode([i], skip_special=False)) for i in tok.encode(text, add_eos=True)]
        ours = token_logprobs(model, tok, text).sum() / math.log(10)
        assert independent_arpa_logprob(path, pieces) == pytest.approx(ours, abs=1e-4)


@pytest.mark.parametrize("kind", ["char", "word", "whitespace"])
def test_arpa_round_trip_through_a_run_directory_keeps_every_score(tmp_path, corpus, kind):
    """The README's import command, with its default --tokenizer auto, gives back the exported run:
    the same tokens, scores, generations and perplexity (`eval` reads an imported run's data one
    document per line, as ARPA tools do, and the original's too when it was trained on lines)."""
    run = tmp_path / "run"
    textmill.train({"model": {"family": "ngram", "order": 3}, "tokenizer": {"kind": kind, "prefix_space": kind == "word"},
                    "data": {"source": str(corpus), "format": "lines"}}, run)
    export_arpa(run, tmp_path / "lm.arpa")
    imported = import_arpa(tmp_path / "lm.arpa", tmp_path / "imported")
    a, b = textmill.load(run), textmill.load(imported)
    assert b.tokenizer.to_document() == a.tokenizer.to_document()
    text = "First Citizen: Speak, speak."
    np.testing.assert_allclose(token_logprobs(a.model, a.tokenizer, text), token_logprobs(b.model, b.tokenizer, text), atol=1e-5)
    assert a.generate("All", strategy="greedy", max_new_tokens=8) == b.generate("All", strategy="greedy", max_new_tokens=8)
    ours = textmill.evaluate(run, str(corpus), samples=0)
    theirs = textmill.evaluate(imported, str(corpus), samples=0)
    assert theirs["perplexity"] == pytest.approx(ours["perplexity"], rel=1e-4) and theirs["oov_rate"] == ours["oov_rate"] == 0
    assert "one document per line" in theirs["data"]
    with pytest.raises(DataError, match=f"exported from a run with a '{kind}' tokenizer"):
        import_arpa(tmp_path / "lm.arpa", tmp_path / "other", "char" if kind != "char" else "whitespace")


def test_bpe_ngram_models_are_refused_by_arpa_export(tmp_path, corpus):
    run = tmp_path / "run"
    textmill.train({"model": {"family": "ngram", "order": 2}, "tokenizer": {"kind": "bpe", "vocab_size": 300},
                    "data": {"source": str(corpus)}}, run)
    with pytest.raises(DataError, match="decode to the same text"):
        export_arpa(run, tmp_path / "lm.arpa")
    assert not (tmp_path / "lm.arpa").exists()


def test_import_a_kenlm_style_file(tmp_path):
    arpa = tmp_path / "k.arpa"
    arpa.write_text("\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.3\n-0.5\thello\t-0.2\n"
                    "-0.6\t</s>\t0\n\n\\2-grams:\n-0.1\t<s> hello\n-0.2\thello </s>\n\n\\end\\\n")
    run = import_arpa(arpa, tmp_path / "run")
    gen = textmill.load(run)
    lp = token_logprobs(gen.model, gen.tokenizer, "hello") / math.log(10)
    np.testing.assert_allclose(lp, [-0.1, -0.2], atol=1e-9)
    lp = token_logprobs(gen.model, gen.tokenizer, "hello hello") / math.log(10)
    np.testing.assert_allclose(lp, [-0.1, -0.2 - 0.5, -0.2], atol=1e-9)


def test_bad_arpa_and_unsupported_exports(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\ta\n\\end\\\n")
    with pytest.raises(DataError, match="do not match"):
        import_arpa(bad, tmp_path / "r")
    model, tok = fit(DOCS, smoothing="add_k")
    with pytest.raises(DataError, match="add-k is not one"):
        write_arpa(model, tok, tmp_path / "x.arpa")
    with pytest.raises(ConfigError, match="64-bit"):
        NGramLM(NGramConfig(order=10), 100_000)
    with pytest.raises(ConfigError, match="order must be between 1 and 10"):
        validate_config({"model": {"family": "ngram", "order": 0}, "data": {"source": "x"}})


def test_escaping_round_trips():
    for token in (" ", "\n", "\\", " cat", "a\tb", "\u3000", "<bos>", "<eos>", "<unk>", "好"):
        assert unescape(escape(token)) == token
        assert not any(c.isspace() for c in escape(token))


def test_generation_strategies_work_on_ngram(corpus, tmp_path):
    run = tmp_path / "run"
    textmill.train({"model": {"family": "ngram", "order": 5}, "data": {"source": str(corpus)}}, run)
    gen = textmill.load(run)
    prompts = ["First", "All:\nSp", "You"]
    assert gen.generate(prompts, num_beams=1, strategy="beam", max_new_tokens=10) == \
        gen.generate(prompts, strategy="greedy", max_new_tokens=10)
    assert gen.generate(prompts, num_beams=3, max_new_tokens=10) == [gen.generate(p, num_beams=3, max_new_tokens=10) for p in prompts]
    assert gen.generate("First", max_new_tokens=20, seed=1, top_p=0.9) == gen.generate("First", max_new_tokens=20, seed=1, top_p=0.9)
    report = textmill.evaluate(run, str(corpus), samples=5, max_new_tokens=10)
    assert report["perplexity"] < 3 and report["oov_rate"] == 0


def test_cli_train_eval_and_arpa_commands(tmp_path, corpus):
    import yaml
    from typer.testing import CliRunner

    from textmill.cli import app

    cfg = tmp_path / "ng.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"family": "ngram", "order": 4}, "data": {"source": str(corpus)}}))
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(run)])
    assert res.exit_code == 0 and "fitted" in res.output, res.output
    res = runner.invoke(app, ["eval", str(run), "--samples", "3", "--max-new-tokens", "5"])
    assert res.exit_code == 0 and "oov_rate" in res.output, res.output
    res = runner.invoke(app, ["info", str(run)])
    assert res.exit_code == 0 and "n-grams" in res.output
    res = runner.invoke(app, ["arpa", "export", str(run), str(tmp_path / "m.arpa")])
    assert res.exit_code == 0 and "\n\n\\data\\\n" in (tmp_path / "m.arpa").read_text()
    res = runner.invoke(app, ["arpa", "import", str(tmp_path / "m.arpa"), "--out", str(tmp_path / "imp")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["generate", str(tmp_path / "imp"), "-p", "All", "--greedy", "--max-new-tokens", "5"])
    assert res.exit_code == 0 and res.output.startswith("All")


def test_a_whitespace_model_continues_a_prompt_after_a_space(tmp_path):
    """`generate -p "A man"` on a whitespace-tokenized run printed "A manstanding in the woods."."""
    from typer.testing import CliRunner

    from textmill.cli import app

    data = tmp_path / "d.txt"
    data.write_text("A man standing in the woods .\nA dog running in the park .\n" * 20, encoding="utf-8")
    run = tmp_path / "run"
    textmill.train({"model": {"family": "ngram", "order": 3}, "tokenizer": {"kind": "whitespace"},
                    "data": {"source": str(data), "format": "lines"}}, run, progress=False)
    res = CliRunner().invoke(app, ["generate", str(run), "-p", "A man", "--greedy", "--max-new-tokens", "6"])
    assert res.exit_code == 0 and res.output.startswith("A man standing in the "), res.output
    assert textmill.load(run).generate("", strategy="greedy", max_new_tokens=3).startswith("A ")
