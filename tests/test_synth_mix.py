"""synth with several generators at once (`mix:A+B`): shares, options, provenance, resume, bad specs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import ConfigError
from textmill.synth.generators import MixGenerator, build_generator
from textmill.synth.generators.mix import split_by_shares

from .helpers import reviews

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("".join(f"{label}\t{text}\n" for text, label in reviews(200)), encoding="utf-8")
    return path


@pytest.mark.parametrize(("shares", "n", "counts"), [({"eda": 8, "ngram": 1}, 9, [8, 1]), ({"eda": 8, "ngram": 1}, 256, [228, 28]),
                                                      ({"eda": 1, "ngram": 1}, 7, [4, 3]), ({"eda": 1, "ngram": 3}, 1, [0, 1]),
                                                      ({"eda": 2, "ngram": 1}, 0, [0, 0])])
def test_each_chunk_is_split_by_the_shares(shares, n, counts):
    assert split_by_shares(n, build_generator("mix:eda+ngram", {"shares": shares}).shares) == counts


def test_a_generators_own_options_reach_it_alone_and_the_rest_reach_each_one_that_takes_them():
    gen = build_generator("mix:eda+ngram", {"ngram": {"prefix": 2}, "eda": {"alpha": 0.2}, "temperature": 0.7})
    assert isinstance(gen, MixGenerator) and [p.name for p in gen.parts] == ["eda", "ngram"]
    given = [p.options.model_dump(exclude_unset=True) for p in gen.parts]
    assert given == [{"alpha": 0.2}, {"prefix": 2, "temperature": 0.7}]  # EDA samples no model: no temperature
    assert gen.shares == [1.0, 1.0]
    with pytest.raises(ConfigError, match="option shots is taken by none of its generators"):
        build_generator("mix:eda+ngram", {"shots": 3})
    with pytest.raises(ConfigError, match="generator 'ngram': option prefix=-1"):
        build_generator("mix:eda+ngram", {"ngram": {"prefix": -1}})


def test_a_mix_writes_its_shares_through_one_set_of_filters_and_names_who_wrote_each_row(data, tmp_path):
    out = tmp_path / "mix.jsonl"
    options = {"generator": "mix:eda+ngram", "per_label": 60, "generator_options": {"shares": {"eda": 1, "ngram": 2}},
               "near_duplicate_threshold": 0.95, "progress": False, "report_fluency": 40}
    res = textmill.synthesize(str(data), out=out, report=str(tmp_path / "report.html"), **options)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert res.per_label == {"negative": 60, "positive": 60}
    by = {g: sum(r["generator"] == g for r in rows) for g in ("eda", "ngram")}
    assert by["eda"] + by["ngram"] == 120 and by["ngram"] > 0  # a third of the samples are eda's, but n-gram samples of
    # templated rows repeat each other, and the filters keep more of eda's: shares are of samples, the report counts rows
    assert len({r["text"].lower() for r in rows}) == 120  # duplicates are removed across the generators too
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["rows"]["by_generator"] == by and report["generator"]["name"] == "mix:eda+ngram"
    assert [(p["name"], p["share"]) for p in report["generator"]["parts"]] == [("eda", 1.0), ("ngram", 2.0)]
    assert f"{by['ngram']} written by ngram" in (tmp_path / "report.html").read_text(encoding="utf-8")
    fluency = report["fluency"]  # each generator's rows scored apart under the pretrained model
    assert fluency["rows"] == {"real": 40, "synthetic": 40} and set(fluency["by_generator"]) == {"eda", "ngram"}
    assert fluency["gap"] == pytest.approx(fluency["synthetic"] - fluency["real"])
    again = tmp_path / "again.jsonl"
    textmill.synthesize(str(data), out=again, **options)
    assert again.read_bytes() == out.read_bytes()  # reproducible from the seed


def test_cli_mix(data, tmp_path):
    out = tmp_path / "mix.csv"
    res = runner.invoke(app, ["synth", str(data), "--generator", "mix:eda+ngram", "--per-row", "0.5", "--out", str(out),
                              "--option", "generator_options={shares: {eda: 3, ngram: 1}, ngram: {prefix: 1}}",
                              "--option", "near_duplicate_threshold=0.95"])
    assert res.exit_code == 0, res.output
    assert "80 synthetic rows" in res.output and {line.split(",")[2] for line in out.read_text().splitlines()[1:]} == {"eda", "ngram"}


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("mix:ngram", {}, "needs two or more generators joined by '\\+'"),
    ("mix:", {}, "needs two or more generators"),
    ("mix:ngram+", {}, "needs two or more generators"),
    ("mix:ngram+ngram", {}, "names a generator twice; give it a larger share"),
    ("mix:ngram+mix:eda+gpt", {}, "cannot hold another mix"),
    ("mix:ngram+nope", {}, "unknown generator 'nope'"),
    ("mix:eda+ngram", {"shares": {"eda": 1}}, "must give each of \\['eda', 'ngram'\\] a positive weight"),
    ("mix:eda+ngram", {"shares": {"eda": 1, "ngram": 0}}, "positive weight"),
    ("mix:eda+ngram", {"shares": {"eda": 1, "ngram": 1, "gpt": 1}}, "positive weight"),
    ("mix:eda+ngram", {"shares": [1, 2]}, "positive weight, e.g. shares={eda: 1, ngram: 1}"),
])
def test_bad_mixes_name_the_problem_and_the_fix(spec, options, message):
    with pytest.raises(ConfigError, match=message):
        build_generator(spec, options)


def test_a_mix_cannot_hold_a_generator_that_cannot_do_what_is_asked(data, tmp_path):
    with pytest.raises(ConfigError, match="the 'eda' generator trains no model"):
        textmill.synthesize(str(data), generator="mix:ngram+eda", dp_epsilon=8, out=tmp_path / "d.jsonl", progress=False)
    assert not (tmp_path / "d.jsonl").exists()


def test_the_report_audits_each_generator_of_a_mix_that_trained_on_the_rows(data, tmp_path):
    res = textmill.synthesize(str(data), generator="mix:eda+gpt", per_label=10, out=tmp_path / "m.jsonl",
                              report=str(tmp_path / "r.html"), report_seeds=3, skip_filters=["label"], progress=False, report_fluency=0,
                              generator_options={"gpt": {"overrides": ["train.max_steps=10", "train.max_minutes=null",
                                                                       "model.n_layer=1", "model.n_embd=32"]}})
    audits = res.report["privacy"]["generators"]
    assert list(audits) == ["gpt"] and 0 <= audits["gpt"]["membership"]["auc"] <= 1  # eda trains nothing
    assert "The generator gpt: what did it memorize?" in (tmp_path / "r.html").read_text(encoding="utf-8")
