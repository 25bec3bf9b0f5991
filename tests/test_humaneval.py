"""Human evaluation: a study built from JSONL outputs and a model, blinded and shuffled; raters judging at
once over HTTP lose and double nothing; the report's statistics; bad studies and bad judgements are
clear errors."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from typer.testing import CliRunner

from textmill.cli import app
from textmill.errors import ConfigError
from textmill.humaneval import Output, Study, create, export_csv, report
from textmill.humaneval.report import alpha, bradley_terry, mean_interval

from .helpers import live, post

runner = CliRunner()
PROMPTS = ["The ship", "In the morning", "She said"]


@pytest.fixture
def study(tmp_path, tiny_run):
    for name, word in (("alpha", "sails"), ("beta", "sinks")):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"prompt": p, "text": f"{p} {word}."}) + "\n"
                                                        for p in PROMPTS), encoding="utf-8")
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    out = tmp_path / "study.db"
    res = runner.invoke(app, ["humaneval", "create", str(tmp_path / "alpha.jsonl"), f"B={tmp_path / 'beta.jsonl'}",
                              f"gpt={tiny_run}", "--prompts", str(tmp_path / "prompts.txt"), "--max-new-tokens", "12",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_a_study_holds_every_output_and_pair_blinded_and_shuffled(study):
    s = Study(study)
    assert s.systems() == ["B", "alpha", "gpt"]
    tasks = s.tasks()
    assert sum(k == "item" for k, _ in tasks) == 9 and sum(k == "pair" for k, _ in tasks) == 9  # 3 prompts x 3 system pairs
    assert s.order("ann") != s.order("bob") and s.order("ann") == s.order("ann")
    task = s.next_task("ann")
    assert task["progress"] == {"done": 0, "total": 18}
    assert not {"system", "system_a", "system_b"} & set(task) and all("gpt" not in str(v) for v in task.values())


def tokens(study, *raters):
    """Each rater's token, from the links `textmill humaneval invite` prints."""
    res = runner.invoke(app, ["humaneval", "invite", str(study), *[x for r in raters for x in ("--rater", r)],
                              "--url", "http://127.0.0.1:9"])
    assert res.exit_code == 0, res.output
    links = dict(line.split("\t") for line in res.output.splitlines())
    assert all(links[r].startswith(f"http://127.0.0.1:9/rate?rater={r}&token=") for r in raters)
    return {r: links[r].rsplit("token=", 1)[1] for r in raters}


def test_raters_at_once_over_http_lose_and_double_nothing(study):
    keys = tokens(study, "ann", "bob", "cy")
    errors = []
    with live({}, study=study) as url:
        with urllib.request.urlopen(f"{url}/rate") as r:
            assert b"Rate generated texts" in r.read()
        conflicts = []

        def rater(name: str) -> None:
            try:
                judge(name)
            except Exception as e:  # a thread's failure must fail the test
                errors.append(e)

        def judge(name: str) -> None:
            with urllib.request.urlopen(f"{url}/humaneval/next?rater={name}&token={keys[name]}") as r:
                task = json.loads(r.read())
            while task["kind"] != "done":
                if task["kind"] == "item":
                    body = {"rater": name, "token": keys[name], "item": task["id"], "fluency": 4, "coherence": 3, "grammar": 5}
                    path = "rating"
                else:
                    body = {"rater": name, "token": keys[name], "pair": task["id"], "choice": "a"}
                    path = "preference"
                code, answer = post(f"{url}/humaneval/{path}", body)
                again, dup = post(f"{url}/humaneval/{path}", body)  # a double click
                assert code == 200 and again == 409 and dup["error"]["code"] == "already_judged"
                conflicts.append(again)
                task = answer

        threads = [threading.Thread(target=rater, args=(n,)) for n in ("ann", "bob", "cy")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    rep = report(study)
    assert rep["ratings"] == 3 * 9 and rep["preferences"] == 3 * 9 and rep["raters"] == ["ann", "bob", "cy"]
    assert len(conflicts) == 3 * 18
    assert rep["systems"]["alpha"]["fluency"]["mean"] == 4 and rep["systems"]["B"]["grammar"]["n"] == 9
    assert rep["alpha"]["fluency"] == 1.0  # every rater gave every item the same score


def test_judgements_out_of_range_or_unknown_are_400s(study):
    ann = tokens(study, "ann")["ann"]
    with live({}, study=study) as url:
        for body, needle in [({"rater": "ann", "token": ann, "item": 1, "fluency": 6, "coherence": 3, "grammar": 5}, "fluency"),
                             ({"rater": "ann", "token": ann, "item": 999, "fluency": 2, "coherence": 3, "grammar": 5}, "item 999"),
                             ({"rater": " ", "token": ann, "item": 1, "fluency": 2, "coherence": 3, "grammar": 5}, "rater name"),
                             ({"rater": "ann", "token": ann, "item": 1, "fluency": 2}, "coherence")]:
            code, answer = post(f"{url}/humaneval/rating", body)
            assert code == 400 and needle in answer["error"]["message"], answer
        code, answer = post(f"{url}/humaneval/preference", {"rater": "ann", "token": ann, "pair": 1, "choice": "c"})
        assert code == 400 and "choice" in answer["error"]["message"]


@pytest.mark.parametrize("api_key", [None, "secret"])
def test_only_invited_raters_judge_with_or_without_the_api_key(study, api_key):
    """Nobody who merely reaches the port adds judgements: a missing, wrong or another rater's token is
    a 403, whether the server has an API key or not, and raters never need that key; the models' routes
    keep needing it."""
    keys = tokens(study, "ann", "bob")
    rating = {"item": 1, "fluency": 4, "coherence": 3, "grammar": 5}
    with live({}, study=study, api_key=api_key) as url:
        for body in ({"rater": "eve", "token": "", **rating}, {"rater": "eve", "token": keys["ann"], **rating},
                     {"rater": "ann", "token": keys["bob"], **rating}, {"rater": "mallory", "token": "0" * 32, **rating}):
            code, answer = post(f"{url}/humaneval/rating", body)
            assert code == 403 and answer["error"]["code"] == "not_invited", answer
        for query in ("rater=eve", f"rater=eve&token={keys['ann']}"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"{url}/humaneval/next?{query}")
            assert e.value.code == 403
        code, answer = post(f"{url}/humaneval/rating", {"rater": "ann", "token": keys["ann"], **rating})
        assert code == 200 and answer["progress"]["done"] == 1
        if api_key:
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"{url}/metrics")
            assert e.value.code == 401
    assert report(study)["raters"] == ["ann"]


