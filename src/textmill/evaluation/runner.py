"""`textmill eval`: likelihood on a corpus plus diversity and length of the model's own samples
(encoder-decoder runs are scored against references instead: see pairs.py).

Evaluation data is read the way the run read its training data (its format, fields and labels),
with `--format` and `--text-field` to override; without data, the run's validation split is scored.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from ..config import SENTENCE, DataConfig
from ..data import TokenStream, encode_stream
from ..data.datasets import SentenceDataset
from ..data.prepare import labelled_documents, lm_documents
from ..data.sources import read_documents, read_labelled
from ..decoding import Generator, LatentGenerator, Seq2SeqGenerator
from ..errors import ConfigError, DataError
from ..files import atomic_write_text
from ..loading import load
from ..progress import ProgressOption, Report, reporter
from ..rundir import read_run_config
from ..training.objectives import cross_entropy, stream_nll
from .metrics import bits_per_char, distinct_n, length_stats, perplexity, self_bleu
from .pairs import data_config_for, evaluate_pairs


def likelihood(gen: Generator, docs: list[str], batch_size: int = 32, labels: list[str] | None = None,
               importance_samples: int = 20) -> dict[str, Any]:
    """Perplexity and bits per character of `docs` under the model: language models score
    non-overlapping windows of their context, n-gram models every token with its full history,
    sentence models (VAE, GAN) each document on its own."""
    tok = gen.tokenizer
    if hasattr(gen.model, "score_stream"):
        tokens = torch.from_numpy(encode_stream(tok, docs)).long()
        nll = float(-gen.model.score_stream(tokens.numpy()).mean())
        how = f"every token after <bos> with up to {gen.model.n - 1} tokens of history"
    elif gen.model.kind == SENTENCE:
        return sentence_likelihood(gen, docs, batch_size, labels, importance_samples)
    else:
        tokens = torch.from_numpy(encode_stream(tok, docs)).long()
        if len(tokens) < 2:
            raise DataError("the evaluation data holds fewer than 2 tokens; pass more text")
        context = min(gen.info["model"]["context"], len(tokens) - 1)  # a short corpus is one shorter window
        nll = stream_nll(gen.model, TokenStream(tokens, context, sum(map(len, docs))), batch_size)["val_loss"]
        how = f"non-overlapping windows of {context}"
    n_chars = sum(len(d) for d in docs)
    return {
        "nll": nll, "perplexity": perplexity(nll), "bits_per_char": bits_per_char(nll, len(tokens) / max(n_chars, 1)),
        "tokens": int(len(tokens)), "characters": n_chars, "oov_rate": float((tokens == tok.unk_id).float().mean()),
        "tokenization": f"{tok.kind} tokens (vocabulary {tok.vocab_size}), <bos>/<eos> around each document, {how}",
    }


@torch.no_grad()
def sentence_likelihood(gen: Generator, docs: list[str], batch_size: int = 32, labels: list[str] | None = None,
                        importance_samples: int = 20) -> dict[str, Any]:
    """Each document scored on its own as `<bos> text <eos>` (cut to the model's context): NLL per
    token and per sentence. A VAE's -log p(x) is an importance-weighted estimate with
    `importance_samples` samples (Burda et al. 2016); any other model's is exact."""
    model, tok = gen.model, gen.tokenizer
    label_ids = [gen.labels.index(x) for x in labels] if labels is not None and model.labelled else None
    data, _ = SentenceDataset.encode(docs, tok, max_len=model.cfg.context, labels=label_ids, what="evaluation")
    total, tokens, unknown = 0.0, 0, 0
    for batch in data.batches(batch_size):
        if getattr(model, "latent", False):
            total += float(model.importance_nll(batch.tokens, batch.labels if label_ids else None, importance_samples).sum())
        else:
            total += float(cross_entropy(model(batch.tgt_in), batch.targets, reduction="sum"))
        tokens += batch.n_tokens
        unknown += int(batch.tgt_out.eq(tok.unk_id).sum())
    nll = total / max(tokens, 1)
    how = (f"an importance-weighted estimate of -log p(x) with {importance_samples} samples"
           if getattr(model, "latent", False) else "exact")
    return {"nll": nll, "nll_per_sentence": total / len(docs), "perplexity": perplexity(nll),
            "bits_per_char": bits_per_char(nll, data.tokens_per_char), "tokens": tokens,
            "characters": data.n_chars, "oov_rate": unknown / max(tokens, 1),
            "tokenization": f"{tok.kind} tokens (vocabulary {tok.vocab_size}), each document scored on its own as "
                            f"<bos> text <eos> (at most {model.cfg.context} tokens), {how}"}


def sample_metrics(texts: list[str]) -> dict[str, Any]:
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
            "distinct_4": distinct_n(texts, 4), "self_bleu": self_bleu(texts), "length": length_stats(texts)}


