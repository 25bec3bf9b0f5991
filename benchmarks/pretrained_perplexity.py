"""A from-scratch model beside a pretrained one, zero-shot and fine-tuned, on the same validation split.

For each corpus: SmolLM2-135M-Instruct zero-shot; SmolLM2 fine-tuned with LoRA (rank 8, bf16
autocast) for `--minutes` on the training split; and a small GPT trained from scratch for the same
`--minutes`. `textmill compare` scores all three by bits per character over the whole validation
split (comparable across tokenizers).

| corpus | training split | validation split | from-scratch config |
|---|---|---|---|
| shakespeare | first 90% of Tiny Shakespeare's characters | last 10% | `configs/gpt/shakespeare_char.yaml` |
| multi30k | `multi30k/train.en` (29k captions) | `multi30k/val.en` (1,014) | `configs/gpt/coco.yaml` (word GPT) |
| yelp | `yelp_style/sentiment.dev.{0,1}` (no train split upstream) | `sentiment.test.{0,1}`, 1,000 lines each | `coco.yaml` |

    python benchmarks/pretrained_perplexity.py [--corpus shakespeare multi30k yelp] [--minutes 10]

Results of every corpus run so far are kept in `results/pretrained_perplexity.json`, keyed by corpus.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.exchange.hf import import_run  # noqa: E402
from textmill.rundir import read_run_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "embedded:smollm2-135m-instruct"
YELP_VAL_LINES = 1000


def corpus_data(name: str, tmp: Path) -> tuple[Path, dict, list[str]]:
    """(from-scratch config, the data section for LoRA, the same as compare overrides) of a corpus."""
    if name == "shakespeare":
        source = SHARED_DATA / "tinyshakespeare" / "input.txt"
        return ROOT / "configs/gpt/shakespeare_char.yaml", {"source": str(source), "val_fraction": 0.1}, [
            f"data.source={source}"]
    if name == "multi30k":
        train, valid = SHARED_DATA / "multi30k" / "train.en", SHARED_DATA / "multi30k" / "val.en"
    elif name == "yelp":
        yelp = SHARED_DATA / "yelp_style"
        train, valid = tmp / "yelp_train.txt", tmp / "yelp_val.txt"
        train.write_text("".join((yelp / f"sentiment.dev.{k}").read_text() for k in (0, 1)))
        valid.write_text("".join("".join((yelp / f"sentiment.test.{k}").read_text().splitlines(True)[:YELP_VAL_LINES])
                                 for k in (0, 1)))
    else:
        raise SystemExit(f"unknown corpus {name!r}: shakespeare, multi30k or yelp")
    data = {"source": str(train), "valid_source": str(valid), "format": "lines"}
    return ROOT / "configs/gpt/coco.yaml", data, [f"data.{k}={v}" for k, v in data.items()]


def run_corpus(name: str, minutes: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config, data, overrides = corpus_data(name, tmp)
        if not Path(data["source"]).is_file():
            sys.exit(f"{data['source']} is missing: this benchmark reads ../shared/data")
        base = import_run(SOURCE, tmp / "smollm2")
        tuned = tmp / "smollm2-lora"
        started = time.perf_counter()
        res = textmill.train({"model": {**read_run_config(base).model.model_dump(), "context": 256},
                              "data": data,
                              "train": {"init_from": str(base), "lora": {"rank": 8, "alpha": 16}, "precision": "bf16",
                                        "max_steps": 100000, "max_minutes": minutes, "batch_size": 8, "lr": 1e-3,
                                        "min_lr": 1e-4, "warmup_steps": 10, "eval_every": 50, "eval_batches": 5}}, tuned)
        tune_s = time.perf_counter() - started
        rows = textmill.compare([str(config), SOURCE, str(tuned)], minutes, tmp / "compare",
                                overrides=overrides, sample_tokens=60)
    labels = {config.stem: f"{config.stem} GPT from scratch", SOURCE: "SmolLM2 zero-shot", "smollm2-lora": "SmolLM2 + LoRA"}
    for r in rows:
        r["corpus"] = name
        r["model"] = labels.get(r["name"], r["name"])
        r["budget"] = f"{minutes:g} min" if r["name"] != SOURCE else "-"
        r["steps"] = r["steps"] if r["steps"] is not None else (res.steps if r["name"] == "smollm2-lora" else 0)
    return {"minutes": minutes, "lora_steps": res.steps, "lora_s": tune_s, "lora_tokens_per_sec": res.tokens_per_sec,
            "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=["shakespeare", "multi30k", "yelp"])
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    path = RESULTS / "pretrained_perplexity.json"
    earlier = json.loads(path.read_text()).get("corpora", {}) if path.is_file() else {}
    for name in args.corpus:
        earlier[name] = run_corpus(name, args.minutes)
        save("pretrained_perplexity", {"corpora": earlier})  # after each corpus: a long run keeps what it measured
    rows = [r for c in earlier.values() for r in c["rows"]]
    print_table(rows, ["corpus", "model", "budget", "steps", "parameters", "val_bpc", "val_loss", "tokenizer"])


if __name__ == "__main__":
    main()
