import json

import yaml
from typer.testing import CliRunner

from textmill.cli import app

from .helpers import tiny_config

runner = CliRunner()


def test_train_generate_eval_info(tmp_path, corpus):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(corpus)))
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(run), "--set", "train.max_steps=12", "--set", "train.eval_every=6"])
    assert res.exit_code == 0, res.output
    assert "done: 12 steps" in res.output
    res = runner.invoke(app, ["generate", str(run), "-p", "First", "-p", "All", "--max-new-tokens", "8", "--seed", "1", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert [row["prompt"] for row in lines] == ["First", "All"]
    res = runner.invoke(app, ["generate", str(run), "-p", "All:\\n", "--stop", "\\n", "--max-new-tokens", "40", "--seed", "1",
                              "--json"])
    assert res.exit_code == 0 and "\n" not in json.loads(res.output)["text"]
    assert json.loads(res.output)["prompt"] == "All:\n"
    res = runner.invoke(app, ["generate", str(run), "-p", "First", "--num-beams", "2", "-n", "2", "--max-new-tokens", "5"])
    assert res.exit_code == 0 and res.output.count("First") == 2
    res = runner.invoke(app, ["generate", str(run), "-p", "First", "--stream", "--greedy", "--max-new-tokens", "5"])
    assert res.exit_code == 0 and res.output.startswith("First")
    res = runner.invoke(app, ["eval", str(run), "--data", str(corpus), "--samples", "5", "--max-new-tokens", "10"])
    assert res.exit_code == 0, res.output
    report = json.loads((run / "eval.json").read_text())
    assert report["perplexity"] > 1 and report["samples"]["n"] == 5 and "char tokens" in report["tokenization"]
    res = runner.invoke(app, ["info", str(run)])
    assert res.exit_code == 0 and "gpt" in res.output and "12 / 12 steps" in res.output


def test_user_errors_exit_2_with_a_message(tmp_path, corpus):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config(corpus), "train": {"max_stepz": 3}}))
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "max_stepz: unknown key" in res.output
    res = runner.invoke(app, ["generate", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01")
    cfg.write_text(yaml.safe_dump({**tiny_config(binary)}))
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "looks binary" in res.output
    assert not (tmp_path / "r2").exists()


def test_compare_prints_a_leaderboard(tmp_path, corpus):
    paths = []
    for family in ("gpt", "gru"):
        p = tmp_path / f"{family}.yaml"
        p.write_text(yaml.safe_dump(tiny_config(corpus, family)))
        paths.append(str(p))
    res = runner.invoke(app, ["compare", *paths, "--minutes", "0.02", "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "cmp" / "leaderboard.json").read_text())
    assert {r["name"] for r in rows} == {"gpt", "gru"}
    assert rows[0]["val_bpc"] <= rows[1]["val_bpc"]
    assert "| gpt |" in (tmp_path / "cmp" / "leaderboard.md").read_text()


def test_every_decoding_option_is_a_generate_option_and_reaches_the_model(tiny_run, monkeypatch):
    """`textmill generate` builds its decoding options from GenerationOptions: none can be left out,
    and each one given on the command line arrives in `Generator.generate` as given."""
    import typer.main

    from textmill.decoding import GenerationOptions, Generator

    command = typer.main.get_command(app).commands["generate"]
    flags = {name for p in command.params if p.param_type_name == "option" for name in p.opts}
    for field in GenerationOptions.model_fields:
        assert {"bad_words": "--bad-word"}.get(field, "--" + field.replace("_", "-")) in flags, field
    seen = []
    real = Generator.generate
    monkeypatch.setattr(Generator, "generate", lambda self, prompts, **o: seen.append(o) or real(self, prompts, **o))
    res = runner.invoke(app, ["generate", str(tiny_run), "-p", "First", "--greedy", "--max-new-tokens", "12",
                              "--presence-penalty", "1.5", "--frequency-penalty", "0.5", "--no-early-stopping"])
    assert res.exit_code == 0, res.output
    assert seen[-1]["presence_penalty"] == 1.5 and seen[-1]["frequency_penalty"] == 0.5 and seen[-1]["early_stopping"] is False
    assert seen[-1]["strategy"] == "greedy"
    res = runner.invoke(app, ["generate", str(tiny_run), "-p", "First", "--strategy", "nucleus"])
    assert res.exit_code == 2 and "'nucleus' is not one of" in res.output
