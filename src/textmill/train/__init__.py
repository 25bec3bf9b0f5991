"""Training: one loop (trainer.py), per-family objectives, optimizer and schedule, checkpoints."""

from ..rundir import load
from .trainer import Trainer, TrainResult, train

__all__ = ["TrainResult", "Trainer", "load", "train"]
