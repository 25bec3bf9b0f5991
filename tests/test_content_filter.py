"""The content filter (textmill.safety.content), the safety policy (policy.py) and where it is wired in:
generate, stream, the server, `textmill redact --safety` and synth's content filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import textmill
from textmill.decoding.stopping import IncrementalText
from textmill.errors import ConfigError
from textmill.safety import CATEGORIES, ContentFilter, Safety, SafetyError
from textmill.safety.content import normalise

from .helpers import live, post

DATA = Path(__file__).parent / "data"


def labelled(name: str) -> list[tuple[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t", 1)) for line in lines if line.strip() and not line.startswith("#")]  # type: ignore[misc]


@pytest.fixture(scope="module")
def cf() -> ContentFilter:
    return ContentFilter()


@pytest.mark.parametrize("text, norm", [
    ("F.U.C.K", "fuck"), ("ｓｈ１ｔ", "shit"), ("@ss", "ass"), ("sh!t wow!", "shit wow "), ("傻 逼", "傻逼"),
    ("他媽的", "他妈的"), ("f\u200buck", "fuck"), ("fuсk", "fuck"), ("born in 1985", "born in 1985"),
])
def test_normalise(text, norm):
    out, index = normalise(text)
    assert out == norm
    assert len(index) == len(out) and all(0 <= i < len(text) for i in index)


def test_every_disguised_variant_of_the_development_set_is_caught_in_its_category(cf):
    rows = labelled("content.txt")
    assert {c for c, _ in rows} == {*CATEGORIES, "none"}
    missed = [(c, t) for c, t in rows if c != "none" and c not in cf.check(t).categories]
    assert missed == []
    false = [t for c, t in rows if c == "none" and cf.check(t).hits]
    assert false == ["I want to die my hair blue."]  # the one known false flag (README)


def test_criticism_is_not_an_attack_until_it_is_aimed_at_someone(cf):
    assert not cf.check("a stupid plot").hits
    assert cf.check("you're so stupid").categories == ["personal_attack"]
    assert not cf.check("垃圾酒店").hits and cf.check("你这个垃圾").categories == ["personal_attack"]
    assert cf.check("you asshole").categories == ["abuse", "personal_attack"]


def test_spans_point_into_the_original_text(cf):
    text = "well, f.u.c.k this"
    [hit] = cf.check(text).hits
    assert text[hit.start:hit.end] == "f.u.c.k" == hit.text


def test_policies_allow_flag_mask_refuse():
    f = ContentFilter({"abuse": "mask", "violence": "refuse", "hate": "allow"}, default="flag")
    v = f.check("shit, I will kill you")
    assert v.action == "refuse" and v.text == "<ABUSE>, I will kill you"
    assert f.cut("shit, I will kill you")[0] == "<ABUSE>, "
    assert f.check("gas the jews").hits == ()  # allowed: not even reported
    assert f.check("I want to kill myself").action == "flag"
    assert f.counts["violence"] == 2 and f.counts["abuse"] == 2


def test_word_lists_extend_or_replace_the_default(tmp_path):
    extra = tmp_path / "extra.tsv"
    extra.write_text("abuse\tfrak*\n# a comment\nhate\t蛆\n", encoding="utf-8")
    f = ContentFilter(extra_words=extra)
    assert f.check("frakking toasters").categories == ["abuse"] and f.check("一群蛆").categories == ["hate"]
    assert f.check("shit").hits  # the default is still there
    only = ContentFilter(words=extra)
    assert only.check("shit").hits == () and only.check("frak").hits


@pytest.mark.parametrize("content, message", [
    (b"abuse\t\xff\xfe\n", "not UTF-8"),
    ("abuse\t\n".encode(), "the entry is empty"),
    ("abuse\t*\n".encode(), "the entry is empty"),
    ("spam\tbuy now\n".encode(), "category among"),
    ("abuse fuck\n".encode(), "category<TAB>entry"),
])
def test_bad_word_lists_are_refused(tmp_path, content, message):
    path = tmp_path / "words.tsv"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        ContentFilter(extra_words=path)


def test_bad_policies_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown content category"):
        ContentFilter({"spam": "flag"})
    with pytest.raises(ConfigError, match="unknown policy"):
        ContentFilter({"abuse": "delete"})
    with pytest.raises(ConfigError, match="does not exist"):
        ContentFilter(words=tmp_path / "missing.tsv")
    with pytest.raises(ConfigError, match="invalid safety policy: content"):
        Safety(content={"spam": "refuse"})
    with pytest.raises(ConfigError, match="pii_types"):
        Safety(pii_types=["SHOE_SIZE"])


def test_a_classifier_stage_adds_abuse_over_the_whole_text():
    f = ContentFilter(classifier=lambda texts: [0.95 if "rude" in t else 0.1 for t in texts], threshold=0.9)
    [hit] = f.check("a rude remark").hits
    assert (hit.category, hit.entry, hit.start, hit.end) == ("abuse", "classifier", 0, 13)
    assert f.check("a kind remark").hits == ()
    assert f.check("很粗鲁 rude").hits  # mostly Latin letters? no: but 4 of 7 letters are Latin
    pytest.importorskip("profanity_check")
    g = ContentFilter(classifier="profanity-check")
    assert g.check("you are a piece of crap").categories and not g.check("a lovely walk in the park").hits


def test_safety_screens_prompts_and_outputs():
    s = Safety()
    with pytest.raises(SafetyError, match="hate") as e:
        s.screen_prompt("gas the jews")
    assert e.value.categories == ["hate"]
    assert s.screen_prompt("mail me at jane@example.com, shit") == "mail me at <EMAIL>, <ABUSE>"
    assert s.screen_output("fine so far. I will kill you. And more") == ("fine so far. ", True)
    assert s.screen_output("nothing to see") == ("nothing to see", False)
    assert s.counts["input:hate"] == 1 and s.counts["input:pii:EMAIL"] == 1 and s.counts["output:violence"] == 1
    assert Safety(pii="refuse").screen_output("call +1 415 555 0132 now") == ("call ", True)


def test_policy_files(tmp_path):
    (tmp_path / "words.tsv").write_text("abuse\tzork\n", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("content: {abuse: refuse}\nextra_words: words.tsv\npii: allow\n", encoding="utf-8")
    s = Safety.load(policy)
    with pytest.raises(SafetyError):
        s.screen_prompt("zork off")
    assert s.screen_prompt("jane@example.com") == "jane@example.com"
    assert Safety.load("default").config.pii == "mask"
    with pytest.raises(ConfigError, match="neither 'default' nor a file"):
        Safety.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        Safety.load(bad)
    bad.write_text("contents: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="contents"):
        Safety.load(bad)


def test_a_stream_is_cut_before_a_refused_word_even_when_it_arrives_in_pieces():
    text = IncrementalText(lambda _, pieces: "".join(pieces), [], [], Safety())
    shown = []
    for piece in ["All calm here, then: I will ", "ki", "ll you", " tomorrow", " and after"]:
        shown.append(text.push(piece))
        if text.stopped:
            break
    shown.append(text.finish())
    assert "".join(shown) == "All calm here, then: " and text.filtered


@pytest.fixture(scope="module")
def threat_run(tmp_path_factory) -> Path:
    """A char trigram model that can only say one threatening sentence."""
    corpus = tmp_path_factory.mktemp("threat") / "threat.txt"
    corpus.write_text("I will kill you now.\n" * 50, encoding="utf-8")
    run = tmp_path_factory.mktemp("runs") / "threat"
    textmill.train({"model": {"family": "ngram", "order": 8}, "tokenizer": {"kind": "char"},
                    "data": {"source": str(corpus)}, "train": {"max_steps": 1}}, run)
    return run


def test_generate_and_stream_apply_the_policy(threat_run):
    gen = textmill.load(threat_run)
    assert gen.generate("I will", max_new_tokens=12, strategy="greedy") == " kill you no"
    s = Safety()
    assert gen.generate("I will", max_new_tokens=12, strategy="greedy", safety=s) == " "
    assert "".join(gen.stream("I will", max_new_tokens=12, strategy="greedy", safety=s)) == " "
    assert s.counts["output:violence"] == 2
    with pytest.raises(SafetyError):
        gen.generate("I will kill you", safety=s)


def test_the_server_refuses_prompts_and_cuts_outputs(threat_run):
    from openai import OpenAI

    with live({"threat": textmill.load(threat_run)}, safety=Safety()) as url:
        status, body = post(f"{url}/v1/completions", {"model": "threat", "prompt": "gas the jews", "max_tokens": 4})
        assert status == 400 and body["error"]["code"] == "content_filter" and "hate" in body["error"]["message"]
        client = OpenAI(base_url=f"{url}/v1", api_key="none")
        r = client.completions.create(model="threat", prompt="I will", max_tokens=12, temperature=0)
        assert r.choices[0].finish_reason == "content_filter" and "kill" not in r.choices[0].text
        chunks = list(client.completions.create(model="threat", prompt="I will", max_tokens=12, temperature=0, stream=True))
        assert chunks[-1].choices[0].finish_reason == "content_filter"
        assert "kill" not in "".join(c.choices[0].text for c in chunks)


def test_redact_with_a_policy_drops_refused_rows(tmp_path):
    from typer.testing import CliRunner

    from textmill.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(
        ["a calm day", "shit happens", "I will kill you", "mail jane@example.com"])), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["redact", str(src), "--out", str(out), "--safety", "default"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["id"], x["text"]) for x in rows] == [(0, "a calm day"), (1, "<ABUSE> happens"), (3, "mail <EMAIL>")]
    r = CliRunner().invoke(app, ["redact", str(src), "--out", str(tmp_path / "x.jsonl"), "--safety", "default", "--type", "EMAIL"])
    assert r.exit_code != 0 and "drop --action and --type" in r.output


def test_synth_removes_generated_rows_with_such_content():
    from pydantic import ValidationError

    from textmill.synth.config import SynthConfig
    from textmill.synth.filters import Candidate, Content

    batch = [Candidate("what a shit film", "neg"), Candidate("a fine film", "pos"), Candidate("你这个废物", "neg")]
    assert Content(CATEGORIES).keep(batch) == [False, True, False]
    assert batch[0].scores["content"] == "abuse"
    assert Content(["hate"]).keep(batch) == [True, True, True]
    with pytest.raises(ValidationError, match="unknown content categories"):
        SynthConfig(data="x.tsv", out="y.jsonl", content_categories=["spam"])


@pytest.mark.parametrize("text", ["i want to k1ll myself", "im going to kil myself tonight", "I am going to kill myself"])
def test_self_harm_in_leetspeak_is_self_harm_only_so_the_default_policy_keeps_it_flagged(text):
    """The default policy flags self-harm (a person who needs help is not refused) and refuses violence:
    a threat inside a self-harm phrase must not turn the one into the other."""
    from textmill.safety import Safety

    safety = Safety.load("default")
    verdict = safety.filter.check(text)
    assert verdict.categories == ["self_harm"] and verdict.action == "flag"
    assert safety.screen_prompt(text) == text
