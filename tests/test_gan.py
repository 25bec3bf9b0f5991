import json

import pytest
import torch

import textmill
from textmill.config import load_config
from textmill.errors import ConfigError
from textmill.models import GANConfig, build_model
from textmill.training.objectives import Adversarial

CFG = dict(n_embd=8, hidden=16, context=8, filter_sizes=[1, 2, 5], num_filters=[4, 4, 4], rollouts=3)


def test_discriminator_reads_short_sentences_and_rewards_are_probabilities():
    torch.manual_seed(0)
    gan = build_model(GANConfig(**CFG), 20)
    assert gan.discriminator(torch.tensor([[5, 2]])).shape == (1,)  # shorter than the widest filter
    samples = gan.sample(6)
    assert samples.shape[0] == 6 and samples.shape[1] <= 8
    ended = samples.eq(2).cumsum(1) - samples.eq(2).long()  # positions after an <eos>
    assert bool((samples[ended > 0] == 0).all())  # padding after <eos>
    rewards = gan.rewards(samples)
    assert rewards.shape == samples.shape and bool(((rewards >= 0) & (rewards <= 1)).all())
    assert bool((rewards[samples == 0] == 0).all())


def test_rollout_policy_follows_the_generator():
    torch.manual_seed(0)
    gan = build_model(GANConfig(**CFG), 20)
    g, r = next(gan.generator.parameters()), next(gan.rollout.parameters())
    assert not torch.equal(g, r) and not r.requires_grad
    gan.update_rollout(0.0)
    assert torch.equal(g, r)
    with torch.no_grad():
        g.add_(1.0)
    gan.update_rollout(0.75)
    torch.testing.assert_close(r, g - 0.75)


def test_phases_follow_the_step():
    cfg = load_config({"model": {"family": "gan", "pretrain_g_steps": 3, "pretrain_d_steps": 2, "g_steps": 1, "d_steps": 2},
                       "data": {"source": "x"}})
    assert [Adversarial(cfg).phase(s) for s in range(11)] == ["mle"] * 3 + ["d"] * 2 + ["pg", "d", "d"] * 2


def test_bad_gan_configs():
    with pytest.raises(ConfigError, match="rollouts: Input should be greater than or equal to 1"):
        load_config({"model": {"family": "gan", "rollouts": 0}, "data": {"source": "x"}})
    with pytest.raises(ConfigError, match="filter_sizes .* must be non-empty lists of the same length"):
        load_config({"model": {"family": "gan", "filter_sizes": [1, 2], "num_filters": [3]}, "data": {"source": "x"}})


def gan_config(corpus, **train):
    return {"model": {"family": "gan", **CFG, "pretrain_g_steps": 6, "pretrain_d_steps": 2, "g_steps": 1, "d_steps": 1},
            "tokenizer": {"kind": "whitespace"}, "data": {"source": str(corpus), "format": "lines"},
            "train": {"max_steps": 14, "batch_size": 8, "lr": 1e-2, "min_lr": 1e-2, "eval_every": 7, "warmup_steps": 0,
                      "log_every": 1, "threads": 1, **train}}


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    path = tmp_path_factory.mktemp("gan") / "s.txt"
    path.write_text("\n".join(["a dog runs", "a cat sleeps", "two dogs play", "the cat runs"] * 10) + "\n")
    return path


def test_training_runs_every_phase_and_resumes_exactly(sentences, tmp_path):
    res = textmill.train(gan_config(sentences), tmp_path / "full")
    events = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    train = {e["step"]: e for e in events if e["kind"] == "train"}
    assert "d_accuracy" in train[7] and "reward" in train[9] and "d_loss" in train[10]
    evals = [e for e in events if e["kind"] == "eval"]
    assert 1 <= len(evals[-1]["samples"]) <= 5 and 0 <= evals[-1]["d_accuracy"] <= 1  # up to 5 samples per evaluation
    assert res.steps == 14 and isinstance(textmill.load(tmp_path / "full").generate("", seed=0, max_new_tokens=5), str)
    # logged every 4 steps, the log after the round of steps 9-12 still shows the policy-gradient step's reward
    textmill.train(gan_config(sentences, log_every=4, max_steps=12), tmp_path / "sparse")
    logged = [json.loads(line) for line in (tmp_path / "sparse" / "metrics.jsonl").read_text().splitlines()]
    assert "reward" in next(e for e in logged if e["kind"] == "train" and e["step"] == 12)

    def crash(event):
        if event["kind"] == "step" and event["step"] == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textmill.train(gan_config(sentences), tmp_path / "part", callback=crash)
    textmill.train(gan_config(sentences), tmp_path / "part", resume=True)
    losses = [{e["step"]: e["loss"] for e in map(json.loads, (tmp_path / r / "metrics.jsonl").read_text().splitlines())
               if e["kind"] == "train"} for r in ("full", "part")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
