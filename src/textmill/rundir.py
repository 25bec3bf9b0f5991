"""Run directories: the unit of exchange between training, generation, evaluation, synth and serving.

    run/
      config.json            family, model hyper-parameters, vocabulary size
      tokenizer.json
      train.yaml             the resolved run config
      model.safetensors      the best weights so far (by validation loss)
      metrics.jsonl          one JSON object per log/eval event
      tb/                    TensorBoard events
      checkpoints/last/      model.safetensors, optimizer.safetensors, trainer_state.json (for resume)

Nothing is pickled: weights and optimizer tensors are safetensors, everything else JSON/YAML. Every
file is written whole or not at all (files.py; the trainer swaps `checkpoints/last` in as a whole
directory: training/checkpoint.py). This module is the format only: `textmill.load` (loading.py)
turns a run into a ready generator, and a damaged file is an error that names it and the way back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_model
from torch import nn

from .config import RunConfig, model_config_class, validate_config
from .errors import CheckpointError, ConfigError
from .files import atomic_write_text, previous
from .models import build_model
from .tokenizers import Tokenizer

RUN_FORMAT = "textmill-run"
LAST = Path("checkpoints") / "last"


RUN_MARKERS = ("config.json", "train.yaml")  # a directory holding either is a run (whole or not)


def write_run_files(run_dir: Path, cfg: RunConfig, tokenizers: dict[str, Tokenizer], vocab_size: int,
                    dims: dict[str, int] | None = None, extra: dict[str, Any] | None = None) -> None:
    """config.json (family, hyper-parameters, vocab_size, any other `dims` the model is built with and
    `extra` facts such as the label names), train.yaml and the tokenizers (file name -> tokenizer)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train.yaml").touch()  # marks the directory as a run first: a kill from here on leaves one that --overwrite replaces
    meta = {"format": RUN_FORMAT, "version": 1, "family": cfg.model.family,
            "model": cfg.model.model_dump(mode="json"), "vocab_size": vocab_size, "dims": dims or {}, **(extra or {})}
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2))
    write_run_config(run_dir, cfg)
    for name, tok in tokenizers.items():
        tok.save(run_dir / name)


def write_run_config(run_dir: Path, cfg: RunConfig) -> None:
    atomic_write_text(run_dir / "train.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))


def find_last(run_dir: Path) -> Path | None:
    """The newest complete resume checkpoint: `last`, or the one it replaced if a kill came between
    the two renames of the swap (files.replacing)."""
    for d in (run_dir / LAST, previous(run_dir / LAST)):
        if (d / "trainer_state.json").is_file():
            return d
    return None


def damaged(run_dir: Path, name: str, problem: str) -> CheckpointError:
    """The error for a run file that cannot be read: what is wrong with it and how to get a good one."""
    fix = f"retrain it (`textmill train CONFIG --out {run_dir} --overwrite`)"
    last = find_last(run_dir)
    if name == "model.safetensors" and last is not None and (last / name).is_file():
        fix = f"copy {last / name} over it (the latest weights rather than the best) or {fix}"
    elif name != "model.safetensors":
        fix = f"restore it from a copy of the run or {fix}"
    return CheckpointError(f"{run_dir / name} is damaged ({problem}); {fix}")


def read_json(run_dir: Path, name: str) -> Any:
    """A JSON file of a run directory, or a `damaged` error naming it."""
    try:
        return json.loads((run_dir / name).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise damaged(run_dir, name, f"not valid JSON: {str(e)[:100]}") from None


def read_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "train.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no train.yaml; is it a directory written by `textmill train`?")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise damaged(run_dir, "train.yaml", f"not valid YAML: {str(e).splitlines()[0][:100]}") from None
    if not isinstance(data, dict):
        raise damaged(run_dir, "train.yaml", "not a mapping of config sections")
    try:
        return validate_config(data, str(path))
    except ConfigError as e:  # a cut or edited file can still parse as YAML
        raise damaged(run_dir, "train.yaml", f"not a valid run config: {e}") from None


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    """`trainer_state.json` of a resume checkpoint (step, best validation loss, bad evaluations, elapsed seconds)."""
    state = read_json(ckpt, "trainer_state.json")
    if not isinstance(state, dict) or not all(isinstance(state.get(k), (int, float)) for k in ("step", "best_val_loss", "elapsed_s")):
        raise damaged(ckpt, "trainer_state.json", "the step, best_val_loss or elapsed_s field is missing")
    return state


def _non_finite(model: Any) -> bool:
    tensors = model.state_dict().values() if isinstance(model, nn.Module) else map(torch.as_tensor, model.tables.values())
    return any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors)


def load_weights(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The model of a run directory with its best weights (on the CPU), and its config.json."""
    missing = [n for n in ("config.json", "tokenizer.json", "model.safetensors") if not (run_dir / n).is_file()]
    if missing:
        hint = " (training has not finished its first evaluation yet)" if (run_dir / "config.json").is_file() else ""
        raise CheckpointError(f"{run_dir} is missing {', '.join(missing)}{hint}; train with `textmill train CONFIG --out {run_dir}`")
    meta = read_json(run_dir, "config.json")
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{run_dir}/config.json is not a textmill run config")
    try:
        cfg = model_config_class(meta["family"]).model_validate(meta["model"])
        model = build_model(cfg, int(meta["vocab_size"]), **meta.get("dims", {}))
    except (KeyError, TypeError, ValueError, ConfigError) as e:  # pydantic's ValidationError is a ValueError
        raise damaged(run_dir, "config.json", f"its model description is incomplete or invalid: {str(e)[:200]}") from None
    weights = run_dir / "model.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as e:  # a truncated or foreign file: safetensors cannot read its header
        raise damaged(run_dir, "model.safetensors", f"not a readable safetensors file: {str(e)[:100]}") from None
    try:
        if isinstance(model, nn.Module):
            load_model(model, str(weights))
        else:  # count-based: tables of data-dependent size
            model.load(weights)
    except Exception as e:  # safetensors raises RuntimeError/SafetensorError with a long message
        raise CheckpointError(f"{weights} does not match config.json (another model's weights?): {str(e)[:300]}") from None
    if _non_finite(model):
        raise damaged(run_dir, "model.safetensors", "it holds NaN or infinite values: the file is corrupt or training diverged")
    return model, meta
