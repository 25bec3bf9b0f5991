"""A real SIGKILL at any moment leaves no half-written file: training resumes from its last checkpoint,
`compare` and `arpa export` leave either no output or a whole one, and the same command finishes.
(synth's journal has its own kill test in test_synth.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import textmill

from .helpers import tiny_config

pytestmark = pytest.mark.slow
ENV = {**os.environ, "PYTHONPATH": str(Path(textmill.__file__).parents[1])}


def kill_when(script: str, args: list[str], ready: Callable[[], bool], timeout: float = 240) -> None:
    """Run `script` with `args` in a new interpreter and SIGKILL it as soon as `ready()` holds."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the process finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


SLOW_TRAIN = """
import json, sys, time, textmill
cfg = json.loads(sys.argv[1])
textmill.train(cfg, sys.argv[2], resume=sys.argv[3] == "resume", progress=False,
               callback=lambda e: time.sleep(0.05) if e["kind"] == "step" else None)
"""


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(tmp_path, corpus):
    cfg = tiny_config(corpus, max_steps=40, eval_every=10)
    run = tmp_path / "run"
    state = run / "checkpoints" / "last" / "trainer_state.json"

    def two_checkpoints() -> bool:
        try:
            return json.loads(state.read_text())["step"] >= 20
        except (OSError, ValueError):
            return False

    kill_when(SLOW_TRAIN, [json.dumps(cfg), str(run), "fresh"], two_checkpoints)
    weights = load_file(run / "model.safetensors")  # the best weights are whole: a cut file has no readable header
    assert weights and all(torch.isfinite(t).all() for t in weights.values())
    textmill.load(run)  # and they match the run's config
    res = textmill.train(cfg, run, resume=True, progress=False)
    assert res.steps == 40
    whole = textmill.train(cfg, tmp_path / "whole", progress=False)
    assert res.val_loss == pytest.approx(whole.val_loss, rel=1e-6)


SLOW_COMPARE = """
import sys, time, textmill
textmill.compare(sys.argv[1:3], 0.04, sys.argv[3], progress=False,
                 callback=lambda name, e: time.sleep(0.05) if e["kind"] == "step" else None)
"""


def test_compare_killed_mid_run_writes_no_leaderboard_and_runs_again(tmp_path, corpus):
    import yaml

    configs = []
    for name, family in (("a_gpt", "gpt"), ("b_lstm", "lstm")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(corpus, family)))
        configs.append(str(path))
    out = tmp_path / "cmp"
    kill_when(SLOW_COMPARE, [*configs, str(out)], lambda: (out / "b_lstm").exists())
    assert not (out / "leaderboard.json").exists() and not (out / "leaderboard.md").exists()
    rows = textmill.compare(configs, 0.02, out, progress=False)
    assert [r["name"] for r in json.loads((out / "leaderboard.json").read_text())] == [r["name"] for r in rows]
    assert len(rows) == 2


SLOW_EXPORT = """
import json, sys, time
from textmill.exchange import arpa
real = json.dumps
def slow(*args, **kwargs):  # the tokenizer comment is written first, into the open temporary file
    time.sleep(60)
    return real(*args, **kwargs)
arpa.json.dumps = slow
arpa.export_arpa(sys.argv[1], sys.argv[2])
"""


def test_arpa_export_killed_mid_write_leaves_no_partial_file(tmp_path, corpus):
    run = tmp_path / "run"
    textmill.train({"model": {"family": "ngram", "order": 3}, "tokenizer": {"kind": "word"}, "data": {"source": str(corpus)}},
                   run, progress=False)
    target = tmp_path / "lm.arpa"
    partial = tmp_path / ".lm.arpa.tmp"
    kill_when(SLOW_EXPORT, [str(run), str(target)], partial.exists)
    assert not target.exists()
    subprocess.run([sys.executable, "-m", "textmill", "arpa", "export", str(run), str(target)], env=ENV, check=True,
                   capture_output=True, timeout=120)
    assert target.read_text(encoding="utf-8").rstrip().endswith("\\end\\")
