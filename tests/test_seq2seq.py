import json
import random

import pytest
import torch
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.config import TrainConfig
from textmill.data.datasets import pad_right
from textmill.decoding import Seq2SeqGenerator
from textmill.errors import ConfigError, GenerationError
from textmill.models import Seq2SeqConfig, TransformerConfig, build_model
from textmill.training.objectives import cross_entropy
from textmill.training.optim import build_optimizer

from .helpers import GERMAN, pair_config

V = 40
BAHDANAU = Seq2SeqConfig(attention="bahdanau", cell="lstm", n_embd=12, hidden=16, encoder_layers=2, decoder_layers=2)
TRANSFORMER = TransformerConfig(encoder_layers=2, decoder_layers=2, n_head=2, n_embd=16, ffn=32, context=4, dropout=0.0)


def make(cfg):
    torch.manual_seed(0)
    return build_model(cfg, V).eval()


def sources():
    return pad_right([[5, 6, 7, 8, 2], [9, 10, 2], [11, 12, 13, 14, 15, 16, 2]])


@pytest.mark.parametrize("cfg", [BAHDANAU, TRANSFORMER], ids=["bahdanau", "transformer"])
def test_overfits_one_batch(cfg):
    model = make(cfg).train()
    opt = build_optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.0))
    src, mask = sources()
    tgt = torch.tensor([[1, 20, 21, 22, 2], [1, 23, 2, 0, 0], [1, 24, 25, 26, 27]])
    for _ in range(200):
        loss = cross_entropy(model(src, mask, tgt[:, :-1]), tgt[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_teacher_forcing_below_one_feeds_the_models_own_guesses():
    cfg = Seq2SeqConfig(attention="luong-dot", input_feeding=False, n_embd=12, hidden=16, dropout=0.0)
    src, mask = sources()
    tgt = torch.randint(4, V, (3, 6))
    forced = make(cfg).train()(src, mask, tgt)
    torch.manual_seed(1)
    free = make(cfg.model_copy(update={"teacher_forcing": 0.0})).train()(src, mask, tgt)
    torch.testing.assert_close(free[:, 0], forced[:, 0])  # the first step always reads <bos>
    assert not torch.allclose(free[:, 1:], forced[:, 1:])


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    rng = random.Random(0)
    d = tmp_path_factory.mktemp("pairs")
    rows = [rng.choices(list(GERMAN), k=rng.randint(2, 5)) for _ in range(240)]
    (d / "train.de").write_text("".join(" ".join(r) + "\n" for r in rows), encoding="utf-8")
    (d / "train.en").write_text("".join(" ".join(GERMAN[w] for w in r) + "\n" for r in rows), encoding="utf-8")
    return d


@pytest.fixture(scope="module", params=["seq2seq", "transformer"])
def trained(request, pairs_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / request.param
    textmill.train(pair_config(pairs_dir, request.param, max_steps=300, eval_every=150), run)
    return run


PROMPTS = ["eins zwei drei", "hund", "katze vier fünf eins", "zwei zwei"]


def test_a_trained_run_translates(trained):
    gen = textmill.load(trained)
    assert isinstance(gen, Seq2SeqGenerator) and not gen.continues_prompt
    out = gen.generate(PROMPTS, num_beams=3, max_new_tokens=10)
    assert out[0] == "one two three" and out[2] == "cat four five one"
    events = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert events[0]["kind"] == "data" and events[0]["train"]["pairs"] == 216


def test_beam_of_one_is_greedy_and_batches_do_not_matter(trained):
    gen = textmill.load(trained)
    greedy = gen.generate(PROMPTS, strategy="greedy", max_new_tokens=8)
    assert gen.generate(PROMPTS, num_beams=1, strategy="beam", max_new_tokens=8) == greedy
    for options in (dict(strategy="greedy"), dict(num_beams=3, no_repeat_ngram_size=2)):
        batch = gen.generate(PROMPTS, max_new_tokens=8, **options)
        assert batch == [gen.generate(p, max_new_tokens=8, **options) for p in PROMPTS]
    assert "".join(gen.stream("eins zwei", seed=3, max_new_tokens=8)) == gen.generate("eins zwei", seed=3, max_new_tokens=8)


def test_no_repeat_ngram_blocking_in_beam_search(trained):
    gen = textmill.load(trained)
    free = gen.tokenizer.encode(gen.generate("zwei zwei zwei zwei", num_beams=3, max_new_tokens=8))
    assert len(free) > len(set(free))  # the translation repeats " two"
    blocked = gen.tokenizer.encode(gen.generate("zwei zwei zwei zwei", num_beams=3, no_repeat_ngram_size=1, max_new_tokens=8))
    assert len(blocked) == len(set(blocked))


def test_attention_map_and_plot(trained, tmp_path):
    gen = textmill.load(trained)
    amap = gen.attention("eins zwei drei", max_new_tokens=10)
    assert amap.source == ["eins", " zwei", " drei", "<eos>"]
    assert amap.weights.shape == (len(amap.target), 4)
    assert amap.weights.sum(1) == pytest.approx(1.0, abs=1e-5)
    res = CliRunner().invoke(app, ["generate", str(trained), "-p", "hund katze", "--greedy", "--plot-attention",
                                   str(tmp_path / "a.png")])
    assert res.exit_code == 0, res.output
    assert "hund katze\n=> " in res.output and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_source_longer_than_the_encoder_limit(trained):
    gen = textmill.load(trained)
    too_long = " ".join(["eins"] * 300)  # max_source_len is 256
    with pytest.raises(GenerationError, match="reads at most 256.*truncate_prompt"):
        gen.generate(too_long)
    src, mask = gen.encode_sources([too_long], truncate=True)
    assert src.shape[1] == 256 and mask.all()  # cut to max_source_len, as the task keeps it (its start, for translation)
    assert src[0].tolist() == gen.encode_sources([" ".join(["eins"] * 255)], truncate=False)[0][0].tolist()
    greedy = {"max_new_tokens": 3, "strategy": "greedy"}
    assert gen.generate(too_long, truncate_prompt=True, **greedy) == gen.generate(" ".join(["eins"] * 255), **greedy)


def test_eval_scores_outputs_and_writes_predictions(trained, pairs_dir, tmp_path):
    res = CliRunner().invoke(app, ["eval", str(trained), "--data", str(pairs_dir / "train.de"), "--target",
                                   str(pairs_dir / "train.en"), "--limit", "30", "--num-beams", "2",
                                   "--out", str(tmp_path / "e.json"), "--predictions", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["pairs"] == 30 and report["bleu"] > 60 and report["perplexity"] < 2
    assert report["bleu_signature"].startswith("nrefs:1|case:mixed") and "tok:13a" in report["bleu_signature"]
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and set(rows[0]) == {"source", "reference", "prediction"}
    default = textmill.evaluate(trained, limit=5, num_beams=1)  # the validation split
    assert default["data"].endswith("(validation split)") and default["pairs"] == 5


def test_resume_reproduces_a_seq2seq_run(pairs_dir, tmp_path):
    cfg = pair_config(pairs_dir, "seq2seq", max_steps=16, eval_every=8, log_every=1)
    cfg["model"]["dropout"] = 0.2
    textmill.train(cfg, tmp_path / "full")

    def crash(event):
        if event["kind"] == "step" and event["step"] == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textmill.train(cfg, tmp_path / "part", callback=crash)
    textmill.train(cfg, tmp_path / "part", resume=True)
    losses = [{e["step"]: e["loss"] for e in map(json.loads, (tmp_path / r / "metrics.jsonl").read_text().splitlines())
               if e["kind"] == "train"} for r in ("full", "part")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and len(losses[0]) == 16


def test_separate_vocabularies_and_dialogue_markers(tmp_path):
    (tmp_path / "d.txt").write_text("hi there __eou__ hello you __eou__ how are you __eou__ fine thanks __eou__\n" * 20)
    cfg = {"model": {"family": "transformer", "encoder_layers": 1, "decoder_layers": 1, "n_embd": 16, "n_head": 2,
                     "ffn": 32, "share_embeddings": False},
           "tokenizer": {"kind": "word"}, "source_tokenizer": {"kind": "char"},
           "data": {"task": "dialogue", "source": str(tmp_path / "d.txt"), "val_fraction": 0.2},
           "train": {"max_steps": 4, "batch_size": 4, "eval_every": 4, "threads": 1}}
    textmill.train(cfg, tmp_path / "run")
    gen = textmill.load(tmp_path / "run")
    assert gen.source_tokenizer.kind == "char" and gen.tokenizer.kind == "word"
    assert "<user>" in gen.source_tokenizer.specials and (tmp_path / "run" / "source_tokenizer.json").is_file()
    assert isinstance(gen.generate("hi there\nhello you", max_new_tokens=4, seed=0), str)


def test_attention_none_has_nothing_to_plot(pairs_dir, tmp_path):
    cfg = pair_config(pairs_dir, max_steps=2, eval_every=2)
    cfg["model"]["attention"] = "none"
    textmill.train(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="no attention to show"):
        textmill.load(tmp_path / "run").attention("eins")
