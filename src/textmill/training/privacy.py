"""Differentially private training: DP-SGD (Abadi et al. 2016) with Opacus, `train.dp: {epsilon: 8}`.

The examples are the training split's fixed, non-overlapping windows of `context` tokens. Each step
draws windows by Poisson sampling (each with probability batch_size / windows), clips each window's
gradient to `max_grad_norm`, adds Gaussian noise of `noise_multiplier x max_grad_norm` and averages
over the expected batch size; Opacus's accountant turns the steps taken into the (epsilon, delta)
the run guarantees for any one window. A document longer than a window spans several, and is
protected as a group (its epsilon grows with the number of windows it touches); rows shorter than
the context touch at most two.

Families: gpt (also pretrained models imported into it, in full or with LoRA adapters) and rnn
(its LSTM, GRU or Elman layers become Opacus's DP layers, which load the same weights). What
Opacus cannot handle is refused with a suggestion.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import DPConfig, RunConfig
from ..errors import ConfigError
from ..files import atomic_write_text

log = logging.getLogger(__name__)
# Opacus's hooks fire on modules whose inputs need no gradient (the embedding's), and its RDP analysis
# asks for more orders when a budget is small; neither changes a result.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")

PRIVACY_FILE = "privacy.json"
LARGE_EPSILON = 10.0  # beyond this, the guarantee says little (Gretel once shipped runs at epsilon 2,339)
DP_FAMILIES = ("gpt", "rnn")


def check_dp(cfg: RunConfig) -> None:
    """Refuse what DP-SGD here does not cover, before any data is read."""
    t = cfg.train
    if t.dp is None:
        return
    try:
        import opacus  # noqa: F401
    except ImportError:
        raise ConfigError("train.dp needs Opacus: pip install 'textmill[privacy]'") from None
    if cfg.model.family not in DP_FAMILIES:
        raise ConfigError(f"train.dp: DP-SGD covers the families {', '.join(DP_FAMILIES)} (and LoRA on pretrained models "
                          f"imported into gpt); {cfg.model.family!r} is not one: train a gpt or rnn model, or fine-tune a "
                          "pretrained model with train.lora")
    if cfg.data.task != "lm":
        raise ConfigError(f"train.dp: DP-SGD here samples windows of a language-model corpus; a {cfg.data.task} fine-tune "
                          "(pairs as chats) is not covered: remove train.dp or train on a corpus (data.task: lm)")
    if t.grad_accum != 1:
        raise ConfigError("train.dp: gradient accumulation is not supported with DP-SGD; set grad_accum: 1 and raise "
                          "batch_size (the expected number of windows a step draws)")
    if t.compile:
        raise ConfigError("train.dp: compile is not supported with DP-SGD (Opacus's per-window gradients use hooks); "
                          "set compile: false")


def _swap_recurrent(model: nn.Module, kinds: dict[type, type]) -> None:
    """Replace each recurrent layer of a type in `kinds` by the mapped type, with the same weights."""
    for name, child in list(model.named_children()):
        target = kinds.get(type(child))
        if target is None:
            _swap_recurrent(child, kinds)
            continue
        extra = {"nonlinearity": child.nonlinearity} if hasattr(child, "nonlinearity") else {}  # Elman RNNs
        layer = target(child.input_size, child.hidden_size, num_layers=child.num_layers, bias=child.bias,
                       batch_first=child.batch_first, dropout=child.dropout, bidirectional=child.bidirectional, **extra)
        layer.load_state_dict(child.state_dict())
        setattr(model, name, layer)


def dp_layers(model: nn.Module) -> None:
    """Swap nn.LSTM / nn.GRU / nn.RNN for Opacus's DP layers, which take the same weights (and save
    under the same names). Call it before the optimizer is built: the parameters are new objects."""
    from opacus.layers import DPGRU, DPLSTM, DPRNN

    _swap_recurrent(model, {nn.LSTM: DPLSTM, nn.GRU: DPGRU, nn.RNN: DPRNN})


def plain_layers(model: nn.Module) -> nn.Module:
    """`model` itself, or a copy with Opacus's DP recurrent layers back as torch's (what a run saves:
    the weights are the same, and the files load into the plain model)."""
    if not any(type(m).__module__.startswith("opacus.") for m in model.modules()):
        return model  # (without importing Opacus)
    import copy

    from opacus.layers import DPGRU, DPLSTM, DPRNN

    out = copy.deepcopy(model)
    _swap_recurrent(out, {DPLSTM: nn.LSTM, DPGRU: nn.GRU, DPRNN: nn.RNN})
    return out


class PrivateTraining:
    """The DP-SGD parts of one run: the model with per-window gradients, the noisy optimizer, the
    sampler and the accountant."""

    def __init__(self, cfg: DPConfig, model: nn.Module, optimizer: torch.optim.Optimizer, windows: int, batch_size: int,
                 max_steps: int, resumed: dict[str, Any] | None = None) -> None:
        """`resumed`: the `state()` saved with the checkpoint a run resumes from (its noise and the
        accountant's history), so the steps already taken keep the noise they were taken with."""
        from opacus import GradSampleModule
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer

        if batch_size >= windows:
            raise ConfigError(f"train.dp: batch_size {batch_size} draws every one of the {windows} training windows each "
                              "step, so sampling hides nothing; use a smaller batch_size or more data")
        self.cfg = cfg
        self.windows = windows
        self.rate = batch_size / windows
        self.delta = cfg.delta if cfg.delta is not None else 1 / (10 * windows)
        if self.delta >= 1 / windows:
            raise ConfigError(f"train.dp.delta {self.delta:g} is not below 1 / {windows} training windows; a delta that "
                              f"large allows leaking a whole window outright. Use at most {0.1 / windows:.2g}")
        if resumed is not None:
            self.noise = resumed["noise_multiplier"]
        elif cfg.noise_multiplier is not None:
            self.noise = cfg.noise_multiplier
        else:
            self.noise = get_noise_multiplier(target_epsilon=cfg.epsilon, target_delta=self.delta, sample_rate=self.rate,
                                              steps=max_steps, accountant=cfg.accountant)
        with warnings.catch_warnings():  # Opacus warns that its default RNG is not cryptographically secure
            warnings.simplefilter("ignore")
            self.model = GradSampleModule(model)
            self.optimizer = DPOptimizer(optimizer, noise_multiplier=self.noise, max_grad_norm=cfg.max_grad_norm,
                                         expected_batch_size=batch_size)
        self.accountant = create_accountant(cfg.accountant)
        if resumed is not None:
            self.accountant.history = [tuple(h) for h in resumed["history"]]
        self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.rate))

    def state(self) -> dict[str, Any]:
        """What a resumed run needs (saved with each checkpoint)."""
        return {"noise_multiplier": self.noise, "history": [list(h) for h in self.accountant.history]}

    def epsilon(self) -> float:
        return float(self.accountant.get_epsilon(self.delta)) if self.accountant.history else 0.0

    def summary(self, steps: int, context: int) -> dict[str, Any]:
        eps = self.epsilon()
        return {"epsilon": eps, "delta": self.delta, "noise_multiplier": self.noise, "max_grad_norm": self.cfg.max_grad_norm,
                "sample_rate": self.rate, "steps": steps, "windows": self.windows, "accountant": self.cfg.accountant,
                "unit": f"one training window of {context} tokens", "target_epsilon": self.cfg.epsilon,
                "meaningful": eps <= LARGE_EPSILON}

    def save(self, run_dir: Path, steps: int, context: int) -> dict[str, Any]:

        summary = self.summary(steps, context)
        atomic_write_text(run_dir / PRIVACY_FILE, json.dumps(summary, indent=1))
        if self.cfg.epsilon is not None and summary["epsilon"] > self.cfg.epsilon * 1.01:
            log.warning("epsilon %.3g is above the target %g: the run trained past the steps its noise was chosen for "
                        "(a resumed run with more max_steps keeps its first noise)", summary["epsilon"], self.cfg.epsilon)
        if not summary["meaningful"]:
            log.warning("epsilon %.3g is above %g: a guarantee this weak says little (Gretel once shipped runs at "
                        "epsilon 2,339); add noise (a smaller epsilon target) or train fewer steps", summary["epsilon"],
                        LARGE_EPSILON)
        return summary


def read_privacy(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / PRIVACY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


