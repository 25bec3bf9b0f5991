"""Label-conditioned generation and sentiment style transfer on Yelp with the CVAE.

The Yelp train split is missing upstream, so the CVAE trains on dev (configs/vae/yelp_cvae.yaml) and
is evaluated on a seeded sample of test sentences (`--per-label` of each sentiment):
- transfer accuracy: a separate sentiment classifier (scikit-learn TF-IDF + logistic regression,
  trained on the same dev data) reads each output and should see the new sentiment;
- content preservation: sacrebleu BLEU of the outputs against their source sentences;
- fluency: perplexity of the outputs under a separately trained language model (a word trigram with
  modified Kneser-Ney, fitted on dev);
- controlled generation: samples drawn from the prior with each label, scored by the same classifier.
Copying the input is the reference point: perfect content, no transfer.

    python benchmarks/style_transfer_yelp.py [--minutes 30] [--per-label 500]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.evaluation.metrics import bleu, distinct_n  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
YELP = SHARED_DATA / "yelp_style"
LABELS = {"negative": "0", "positive": "1"}


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def classifier(texts: list[str], labels: list[str], chinese: bool = False):
    """The judge: TF-IDF (word 1-2-grams; character 1-3-grams for Chinese) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    grams = dict(analyzer="char", ngram_range=(1, 3)) if chinese else dict(ngram_range=(1, 2))
    return make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True, **grams),
                         LogisticRegression(C=4.0, max_iter=2000)).fit(texts, labels)


def trigram_perplexity(texts: list[str], workdir: Path):
    """A function of texts -> their perplexity under a word trigram LM (modified Kneser-Ney) fitted on `texts`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dev.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    textmill.train({"model": {"family": "ngram", "order": 3}, "tokenizer": {"kind": "whitespace", "vocab_size": 100000},
                    "data": {"source": str(workdir / "dev.txt"), "format": "lines"}}, workdir / "trigram", overwrite=True)

    def perplexity(outputs: list[str]) -> float:
        probe = workdir / "outputs.txt"
        probe.write_text("\n".join(t or "." for t in outputs) + "\n", encoding="utf-8")
        return textmill.evaluate(workdir / "trigram", str(probe), samples=0, out=workdir / "eval.json")["perplexity"]

    return perplexity


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--per-label", type=int, default=500)
    ap.add_argument("--runs", default="runs/bench_yelp")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs = Path(args.runs)
    dev = {label: lines(YELP / f"sentiment.dev.{suffix}") for label, suffix in LABELS.items()}
    clf = classifier([t for ts in dev.values() for t in ts], [label for label, ts in dev.items() for _ in ts])
    fluency = trigram_perplexity([t for ts in dev.values() for t in ts], runs / "lm")

    rng = random.Random(0)
    test = {label: rng.sample(lines(YELP / f"sentiment.test.{suffix}"), args.per_label) for label, suffix in LABELS.items()}
    sources = [t for ts in test.values() for t in ts]
    targets = [other for label, ts in test.items() for other in [next(x for x in LABELS if x != label)] for _ in ts]
    res = textmill.train(ROOT / "configs/vae/yelp_cvae.yaml", runs / "cvae", overrides=[f"train.max_minutes={args.minutes}"],
                         overwrite=True)
    gen = textmill.load(runs / "cvae")
    transferred = [out for label in LABELS for out in gen.transfer(
        [s for s, t in zip(sources, targets) if t == label], to=label, max_new_tokens=30)]
    ordered_targets = [label for label in LABELS for t in targets if t == label]
    ordered_sources = [s for label in LABELS for s, t in zip(sources, targets) if t == label]

    def row(name: str, outputs: list[str], wanted: list[str], refs: list[str] | None) -> dict:
        return {"system": name, "accuracy": 100 * sum(p == w for p, w in zip(clf.predict(outputs), wanted)) / len(outputs),
                "bleu_to_source": bleu(outputs, refs)[0] if refs else None, "perplexity": fluency(outputs),
                "distinct_2": distinct_n(outputs, 2), "examples": list(zip(refs or [""] * 3, outputs))[:3]}

    rows = [
        row("test sentences (classifier check)", sources, [label for label, ts in test.items() for _ in ts], None),
        row("copy the input", ordered_sources, ordered_targets, ordered_sources),
        row("cvae transfer", transferred, ordered_targets, ordered_sources),
    ]
    for label in LABELS:
        samples = gen.generate([""] * args.per_label, label=label, seed=0, max_new_tokens=30)
        rows.append(row(f"cvae samples, {label}", samples, [label] * len(samples), None))
    save("style_transfer_yelp", {"minutes": args.minutes, "per_label": args.per_label, "train_steps": res.steps,
                                 "train_min": res.elapsed_s / 60, "best_val_loss": res.best_val_loss, "rows": rows})
    print_table(rows, ["system", "accuracy", "bleu_to_source", "perplexity", "distinct_2"])


if __name__ == "__main__":
    main()
