import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import textmill
from textmill.errors import CheckpointError, ConfigError
from textmill.rundir import find_last, read_run_config
from textmill.training import checkpoint
from textmill.training.optim import build_optimizer, lr_at

from .helpers import tiny_config


def losses(run_dir: Path, kind="train", key="loss"):
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {e["step"]: e[key] for e in events if e["kind"] == kind}


def test_run_directory_holds_the_unit_of_exchange(tiny_run):
    for name in ("config.json", "tokenizer.json", "train.yaml", "model.safetensors", "metrics.jsonl"):
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    assert (tiny_run / "checkpoints" / "last" / "optimizer.safetensors").is_file()
    gen = textmill.load(tiny_run)
    text = gen.generate("First", max_new_tokens=5, seed=0)
    assert text == gen.generate("First", max_new_tokens=5, seed=0) and len(gen.tokenizer.encode(text)) <= 5


@pytest.mark.parametrize("family", ["gpt", "lstm"])
def test_overfits_one_batch(family):
    from textmill.config import TrainConfig
    from textmill.models import GPTConfig, RNNConfig, build_model
    from textmill.training.objectives import cross_entropy

    torch.manual_seed(0)
    cfg = (GPTConfig(n_layer=2, n_head=2, n_embd=32, context=16) if family == "gpt"
           else RNNConfig(n_layer=1, n_embd=32, hidden=64, context=16))
    model = build_model(cfg, 20)
    opt = build_optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.0))
    x = torch.randint(0, 20, (4, 17))
    for _ in range(150):
        loss = cross_entropy(model(x[:, :-1]), x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


def test_resume_reproduces_the_uninterrupted_run(tmp_path, corpus):
    cfg = tiny_config(corpus, max_steps=30, eval_every=10, log_every=1)
    cfg["model"]["dropout"] = 0.1  # dropout masks must be reproduced too
    full = tmp_path / "full"
    textmill.train(cfg, full)

    part = tmp_path / "part"

    def crash(event):
        if event["kind"] == "step" and event["step"] == 17:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textmill.train(cfg, part, callback=crash)
    assert json.loads((part / "checkpoints/last/trainer_state.json").read_text())["step"] == 10
    with pytest.raises(CheckpointError, match=r"--resume.*Python: resume=True or overwrite=True"):
        textmill.train(cfg, part)
    events = []
    textmill.train(cfg, part, resume=True, callback=events.append)
    assert events[0] == {"kind": "resume", "step": 10, "checkpoint": str(part / "checkpoints" / "last")}
    a, b = losses(full), losses(part)
    assert sorted(a) == sorted(b) == list(range(1, 31))
    assert all(a[s] == pytest.approx(b[s], rel=1e-6) for s in a)
    assert losses(full, "eval", "val_loss") == pytest.approx(losses(part, "eval", "val_loss"), rel=1e-6)


def test_resume_refuses_a_changed_model(tmp_path, corpus, tiny_run):
    cfg = tiny_config(corpus)
    cfg["model"]["n_layer"] = 3
    with pytest.raises(ConfigError, match="model section differs"):
        textmill.train(cfg, tiny_run, resume=True)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        textmill.train(tiny_config(corpus), tmp_path / "new", resume=True)


def test_a_failed_checkpoint_write_keeps_the_good_one(tmp_path, corpus, monkeypatch):
    run = tmp_path / "run"
    textmill.train(tiny_config(corpus, max_steps=10), run)
    good = (run / "checkpoints/last/trainer_state.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        textmill.train(tiny_config(corpus, max_steps=20), run, resume=True)
    assert (run / "checkpoints/last/trainer_state.json").read_text() == good
    assert find_last(run) == run / "checkpoints" / "last"


def test_resume_records_a_changed_train_section(tmp_path, corpus):
    run = tmp_path / "r"
    textmill.train(tiny_config(corpus, max_steps=10, eval_every=10), run)
    res = textmill.train(tiny_config(corpus, max_steps=20, eval_every=10), run, resume=True)
    assert res.steps == 20 and read_run_config(run).train.max_steps == 20


def test_the_run_figure_of_tokens_per_second_is_the_last_one_the_bar_showed(tmp_path, corpus):
    steps = []
    res = textmill.train(tiny_config(corpus, max_steps=12, eval_every=4), tmp_path / "r",
                         callback=lambda e: steps.append(e) if e["kind"] == "step" else None)
    assert [e["step"] for e in steps] == list(range(1, 13)) and res.tokens_per_sec == steps[-1]["tokens_per_sec"] > 0


def test_progress_bars_report_what_the_work_is_doing(tmp_path, corpus, capsys):
    textmill.train(tiny_config(corpus, max_steps=4, eval_every=4), tmp_path / "r")
    shown = capsys.readouterr().err
    assert "train" in shown and "step 4/4  loss" in shown
    textmill.train({"model": {"family": "ngram", "order": 2}, "data": {"source": str(corpus)}}, tmp_path / "n")
    shown = capsys.readouterr().err
    assert "fitted in" in shown and "nan" not in shown
    calls = []
    textmill.evaluate(tmp_path / "r", samples=2, max_new_tokens=3, progress=lambda *a: calls.append(a))
    assert [c[0].split()[0] for c in calls] == ["loading", "scoring", "drawing"]
    textmill.train(tiny_config(corpus, max_steps=4), tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""


def test_early_stopping(tmp_path, corpus):
    res = textmill.train(tiny_config(corpus, max_steps=200, eval_every=2, patience=1, lr=5.0, warmup_steps=0), tmp_path / "r")
    assert res.stopped == "early_stopping" and res.steps < 200


def test_time_budget_stops_training(tmp_path, corpus):
    res = textmill.train(tiny_config(corpus, max_steps=10**9, max_minutes=0.02), tmp_path / "r")
    assert res.stopped == "time_budget" and (tmp_path / "r" / "model.safetensors").is_file()


def test_existing_non_run_directory_is_refused(tmp_path, corpus):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(CheckpointError, match="not empty"):
        textmill.train(tiny_config(corpus), tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_a_run_killed_while_starting_is_a_run_that_overwrite_replaces(tmp_path, corpus, monkeypatch):
    """The first file a fresh run writes marks its directory, so a kill before config.json lands (here:
    an interrupt while writing it) leaves a run that `overwrite` replaces, not a stray directory."""
    import textmill.rundir

    def killed(path, text):
        path.with_name(f".{path.name}.tmp").write_text(text[:5])
        raise KeyboardInterrupt

    run = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(textmill.rundir, "atomic_write_text", killed)
        with pytest.raises(KeyboardInterrupt):
            textmill.train(tiny_config(corpus, max_steps=2), run, progress=False)
    assert (run / ".config.json.tmp").exists()
    with pytest.raises(CheckpointError, match="already holds a run.*--overwrite"):
        textmill.train(tiny_config(corpus, max_steps=2), run, progress=False)
    assert textmill.train(tiny_config(corpus, max_steps=2), run, overwrite=True, progress=False).steps == 2
    assert not (run / ".config.json.tmp").exists()


def test_load_reports_missing_files(tmp_path, tiny_run):
    with pytest.raises(CheckpointError, match="does not exist"):
        textmill.load(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="missing tokenizer.json, model.safetensors"):
        textmill.load(tmp_path)


def test_lr_schedule_warms_up_then_decays():
    from textmill.config import TrainConfig

    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1 / 11)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert lr_at(20, cfg, budget_fraction=1.0) == pytest.approx(0.1)


def test_optimizer_groups_decay_only_matrices():
    from textmill.config import TrainConfig
    from textmill.models import GPTConfig, build_model

    model = build_model(GPTConfig(n_layer=1, n_head=2, n_embd=16, context=8), 10)
    decay, no_decay = build_optimizer(model, TrainConfig(weight_decay=0.1)).param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_torchrun_ddp_on_cpu(tmp_path, corpus):
    import yaml

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(corpus, max_steps=12, eval_every=6)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                           "-m", "textmill", "train", str(cfg_path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: 12 steps") == 1  # only rank 0 prints
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "eval"] == [6, 12]
    state = json.loads((tmp_path / "run" / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["step"] == 12  # rank 0 wrote the checkpoint of the last step, and the weights load whole
    assert len(textmill.load(tmp_path / "run").generate("All", max_new_tokens=4, strategy="greedy")) <= 4


def test_the_loss_skips_only_padding_not_token_zero():
    """Token 0 is a real token in a pretrained vocabulary ("!" in GPT-2's): only IGNORE targets are skipped."""
    from textmill.data.datasets import IGNORE, PairDataset
    from textmill.training.objectives import cross_entropy

    logits = torch.zeros(1, 3, 5)
    logits[0, :, 0] = 4.0
    assert float(cross_entropy(logits, torch.tensor([[0, 0, 0]]))) < 0.1  # id 0 is scored
    assert float(cross_entropy(logits, torch.tensor([[0, 1, IGNORE]]))) == pytest.approx(float(cross_entropy(
        logits[:, :2], torch.tensor([[0, 1]]))))
    batch = PairDataset([[1, 4, 2], [1, 5, 2]], [[1, 0, 0, 2], [1, 2]], 6, torch.arange(2)).batch([0, 1])
    assert batch.tgt_out.tolist() == [[0, 0, 2], [2, IGNORE, IGNORE]] and batch.n_tokens == 4
