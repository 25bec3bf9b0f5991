"""Pretrained models: generation speed of textmill against transformers' `generate` on identical
weights (the embedded SmolLM2-135M-Instruct, float32), and whether their greedy outputs agree.
textmill runs SmolLM2 in its own GPT (imported Llama weights, the default engine) and, for
comparison, its decoding loop over transformers' model (`engine="transformers"`).

Each row generates exactly `--new-tokens` tokens after a 32-token prompt (end of text suppressed in
both), greedy and top-p sampling, at batch 1, 8 and 32; the two engines alternate within a repeat
and the table holds medians of `--repeats`, so each ratio comes from one run. The memory-bandwidth
bound of batch 1 is the weights' bytes read once per token over the measured copy bandwidth.

    python benchmarks/pretrained.py [--new-tokens 128] [--repeats 3] [--batches 1 8 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, save  # noqa: E402

import textmill  # noqa: E402

PROMPT = ("The old lighthouse keeper climbed the spiral stairs every evening, carrying a lamp and a notebook in "
          "which he wrote down the ships he saw, the weather, and the colour of the sea at dusk.")
SOURCE = "embedded:smollm2-135m-instruct"


def copy_bandwidth_gbs(mb: int = 512, repeats: int = 5) -> float:
    """Best GB/s of copying a large float32 tensor (bytes read + bytes written)."""
    a = torch.empty(mb * 2**20 // 4)
    b = torch.empty_like(a)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        b.copy_(a)
        best = max(best, 2 * a.numel() * 4 / (time.perf_counter() - t) / 1e9)
    return best


def textmill_run(gen, prompts: list[str], new: int, sample: bool) -> tuple[float, list[str]]:
    opts = {"max_new_tokens": new, "min_new_tokens": new}
    opts.update({"top_p": 0.9, "seed": 0} if sample else {"strategy": "greedy"})
    t = time.perf_counter()
    texts = gen.generate(prompts, **opts)
    return len(prompts) * new / (time.perf_counter() - t), texts


def transformers_run(gen, ids: torch.Tensor, new: int, sample: bool) -> tuple[float, list[str]]:
    """transformers' own `generate` on the model behind `gen` (a transformers-engine generator)."""
    suppress = sorted({gen.tokenizer.pad_id, gen.tokenizer.bos_id} - {gen.tokenizer.eos_id})  # as textmill does
    t = time.perf_counter()
    with torch.no_grad():
        out = gen.model.hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                    do_sample=sample, top_p=0.9 if sample else None, top_k=None, temperature=None,
                                    suppress_tokens=suppress, pad_token_id=gen.tokenizer.pad_id)
    tps = ids.shape[0] * new / (time.perf_counter() - t)
    return tps, [gen.tokenizer.decode_continuation(ids[0].tolist(), row[ids.shape[1]:].tolist()) for row in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    args = ap.parse_args()

    t = time.perf_counter()
    gen = textmill.load(SOURCE)  # textmill's GPT
    load_s = time.perf_counter() - t
    wrapped = textmill.load(SOURCE, engine="transformers")
    prompt_ids = gen.tokenizer.encode(PROMPT)[:32]
    prompt = gen.tokenizer.decode(prompt_ids)
    assert gen.tokenizer.encode(prompt, add_bos=True) == prompt_ids, "the prompt must encode to the same 32 tokens"
    weights_gb = sum(p.numel() * p.element_size() for p in {id(p): p for p in gen.model.parameters()}.values()) / 1e9
    bandwidth = copy_bandwidth_gbs()
    bound = bandwidth / weights_gb  # tokens/s at batch 1 if each token reads every weight once

    rows = []
    for batch in args.batches:
        ids = torch.tensor([prompt_ids] * batch)
        for sample in (False, True):
            ours, loop, theirs, agree = [], [], [], None
            for _ in range(args.repeats):
                tps, texts = textmill_run(gen, [prompt] * batch, args.new_tokens, sample)
                ours.append(tps)
                loop.append(textmill_run(wrapped, [prompt] * batch, args.new_tokens, sample)[0])
                tps, ref = transformers_run(wrapped, ids, args.new_tokens, sample)
                theirs.append(tps)
                if not sample:
                    agree = texts[0] == ref[0]
            row = {"batch": batch, "decoding": "top-p 0.9" if sample else "greedy",
                   "textmill tokens/s": statistics.median(ours), "textmill loop on transformers tokens/s": statistics.median(loop),
                   "transformers tokens/s": statistics.median(theirs)}
            row["ratio"] = row["textmill tokens/s"] / row["transformers tokens/s"]
            row["greedy text identical"] = agree
            rows.append(row)
            print(row, flush=True)
    print(f"\nSmolLM2-135M-Instruct, float32: {weights_gb:.2f} GB of weights, load {load_s:.1f} s; "
          f"copy bandwidth {bandwidth:.1f} GB/s -> batch-1 bound {bound:.0f} tokens/s")
    print_table(rows, ["batch", "decoding", "textmill tokens/s", "textmill loop on transformers tokens/s", "transformers tokens/s",
                       "ratio", "greedy text identical"])
    save("pretrained", {"source": SOURCE, "new_tokens": args.new_tokens, "repeats": args.repeats, "prompt_tokens": 32,
                        "weights_gb": weights_gb, "load_s": load_s, "copy_bandwidth_gbs": bandwidth,
                        "batch1_bound_tokens_per_s": bound, "rows": rows})


if __name__ == "__main__":
    main()
