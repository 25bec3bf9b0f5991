"""Layers that two or more model families share."""

from .attention import MLP, CrossAttention, SelfAttention, attention_weights, init_transformer_weights

__all__ = ["MLP", "CrossAttention", "SelfAttention", "attention_weights", "init_transformer_weights"]
