"""The step interface every registered token family exposes (models/base.py), checked the same way for
each: one case per family below, and a family registered without one fails the first test.

- reading tokens one step at a time gives the logits of reading them in one step (a prompt's prefill),
  and the logits of the family's own teacher-forced pass;
- a row of a batch gives what it gives alone (left-padded prompts for decoder-only families, padded
  sources for encoder-decoders, its own z and label for sentence models);
- `reorder` keeps the rows it is given, as if they had been read alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from textmill.config import DECODER, ENCODER_DECODER, ModelConfig, model_config_class
from textmill.data.datasets import pad_right
from textmill.models import MODELS, Conditioning, StepModel, build_model

V = 40
T = 7
SOURCES = [[5, 6, 7, 8, 2], [9, 10, 2], [11, 12, 13, 14, 15, 16, 2]]  # three rows of different lengths


@dataclass
class Case:
    config: dict[str, Any]
    dims: dict[str, int] = field(default_factory=dict)
    reference: Callable[[Any, torch.Tensor, dict[str, Any]], torch.Tensor] | None = None  # (B, T) -> (B, T, V)


def _extras(model: Any, rows: list[int]) -> dict[str, Any]:
    """What rows `rows` of the test batch are conditioned on."""
    if model.kind == ENCODER_DECODER:
        src, mask = pad_right([SOURCES[i] for i in rows])
        return {"source": src, "source_mask": mask}
    if getattr(model, "latent", False):
        g = torch.Generator().manual_seed(1)
        z = torch.randn(len(SOURCES), model.cfg.latent, generator=g)[rows]
        return {"z": z, **({"label": torch.tensor([0, 1, 0])[rows]} if getattr(model, "labelled", False) else {})}
    return {}


def _decoder(model, tokens, extras):
    return model(tokens)


def _encoder_decoder(model, tokens, extras):
    return model(extras["source"], extras["source_mask"], tokens)


def _sentence(model, tokens, extras):
    return model.decode(tokens, model.condition(extras["z"], extras.get("label")))


CASES: dict[str, list[Case]] = {
    "gpt": [Case({"n_layer": 2, "n_head": 2, "n_embd": 32, "context": 16}, reference=_decoder),
            Case({"n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 32, "context": 16, "norm": "rmsnorm", "positions": "rope",
                  "mlp": "swiglu"}, reference=_decoder)],
    "rnn": [Case({"cell": cell, "n_layer": 2, "n_embd": 16, "hidden": 24, "context": 16}, reference=_decoder)
            for cell in ("lstm", "gru", "rnn")],
    "ngram": [Case({"order": 3})],  # counted from data below; its scores against stream scoring: test_ngram.py
    "seq2seq": [Case({"attention": a, "cell": c, "input_feeding": f, "n_embd": 12, "hidden": 16, "encoder_layers": 2,
                      "decoder_layers": 2}, reference=_encoder_decoder)
                for a, c, f in [("none", "gru", True), ("bahdanau", "lstm", True), ("luong-dot", "gru", False),
                                ("luong-general", "lstm", True)]],
    "transformer": [Case({"encoder_layers": 2, "decoder_layers": 2, "n_head": 2, "n_embd": 16, "ffn": 32, "context": 4,
                          "dropout": 0.0}, reference=_encoder_decoder)],  # targets past its preallocated context of 4
    "vae": [Case({"n_embd": 8, "hidden": 16, "latent": 4, "cell": "gru"}, reference=_sentence),
            Case({"n_embd": 8, "hidden": 16, "latent": 4, "z_every_step": False, "layers": 2}, reference=_sentence)],
    "cvae": [Case({"n_embd": 8, "hidden": 16, "latent": 4, "adversary": 1.0}, {"n_labels": 2}, reference=_sentence)],
    "gan": [Case({"n_embd": 16, "hidden": 24, "context": 16}, reference=_decoder)],
}
PARAMS = [pytest.param(family, case, id=f"{family}-{i}") for family, cases in CASES.items() for i, case in enumerate(cases)]


def make(family: str, case: Case) -> Any:
    torch.manual_seed(0)
    cfg: ModelConfig = model_config_class(family).model_validate({"family": family, **case.config})
    model = build_model(cfg, V, **case.dims)
    if family == "ngram":  # counted, not trained: fit it on random token streams
        model.fit(torch.randint(4, V, (400,)).numpy())
    return model.eval()


def tokens(batch: int = 3) -> torch.Tensor:
    t = torch.randint(4, V, (batch, T), generator=torch.Generator().manual_seed(2))
    t[:, 0] = 1  # <bos>: every target starts with it
    return t


def test_every_registered_family_has_a_case():
    assert set(MODELS.names()) == set(CASES), "give each registered family a tiny case in CASES"


@pytest.mark.parametrize("family, case", PARAMS)
def test_it_declares_what_the_engine_reads(family, case):
    model = make(family, case)
    assert isinstance(model, StepModel)
    assert model.kind == model_config_class(family).kind
    assert model.max_context is None or model.max_context >= 1


@pytest.mark.parametrize("family, case", PARAMS)
def test_steps_equal_one_prefill_and_the_teacher_forced_pass(family, case):
    model, idx = make(family, case), tokens()
    extras = _extras(model, [0, 1, 2])
    with torch.no_grad():
        state, steps = model.start(Conditioning(3, extras=extras)), []
        for t in range(T):
            logits, state = model.step(idx[:, t:t + 1], state)
            assert logits.shape == (3, V)
            steps.append(logits)
        prefill, _ = model.step(idx[:, :5], model.start(Conditioning(3, extras=extras)))
        torch.testing.assert_close(prefill, steps[4], atol=1e-5, rtol=1e-5)
        if case.reference is not None:
            torch.testing.assert_close(torch.stack(steps, 1), case.reference(model, idx, extras), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family, case", PARAMS)
def test_a_row_gives_in_a_batch_what_it_gives_alone(family, case):
    model, idx = make(family, case), tokens()
    with torch.no_grad():
        if model.kind == DECODER:  # prompts of different lengths, left-padded
            short = idx[1:2, 3:]
            padded = idx.clone()
            padded[1, :3] = 0
            mask = torch.ones_like(idx, dtype=torch.bool)
            mask[1, :3] = False
            alone, s1 = model.step(short, model.start(Conditioning(1)))
            batch, s2 = model.step(padded, model.start(Conditioning(3)), mask)
        else:  # padded sources, or each row's own z and label
            alone, s1 = model.step(idx[1:2], model.start(Conditioning(1, extras=_extras(model, [1]))))
            batch, s2 = model.step(idx, model.start(Conditioning(3, extras=_extras(model, [0, 1, 2]))))
        torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=1e-5)
        after_alone, _ = model.step(torch.tensor([[8]]), s1)
        after_batch, _ = model.step(torch.tensor([[8], [8], [8]]), s2)
        torch.testing.assert_close(after_batch[1], after_alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family, case", PARAMS)
def test_reorder_keeps_the_rows_it_is_given(family, case):
    model, idx = make(family, case), tokens()
    with torch.no_grad():
        _, state = model.step(idx, model.start(Conditioning(3, extras=_extras(model, [0, 1, 2]))))
        out, _ = model.step(torch.tensor([[9], [9], [9]]), model.reorder(state, torch.tensor([2, 2, 0])))
        _, alone = model.step(idx[2:3], model.start(Conditioning(1, extras=_extras(model, [2]))))
        ref, _ = model.step(torch.tensor([[9]]), alone)
    torch.testing.assert_close(out[0], ref[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], ref[0], atol=1e-5, rtol=1e-5)
