"""Fine-tuning (`train.init_from`): a run starts from another run's weights and tokenizer, with the
control tokens it needs added; `--generator gpt:RUN` fine-tunes a base for synthetic data."""

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.config import TokenizerConfig, load_config
from textmill.errors import CheckpointError, ConfigError
from textmill.synth.generators import build_generator
from textmill.tokenizers import build_tokenizer, load_tokenizer, vocab_index

from .helpers import ENGLISH, reviews, tiny_config


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    """The tiny corpus as labelled rows: each speech with its speaker."""
    path = tmp_path_factory.mktemp("data") / "speakers.jsonl"
    blocks = [b.partition(":\n") for b in ENGLISH.split("\n\n") if b.strip()]
    path.write_text("".join(json.dumps({"text": text, "label": who}) + "\n" for who, _, text in blocks), encoding="utf-8")
    return path


def finetune_config(base, data, *, model=None, **train):
    cfg = tiny_config(data, init_from=str(base), **train)
    del cfg["tokenizer"]
    cfg["data"].update(format="jsonl", label_field="label")
    cfg["model"].update(model or {})
    return cfg


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_added_control_tokens_move_the_other_ids_up(kind, tmp_path):
    tok = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=300), [ENGLISH])
    more = tok.with_control_tokens(["<label=All>", "<label=First Citizen>"])
    text = "Before we proceed any further, hear me speak."
    ids = more.encode("<label=All>" + text)
    assert ids[0] == 4 and more.vocab_size == tok.vocab_size + 2 and more.decode(ids) == text
    index = vocab_index(tok, more)
    assert [index[i] for i in ids[1:]] == tok.encode(text) and index[4:6] == [-1, -1]
    more.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("<label=All>" + text) == ids
    assert tok.with_control_tokens(["<unk>"]) is tok


def test_fine_tuning_starts_from_the_base_weights(tiny_run, speakers, tmp_path):
    run = tmp_path / "ft"
    # one step at a negligible learning rate: the saved weights are the initial ones
    textmill.train(finetune_config(tiny_run, speakers, model={"context": 16}, max_steps=1, lr=1e-12, min_lr=0,
                                   warmup_steps=0, weight_decay=0.0), run)
    base_tok, tok = load_tokenizer(tiny_run), load_tokenizer(run)
    assert tok.specials[4:] == ["<label=All>", "<label=First Citizen>"]
    index = torch.tensor(vocab_index(base_tok, tok))
    base, ours = textmill.load(tiny_run).model.state_dict(), textmill.load(run).model.state_dict()
    for key, weight in ours.items():
        old = base[key]
        if weight.shape[0] == tok.vocab_size:  # embedding and output rows follow their tokens; an added label's
            expected = old[index.clamp(min=0)]  # starts at the mean of the base's rows for its name's characters
            for token, name in zip(tok.specials[4:], ["All", "First Citizen"]):
                expected[tok.encode(token)[0]] = old[base_tok.encode(name)].mean(0)
        elif key == "wpe.weight":
            expected = old[:16]
        else:
            expected = old
        torch.testing.assert_close(weight, expected, atol=1e-6, rtol=0)
    assert load_config(run / "train.yaml").tokenizer == load_config(tiny_run / "train.yaml").tokenizer  # says what it used


def test_a_fine_tuned_model_starts_far_ahead_and_writes_each_label(tiny_run, speakers, tmp_path):
    first_eval = {}
    for name, cfg in (("scratch", tiny_config(speakers, max_steps=10)), ("ft", finetune_config(tiny_run, speakers, max_steps=10))):
        cfg["data"].update(format="jsonl", label_field="label")
        textmill.train(cfg, tmp_path / name)
        events = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        first_eval[name] = next(e["val_loss"] for e in events if e["kind"] == "eval")
    assert first_eval["ft"] < first_eval["scratch"] - 0.3  # nats per character, after 10 steps of each
    gen = textmill.load(tmp_path / "ft")
    assert gen.labels == ["All", "First Citizen"]
    assert all(isinstance(t, str) for t in gen.generate(["", ""], label="All", seed=0, max_new_tokens=8))


def test_fine_tuning_refuses_what_cannot_start_from_the_base(tiny_run, speakers, corpus, tmp_path):
    cases = [
        (finetune_config(tmp_path / "nowhere", speakers), CheckpointError, "missing config.json"),
        ({**tiny_config(corpus, "lstm", init_from=str(tiny_run))}, ConfigError, "is a 'gpt' run"),
        (finetune_config(tiny_run, speakers, model={"n_embd": 16, "n_head": 2}), ConfigError, "n_embd 32 vs 16"),
        ({**finetune_config(tiny_run, speakers), "tokenizer": {"kind": "word"}}, ConfigError, "remove tokenizer.kind"),
        ({"model": {"family": "ngram"}, "data": {"source": str(corpus)}, "train": {"init_from": str(tiny_run)}},
         ConfigError, "counted in one pass"),
    ]
    for i, (cfg, error, message) in enumerate(cases):
        with pytest.raises(error, match=message):
            textmill.train(cfg, tmp_path / f"run{i}")


def test_synth_fine_tunes_a_base_run(tiny_run, tmp_path):
    data = tmp_path / "reviews.txt"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in reviews(80)), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    res = textmill.synthesize(str(data), generator=f"gpt:{tiny_run}", per_label=5, out=out, skip_filters=["label"],
                              generator_options={"overrides": ["train.max_steps=20", "train.max_minutes=null",
                                                               "train.eval_every=10"]})
    assert sum(res.per_label.values()) > 0 and build_generator(f"gpt:{tiny_run}").describe()["base"] == str(tiny_run)
    run = tmp_path / "o.jsonl.work" / "generator"
    assert load_tokenizer(run).specials[4:] == ["<label=negative>", "<label=positive>"]
    assert load_tokenizer(run).vocab_size == load_tokenizer(tiny_run).vocab_size + 2
    with pytest.raises(ConfigError, match="takes no argument"):
        build_generator(f"ngram:{tiny_run}")
    with pytest.raises(ConfigError, match="pick the generator of its family"):
        textmill.synthesize(str(data), generator=f"lstm:{tiny_run}", out=tmp_path / "l.jsonl")


def test_cli_train_init_from(tiny_run, speakers, tmp_path):
    config = tmp_path / "ft.yaml"
    cfg = finetune_config("unused", speakers, max_steps=2)
    del cfg["train"]["init_from"]
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "ft"), "--init-from", str(tiny_run)])
    assert res.exit_code == 0, res.output
    assert load_config(tmp_path / "ft" / "train.yaml").train.init_from == str(tiny_run)
    assert load_tokenizer(tmp_path / "ft").specials[4:] == ["<label=All>", "<label=First Citizen>"]
