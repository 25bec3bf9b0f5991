"""Model families, one per file. Each registers its class; the class names its pydantic `Config`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..registry import Registry
from .base import Conditioning, StepModel, count_parameters
from .gpt import GPT, GPTConfig
from .rnn import RNNLM, RNNConfig

MODELS: Registry[type[nn.Module]] = Registry("model family")
MODELS.register("gpt")(GPT)
MODELS.register("rnn")(RNNLM)


def model_config_class(family: str) -> type[ModelConfig]:
    return MODELS.get(family).Config


def build_model(cfg: ModelConfig, vocab_size: int) -> nn.Module:
    return MODELS.get(cfg.family)(cfg, vocab_size)


__all__ = ["GPT", "GPTConfig", "MODELS", "RNNLM", "RNNConfig", "Conditioning", "StepModel", "build_model",
           "count_parameters", "model_config_class"]
