"""`textmill.train`: a config in, a run directory out, by the gradient loop (trainer.py) or, for
count-based families, in one pass (counts.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..config import RunConfig, load_config
from ..errors import ConfigError
from ..models import MODELS
from ..progress import TrainBar
from ..rundir import read_run_config
from .counts import fit_counts
from .memory import reuse_freed_memory
from .privacy import check_dp
from .trainer import Callback, Trainer, TrainResult


def train(config: str | Path | dict[str, Any] | RunConfig | None, out: str | Path, *, overrides: list[str] | None = None,
          resume: bool = False, overwrite: bool = False, callback: Callback | None = None,
          progress: bool = True) -> TrainResult:
    """Train the model a config describes and write a run directory to `out`.

    Count-based families (`ngram`) are fitted in one pass instead of trained by gradient descent.
    `callback` receives every trainer event (steps, logs, evaluations, the end); `progress` draws
    them as a bar on standard error."""
    cfg = read_run_config(Path(out)) if resume and config is None else load_config(config, overrides)
    counts = MODELS.get(cfg.model.family).objective == "counts"
    if cfg.train.lora and not cfg.train.init_from:
        raise ConfigError("train.lora adapts a pretrained model: set train.init_from (--init-from) to the run it starts from")
    check_dp(cfg)
    if counts and cfg.train.init_from:
        raise ConfigError(f"train.init_from: a {cfg.model.family!r} model is counted in one pass, not trained, so it "
                          "cannot start from another run; remove train.init_from")
    with contextlib.ExitStack() as stack:
        if progress:
            bar = stack.enter_context(TrainBar(f"train {out}", cfg.train.max_minutes))
            callback = _both(bar.event, callback)
        if counts:
            return fit_counts(cfg, Path(out), overwrite=overwrite, callback=callback)
        stack.enter_context(reuse_freed_memory())
        return Trainer(cfg, out, resume=resume, overwrite=overwrite, callback=callback).fit()


def _both(first: Callback, second: Callback | None) -> Callback:
    if second is None:
        return first

    def call(event: dict[str, Any]) -> None:
        first(event)
        second(event)

    return call
