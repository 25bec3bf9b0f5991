"""Evaluation of paired-task runs (encoder-decoders, and gpt runs fine-tuned on a task as a chat):
decode every source, score the outputs against the references (BLEU, chrF, ROUGE, exact match,
distinct-n) and the references under the model (perplexity). Summarization runs also score the
lead-3 baseline (the first three sentences of each source), the bar any summarizer has to clear.

Sources are decoded in batches of similar length; a source's output does not depend on its batch, so
this changes only the speed. A chat run reads each source as the task's chat (data/tasks.py), cut to
leave `max_new_tokens` of its context for the reply (default: half the context, at most 256).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import DataConfig
from ..data.datasets import ChatDataset, fit_chat
from ..data.prepare import encode_pairs, paired_data
from ..data.tasks import Pair, Task, build_task
from ..decoding import Generator, Seq2SeqGenerator
from ..errors import ConfigError
from ..files import atomic_write_text
from ..progress import Report
from ..rundir import read_run_config
from ..training.objectives import pairs_nll, stream_nll
from .metrics import bits_per_char, join_sentences, perplexity, reference_scores, rouge, split_sentences


def lead(text: str, n: int = 3) -> str:
    """The first `n` sentences of `text` (`split_sentences`)."""
    return join_sentences(split_sentences(text)[:n])


def decode_all(gen: Seq2SeqGenerator | Generator, sources: list[str], *, task: Task | None = None, batch_size: int = 32,
               progress: Report | None = None, **options: Any) -> list[str]:
    """The output for every source, in order (beam search with `num_beams` > 1, else greedy). A
    decoder-only `gen` reads each source as `task`'s chat, cut to leave `max_new_tokens` for the reply."""
    seq2seq = isinstance(gen, Seq2SeqGenerator)
    if seq2seq:
        prompts: list[Any] = sources
        lengths = [len(gen.source_tokenizer.encode(gen.format_source(s))) for s in sources]
        options["truncate_prompt"] = True
    else:
        assert task is not None
        limit = gen.model.cfg.context - options["max_new_tokens"]
        prompts = [fit_chat(gen.tokenizer, task, s, limit)[0] for s in sources]
        lengths = [len(gen.tokenizer.encode(gen.tokenizer.chat_prompt(p))) for p in prompts]
    order = sorted(range(len(sources)), key=lambda i: lengths[i])
    outputs: list[str] = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        for i, text in zip(chunk, gen.generate([prompts[i] for i in chunk], **options)):
            outputs[i] = text if seq2seq else text.strip()
        if progress:
            progress("decoding", min(start + batch_size, len(order)), len(order))
    return outputs


def score_pairs(gen: Seq2SeqGenerator | Generator, pairs: list[Pair], *, task: Task | None = None, num_beams: int = 5,
                batch_size: int = 32, max_new_tokens: int | None = None, length_penalty: float = 1.0,
                no_repeat_ngram_size: int | None = None, progress: Report | None = None) -> tuple[dict[str, Any], list[str]]:
    """Scores of the model's outputs for `pairs`, and the outputs. A decoder-only `gen` (a chat
    fine-tune) reads them as `task`'s chats."""
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    seq2seq = isinstance(gen, Seq2SeqGenerator)
    task = gen.task if seq2seq else task
    if task is None:
        raise ConfigError("score_pairs: a decoder-only model reads pairs as a task's chats; pass task=")
    context = gen.model.cfg.context
    decoding = {"strategy": "beam" if num_beams > 1 else "greedy", "num_beams": num_beams,
                "max_new_tokens": max_new_tokens or (context if seq2seq else min(context // 2, 256)),
                "length_penalty": length_penalty, "no_repeat_ngram_size": no_repeat_ngram_size}
    if not seq2seq and decoding["max_new_tokens"] >= context:
        raise ConfigError(f"max_new_tokens {decoding['max_new_tokens']} leaves no room for the prompt in the model's "
                          f"context of {context} tokens; ask for fewer")
    predictions = decode_all(gen, sources, task=task, batch_size=batch_size, progress=progress, **decoding)
    if seq2seq:
        data, stats = encode_pairs(pairs, task, gen.source_tokenizer, gen.tokenizer, gen.model.cfg, "evaluation")
        nll = pairs_nll(gen.model, data, batch_size)["val_loss"]
    else:
        data, stats = ChatDataset.encode(pairs, task, gen.tokenizer, context=context, what="evaluation")
        nll = stream_nll(gen.model, data, batch_size)["val_loss"]
    result = {"pairs": len(pairs), "decoding": decoding, **reference_scores(predictions, references),
              "nll": nll, "perplexity": perplexity(nll),
              "bits_per_char": bits_per_char(nll, data.tokens_per_char), "sources_cut": stats["sources_cut"]}
    if task.name == "summarization":
        result["lead3"] = rouge([lead(s) for s in sources], references)
    return result, predictions


def data_config_for(cfg: DataConfig, data: str, data_format: str | None, text_field: str | None,
                    **fields: Any) -> DataConfig:
    """The run's data config reading `data` instead (whole, no separate validation set), with the
    format and text field overridden when given; `fields` sets more."""
    update: dict[str, Any] = {"source": data, "valid_source": None, "max_documents": None, **fields}
    update.update({k: v for k, v in (("format", data_format), ("text_field", text_field)) if v is not None})
    try:
        return DataConfig.model_validate({**cfg.model_dump(), **update})
    except ValidationError as e:
        raise ConfigError(f"cannot read {data} for this run: {e.errors()[0]['msg']}") from None


def evaluation_pairs(run_dir: Path, data: str | None, target: str | None, data_format: str | None,
                     text_field: str | None) -> tuple[list[Pair], str]:
    """The pairs to evaluate on: the run's validation split, or `data` read the way the run's task
    reads its training data (`target` for parallel files; format and field overrides optional)."""
    cfg = read_run_config(run_dir)
    if data is None:
        if target is not None:
            raise ConfigError("--target names the target side of --data; pass --data too")
        return paired_data(cfg.data)[2], f"{cfg.data.valid_source or cfg.data.source} (validation split)"
    d = data_config_for(cfg.data, data, data_format, text_field, target=target, valid_target=None)
    return build_task(d).pairs(data, target, "evaluation"), data if target is None else f"{data} -> {target}"


def evaluate_pairs(gen: Seq2SeqGenerator | Generator, run_dir: Path, data: str | None = None, *, target: str | None = None,
                   data_format: str | None = None, text_field: str | None = None, limit: int | None = None,
                   out: str | Path | None = None, predictions_path: str | Path | None = None,
                   progress: Report | None = None, **decoding: Any) -> dict[str, Any]:
    pairs, source = evaluation_pairs(run_dir, data, target, data_format, text_field)
    pairs = pairs[:limit] if limit else pairs
    task = build_task(read_run_config(run_dir).data)
    result, predictions = score_pairs(gen, pairs, task=task, progress=progress, **decoding)
    result = {"run": str(run_dir), "data": source, "task": task.name, **({} if isinstance(gen, Seq2SeqGenerator) else {"chat": True}),
              **result,
              "examples": [{"source": s, "reference": t, "prediction": p} for (s, t), p in list(zip(pairs, predictions))[:5]]}
    rows = (json.dumps({"source": s, "reference": t, "prediction": p}, ensure_ascii=False) for (s, t), p in zip(pairs, predictions))
    atomic_write_text(Path(predictions_path) if predictions_path else run_dir / "predictions.jsonl", "".join(r + "\n" for r in rows))
    atomic_write_text(Path(out) if out else run_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    return result
