"""Dialogue replies on DailyDialog from a pretrained chat model, zero-shot, beside the from-scratch
Transformer of seq2seq_tasks.py.

The pairs are seq2seq_tasks' (`data.task: dialogue`, the three turns before each reply, the test
dialogues); `--pairs` of them are drawn with seed 0. The model reads the turns as a chat, the last
one the user's, after a system message asking for a short everyday reply; the reply is sampled
(temperature 0.7, top-p 0.9, seed 0) up to 40 tokens and its first line kept. The prompt was written
once, not tuned on these pairs. BLEU-1/2 (sacrebleu), distinct-1/2 (over all replies of the sample,
so they depend on the sample's size: the human replies of the same sample are the reference point)
and mean length in words.

    python benchmarks/dialogue.py [--pairs 200] [--source embedded:smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import SHARED_DATA, print_table, save

import textmill
from textmill.config import DataConfig
from textmill.data.tasks import build_task
from textmill.evaluation.metrics import bleu, distinct_n, metric_tokens

RESULTS = Path(__file__).parent / "results"
SYSTEM = "You are chatting with a friend. Reply to the last message in one short, natural sentence."


def chat(history: str) -> list[dict]:
    turns = history.split("\n")
    roles = ["user" if (len(turns) - 1 - i) % 2 == 0 else "assistant" for i in range(len(turns))]
    return [{"role": "system", "content": SYSTEM}, *({"role": r, "content": t} for r, t in zip(roles, turns))]


def scores(replies: list[str], references: list[str]) -> dict:
    return {"bleu_1": bleu(replies, references, 1)[0], "bleu_2": bleu(replies, references, 2)[0],
            "distinct_1": distinct_n(replies, 1), "distinct_2": distinct_n(replies, 2),
            "mean_words": sum(len(metric_tokens(r)) for r in replies) / len(replies)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--source", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    test = SHARED_DATA / "dailydialog" / "dialogues_test.txt"
    if not test.is_file():
        sys.exit(f"{test} is absent")
    pairs = build_task(DataConfig(task="dialogue", source=str(test))).pairs(str(test), what="test")
    sample = random.Random(0).sample(pairs, args.pairs)
    histories, references = [h for h, _ in sample], [r for _, r in sample]
    gen = textmill.load(args.source)
    start = time.perf_counter()
    replies = []
    for i in range(0, len(sample), args.batch_size):
        batch = [chat(h) for h in histories[i:i + args.batch_size]]
        out = gen.generate(batch, seed=i, temperature=0.7, top_p=0.9, max_new_tokens=40, stop=["\n"])
        replies += [" ".join(r.split()) for r in out]
    seconds = (time.perf_counter() - start) / len(sample)
    rows = [{"system": f"human replies (the sample's references; {args.pairs} pairs)", **scores(references, references)},
            {"system": f"{args.source}, zero-shot chat ({args.pairs} pairs)", **scores(replies, references),
             "seconds_per_reply": seconds}]
    for r in json.loads((RESULTS / "seq2seq_tasks.json").read_text()).get("rows", []):
        if r.get("task") == "dailydialog":
            rows.append({"system": f"Transformer 3+3 from scratch, 20 min (seq2seq_tasks; all {r['test_pairs']} pairs)",
                         "bleu_1": r["bleu_1"], "bleu_2": r["bleu_2"], "distinct_1": r["distinct_1"],
                         "distinct_2": r["distinct_2"]})
    print_table(rows, ["system", "bleu_1", "bleu_2", "distinct_1", "distinct_2", "mean_words", "seconds_per_reply"])
    save("dialogue", {"pairs": args.pairs, "system_prompt": SYSTEM, "rows": rows,
                      "examples": [{"history": h, "reference": r, "reply": y}
                                   for h, r, y in list(zip(histories, references, replies))[:8]]})


if __name__ == "__main__":
    main()
