"""Differential privacy in synth: utility, memorization and speed of a generator trained with DP-SGD.

The EDA protocol's SST-2 draws (N = 500 stratified rows, the full test set; benchmarks/synth_eda.py):
the `gpt` generator is trained on the rows at epsilon infinite (no DP), 8 and 4, with canaries
planted among its training rows (one each inserted 1, 10 and 100 times, under a random label), and
writes 16 synthetic rows per real row. For each run: the accuracy of TF-IDF and CNN classifiers on
real + synthetic rows against real only (paired by draw), the epsilon actually spent, each canary's
exposure and whether it leaked (outranked all 1,000 random candidates) or was written out by greedy
decoding, synthetic rows holding a canary's secret, loss-threshold membership inference on the
generator, and its training speed. Every row trains 600 steps (batch 32, best validation checkpoint).

    python benchmarks/dp_synth.py [--seeds 3] [--epsilons inf 8 4] [--classifiers tfidf cnn]
    python benchmarks/dp_synth.py --speed [--repeats 3]   # training speed with and without DP, alternating
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import merge_rows, print_table, save  # noqa: E402
from synth_eda import DATASETS, draw  # noqa: E402

import textmill  # noqa: E402
from textmill.synth.quality import classifier_scores, mean_ci  # noqa: E402
from textmill.synth.rows import load_rows  # noqa: E402

CANARIES = {"repeats": [1, 10, 100], "per_repeat": 1}
TRAIN = ["train.max_steps=600", "train.max_minutes=null", "train.patience=null", "train.eval_every=100"]


def run_one(real, test_file: Path, epsilon: float | None, seed: int, per_label: int) -> tuple[list, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "real.txt"
        data.write_text("".join(f"{y}\t{t}\n" for t, y in real), encoding="utf-8")
        started = time.perf_counter()
        res = textmill.synthesize(str(data), out=Path(tmp) / "synth.jsonl", eval_data=str(test_file), per_label=per_label,
                                  seed=seed, generator="gpt", dp_epsilon=epsilon, canaries=CANARIES,
                                  report=str(Path(tmp) / "report.html"), report_seeds=3,
                                  generator_options={"overrides": TRAIN}, progress=False, overwrite=True)
        seconds = time.perf_counter() - started
        rows = [json.loads(line) for line in res.out.read_text(encoding="utf-8").splitlines()]
        events = [json.loads(line) for line in (Path(tmp) / "synth.jsonl.work" / "generator" / "metrics.jsonl")
                  .read_text().splitlines()]
    g = res.report["privacy"]["generator"]
    end = [e for e in events if e["kind"] == "end"][-1]
    info = {"seconds": seconds, "train_tokens_per_sec": end["tokens_per_sec"], "train_steps": end["step"],
            "epsilon_spent": g["dp"]["epsilon"] if g["dp"] else math.inf,
            "noise_multiplier": g["dp"]["noise_multiplier"] if g["dp"] else 0.0,
            "mia_auc": g["membership"]["auc"], "canaries_in_output": g["canaries_in_output"],
            "canaries": [{k: c[k] for k in ("repeats", "rank", "exposure", "exposure_sampled", "leaked", "extracted")}
                         for c in g["canaries"]]}
    return [(r["text"], r["label"]) for r in rows], info


def speed(repeats: int, steps: int = 100) -> None:
    """Training tokens/s of synth's gpt generator on one draw, without and with DP-SGD, alternating
    (the machine is shared: compare within a repeat, report medians)."""
    from textmill.synth.generators.trained import GPTGenerator

    real = draw(load_rows(str(DATASETS["sst2"] / "train.txt"), "eda", 1, 0), 500, None, 0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in real), encoding="utf-8")
        for r in range(repeats):
            for dp in (None, {"epsilon": 8.0}):
                gen = GPTGenerator(None, {})
                gen.train_privately(dp, None)
                cfg = gen.run_config(real, data, False, 0)
                cfg["train"].update(max_steps=steps, max_minutes=None, patience=None, eval_every=steps, threads=2)
                res = textmill.train(cfg, Path(tmp) / f"run{r}{bool(dp)}", progress=False)
                rows.append({"repeat": r, "dp": bool(dp), "tokens_per_sec": res.tokens_per_sec})
                print(rows[-1], flush=True)
    plain = [x["tokens_per_sec"] for x in rows if not x["dp"]]
    private = [x["tokens_per_sec"] for x in rows if x["dp"]]
    ratios = [p / q for p, q in zip(plain, private)]
    summary = {"steps": steps, "tokens_per_sec": float(np.median(plain)), "dp_tokens_per_sec": float(np.median(private)),
               "slowdown_median": float(np.median(ratios)), "slowdowns": ratios}
    print_table([summary], ["steps", "tokens_per_sec", "dp_tokens_per_sec", "slowdown_median"])
    save("dp_synth", {**_previous(), "speed": {"runs": rows, **summary}})


def _previous() -> dict:
    path = Path(__file__).parent / "results" / "dp_synth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true", help="measure training speed with and without DP instead")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epsilons", nargs="*", default=["inf", "8", "4"])
    ap.add_argument("--classifiers", nargs="*", default=["tfidf", "cnn"])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--aug", type=int, default=16)
    args = ap.parse_args()
    if args.speed:
        return speed(args.repeats)
    train_all = load_rows(str(DATASETS["sst2"] / "train.txt"), "eda", 1, 0)
    test = load_rows(str(DATASETS["sst2"] / "test.txt"), "eda", 1, 0)
    runs = []
    for seed in range(args.seeds):
        real = draw(train_all, args.n, None, seed)
        per_label = args.aug * len(real) // 2
        for clf in args.classifiers:
            a, f = classifier_scores(real, test, chinese=False, seed=seed, classifier=clf)
            runs.append({"id": f"real|{seed}|{clf}", "epsilon": "real", "seed": seed, "classifier": clf, "accuracy": a})
        for eps in args.epsilons:
            epsilon = None if eps == "inf" else float(eps)
            synthetic, info = run_one(real, DATASETS["sst2"] / "test.txt", epsilon, seed, per_label)
            for clf in args.classifiers:
                a, f = classifier_scores(real + synthetic, test, chinese=False, seed=seed, classifier=clf)
                runs.append({"id": f"{eps}|{seed}|{clf}", "epsilon": eps, "seed": seed, "classifier": clf, "accuracy": a,
                             "synthetic": len(synthetic), **info})
                print(f"seed {seed} epsilon {eps} {clf}: acc {a:.2f}, spent {info['epsilon_spent']:.2f}, "
                      f"{info['train_tokens_per_sec']:.0f} tok/s, canaries {info['canaries']}", flush=True)
            merged = merge_rows("dp_synth", runs, "id")
            save("dp_synth", {**_previous(), "protocol": __doc__.split("\n\n")[1], "rows": merged,
                              "summary": summarize(merged)})
    summary = summarize(merge_rows("dp_synth", [], "id"))
    print_table(summary, ["classifier", "epsilon", "seeds", "accuracy", "gain", "gain_ci95", "epsilon_spent", "mia_auc",
                          "exposure_1", "exposure_10", "exposure_100", "leaked_100", "extracted", "canaries_in_output",
                          "train_tokens_per_sec"])


def summarize(runs: list[dict]) -> list[dict]:
    by: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for r in runs:
        by[r["classifier"], r["epsilon"]][r["seed"]] = r
    out = []
    for (clf, eps), seeds in sorted(by.items()):
        real = by[clf, "real"]
        common = sorted(s for s in seeds if s in real)
        row = {"classifier": clf, "epsilon": eps, "seeds": len(common),
               "accuracy": float(np.mean([seeds[s]["accuracy"] for s in common]))}
        gain = mean_ci([seeds[s]["accuracy"] - real[s]["accuracy"] for s in common])
        row.update(gain=gain["mean"], gain_ci95=gain["ci95"])
        if eps != "real":
            rs = [seeds[s] for s in common]
            row.update(epsilon_spent=float(np.median([r["epsilon_spent"] for r in rs])),
                       mia_auc=float(np.median([r["mia_auc"] for r in rs])),
                       canaries_in_output=int(sum(r["canaries_in_output"] for r in rs)),
                       extracted=int(sum(c["extracted"] for r in rs for c in r["canaries"])),
                       train_tokens_per_sec=float(np.median([r["train_tokens_per_sec"] for r in rs])))
            for k in (1, 10, 100):
                mine = [c for r in rs for c in r["canaries"] if c["repeats"] == k]
                row[f"exposure_{k}"] = float(np.median([c["exposure"] for c in mine]))
                row[f"leaked_{k}"] = f"{sum(c['leaked'] for c in mine)}/{len(mine)}"
        out.append(row)
    return out


if __name__ == "__main__":
    main()
