"""Summarization on BBC News Summary: lead-3, lead at the summary's length, the extractive scorer
(TF-IDF features; pretrained features), a prompted pretrained model, the greedy extractive oracle
(the ceiling), beside the from-scratch Transformer of seq2seq_tasks.

The split is seq2seq_tasks.py's (2,008 pairs shuffled with seed 0: 201 test, 201 validation, 1,606
train; each article's title line dropped). The scorer is fitted on the training split only, its
settings were not chosen on the test split. `--fit` also writes the default scorer that ships with
textmill (src/textmill/content/summarizer_bbc.json).

The abstractive fine-tune (`--finetune-minutes`, 0 to skip; the run is kept in `--run` and reused) is
what a user runs: `textmill train` with `data.task: summarization` from SmolLM2-135M-Instruct, which
reads each training pair as a chat (the task's default instruction, the article cut to fit a 768-token
context with its summary) and learns the summary only (LoRA rank 16, float32); `textmill summarize
--model RUN` then asks it as it learned (greedy), on the same first `--prompted` test articles.

    python benchmarks/summarization.py [--fit] [--prompted 40] [--pretrained-train 400] [--finetune-minutes 30] [--no-zero-shot]

Rows of an earlier results file that a run does not produce (`--pretrained-train 0`, `--no-zero-shot`)
are kept in it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import SHARED_DATA, merge_rows, print_table, save

import textmill
from textmill.content.summarize import DEFAULT_SCORER, ExtractiveSummarizer, PromptedSummarizer, oracle_labels, select, words
from textmill.evaluation.metrics import join_sentences, rouge, split_sentences
from textmill.evaluation.pairs import lead

RESULTS = Path(__file__).parent / "results"


def bbc_split() -> tuple[list[dict], list[dict], list[dict]]:
    """(train, validation, test), as benchmarks/seq2seq_tasks.py splits them."""
    rows = [json.loads(line) for line in (SHARED_DATA / "bbc_news_summary" / "bbc_news_summary.jsonl").open(encoding="utf-8")]
    for r in rows:
        r["article"] = r["article"].split("\n", 1)[1].strip()  # the first line is the title
    random.Random(0).shuffle(rows)
    n = round(0.1 * len(rows))
    return rows[2 * n:], rows[n:2 * n], rows[:n]


def finetuned(train: list[dict], valid: list[dict], run: Path, minutes: float) -> dict:
    """The LoRA run on the training split as chats (trained when `run` holds none), and what it cost."""
    if not (run / "model.safetensors").is_file():
        data = run.parent / f"{run.name}-data"
        data.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train", train), ("valid", valid)):
            (data / f"{name}.jsonl").write_text("".join(json.dumps({"article": r["article"], "summary": r["summary"]}) + "\n"
                                                       for r in rows), encoding="utf-8")
        cfg = {"model": {"family": "gpt", "context": 768},
               "data": {"source": str(data / "train.jsonl"), "valid_source": str(data / "valid.jsonl"), "task": "summarization"},
               "train": {"init_from": "embedded:smollm2-135m-instruct", "max_steps": 400, "max_minutes": minutes,
                         "batch_size": 4, "lr": 3e-4, "min_lr": 3e-5, "warmup_steps": 10, "weight_decay": 0.0,
                         "eval_every": 50, "eval_batches": 5, "lora": {"rank": 16, "alpha": 32}}}
        t = time.perf_counter()
        result = textmill.train(cfg, run, overwrite=True)
        (run / "benchmark_train.json").write_text(json.dumps({"minutes": (time.perf_counter() - t) / 60, "steps": result.steps,
                                                             "best_val_loss": result.best_val_loss}))
    return json.loads((run / "benchmark_train.json").read_text())


def lead_at_length(article: str, ratio: float) -> str:
    """The article's first sentences until they hold `ratio` of its words."""
    sentences = split_sentences(article)
    first = select(sentences, [-i for i in range(len(sentences))], ratio * len(words(article)))
    return join_sentences([sentences[i] for i in first])


