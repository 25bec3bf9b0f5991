"""synth with pretrained models. The prompted generator: each few-shot prompt shows fresh real
texts of its label only, as a chat reply to continue for an instruct model or a list for a base
model; rows are reproducible from the seed and reach the output through the filters; bad options
are clear errors. The pretrained-feature classifier: a text's features are the mean of the model's
final hidden states over its tokens, whatever its batch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
from typer.testing import CliRunner  # noqa: E402

from textmill.cli import app  # noqa: E402
from textmill.errors import ConfigError  # noqa: E402
from textmill.features import PretrainedFeatures  # noqa: E402
from textmill.synth.classify import text_classifier  # noqa: E402
from textmill.synth.filters import Candidate, Fluency  # noqa: E402
from textmill.synth.generators import build_generator  # noqa: E402
from textmill.synth.generators import pretrained as pretrained_generators  # noqa: E402
from textmill.synth.generators.prompted import clean_reply  # noqa: E402
from textmill.synth.quality import fluency  # noqa: E402

from .helpers import FOREIGN, tiny_model, tiny_tokenizer  # noqa: E402

ROWS = [(f"the {a} {b} sat on the mat", "happy") for a in ("big", "small", "red") for b in ("cat", "dog")] + \
       [(f"a {a} {b} ran in the park", "sad") for a in ("blue", "red") for b in ("cat", "dog")]
FAST = {"compile": False, "max_new_tokens": 10}
runner = CliRunner()


@pytest.fixture(scope="module", params=["instruct", "base"])
def source(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp(request.param)
    tok = tiny_tokenizer(chat=request.param == "instruct")
    model = tiny_model("llama", len(tok))
    model.config.max_position_embeddings = 512  # room for few-shot prompts (rotary positions do not depend on it)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def fitted(source: Path, tmp_path: Path, **options):
    gen = build_generator(f"prompt:{source}", {**FAST, **options})
    gen.fit(ROWS, tmp_path, chinese=False, seed=0)
    return gen


def test_each_row_shows_fresh_real_texts_of_its_label_only(source, tmp_path, monkeypatch):
    gen = fitted(source, tmp_path, shots=3, per_prompt=2, descriptions={"happy": "calm sentences about a mat"})
    seen = []

    def generate(prompts, num_return_sequences, **options):
        seen.extend(prompts)
        return [[f"reply {i} to prompt {len(seen) - j}" for i in range(num_return_sequences)] for j in range(len(prompts))]

    monkeypatch.setattr(gen.gen, "generate", generate)
    assert len(set(gen.sample("happy", 7, seed=1))) == 7 and len(seen) == 4  # 2 replies per prompt, as many as asked
    instruct = source.name.startswith("instruct")
    assert gen.chat == instruct
    texts = ["".join(m["content"] for m in p) if instruct else p for p in seen]
    if instruct:
        assert all(p[-1]["role"] == "assistant" and p[-1]["content"].endswith("\n4.") for p in seen)  # continue the list
    happy, sad = [t for t, x in ROWS if x == "happy"], [t for t, x in ROWS if x == "sad"]
    shown = [[t for t in happy if t in text] for text in texts]
    assert all(len(s) == 3 for s in shown) and not any(t in text for t in sad for text in texts)
    assert len({tuple(s) for s in shown}) > 1  # drawn afresh for each prompt
    assert all("calm sentences about a mat" in t for t in texts)
    if not instruct:
        assert all(t.endswith("Label: happy\nText:") for t in texts)
    seen.clear()
    gen.sample("sad", 2, seed=1)
    assert all('examples of texts labelled "sad"' in p[0]["content"] for p in seen) if instruct else \
        all("Label: sad" in p for p in seen)


def test_samples_are_reproducible_from_the_seed(source, tmp_path):
    gen = fitted(source, tmp_path)
    a = gen.sample("happy", 5, seed=3)
    assert len(a) == 5 and all(isinstance(t, str) and "\n" not in t for t in a)
    assert gen.sample("happy", 5, seed=3) == a
    assert gen.describe()["source"] == str(source) and gen.describe()["shots"] == 5


def test_synth_writes_prompted_rows_through_its_filters(source, tmp_path):
    out = tmp_path / "synth.jsonl"
    data = tmp_path / "rows.txt"
    data.write_text("".join(f"{label}\t{text}\n" for text, label in ROWS * 2), encoding="utf-8")
    res = runner.invoke(app, ["synth", str(data), "--generator", f"prompt:{source}", "--per-label", "4", "--out", str(out),
                              "--describe", "happy=calm sentences", "--option",
                              "skip_filters=[length, charset, label, near_duplicate, training_copy]",
                              "--option", f"generator_options={json.dumps({**FAST, 'temperature': 1.0})}"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8 and {r["label"] for r in rows} == {"happy", "sad"} and {r["generator"] for r in rows} == {f"prompt:{source}"}


def test_bad_options_name_the_problem(source, tmp_path, caplog):
    with pytest.raises(ConfigError, match="generator 'prompt': option shots=0: Input should be greater than or equal to 1"):
        fitted(source, tmp_path, shots=0)
    with pytest.raises(ConfigError, match="option per_prompt=1.5: Input should be a valid integer"):
        fitted(source, tmp_path, per_prompt=1.5)
    with pytest.raises(ConfigError, match="option temprature is not one of its options; its options: .*temperature"):
        fitted(source, tmp_path, temprature=0.5)
    with pytest.raises(ConfigError, match=r"descriptions name labels the data does not have: \['angry'\]"):
        fitted(source, tmp_path, descriptions={"angry": "x"})
    gen = fitted(source, tmp_path, shots=4)
    gen.gen.model.max_context = 60  # a short context: prompts keep fewer examples, and none too many is an error
    assert 1 <= sum(t in str(gen.fitting_prompt("happy", [t for t, x in ROWS if x == "happy"][:4])) for t, _ in ROWS) < 4
    gen.gen.model.max_context = 20
    with pytest.raises(ConfigError, match="beyond the model's context of 20; lower the generator option max_new_tokens"):
        gen.sample("happy", 1, seed=0)
    with caplog.at_level(logging.WARNING):
        fitted(source, tmp_path, shots=5)
    assert "label 'sad' has 4 examples, fewer than shots=5" in caplog.text
    with pytest.raises(ConfigError, match="takes no argument|unknown generator") as e:
        build_generator("promptx")
    assert "prompt[:SOURCE]" in str(e.value)


@pytest.mark.parametrize("native", [True, False], ids=["native bf16", "emulated bf16"])
def test_a_model_on_the_transformers_engine_prompts_in_the_batch_format_uncompiled(tmp_path, monkeypatch, native):
    """A model textmill's GPT does not implement runs through transformers, where blocks do not compile:
    the default must still work (it once failed on compile=True), and asking for compile is the error
    that says why. The weights take the machine's batch format: bf16 only where it is native."""
    monkeypatch.setattr(pretrained_generators, "batch_format", lambda device: "bf16" if native else None)
    tok = tiny_tokenizer(chat=False)
    model = tiny_model("gemma3", len(tok), **FOREIGN)
    model.save_pretrained(tmp_path / "gemma")
    tok.save_pretrained(tmp_path / "gemma")
    gen = build_generator(f"prompt:{tmp_path / 'gemma'}", {"max_new_tokens": 6})
    gen.fit(ROWS, tmp_path, chinese=False, seed=0)
    assert next(gen.gen.model.parameters()).dtype == (torch.bfloat16 if native else torch.float32)
    assert len(gen.sample("happy", 2, seed=0)) == 2
    with pytest.raises(ConfigError, match="compile applies to textmill's GPT"):
        build_generator(f"prompt:{tmp_path / 'gemma'}", {"compile": True}).fit(ROWS, tmp_path, chinese=False, seed=0)


