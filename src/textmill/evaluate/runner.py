"""`textmill eval`: likelihood on a corpus plus diversity and length of the model's own samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig
from ..data import TokenStream, encode_stream, read_documents
from ..data.prepare import lm_documents
from ..errors import CheckpointError, ConfigError
from ..generate import Generator, Seq2SeqGenerator
from ..train.checkpoint import atomic_write_text, load, read_run_config
from ..train.objectives import OBJECTIVES
from .metrics import bits_per_char, distinct_n, length_stats, perplexity, self_bleu
from .pairs import Progress, evaluate_pairs


def likelihood(gen: Generator, docs: list[str], batch_size: int = 32) -> dict[str, Any]:
    """Perplexity and bits per character of `docs` under the model: neural models score
    non-overlapping windows of their context, n-gram models every token with its full history."""
    tok = gen.tokenizer
    if hasattr(gen.model, "score_stream"):
        tokens = torch.from_numpy(encode_stream(tok, docs)).long()
        nll = float(-gen.model.score_stream(tokens.numpy()).mean())
        how = f"every token after <bos> with up to {gen.model.n - 1} tokens of history"
    else:
        context = gen.info["model"]["context"]
        stream = TokenStream.from_docs(tok, docs, context, "evaluation")
        tokens, nll = stream.tokens, OBJECTIVES.get("lm").evaluate(gen.model, stream, batch_size)["val_loss"]
        how = f"non-overlapping windows of {context}"
    n_chars = sum(len(d) for d in docs)
    return {
        "nll": nll, "perplexity": perplexity(nll), "bits_per_char": bits_per_char(nll, len(tokens) / max(n_chars, 1)),
        "tokens": int(len(tokens)), "characters": n_chars,
        "oov_rate": float((tokens == tok.unk_id).float().mean()),
        "tokenization": f"{tok.kind} tokens (vocabulary {tok.vocab_size}), <bos>/<eos> around each document, {how}",
    }


def sample_metrics(texts: list[str]) -> dict[str, Any]:
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
            "distinct_4": distinct_n(texts, 4), "self_bleu": self_bleu(texts), "length": length_stats(texts)}


def evaluate(run_dir: str | Path, data: str | None = None, *, target: str | None = None, text_field: str | None = None,
             data_format: str | None = None, samples: int = 100, max_new_tokens: int | None = None,
             temperature: float = 1.0, top_p: float | None = None, seed: int = 0, num_beams: int = 5,
             batch_size: int = 32, limit: int | None = None, out: str | Path | None = None,
             predictions: str | Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Evaluate a run on `data` (default: the run's own validation split) and write the result as
    JSON to `out` (default `RUN/eval.json`).

    Language models: perplexity and bits per character of the data, and distinct-n, self-BLEU and
    lengths of `samples` unconditional samples. Encoder-decoder models: each source is decoded
    (beam search with `num_beams`, greedy with 1) and scored against its reference (BLEU, chrF,
    ROUGE, exact match, distinct-n), the references' perplexity is measured, and the outputs go to
    `predictions` (default `RUN/predictions.jsonl`). `target` is the target side of parallel files."""
    run_dir = Path(run_dir)
    gen = load(run_dir)
    if isinstance(gen, Seq2SeqGenerator):
        return evaluate_pairs(gen, run_dir, data, target=target, data_format=data_format, text_field=text_field,
                              limit=limit, out=out, predictions_path=predictions, progress=progress, num_beams=num_beams,
                              batch_size=batch_size, max_new_tokens=max_new_tokens)
    if target is not None:
        raise ConfigError(f"--target is for encoder-decoder runs; {run_dir} is a {gen.info['family']} language model")
    if data is None:
        if not (run_dir / "train.yaml").is_file():
            raise CheckpointError(f"{run_dir} has no training config to take a validation split from; pass --data")
        cfg = read_run_config(run_dir)
        docs = lm_documents(cfg.data)[1]
        source = f"{cfg.data.valid_source or cfg.data.source} (validation split)"
    else:
        docs = read_documents(DataConfig(source=data, text_field=text_field or "text", format=data_format or "auto"))
        source = data
    docs = docs[:limit] if limit else docs
    result: dict[str, Any] = {"run": str(run_dir), "data": source, **likelihood(gen, docs, batch_size)}
    if samples:
        max_new_tokens = max_new_tokens or 100
        texts = gen.generate([""] * samples, max_new_tokens=max_new_tokens, temperature=temperature,
                             top_p=top_p, seed=seed)
        result["samples"] = {"n": samples, "max_new_tokens": max_new_tokens, "temperature": temperature,
                             "top_p": top_p, **sample_metrics(texts), "examples": texts[:5]}
    atomic_write_text(Path(out) if out else run_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    return result
