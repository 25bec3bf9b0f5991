import pytest

from textmill.config import apply_overrides, load_config, validate_config
from textmill.errors import ConfigError

BASE = {"model": {"family": "gpt"}, "data": {"source": "x.txt"}}


def test_defaults_and_family_config():
    cfg = validate_config(BASE)
    assert cfg.model.family == "gpt" and cfg.model.n_layer == 4 and cfg.train.max_steps == 2000


def test_unknown_key_names_key_and_allowed_fields():
    with pytest.raises(ConfigError) as e:
        validate_config({**BASE, "train": {"max_stepz": 3}})
    msg = str(e.value)
    assert "train.max_stepz: unknown key" in msg and "max_steps" in msg


def test_unknown_model_key_lists_family_fields():
    with pytest.raises(ConfigError) as e:
        validate_config({**BASE, "model": {"family": "gpt", "layers": 2}})
    assert "model.layers: unknown key" in str(e.value) and "n_layer" in str(e.value)


def test_wrong_type_and_range():
    with pytest.raises(ConfigError, match=r"train.batch_size"):
        validate_config({**BASE, "train": {"batch_size": "many"}})
    with pytest.raises(ConfigError, match=r"data.val_fraction"):
        validate_config({**BASE, "data": {"source": "x", "val_fraction": 1.5}})


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="multiple of n_head"):
        validate_config({**BASE, "model": {"family": "gpt", "n_embd": 30, "n_head": 4}})


def test_unknown_family_lists_known():
    with pytest.raises(ConfigError, match="choose one of: cvae, gan, gpt, ngram, rnn, seq2seq, transformer, vae"):
        validate_config({**BASE, "model": {"family": "lstmx"}})


def test_overrides_parse_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {family: rnn}\ndata: {source: a.txt}\n")
    cfg = load_config(path, ["train.max_steps=7", "model.cell=gru", "train.betas=[0.8, 0.9]", "train.max_minutes=0.5"])
    assert cfg.train.max_steps == 7 and cfg.model.cell == "gru" and cfg.train.betas == (0.8, 0.9)
    assert cfg.train.max_minutes == 0.5
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["train.max_steps"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope.yaml")
