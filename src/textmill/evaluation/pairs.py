"""Evaluation of encoder-decoder runs: decode every source, score the outputs against the references
(BLEU, chrF, ROUGE, exact match, distinct-n) and the references under the model (perplexity).
Summarization runs also score the lead-3 baseline (the first three sentences of each source), the
bar any summarizer has to clear.

Sources are decoded in batches of similar length; a source's output does not depend on its batch, so
this changes only the speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import DataConfig
from ..data.prepare import encode_pairs, paired_data
from ..data.tasks import Pair, build_task
from ..decoding import Seq2SeqGenerator
from ..errors import ConfigError
from ..files import atomic_write_text
from ..progress import Report
from ..rundir import read_run_config
from ..training.objectives import pairs_nll
from .metrics import bits_per_char, join_sentences, perplexity, reference_scores, rouge, split_sentences


def lead(text: str, n: int = 3) -> str:
    """The first `n` sentences of `text` (`split_sentences`)."""
    return join_sentences(split_sentences(text)[:n])


def decode_all(gen: Seq2SeqGenerator, sources: list[str], *, batch_size: int = 32, progress: Report | None = None,
               **options: Any) -> list[str]:
    """The output for every source, in order (beam search with `num_beams` > 1, else greedy)."""
    lengths = [len(gen.source_tokenizer.encode(gen.format_source(s))) for s in sources]
    order = sorted(range(len(sources)), key=lambda i: lengths[i])
    outputs: list[str] = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        for i, text in zip(chunk, gen.generate([sources[i] for i in chunk], truncate_prompt=True, **options)):
            outputs[i] = text
        if progress:
            progress("decoding", min(start + batch_size, len(order)), len(order))
    return outputs


def score_pairs(gen: Seq2SeqGenerator, pairs: list[Pair], *, num_beams: int = 5, batch_size: int = 32,
                max_new_tokens: int | None = None, length_penalty: float = 1.0, no_repeat_ngram_size: int | None = None,
                progress: Report | None = None) -> tuple[dict[str, Any], list[str]]:
    """Scores of the model's outputs for `pairs`, and the outputs."""
    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    decoding = {"strategy": "beam" if num_beams > 1 else "greedy", "num_beams": num_beams,
                "max_new_tokens": max_new_tokens or gen.model.cfg.context, "length_penalty": length_penalty,
                "no_repeat_ngram_size": no_repeat_ngram_size}
    predictions = decode_all(gen, sources, batch_size=batch_size, progress=progress, **decoding)
    data, stats = encode_pairs(pairs, gen.task, gen.source_tokenizer, gen.tokenizer, gen.model.cfg, "evaluation")
    nll = pairs_nll(gen.model, data, batch_size)["val_loss"]
    result = {"pairs": len(pairs), "decoding": decoding, **reference_scores(predictions, references),
              "nll": nll, "perplexity": perplexity(nll),
              "bits_per_char": bits_per_char(nll, data.tokens_per_char), "sources_cut": stats["sources_cut"]}
    if gen.task is not None and gen.task.name == "summarization":
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


def evaluate_pairs(gen: Seq2SeqGenerator, run_dir: Path, data: str | None = None, *, target: str | None = None,
                   data_format: str | None = None, text_field: str | None = None, limit: int | None = None,
                   out: str | Path | None = None, predictions_path: str | Path | None = None,
                   progress: Report | None = None, **decoding: Any) -> dict[str, Any]:
    pairs, source = evaluation_pairs(run_dir, data, target, data_format, text_field)
    pairs = pairs[:limit] if limit else pairs
    result, predictions = score_pairs(gen, pairs, progress=progress, **decoding)
    result = {"run": str(run_dir), "data": source, "task": gen.task.name, **result,
              "examples": [{"source": s, "reference": t, "prediction": p} for (s, t), p in list(zip(pairs, predictions))[:5]]}
    rows = (json.dumps({"source": s, "reference": t, "prediction": p}, ensure_ascii=False) for (s, t), p in zip(pairs, predictions))
    atomic_write_text(Path(predictions_path) if predictions_path else run_dir / "predictions.jsonl", "".join(r + "\n" for r in rows))
    atomic_write_text(Path(out) if out else run_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    return result
