"""Style transfer on a pretrained model: the markers it learns from labelled rows, the rewrite that
replaces only them, its errors, and `textmill transfer SOURCE --data`, on a tiny Llama source."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textmill.cli import app
from textmill.content import MarkerTransfer
from textmill.errors import ConfigError, DataError

from .helpers import BAD, GOOD, reviews, tiny_model, tiny_tokenizer

runner = CliRunner()
ROWS = reviews(200)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("llama")
    tok = tiny_tokenizer()
    tiny_model("llama", len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def fitted(source) -> MarkerTransfer:
    # the tiny model's fluency is noise: a large weight lets the classifier pick the fill
    return MarkerTransfer(str(source), salience=5.0, weight=50.0).fit(*zip(*ROWS))


def test_the_markers_are_the_words_of_one_label(fitted):
    unigrams = {label: {g[0] for g in m if len(g) == 1} for label, m in fitted.markers.items()}
    assert set(GOOD) <= unigrams["positive"] and set(BAD) <= unigrams["negative"]
    assert not (unigrams["positive"] | unigrams["negative"]) & {"the", "was", "and", "food", "today"}  # shared words
    text = "the soup was cold and the staff was rude today"
    spans = [text[a:b] for a, b, _ in fitted.spans(text, "positive")]
    assert sorted(spans) == ["cold", "rude"]  # not "was cold and": an n-gram holding a marker is not one
    assert fitted.spans(text, "negative") == []  # no positive marker to replace


def test_a_rewrite_replaces_the_old_labels_markers_and_keeps_the_rest(fitted):
    text = "the soup was cold and the staff was rude today"
    [new] = fitted.transfer([text], "positive")
    assert not set(new.split()) & set(BAD), new
    assert set(new.split()) & set(GOOD), new
    assert new.startswith("the soup was") and new.endswith("today") and "the staff was" in new
    assert fitted.classifier.predict([new])[0] == "positive"
    assert fitted.transfer([new], "positive") == [new]  # already positive: nothing to change


def test_a_text_without_markers_gets_one_of_the_new_label(fitted):
    [new] = fitted.transfer(["the soup and the staff ."], "negative")
    assert new.startswith("the soup and the staff") and new.endswith(".") and set(new.split()) & set(BAD), new


def test_wrong_use_is_a_clear_error(source, fitted):
    with pytest.raises(ConfigError, match="unknown label 'neutral'; the labels are negative, positive"):
        fitted.transfer(["x"], "neutral")
    with pytest.raises(ConfigError, match="not fitted"):
        MarkerTransfer(str(source)).transfer(["x"], "positive")
    with pytest.raises(DataError, match="at least 2"):
        MarkerTransfer(str(source)).fit(["a", "b"], ["x", "x"])
    with pytest.raises(ConfigError, match="1 < weak_salience <= salience"):
        MarkerTransfer(str(source), salience=1.0)


def test_the_cli_rewrites_with_a_pretrained_source_and_labelled_data(source, tmp_path):
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *ROWS])
    res = runner.invoke(app, ["transfer", str(source), "--data", str(data), "--to", "positive", "--salience", "5",
                              "the soup was cold and the staff was rude today", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output.strip().splitlines()[-1])
    assert row["label"] == "positive" and row["text"].startswith("the soup") and row["transferred"].startswith("the soup was")
    res = runner.invoke(app, ["transfer", str(source), "--to", "positive", "x"])
    assert res.exit_code == 2 and "pass --data" in res.output
    res = runner.invoke(app, ["transfer", str(source), "--data", str(tmp_path / "missing.csv"), "--to", "positive", "x"])
    assert res.exit_code == 2 and "missing.csv does not exist" in res.output


def test_losses_do_not_depend_on_the_batch_or_the_logits_budget(source, monkeypatch):
    import numpy as np

    from textmill import features

    reader = features.reader(str(source))
    texts = ["the soup was cold", "the staff was friendly and the coffee was great today", "the coffee"]
    together = reader.losses(texts, batch_size=8)
    monkeypatch.setattr(features, "LOGITS_BUDGET", 1)  # one text at a time
    np.testing.assert_allclose(reader.losses(texts, batch_size=8), together, rtol=1e-3)
    assert np.isfinite(together).all() and np.isnan(reader.losses([""])[0])  # no token after <bos> to score


def test_one_read_gives_the_losses_and_the_features_a_classifier_embeds(source, monkeypatch):
    import numpy as np

    from textmill import features

    reader = features.reader(str(source))
    texts = ["the soup was cold", "the staff was friendly and the coffee was great today"]
    losses, read = reader.read(texts, max_len=6)  # the second text is cut at 6 tokens, as embed cuts it
    np.testing.assert_allclose(losses, reader.losses(texts, max_len=6), rtol=1e-5)
    np.testing.assert_allclose(read, reader.embed(texts, 6), rtol=1e-4, atol=1e-5)
    reader.cache.clear()
    _, read = reader.read(texts)  # the features wait in the cache, keyed by max_len, for PretrainedFeatures
    assert set(reader.cache) == {(128, t) for t in texts}
    monkeypatch.setattr(reader, "embed", lambda *a: pytest.fail("embedded a text that was read already"))
    np.testing.assert_array_equal(features.PretrainedFeatures(str(source)).transform(texts), read)


def test_chinese_markers_are_words_and_the_rest_of_the_text_stays(source):
    good, bad = ["干净", "舒适", "安静", "热情"], ["肮脏", "吵闹", "冷淡", "破旧"]
    rows = [(f"这家酒店的房间{words[i % 4]}，前台的服务也{words[(i + 1) % 4]}。", label)
            for i in range(60) for words, label in ((good, "pos"), (bad, "neg"))]
    model = MarkerTransfer(str(source), salience=5.0).fit(*zip(*rows))
    text = "这家酒店的房间肮脏，前台的服务也冷淡。"
    spans = sorted(text[a:b] for a, b, _ in model.spans(text, "pos"))
    assert spans == ["冷淡", "肮脏"], spans  # jieba's words, not single characters
    assert model.candidates["pos"] and set(model.candidates["pos"]) <= set(good)
