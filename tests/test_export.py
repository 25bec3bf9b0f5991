"""`textmill export RUN OUT --format hf`: transformers loads the directory with the same logits and,
for bpe and char tokenizers, the same token ids; both layouts come back through the pretrained path."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from typer.testing import CliRunner  # noqa: E402

import textmill  # noqa: E402
from textmill.cli import app  # noqa: E402
from textmill.errors import TextmillError  # noqa: E402
from textmill.exchange.hf import export_hf  # noqa: E402
from textmill.tokenizers import load_tokenizer  # noqa: E402

from .helpers import tiny_config  # noqa: E402

LLAMA = {"norm": "rmsnorm", "positions": "rope", "mlp": "swiglu", "n_kv_head": 1, "ffn": 48, "bias": False, "rope_theta": 500.0}
GEMMA3 = {"norm": "rmsnorm", "positions": "rope", "mlp": "geglu", "n_kv_head": 1, "ffn": 48, "bias": False, "head_dim": 16,
          "qk_norm": True, "sandwich_norm": True, "embed_scale": True, "window": 8, "local_layers": [0],
          "local_rope_theta": 100.0}
LAYOUTS = {"llama": (LLAMA, "LlamaForCausalLM"), "gemma3": (GEMMA3, "Gemma3ForCausalLM"), "gpt2": ({}, "GPT2LMHeadModel")}
TEXT = "First Citizen:\nSpeak, speak."


@pytest.mark.parametrize("layout,tokenizer,tied", [("gpt2", "char", True), ("gpt2", "bpe", False), ("llama", "bpe", True),
                                                   ("llama", "char", False), ("gemma3", "char", True)])
def test_transformers_loads_an_export_with_the_same_logits(tmp_path, corpus, layout, tokenizer, tied):
    cfg = tiny_config(corpus, max_steps=20, eval_every=20)
    cfg["model"].update(tie_weights=tied, **LAYOUTS[layout][0])
    cfg["tokenizer"] = {"kind": tokenizer, "vocab_size": 300} if tokenizer == "bpe" else {"kind": "char"}
    run = tmp_path / "run"
    textmill.train(cfg, run, progress=False)
    out = tmp_path / "hf"
    res = CliRunner().invoke(app, ["export", str(run), str(out), "--format", "hf"])
    assert res.exit_code == 0, res.output
    gen = textmill.load(run)
    model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(model).__name__ == LAYOUTS[layout][1]
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = gen.tokenizer.encode(TEXT, add_bos=True)
    assert hf_tok(TEXT).input_ids == ids and hf_tok.decode(ids, skip_special_tokens=True) == TEXT
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=torch.tensor([ids])).logits, gen.model(torch.tensor([ids])), atol=1e-5, rtol=1e-5)
    again = textmill.load(out)  # back through the pretrained path: imported into textmill's GPT again
    assert again.info["engine"] == "textmill gpt"
    assert again.generate("First", strategy="greedy", max_new_tokens=10) == gen.generate("First", strategy="greedy",
                                                                                       max_new_tokens=10)


def test_export_refuses_what_it_cannot_write(tmp_path, corpus, tiny_run):
    out = tmp_path / "hf"
    export_hf(tiny_run, out)
    with pytest.raises(TextmillError, match="exists"):
        export_hf(tiny_run, out)
    export_hf(tiny_run, out, overwrite=True)
    run = tmp_path / "lstm"
    textmill.train(tiny_config(corpus, "lstm", max_steps=2, eval_every=2), run, progress=False)
    with pytest.raises(TextmillError, match="exports gpt runs"):
        export_hf(run, tmp_path / "x")
    mixed = tmp_path / "mixed"
    cfg = tiny_config(corpus, max_steps=2, eval_every=2)
    cfg["model"].update(norm="rmsnorm", positions="rope", mlp="swiglu", qk_norm=True)  # Llama's, with Gemma's norms
    textmill.train(cfg, mixed, progress=False)
    with pytest.raises(TextmillError, match="no Hugging Face architecture has this gpt's layout .*query/key norms"):
        export_hf(mixed, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    res = CliRunner().invoke(app, ["export", str(tiny_run), str(tmp_path / "z"), "--format", "onnx"])
    assert res.exit_code == 2 and "one export format is hf" in res.output


def test_word_tokenizers_stay_textmill_files_beside_the_model(tmp_path, corpus):
    cfg = tiny_config(corpus, max_steps=2, eval_every=2)
    cfg["tokenizer"] = {"kind": "word"}
    run = tmp_path / "run"
    textmill.train(cfg, run, progress=False)
    out = export_hf(run, tmp_path / "hf")
    assert (out / "textmill_tokenizer.json").is_file() and not (out / "tokenizer.json").exists()
    gen = textmill.load(run)
    kept = load_tokenizer(out / "textmill_tokenizer.json")  # the same ids as the run's own tokenizer ...
    ids = torch.tensor([kept.encode("First Citizen: speak", add_bos=True)])
    assert ids[0].tolist() == gen.tokenizer.encode("First Citizen: speak", add_bos=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()  # ... and the same logits for them
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, gen.model(ids), atol=1e-5, rtol=1e-5)
