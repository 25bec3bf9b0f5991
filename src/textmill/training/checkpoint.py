"""What the trainer writes and reads beside the run directory's format (rundir.py): the best weights,
and the resume checkpoint `checkpoints/last/` (model, optimizer as safetensors, trainer state), built
beside and swapped in as a whole directory, so an interrupted write never replaces a good checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_file, save_model
from torch import nn

from ..errors import CheckpointError
from ..files import replacing
from ..rundir import LAST, read_trainer_state
from .lora import has_lora, merged_copy
from .privacy import plain_layers


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def save_weights(model: nn.Module, path: Path) -> None:
    """The model's weights as a run's `model.safetensors`; low-rank adapters are merged in, so the file
    loads as the plain model its config.json describes."""
    model = plain_layers(unwrap(model))
    if has_lora(model):
        model = merged_copy(model)
    with replacing(path) as tmp:
        save_model(model, str(tmp))  # handles tied weights


def _optimizer_to_safetensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{name}"] = value.contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}


def _optimizer_from_safetensors(path: Path) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for key, value in json.loads(meta["scalars"]).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": json.loads(meta["param_groups"])}


def save_last(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any]) -> None:
    """Write checkpoints/last as a whole: built beside it, then swapped in (rundir.find_last reads the
    one swapped out if a kill came between the two renames)."""
    last = run_dir / LAST
    with replacing(last) as tmp:
        tmp.mkdir()
        save_model(plain_layers(unwrap(model)), str(tmp / "model.safetensors"))
        tensors, meta = _optimizer_to_safetensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=meta)
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2), encoding="utf-8")


def load_last(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = read_trainer_state(ckpt)
    try:
        load_model(unwrap(model), str(ckpt / "model.safetensors"))
        optimizer.load_state_dict(_optimizer_from_safetensors(ckpt / "optimizer.safetensors"))
    except Exception as e:
        raise CheckpointError(f"the resume checkpoint {ckpt} is damaged ({str(e)[:200]}); start the run again with "
                              "--overwrite, or fine-tune from its best weights with --init-from") from None
    return state


