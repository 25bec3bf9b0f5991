"""Training: one loop (trainer.py), per-family objectives, optimizer and schedule, checkpoints; run.py
is `textmill.train`, which also fits count-based families in one pass (counts.py)."""

from .run import train
from .trainer import Trainer, TrainResult

__all__ = ["TrainResult", "Trainer", "train"]
