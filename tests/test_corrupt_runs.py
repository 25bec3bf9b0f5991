"""A damaged run directory gives a textmill error that names the file and the fix, never a traceback:
every file of a run truncated, emptied, filled with garbage, or (weights) with NaN, through `load`,
`generate`, `eval`, `info` and `arpa export`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import TextmillError

from .helpers import tiny_config

runner = CliRunner()
FILES = ("config.json", "tokenizer.json", "train.yaml", "model.safetensors", "checkpoints/last/trainer_state.json")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 8)


def nan(path: Path) -> None:
    tensors = load_file(str(path))
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tensors.items()}, str(path))


DAMAGE = {"truncated": truncate, "empty": empty, "garbage": garbage}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("good")
    gpt = root / "gpt"
    textmill.train(tiny_config(corpus, max_steps=10, eval_every=10), gpt)
    ngram = root / "ngram"
    textmill.train({"model": {"family": "ngram", "order": 3}, "tokenizer": {"kind": "char"}, "data": {"source": str(corpus)}}, ngram)
    return {"gpt": gpt, "ngram": ngram}


def damaged_copy(runs: dict[str, Path], family: str, name: str, how, tmp_path: Path) -> Path:
    run = tmp_path / family
    shutil.copytree(runs[family], run)
    if not (run / name).is_file():
        pytest.skip(f"a {family} run has no {name}")
    how(run / name)
    return run


COMMANDS = {
    "generate": lambda run: ["generate", str(run), "-p", "Al", "--max-new-tokens", "5", "--greedy"],
    "eval": lambda run: ["eval", str(run), "--samples", "2", "--max-new-tokens", "4"],
    "info": lambda run: ["info", str(run)],
}


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("family", ["gpt", "ngram"])
def test_every_command_names_the_damaged_file(runs, tmp_path, family, name, how):
    run = damaged_copy(runs, family, name, DAMAGE[how], tmp_path)
    commands = dict(COMMANDS)
    if family == "ngram":
        commands["arpa export"] = lambda r: ["arpa", "export", str(r), str(tmp_path / "lm.arpa")]
    for command, args in commands.items():
        res = runner.invoke(app, args(run))
        if name == "checkpoints/last/trainer_state.json" and command != "info":
            assert res.exit_code == 0, (command, res.output)  # only `info` reads the resume state
            continue
        if name == "train.yaml" and command in ("generate", "arpa export"):
            assert res.exit_code == 0, (command, res.output)  # a language model generates without its training config
            continue
        if name == "train.yaml" and how == "truncated" and res.exit_code == 0:
            continue  # half a YAML file can still be a valid config (the cut fell after the data section): no traceback

        assert res.exit_code == 2 and res.exception is not None and isinstance(res.exception, SystemExit), (command, res.output)
        text = " ".join(res.output.split())
        assert name.split("/")[-1] in text and ("damaged" in text or "not a textmill" in text or "does not match" in text), \
            (command, text)
        assert not (tmp_path / "lm.arpa").exists()


def test_nan_weights_are_refused_with_the_way_back(runs, tmp_path):
    run = damaged_copy(runs, "gpt", "model.safetensors", nan, tmp_path)
    with pytest.raises(TextmillError, match="NaN or infinite.*checkpoints/last/model.safetensors"):
        textmill.load(run)
    res = runner.invoke(app, COMMANDS["generate"](run))
    assert res.exit_code == 2 and "NaN" in res.output


def test_weights_of_another_model_are_a_mismatch_not_damage(runs, tmp_path):
    run = tmp_path / "gpt"
    shutil.copytree(runs["gpt"], run)
    meta = json.loads((run / "config.json").read_text())
    meta["model"]["n_embd"] = 64
    (run / "config.json").write_text(json.dumps(meta))
    with pytest.raises(TextmillError, match="does not match config.json"):
        textmill.load(run)


def test_a_tokenizer_of_another_run_is_refused(runs, tmp_path):
    run = tmp_path / "gpt"
    shutil.copytree(runs["gpt"], run)
    doc = json.loads((run / "tokenizer.json").read_text())
    doc["vocab"] += [f"extra{i}" for i in range(50)]
    (run / "tokenizer.json").write_text(json.dumps(doc))
    with pytest.raises(TextmillError, match="tokenizer.json is damaged.*another run"):
        textmill.load(run)