def draw_samples(gen: Generator, n: int, **options: Any) -> list[str]:
    """`n` unconditional samples; a CVAE's are spread evenly over its labels."""
    if isinstance(gen, LatentGenerator) and gen.model.labelled:
        labels = gen.labels
        groups = {label: gen.generate([""] * len(range(i, n, len(labels))), label=label, **options)
                  for i, label in enumerate(labels)}
        return [groups[labels[i % len(labels)]][i // len(labels)] for i in range(n)]
    return gen.generate([""] * n, **options)


def evaluation_documents(run_dir: Path, gen: Generator, data: str | None, data_format: str | None,
                         text_field: str | None) -> tuple[list[str], list[str] | None, str]:
    """The documents to score (with their labels, for a CVAE) and a description of them."""
    labelled = bool(getattr(gen.model, "labelled", False))
    if not (run_dir / "train.yaml").is_file():  # an imported model: one document per line, as ARPA tools score text
        if data is None:
            raise ConfigError(f"{run_dir} has no training config to take a validation split from; pass --data")
        fmt = data_format or "lines"
        docs = read_documents(DataConfig(source=data, text_field=text_field or "text", format=fmt))
        how = "one document per line" if fmt == "lines" else f"format {fmt}"
        return docs, None, f"{data} ({how}; --format to change)"
    cfg = read_run_config(run_dir).data
    if data is None:
        if labelled:
            rows = labelled_documents(cfg)[1]
            return [t for t, _ in rows], [label for _, label in rows], f"{cfg.source} (validation split)"
        return lm_documents(cfg)[1], None, f"{cfg.valid_source or cfg.source} (validation split)"
    d = data_config_for(cfg, data, data_format, text_field)
    if labelled:
        rows = read_labelled(d)
        return [t for t, _ in rows], [label for _, label in rows], data
    return read_documents(d), None, data


def evaluate(run_dir: str | Path, data: str | None = None, *, target: str | None = None, text_field: str | None = None,
             data_format: str | None = None, samples: int = 100, max_new_tokens: int | None = None,
             temperature: float = 1.0, top_p: float | None = None, seed: int = 0, num_beams: int = 5,
             batch_size: int = 32, limit: int | None = None, importance_samples: int = 20,
             out: str | Path | None = None, predictions: str | Path | None = None, quantize: str | None = None,
             progress: ProgressOption = True) -> dict[str, Any]:
    """Evaluate a run on `data` (default: the run's own validation split) and write the result as
    JSON to `out` (default `RUN/eval.json`).

    Language models: perplexity and bits per character of the data (sentence models such as the VAE
    and GAN score each document on its own; a VAE by importance sampling with `importance_samples`),
    and distinct-n, self-BLEU and lengths of `samples` unconditional samples. Encoder-decoder models
    (and gpt runs fine-tuned on a paired task, which read each source as the task's chat):
    each source is decoded (beam search with `num_beams`, greedy with 1) and scored against its
    reference (BLEU, chrF, ROUGE, exact match, distinct-n), the references' perplexity is measured,
    and the outputs go to `predictions` (default `RUN/predictions.jsonl`). `target` is the target
    side of parallel files. `quantize` scores a GPT run or pretrained model with quantized weights
    (see `load`), to measure what quantizing costs. `progress` draws a bar on standard error (False: none; a callable
    receives `(what, done, total)` instead)."""
    report, bar = reporter(progress, "evaluate")
    with bar or contextlib.nullcontext():
        report("loading the run", 0, None)
        return _evaluate(Path(run_dir), data, target, text_field, data_format, samples, max_new_tokens, temperature, top_p,
                         seed, num_beams, batch_size, limit, importance_samples, out, predictions, report, quantize)


def _evaluate(run_dir: Path, data: str | None, target: str | None, text_field: str | None, data_format: str | None,
              samples: int, max_new_tokens: int | None, temperature: float, top_p: float | None, seed: int, num_beams: int,
              batch_size: int, limit: int | None, importance_samples: int, out: str | Path | None,
              predictions: str | Path | None, report: Report, quantize: str | None) -> dict[str, Any]:
    gen = load(run_dir, quantize=quantize)
    paired = (run_dir / "train.yaml").is_file() and read_run_config(run_dir).data.task != "lm"
    if isinstance(gen, Seq2SeqGenerator) or paired:
        return evaluate_pairs(gen, run_dir, data, target=target, data_format=data_format, text_field=text_field,
                              limit=limit, out=out, predictions_path=predictions, progress=report, num_beams=num_beams,
                              batch_size=batch_size, max_new_tokens=max_new_tokens)
    if target is not None:
        raise ConfigError(f"--target is for encoder-decoder runs; {run_dir} is a {gen.info['family']} model")
    docs, labels, source = evaluation_documents(run_dir, gen, data, data_format, text_field)
    if limit:
        docs, labels = docs[:limit], (labels[:limit] if labels else None)
    report(f"scoring {len(docs):,} documents", 0, None)
    result: dict[str, Any] = {"run": str(run_dir), "data": source, **({"quantize": quantize} if quantize else {}),
                              **likelihood(gen, docs, batch_size, labels, importance_samples)}
    if samples:
        max_new_tokens = max_new_tokens or 100
        report(f"drawing {samples:,} samples of up to {max_new_tokens} tokens", 0, None)
        texts = draw_samples(gen, samples, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        result["samples"] = {"n": samples, "max_new_tokens": max_new_tokens, "temperature": temperature,
                             "top_p": top_p, **sample_metrics(texts), "examples": texts[:5]}
    atomic_write_text(Path(out) if out else run_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    return result
