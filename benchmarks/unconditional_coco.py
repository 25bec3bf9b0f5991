"""Unconditional generation on COCO captions (the Texygen / TextBox protocol): LSTM LM, VAE, SeqGAN, GPT.

Each config trains for at most 30 minutes on this machine (validation is 10% of train: the upstream
valid and test files are identical). Then, for each model:
- test NLL of the 10,000 test captions, each scored on its own (per sentence and per token; the
  VAE's is an importance-weighted estimate with 20 samples);
- 1,000 samples at temperature 1 (plain ancestral sampling): BLEU-2..5 of each sample against all
  10,000 test captions as references, averaged, and Self-BLEU-2..5 among the samples, both as
  Texygen computes them (NLTK sentence BLEU, smoothing method 1; evaluate/bleu.py), on the
  captions' own whitespace tokens; distinct-1..4;
- a temperature sweep (0.7 to 1.3, each point the mean of 3 sample sets) of BLEU-4 against
  Self-BLEU-4, drawn in results/unconditional_coco_temperature.png, and for each n our BLEU-n
  where the sweep reaches a published row's Self-BLEU-n (quality at equal diversity).
The published rows (TextBox, COCO) are printed beside ours, and so are 1,000 real training captions
scored the same way (what real text scores: a point on the quality/diversity plane, not a ceiling).

    python benchmarks/unconditional_coco.py [--only rnn vae] [--minutes 30] [--samples 1000]
    python benchmarks/unconditional_coco.py --only        # tables and plot from the saved results
    python benchmarks/unconditional_coco.py --rescore     # the sweep again from the trained runs, no training
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, SHARED_DATA, merge_rows, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.evaluation.bleu import ReferenceSet, self_bleu  # noqa: E402
from textmill.evaluation.metrics import distinct_n  # noqa: E402
from textmill.evaluation.plots import save_figure  # noqa: E402
from textmill.evaluation.runner import sentence_likelihood  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"rnn": "configs/rnn/coco_lstm.yaml", "vae": "configs/vae/coco.yaml", "gan": "configs/gan/coco_seqgan.yaml",
          "gpt": "configs/gpt/coco.yaml"}
PUBLISHED = [  # TextBox (Li et al. 2021), COCO: BLEU-2..5 and Self-BLEU-2..5, in percent
    {"model": "SeqGAN (published)", **dict(zip(["bleu_2", "bleu_3", "bleu_4", "bleu_5"], [80.15, 49.88, 24.95, 11.10])),
     **dict(zip(["self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5"], [84.45, 54.26, 27.42, 11.87]))},
    {"model": "RNN-VAE (published)", **dict(zip(["bleu_2", "bleu_3", "bleu_4", "bleu_5"], [80.46, 51.5, 25.89, 11.55])),
     **dict(zip(["self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5"], [89.18, 61.58, 32.69, 14.03]))},
]
TEMPERATURES = [0.7, 0.85, 1.0, 1.15, 1.3]


def scores(samples: list[str], refs: ReferenceSet) -> dict[str, float]:
    toks = [s.split() for s in samples]
    out = {f"bleu_{n}": 100 * refs.bleu(toks, n) for n in (2, 3, 4, 5)}
    out.update({f"self_bleu_{n}": 100 * self_bleu(toks, n) for n in (2, 3, 4, 5)})
    out.update({f"distinct_{n}": distinct_n(samples, n) for n in (1, 2, 3, 4)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--sample-sets", type=int, default=3, help="sample sets averaged at each temperature of the sweep")
    ap.add_argument("--runs", default="runs/bench_coco")
    ap.add_argument("--rescore", action="store_true", help="sample the runs trained before again (the sweep only)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    test = [line for line in (SHARED_DATA / "coco_captions" / "test.txt").read_text(encoding="utf-8").split("\n") if line.strip()]
    started = time.perf_counter()
    refs = ReferenceSet([t.split() for t in test], 5)
    prepare_s = time.perf_counter() - started
    train = [line for line in (SHARED_DATA / "coco_captions" / "train.txt").read_text(encoding="utf-8").split("\n") if line.strip()]
    real = {"model": f"{args.samples:,} training captions", **scores(random.Random(0).sample(train, args.samples), refs)}

    def write(rows: list[dict]) -> list[dict]:
        merged = merge_rows("unconditional_coco", rows, "model")
        save("unconditional_coco", {"samples": args.samples, "references": len(test), "reference_prepare_s": prepare_s,
                                    "rows": merged, "real_captions": real, "published": PUBLISHED,
                                    "at_published_diversity": at_published_diversity(merged)})
        return merged

    before = {r["model"]: r for r in merge_rows("unconditional_coco", [], "model")}
    rows: list[dict] = []
    for name in args.only:
        run = Path(args.runs) / name
        if args.rescore:  # the run trained before, sampled and scored again; its training fields kept
            if name not in before:
                sys.exit(f"--rescore: no saved row for {name}; measure it first (--only {name})")
            rows.append({**before[name], "temperature_sweep": sweep(textmill.load(run), refs, args.samples, args.sample_sets)})
        else:
            rows.append(measure(name, run, args, test, refs))
        write(rows)  # after every model: a crash keeps what was measured
    # each model's row is written as it finishes; with no model, write() refreshes the derived tables
    saved = merge_rows("unconditional_coco", [], "model") if rows else write([])
    plot({r["model"]: r["temperature_sweep"] for r in saved}, real)
    cols = ["model", "test_nll_sentence", "test_ppl", "bleu_2", "bleu_3", "bleu_4", "bleu_5", "self_bleu_2",
            "self_bleu_3", "self_bleu_4", "self_bleu_5"]
    print_table(saved + [real] + PUBLISHED, cols)
    print_table(at_published_diversity(saved), ["model", "published", *(f"{k}_{n}" for n in (2, 3, 4, 5) for k in ("ours", "theirs"))])
    print_table(saved, ["model", "params_M", "steps", "train_min", "stopped", "distinct_1", "distinct_2", "distinct_3",
                       "distinct_4", "sample_s", "bleu_s"])
    print(f"references prepared in {prepare_s:.2f} s")


def measure(name: str, run: Path, args: argparse.Namespace, test: list[str], refs: ReferenceSet) -> dict:
    """Train one model within the budget, then its test NLL, samples, scores and temperature sweep."""
    res = textmill.train(ROOT / MODELS[name], run, overrides=[f"train.max_minutes={args.minutes}"], overwrite=True)
    gen = textmill.load(run)
    nll = sentence_likelihood(gen, test, batch_size=64)
    t = time.perf_counter()
    samples = gen.generate([""] * args.samples, max_new_tokens=40, seed=0)
    sample_s = time.perf_counter() - t
    t = time.perf_counter()
    row = {"model": name, "budget_min": args.minutes, "params_M": res.parameters / 1e6, "steps": res.steps,
           "train_min": res.elapsed_s / 60, "stopped": res.stopped, "test_nll_sentence": nll["nll_per_sentence"],
           "test_ppl": nll["perplexity"],
           **scores(samples, refs), "sample_s": sample_s, "examples": samples[:5]}
    row["bleu_s"] = time.perf_counter() - t
    row["temperature_sweep"] = sweep(gen, refs, args.samples, args.sample_sets)
    return row


def sweep(gen, refs: ReferenceSet, samples: int, sets: int) -> list[dict[str, float]]:
    """At each temperature, the scores of `sets` sample sets of `samples` sentences (seeds 1..sets),
    averaged: one set's BLEU-2 moves by about a point from seed to seed."""
    out = []
    for temp in TEMPERATURES:
        each = [scores(gen.generate([""] * samples, max_new_tokens=40, seed=seed, temperature=temp), refs) for seed in range(1, sets + 1)]
        out.append({"temperature": temp, "sample_sets": sets, **{k: sum(e[k] for e in each) / sets for k in each[0]}})
    return out


