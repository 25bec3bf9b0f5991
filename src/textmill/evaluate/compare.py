"""`textmill compare`: train several configs for the same wall-clock budget on the same data.

The leaderboard ranks by validation bits per character, which is comparable across tokenizers
(perplexity is per token and is not)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from ..rundir import atomic_write_text, load
from ..train import train
from .metrics import perplexity


def compare(configs: list[str | Path], minutes: float, out_dir: str | Path, *, data: str | None = None,
            overrides: list[str] | None = None, sample_tokens: int = 200, seed: int = 0,
            callback: Callable[[str, dict[str, Any]], None] | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Train each config for `minutes`; return leaderboard rows sorted by validation bits per char.

    Writes `leaderboard.json` and `leaderboard.md` in `out_dir`, and one run directory per config.
    `callback(name, event)` receives each run's trainer events; `progress` draws a bar per run."""
    if not configs:
        raise ConfigError("compare needs at least one config")
    extra = [*(overrides or []), f"train.max_minutes={minutes}", "train.max_steps=1000000000"]
    if data:
        extra.append(f"data.source={data}")
    cfgs = [(Path(c).stem, load_config(c, extra)) for c in configs]
    names = [n for n, _ in cfgs]
    if len(set(names)) != len(names):
        raise ConfigError(f"config file names must be distinct to name the runs: {names}")
    if len({c.data.model_dump_json() for _, c in cfgs}) > 1:
        raise ConfigError("the configs read different data; pass --data PATH to train them all on the same corpus")
    out_dir = Path(out_dir)
    rows = []
    for name, cfg in cfgs:
        run_dir = out_dir / name
        res = train(cfg, run_dir, overwrite=True, callback=(lambda e, n=name: callback(n, e)) if callback else None,
                    progress=progress)
        sample = load(run_dir).generate("", max_new_tokens=sample_tokens, temperature=0.8, seed=seed)
        rows.append({"name": name, "family": cfg.model.family + (f"/{cfg.model.cell}" if cfg.model.family == "rnn" else ""),
                     "tokenizer": cfg.tokenizer.kind, "parameters": res.parameters, "steps": res.steps,
                     "val_bpc": res.val_bpc, "val_loss": res.val_loss, "val_ppl": perplexity(res.val_loss),
                     "tokens_per_sec": res.tokens_per_sec, "minutes": res.elapsed_s / 60, "sample": sample,
                     "run_dir": str(run_dir)})
    rows.sort(key=lambda r: r["val_bpc"])
    atomic_write_text(out_dir / "leaderboard.json", json.dumps(rows, indent=2, ensure_ascii=False))
    atomic_write_text(out_dir / "leaderboard.md", markdown_table(rows))
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | family | params | steps | val bpc | val loss (token ppl) | tokens/s | sample |\n"
            "|---|---|---:|---:|---:|---:|---:|---|\n")
    body = "".join(
        f"| {r['name']} | {r['family']} | {r['parameters'] / 1e6:.2f}M | {r['steps']} | {r['val_bpc']:.3f} | "
        f"{r['val_loss']:.3f} ({r['val_ppl']:.2f}) | {r['tokens_per_sec']:,.0f} | "
        f"`{re.sub(r'[|`]', ' ', ' '.join(r['sample'].split()))[:60]}` |\n"
        for r in rows)
    return head + body
