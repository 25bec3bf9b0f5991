"""Model families, one per file. Each registers its class; the class names its pydantic `Config`."""

from __future__ import annotations

from ..config import ModelConfig
from ..registry import Registry
from .base import Conditioning, StepModel, count_parameters
from .gan import GANConfig, SeqGAN
from .gpt import GPT, GPTConfig
from .ngram import NGramConfig, NGramLM
from .rnn import RNNLM, RNNConfig
from .seq2seq import Seq2Seq, Seq2SeqConfig
from .transformer import Transformer, TransformerConfig
from .vae import CVAE, VAE, CVAEConfig, VAEConfig

MODELS: Registry[type] = Registry("model family")
MODELS.register("gpt")(GPT)
MODELS.register("rnn")(RNNLM)
MODELS.register("ngram")(NGramLM)
MODELS.register("seq2seq")(Seq2Seq)
MODELS.register("transformer")(Transformer)
MODELS.register("vae")(VAE)
MODELS.register("cvae")(CVAE)
MODELS.register("gan")(SeqGAN)


def model_config_class(family: str) -> type[ModelConfig]:
    return MODELS.get(family).Config


def build_model(cfg: ModelConfig, vocab_size: int, **dims: int):
    """The model of `cfg`; `dims` are sizes beyond the vocabulary (e.g. source_vocab_size)."""
    return MODELS.get(cfg.family)(cfg, vocab_size, **dims)


__all__ = ["CVAE", "CVAEConfig", "GANConfig", "SeqGAN", "GPT", "GPTConfig", "MODELS", "NGramConfig", "NGramLM",
           "RNNLM", "RNNConfig", "Seq2Seq", "Seq2SeqConfig", "Transformer", "TransformerConfig", "VAE", "VAEConfig",
           "Conditioning", "StepModel", "build_model", "count_parameters", "model_config_class"]
