"""synth's tune: temperature and top-p chosen on validation rows, never on the report's held-out rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import ConfigError, DataError
from textmill.synth.generators import GENERATORS, SynthGenerator
from textmill.synth.generators.base import SamplingOptions
from textmill.synth.report import render_html

from .helpers import BAD, GOOD, reviews

runner = CliRunner()


class Thermometer(SynthGenerator):
    """Writes reviews of the label's sentiment at temperature 0.7 and of the other sentiment otherwise,
    so only one setting helps a classifier; records what it was fitted on and how it sampled."""

    name = "thermometer"
    Options = SamplingOptions
    samples = True
    fitted: list[list[tuple[str, str]]] = []
    sampled: list[tuple[float, float | None]] = []

    def fit(self, rows, workdir: Path, chinese: bool, seed: int) -> None:
        Thermometer.fitted.append(list(rows))

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        t, top_p = self.options.temperature, self.options.top_p
        Thermometer.sampled.append((t, top_p))
        right = (label == "positive") == (t == 0.7)
        rng = random.Random(seed)
        words = GOOD if right else BAD
        return [f"the {rng.choice(['meal', 'visit', 'evening'])} was {rng.choice(words)} and the "
                f"{rng.choice(['wine', 'cake', 'host'])} was {rng.choice(words)} number {i}" for i in range(n)]


class Contrary(Thermometer):
    """Writes reviews of the other sentiment, whatever the temperature: rows that only hurt."""

    name = "contrary"

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        rng, words = random.Random(seed), BAD if label == "positive" else GOOD
        return [f"the {rng.choice(['meal', 'visit', 'evening'])} was {rng.choice(words)} and the "
                f"{rng.choice(['wine', 'cake', 'host'])} was {rng.choice(words)} number {i}" for i in range(n)]


@pytest.fixture
def thermometer(monkeypatch):
    monkeypatch.setitem(GENERATORS._items, "thermometer", Thermometer)
    monkeypatch.setitem(GENERATORS._items, "contrary", Contrary)
    Thermometer.fitted, Thermometer.sampled = [], []
    return Thermometer


OPTIONS = dict(generator="thermometer", per_row=8, holdout=0.2, skip_filters=["label", "near_duplicate"], progress=False,
               report_fluency=0)


def test_tune_picks_the_setting_that_helps_on_rows_the_report_never_sees(thermometer, labelled, tmp_path):
    out = tmp_path / "o.jsonl"
    res = textmill.synthesize(str(labelled), out=out, tune=True, report=str(tmp_path / "r.html"), **OPTIONS)
    t = res.tuning
    assert t["chosen"] == {"temperature": 0.7, "top_p": None}
    scores = {(s["temperature"], s["top_p"]): s["accuracy"] for s in t["settings"]}
    assert set(scores) == {(0.7, None), (1.0, None), (1.0, 0.9)}
    assert scores[0.7, None] >= t["real_only"]["accuracy"] > scores[1.0, None]  # rows of the other sentiment hurt
    # 128 training rows: a stratified quarter validates; the tuning generator is fitted on the rest
    final, fold = thermometer.fitted
    assert (t["validation_rows"], t["fit_rows"], len(fold), len(final)) == (32, 96, 96, 128)
    validation = set(final) - set(fold)
    heldout = {(text, label) for text, label in reviews(160)} - set(final)
    assert len(validation) == 32 and len(heldout) >= 28 and not validation & heldout  # (a few texts repeat)
    # each setting wrote a quarter of the run's rows; the run then sampled with the winner only
    assert all(s["rows"] == 192 for s in t["settings"])  # 0.25 x 96 fit rows x per_row 8
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1024 and all(any(w in r["text"] for w in (GOOD if r["label"] == "positive" else BAD)) for r in rows)
    assert res.report["tuning"] == t and "Sampling, chosen on validation rows" in (tmp_path / "r.html").read_text()
    # the same command again re-reports from the journal and keeps the choice without tuning again
    again = textmill.synthesize(str(labelled), out=out, tune=True, report=str(tmp_path / "r.html"), **OPTIONS)
    assert again.tuning == t and len(thermometer.fitted) == 3  # one more fit (the run's generator), no fold


def test_tune_data_validates_instead_and_the_run_generator_is_fitted_once(thermometer, labelled, tmp_path):
    dev = tmp_path / "dev.txt"
    dev.write_text("".join(f"{label}\t{text}\n" for text, label in reviews(60, seed=7)), encoding="utf-8")
    grid = [{"temperature": 1.3, "top_p": 0.5}, {"temperature": 0.7}]
    res = textmill.synthesize(str(labelled), out=tmp_path / "o.jsonl", tune=True, tune_data=str(dev), tune_grid=grid, **OPTIONS)
    assert res.tuning["validation"] == "tune_data" and res.tuning["validation_rows"] == 60
    assert res.tuning["chosen"] == {"temperature": 0.7, "top_p": None} and len(thermometer.fitted) == 1
    assert {s for s in thermometer.sampled} == {(1.3, 0.5), (0.7, None)}


def test_cli_tune(thermometer, labelled, tmp_path):
    res = runner.invoke(app, ["synth", str(labelled), "--generator", "thermometer", "--per-row", "1", "--tune",
                              "--out", str(tmp_path / "o.jsonl"), "--option", "skip_filters=[label, near_duplicate]"])
    assert res.exit_code == 0, res.output
    assert "tuning (tfidf, 32 validation rows; real only" in res.output and "-> temperature 0.7" in res.output


def test_tune_refuses_what_it_cannot_do(thermometer, labelled, tmp_path):
    out = tmp_path / "o.jsonl"
    with pytest.raises(ConfigError, match="'eda' generator is neither"):
        textmill.synthesize(str(labelled), generator="eda", tune=True, out=out)
    with pytest.raises(ConfigError, match="temperature was given too; drop --temperature"):
        textmill.synthesize(str(labelled), generator="ngram", tune=True, generator_options={"temperature": 0.8}, out=out)
    with pytest.raises(ConfigError, match="tune_data is the validation set of tune; pass tune=true"):
        textmill.synthesize(str(labelled), generator="ngram", tune_data=str(labelled), out=out)
    with pytest.raises(ConfigError, match="tune_grid.*temperature.*greater than 0"):
        textmill.synthesize(str(labelled), generator="ngram", tune=True, tune_grid=[{"temperature": 0}], out=out)
    with pytest.raises(ConfigError, match="tune_data is the report's eval_data"):
        textmill.synthesize(str(labelled), generator="ngram", tune=True, tune_data=str(labelled), eval_data=str(labelled), out=out)
    one = tmp_path / "one.txt"
    one.write_text("positive\tthe soup was great\npositive\tthe bread was lovely\n", encoding="utf-8")
    with pytest.raises(DataError, match="tune_data .* in 1 label"):
        textmill.synthesize(str(labelled), generator="ngram", tune=True, tune_data=str(one), out=out)
    assert not out.exists()


def test_the_report_names_every_classifier(thermometer, labelled, tmp_path):
    res = textmill.synthesize(str(labelled), out=tmp_path / "o.jsonl", report=str(tmp_path / "r.html"), **OPTIONS)
    report = json.loads(json.dumps(res.report))
    report["utility"]["classifier"] = "pretrained"
    assert "Pretrained-model features + logistic regression" in render_html(report)


def test_a_mix_is_tuned_on_its_shares_and_eda_below_from_pools_written_once(thermometer, tmp_path):
    # 80 positive reviews and 24 negative ones: eda_below 20 would edit the negative label's 19 training rows
    rows = [r for r in reviews(400) if r[1] == "positive"][:80] + [r for r in reviews(400) if r[1] == "negative"][:24]
    data = tmp_path / "few.txt"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    out, report = tmp_path / "o.jsonl", tmp_path / "r.html"
    options = {**OPTIONS, "generator": "mix:thermometer+contrary", "report_seeds": 3, "per_row": 16,
               "generator_options": {"shares": {"thermometer": 1, "contrary": 8}, "thermometer": {"temperature": 0.7}}}
    res = textmill.synthesize(str(data), out=out, tune=True, report=str(report), **options)
    t = res.tuning
    assert t["kind"] == "mix" and set(t["pools"]) == {"thermometer", "contrary", "eda"}  # eda: for the small label only
    tried = [(tuple(s["shares"].values()), s["min_label_prob"], s["eda_below"]) for s in t["settings"]]
    assert tried[0] == ((1.0, 8.0), 0.0, 0)  # the run's own first: a tie keeps it
    assert {x[0] for x in tried} == {(1.0, 8.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)} and {x[2] for x in tried} == {0, 20}
    assert len(tried) == 8  # no label filter: one threshold; eda_below 50 edits what 20 edits: tried once
    scores = {x: s["accuracy"] for x, s in zip(tried, t["settings"])}
    assert scores[(0.0, 1.0), 0.0, 0] < t["real_only"]["accuracy"]  # the contrary rows alone hurt
    assert t["chosen"]["shares"] == {"thermometer": 1.0, "contrary": 0.0}
    assert t["margin"]["gain"] > 2 * t["margin"]["se"] > 0  # far beyond the noise of 21 validation rows
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {r["generator"] for r in written if r["label"] == "positive"} == {"thermometer"}  # the choice ran
    assert res.report["generator"]["parts"][1]["share"] == 0.0
    assert "Shares, label filter and eda_below, chosen on validation rows" in report.read_text(encoding="utf-8")
    fits = len(thermometer.fitted)
    again = textmill.synthesize(str(data), out=out, tune=True, **options)  # resumed: the choice is kept, not made again
    assert again.tuning == t and len(thermometer.fitted) == fits + 2  # the run's two parts, no fold
    (tmp_path / "o.jsonl.work" / "tuning.json").unlink()  # as if killed after the pools were written
    sampled = len(thermometer.sampled)
    again = textmill.synthesize(str(data), out=out, tune=True, **options)
    assert again.tuning == t and len(thermometer.sampled) == sampled  # the same choice, from the kept pools


def test_a_mix_tries_the_label_filters_thresholds_and_keeps_the_runs_first():
    from textmill.synth.config import SynthConfig
    from textmill.synth.tune import _candidates

    cfg = SynthConfig(data="d", out="o.jsonl", min_label_prob=0.5, eda_below=10)
    tried = _candidates(cfg, ["a", "b"], [2.0, 1.0], {"x": 5, "y": 30, "z": 100}, label_filter=True)
    assert tried[0] == {"shares": {"a": 2.0, "b": 1.0}, "min_label_prob": 0.5, "eda_below": 10}
    assert [(t["min_label_prob"], t["eda_below"]) for t in tried[:4]] == [(0.5, 10), (0.5, 0), (0.5, 50), (0.0, 10)]
    assert sorted({t["eda_below"] for t in tried}) == [0, 10, 50]  # 10 edits x, 0 none, 20 x again (left out), 50 x and y
    assert sorted({t["min_label_prob"] for t in tried}) == [0.0, 0.5, 0.7, 0.9] and len(tried) == 4 * 4 * 3


def test_a_setting_that_wins_by_a_row_or_two_does_not_replace_the_runs_own():
    import numpy as np

    from textmill.synth.tune import beyond_noise

    own = np.array([True] * 140 + [False] * 60)  # the run's own setting: 70% of 200 validation rows right
    two_more, twenty_more = own.copy(), own.copy()
    two_more[140:142] = True
    twenty_more[140:160] = True
    assert beyond_noise([own, two_more])[0] == 0  # +1 point: noise, the run keeps its own
    best, margin = beyond_noise([own, two_more, twenty_more])
    assert best == 2 and margin["gain"] == 10.0 and 0 < margin["se"] < 5
    assert beyond_noise([own, own.copy()])[0] == 0  # a tie keeps the run's own
