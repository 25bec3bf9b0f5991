"""The one training loop. Families differ only in their objective.

Exact resume comes from stateless randomness: the batch and the dropout masks of step s are drawn
from generators seeded by (seed, step, micro-batch, rank), so a run resumed from a checkpoint at
step s draws exactly what the uninterrupted run drew. The loop runs unchanged under
`torchrun --nproc_per_node N` (DDP; gloo on CPU); only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import RunConfig
from ..data.prepare import Prepared, prepare
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_text
from ..models import MODELS, build_model, count_parameters
from ..rundir import RUN_MARKERS, find_last, read_run_config, write_run_config, write_run_files
from .checkpoint import load_last, save_last, save_weights, unwrap
from .finetune import base_dir, load_base_weights, with_base
from .linear import onednn_linear
from .lora import apply_lora
from .objectives import OBJECTIVES
from .optim import build_optimizer, lr_at
from .privacy import PrivateTraining, dp_layers

log = logging.getLogger(__name__)
Callback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_val_loss: float
    val_loss: float
    val_bpc: float
    tokens_per_sec: float
    elapsed_s: float
    parameters: int
    stopped: str  # "max_steps" | "time_budget" | "early_stopping" | "fitted"
    # tokens_per_sec: training tokens per second of training time (evaluations and checkpoints excluded),
    # the figure the progress bar shows at the last step
    history: list[dict[str, Any]] = field(default_factory=list)


def _step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 1_009 + micro * 101 + rank) % (2**63 - 1)


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def prepare_run_dir(run_dir: Path, cfg: RunConfig, *, resume: bool, overwrite: bool, is_main: bool = True) -> None:
    """Refuse to clobber anything a user did not ask to replace; check a resumed run's config."""
    is_run = any((run_dir / name).is_file() for name in RUN_MARKERS)
    if resume:
        if find_last(run_dir) is None:
            raise CheckpointError(f"nothing to resume in {run_dir}: no checkpoints/last; start it without --resume "
                                  "(Python: resume=False)")
        saved = read_run_config(run_dir)
        for section in ("model", "tokenizer", "source_tokenizer", "data"):
            if getattr(saved, section) != getattr(cfg, section):
                raise ConfigError(f"--resume: the {section} section differs from the one {run_dir} was trained with; "
                                  "only the train section may change when resuming")
    elif is_run:
        if not overwrite:
            raise CheckpointError(f"{run_dir} already holds a run; pass --resume to continue it or --overwrite to replace it "
                                  "(Python: resume=True or overwrite=True)")
        if is_main:
            _remove_run(run_dir)
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise CheckpointError(f"{run_dir} exists and is not empty; choose a new --out directory")


def _remove_run(run_dir: Path) -> None:
    """Delete a run with the files that mark it as one last, so that a kill midway still leaves a run
    that `--overwrite` replaces, never a directory that is neither a run nor empty."""
    for entry in run_dir.iterdir():
        if entry.name in RUN_MARKERS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in RUN_MARKERS:
        (run_dir / name).unlink(missing_ok=True)
    run_dir.rmdir()


