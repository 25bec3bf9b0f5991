import json
import math

import pytest
import torch
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.config import load_config
from textmill.data.datasets import SentenceBatch, pad_right
from textmill.errors import ConfigError, DataError, GenerationError
from textmill.models import VAEConfig, build_model
from textmill.training.objectives import EvidenceLowerBound, active_units, kl_per_dim

POSITIVE = ["the food was great", "great service and tasty food", "i loved the pizza", "the staff were friendly"]
NEGATIVE = ["the food was cold", "terrible service and bland food", "i hated the pizza", "the staff were rude"]


def tokens():
    return pad_right([[1, 5, 6, 7, 2], [1, 8, 2], [1, 9, 10, 11, 12, 13, 2]])[0]


def test_kl_schedules_and_free_bits():
    cfg = load_config({"model": {"family": "vae", "kl_warmup_steps": 100, "kl_cycle_steps": 40, "kl_cycle_ratio": 0.5},
                       "data": {"source": "x"}})
    elbo = EvidenceLowerBound(cfg)
    assert [elbo.beta(s) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    elbo.cfg = cfg.model.model_copy(update={"kl_schedule": "cyclical"})
    assert [elbo.beta(s) for s in (0, 10, 20, 30, 40, 50)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    assert kl_per_dim(mu, logvar).sum() == 0  # the posterior equals the prior
    assert kl_per_dim(torch.ones(1, 1), torch.zeros(1, 1)).item() == pytest.approx(0.5)
    assert active_units(torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 0.5]])) == 1


def test_importance_weighted_nll_bounds_and_matches_the_elbo_scale():
    torch.manual_seed(0)
    model = build_model(VAEConfig(n_embd=8, hidden=16, latent=4), 20).eval()
    x = tokens()
    nll = model.importance_nll(x, samples=30)
    out = model(x)
    recon = torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), x[:, 1:], ignore_index=0, reduction="none").sum(1)
    elbo_bound = recon + kl_per_dim(out.mu, out.logvar).sum(1)
    assert torch.all(nll > 0) and torch.all(nll < elbo_bound + 2.0)  # -log p(x) <= -ELBO, up to sampling noise


