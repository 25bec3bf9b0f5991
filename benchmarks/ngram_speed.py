"""n-gram models: fitting time and memory, scoring speed, and perplexities.

- Fit a word trigram (modified Kneser-Ney) on the embedded Shakespeare plays (about 1.2M word
  tokens): wall time of counting + estimation, and the process's peak resident memory.
- Score the same 1.2M tokens with `score_stream` (tokens/s).
- Perplexity of the configs in configs/ngram/ on Tiny Shakespeare (validation split) and of the
  Multi30k English trigram on val and test_2016_flickr, per token and in bits per character.

    python benchmarks/ngram_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.config import DataConfig, TokenizerConfig, load_config  # noqa: E402
from textmill.data import embedded_documents, encode_stream, read_documents, split_documents  # noqa: E402
from textmill.evaluation import likelihood  # noqa: E402
from textmill.models import NGramConfig, NGramLM  # noqa: E402
from textmill.tokenizers import build_tokenizer  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "ngram"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    docs = embedded_documents("shakespeare")
    tok = build_tokenizer(TokenizerConfig(kind="word", vocab_size=100_000), docs)
    stream = encode_stream(tok, docs)
    rss_before = peak_rss_mb()
    fits, scores = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        model = NGramLM(NGramConfig(order=3), tok.vocab_size).fit(stream)
        fits.append(time.perf_counter() - t)
        t = time.perf_counter()
        lp = model.score_stream(stream)
        scores.append(time.perf_counter() - t)
    speed = {"tokens": int(len(stream)), "vocabulary": tok.vocab_size,
             "ngrams": [len(model.tables[f"keys_{k}"]) for k in (1, 2, 3)],
             "fit_s": statistics.median(fits), "score_tokens_per_s": len(lp) / statistics.median(scores),
             "peak_rss_mb": peak_rss_mb(), "peak_rss_before_fit_mb": rss_before}
    print(f"word trigram on {len(stream):,} tokens (vocabulary {tok.vocab_size:,}): fit {speed['fit_s']:.2f} s, "
          f"scoring {speed['score_tokens_per_s']:,.0f} tokens/s, peak RSS {speed['peak_rss_mb']:.0f} MB "
          f"({rss_before:.0f} MB before fitting)\n")

    rows = []
    tmp = Path(tempfile.mkdtemp())
    if (SHARED_DATA / "tinyshakespeare").is_dir():
        for name in ("shakespeare_char5", "shakespeare_word3"):
            cfg = load_config(CONFIGS / f"{name}.yaml")
            res = textmill.train(cfg, tmp / name)
            val = split_documents(read_documents(cfg.data), cfg.data.val_fraction, cfg.data.split_seed)[1]
            lk = likelihood(textmill.load(tmp / name), val)
            rows.append({"model": name, "eval data": "Tiny Shakespeare, last 10%", "perplexity (per token)": lk["perplexity"],
                         "bits/char": lk["bits_per_char"], "fit s": res.elapsed_s, "oov rate": lk["oov_rate"]})
    if (SHARED_DATA / "multi30k").is_dir():
        res = textmill.train(CONFIGS / "multi30k_en_word3.yaml", tmp / "m30k")
        gen = textmill.load(tmp / "m30k")
        for split in ("val", "test_2016_flickr"):
            docs = read_documents(DataConfig(source=str(SHARED_DATA / "multi30k" / f"{split}.en"), format="lines"))
            lk = likelihood(gen, docs)
            rows.append({"model": "multi30k_en_word3", "eval data": f"Multi30k {split}.en", "perplexity (per token)": lk["perplexity"],
                         "bits/char": lk["bits_per_char"], "fit s": res.elapsed_s, "oov rate": lk["oov_rate"]})
    shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, ["model", "eval data", "perplexity (per token)", "bits/char", "oov rate", "fit s"])
    save("ngram_speed", {"speed": speed, "perplexity": rows})


if __name__ == "__main__":
    main()