@dataclass
class _Parts:
    """What one run trains: built fresh, or restored from its last checkpoint."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    objective: Any
    data: Prepared
    parameters: int
    dp: PrivateTraining | None = None
    step: int = 0  # steps done before this session (a resumed run's checkpoint)
    best: float = math.inf  # the best validation loss so far
    bad_evals: int = 0  # evaluations since it last improved
    elapsed_before: float = 0.0  # seconds trained before this session


class _Throughput:
    """Training tokens per second, of training time only: evaluations and checkpoints are left out."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.tokens = 0
        self.paused_s = 0.0
        self.window_tokens, self.window_start = 0, self.started

    def add(self, tokens: int) -> float:
        """Count a step's tokens; the run's figure so far (what the progress bar shows)."""
        self.tokens += tokens
        self.window_tokens += tokens
        return self.tokens / max(time.perf_counter() - self.started - self.paused_s, 1e-9)

    def window(self) -> float:
        """Tokens per second since the last call (a log line's figure)."""
        now = time.perf_counter()
        rate = self.window_tokens / max(now - self.window_start, 1e-9)
        self.window_tokens, self.window_start = 0, now
        return rate

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.paused_s += time.perf_counter() - started


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                 callback: Callback | None = None) -> None:
        self.cfg = with_base(cfg) if cfg.train.init_from else cfg
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.overwrite = overwrite
        self.callback = callback or (lambda event: None)
        self.rank, self.world = _dist_info()
        self.is_main = self.rank == 0
        self.history: list[dict[str, Any]] = []

    # -- the loop ------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train to max_steps, the time budget or early stopping; the caller's global random state is
        left as it was (the run seeds its own draws)."""
        with torch.random.fork_rng(devices=[]):
            return self._fit()

    def _fit(self) -> TrainResult:
        t = self.cfg.train
        torch.set_num_threads(t.threads or max(1, (os.cpu_count() or 1) // self.world))
        prepare_run_dir(self.run_dir, self.cfg, resume=self.resume, overwrite=self.overwrite, is_main=self.is_main)
        parts = self._build()
        self._start_files(parts)
        net, step_optimizer, numerics = self._wrap(parts)
        budget_s = t.max_minutes * 60 if t.max_minutes else None
        started, meter = time.perf_counter(), _Throughput()
        stopped, val_loss, done, tok_per_s = "max_steps", math.nan, parts.step, 0.0
        window_logs: dict[str, float] = {}  # the latest value of each objective metric since the last log
        net.train()
        for step in range(parts.step, t.max_steps):
            elapsed = parts.elapsed_before + time.perf_counter() - started
            lr = self._set_lr(parts.optimizer, step, None if budget_s is None else elapsed / budget_s)
            loss, tokens, logs = self._step(net, step_optimizer, numerics, parts, step)
            done = step + 1
            tok_per_s = meter.add(tokens)
            window_logs.update(logs)
            self.callback({"kind": "step", "step": done, "max_steps": t.max_steps, "loss": loss, "tokens_per_sec": tok_per_s})
            if done % t.log_every == 0:
                self._record({"kind": "train", "step": done, "loss": loss, "lr": lr, "tokens_per_sec": meter.window(),
                              **window_logs})
                window_logs = {}
            elapsed = parts.elapsed_before + time.perf_counter() - started
            out_of_time = budget_s is not None and self._any_rank(elapsed >= budget_s)
            if done % t.eval_every == 0 or done == t.max_steps or out_of_time:
                with meter.paused():
                    val_loss = self._evaluate(parts, done, elapsed)
                if t.patience is not None and parts.bad_evals >= t.patience:
                    stopped = "early_stopping"
                    break
            if out_of_time:
                stopped = "time_budget"
                break
        return self._finish(parts, done, stopped, val_loss, tok_per_s, parts.elapsed_before + time.perf_counter() - started)

    def _build(self) -> _Parts:
        """The data, the model (with the base's weights, adapters and DP layers as configured), the
        optimizer, and, when resuming, their state at the last checkpoint."""
        c, t = self.cfg, self.cfg.train
        model_class = MODELS.get(c.model.family)
        objective = OBJECTIVES.get(model_class.objective)(c)
        data = prepare(c, self.run_dir, self.resume, kind=objective.data, labelled=getattr(model_class, "labelled", False),
                       base=base_dir(c) if t.init_from else None)
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        model = build_model(c.model, data.tokenizer.vocab_size, **data.dims)
        if t.init_from and not self.resume:
            load_base_weights(model, c, data.tokenizers)
        if t.lora:
            apply_lora(model, t.lora)
        if t.dp:
            dp_layers(model)
        parts = _Parts(model, build_optimizer(model, t), objective, data, count_parameters(model))
        saved: dict[str, Any] = {}
        if self.resume:
            last = find_last(self.run_dir)
            saved = load_last(last, model, parts.optimizer)
            parts.step, parts.best, parts.bad_evals = saved["step"], saved["best_val_loss"], saved["bad_evals"]
            parts.elapsed_before = saved["elapsed_s"]
            log.info("resuming %s at step %d", self.run_dir, parts.step)
            if self.is_main:
                self.callback({"kind": "resume", "step": parts.step, "checkpoint": str(last)})
        if t.dp:  # checked before the run's files are written: a refused setting leaves no half-made run
            if self.world > 1:
                raise ConfigError("train.dp: DP-SGD runs in one process here; train without torchrun")
            parts.dp = PrivateTraining(t.dp, model, parts.optimizer, data.train.windows, t.batch_size, t.max_steps,
                                       saved.get("dp"))
        return parts

    def _start_files(self, parts: _Parts) -> None:
        """A new run's files (config, tokenizers), or a resumed run's train section; the logs."""
        data = parts.data
        if self.is_main:
            if not self.resume:
                write_run_files(self.run_dir, self.cfg, data.tokenizers, data.tokenizer.vocab_size, data.dims, data.meta)
            else:  # the train section may change on resume (more steps, a longer budget): record what runs now
                write_run_config(self.run_dir, self.cfg)
            self._open_logs(parts.step)
            if data.stats and not self.resume:
                self._record({"kind": "data", "step": 0, **data.stats})
        self._barrier()

    def _wrap(self, parts: _Parts) -> tuple[nn.Module, Any, Callable[[], Any]]:
        """The module the steps run (DP's, DDP's, compiled), the optimizer that steps it, and the
        numerics each step runs under."""
        t = self.cfg.train
        net, step_optimizer = parts.model, parts.optimizer
        if parts.dp is not None:
            net, step_optimizer = parts.dp.model, parts.dp.optimizer
            log.info("DP-SGD: noise multiplier %.3f, sample rate %.4g, delta %.3g", parts.dp.noise, parts.dp.rate,
                     parts.dp.delta)
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(parts.model)
        if t.compile:
            net = torch.compile(net)
        if t.precision == "bf16":
            numerics = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
        else:  # float32 linear layers through oneDNN (linear.py); a compiled graph keeps inductor's kernels
            numerics = contextlib.nullcontext if t.compile else onednn_linear
        return net, step_optimizer, numerics

    def _set_lr(self, optimizer: torch.optim.Optimizer, step: int, budget_spent: float | None) -> float:
        """The schedule's learning rate for `step` (by steps, or by the time budget spent), set on every group."""
        lr = lr_at(step, self.cfg.train, budget_spent)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _step(self, net: nn.Module, step_optimizer: Any, numerics: Callable[[], Any], parts: _Parts,
              step: int) -> tuple[float, int, dict[str, float]]:
        """One optimizer step over grad_accum micro-batches: (mean loss across ranks, tokens, objective logs).
        Each micro-batch draws from generators seeded by (seed, step, micro-batch, rank): a resumed run
        draws what the uninterrupted one drew."""
        t, dp = self.cfg.train, parts.dp
        loss_sum, logs, tokens = 0.0, {}, 0
        for micro in range(t.grad_accum):
            seed = _step_seed(t.seed, step, micro, self.rank)
            empty = False
            if dp is not None:  # Poisson sampling of the fixed windows
                batch, empty = parts.data.train.poisson(dp.rate, torch.Generator().manual_seed(seed))
            else:
                batch = parts.data.train.sample(t.batch_size, torch.Generator().manual_seed(seed))
            torch.manual_seed(seed)  # dropout masks, DP noise and any other randomness of the objective
            sync = contextlib.nullcontext() if (self.world == 1 or micro == t.grad_accum - 1) else net.no_sync()
            with sync, numerics():
                loss, logs = parts.objective.loss(net, batch, step)
                loss = loss * (0.0 if empty else 1.0 / t.grad_accum)  # no window drawn: a step of noise alone
            loss.backward()
            loss_sum += float(loss.detach())
            tokens += batch.n_tokens * self.world  # ranks draw batches of similar size
        if t.grad_clip is not None and dp is None:  # DP-SGD clips each window's gradient instead
            torch.nn.utils.clip_grad_norm_(parts.model.parameters(), t.grad_clip)
        step_optimizer.step()
        step_optimizer.zero_grad(set_to_none=True)
        return self._mean_across_ranks(loss_sum), tokens, logs

    def _evaluate(self, parts: _Parts, step: int, elapsed: float) -> float:
        """Score the validation split; keep the best weights and the resume checkpoint. The validation loss."""
        t, dp = self.cfg.train, parts.dp
        with onednn_linear():  # evaluation runs the uncompiled model in float32, whatever the precision
            metrics = parts.objective.evaluate(unwrap(parts.model), parts.data.val, t.batch_size, t.eval_batches)
        val_loss = metrics["val_loss"]
        improved = val_loss < parts.best
        parts.best, parts.bad_evals = (val_loss, 0) if improved else (parts.best, parts.bad_evals + 1)
        if dp is not None:
            metrics["epsilon"] = dp.epsilon()
        self._record({"kind": "eval", "step": step, **metrics, "best_val_loss": parts.best})
        if self.is_main:
            if improved or not parts.objective.select_best:
                save_weights(parts.model, self.run_dir / "model.safetensors")
            save_last(self.run_dir, parts.model, parts.optimizer,
                      {"step": step, "best_val_loss": parts.best, "bad_evals": parts.bad_evals, "elapsed_s": elapsed,
                       **({"dp": dp.state()} if dp is not None else {})})
        self._barrier()
        return val_loss

    def _finish(self, parts: _Parts, steps: int, stopped: str, val_loss: float, tok_per_s: float, elapsed: float) -> TrainResult:
        result = TrainResult(self.run_dir, steps, parts.best, val_loss, val_loss * parts.data.val.tokens_per_char / math.log(2),
                             tok_per_s, elapsed, parts.parameters, stopped, self.history)
        dp = parts.dp
        privacy = dp.save(self.run_dir, steps, self.cfg.model.context) if dp is not None and self.is_main else None
        self._record({"kind": "end", "step": steps, "stopped": stopped, "elapsed_s": elapsed,
                      "tokens_per_sec": tok_per_s, "parameters": parts.parameters,
                      **({"epsilon": privacy["epsilon"], "delta": privacy["delta"]} if privacy else {})})
        self._close_logs()
        return result

    # -- logging and distributed helpers ------------------------------------------------------------
    def _open_logs(self, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        path = self.run_dir / "metrics.jsonl"
        if self.resume and path.is_file():  # drop what the interrupted run logged past its checkpoint
            events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
            kept = [e for e in events if e["step"] <= start_step and e["kind"] != "end"]
            atomic_write_text(path, "".join(json.dumps(e) + "\n" for e in kept))
        self._metrics = open(path, "a", encoding="utf-8")
        self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step if self.resume else None)

    def _record(self, event: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.history.append(event)
        self._metrics.write(json.dumps(event) + "\n")
        self._metrics.flush()
        for key, value in event.items():
            if key not in ("kind", "step", "stopped") and isinstance(value, (int, float)):
                self._tb.add_scalar(f"{event['kind']}/{key}", value, event["step"])
        log.info("%s", event)
        self.callback(event)

    def _close_logs(self) -> None:
        if self.is_main:
            self._metrics.close()
            self._tb.close()

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def _mean_across_ranks(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value])
        dist.all_reduce(t)
        return float(t) / self.world

    def _any_rank(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t)
