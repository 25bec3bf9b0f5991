"""Fine-tuning SmolLM2-135M on a CPU: textmill's trainer (full and LoRA, fp32 and bf16 autocast)
against transformers' `Trainer` (full, and LoRA through peft when it is installed: `pip install
peft==0.21.2`; textmill does not depend on it) on the same model, rows, batch and precision; LoRA
adapts every attention and MLP projection at rank 8, alpha 16 in both (textmill's fused q/k/v and
gate/up projections take one adapter each, peft's separate ones one each).

Each configuration runs in a process of its own, so its peak resident memory is its own: `--steps`
optimizer steps of `--batch` windows of `--context` tokens of the embedded Shakespeare. Training
tokens per second are those of the steps after the first `--warmup` (the steady state of a longer
run; the first steps allocate, and build oneDNN's kernels), timed from each engine's end-of-step
event: textmill's step callback, a `TrainerCallback.on_step_end` for transformers. textmill's trainer
keeps freed memory in the process (train/memory.py); `Trainer` runs as it comes, and once more with
the same glibc settings given as environment variables (the "glibc tuned" rows), so the table shows
what that setting is worth on its own. Run with `--repeats` > 1 to report medians
(of tokens/s, and of the ratios, each taken within one repeat).

    python benchmarks/pretrained_finetune.py [--steps 12] [--warmup 2] [--batch 4] [--context 128] [--repeats 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, save  # noqa: E402

SOURCE = "embedded:smollm2-135m-instruct"
TUNED = "transformers (glibc tuned)"
CONFIGS = [(engine, method, precision) for method in ("full", "lora") for precision in ("fp32", "bf16")
           for engine in ("textmill", "transformers", TUNED)]
GLIBC_KEEP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}  # what train/memory.py sets
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def windows(tokenizer, context: int, n: int) -> list[list[int]]:
    from textmill.data.embedded import embedded_documents

    text = "\n".join(embedded_documents("shakespeare")[:3])
    ids = tokenizer.encode(text)
    return [ids[i * (context + 1):(i + 1) * (context + 1)] for i in range(n)]


def steady_tokens_per_s(step_ends: list[float], args: argparse.Namespace) -> float:
    """Tokens per second over the steps after the first `args.warmup`."""
    if len(step_ends) != args.steps or args.steps <= args.warmup:
        raise SystemExit(f"timed {len(step_ends)} of {args.steps} steps; --steps must exceed --warmup ({args.warmup})")
    return (args.steps - args.warmup) * args.batch * args.context / (step_ends[-1] - step_ends[args.warmup - 1])


def run_textmill(base: Path, kind: str, precision: str, args: argparse.Namespace, work: Path) -> float:
    import textmill
    from textmill.rundir import read_run_config

    data = work / "rows.txt"
    gen = textmill.load(base)
    rows = windows(gen.tokenizer, args.context, max(args.batch * (args.steps + 2), 100))  # 10% validation: 10 windows at least
    data.write_text("\n".join(gen.tokenizer.decode(r).replace("\n", " ") for r in rows), encoding="utf-8")
    model = {**read_run_config(base).model.model_dump(), "context": args.context}
    train = {"init_from": str(base), "max_steps": args.steps, "batch_size": args.batch, "lr": 1e-4, "warmup_steps": 0,
             "eval_every": 10**6, "eval_batches": 1, "precision": precision, "log_every": 1}
    if kind == "lora":
        train["lora"] = {"rank": 8, "alpha": 16}
    step_ends: list[float] = []
    textmill.train({"model": model, "data": {"source": str(data), "format": "lines"}, "train": train}, work / "run",
                   progress=False, callback=lambda e: step_ends.append(time.perf_counter()) if e["kind"] == "step" else None)
    return steady_tokens_per_s(step_ends, args)


def run_transformers(base: Path, kind: str, precision: str, args: argparse.Namespace, work: Path) -> float:
    import torch
    import transformers

    import textmill
    from textmill.exchange.hf import export_hf

    # transformers' Trainer refuses a model loaded from GGUF ("purely quantized"): the same weights,
    # exported from the textmill run as a float32 Llama directory, load as a plain model
    model = transformers.AutoModelForCausalLM.from_pretrained(export_hf(base, work / "llama"), dtype=torch.float32)
    if kind == "lora":
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_MODULES))
    rows = windows(textmill.load(base).tokenizer, args.context, args.batch * args.steps)

    class Windows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(rows)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            ids = torch.tensor(rows[i][:args.context])
            return {"input_ids": ids, "labels": ids}

    targs = transformers.TrainingArguments(output_dir=str(work / "hf"), per_device_train_batch_size=args.batch,
                                           max_steps=args.steps, learning_rate=1e-4, use_cpu=True, bf16=precision == "bf16",
                                           report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True,
                                           dataloader_num_workers=0)
    step_ends: list[float] = []

    class StepTimes(transformers.TrainerCallback):
        def on_step_end(self, *_args, **_kwargs) -> None:
            step_ends.append(time.perf_counter())

    trainer = transformers.Trainer(model=model, args=targs, train_dataset=Windows(), callbacks=[StepTimes()])
    trainer.train()
    return steady_tokens_per_s(step_ends, args)


def one(args: argparse.Namespace) -> None:
    """One configuration, in this process: prints its JSON row."""
    engine, kind, precision = args.one.split("/")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = Path(args.base)
        tps = (run_textmill(base, kind, precision, args, work) if engine == "textmill"
               else run_transformers(base, kind, precision, args, work))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"engine": engine, "method": kind, "precision": precision, "tokens_per_s": tps, "peak_rss_gb": peak_gb}))


def summarise(results: dict[tuple[str, str, str], list[dict]]) -> list[dict]:
    """One row per configuration: median tokens/s and memory, and the median over repeats of its ratio
    to each transformers setting with the same method (full where peft is absent) and precision, each
    ratio taken within one repeat (the configurations of a repeat run back to back)."""
    rows = []
    for (engine, method, precision), runs in results.items():
        row = {"engine": engine, "method": method, "precision": precision,
               "tokens/s": statistics.median(r["tokens_per_s"] for r in runs),
               "peak memory GB": statistics.median(r["peak_rss_gb"] for r in runs)}
        for ref_engine, column in (("transformers", "vs transformers"), (TUNED, "vs glibc tuned")):
            ref = next(c for m in (method, "full") for c in results if c == (ref_engine, m, precision))
            ratios = [mine["tokens_per_s"] / theirs["tokens_per_s"] for mine, theirs in zip(runs, results[ref])]
            row[column], row[f"{column} range"] = statistics.median(ratios), f"{min(ratios):.2f}-{max(ratios):.2f}"
            row["against"] = ref[1]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return one(args)
    import textmill

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "smollm2"
        started = time.perf_counter()
        textmill.exchange.hf.import_run(SOURCE, base)
        import_s = time.perf_counter() - started
        configs = [c for c in CONFIGS if c[0] == "textmill" or c[1] != "lora" or importlib.util.find_spec("peft")]
        results: dict[tuple[str, str, str], list[dict]] = {c: [] for c in configs}
        for _ in range(args.repeats):
            for c in configs:
                cmd = [sys.executable, __file__, "--one", "/".join(c), "--base", str(base), "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--batch", str(args.batch), "--context", str(args.context)]
                env = {**os.environ, **(GLIBC_KEEP if c[0] == TUNED else {})}
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
                results[c].append(json.loads(out))
                print(out, flush=True)
    rows = summarise(results)
    print(f"\nimport of {SOURCE} into a textmill run: {import_s:.1f} s; {args.steps} steps of {args.batch} x {args.context} "
          f"tokens, timed after the first {args.warmup}")
    print_table(rows, ["engine", "method", "precision", "tokens/s", "vs transformers", "vs transformers range",
                       "vs glibc tuned", "vs glibc tuned range", "against", "peak memory GB"])
    save("pretrained_finetune", {"source": SOURCE, "steps": args.steps, "warmup": args.warmup, "batch": args.batch,
                                 "context": args.context, "repeats": args.repeats, "import_s": import_s, "rows": rows,
                                 "runs": [{"engine": c[0], "method": c[1], "precision": c[2], "runs": runs}
                                          for c, runs in results.items()]})


if __name__ == "__main__":
    main()
