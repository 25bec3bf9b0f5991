"""Model families, one per file. Each family's pydantic config class registers the family's name with
config.py when it is defined; here each model class is registered under that name."""

from __future__ import annotations

from ..config import ModelConfig, model_config_class
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


def build_model(cfg: ModelConfig, vocab_size: int, **dims: int):
    """The model of `cfg`; `dims` are sizes beyond the vocabulary (e.g. source_vocab_size)."""
    return MODELS.get(cfg.family)(cfg, vocab_size, **dims)


__all__ = ["CVAE", "CVAEConfig", "GANConfig", "SeqGAN", "GPT", "GPTConfig", "MODELS", "NGramConfig", "NGramLM",
           "RNNLM", "RNNConfig", "Seq2Seq", "Seq2SeqConfig", "Transformer", "TransformerConfig", "VAE", "VAEConfig",
           "Conditioning", "StepModel", "build_model", "count_parameters", "model_config_class"]
