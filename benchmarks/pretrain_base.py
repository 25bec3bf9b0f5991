"""Pretrain the small English base GPT that `--generator gpt:RUN` fine-tunes (configs/gpt/base_en.yaml).

The corpus is built from the shared data, labels dropped: Yelp review sentences (dev and test, both
sentiments), DailyDialog training utterances, COCO training captions and BBC news sentences. Each
line is lower-cased and stripped to letters and spaces, the normalisation of EDA's SST-2 and TREC
files, and exact duplicates are dropped. None of these sets is SST-2 or TREC, so a generator
fine-tuned from this base sees no row of the EDA benchmark beyond its N drawn training rows.

After training, the base's perplexity is measured on its own validation split and on the sentences
of SST-2's and TREC's training files: how far the EDA benchmark's text lies from what the base read.

    python benchmarks/pretrain_base.py [--minutes 60] [--out runs/base_en]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOT_LETTERS = re.compile(r"[^a-z ]+")


def normalise(line: str) -> str:
    """EDA's get_only_chars: lower case, letters and single spaces."""
    return " ".join(NOT_LETTERS.sub(" ", line.lower().replace("'", "")).split())


def corpus_lines() -> dict[str, list[str]]:
    yelp = [line for split in ("dev", "test") for label in (0, 1)
            for line in (SHARED_DATA / "yelp_style" / f"sentiment.{split}.{label}").read_text(encoding="utf-8").splitlines()]
    dialog = [turn for line in (SHARED_DATA / "dailydialog" / "dialogues_train.txt").read_text(encoding="utf-8").splitlines()
              for turn in line.split("__eou__")]
    coco = (SHARED_DATA / "coco_captions" / "train.txt").read_text(encoding="utf-8").splitlines()
    bbc = [sentence for line in (SHARED_DATA / "bbc_news_summary" / "bbc_news_summary.jsonl").read_text(encoding="utf-8").splitlines()
           for sentence in re.split(r"(?<=[.!?])\s+|\n+", json.loads(line)["article"])]
    return {"yelp": yelp, "dailydialog": dialog, "coco": coco, "bbc": bbc}


def eda_perplexity(run: Path) -> dict[str, float]:
    """The run's perplexity (per BPE token) on the sentences of EDA's SST-2 and TREC training files."""
    out = {}
    for name in ("sst2", "trec"):
        sentences = run.parent / f"{name}_train.txt"
        rows = (SHARED_DATA / f"eda_{name}" / "train.txt").read_text(encoding="utf-8").splitlines()
        sentences.write_text("\n".join(normalise(row.split("\t", 1)[1]) for row in rows) + "\n", encoding="utf-8")
        result = textmill.evaluate(run, str(sentences), data_format="lines", samples=0, out=run.parent / f"eval_{name}.json")
        out[f"ppl_{name}"] = round(result["perplexity"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "base_en")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    lines, sources = [], []
    for name, raw in corpus_lines().items():
        kept = 0
        for line in map(normalise, raw):
            if len(line.split()) >= 3 and line not in seen:
                seen.add(line)
                lines.append(line)
                kept += 1
        sources.append({"source": name, "lines": kept})
    corpus = args.out / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words = sum(len(line.split()) for line in lines)
    print(f"corpus: {len(lines):,} lines, {words:,} words -> {corpus}")
    started = time.perf_counter()
    result = textmill.train(ROOT / "configs" / "gpt" / "base_en.yaml", args.out / "gpt", overwrite=True,
                            overrides=[f"data.source={corpus}", f"train.max_minutes={args.minutes}"])
    minutes = round((time.perf_counter() - started) / 60, 1)
    row = {"run": "base_en gpt", "lines": len(lines), "words": words, "parameters": result.parameters, "steps": result.steps,
           "val_loss": round(result.best_val_loss, 3), "val_ppl": round(math.exp(result.best_val_loss), 1),
           **eda_perplexity(args.out / "gpt"), "tokens_per_sec": round(result.tokens_per_sec),
           "minutes": minutes, "stopped": result.stopped}
    print_table(sources, ["source", "lines"])
    print_table([row], list(row))
    save("pretrain_base", {"sources": sources, "rows": [row]})


if __name__ == "__main__":
    main()
