"""A from-scratch model beside a pretrained one, zero-shot and fine-tuned, on the same validation split.

Tiny Shakespeare (the last 10% of characters is validation, as `configs/gpt/shakespeare_char.yaml`
splits it): SmolLM2-135M-Instruct zero-shot; SmolLM2 fine-tuned with LoRA (rank 8, bf16 autocast) for
`--minutes` on the training split; and the baby character GPT trained from scratch for the same
`--minutes`. `textmill compare` scores all three by bits per character over the whole validation
split (comparable across tokenizers).

    python benchmarks/pretrained_perplexity.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.models.hf import import_run  # noqa: E402
from textmill.rundir import read_run_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "gpt" / "shakespeare_char.yaml"
SOURCE = "embedded:smollm2-135m-instruct"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    data = SHARED_DATA / "tinyshakespeare" / "input.txt"
    if not data.is_file():
        sys.exit(f"{data} is missing: this benchmark reads ../shared/data")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = import_run(SOURCE, tmp / "smollm2")
        tuned = tmp / "smollm2-lora"
        started = time.perf_counter()
        res = textmill.train({"model": {**read_run_config(base).model.model_dump(), "context": 256},
                              "data": {"source": str(data), "val_fraction": 0.1},
                              "train": {"init_from": str(base), "lora": {"rank": 8, "alpha": 16}, "precision": "bf16",
                                        "max_steps": 100000, "max_minutes": args.minutes, "batch_size": 8, "lr": 1e-3,
                                        "min_lr": 1e-4, "warmup_steps": 10, "eval_every": 50, "eval_batches": 5}}, tuned)
        tune_s = time.perf_counter() - started
        rows = textmill.compare([str(CONFIG), SOURCE, str(tuned)], args.minutes, tmp / "compare",
                                data=str(data), sample_tokens=60)
    for r in rows:
        r["model"] = {"shakespeare_char": "char GPT from scratch", SOURCE: "SmolLM2 zero-shot",
                      "smollm2-lora": "SmolLM2 + LoRA"}.get(r["name"], r["name"])
        r["budget"] = f"{args.minutes:g} min" if r["name"] != SOURCE else "-"
        r["steps"] = r["steps"] if r["steps"] is not None else (res.steps if r["name"] == "smollm2-lora" else 0)
    print_table(rows, ["model", "budget", "steps", "parameters", "val_bpc", "val_loss", "tokenizer"])
    save("pretrained_perplexity", {"data": str(data), "minutes": args.minutes, "lora_steps": res.steps, "lora_s": tune_s,
                                   "lora_tokens_per_sec": res.tokens_per_sec, "rows": rows})


if __name__ == "__main__":
    main()