def oracle(article: str, summary: str) -> str:
    sentences = split_sentences(article)
    return join_sentences([s for s, keep in zip(sentences, oracle_labels(sentences, summary)) if keep])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", action="store_true", help="write the default scorer fitted on the training split")
    ap.add_argument("--prompted", type=int, default=40, help="test articles the prompted model summarizes (0: none)")
    ap.add_argument("--pretrained-train", type=int, default=400,
                    help="training articles for the pretrained-feature scorer (0: skip it; embedding is the cost)")
    ap.add_argument("--finetune-minutes", type=float, default=30.0, help="the LoRA fine-tune's budget (0: skip it)")
    ap.add_argument("--run", default="runs/summarization-smollm2", help="the fine-tuned run (trained when absent)")
    ap.add_argument("--no-zero-shot", dest="zero_shot", action="store_false",
                    help="keep the zero-shot row of an earlier results file instead of running it again (~30 min)")
    args = ap.parse_args()
    if not SHARED_DATA.is_dir():
        sys.exit(f"{SHARED_DATA} is absent")
    train, valid, test = bbc_split()
    articles, references = [r["article"] for r in test], [r["summary"] for r in test]
    rows = []

    def row(system: str, outputs: list[str], refs: list[str] = references, seconds: float | None = None, **extra) -> None:
        rows.append({"system": system, "articles": len(outputs), **rouge(outputs, refs),
                     "words": sum(len(words(o)) for o in outputs) / len(outputs),
                     "seconds_per_article": None if seconds is None else seconds / len(outputs), **extra})
        print(f"{system}: {rows[-1]}", flush=True)

    row("reference summaries (length)", references)
    row("lead-3", [lead(a) for a in articles])
    t = time.perf_counter()
    scorer = ExtractiveSummarizer("tfidf").fit([(r["article"], r["summary"]) for r in train])
    fit_s = time.perf_counter() - t
    if args.fit:
        scorer.save(DEFAULT_SCORER)
        print(f"wrote {DEFAULT_SCORER}")
    row(f"lead at the learned length (ratio {scorer.ratio:.2f})", [lead_at_length(a, scorer.ratio) for a in articles])
    t = time.perf_counter()
    row("extractive, TF-IDF features (the default)", scorer.summarize(articles), seconds=time.perf_counter() - t,
        fit_seconds=fit_s, train_articles=len(train))
    if args.pretrained_train:
        t = time.perf_counter()
        deep = ExtractiveSummarizer("pretrained").fit([(r["article"], r["summary"]) for r in train[:args.pretrained_train]])
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        row("extractive, + pretrained features (SmolLM2)", deep.summarize(articles), seconds=time.perf_counter() - t,
            fit_seconds=fit_s, train_articles=args.pretrained_train)
    if args.prompted:
        k = args.prompted
        if args.zero_shot:
            prompted = PromptedSummarizer("embedded:smollm2-135m-instruct")
            t = time.perf_counter()
            outputs = prompted.summarize(articles[:k])
            row(f"prompted SmolLM2-135M-Instruct, zero-shot (first {k})", outputs, references[:k],
                seconds=time.perf_counter() - t, example=outputs[0])
        if args.finetune_minutes:
            cost = finetuned(train, valid, Path(args.run), args.finetune_minutes)
            t = time.perf_counter()
            outputs = textmill.summarize(articles[:k], model=args.run)
            row(f"SmolLM2-135M-Instruct + LoRA on the training split ({cost['minutes']:.0f} min, {cost['steps']} steps of 4; "
                f"first {k})", outputs, references[:k], seconds=time.perf_counter() - t, example=outputs[0], finetune=cost)
        row(f"lead-3 on the same {k}", [lead(a) for a in articles[:k]], references[:k])
        row(f"extractive default on the same {k}", scorer.summarize(articles[:k]), references[:k])
    row("greedy extractive oracle (ceiling)", [oracle(a, s) for a, s in zip(articles, references)])
    scratch = json.loads((RESULTS / "seq2seq_tasks.json").read_text())
    for r in scratch.get("rows", []):
        if r.get("task") == "bbc":
            rows.append({"system": "Transformer 3+3 from scratch, 30 min (seq2seq_tasks)", "articles": r.get("pairs"),
                         "rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"]})
    print_table(rows, ["system", "articles", "rouge1", "rouge2", "rougeL", "words", "seconds_per_article"])
    save("summarization", {"split": "seq2seq_tasks: seed 0, 1,606 / 201 / 201", "rows": merge_rows("summarization", rows, "system")})


if __name__ == "__main__":
    main()
