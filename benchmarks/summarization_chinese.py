"""Chinese summaries, one small measured example: five news-style articles written for this benchmark
(benchmarks/data/zh_news_summaries.jsonl, each with a two-sentence reference summary written with it,
frozen before any system ran on them), summarized in two sentences by lead-2, the extractive default
(fitted on English BBC news, never on Chinese) and Gemma 3 270M prompted (instruct chat, greedy).
ROUGE over characters. Five articles say whether the commands work on Chinese and roughly how well;
they are too few to rank close systems.

    python benchmarks/summarization_chinese.py [--model embedded:gemma3-270m]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import print_table, save

import textmill
from textmill.evaluation.metrics import rouge
from textmill.evaluation.pairs import lead

DATA = Path(__file__).parent / "data" / "zh_news_summaries.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="embedded:gemma3-270m")
    args = ap.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    articles, references = [r["article"] for r in rows], [r["summary"] for r in rows]
    table, outputs = [], {}
    for system, run in (("lead-2", lambda: [lead(a, 2) for a in articles]),
                        ("extractive default, 2 sentences", lambda: textmill.summarize(articles, sentences=2)),
                        (f"{args.model}, prompted, 2 sentences",
                         lambda: textmill.summarize(articles, model=args.model, sentences=2))):
        start = time.perf_counter()
        outputs[system] = run()
        table.append({"system": system, "articles": len(articles), **rouge(outputs[system], references),
                      "characters": sum(map(len, outputs[system])) / len(articles),
                      "seconds_per_article": (time.perf_counter() - start) / len(articles)})
    table.insert(0, {"system": "reference summaries", "articles": len(articles),
                     "characters": sum(map(len, references)) / len(articles)})
    print_table(table, ["system", "articles", "rouge1", "rouge2", "rougeL", "characters", "seconds_per_article"])
    save("summarization_chinese", {"data": DATA.name, "rows": table,
                                   "examples": [{"article": a, "reference": r, **{k: v[i] for k, v in outputs.items()}}
                                                for i, (a, r) in enumerate(zip(articles, references))][:2]})


if __name__ == "__main__":
    main()
