"""Count-based families (n-gram models) are fitted in one pass over the training split, not trained
by gradient descent; the run directory they write is the same as any run's."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from ..config import RunConfig
from ..data import encode_stream
from ..data.canaries import spelled_alphabet
from ..data.prepare import lm_documents, lm_tokenizer_config
from ..models import build_model
from ..rundir import write_run_files
from ..tokenizers import build_tokenizer
from .trainer import Callback, TrainResult, prepare_run_dir

log = logging.getLogger(__name__)


def fit_counts(cfg: RunConfig, run_dir: Path, *, overwrite: bool = False, callback: Callback | None = None) -> TrainResult:
    """Fit a count-based model (n-gram) on the training split and score the validation split."""
    prepare_run_dir(run_dir, cfg, resume=False, overwrite=overwrite)
    train_docs, val_docs = lm_documents(cfg.data)
    tok = build_tokenizer(lm_tokenizer_config(cfg, train_docs), train_docs + spelled_alphabet(cfg.data.canaries))
    started = time.perf_counter()
    stream = encode_stream(tok, train_docs)
    model = build_model(cfg.model, tok.vocab_size).fit(stream)
    fit_s = time.perf_counter() - started
    val_stream = encode_stream(tok, val_docs)
    val_loss = float(-model.score_stream(val_stream).mean())
    tokens_per_char = len(val_stream) / max(sum(map(len, val_docs)), 1)
    write_run_files(run_dir, cfg, {"tokenizer.json": tok}, tok.vocab_size)
    model.save(run_dir / "model.safetensors")
    n_grams = sum(len(model.tables[f"keys_{k}"]) for k in range(1, model.n + 1))
    events = [{"kind": "eval", "step": 0, "val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50)),
               "val_bpc": val_loss * tokens_per_char / math.log(2), "best_val_loss": val_loss},
              {"kind": "end", "step": 0, "stopped": "fitted", "elapsed_s": fit_s, "tokens_per_sec": len(stream) / fit_s,
               "parameters": n_grams}]
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
            if callback:
                callback(e)
    log.info("fitted an order-%d n-gram model on %d tokens in %.1f s", model.n, len(stream), fit_s)
    return TrainResult(run_dir, 0, val_loss, val_loss, val_loss * tokens_per_char / math.log(2), len(stream) / fit_s,
                       fit_s, n_grams, "fitted", events)
