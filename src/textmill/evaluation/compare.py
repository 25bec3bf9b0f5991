"""`textmill compare`: train several configs for the same wall-clock budget on the same data, and score
pretrained models (or runs trained before) beside them, zero-shot, on the same validation documents.

The leaderboard ranks by validation bits per character, which is comparable across tokenizers
(perplexity is per token and is not). Every row is scored the same way, by `eval`'s likelihood over
the whole validation split of the configs' data (or of `--data`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import DataConfig, load_config
from ..data.prepare import is_labelled, lm_documents
from ..errors import ConfigError
from ..files import atomic_write_text
from ..loading import load
from ..models import count_parameters
from ..models.hf import is_pretrained_source
from ..training import train
from .metrics import perplexity
from .runner import likelihood


def is_model(item: str | Path) -> bool:
    """Whether a compare item is a model to score (a pretrained source or a run directory), not a config."""
    return is_pretrained_source(item) or (Path(item).is_dir() and (Path(item) / "config.json").is_file())


def compare(items: list[str | Path], minutes: float, out_dir: str | Path, *, data: str | None = None,
            overrides: list[str] | None = None, sample_tokens: int = 200, seed: int = 0,
            callback: Callable[[str, dict[str, Any]], None] | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Train each config of `items` for `minutes` and score each model of `items` (a pretrained source
    or a run directory, as it is); return leaderboard rows sorted by validation bits per char.

    Writes `leaderboard.json` and `leaderboard.md` in `out_dir`, and one run directory per config.
    `callback(name, event)` receives each run's trainer events; `progress` draws a bar per run."""
    if not items:
        raise ConfigError("compare needs at least one config or model")
    models = [str(i) for i in items if is_model(i)]
    configs = [i for i in items if not is_model(i)]
    extra = [*(overrides or []), f"train.max_minutes={minutes}", "train.max_steps=1000000000"]
    if data:
        extra.append(f"data.source={data}")
    cfgs = [(Path(c).stem, load_config(c, extra)) for c in configs]
    names = [n for n, _ in cfgs]
    if len(set(names)) != len(names):
        raise ConfigError(f"config file names must be distinct to name the runs: {names}")
    if len({c.data.model_dump_json() for _, c in cfgs}) > 1:
        raise ConfigError("the configs read different data; pass --data PATH to train them all on the same corpus")
    if not cfgs and not data:
        raise ConfigError("models alone need --data: the corpus whose validation split scores them")
    data_cfg = cfgs[0][1].data if cfgs else DataConfig(source=data)
    if models and is_labelled(data_cfg):
        raise ConfigError("pretrained models and runs are scored on unlabelled text; drop data.label_field to compare them")
    val_docs = lm_documents(data_cfg)[1]
    out_dir = Path(out_dir)
    rows = []
    for name, cfg in cfgs:
        run_dir = out_dir / name
        res = train(cfg, run_dir, overwrite=True, callback=(lambda e, n=name: callback(n, e)) if callback else None,
                    progress=progress)
        family = cfg.model.family + (f"/{cfg.model.cell}" if cfg.model.family == "rnn" else "")
        rows.append(_row(name, family, load(run_dir), val_docs, sample_tokens, seed, res.parameters, res.steps,
                         res.tokens_per_sec, res.elapsed_s / 60, str(run_dir)))
    for model in models:
        gen = load(model)
        family = gen.info["family"] + (" (zero-shot)" if gen.info["family"] == "pretrained" else " (as trained)")
        size = count_parameters(gen.model) if hasattr(gen.model, "parameters") else sum(map(len, gen.model.tables.values()))
        rows.append(_row(Path(model).name if Path(model).exists() else model, family, gen, val_docs, sample_tokens, seed,
                         size, None, None, None, model))
    rows.sort(key=lambda r: r["val_bpc"])
    atomic_write_text(out_dir / "leaderboard.json", json.dumps(rows, indent=2, ensure_ascii=False))
    atomic_write_text(out_dir / "leaderboard.md", markdown_table(rows))
    return rows


def _row(name: str, family: str, gen: Any, val_docs: list[str], sample_tokens: int, seed: int, parameters: int,
         steps: int | None, tokens_per_sec: float | None, minutes: float | None, where: str) -> dict[str, Any]:
    scored = likelihood(gen, val_docs)
    return {"name": name, "family": family, "tokenizer": gen.tokenizer.kind, "parameters": parameters, "steps": steps,
            "val_bpc": scored["bits_per_char"], "val_loss": scored["nll"], "val_ppl": perplexity(scored["nll"]),
            "tokens_per_sec": tokens_per_sec, "minutes": minutes,
            "sample": gen.generate("", max_new_tokens=sample_tokens, temperature=0.8, seed=seed), "run_dir": where}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | family | params | steps | val bpc | val loss (token ppl) | tokens/s | sample |\n"
            "|---|---|---:|---:|---:|---:|---:|---|\n")
    body = "".join(
        f"| {r['name']} | {r['family']} | {r['parameters'] / 1e6:.2f}M | {r['steps'] if r['steps'] is not None else '-'} | "
        f"{r['val_bpc']:.3f} | {r['val_loss']:.3f} ({r['val_ppl']:.2f}) | "
        f"{format(r['tokens_per_sec'], ',.0f') if r['tokens_per_sec'] is not None else '-'} | "
        f"`{re.sub(r'[|`]', ' ', ' '.join(r['sample'].split()))[:60]}` |\n"
        for r in rows)
    return head + body
