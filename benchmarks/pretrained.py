"""Pretrained models: generation speed of textmill against transformers' `generate` on the embedded
SmolLM2-135M-Instruct (or `--source embedded:gemma3-270m`), and what textmill's faster weights cost in
agreement and perplexity.

transformers runs the float32 weights. textmill runs them in its own GPT (imported Llama or Gemma 3 weights) as
they are (float32, whose greedy text must equal transformers'), and with models/inference.py's
options: bf16 weights and compiled blocks (`quantize="bf16", compile=True`), and int4 weights and
compiled blocks (`quantize="int4", compile=True`). Each row generates exactly `--new-tokens` tokens
after a 32-token prompt (end of text suppressed), greedy and top-p sampling, at batch 1, 8 and 32;
the engines alternate within a repeat and the table holds medians of `--repeats`, so each ratio
comes from one run. The memory-bandwidth bound of batch 1 is the weights' bytes read once per token
over the measured copy bandwidth. Quality: the greedy tokens each variant shares with float32 before
the first difference, and bits per character on Tiny Shakespeare's validation split (the first
`--ppl-chars` characters; ../shared/data, else skipped).

    python benchmarks/pretrained.py [--new-tokens 128] [--repeats 3] [--batches 1 8 32] [--source embedded:gemma3-270m]

Results go to results/pretrained.json (SmolLM2) or results/pretrained_<name>.json (another source).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.evaluation.runner import likelihood  # noqa: E402

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


VARIANTS = {"float32": {}, "bf16 compiled": {"quantize": "bf16", "compile": True},
            "int4 compiled": {"quantize": "int4", "compile": True}}


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


def shared_tokens(gen, a: str, b: str) -> int:
    """How many tokens two continuations share before they differ (counted on their encodings)."""
    x, y = gen.tokenizer.encode(a), gen.tokenizer.encode(b)
    return next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--ppl-chars", type=int, default=20000)
    ap.add_argument("--source", default=SOURCE)
    args = ap.parse_args()

    gens, load_s = {}, {}
    for name, options in VARIANTS.items():
        t = time.perf_counter()
        gens[name] = textmill.load(args.source, **options)
        load_s[name] = time.perf_counter() - t
    wrapped = textmill.load(args.source, engine="transformers")
    exact = gens["float32"]
    prompt_ids = exact.tokenizer.encode(PROMPT, add_bos=True)[:32]  # as textmill encodes a prompt (Gemma: <bos> first)
    prompt = exact.tokenizer.decode(prompt_ids)
    assert exact.tokenizer.encode(prompt, add_bos=True) == prompt_ids, "the prompt must encode to the same 32 tokens"
    compile_s = {}
    for name, gen in gens.items():  # the first calls compile, one for a single prompt and one for a batch
        t = time.perf_counter()
        for batch in (1, 2):
            textmill_run(gen, [prompt] * batch, 4, False)
        compile_s[name] = time.perf_counter() - t
    weights_gb = sum(p.numel() * p.element_size() for p in {id(p): p for p in exact.model.parameters()}.values()) / 1e9
    bandwidth = copy_bandwidth_gbs()
    bound = bandwidth / weights_gb  # tokens/s at batch 1 if each token reads every weight once

    rows, agree = [], {}
    for batch in args.batches:
        ids = torch.tensor([prompt_ids] * batch)
        for sample in (False, True):
            speed: dict[str, list[float]] = {name: [] for name in ["transformers", *gens]}
            for _ in range(args.repeats):
                tps, ref = transformers_run(wrapped, ids, args.new_tokens, sample)
                speed["transformers"].append(tps)
                for name, gen in gens.items():
                    tps, out = textmill_run(gen, [prompt] * batch, args.new_tokens, sample)
                    speed[name].append(tps)
                    if not sample and batch == args.batches[0]:
                        agree[name] = {"greedy tokens shared with transformers float32": shared_tokens(gen, out[0], ref[0])}
            row = {"batch": batch, "decoding": "top-p 0.9" if sample else "greedy",
                   **{f"{name} tokens/s": statistics.median(v) for name, v in speed.items()}}
            best = max(gens, key=lambda n: row[f"{n} tokens/s"])
            row["fastest"] = best
            row["ratio"] = row[f"{best} tokens/s"] / row["transformers tokens/s"]
            rows.append(row)
            print(row, flush=True)

    data = SHARED_DATA / "tinyshakespeare" / "input.txt"
    if data.is_file():
        text = data.read_text(encoding="utf-8")
        val = text[int(len(text) * 0.9):][:args.ppl_chars]
        for name, gen in gens.items():
            agree[name]["val bits/char"] = likelihood(gen, [val])["bits_per_char"]
    quality = [{"weights": name, **agree[name], "load s": load_s[name], "first calls s": compile_s[name]} for name in gens]

    print(f"\n{args.source}: {weights_gb:.2f} GB of float32 weights; copy bandwidth {bandwidth:.1f} GB/s "
          f"-> float32 batch-1 bound {bound:.0f} tokens/s (bf16 {2 * bound:.0f}, int4 {8 * bound:.0f})")
    print_table(rows, ["batch", "decoding", "transformers tokens/s", *(f"{n} tokens/s" for n in gens), "fastest", "ratio"])
    print()
    print_table(quality, ["weights", "greedy tokens shared with transformers float32", "val bits/char", "load s",
                          "first calls s"])
    name = "pretrained" if args.source == SOURCE else "pretrained_" + args.source.removeprefix("embedded:")
    save(name, {"source": args.source, "new_tokens": args.new_tokens, "repeats": args.repeats, "prompt_tokens": 32,
                        "weights_gb": weights_gb, "copy_bandwidth_gbs": bandwidth, "batch1_bound_tokens_per_s": bound,
                        "ppl_chars": args.ppl_chars, "rows": rows, "quality": quality})


if __name__ == "__main__":
    main()
