"""Faster generation (models/inference.py): int4 and bf16 weights stay close to float32, a prompt gets
the same tokens in any batch, compiled blocks compute what the eager ones do, and the options reach
the CLI and eval; models they do not apply to are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from typer.testing import CliRunner  # noqa: E402

import textmill  # noqa: E402
from textmill.cli import app  # noqa: E402
from textmill.errors import ConfigError  # noqa: E402
from textmill.models import Conditioning  # noqa: E402
from textmill.models.inference import GROUP, Int4Linear, PackedLinear, batch_format, faster_format  # noqa: E402

from .helpers import (  # noqa: E402
    tiny_config,  # noqa: E402
    tiny_model,
    tiny_tokenizer,
)


@pytest.fixture(scope="module", params=["llama", "gemma3", "gpt2"])
def hf_dir(request, tmp_path_factory) -> Path:
    """Llama and GPT-2 run in textmill's GPT, Gemma 3 through transformers: int4 and bf16 serve both."""
    path = tmp_path_factory.mktemp(request.param)
    tok = tiny_tokenizer()
    tiny_model(request.param, len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def step_logits(gen, text: str) -> torch.Tensor:
    """The logits of every position after the first, computed step by step through the KV cache."""
    ids = torch.tensor([gen.tokenizer.encode(text, add_bos=True)])
    with torch.no_grad():
        logits, state = gen.model.step(ids[:, :1], gen.model.start(Conditioning(1)))
        got = [logits[0]]
        for t in range(1, ids.shape[1]):
            logits, state = gen.model.step(ids[:, t:t + 1], state)
            got.append(logits[0])
    return torch.stack(got)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm())


def dequantized(w: torch.Tensor) -> torch.Tensor:
    """What 4-bit groups of GROUP inputs (q * scale + low, q in 0..15) keep of the weights `w`."""
    g = w.detach().reshape(w.shape[0], -1, GROUP)
    low, scale = g.amin(-1, keepdim=True), ((g.amax(-1, keepdim=True) - g.amin(-1, keepdim=True)) / 15).clamp(min=1e-8)
    return (((g - low) / scale).round() * scale + low).reshape(w.shape)


def test_int4_linear_multiplies_by_its_dequantized_weights():
    torch.manual_seed(0)
    linear = torch.nn.Linear(2 * GROUP, 40).requires_grad_(False)  # 40 outputs: padded to the kernel's 48, then cut off
    q = Int4Linear(linear)
    x = torch.randn(3, 5, 2 * GROUP)
    torch.testing.assert_close(q(x), x @ dequantized(linear.weight).T + linear.bias, atol=0.03, rtol=0.02)
    assert relative_error(q(x), linear(x)) < 0.1  # 4 bits: close to the float layer, not equal


def test_an_int4_model_computes_with_its_dequantized_weights(hf_dir):
    """Every linear layer is swapped (the tied output layer too) and nothing else changes: the int4
    model's logits are those of the float model holding the weights int4 keeps (up to bf16 inputs)."""
    fast = textmill.load(hf_dir, quantize="int4")
    assert fast.info["inference"] == {"quantize": "int4", "compile": False}
    assert not any(isinstance(m, torch.nn.Linear) for m in fast.model.modules())
    reference = textmill.load(hf_dir)
    with torch.no_grad():
        for m in list(reference.model.modules()):
            if isinstance(m, torch.nn.Linear):
                m.weight = torch.nn.Parameter(dequantized(m.weight))  # unties the output layer from the embedding
    text = "the cat sat on the mat and then it ran in the park"
    assert relative_error(step_logits(fast, text), step_logits(reference, text)) < 0.03


def test_bf16_weights_stay_close_to_float32(hf_dir):
    text = "the cat sat on the mat and then it ran in the park"
    fast = textmill.load(hf_dir, quantize="bf16")
    assert relative_error(step_logits(fast, text), step_logits(textmill.load(hf_dir), text)) < 0.03
    assert next(fast.model.parameters()).dtype == torch.bfloat16


@pytest.mark.skipif(not PackedLinear.available(torch.device("cpu")), reason="no oneDNN bf16 kernel on this CPU")
def test_bf16_packs_every_linear_layer_and_computes_the_same_numbers(hf_dir):
    fast = textmill.load(hf_dir, quantize="bf16")
    assert not any(isinstance(m, torch.nn.Linear) for m in fast.model.modules())
    assert any(isinstance(m, PackedLinear) for m in fast.model.modules())
    plain = textmill.load(hf_dir)
    plain.model.to(torch.bfloat16)  # the same bf16 weights, as nn.Linear
    text = "the cat sat on the mat and then it ran in the park"
    torch.testing.assert_close(step_logits(fast, text), step_logits(plain, text), atol=0, rtol=0)


