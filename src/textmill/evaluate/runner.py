"""`textmill eval`: likelihood on a corpus plus diversity and length of the model's own samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..data import TokenStream, read_documents, split_documents
from ..generate import Generator
from ..train.checkpoint import atomic_write_text, load, read_run_config
from ..train.objectives import lm_eval_loss
from .metrics import bits_per_char, distinct_n, length_stats, perplexity, self_bleu


def likelihood(gen: Generator, docs: list[str], batch_size: int = 32) -> dict[str, Any]:
    """Perplexity and bits per character of `docs` under the model, in non-overlapping windows."""
    context = gen.info["model"]["context"]
    stream = TokenStream.from_docs(gen.tokenizer, docs, context, "evaluation")
    nll = lm_eval_loss(gen.model, stream, batch_size)
    tokens = stream.tokens
    return {
        "nll": nll, "perplexity": perplexity(nll), "bits_per_char": bits_per_char(nll, stream.tokens_per_char),
        "tokens": int(len(tokens)), "characters": stream.n_chars,
        "oov_rate": float((tokens == gen.tokenizer.unk_id).float().mean()),
        "tokenization": f"{gen.tokenizer.kind} tokens (vocabulary {gen.tokenizer.vocab_size}), "
                        f"<bos>/<eos> around each document, non-overlapping windows of {context}",
    }


def sample_metrics(texts: list[str]) -> dict[str, Any]:
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
            "distinct_4": distinct_n(texts, 4), "self_bleu": self_bleu(texts), "length": length_stats(texts)}


def evaluate(run_dir: str | Path, data: str | None = None, *, text_field: str = "text", data_format: str = "auto",
             samples: int = 100, max_new_tokens: int = 100, temperature: float = 1.0, top_p: float | None = None,
             seed: int = 0, out: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a run on `data` (default: the run's own validation split) and on its samples.

    Writes the result as JSON to `out` (default `RUN/eval.json`) and returns it."""
    run_dir = Path(run_dir)
    gen = load(run_dir)
    if data is None:
        cfg = read_run_config(run_dir)
        docs = split_documents(read_documents(cfg.data), cfg.data.val_fraction, cfg.data.split_seed)[1]
        source = f"{cfg.data.source} (validation split)"
    else:
        docs = read_documents(DataConfig(source=data, text_field=text_field, format=data_format, val_fraction=0.5))
        source = data
    result: dict[str, Any] = {"run": str(run_dir), "data": source, **likelihood(gen, docs)}
    if samples:
        texts = gen.generate([""] * samples, max_new_tokens=max_new_tokens, temperature=temperature,
                             top_p=top_p, seed=seed)
        result["samples"] = {"n": samples, "max_new_tokens": max_new_tokens, "temperature": temperature,
                             "top_p": top_p, **sample_metrics(texts), "examples": texts[:5]}
    atomic_write_text(Path(out) if out else run_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    return result
