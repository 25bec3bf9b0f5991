import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import ConfigError, GenerationError
from textmill.models.template import TemplateGrammar

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "template"


def grammar(rules, **extra):
    return TemplateGrammar({"rules": rules, **extra})


def test_syntax_optional_choice_slots_and_spans():
    g = grammar({"S": ["book [a ]table for {n} (today|tomorrow)"]}, slots={"n": ["two"]})
    texts = {s.text for s in g.enumerate()}
    assert texts == {f"book {a}table for two {d}" for a in ("", "a ") for d in ("today", "tomorrow")}
    s = g.generate(1, seed=0)[0]
    assert s.slots == {"n": "two"} and s.text[s.spans[0]["start"]:s.spans[0]["end"]] == "two"


def test_chinese_needs_no_spaces_and_spans_are_character_offsets():
    g = grammar({"S": ["[请问]{city}明天<W>？"], "W": ["会下雨吗", "冷不冷"]}, slots={"city": ["北京", "上海"]})
    for s in g.generate(4, seed=1):
        span = s.spans[0]
        assert " " not in s.text and s.text[span["start"]:span["end"]] == s.slots["city"]
    assert len(g.enumerate()) == 2 * 2 * 2


def test_weights_seed_and_reproducibility():
    g = grammar({"S": [{"text": "a", "weight": 9}, {"text": "b", "weight": 1}, {"text": "c", "weight": 0}]})
    draws = [s.text for s in g.generate(500, seed=3, unique=False)]
    assert draws == [s.text for s in g.generate(500, seed=3, unique=False)]
    assert "c" not in draws and 0.85 < draws.count("a") / 500 < 0.95


def test_labels_and_unknown_label():
    g = TemplateGrammar.from_file(CONFIGS / "restaurant_en.yaml")
    out = g.generate(5, seed=1)
    assert [s.label for s in out] == ["book_table"] * 5 + ["cancel_booking"] * 5 + ["ask_hours"] * 5
    assert len({s.text for s in out}) == 15
    assert {s.label for s in g.generate(3, seed=1, label="ask_hours")} == {"ask_hours"}
    with pytest.raises(ConfigError, match="unknown label 'refund'; this grammar's labels: book_table"):
        g.generate(1, label="refund")


def test_recursion_respects_the_depth_limit():
    g = grammar({"S": ["x", "x <S>"]}, max_depth=4)
    assert {s.text for s in g.enumerate()} == {"x", "x x", "x x x", "x x x x"}
    assert max(len(s.text.split()) for s in g.generate(50, seed=0, unique=False)) <= 4


def test_uniqueness_gives_up_with_a_clear_message():
    g = grammar({"S": ["a", "b"]})
    with pytest.raises(GenerationError, match="only 2 distinct sentences.*at most 2 distinct"):
        g.generate(3, seed=0)
    assert len(g.generate(3, seed=0, unique=False)) == 3


@pytest.mark.parametrize("spec,message", [
    ({"rules": {"S": ["<Food>"], "food": ["x"]}}, "rule 'Food' is not defined .* did you mean 'food'"),
    ({"rules": {"S": ["{cty}"]}, "slots": {"city": ["x"]}}, "slot 'cty' is not defined .* did you mean 'city'"),
    ({"rules": {"S": ["a <T>"], "T": ["b <T>"]}}, r"rules \['S', 'T'\] can never finish"),
    ({"rules": {"S": []}}, "needs a non-empty list"),
    ({"rules": {"S": [""]}}, "alternative 1 is empty"),
    ({"rules": {"S": [{"text": "a", "weight": -1}]}}, "weight must be a number >= 0"),
    ({"rules": {"S": [{"text": "a", "weight": 0}]}}, "all weights are 0"),
    ({"rules": {"S": ["a [b"]}}, "never closed"),
    ({"rules": {"S": ["a"]}, "labels": {"pos": "P"}}, "start rule 'P' is not defined"),
    ({"rules": {"S": ["a"]}, "rulez": {}}, "unknown keys"),
])
def test_validation_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        TemplateGrammar(spec)


def test_slot_lexicon_from_file(tmp_path):
    (tmp_path / "cities.txt").write_text("Paris\nRome\n\n", encoding="utf-8")
    (tmp_path / "g.yaml").write_text("rules:\n  S: ['to {city}']\nslots:\n  city: {file: cities.txt}\n", encoding="utf-8")
    assert {s.text for s in textmill.load(tmp_path / "g.yaml").enumerate()} == {"to Paris", "to Rome"}


def test_cli_writes_jsonl_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "data.jsonl"
    runner = CliRunner()
    res = runner.invoke(app, ["generate", str(CONFIGS / "weather_zh.yaml"), "-n", "10", "--seed", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 20 and {r["label"] for r in rows} == {"查询天气", "查询穿衣"}
    assert all(set(r) == {"text", "label", "slots", "spans"} for r in rows)
    res = runner.invoke(app, ["generate", str(CONFIGS / "weather_zh.yaml"), "-n", "10", "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 20
