"""A synth run that names no generator takes the recipe of its data's language (synth/config.py RECIPES),
and whatever the user set keeps its value."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import ConfigError
from textmill.synth import SynthConfig
from textmill.synth.config import PER_LABEL, RECIPE

runner = CliRunner()


def test_a_run_without_a_generator_takes_the_recipe_of_its_language():
    cfg = SynthConfig(data="d.csv", out="o.jsonl")
    assert cfg.generator == RECIPE and cfg.per_label is None  # the recipe sets the count
    en = cfg.with_recipe(chinese=False)
    assert (en.generator, en.per_row, en.per_label) == ("mix:ngram+prompt", 18, None)
    assert en.label_classifier == "pretrained" and en.eda_below == 20
    assert en.generator_options == {"shares": {"ngram": 8, "prompt": 1}, "ngram": {"prefix": 2, "temperature": 0.7}}
    zh = cfg.with_recipe(chinese=True)
    assert (zh.generator, zh.per_row, zh.label_classifier, zh.eda_below) == ("eda", 16, "tfidf", 0)
    named = SynthConfig(data="d.csv", out="o.jsonl", generator="eda")
    assert named.with_recipe(chinese=False) is named and named.per_label == PER_LABEL


def test_what_the_user_sets_keeps_its_value_under_the_recipe():
    cfg = SynthConfig(data="d.csv", out="o.jsonl", per_label=100, eda_below=0, label_classifier="tfidf",
                      generator_options={"descriptions": {"pos": "positive reviews"}, "ngram": {"prefix": 1}})
    en = cfg.with_recipe(chinese=False)
    assert (en.per_label, en.per_row, en.eda_below, en.label_classifier) == (100, None, 0, "tfidf")
    assert en.generator_options == {"shares": {"ngram": 8, "prompt": 1}, "ngram": {"prefix": 1},
                                    "descriptions": {"pos": "positive reviews"}}
    assert SynthConfig(data="d.csv", out="o.jsonl", per_row=2).with_recipe(chinese=True).per_row == 2
    with pytest.raises(ConfigError, match="the default recipe trains none .* generator=gpt"):
        textmill.synthesize("d.csv", out="o.jsonl", dp_epsilon=8)


def test_synth_without_a_generator_writes_edits_of_chinese_reviews(tmp_path):
    out = tmp_path / "zh.jsonl"
    res = runner.invoke(app, ["synth", "embedded:chinese_reviews", "--option", "max_rows=60", "--per-row", "2",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {r["generator"] for r in rows} == {"eda"} and 0 < len(rows) <= 2 * 48  # 2 per row of the 80% trained on


@pytest.mark.slow
def test_synth_without_a_generator_mixes_ngram_and_prompted_rows_in_english(labelled, tmp_path):
    """The English recipe on the real SmolLM2: n-gram and prompted rows through the pretrained judge."""
    res = textmill.synthesize(str(labelled), out=tmp_path / "en.jsonl", per_row=0.5, near_duplicate_threshold=0.95,
                              progress=False)
    rows = [json.loads(line) for line in res.out.read_text(encoding="utf-8").splitlines()]
    assert res.per_label == {"negative": 32, "positive": 32}  # half of each label's 64 training rows
    assert "ngram" in {r["generator"] for r in rows} <= {"ngram", "prompt"}
