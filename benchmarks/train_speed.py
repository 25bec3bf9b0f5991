"""Training throughput of the baby GPT on Tiny Shakespeare: tokens/s, model FLOP/s and MFU.

MFU is measured against the fp32 matmul peak measured in the same run. Each variant (eager or
torch.compile, fp32 or bf16 autocast) runs through the real trainer for `--steps` steps, `--rounds`
times interleaved; the table reports medians. `--quality` then trains the full 2000-step config
with the fastest variant and reports the validation loss (target <= 1.85).

    python benchmarks/train_speed.py [--steps 200] [--rounds 3] [--quality]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, matmul_peak_gflops, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.config import load_config  # noqa: E402
from textmill.models import build_model  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "gpt" / "shakespeare_char.yaml"
VARIANTS = {
    "fp32 eager": [],
    "fp32 compile": ["train.compile=true"],
    "bf16 eager": ["train.precision=bf16"],
    "bf16 compile": ["train.precision=bf16", "train.compile=true"],
}


def run(overrides: list[str], steps: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    res = textmill.train(CONFIG, out, overrides=[*overrides, f"train.max_steps={steps}", "train.eval_every=1000000",
                                                  "train.log_every=20"])
    windows = [e["tokens_per_sec"] for e in res.history if e["kind"] == "train"][2:]  # skip warm-up/compilation
    return {"tokens_per_sec": statistics.median(windows), "val_loss": res.val_loss, "elapsed_s": res.elapsed_s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quality", action="store_true", help="also train the full config with the fastest variant")
    args = ap.parse_args()
    if not (SHARED_DATA / "tinyshakespeare").is_dir():
        sys.exit(f"needs {SHARED_DATA / 'tinyshakespeare'}")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(torch.get_num_threads())
    cfg = load_config(CONFIG)
    model = build_model(cfg.model, 65)
    flops_per_token = model.flops_per_token()
    tmp = Path(tempfile.mkdtemp())
    samples: dict[str, list[float]] = {k: [] for k in VARIANTS}
    peaks = []
    for r in range(args.rounds):
        peaks.append(matmul_peak_gflops())
        for name, overrides in VARIANTS.items():
            samples[name].append(run(overrides, args.steps, tmp / "run")["tokens_per_sec"])
            print(f"round {r + 1}: {name}: {samples[name][-1]:,.0f} tokens/s", flush=True)
    peak = statistics.median(peaks)
    rows = []
    for name, tps in samples.items():
        tps_med = statistics.median(tps)
        flops = tps_med * flops_per_token / 1e9
        rows.append({"variant": name, "tokens/s": tps_med, "model GFLOP/s": flops, "MFU (fp32 peak)": flops / peak,
                     "runs": ", ".join(f"{t:,.0f}" for t in tps)})
    print(f"\nbaby GPT ({cfg.model.n_layer}L {cfg.model.n_head}H {cfg.model.n_embd}d, context {cfg.model.context}, "
          f"batch {cfg.train.batch_size}); {flops_per_token / 1e6:.2f} MFLOP/token; fp32 matmul peak {peak:.1f} GFLOP/s "
          f"(median of {len(peaks)})\n")
    print_table(rows, ["variant", "tokens/s", "model GFLOP/s", "MFU (fp32 peak)", "runs"])
    result = {"config": str(CONFIG.name), "steps_per_run": args.steps, "flops_per_token": flops_per_token,
              "fp32_matmul_peak_gflops": peak, "variants": rows}
    if args.quality:
        best = max(rows, key=lambda r: r["tokens/s"])["variant"]
        q = run(VARIANTS[best], cfg.train.max_steps, tmp / "quality")
        result["quality"] = {"variant": best, "steps": cfg.train.max_steps, **q}
        print(f"\nquality: {best}, {cfg.train.max_steps} steps: val loss {q['val_loss']:.4f} in {q['elapsed_s']:.0f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    save("train_speed", result)


if __name__ == "__main__":
    main()
