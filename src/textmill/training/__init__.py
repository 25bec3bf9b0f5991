"""Training: one loop (trainer.py), per-family objectives, optimizer and schedule, checkpoints."""

from .trainer import Trainer, TrainResult, train

__all__ = ["TrainResult", "Trainer", "train"]
