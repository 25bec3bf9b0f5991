"""Differential privacy (training/privacy.py), canaries (data/canaries.py) and memorization audits
(evaluation/audit.py), alone and through the trainer, the CLI and synth."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.config import CanaryConfig, validate_config
from textmill.data.canaries import make_canaries
from textmill.data.prepare import lm_documents
from textmill.errors import ConfigError, TextmillError
from textmill.evaluation.audit import extraction, membership_inference, text_nll

ROWS = [f"row {i}: the {random.Random(i).choice(['red', 'blue', 'green'])} {w} walked {i % 7} miles"
        for i, w in enumerate(["fox", "cat", "dog", "owl", "elk", "yak", "emu", "bat"] * 25)]


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rows") / "rows.txt"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    return path


def config(data: Path, family: dict | None = None, **train) -> dict:
    return {"model": family or {"family": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 32, "context": 32},
            "tokenizer": {"kind": "char"}, "data": {"source": str(data), "format": "lines"},
            "train": {"max_steps": 20, "batch_size": 8, "eval_every": 10, "eval_batches": 2, "warmup_steps": 0,
                      "lr": 3e-3, "threads": 1, **train}}


# -- canaries ----------------------------------------------------------------------------------------
def test_canaries_are_planted_in_the_training_split_only(rows_file):
    cfg = validate_config({**config(rows_file), "data": {"source": str(rows_file), "format": "lines",
                                                          "canaries": {"repeats": [1, 5], "per_repeat": 2}}}).data
    canaries = make_canaries(cfg.canaries)
    assert [c.repeats for c in canaries] == [1, 1, 5, 5] and len({c.secret for c in canaries}) == 4
    assert canaries == make_canaries(cfg.canaries)  # from the seed alone
    assert canaries[0].text.startswith("my secret number is ") and len(canaries[0].secret.split()) == 6
    train, val = lm_documents(cfg)
    plain_train, plain_val = lm_documents(cfg.model_copy(update={"canaries": None}))
    assert val == plain_val and len(train) == len(plain_train) + 12
    for c in canaries:
        assert train.count(c.text) == c.repeats and all(c.secret not in v for v in val)


@pytest.mark.parametrize("fields, message", [
    ({"template": "no secret here"}, "exactly once"),
    ({"alphabet": "ab", "length": 5}, "too few"),
    ({"alphabet": "aab"}, "each once"),
    ({"repeats": [0]}, "positive"),
])
def test_bad_canary_configs_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        CanaryConfig(**fields)


def test_canaries_need_language_model_data():
    with pytest.raises(ConfigError, match="canaries go into language-model data"):
        validate_config({"model": {"family": "seq2seq"}, "data": {"source": "x", "target": "y", "task": "translation",
                                                                   "canaries": {}}})


# -- audits ------------------------------------------------------------------------------------------
def test_extraction_reports_copied_runs():
    training = ["the quick brown fox jumps over the lazy dog today", "每天早上我都去公园跑步"]
    found = extraction(["a quick brown fox jumps over the lazy dog again", "我都去公园", "nothing alike"], training, leak_len=5)
    assert found["max_longest"] == 8 and found["share_reproducing"] == pytest.approx(2 / 3, abs=1e-4)  # 5 CJK characters count too
    assert found["longest"][0] == {"tokens": 8, "text": "quick brown fox jumps over the lazy dog"}
    assert extraction(["the lazy dog", "每天早上"], training)["longest"][0]["tokens"] == 4  # CJK characters count one each


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory, rows_file) -> Path:
    """A char 10-gram model: it memorizes its training rows, and a canary seen 30 times."""
    run = tmp_path_factory.mktemp("runs") / "ngram"
    textmill.train({"model": {"family": "ngram", "order": 10}, "tokenizer": {"kind": "char"},
                    "data": {"source": str(rows_file), "format": "lines", "val_fraction": 0.3,
                             "canaries": {"repeats": [30], "per_repeat": 2}}}, run, progress=False)
    return run


def test_a_memorizing_model_is_caught(ngram_run):
    from textmill.evaluation.audit import AuditOptions, audit

    rep = audit(ngram_run, AuditOptions(candidates=300, members=100, samples=20, max_new_tokens=40))
    assert all(c["leaked"] and c["rank"] == 1 for c in rep["canaries"])
    assert sum(c["extracted"] for c in rep["canaries"]) == 1  # greedy decoding writes one secret per prompt
    assert all(c["exposure_sampled"] == pytest.approx(math.log2(c["of"]), abs=0.01) for c in rep["canaries"])
    assert rep["membership"]["auc"] > 0.8 and rep["membership"]["member_loss"] < rep["membership"]["non_member_loss"]
    assert rep["extraction"]["max_longest"] >= 5
    assert json.loads((ngram_run / "audit.json").read_text()) == rep


def test_text_nll_agrees_between_batched_and_single_scoring(tiny_run, monkeypatch):
    gen = textmill.load(tiny_run)
    texts = ["Speak, speak.", "First Citizen:", "x"]
    together, counts = text_nll(gen, texts)
    alone = [text_nll(gen, [t])[0][0] for t in texts]
    assert together == pytest.approx(alone, rel=1e-5) and list(counts) == [len(t) + 1 for t in texts]
    # a large vocabulary scores fewer rows at a time (Gemma 3's 262,144 tokens: 8.6 GB of logits for 64 rows)
    from textmill.evaluation import audit

    monkeypatch.setattr(audit, "LOGITS_BUDGET", 30 * gen.model.vocab_size)  # 30 positions: 1 row of 16, then 2 of 15
    batches = []
    hook = gen.model.register_forward_pre_hook(lambda m, args: batches.append(tuple(args[0].shape)))
    assert list(text_nll(gen, texts)[0]) == pytest.approx(alone, rel=1e-5)
    hook.remove()
    assert batches == [(1, 15), (2, 14)]  # inputs: each row but its last token
    with pytest.raises(ConfigError, match="at least 2"):
        membership_inference(gen, ["a"], ["b", "c"])


def test_the_audit_command_and_info(ngram_run):
    r = CliRunner().invoke(app, ["audit", str(ngram_run), "--candidates", "200", "--members", "50", "--samples", "10"])
    assert r.exit_code == 0, r.output
    assert "membership inference" in r.output and "extraction" in r.output and "secret" in r.output
    r = CliRunner().invoke(app, ["info", str(ngram_run)])
    assert "memorization audit" in r.output


def test_the_audit_refuses_what_it_cannot_read(tmp_path):
    src, tgt = tmp_path / "s.txt", tmp_path / "t.txt"
    src.write_text("a b c\nd e f\n" * 20, encoding="utf-8")
    tgt.write_text("x y z\nu v w\n" * 20, encoding="utf-8")
    textmill.train({"model": {"family": "seq2seq", "n_embd": 16, "hidden": 16}, "tokenizer": {"kind": "word"},
                    "data": {"source": str(src), "target": str(tgt), "task": "translation"},
                    "train": {"max_steps": 2, "eval_every": 2, "batch_size": 4}}, tmp_path / "s2s", progress=False)
    r = CliRunner().invoke(app, ["audit", str(tmp_path / "s2s")])
    assert r.exit_code != 0 and "decoder-only" in r.output


# -- differential privacy ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", [
    {"family": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16, "context": 8},
    {"family": "gpt", "n_layer": 1, "n_head": 4, "n_kv_head": 2, "n_embd": 16, "context": 8, "positions": "rope",
     "norm": "rmsnorm", "mlp": "swiglu", "bias": False},
])
def test_per_window_gradients_sum_to_the_batch_gradient(family):
    """Opacus's per-sample gradients must cover every parameter, the tied output layer and position
    embeddings included, or DP-SGD would clip and noise the wrong gradient."""
    from opacus import GradSampleModule

    from textmill.models import build_model

    model = build_model(validate_config({"model": family, "data": {"source": "x"}}).model, 30).train()
    x = torch.randint(0, 30, (3, 8))
    logits = GradSampleModule(model, loss_reduction="sum")(x)
    torch.nn.functional.cross_entropy(logits.reshape(-1, 30), x.reshape(-1), reduction="sum").backward()
    for name, p in model.named_parameters():
        assert p.grad_sample.shape[0] == 3, name
        assert torch.allclose(p.grad_sample.sum(0), p.grad, atol=1e-5), name


@pytest.mark.slow
def test_dp_training_reaches_its_epsilon_and_resumes_exactly(rows_file, tmp_path):
    cfg = config(rows_file, dp={"epsilon": 4.0})
    full = textmill.train(cfg, tmp_path / "full", progress=False)
    privacy = json.loads((tmp_path / "full" / "privacy.json").read_text())
    assert privacy["epsilon"] == pytest.approx(4.0, rel=0.02) and privacy["meaningful"]
    assert privacy["steps"] == 20 and privacy["delta"] < 1 / privacy["windows"]
    assert full.history[-1]["epsilon"] == pytest.approx(privacy["epsilon"])

    def interrupt(event):
        if event["kind"] == "step" and event["step"] == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # after the checkpoint at step 10
        textmill.train(cfg, tmp_path / "part", progress=False, callback=interrupt)
    resumed = textmill.train(cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed.best_val_loss == full.best_val_loss
    assert json.loads((tmp_path / "part" / "privacy.json").read_text()) == privacy
    longer = textmill.train({**cfg, "train": {**cfg["train"], "max_steps": 30}}, tmp_path / "part", resume=True,
                            progress=False)
    assert longer.history[-1]["epsilon"] > 4.0  # the noise stays what the first 20 steps were planned with
    r = CliRunner().invoke(app, ["info", str(tmp_path / "full")])
    assert "differential privacy" in r.output and re.search(r"epsilon (3\.9\d|4\.0\d) at delta", r.output)


def test_a_large_epsilon_is_called_out(rows_file, tmp_path, caplog):
    textmill.train(config(rows_file, max_steps=4, dp={"noise_multiplier": 0.3}), tmp_path / "weak", progress=False)
    assert not json.loads((tmp_path / "weak" / "privacy.json").read_text())["meaningful"]
    assert "protection" in CliRunner().invoke(app, ["info", str(tmp_path / "weak")]).output


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_models_train_privately_and_load_as_plain_models(rows_file, tmp_path, cell):
    family = {"family": "rnn", "cell": cell, "n_layer": 2, "n_embd": 16, "hidden": 24, "context": 32}
    textmill.train(config(rows_file, family, max_steps=6, dp={"epsilon": 8}), tmp_path / cell, progress=False)
    gen = textmill.load(tmp_path / cell)
    assert type(gen.model.rnn).__module__.startswith("torch.nn")
    assert isinstance(gen.generate("row", max_new_tokens=5, seed=0), str)


@pytest.mark.parametrize("train, message", [
    ({"grad_accum": 2}, "grad_accum: 1"),
    ({"compile": True}, "compile: false"),
    ({"batch_size": 10_000}, "sampling hides nothing"),
    ({"dp": {"epsilon": 8, "delta": 0.5}}, "not below 1 /"),
    ({"dp": {"epsilon": 8, "noise_multiplier": 1.0}}, "not both"),
    ({"dp": {"epsilon": -1}}, "greater than 0"),
])
def test_bad_dp_settings_are_refused_before_a_run_is_written(rows_file, tmp_path, train, message):
    cfg = config(rows_file, **{"dp": {"epsilon": 8}, **train})
    with pytest.raises(TextmillError, match=message):
        textmill.train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_dp_refuses_families_opacus_cannot_train(rows_file, tmp_path):
    with pytest.raises(ConfigError, match="train.lora"):
        textmill.train({"model": {"family": "ngram", "order": 3}, "data": {"source": str(rows_file)},
                        "train": {"dp": {"epsilon": 8}}}, tmp_path / "ngram", progress=False)
    with pytest.raises(ConfigError, match="a dialogue fine-tune .pairs as chats. is not covered"):
        textmill.train({"model": {"family": "gpt"}, "data": {"source": str(rows_file), "task": "dialogue"},
                        "train": {"init_from": "embedded:smollm2-135m-instruct", "dp": {"epsilon": 8}}},
                       tmp_path / "chat", progress=False)
    assert not (tmp_path / "chat").exists()


# -- synth ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_synth_trains_its_generator_privately_and_audits_it(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "ab"[i % 2]}) + "\n" for i, t in enumerate(ROWS)),
                    encoding="utf-8")
    res = textmill.synthesize(str(data), out=str(tmp_path / "out.jsonl"), generator="gpt", per_label=3, report=str(tmp_path / "r.html"),
                              dp_epsilon=8, canaries={"repeats": [2], "per_repeat": 1}, report_seeds=3, max_attempts=2, report_fluency=0,
                              skip_filters=["label"], generator_options={"overrides": ["train.max_steps=10", "train.batch_size=8"]},
                              progress=False)
    g = res.report["privacy"]["generator"]
    assert g["dp"]["epsilon"] <= 8.0 + 1e-6 and 0 <= g["membership"]["auc"] <= 1
    assert len(g["canaries"]) == 1 and g["canaries"][0]["label"] in ("a", "b")
    assert "what did it memorize" in (tmp_path / "r.html").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="trains no model"):
        textmill.synthesize(str(data), out=str(tmp_path / "eda.jsonl"), generator="eda", dp_epsilon=8, progress=False)
