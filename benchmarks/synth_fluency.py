"""How fluent are each generator's rows? The synth report's fluency measure on the EDA protocol's rows.

For every generator whose rows `benchmarks/synth_eda.py` kept for a draw (`runs/bench_synth_eda/`),
the median per-token loss under SmolLM2 of a seeded sample of its rows against the same of the
draw's real rows (`textmill.synth.quality.fluency`, 200 of each by default), and of each part of a mix.
Issue 40's bar: the default recipe's rows at most 0.3 nats above the real rows.

    python benchmarks/synth_fluency.py [--dataset sst2] [--seed 0] [--rows 200]
"""

from __future__ import annotations

import argparse
import json

from common import merge_rows, print_table, save
from synth_eda import CACHE, DATASETS, draw

from textmill.synth.quality import fluency
from textmill.synth.rows import load_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=list(DATASETS), default="sst2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rows", type=int, default=200)
    args = ap.parse_args()
    real = draw(load_rows(str(DATASETS[args.dataset] / "train.txt"), "eda", 1, 0), args.n, None, args.seed)
    prefix, suffix = f"{args.dataset}_{args.n}_", f"_{args.seed}.jsonl"
    rows = []
    for path in sorted(CACHE.glob(f"{prefix}*{suffix}")):
        generator = path.name[len(prefix):-len(suffix)].replace("_", " ")
        synthetic = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        f = fluency(real, [(r["text"], r["label"], r.get("generator", generator)) for r in synthetic], chinese=False, rows=args.rows,
                    seed=args.seed)
        rows.append({"id": f"{args.dataset}|{args.n}|{generator}|{args.seed}", "dataset": args.dataset, "draw": args.seed,
                     "generator": generator, "real": f["real"], "synthetic": f["synthetic"], "gap": f["gap"],
                     "by_generator": f["by_generator"], "rows": f["rows"]})
        print_table(rows[-1:], ["generator", "real", "synthetic", "gap", "by_generator"])
    save("synth_fluency", {"model": "embedded:smollm2-135m-instruct", "rows": merge_rows("synth_fluency", rows, "id")})
    print()
    print_table(rows, ["generator", "real", "synthetic", "gap", "by_generator"])


if __name__ == "__main__":
    main()
