"""Multi30k German -> English: seq2seq without attention, with Bahdanau attention, and a Transformer.

Each config trains for the same wall-clock budget on this machine (default 60 minutes, as the
configs say), then translates test_2016_flickr with beam search (5 beams). BLEU and chrF are
sacrebleu on the detokenized output (cased, 13a tokenization); a lowercased BLEU stands beside them
because the tutorial figures quoted for comparison score lowercased, spaCy-tokenized text. Test
perplexity is per BPE token of the reference translations.

    python benchmarks/seq2seq_multi30k.py [--minutes 60] [--only transformer] [--beams 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, merge_rows, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.evaluation.metrics import bleu  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # name: (config, the PyTorch tutorial's BLEU for the same kind of model)
    "plain": ("configs/seq2seq/multi30k_de_en_plain.yaml", 13.8),
    "bahdanau": ("configs/seq2seq/multi30k_de_en_bahdanau.yaml", 28.3),
    "transformer": ("configs/transformer/multi30k_de_en.yaml", 36.5),
}
TEST = SHARED_DATA / "multi30k" / "test_2016_flickr"


def epochs_seen(run: Path, tokens_per_sec: float, seconds: float) -> float:
    data = next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "data"' in line)
    per_epoch = data["train"]["pairs"] * data["train"]["target_tokens_mean"]
    return tokens_per_sec * seconds / per_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--only", nargs="*", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--runs", default="runs/bench_multi30k")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for name in args.only:
        config, reference = MODELS[name]
        run = Path(args.runs) / name
        res = textmill.train(ROOT / config, run, overrides=[f"train.max_minutes={args.minutes}"], overwrite=True)
        started = time.perf_counter()
        ev = textmill.evaluate(run, f"{TEST}.de", target=f"{TEST}.en", num_beams=args.beams, batch_size=64)
        decode_s = time.perf_counter() - started
        preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        lowercase = bleu([p["prediction"].lower() for p in preds], [p["reference"].lower() for p in preds])[0]
        rows.append({"model": name, "config": config, "budget_min": args.minutes, "params_M": res.parameters / 1e6, "steps": res.steps,
                     "epochs": epochs_seen(run, res.tokens_per_sec, res.elapsed_s), "train_min": res.elapsed_s / 60,
                     "tokens_per_sec": res.tokens_per_sec, "best_val_loss": res.best_val_loss,
                     "test_ppl": ev["perplexity"], "bleu": ev["bleu"], "bleu_lowercase": lowercase, "chrf": ev["chrf"],
                     "decode_s": decode_s, "tutorial_bleu": reference, "bleu_signature": ev["bleu_signature"],
                     "examples": ev["examples"][:3]})
        save("seq2seq_multi30k", {"beams": args.beams, "rows": merge_rows("seq2seq_multi30k", rows, "model")})
    print_table(rows, ["model", "params_M", "steps", "epochs", "train_min", "tokens_per_sec", "test_ppl", "bleu",
                       "bleu_lowercase", "chrf", "decode_s", "tutorial_bleu"])


if __name__ == "__main__":
    main()