def test_the_faster_format_is_float32_or_bf16_and_computes_the_same_logits(hf_dir, monkeypatch):
    gen = textmill.load(hf_dir)
    ids = torch.tensor([gen.tokenizer.encode("the cat sat on the mat", add_bos=True)] * 4)
    with torch.no_grad():
        want = gen.model(ids)
        chosen = faster_format(gen.model, ids)
        assert next(chosen.parameters()).dtype in (torch.float32, torch.bfloat16)
        assert relative_error(chosen(ids).float(), want) < 0.03
    # without oneDNN's bf16 kernel bf16 is emulated: float32 is kept, the model itself, unmeasured
    monkeypatch.setattr(PackedLinear, "available", staticmethod(lambda device: False))
    assert faster_format(gen.model, ids) is gen.model


@pytest.mark.parametrize("native", [True, False])
def test_batches_sample_in_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, native):
    monkeypatch.setattr(PackedLinear, "available", staticmethod(lambda device: native))
    assert batch_format("cpu") == ("bf16" if native else None)


@pytest.mark.parametrize("quantize", ["bf16", "int4"])
def test_a_quantized_prompt_gets_the_same_tokens_in_any_batch(hf_dir, quantize):
    gen = textmill.load(hf_dir, quantize=quantize)
    prompts = ["the cat", "a big red dog ran in the park", "it"]
    alone = [gen.generate(p, strategy="greedy", max_new_tokens=8) for p in prompts]
    assert gen.generate(prompts, strategy="greedy", max_new_tokens=8) == alone
    assert gen.generate(prompts, seed=2, top_p=0.9, max_new_tokens=8) == gen.generate(prompts, seed=2, top_p=0.9,
                                                                                       max_new_tokens=8)


@pytest.mark.slow
def test_compiled_blocks_compute_what_the_eager_ones_do(tmp_path, corpus):
    textmill.train(tiny_config(corpus, max_steps=3), tmp_path / "r", progress=False)
    eager, compiled = textmill.load(tmp_path / "r"), textmill.load(tmp_path / "r", compile=True)
    torch.testing.assert_close(step_logits(compiled, "Al"), step_logits(eager, "Al"), atol=1e-4, rtol=1e-4)
    prompts = ["Al", "The quick", "x"]
    assert compiled.generate(prompts, strategy="greedy", max_new_tokens=12) == eager.generate(prompts, strategy="greedy",
                                                                                              max_new_tokens=12)


@pytest.mark.slow
def test_compiled_blocks_call_the_packed_bf16_layers(tmp_path, corpus):
    textmill.train(tiny_config(corpus, max_steps=3), tmp_path / "r", progress=False)
    eager, compiled = textmill.load(tmp_path / "r", quantize="bf16"), textmill.load(tmp_path / "r", quantize="bf16",
                                                                                     compile=True)
    prompts = ["Al", "The quick", "x"]
    assert compiled.generate(prompts, strategy="greedy", max_new_tokens=12) == eager.generate(prompts, strategy="greedy",
                                                                                              max_new_tokens=12)


def test_quantize_reaches_generate_and_eval_on_the_cli(tmp_path, corpus, tiny_run):
    runner = CliRunner()
    res = runner.invoke(app, ["generate", str(tiny_run), "-p", "Al", "--greedy", "--max-new-tokens", "5", "--quantize", "bf16"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "eval.json"
    res = runner.invoke(app, ["eval", str(tiny_run), "--data", str(corpus), "--samples", "0", "--quantize", "int4",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["quantize"] == "int4"
    res = runner.invoke(app, ["generate", str(tiny_run), "-p", "Al", "--quantize", "int8"])
    assert res.exit_code == 2 and "int8" in res.output and "bf16, int4" in res.output


def test_options_a_model_cannot_take_are_clear_errors(tmp_path, corpus):
    textmill.train(tiny_config(corpus, family="lstm", max_steps=2), tmp_path / "lstm", progress=False)
    with pytest.raises(ConfigError, match="decoder-only transformers.*without them"):
        textmill.load(tmp_path / "lstm", quantize="bf16")
    grammar = tmp_path / "g.yaml"
    grammar.write_text("rules:\n  S: [hello]\n")
    with pytest.raises(ConfigError, match="is a grammar"):
        textmill.load(grammar, quantize="int4")
