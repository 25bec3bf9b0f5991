"""Continuous batching: concurrent requests share one decoding loop, joining and leaving between steps.

`BatchEngine(generator)` owns the model in a thread of its own. `submit(job)` queues a request. Each
step the engine admits waiting jobs (a job's prompt is read in a prefill step of its own, and the
model's `merge` joins that state to the running batch; a model without `merge` serves one job at a
time), picks every row's next token with its job's own processors and random generator, and
reports tokens, text and the end of each row through the job's `on_event` callback (called from the
engine's thread). The rows of a job draw from the job's generator exactly as `Generator.generate`
draws for that prompt alone, so a seeded job gives the same text in any batch.

Beam search runs a job on its own between steps (its beams share no loop with other requests).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import TextmillError
from ..models.base import sample_tokens
from .generator import Generator, Prompt
from .options import GenerationOptions
from .processors import apply_processors, reads_history
from .stopping import IncrementalText
from .strategies import repeat_rows

log = logging.getLogger(__name__)


class QueueFull(TextmillError):
    """More jobs are waiting than the engine accepts."""


@dataclass
class Started:
    prompt_tokens: int  # the prompt's tokens (with <bos> or the chat template), for usage


@dataclass
class Token:
    index: int  # the row within the job (0 .. num_return_sequences - 1)
    token: int
    text: str  # the text this token makes safe to show (may be empty: held back, see IncrementalText)
    logprob: float | None = None  # the model's log-probability of `token` (before the decoding controls)
    top: list[tuple[int, float]] | None = None  # the `logprobs` most likely tokens and their log-probabilities


@dataclass
class Finished:
    index: int
    reason: str  # "stop" (end of text or a stop string), "length" (max_new_tokens) or "content_filter" (cut by safety)
    text: str  # the rest of the row's text (joined to the Token texts: the whole continuation)
    tokens: int  # tokens generated


@dataclass
class Failed:
    error: Exception


Event = Started | Token | Finished | Failed


@dataclass
class Job:
    prompt: Prompt
    options: GenerationOptions
    on_event: Callable[[Event], None]
    logprobs: int | None = None  # report each token's log-probability and this many alternatives
    cancelled: threading.Event = field(default_factory=threading.Event)  # set it to drop the job between steps
    safety: Any = None  # a textmill.safety.Safety policy screening the outputs (the prompt is the caller's to screen)


@dataclass
class _Lane:
    """A running job: its rows' token history, processors, generator, text and state of play."""

    job: Job
    ids: torch.Tensor  # (n, T) prompt and generated tokens, for processors that read them (else the prompt only)
    processors: list
    generator: torch.Generator | None
    texts: list[IncrementalText]
    logits: torch.Tensor  # (n, V) the next-token logits
    active: list[bool]
    reads_history: bool = False  # some processor reads `ids` (else lanes with equal processors share one pass)

    @property
    def rows(self) -> int:
        return len(self.active)


