"""Conditional generation beyond Multi30k: Tatoeba Chinese <-> English, BBC news summarization against
the lead-3 baseline, and DailyDialog replies. Each config trains for its own budget on this machine
(the minutes in the config; `--scale` multiplies them), then decodes a test set with beam search.

Splits: Tatoeba is one file, split 90/5/5 (train/validation/test) with seed 0. BBC's published test
part is held out of ../shared/data, so its 2,008 pairs are split 80/10/10 with seed 0; the title line
is dropped from each article (it is a field of its own), so lead-3 is three sentences of the body.
DailyDialog uses its own train/validation/test files. Split files are written under the runs
directory, never into the repository.

    python benchmarks/seq2seq_tasks.py [--only tatoeba_zh_en bbc] [--scale 1.0] [--beams 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, merge_rows, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.config import load_config  # noqa: E402
from textmill.data.sources import read_lines  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    "tatoeba_zh_en": "configs/transformer/tatoeba_zh_en.yaml",
    "tatoeba_en_zh": "configs/transformer/tatoeba_en_zh.yaml",
    "bbc": "configs/transformer/bbc_summarization.yaml",
    "dailydialog": "configs/transformer/dailydialog.yaml",
}


def split(lines: list[str], fractions: tuple[float, float], out: Path, suffix: str) -> dict[str, Path]:
    """Write a seeded train/valid/test split of `lines` to `out` and return the three paths."""
    rows = list(lines)
    random.Random(0).shuffle(rows)
    n_val, n_test = (round(f * len(rows)) for f in fractions)
    parts = {"test": rows[:n_test], "valid": rows[n_test:n_test + n_val], "train": rows[n_test + n_val:]}
    out.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        (out / f"{name}{suffix}").write_text("".join(r + "\n" for r in part), encoding="utf-8")
    return {name: out / f"{name}{suffix}" for name in parts}


def task_data(name: str, runs: Path) -> tuple[list[str], str, str | None]:
    """(config overrides, test source, test target) for a task."""
    if name.startswith("tatoeba"):
        lines = [line for line in read_lines(SHARED_DATA / "cmn_eng" / "cmn.txt") if line.strip()]
        paths = split(lines, (0.05, 0.05), runs / "splits" / "tatoeba", ".tsv")
        return [f"data.source={paths['train']}", f"data.valid_source={paths['valid']}"], str(paths["test"]), None
    if name == "bbc":
        rows = [json.loads(line) for line in read_lines(SHARED_DATA / "bbc_news_summary" / "bbc_news_summary.jsonl")]
        for r in rows:
            r["article"] = r["article"].split("\n", 1)[1].strip()  # the first line is the title
        paths = split([json.dumps(r, ensure_ascii=False) for r in rows], (0.1, 0.1), runs / "splits" / "bbc", ".jsonl")
        return [f"data.source={paths['train']}", f"data.valid_source={paths['valid']}"], str(paths["test"]), None
    return [], str(SHARED_DATA / "dailydialog" / "dialogues_test.txt"), None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", choices=list(TASKS), default=list(TASKS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply each config's training minutes")
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--runs", default="runs/bench_tasks")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs = Path(args.runs)
    rows = []
    for name in args.only:
        overrides, test, target = task_data(name, runs)
        minutes = load_config(ROOT / TASKS[name]).train.max_minutes * args.scale
        run = runs / name
        res = textmill.train(ROOT / TASKS[name], run, overrides=[*overrides, f"train.max_minutes={minutes}"], overwrite=True)
        ev = textmill.evaluate(run, test, target=target, num_beams=args.beams, batch_size=32)
        row = {"task": name, "params_M": res.parameters / 1e6, "steps": res.steps, "train_min": res.elapsed_s / 60,
               "tokens_per_sec": res.tokens_per_sec, "test_pairs": ev["pairs"], "test_ppl": ev["perplexity"],
               **{k: ev[k] for k in ("bleu", "bleu_1", "bleu_2", "chrf", "rouge1", "rouge2", "rougeL", "distinct_1",
                                     "distinct_2", "length_ratio", "bleu_signature")},
               "examples": ev["examples"][:3]}
        if "lead3" in ev:
            row.update({f"lead3_{k}": v for k, v in ev["lead3"].items()})
        rows.append(row)
        row["budget_min"] = minutes
        save("seq2seq_tasks", {"beams": args.beams, "rows": merge_rows("seq2seq_tasks", rows, "task")})
    print_table(rows, ["task", "params_M", "steps", "train_min", "tokens_per_sec", "test_pairs", "test_ppl", "bleu",
                       "bleu_1", "bleu_2", "chrf", "rouge1", "rouge2", "rougeL", "distinct_1", "distinct_2"])
    if any("lead3_rouge1" in r for r in rows):
        print_table([r for r in rows if "lead3_rouge1" in r], ["task", "rouge1", "rouge2", "rougeL", "lead3_rouge1",
                                                              "lead3_rouge2", "lead3_rougeL"])


if __name__ == "__main__":
    main()