def test_replies_become_rows_without_list_marks_or_quotes():
    assert clean_reply(' 6. "A great film."\nmore') == "A great film."
    assert clean_reply("Text: a fine movie") == "a fine movie"
    assert clean_reply("\u201cQuoted\u201d") == "Quoted"
    assert clean_reply("2001: a space odyssey") == "2001: a space odyssey"
    assert clean_reply("1、房间的卫生间坏了") == clean_reply("5,房间的卫生间坏了") == "房间的卫生间坏了"  # Gemma's Chinese lists
    assert clean_reply("3,000 people saw it") == "3,000 people saw it" and clean_reply("48GB/1TB") == "48GB/1TB"



def test_pretrained_features_are_the_mean_hidden_state_of_each_text_in_any_batch(source):
    from textmill.features import reader

    texts = [t for t, _ in ROWS]
    together = PretrainedFeatures(str(source), batch_size=4).transform(texts)
    encoder = reader(str(source))
    encoder.cache.clear()  # embed again, one text per batch
    alone = np.stack([PretrainedFeatures(str(source), batch_size=1).transform([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-2, rtol=2e-2)  # bf16 where faster: close, not equal
    ids = torch.tensor([encoder.gen.tokenizer.encode(texts[0], add_bos=True)])
    with torch.no_grad():
        by_hand = encoder.gen.model.features(ids)[0].float().mean(0).numpy()
    np.testing.assert_allclose(together[0], by_hand, atol=1e-5, rtol=1e-5)
    assert together.shape == (len(texts), 32)
    assert text_classifier(False, kind="pretrained").steps[0][1].source == "embedded:smollm2-135m-instruct"


@pytest.fixture
def llama(tmp_path) -> Path:
    """A tiny Llama source for the LoRA generator."""
    src = tmp_path / "llama"
    tok = tiny_tokenizer()
    tiny_model("llama", len(tok)).save_pretrained(src)
    tok.save_pretrained(src)
    return src


@pytest.mark.slow
def test_the_pretrained_generator_fine_tunes_lora_adapters_and_samples_each_label(llama, tmp_path):
    gen = build_generator(f"pretrained:{llama}", {"overrides": ["train.max_steps=6", "train.eval_every=3"], "compile": False})
    gen.fit(ROWS * 4, tmp_path / "work", chinese=False, seed=0)
    from textmill.rundir import read_run_config

    cfg = read_run_config(tmp_path / "work" / "generator")
    assert cfg.train.lora is not None and cfg.train.init_from == str((tmp_path / "work" / "base").resolve())
    assert sorted(gen.gen.labels) == ["happy", "sad"]
    rows = gen.sample("sad", 4, seed=1)
    assert len(rows) == 4 and rows == gen.sample("sad", 4, seed=1)
    assert gen.describe()["source"] == str(llama)


@pytest.mark.slow
def test_the_pretrained_generator_knows_labels_by_their_descriptions(llama, tmp_path):
    """`descriptions` name the labels' tokens, so each starts at the pretrained rows of its words."""
    options = {"overrides": ["train.max_steps=3", "train.eval_every=3"], "compile": False,
               "descriptions": {"happy": "big red", "sad": "small blue"}}
    gen = build_generator(f"pretrained:{llama}", options)
    gen.fit(ROWS * 4, tmp_path / "work", chinese=False, seed=0)
    assert sorted(gen.gen.labels) == ["big red", "small blue"] and gen.describe()["descriptions"]["sad"] == "small blue"
    wte, model_tok = gen.gen.model.wte.weight.float(), gen.gen.tokenizer
    torch.testing.assert_close(wte[model_tok.encode("<label=small blue>")[0]], wte[model_tok.encode("small blue")].mean(0),
                               atol=1e-2, rtol=1e-2)  # bf16 weights for sampling
    assert len(gen.sample("sad", 3, seed=1)) == 3
    for bad, match in (({"happy": "x", "sad": "x"}, "its own"), ({"happy": "a > b"}, "without '>'")):
        with pytest.raises(ConfigError, match=match):
            build_generator(f"pretrained:{llama}", {"descriptions": bad})
    with pytest.raises(ConfigError, match="labels the data does not have: \\['angry'\\]"):
        build_generator(f"pretrained:{llama}", {"descriptions": {"angry": "red"}}).fit(ROWS, tmp_path / "w2", chinese=False, seed=0)


def test_paraphrase_rewrites_each_real_row_of_its_label_in_turn(source, tmp_path, monkeypatch):
    gen = build_generator(f"paraphrase:{source}", {**FAST, "per_prompt": 2})
    gen.fit(ROWS, tmp_path, chinese=False, seed=0)
    seen = []

    def generate(prompts, num_return_sequences, **options):
        seen.extend(prompts)
        return [[f"rewrite {len(seen)}.{i}" for i in range(num_return_sequences)] for _ in prompts]

    monkeypatch.setattr(gen.gen, "generate", generate)
    assert len(gen.sample("sad", 8, seed=1)) == 8 and len(seen) == 4  # two rewrites of each of the 4 sad rows
    instruct = source.name.startswith("instruct")
    texts = [p[0]["content"] if instruct else p for p in seen]
    sad = [t for t, x in ROWS if x == "sad"]
    assert sorted(next(t for t in sad if t in text) for text in texts) == sorted(sad)  # every row once, one per prompt
    if instruct:
        assert all(p[-1] == {"role": "assistant", "content": "Rewritten:"} for p in seen)
    else:
        assert all(p.startswith("Sentence: ") and p.endswith("\nParaphrase:") for p in seen)
    monkeypatch.undo()
    assert gen.sample("happy", 3, seed=2) == gen.sample("happy", 3, seed=2)  # reproducible from the seed
    with pytest.raises(ConfigError, match="shots"):
        build_generator(f"paraphrase:{source}", {"shots": 3})


def test_fluency_scores_word_salad_above_the_real_rows_it_was_made_of_and_maps_both():
    real = [("the food was wonderful and the staff were friendly", "pos"), ("i would not recommend this hotel to anyone", "neg"),
            ("the room was clean and quiet", "pos"), ("we waited an hour for a cold pizza", "neg")]
    rng = np.random.default_rng(0)
    salad = [(" ".join(rng.permutation(t.split())), y, "ngram") for t, y in real]
    f = fluency(real, [(t, y, "eda") for t, y in real] + salad, chinese=False, rows=8)
    assert f["model"] == "embedded:smollm2-135m-instruct" and f["rows"] == {"real": 4, "synthetic": 8}
    assert f["by_generator"]["ngram"] > f["by_generator"]["eda"] + 1.0 and f["gap"] > 0
    m = f["map"]  # the same rows on two principal components, each point with its label
    assert len(m["real"]) == 4 and len(m["synthetic"]) == 8 and 0 < sum(m["explained"]) <= 1
    assert {p[2] for p in m["synthetic"]} == {"pos", "neg"} and all(len(p) == 3 for p in m["real"])
    placed = {tuple(p[:2]) for p in m["real"]}
    copies = [p for p in m["synthetic"] if any(abs(p[0] - a) + abs(p[1] - b) < 0.05 for a, b in placed)]
    assert len(copies) == 4  # eda's rows here are the real rows: the same features, the same place
    assert fluency(real, [(t, y, "eda") for t, y in real], chinese=False)["by_generator"] == {}  # one writer: no breakdown


def test_the_fluency_filter_removes_word_salad_and_keeps_rows_that_read_like_the_real_ones():
    real = ["the food was wonderful and the staff were friendly", "i would not recommend this hotel to anyone",
            "the room was clean and quiet", "we waited an hour for a cold pizza", "the view from the balcony was lovely",
            "breakfast was served until ten every morning"]
    salad = ["staff the and wonderful friendly food were was the", "anyone hotel not this i to recommend would"]
    fluent = ["the staff were friendly and the food was wonderful", "i would not recommend this place to anyone"]
    fluency_filter = Fluency(real, chinese=False, percentile=90)
    batch = [Candidate(t, "x") for t in salad + fluent]
    assert fluency_filter.keep(batch) == [False, False, True, True]
    assert all(c.scores["fluency_loss"] > fluency_filter.limit for c in batch[:2])
