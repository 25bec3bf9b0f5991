"""Generators that start from a pretrained language model (SmolLM2-135M-Instruct by default;
Gemma 3 270M for Chinese): `pretrained[:SOURCE]` fine-tunes it on the labelled rows, `prompt[:SOURCE]`
(prompted.py) only shows it rows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ...exchange.hf import import_run
from ...models import GPT
from ...models.inference import batch_format, native_bf16, optimize
from ..rows import Rows
from .base import DEFAULT_PROMPT_SOURCE, GENERATORS, Descriptions, check_described
from .trained import GPTGenerator, TrainedOptions


class FastSampling(Descriptions):
    """Options of the pretrained generators, which sample in batches (models/inference.py)."""

    quantize: Literal["auto", "bf16", "int4"] | None = Field(
        "auto", description="the weights' format while sampling (auto: bf16 where the machine computes it "
                            "natively, else float32; None: float32)")
    compile: bool | None = Field(None, description="compile the model's blocks (default: on textmill's GPT, the engine of "
                                                   "Llama, Gemma 3 and GPT-2 sources)")


def sample_fast(model: Any, options: FastSampling) -> None:
    """The weights in the machine's fastest batch format (bf16 where native, else float32) and the blocks
    compiled, unless the options say otherwise. Blocks compile on textmill's GPT only, so by default a
    model on the transformers engine (Qwen2, say) is not compiled; asking it to is the error that says so."""
    quantize = batch_format(next(model.parameters()).device) if options.quantize == "auto" else options.quantize
    optimize(model, quantize, isinstance(model, GPT) if options.compile is None else options.compile)


class PretrainedOptions(TrainedOptions, FastSampling):
    @field_validator("descriptions")
    @classmethod
    def _names_a_token(cls, names: dict[str, str]) -> dict[str, str]:
        names = {k: " ".join(v.split()) for k, v in names.items()}
        bad = [v for v in names.values() if not v or ">" in v]
        if bad or len(set(names.values())) < len(names):
            raise ValueError(f"each label needs its own non-empty description without '>' (it names the label's control "
                             f"token){f'; not {bad}' if bad else ''}")
        return names


@GENERATORS.register("pretrained")
class PretrainedGenerator(GPTGenerator):
    """LAMBADA (Anaby-Tavor et al. 2020) on a pretrained language model: SOURCE (default
    SmolLM2-135M-Instruct; `embedded:gemma3-270m` for Chinese; any Llama, Gemma 3 or GPT-2 source
    textmill's GPT imports) becomes a textmill gpt run, its LoRA adapters (rank 16; bf16 autocast where
    the machine computes bf16 natively) are fine-tuned on the `<label=X> text` rows with a context of 128,
    and it is sampled after each label's token in the fastest batch format, its blocks compiled.

    `descriptions` ({label: "positive movie reviews"}) are the words the model knows each label by. A
    label's token starts at the pretrained rows of its name, and LoRA keeps them, so a label named `1`
    starts from the digit; its description gives it the words instead."""

    name = "pretrained"
    Options = PretrainedOptions
    argument_name = "SOURCE"

    def __init__(self, argument: str | None, options: dict[str, Any] | None = None) -> None:
        super().__init__(argument, options)
        self.source = argument or DEFAULT_PROMPT_SOURCE
        self.names = self.options.descriptions

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        check_described(self.names, {label for _, label in rows})
        rows = [(t, self.names.get(label, label)) for t, label in rows]  # the model learns each label by its words
        base = workdir / "base"
        if not (base / "model.safetensors").is_file():
            self.progress(f"importing {self.source}", 0, None)
            if base.exists():
                shutil.rmtree(base)
            import_run(self.source, base)
        self.argument = str(base)  # the run that TrainedGenerator fine-tunes, as for gpt:BASE
        super().fit(rows, workdir, chinese, seed)
        sample_fast(self.gen.model, self.options)

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        return super().sample(self.names.get(label, label), n, seed)

    def run_config(self, rows: Rows, data: Path, chinese: bool, seed: int) -> dict[str, Any]:
        cfg = super().run_config(rows, data, chinese, seed)
        cfg["model"]["context"] = min(cfg["model"]["context"], 128)
        cfg["train"].update(lora={"rank": 16, "alpha": 32}, precision="bf16" if native_bf16() else "fp32",
                            batch_size=16, lr=1e-3, min_lr=1e-4,
                            warmup_steps=10, weight_decay=0.0, eval_batches=5)
        return cfg

    def describe(self) -> dict[str, Any]:
        options = self.options.model_dump(mode="json", exclude_unset=True, exclude={"descriptions"})
        return {"name": self.name, "source": self.source, "lora": {"rank": 16, "alpha": 32}, "descriptions": self.names,
                "options": options}