class BatchEngine:
    """One model's decoding loop, shared by every request to it (see the module docstring)."""

    def __init__(self, generator: Generator, max_rows: int = 32, max_waiting: int = 256) -> None:
        self.gen = generator
        self.model = generator.model
        self.max_rows = max_rows
        self.max_waiting = max_waiting
        self.can_join = callable(getattr(self.model, "merge", None))
        self._waiting: deque[Job] = deque()
        self._lanes: list[_Lane] = []
        self._state: Any = None
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="textmill-batch-engine", daemon=True)
        self._thread.start()

    # -- what the server sees ----------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        rows = job.options.num_return_sequences if job.options.strategy != "beam" else 1
        if rows > self.max_rows:
            raise QueueFull(f"the job asks for {rows} sequences; this engine runs at most {self.max_rows} rows")
        with self._cv:
            if self._closed:
                raise QueueFull("the engine is shut down")
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting (the limit); retry later")
            self._waiting.append(job)
            self._cv.notify()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Rows decoding now."""
        return sum(lane.rows for lane in self._lanes)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._cv:
                while not self._closed and not self._waiting and not self._lanes:
                    self._cv.wait()
                if self._closed:
                    return
                admitted = self._take()
            for job in admitted:
                try:
                    self._admit(job)
                except Exception as e:  # a bad prompt fails its own request, never the loop
                    if not isinstance(e, TextmillError):
                        log.exception("request failed")
                    job.on_event(Failed(e))
            if self._lanes:
                try:
                    self._step()
                except Exception as e:  # the model failed: every running request learns it, the loop goes on
                    log.exception("decoding step failed")
                    for lane in self._lanes:
                        lane.job.on_event(Failed(e))
                    self._lanes, self._state = [], None

    def _take(self) -> list[Job]:
        """The waiting jobs that join now: as many as fit in `max_rows` (one at a time for a model
        without `merge`, and only when nothing runs)."""
        taken: list[Job] = []
        rows = self.running
        while self._waiting:
            job = self._waiting[0]
            if job.cancelled.is_set():
                self._waiting.popleft()
                continue
            need = job.options.num_return_sequences
            if (self._lanes or taken) and (not self.can_join or rows + need > self.max_rows):
                break
            taken.append(self._waiting.popleft())
            rows += need
        return taken

    def _admit(self, job: Job) -> None:
        opts = job.options
        if opts.strategy == "beam":  # on its own, between steps
            texts = self.gen.generate([job.prompt], **opts.model_dump())[0]
            for i, text in enumerate(texts if isinstance(texts, list) else [texts]):
                tokens = len(self.gen.tokenizer.encode(text))
                text, cut = job.safety.screen_output(text) if job.safety is not None else (text, False)
                job.on_event(Finished(i, "content_filter" if cut else "stop", text, tokens))
            return
        n = opts.num_return_sequences
        ids, mask, cond = self.gen.prepare([job.prompt], opts, None)
        head = self.gen.prompt_ids(ids, mask)[0]
        job.on_event(Started(len(head)))
        generator = None
        if opts.strategy == "sample":
            generator = opts.random(ids.device)
        logits, state = self.model.step(ids, self.model.start(cond), mask)
        state, logits, ids = repeat_rows(self.model, state, logits, ids, n)  # the prompt is read once for its n rows
        decode = self.gen.tokenizer.decode_continuation
        processors = self.gen.processors(opts, ids.shape[1])
        self._lanes.append(_Lane(job, ids, processors, generator,
                                 [IncrementalText(decode, head, opts.stop, job.safety) for _ in range(n)], logits, [True] * n,
                                 any(reads_history(p) for p in processors)))
        self._state = state if self._state is None else self.model.merge([self._state, state])

    def _choose(self) -> list[torch.Tensor]:
        """Each lane's next tokens, exactly as its job alone would pick them. Lanes whose processors read
        only the scores (temperature, top-k/p, min-p, suppressed tokens) and agree are processed as one
        block, and every sampling row draws in one pass with its own job's uniform number: at 32
        single-row lanes, per-lane tensor operations cost more than a small model's step."""
        lanes = self._lanes
        sizes = [lane.rows for lane in lanes]
        logits = torch.cat([lane.logits for lane in lanes]).float()
        groups: dict[Any, list[int]] = {}
        for i, lane in enumerate(lanes):
            groups.setdefault(("own", i) if lane.reads_history else ("shared", tuple(lane.processors)), []).append(i)
        starts = [0, *itertools.accumulate(sizes)]

        def rows_of(members: list[int]) -> torch.Tensor:
            return torch.cat([torch.arange(starts[i], starts[i + 1]) for i in members])

        scores = torch.empty_like(logits)
        for key, members in groups.items():
            rows = rows_of(members)
            history = lanes[members[0]].ids if key[0] == "own" else None  # stateless processors never read it
            scores[rows] = apply_processors(lanes[members[0]].processors, history, logits[rows])
        sampling = [i for i, lane in enumerate(lanes) if lane.generator is not None]
        nxt = scores.argmax(-1)
        if sampling:
            rows = rows_of(sampling)
            uniforms = torch.cat([torch.rand(sizes[i], 1, generator=lanes[i].generator, device=lanes[i].generator.device)
                                  for i in sampling])
            nxt[rows] = sample_tokens(scores[rows], uniforms=uniforms)
        return list(nxt.split(sizes))

    def _step(self) -> None:
        """One token for every row; lanes whose rows are all done leave; the rest step the model."""
        tok = self.gen.tokenizer
        nxt_all = []
        for lane, nxt in zip(self._lanes, self._choose()):
            job, opts = lane.job, lane.job.options
            if not all(lane.active):
                active = torch.tensor(lane.active, device=nxt.device)
                nxt = torch.where(active, nxt, torch.full_like(nxt, tok.pad_id))
            if lane.reads_history:
                lane.ids = torch.cat([lane.ids, nxt[:, None]], 1)
            nxt_all.append(nxt)
            if job.cancelled.is_set():
                lane.active = [False] * lane.rows
                continue
            chosen, top = self._logprobs(lane, nxt)
            for i, t in enumerate(nxt.tolist()):
                if not lane.active[i]:
                    continue
                text = lane.texts[i]
                job.on_event(Token(i, t, text.push(t), chosen[i] if chosen else None, top[i] if top else None))
                reason = ("content_filter" if text.filtered else "stop" if t == tok.eos_id or text.stopped
                          else "length" if len(text.ids) >= opts.max_new_tokens else None)
                if reason:
                    lane.active[i] = False
                    job.on_event(Finished(i, reason, text.finish(), len(text.ids)))
        keep = [i for i, lane in enumerate(self._lanes) if any(lane.active)]
        if len(keep) < len(self._lanes):
            rows, start = [], 0
            for i, lane in enumerate(self._lanes):
                if i in keep:
                    rows.extend(range(start, start + lane.rows))
                start += lane.rows
            self._lanes = [self._lanes[i] for i in keep]
            nxt_all = [nxt_all[i] for i in keep]
            self._state = self.model.reorder(self._state, torch.tensor(rows)) if rows else None
        if not self._lanes:
            return
        logits, self._state = self.model.step(torch.cat(nxt_all)[:, None], self._state)
        for lane, part in zip(self._lanes, logits.split([lane.rows for lane in self._lanes])):
            lane.logits = part

    @staticmethod
    def _logprobs(lane: _Lane, nxt: torch.Tensor) -> tuple[list[float] | None, list[list[tuple[int, float]]] | None]:
        k = lane.job.logprobs
        if k is None:
            return None, None
        lp = lane.logits.float().log_softmax(-1)
        chosen = lp.gather(1, nxt[:, None]).squeeze(1).tolist()
        if not k:
            return chosen, [[] for _ in chosen]
        values, idx = lp.topk(k, dim=-1)
        return chosen, [list(zip(i, v)) for i, v in zip(idx.tolist(), values.tolist())]
