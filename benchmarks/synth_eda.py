"""Does synthetic data help a classifier trained on little real data? The EDA protocol.

For each data set (EDA's SST-2 and TREC files) and seed: draw N stratified real training rows (or
`--per-class K` rows of each label), score a classifier trained on them on the full test set, then
let each generator add synthetic rows (`textmill.synthesize` with the test set as `eval_data`, so
nothing is held out of the N rows) and score the same classifier trained on real + synthetic. The
classifiers (`--classifiers`): `tfidf` (TF-IDF + logistic regression, the report's default), `cnn`
(Kim's sentence CNN with random embeddings, seeded like the draw: the kind of model the EDA paper
measured with) and `pretrained` (SmolLM2's mean hidden states + logistic regression: the strong
classifier, which augmentation is known to help least). Each generator adds `--aug` synthetic rows
for each real row of a label (`per_row`, the EDA paper's n_aug = 16 for N = 500), so the labels keep
their proportions. Rows measured before, when every label got the same count (`--aug` x N / labels
each: TREC's 8 abbreviation questions of a draw got 1,336 rows, a sixth of its training data), are
kept under the size `500 (equal labels)`. Rows:

- `eda (paper)`: EDA as the paper ran it: no filter beyond exact duplicates;
- `eda`, `ngram`, `lstm`, `gpt`, `cvae`: textmill's generators with textmill's default filters;
- `ngram (prefix 2)`: the n-gram generator continuing the first two words of a real sentence of the
  label (`generator_options={"prefix": 2}`); `ngram (prefix 2, T 0.7)` samples it at temperature 0.7,
  the best of T = 1, T = 0.7 and top-p 0.9 on training rows outside the draws (CNN, 2 draws per set);
  `ngram (prefix 2, pretrained filter)` and `ngram (prefix 2, T 0.7, pretrained filter)` judge label
  consistency with the pretrained-feature classifier instead of TF-IDF; `ngram (prefix 2, tuned,
  pretrained filter)` lets synth choose the temperature per draw (`tune=True`: T 0.7, T 1.0 or T 1.0
  with top-p 0.9, each writing a quarter of the rows) by the CNN's accuracy on 1,000 training rows
  outside the draw (`tune_data`), never the test set;
- `gpt (base_en)`: the base GPT of `benchmarks/pretrain_base.py` (run it first), pretrained on
  unlabelled Yelp, DailyDialog, COCO and BBC text, fine-tuned on the N rows (`gpt:runs/base_en/gpt`);
- `prompt`: no training: SmolLM2-135M-Instruct (bf16 weights, compiled) writes each row from a chat
  prompt holding 5 real rows of the label, drawn afresh per row; `prompt (described)` also says what
  each label means (`DESCRIPTIONS`, as a user would with `--describe`), and `prompt (described,
  pretrained filter)` judges label consistency with the pretrained-feature classifier instead of TF-IDF;
- `paraphrase`: no training: SmolLM2-135M-Instruct rewrites each real row in other words, 2 rewrites
  a row, which keep its label (run with `--aug 2` beside `eda` at `--aug 2`);
- `pretrained`: SmolLM2-135M-Instruct with LoRA adapters fine-tuned on the N rows (LAMBADA-style,
  `<label=X> text`), sampled after each label's token; `pretrained (described)` names each label's
  token by its description (`DESCRIPTIONS`), whose pretrained rows it starts from.
- `mix (ngram 8 : prompt 1, pretrained filter)`: both at once (`mix:ngram+prompt`): of every 9
  samples 8 come from `ngram (prefix 2, T 0.7)` and 1 from `prompt (described)`, shuffled together
  through one set of filters with the pretrained judge; run with `--aug 18` (16 + 2 per real row).
  `mix (..., eda below 20)` writes the rows of a label with fewer than 20 real rows (TREC's 8
  abbreviation questions) by EDA's edits instead (`eda_below=20`); every other label's rows are the mix's.
  `mix (..., eda below 20, fluency 90)` also removes every row whose per-token loss under SmolLM2 is
  above the 90th percentile of the draw's real rows' (`fluency_percentile=90`): word salad.
- `recipe (tuned)`: the default (`generator=recipe`, the mix above with `eda_below=20`) with `tune`:
  its shares, the judge's threshold and `eda_below` chosen by TF-IDF on a stratified quarter of the
  draw's own rows, from pools each part wrote once (synth/tune.py `choose_mix`); run with `--aug 18`.

A generator run with another `--aug` than 16 is named with it, e.g. `prompt (aug 2)`: its rows are
kept apart, and it is compared with real only as any other.

Rows scored by the classifier `cnn (padding-dependent)` were measured with the CNN before 83eaab4, which
let windows over padding into its max-pool, so a text's score depended on its batch mates; they are
kept for the record, and `cnn` rows are measured after the fix.

One CNN is a noisy instrument on 500 rows: five initialisations trained on the same 500 TREC rows
scored 75.4 to 80.8, so a gain paired by draw carries two fits' init noise. `--inits K` scores each
run with K initialisations of the CNN (seeds `seed`, `seed + 1000`, ...; the first is the single
`cnn` run's, reused when measured) and keeps their mean, as classifier `cnn (K inits)`.

Times are wall seconds per run for fitting, generating and filtering. Synthetic rows are kept under
`runs/bench_synth_eda/` and reused by later invocations (another classifier scores the same rows).
Runs accumulate in `results/synth_eda.json` across invocations, so one generator can run per invocation;
`--resume` skips the runs that file already holds (to finish an interrupted invocation):

    python benchmarks/synth_eda.py [--datasets sst2 trec] [--generators eda ngram] [--classifiers tfidf cnn] [--seeds 5] [--n 500]
    python benchmarks/synth_eda.py --classifiers cnn --resume
    python benchmarks/synth_eda.py --per-class 20
    python benchmarks/synth_eda.py --classifiers cnn --inits 3
    python benchmarks/synth_eda.py --seeds 3 & python benchmarks/synth_eda.py --from-seed 3 --seeds 5   # draws 0-2 and 3-4 at once
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, merge_rows, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.synth.classify import CLASSIFIERS  # noqa: E402
from textmill.synth.quality import classifier_scores, mean_ci  # noqa: E402
from textmill.synth.rows import load_rows  # noqa: E402

OUTSIDE = "OUTSIDE"  # tune_data: TUNE_ROWS training rows outside the draw (never the test set)
TUNE_ROWS = 1000
DATASETS = {"sst2": SHARED_DATA / "eda_sst2", "trec": SHARED_DATA / "eda_trec"}
PAPER_EDA = {"generator": "eda", "skip_filters": ["length", "charset", "training_copy", "near_duplicate", "label"]}
CACHE = Path(__file__).resolve().parents[1] / "runs" / "bench_synth_eda"
BASE = CACHE.parent / "base_en" / "gpt"
GENERATORS = {"eda (paper)": PAPER_EDA, "eda": {"generator": "eda"}, "ngram": {"generator": "ngram"},
              "ngram (prefix 2)": {"generator": "ngram", "generator_options": {"prefix": 2}},
              "ngram (prefix 2, T 0.7)": {"generator": "ngram", "generator_options": {"prefix": 2, "temperature": 0.7}},
              "lstm": {"generator": "lstm"}, "gpt": {"generator": "gpt"}, "cvae": {"generator": "cvae"},
              "gpt (base_en)": {"generator": f"gpt:{BASE}"},
              "prompt": {"generator": "prompt"},
              "paraphrase": {"generator": "paraphrase"},
              "prompt (described)": {"generator": "prompt", "generator_options": {"descriptions": "DESCRIPTIONS"}},
              "pretrained": {"generator": "pretrained"},
              "pretrained (described)": {"generator": "pretrained", "generator_options": {"descriptions": "DESCRIPTIONS"}},
              "prompt (described, pretrained filter)": {"generator": "prompt", "label_classifier": "pretrained",
                                                        "generator_options": {"descriptions": "DESCRIPTIONS"}},
              "ngram (prefix 2, pretrained filter)": {"generator": "ngram", "label_classifier": "pretrained",
                                                      "generator_options": {"prefix": 2}},
              "ngram (prefix 2, T 0.7, pretrained filter)": {"generator": "ngram", "label_classifier": "pretrained",
                                                             "generator_options": {"prefix": 2, "temperature": 0.7}},
              "mix (ngram 8 : prompt 1, pretrained filter)": {"generator": "mix:ngram+prompt", "label_classifier": "pretrained",
                                                              "generator_options": {"shares": {"ngram": 8, "prompt": 1},
                                                                                    "ngram": {"prefix": 2, "temperature": 0.7},
                                                                                    "descriptions": "DESCRIPTIONS"}},
              "mix (ngram 8 : prompt 1, pretrained filter, eda below 20)": {
                  "generator": "mix:ngram+prompt", "label_classifier": "pretrained", "eda_below": 20,
                  "generator_options": {"shares": {"ngram": 8, "prompt": 1}, "ngram": {"prefix": 2, "temperature": 0.7},
                                        "descriptions": "DESCRIPTIONS"}},
              "mix (ngram 8 : prompt 1, pretrained filter, eda below 20, fluency 90)": {
                  "generator": "mix:ngram+prompt", "label_classifier": "pretrained", "eda_below": 20, "fluency_percentile": 90,
                  "generator_options": {"shares": {"ngram": 8, "prompt": 1}, "ngram": {"prefix": 2, "temperature": 0.7},
                                        "descriptions": "DESCRIPTIONS"}},
              "recipe (tuned)": {"generator": "recipe", "tune": True, "generator_options": {"descriptions": "DESCRIPTIONS"}},
              "ngram (prefix 2, tuned, pretrained filter)": {"generator": "ngram", "label_classifier": "pretrained",
                                                             "generator_options": {"prefix": 2}, "tune": True,
                                                             "tune_data": OUTSIDE, "report_classifier": "cnn"}}
# What each label means, as a user would say it (SST-2: EDA's 0/1; TREC: the coarse classes of Li and Roth 2002)
DESCRIPTIONS = {"sst2": {"0": "negative movie reviews", "1": "positive movie reviews"},
                "trec": {"0": "questions asking for a description, a definition or a reason",
                         "1": "questions asking for an entity (an object, animal, colour, film, sport, ...)",
                         "2": "questions asking for an abbreviation or what one stands for",
                         "3": "questions asking for a person or a group of people",
                         "4": "questions asking for a location (a city, country, mountain, ...)",
                         "5": "questions asking for a number (a date, count, distance, price, ...)"}}


def draw(rows: list[tuple[str, str]], n: int | None, per_class: int | None, seed: int) -> list[tuple[str, str]]:
    """A stratified sample: `per_class` rows of each label, or `n` rows in the labels' proportions."""
    rng = np.random.default_rng(seed)
    labels = sorted({y for _, y in rows})
    chosen = []
    for label in labels:
        idx = [i for i, (_, y) in enumerate(rows) if y == label]
        k = per_class if per_class else max(1, round(n * len(idx) / len(rows)))
        chosen += list(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return [rows[i] for i in sorted(chosen)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="*", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--generators", nargs="*", choices=list(GENERATORS), default=list(GENERATORS))
    ap.add_argument("--classifiers", nargs="*", choices=CLASSIFIERS, default=["tfidf"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--from-seed", type=int, default=0, help="start at this draw (split a long run across processes)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--per-class", type=int, default=None)
    ap.add_argument("--aug", type=int, default=16, help="synthetic rows for each real row of a label")
    ap.add_argument("--inits", type=int, default=1, help="score with the mean of this many CNN initialisations")
    ap.add_argument("--resume", action="store_true", help="skip the runs results/synth_eda.json already holds")
    args = ap.parse_args()
    if "gpt (base_en)" in args.generators and not (BASE / "model.safetensors").is_file():
        ap.error(f"gpt (base_en) fine-tunes {BASE}: run benchmarks/pretrain_base.py first")
    logging.basicConfig(level=logging.WARNING)
    size = f"{args.per_class}/label" if args.per_class else str(args.n)
    if args.inits < 1:
        ap.error(f"--inits {args.inits}: give 1 or more CNN initialisations")
    earlier = {r["id"]: r for r in merge_rows("synth_eda", [], "id")}
    done = set(earlier) if args.resume else set()
    names = {clf: f"{clf} ({args.inits} inits)" if clf == "cnn" and args.inits > 1 else clf for clf in args.classifiers}
    runs = []
    for name in args.datasets:
        train_all = load_rows(str(DATASETS[name] / "train.txt"), "eda", 1, 0)
        test = load_rows(str(DATASETS[name] / "test.txt"), "eda", 1, 0)
        for seed in range(args.from_seed, args.seeds):
            real = draw(train_all, args.n, args.per_class, seed)
            drawn = set(real)
            outside = draw([r for r in train_all if r not in drawn], TUNE_ROWS, None, seed + 1000)
            for spec in ["real", *args.generators]:
                gen = spec if spec == "real" or args.aug == 16 else f"{spec} (aug {args.aug})"
                todo = {clf: run_id(name, size, gen, seed, names[clf]) for clf in args.classifiers}
                todo = {clf: id_ for clf, id_ in todo.items() if id_ not in done}
                if not todo:
                    continue
                synthetic, info = ([], {"seconds": 0.0}) if gen == "real" else \
                    generate(real, outside, name, size, gen, with_descriptions(GENERATORS[spec], name), seed, args.aug,
                             DATASETS[name] / "test.txt")
                for clf, id_ in todo.items():
                    inits = args.inits if clf == "cnn" else 1
                    single = earlier.get(run_id(name, size, gen, seed, "cnn")) if inits > 1 else None
                    scores = [(single["accuracy"], single["macro_f1"])] if single else []
                    for init in range(len(scores), inits):
                        scores.append(classifier_scores(real + synthetic, test, chinese=False, seed=seed + 1000 * init, classifier=clf))
                    a, f = np.mean(scores, axis=0).tolist()
                    runs.append({"id": id_, "dataset": name, "size": size, "generator": gen, "seed": seed,
                                 "classifier": names[clf], "accuracy": a, "macro_f1": f, "synthetic": len(synthetic), **info}
                                | ({"init_accuracies": [s[0] for s in scores]} if len(scores) > 1 else {}))
                    print(f"{name} N={size} seed {seed} {gen} {names[clf]}: acc {a:.2f}, {len(synthetic)} rows, "
                          f"{info['seconds']:.0f} s", flush=True)
                    write(runs)  # after every run: a crash or a kill keeps what was measured
    columns = ["dataset", "size", "classifier", "generator", "seeds", "accuracy", "ci95", "gain", "gain_ci95", "macro_f1",
               "synthetic", "seconds"]
    summary = summarize(merge_rows("synth_eda", [], "id"))
    print_table(summary, columns)
    print(f"\nThe target's view (gain over real only paired by seed; cnn avg: the mean of the two sets' CNN gains, "
          f"the target is +{TARGET} at N = 500):")
    print_table(headline(summary), ["size", "generator", "cnn", "seeds", *HEADLINE_COLUMNS, "seconds"])


def run_id(dataset: str, size: str, generator: str, seed: int, classifier: str) -> str:
    """A run's key in results/synth_eda.json (TF-IDF runs, the first measured, carry no classifier)."""
    return f"{dataset}|{size}|{generator}|{seed}" + ("" if classifier == "tfidf" else f"|{classifier}")


def with_descriptions(options: dict, dataset: str) -> dict:
    gen_options = options.get("generator_options", {})
    if gen_options.get("descriptions") != "DESCRIPTIONS":
        return options
    return {**options, "generator_options": {**gen_options, "descriptions": DESCRIPTIONS[dataset]}}


def generate(real: list[tuple[str, str]], outside: list[tuple[str, str]], name: str, size: str, gen: str, options: dict,
             seed: int, per_row: int, eval_data: Path) -> tuple[list[tuple[str, str]], dict]:
    """Synthetic rows of one generator for one draw, kept under runs/ so another classifier reuses them;
    a generator that tunes its sampling does so on `outside` (training rows outside the draw)."""
    stem = f"{name}_{size.replace('/', '-')}_{gen}_{seed}".replace(" ", "_")
    rows_file, info_file = CACHE / f"{stem}.jsonl", CACHE / f"{stem}.json"  # not with_suffix: "T 0.7" holds a dot
    if not info_file.exists():
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "real.txt"
            data.write_text("".join(f"{y}\t{t}\n" for t, y in real), encoding="utf-8")
            if options.get("tune_data") == OUTSIDE:
                tune = Path(tmp) / "tune.txt"
                tune.write_text("".join(f"{y}\t{t}\n" for t, y in outside), encoding="utf-8")
                options = {**options, "tune_data": str(tune)}
            started = time.perf_counter()
            res = textmill.synthesize(str(data), out=Path(tmp) / "synth.jsonl", eval_data=str(eval_data), per_row=per_row,
                                      seed=seed, overwrite=True, **options)
            seconds = time.perf_counter() - started
            CACHE.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(res.out, rows_file)
        info_file.write_text(json.dumps({"seconds": seconds, "removed": res.removed, "tuning": res.tuning}), encoding="utf-8")
    rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    return [(r["text"], r["label"]) for r in rows], json.loads(info_file.read_text(encoding="utf-8"))


def write(runs: list[dict]) -> None:
    merged = merge_rows("synth_eda", runs, "id")
    summary = summarize(merged)
    save("synth_eda", {"protocol": __doc__.split("\n\n")[1], "rows": merged, "summary": summary, "headline": headline(summary)})


TARGET = 3.0  # points over real only, averaged over SST-2 and TREC, with the CNN
HEADLINE_COLUMNS = ["cnn avg", "sst2 cnn", "trec cnn", "sst2 tfidf", "trec tfidf", "sst2 pretrained", "trec pretrained"]
HEADLINE_SIZES = ("500", "20/label")  # the protocol's two settings


def headline(summary: list[dict]) -> list[dict]:
    """One row per size, generator and CNN (one init, or the mean of several) measured on both sets: its gains
    beside each other, N = 500 first, best average first; seconds is the median cost of a draw over both sets."""
    gains: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for r in summary:
        if r["size"] in HEADLINE_SIZES and r["generator"] != "real":
            gains[r["size"], r["generator"]][f"{r['dataset']} {r['classifier']}"] = r
    out = []
    for (size, gen), g in gains.items():
        classifiers = {k.split(" ", 1)[1] for k in g}
        for cnn in sorted(c for c in classifiers if c == "cnn" or c.startswith("cnn (") and c.endswith(" inits)")):
            if f"sst2 {cnn}" not in g or f"trec {cnn}" not in g:
                continue
            sst2, trec = g[f"sst2 {cnn}"], g[f"trec {cnn}"]
            row = {"size": size, "generator": gen, "cnn": cnn, "seeds": min(sst2["seeds"], trec["seeds"]),
                   "cnn avg": (sst2["gain"] + trec["gain"]) / 2, "sst2 cnn": sst2["gain"], "trec cnn": trec["gain"],
                   "seconds": float(np.median([sst2["seconds"], trec["seconds"]]))}
            row |= {c: g[c]["gain"] for c in HEADLINE_COLUMNS[3:] if c in g}
            out.append(row)
    return sorted(out, key=lambda r: (HEADLINE_SIZES.index(r["size"]), -r["cnn avg"]))


def summarize(runs: list[dict]) -> list[dict]:
    """Mean over seeds per (dataset, size, generator); the gain over real-only is paired by seed."""
    groups: dict[tuple[str, str, str, str], dict[int, dict]] = defaultdict(dict)
    for r in runs:
        groups[r["dataset"], r["size"], r.get("classifier", "tfidf"), r["generator"]][r["seed"]] = r
    out = []
    for (dataset, size, clf, gen), by_seed in sorted(groups.items()):
        real = groups[dataset, size, clf, "real"]
        seeds = sorted(s for s in by_seed if s in real)
        acc = mean_ci([by_seed[s]["accuracy"] for s in seeds])
        gain = mean_ci([by_seed[s]["accuracy"] - real[s]["accuracy"] for s in seeds])
        out.append({"dataset": dataset, "size": size, "classifier": clf, "generator": gen, "seeds": len(seeds), "accuracy": acc["mean"],
                    "ci95": acc["ci95"], "gain": gain["mean"], "gain_ci95": gain["ci95"],
                    "macro_f1": float(np.mean([by_seed[s]["macro_f1"] for s in seeds])),
                    "synthetic": float(np.mean([by_seed[s]["synthetic"] for s in seeds])),
                    "seconds": float(np.median([by_seed[s]["seconds"] for s in seeds]))})
    return out


if __name__ == "__main__":
    main()