def test_bag_of_words_loss_makes_z_carry_the_words():
    torch.manual_seed(0)
    cfg = load_config({"model": {"family": "vae", "n_embd": 8, "hidden": 32, "latent": 4, "bow": 1.0, "word_dropout": 0.0},
                       "data": {"source": "x"}})
    model, elbo = build_model(cfg.model, 20), EvidenceLowerBound(cfg)
    ids, mask = pad_right([[1, 5, 6, 7, 2], [1, 8, 2], [1, 9, 10, 11, 12, 13, 2]])
    batch = SentenceBatch(ids, torch.full((3,), -1), mask)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    logs = []
    for step in range(150):
        loss, log = elbo.loss(model, batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logs.append(log["bow"])
    floor = sum(n * math.log(n) for n in (4, 2, 6)) / 3  # one softmax spread evenly over a sentence's n words
    assert logs[0] > 2 * floor and logs[-1] < 1.1 * floor
    model.eval()
    mu, _ = model.encode(batch.tokens)
    for row, words in zip(model.bow_head(mu), ([5, 6, 7, 2], [8, 2], [9, 10, 11, 12, 13, 2])):
        assert set(row.topk(len(words)).indices.tolist()) == set(words)  # the posterior mean names the sentence's words
    assert model(batch.tokens).bow_nll is None  # a training loss only


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    d = tmp_path_factory.mktemp("yelp")
    (d / "pos.txt").write_text("\n".join(POSITIVE * 40) + "\n")
    (d / "neg.txt").write_text("\n".join(NEGATIVE * 40) + "\n")
    return d


def cvae_config(d, **model):
    return {"model": {"family": "cvae", "n_embd": 32, "hidden": 64, "latent": 8, "word_dropout": 0.0,
                      "kl_warmup_steps": 100, "adversary": 0.5, "free_bits": 1.0, **model},
            "tokenizer": {"kind": "whitespace"},
            "data": {"source": {"positive": str(d / "pos.txt"), "negative": str(d / "neg.txt")}, "format": "lines"},
            "train": {"max_steps": 250, "batch_size": 32, "lr": 3e-3, "eval_every": 125, "warmup_steps": 10, "threads": 1}}


@pytest.fixture(scope="module")
def cvae_run(labelled, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "cvae"
    textmill.train(cvae_config(labelled), run)
    return run


def test_cvae_trains_and_logs_the_elbo_parts(cvae_run):
    events = [json.loads(line) for line in (cvae_run / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["kind"] == "eval"]
    assert {"val_recon", "val_kl", "active_units", "val_loss"} <= set(evals[-1])
    assert evals[-1]["val_recon"] < 1.0 and evals[-1]["active_units"] == 8  # free bits: z is used, no collapse
    assert {"recon", "kl", "beta", "adversary_loss"} <= set(next(e for e in events if e["kind"] == "train"))
    assert json.loads((cvae_run / "config.json").read_text())["labels"] == ["negative", "positive"]


def test_cvae_generates_with_labels_transfers_and_interpolates(cvae_run):
    gen = textmill.load(cvae_run)
    assert gen.labels == ["negative", "positive"]
    assert gen.transfer(NEGATIVE, to="positive") == POSITIVE  # z keeps the content, the label sets the sentiment
    assert gen.reconstruct(NEGATIVE, label="negative") == NEGATIVE
    path = gen.interpolate("the food was cold", "i hated the pizza", steps=4, label="negative")
    assert len(path) == 4 and path[0] == "the food was cold" and path[-1] == "i hated the pizza"
    samples = gen.generate([""] * 4, label="positive", seed=1)
    assert samples == gen.generate([""] * 4, label="positive", seed=1) and len(set(samples)) > 1
    assert len(set(gen.generate("", label="positive", num_return_sequences=4, seed=2))) > 1  # a fresh z per sample
    with pytest.raises(GenerationError, match="label 'neutral' was not seen in training; labels: negative, positive"):
        gen.transfer("x", to="neutral")
    with pytest.raises(GenerationError, match="writes text with a label"):
        gen.generate("")


def test_cli_transfer_interpolate_and_eval(cvae_run):
    runner = CliRunner()
    res = runner.invoke(app, ["transfer", str(cvae_run), "--to", "positive", "the food was cold", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["transferred"] in POSITIVE
    res = runner.invoke(app, ["generate", str(cvae_run), "--interpolate", "the food was cold", "i hated the pizza",
                              "--steps", "3", "--label", "negative"])
    assert res.exit_code == 0 and res.output.startswith("0.00  the food was cold")
    res = runner.invoke(app, ["eval", str(cvae_run), "--samples", "6"])
    assert res.exit_code == 0, res.output
    report = json.loads((cvae_run / "eval.json").read_text())
    assert "importance-weighted" in report["tokenization"] and report["perplexity"] < 3
    res = runner.invoke(app, ["transfer", str(cvae_run), "--to", "neutral", "x"])
    assert res.exit_code == 2 and "was not seen in training" in res.output


def test_bad_latent_configs_say_what_to_change(labelled, tmp_path):
    with pytest.raises(ConfigError, match="kl_cycle_ratio: Input should be greater than 0"):
        load_config(cvae_config(labelled, kl_cycle_ratio=0))
    with pytest.raises(ConfigError, match="hidden .* make it even"):
        load_config(cvae_config(labelled, hidden=63))
    unlabelled = cvae_config(labelled)
    unlabelled["data"] = {"source": str(labelled / "pos.txt"), "format": "lines"}
    with pytest.raises(DataError, match="has no labels: set data.label_field"):
        textmill.train(unlabelled, tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    one_doc = {**unlabelled, "model": {"family": "vae"}, "data": {"source": str(labelled / "pos.txt")}}
    with pytest.raises(DataError, match="one document.*data.format: lines"):
        textmill.train(one_doc, tmp_path / "run2")


def test_vae_samples_from_the_prior_reproducibly(labelled, tmp_path):
    cfg = cvae_config(labelled)
    cfg["model"] = {"family": "vae", "n_embd": 16, "hidden": 32, "latent": 4, "kl_schedule": "cyclical", "kl_cycle_steps": 10,
                    "free_bits": 0.1}
    cfg["train"]["max_steps"] = 20
    cfg["train"]["eval_every"] = 20
    textmill.train(cfg, tmp_path / "vae")
    gen = textmill.load(tmp_path / "vae")
    assert gen.generate([""] * 3, seed=5, max_new_tokens=6) == gen.generate([""] * 3, seed=5, max_new_tokens=6)
    z = torch.zeros(2, 4)
    assert len(set(gen.generate(["", ""], conditioning={"z": z}, strategy="greedy", max_new_tokens=6))) == 1
    with pytest.raises(GenerationError, match="trained without labels"):
        gen.generate("", label="positive")
    assert math.isfinite(textmill.evaluate(tmp_path / "vae", samples=0, importance_samples=3)["nll"])
