"""Generation throughput: tokens/s at batch 1 and 32, with and without the KV cache.

"Without the cache" wraps the same model in a step interface that re-runs the full forward pass over
every token so far at each step (what a model without a cache must do). The first GPT has the baby
config's width (4 layers, 4 heads, 128 dims), the second nanoGPT's Shakespeare width (6 layers, 384
dims); both have a context of 512, so 256 new tokens after a 32-token prompt fit without sliding the
window. Greedy decoding, end-of-sequence suppressed so every row
generates exactly `--new-tokens` tokens. Medians of `--repeats` runs.

    python benchmarks/generate_speed.py [--new-tokens 256] [--repeats 3]
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

from textmill.decoding import Generator  # noqa: E402
from textmill.models import GPTConfig, RNNConfig, build_model  # noqa: E402
from textmill.tokenizers import CharTokenizer  # noqa: E402


class Recompute:
    """The step interface with no cache: each step runs `forward` over the whole sequence again."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.max_context = model.max_context

    def start(self, cond):
        return torch.empty(cond.batch_size, 0, dtype=torch.long)

    def step(self, tokens, state, mask=None):
        seq = torch.cat([state, tokens], 1)
        window = seq if self.max_context is None else seq[:, -self.max_context:]
        return self.model(window)[:, -1], seq

    def reorder(self, state, index):
        return state.index_select(0, index)

    def parameters(self):
        return self.model.parameters()

    def eval(self):
        self.model.eval()
        return self


def timed(gen: Generator, batch: int, new_tokens: int, repeats: int) -> float:
    prompts = ["To be, or not to be, that is the"] * batch  # 32 characters
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        gen.generate(prompts, strategy="greedy", max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        times.append(time.perf_counter() - t)
    return batch * new_tokens / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tok = CharTokenizer().train(["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.;:!?'\n-"])
    torch.manual_seed(0)
    models = {  # name -> (model, batch sizes)
        "gpt (4L 128d, context 512)": (GPTConfig(n_layer=4, n_head=4, n_embd=128, context=512), (1, 32)),
        "gpt (6L 384d, context 512)": (GPTConfig(n_layer=6, n_head=6, n_embd=384, context=512), (1,)),
        "lstm (2L 256h)": (RNNConfig(cell="lstm", n_layer=2, n_embd=128, hidden=256), (1, 32)),
    }
    rows = []
    with torch.inference_mode():
        for name, (cfg, batches) in models.items():
            model = build_model(cfg, tok.vocab_size).eval()
            for batch in batches:
                cached = timed(Generator(model, tok), batch, args.new_tokens, args.repeats)
                uncached = timed(Generator(Recompute(model), tok), batch, args.new_tokens, args.repeats)
                rows.append({"model": name, "batch": batch, "cache tokens/s": cached, "no-cache tokens/s": uncached,
                             "speed-up": cached / uncached})
                print(rows[-1], flush=True)
    print(f"\n{args.new_tokens} new tokens after a 32-token prompt, greedy, median of {args.repeats}\n")
    print_table(rows, ["model", "batch", "cache tokens/s", "no-cache tokens/s", "speed-up"])
    save("generate_speed", {"new_tokens": args.new_tokens, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