def at_published_diversity(rows: list[dict]) -> list[dict]:
    """For each model and published row, and each n: the best BLEU-n our temperature sweep reaches at
    a Self-BLEU-n no higher than the published row's (sweep points, and the line between the two
    around the published Self-BLEU; None if every point is less diverse), beside the published
    BLEU-n. Ours above theirs: better quality at equal or greater diversity."""
    out = []
    for row in rows:
        for ref in PUBLISHED:
            entry: dict = {"model": row["model"], "published": ref["model"]}
            for n in (2, 3, 4, 5):
                points = sorted((p[f"self_bleu_{n}"], p[f"bleu_{n}"]) for p in row["temperature_sweep"])
                target = ref[f"self_bleu_{n}"]
                reached = [b for s, b in points if s <= target]
                reached += [b0 + (b1 - b0) * (target - s0) / (s1 - s0)
                            for (s0, b0), (s1, b1) in zip(points, points[1:]) if s0 < target < s1]
                entry[f"ours_{n}"] = max(reached, default=None)
                entry[f"theirs_{n}"] = ref[f"bleu_{n}"]
            out.append(entry)
    return out


def plot(sweep: dict[str, list[dict[str, float]]], real: dict) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, points in sweep.items():
        ax.plot([p["self_bleu_4"] for p in points], [p["bleu_4"] for p in points], marker="o", label=name)
        for p in points:
            ax.annotate(f"{p['temperature']:g}", (p["self_bleu_4"], p["bleu_4"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.scatter([real["self_bleu_4"]], [real["bleu_4"]], marker="*", s=80, color="black")
    ax.annotate(real["model"], (real["self_bleu_4"], real["bleu_4"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    for ref in PUBLISHED:
        ax.scatter([ref["self_bleu_4"]], [ref["bleu_4"]], marker="x", color="black")
        ax.annotate(ref["model"], (ref["self_bleu_4"], ref["bleu_4"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("Self-BLEU-4 (lower: more diverse)")
    ax.set_ylabel("BLEU-4 against the test captions (higher: closer to real)")
    ax.set_title("COCO captions: quality and diversity by temperature")
    ax.legend()
    save_figure(fig, RESULTS / "unconditional_coco_temperature.png")


if __name__ == "__main__":
    main()
