"""What `textmill.load` returns for each thing textmill can generate with, ready to generate:

- a run directory: a `Generator` (decoder-only families), a `Seq2SeqGenerator` (encoder-decoders) or a
  `LatentGenerator` (vae, cvae), on the run's best weights (rundir.py reads them);
- a grammar file (`.yaml`): the validated `TemplateGrammar`;
- a pretrained source (`embedded:NAME`, a GGUF file, a Hugging Face directory): a `Generator` on
  textmill's GPT (Llama, Gemma 3 and GPT-2 weights) or on transformers' own model (models/hf.py);
- `openai:MODEL@URL`: a model behind an OpenAI-compatible server (decoding/remote.py).

`quantize` ("bf16" or "int4") and `compile` make GPT runs and pretrained models generate faster
(models/inference.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ENCODER_DECODER
from .data.prepare import source_tokenizer
from .data.tasks import build_task
from .decoding import Generator, LatentGenerator, Seq2SeqGenerator
from .decoding.remote import RemoteGenerator, is_remote
from .errors import CheckpointError, ConfigError
from .models.hf import (
    EMBEDDED,
    NATIVE_ARCHITECTURES,
    HFCausalLM,
    is_pretrained_source,
    load_transformers,
    native_gpt,
    resolve,
)
from .models.inference import optimize
from .models.template import TemplateGrammar
from .rundir import damaged, load_weights, read_run_config
from .tokenizers import load_tokenizer
from .tokenizers.hf import HFTokenizer


def load(run_dir: str | Path, device: str | torch.device = "cpu", engine: str = "auto", quantize: str | None = None,
         compile: bool = False):
    """A ready `Generator` for a run directory (best weights), for any token-model family; for a
    grammar file (`.yaml`), the validated `TemplateGrammar`; for a pretrained source (an embedded
    name, a GGUF file, a Hugging Face directory), the pretrained model (models/hf.py; `engine` chooses
    textmill's GPT or transformers for it); for `openai:MODEL@URL`, a model behind an OpenAI-compatible
    server (decoding/remote.py). `quantize` ("bf16" or "int4") and `compile` make GPT runs
    and pretrained models generate faster (models/inference.py)."""
    if is_remote(run_dir):
        if quantize or compile:
            raise ConfigError(f"{run_dir} runs on its server: quantize and compile apply to local models")
        return RemoteGenerator(str(run_dir))
    run_dir = Path(run_dir)
    if run_dir.suffix in (".yaml", ".yml") and run_dir.is_file():
        if quantize or compile:
            raise ConfigError(f"{run_dir} is a grammar: quantize and compile apply to gpt runs and pretrained models")
        return TemplateGrammar.from_file(run_dir)
    if is_pretrained_source(run_dir):
        return load_pretrained(run_dir, device, engine, quantize, compile)
    if not run_dir.is_dir():
        raise CheckpointError(f"{str(run_dir)!r} does not exist: pass a run directory, a grammar file or a pretrained model "
                              f"(textmill reads local files only; embedded models: {', '.join('embedded:' + n for n in EMBEDDED)})")
    model, meta = load_weights(run_dir)
    if isinstance(model, nn.Module):
        model.to(device)
    info = {"run_dir": str(run_dir), **meta}
    tokenizer = load_tokenizer(run_dir)
    if tokenizer.vocab_size > meta["vocab_size"]:
        raise damaged(run_dir, "tokenizer.json", f"it has {tokenizer.vocab_size} tokens and the model {meta['vocab_size']}: "
                                                 "it belongs to another run")
    if quantize or compile:
        optimize(model, quantize, compile)
        info["inference"] = {"quantize": quantize, "compile": compile}
    if model.kind == ENCODER_DECODER:
        task = build_task(read_run_config(run_dir).data) if (run_dir / "train.yaml").is_file() else None
        return Seq2SeqGenerator(model, tokenizer, info, source_tokenizer=source_tokenizer(run_dir), task=task)
    if getattr(model, "latent", False):
        return LatentGenerator(model, tokenizer, info)
    return Generator(model, tokenizer, info)


def load_pretrained(spec: str | Path, device: str | torch.device = "cpu", engine: str = "auto", quantize: str | None = None,
                    compile: bool = False):
    """A ready `Generator` for a pretrained source (see the module docstring). `engine`: `native` runs
    the weights in textmill's GPT (Llama, Gemma 3 and GPT-2 architectures), `transformers` through transformers' own
    model, `auto` the native one where it exists. `quantize` and `compile`: models/inference.py."""
    if engine not in ("auto", "native", "transformers"):
        raise ConfigError(f"engine {engine!r} is not one of auto, native, transformers")
    source = resolve(spec)
    hf_model, hf_tokenizer = load_transformers(source)
    config = hf_model.config
    model = native_gpt(hf_model) if engine != "transformers" else None
    if engine == "native" and model is None:
        raise ConfigError(f"{source.spec}: textmill's GPT does not implement {config.model_type} models or this one's "
                          f"options (it imports {NATIVE_ARCHITECTURES} architectures); use engine='transformers'")
    model = optimize((model or HFCausalLM(hf_model)).to(device), quantize, compile)
    tokenizer = HFTokenizer.from_transformers(hf_tokenizer)
    info = {"run_dir": source.spec, "family": "pretrained", "source": source.spec,
            "architecture": (config.architectures or [type(hf_model).__name__])[0],
            "engine": "textmill gpt" if not isinstance(model, HFCausalLM) else "transformers",
            "model": {"context": min(model.max_context or 1024, 1024), "model_type": config.model_type,
                      "max_context": model.max_context}}
    if quantize or compile:
        info["inference"] = {"quantize": quantize, "compile": compile}
    if tokenizer.chat_template:
        info["chat"] = True
    return Generator(model, tokenizer, info)


def split_named(spec: str) -> tuple[str | None, str]:
    """`NAME=SOURCE` as (NAME, SOURCE); a plain source (or an existing path holding `=`) as (None, SOURCE)."""
    if "=" not in spec or Path(spec).exists():
        return None, spec
    name, _, source = spec.partition("=")
    if not name or not source:
        raise ConfigError(f"{spec!r}: write it as SOURCE or NAME=SOURCE")
    return name, source


def generate(source: str | Path, prompts: str | Sequence[str] = "", **options: Any) -> Any:
    """Load `source` (anything `load` takes) and continue `prompts` (options as for `Generator.generate`)."""
    return load(source).generate(prompts, **options)