def test_report_statistics():
    m = mean_interval([3, 4, 5, 4])
    assert m["mean"] == 4 and m["low"] == pytest.approx(4 - 3.182446 * np.std([3, 4, 5, 4], ddof=1) / 2, rel=1e-5)
    assert mean_interval([2])["low"] is None and mean_interval([])["mean"] is None
    agree = [{"rater": r, "item": i, "fluency": v} for r in ("a", "b") for i, v in enumerate([1, 2, 3, 4, 5])]
    assert alpha(agree, "fluency") == pytest.approx(1.0)
    disagree = [{"rater": "a", "item": i, "fluency": v} for i, v in enumerate([1, 2, 3, 4, 5])] + \
               [{"rater": "b", "item": i, "fluency": v} for i, v in enumerate([5, 4, 3, 2, 1])]
    assert alpha(disagree, "fluency") < 0
    assert alpha([{"rater": "a", "item": 0, "fluency": 3}], "fluency") is None  # one rater: no agreement to measure
    prefs = [{"system_a": "x", "system_b": "y", "choice": "a"}] * 8 + [{"system_a": "y", "system_b": "x", "choice": "a"}] * 2 + \
            [{"system_a": "y", "system_b": "z", "choice": "a"}] * 7 + [{"system_a": "x", "system_b": "z", "choice": "tie"}]
    bt = bradley_terry(["x", "y", "z"], prefs)
    assert bt["x"] > bt["y"] > bt["z"] and sum(bt.values()) == pytest.approx(0, abs=1e-9)
    assert bradley_terry(["x", "y"], []) is None


def test_report_cli_and_csv(study, tmp_path):
    s = Study(study)
    items = [i for k, i in s.tasks() if k == "item"]
    for rater, score in (("ann", 5), ("bob", 4)):
        for i in items:
            s.rate(rater, i, {"fluency": score, "coherence": 3, "grammar": 2})
    pair = next(i for k, i in s.tasks() if k == "pair")
    s.prefer("ann", pair, "b")
    res = runner.invoke(app, ["humaneval", "report", str(study), "--csv", str(tmp_path / "csv")])
    assert res.exit_code == 0, res.output
    assert "18 ratings and 1 preferences from 2 raters" in res.output and "Krippendorff" in res.output
    rows = list(csv.DictReader(open(tmp_path / "csv" / "ratings.csv", encoding="utf-8")))
    assert len(rows) == 18 and {r["rater"] for r in rows} == {"ann", "bob"}
    assert len(list(csv.DictReader(open(tmp_path / "csv" / "preferences.csv", encoding="utf-8")))) == 1
    assert {r["criterion"] for r in csv.DictReader(open(tmp_path / "csv" / "systems.csv", encoding="utf-8"))} == \
        {"fluency", "coherence", "grammar"}
    as_json = json.loads(runner.invoke(app, ["humaneval", "report", str(study), "--json"]).output)
    assert as_json["ratings"] == 18 and export_csv(study, tmp_path / "again")


def test_bad_studies_and_inputs_are_clear_errors(tmp_path, study):
    text = tmp_path / "notes.txt"
    text.write_text("not a study", encoding="utf-8")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE meta (key TEXT, value TEXT)").connection.commit()
    for path, needle in ((text, "not a textmill study"), (other, "not a textmill study"), (tmp_path / "nope.db", "does not exist")):
        res = runner.invoke(app, ["humaneval", "report", str(path)])
        assert res.exit_code == 2 and needle in res.output, res.output
        res = runner.invoke(app, ["serve", "--study", str(path)])
        assert res.exit_code == 2 and needle in res.output, res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "text": "b"}\n{"prompt": "a"}\n', encoding="utf-8")
    res = runner.invoke(app, ["humaneval", "create", str(bad), "--out", str(tmp_path / "s.db")])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output and not (tmp_path / "s.db").exists()
    res = runner.invoke(app, ["humaneval", "create", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "s.db")])
    assert res.exit_code == 2 and "none.jsonl does not exist" in res.output
    res = runner.invoke(app, ["humaneval", "create", "embedded:smollm2-135m-instruct", "--out", str(tmp_path / "s.db")])
    assert res.exit_code == 2 and "--prompts" in res.output
    before = study.read_bytes()
    with pytest.raises(ConfigError, match="exists"):
        create([Output("a", "p", "t")], study)
    assert study.read_bytes() == before  # the user's study, and its ratings, are untouched
    with pytest.raises(ConfigError, match="empty output"):
        create([Output("a", "p", " ")], tmp_path / "e.db")
    assert not (tmp_path / "e.db").exists()
