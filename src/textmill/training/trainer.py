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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import RunConfig, load_config
from ..data import encode_stream
from ..data.canaries import spelled_alphabet
from ..data.prepare import lm_documents, lm_tokenizer_config, prepare
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_text
from ..models import MODELS, build_model, count_parameters
from ..rundir import RUN_MARKERS, find_last, read_run_config, write_run_config, write_run_files
from ..tokenizers import build_tokenizer
from .checkpoint import load_last, save_last, save_weights, unwrap
from .finetune import base_dir, load_base_weights, with_base
from .linear import onednn_linear
from .lora import apply_lora
from .memory import reuse_freed_memory
from .objectives import OBJECTIVES
from .optim import build_optimizer, lr_at
from .privacy import PrivateTraining, check_dp, dp_layers

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
        c, t = self.cfg, self.cfg.train
        torch.set_num_threads(t.threads or max(1, (os.cpu_count() or 1) // self.world))
        prepare_run_dir(self.run_dir, c, resume=self.resume, overwrite=self.overwrite, is_main=self.is_main)
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
        n_params = count_parameters(model)
        optimizer = build_optimizer(model, t)
        start_step, best, bad_evals, elapsed_before = 0, math.inf, 0, 0.0
        st: dict[str, Any] = {}
        if self.resume:
            last = find_last(self.run_dir)
            st = load_last(last, model, optimizer)
            start_step, best, bad_evals, elapsed_before = st["step"], st["best_val_loss"], st["bad_evals"], st["elapsed_s"]
            log.info("resuming %s at step %d", self.run_dir, start_step)
            if self.is_main:
                self.callback({"kind": "resume", "step": start_step, "checkpoint": str(last)})
        dp = None  # checked before the run's files are written: a refused setting leaves no half-made run
        if t.dp:
            if self.world > 1:
                raise ConfigError("train.dp: DP-SGD runs in one process here; train without torchrun")
            dp = PrivateTraining(t.dp, model, optimizer, data.train.windows, t.batch_size, t.max_steps, st.get("dp"))
        if self.is_main:
            if not self.resume:
                write_run_files(self.run_dir, c, data.tokenizers, data.tokenizer.vocab_size, data.dims, data.meta)
            else:  # the train section may change on resume (more steps, a longer budget): record what runs now
                write_run_config(self.run_dir, c)
            self._open_logs(start_step)
            if data.stats and not self.resume:
                self._record({"kind": "data", "step": 0, **data.stats})
        self._barrier()
        net: nn.Module = model
        step_optimizer = optimizer
        if dp is not None:
            net, step_optimizer = dp.model, dp.optimizer
            log.info("DP-SGD: noise multiplier %.3f, sample rate %.4g, delta %.3g", dp.noise, dp.rate, dp.delta)
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(model)
        if t.compile:
            net = torch.compile(net)
        if t.precision == "bf16":
            numerics = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
        else:  # float32 linear layers through oneDNN (linear.py); a compiled graph keeps inductor's kernels
            numerics = contextlib.nullcontext if t.compile else onednn_linear
        budget_s = t.max_minutes * 60 if t.max_minutes else None
        started = time.perf_counter()
        stopped, val_loss, done_step = "max_steps", math.nan, start_step
        window_tokens, window_start, run_tokens = 0, time.perf_counter(), 0
        window_logs: dict[str, float] = {}  # the latest value of each objective metric since the last log
        eval_s, tok_per_s = 0.0, 0.0  # time spent evaluating and checkpointing is not training throughput
        net.train()
        for step in range(start_step, t.max_steps):
            elapsed = elapsed_before + time.perf_counter() - started
            lr = lr_at(step, t, None if budget_s is None else elapsed / budget_s)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss_sum, logs, step_tokens = 0.0, {}, 0
            for micro in range(t.grad_accum):
                seed = _step_seed(t.seed, step, micro, self.rank)
                empty = False
                if dp is not None:  # Poisson sampling of the fixed windows
                    batch, empty = data.train.poisson(dp.rate, torch.Generator().manual_seed(seed))
                else:
                    batch = data.train.sample(t.batch_size, torch.Generator().manual_seed(seed))
                torch.manual_seed(seed)  # dropout masks, DP noise and any other randomness of the objective
                sync = contextlib.nullcontext() if (self.world == 1 or micro == t.grad_accum - 1) else net.no_sync()
                with sync, numerics():
                    loss, logs = objective.loss(net, batch, step)
                    loss = loss * (0.0 if empty else 1.0 / t.grad_accum)  # no window drawn: a step of noise alone
                loss.backward()
                loss_sum += float(loss.detach())
                step_tokens += batch.n_tokens * self.world  # ranks draw batches of similar size
            if t.grad_clip is not None and dp is None:  # DP-SGD clips each window's gradient instead
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            step_optimizer.step()
            step_optimizer.zero_grad(set_to_none=True)
            loss_value = self._mean_across_ranks(loss_sum)
            window_tokens += step_tokens
            window_logs.update(logs)
            run_tokens += step_tokens
            done_step = step + 1
            tok_per_s = run_tokens / max(time.perf_counter() - started - eval_s, 1e-9)  # the run's figure so far
            self.callback({"kind": "step", "step": done_step, "max_steps": t.max_steps, "loss": loss_value,
                           "tokens_per_sec": tok_per_s})
            if done_step % t.log_every == 0:
                now = time.perf_counter()
                self._record({"kind": "train", "step": done_step, "loss": loss_value, "lr": lr,
                              "tokens_per_sec": window_tokens / max(now - window_start, 1e-9), **window_logs})
                window_tokens, window_start, window_logs = 0, now, {}
            elapsed = elapsed_before + time.perf_counter() - started
            out_of_time = budget_s is not None and self._any_rank(elapsed >= budget_s)
            last = done_step == t.max_steps or out_of_time
            if done_step % t.eval_every == 0 or last:
                eval_started = time.perf_counter()
                with onednn_linear():  # evaluation runs the uncompiled model in float32, whatever the precision
                    metrics = objective.evaluate(unwrap(model), data.val, t.batch_size, t.eval_batches)
                val_loss = metrics["val_loss"]
                improved = val_loss < best
                best, bad_evals = (val_loss, 0) if improved else (best, bad_evals + 1)
                if dp is not None:
                    metrics["epsilon"] = dp.epsilon()
                self._record({"kind": "eval", "step": done_step, **metrics, "best_val_loss": best})
                if self.is_main:
                    if improved or not objective.select_best:
                        save_weights(model, self.run_dir / "model.safetensors")
                    save_last(self.run_dir, model, optimizer, {"step": done_step, "best_val_loss": best,
                                                               "bad_evals": bad_evals, "elapsed_s": elapsed,
                                                               **({"dp": dp.state()} if dp is not None else {})})
                self._barrier()
                eval_s += time.perf_counter() - eval_started
                if t.patience is not None and bad_evals >= t.patience:
                    stopped = "early_stopping"
                    break
            if out_of_time:
                stopped = "time_budget"
                break
        elapsed = elapsed_before + time.perf_counter() - started
        result = TrainResult(self.run_dir, done_step, best, val_loss, val_loss * data.val.tokens_per_char / math.log(2),
                             tok_per_s, elapsed, n_params, stopped, self.history)
        privacy = dp.save(self.run_dir, done_step, c.model.context) if dp is not None and self.is_main else None
        self._record({"kind": "end", "step": result.steps, "stopped": stopped, "elapsed_s": elapsed,
                      "tokens_per_sec": result.tokens_per_sec, "parameters": n_params,
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
            from ..progress import TrainBar

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


def fit_counts(cfg: RunConfig, run_dir: Path, *, overwrite: bool = False, callback: Callback | None = None) -> TrainResult:
    """Fit a count-based model (n-gram) on the training split and score the validation split."""
    prepare_run_dir(run_dir, cfg, resume=False, overwrite=overwrite)
    train_docs, val_docs = lm_documents(cfg.data)
    tok = build_tokenizer(lm_tokenizer_config(cfg, train_docs), train_docs + spelled_alphabet(cfg.data.canaries))
    started = time.perf_counter()
    stream = encode_stream(tok, train_docs)
    model = build_model(cfg.model, tok.vocab_size).fit(stream)
    fit_s = time.perf_counter() - started
    val_stream = encode_stream(tok, val_docs)
    val_loss = float(-model.score_stream(val_stream).mean())
    tokens_per_char = len(val_stream) / max(sum(map(len, val_docs)), 1)
    write_run_files(run_dir, cfg, {"tokenizer.json": tok}, tok.vocab_size)
    model.save(run_dir / "model.safetensors")
    n_grams = sum(len(model.tables[f"keys_{k}"]) for k in range(1, model.n + 1))
    events = [{"kind": "eval", "step": 0, "val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50)),
               "val_bpc": val_loss * tokens_per_char / math.log(2), "best_val_loss": val_loss},
              {"kind": "end", "step": 0, "stopped": "fitted", "elapsed_s": fit_s, "tokens_per_sec": len(stream) / fit_s,
               "parameters": n_grams}]
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
            if callback:
                callback(e)
    log.info("fitted an order-%d n-gram model on %d tokens in %.1f s", model.n, len(stream), fit_s)
    return TrainResult(run_dir, 0, val_loss, val_loss, val_loss * tokens_per_char / math.log(2), len(stream) / fit_s,
                       fit_s, n_grams, "fitted", events)
