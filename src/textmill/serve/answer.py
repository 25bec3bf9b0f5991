"""How a request runs and is answered: a `Run` is one prompt's job on a model's engine, and an
`Answer` turns a request's runs into OpenAI's JSON body or its stream of Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..decoding import parse_options
from ..decoding.batching import Failed, Finished, Job, QueueFull, Started, Token
from ..errors import TextmillError
from .metrics import Metrics
from .schema import APIError, ServeSettings


class Run:
    """One request's job on a model's engine. The engine's thread appends events to a deque and wakes
    the event loop only when no wake-up is pending: one cross-thread call per burst of tokens, not one
    per token (at 32 rows a step, those calls cost more than a small model's step)."""

    def __init__(self, served: Any, prompt: Any, options: dict[str, Any], logprobs: int | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.buffer: deque = deque()
        self.ready = asyncio.Event()
        self.waking = False
        try:
            opts = parse_options(options)
        except TextmillError as e:
            raise APIError(400, str(e)) from None
        self.job = Job(prompt, opts, self._arrive, logprobs, safety=served.safety)
        try:
            served.engine.submit(self.job)
        except QueueFull as e:
            raise APIError(429, str(e), type="rate_limit_error", code="queue_full") from None

    def _arrive(self, event: Any) -> None:  # the engine's thread
        self.buffer.append(event)
        if not self.waking:
            self.waking = True
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:  # the event loop
        self.waking = False
        self.ready.set()

    async def take(self, timeout: float) -> list[Any]:
        """The events that arrived (waiting up to `timeout` seconds for the first); [] on a timeout."""
        if not self.buffer:
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        self.ready.clear()
        events = []
        while self.buffer:
            events.append(self.buffer.popleft())
        return events

    def cancel(self) -> None:
        self.job.cancelled.set()


def start_runs(served: Any, prompts: list[Any], options: dict[str, Any], logprobs: int | None) -> list[Run]:
    """A run per prompt; if one is refused (a full queue), the ones already queued are cancelled."""
    runs: list[Run] = []
    try:
        for prompt in prompts:
            runs.append(Run(served, prompt, options, logprobs))
    except APIError:
        for run in runs:
            run.cancel()
        raise
    return runs


class Answer:
    """One request's answer: its runs' events turned into OpenAI's JSON body, or into its stream of
    Server-Sent Events (`kind`: "completions" or "chat")."""

    def __init__(self, request: Request, kind: str, served: Any, req: Any, runs: list[Run],
                 echo: list[str] | None, settings: ServeSettings, metrics: Metrics) -> None:
        self.request, self.kind, self.served, self.req, self.runs, self.echo = request, kind, served, req, runs, echo
        self.settings, self.metrics = settings, metrics
        self.tokenizer = served.generator.tokenizer
        self.started = time.monotonic()
        self.id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.deadline = self.started + settings.timeout
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}

    async def respond(self) -> Response:
        return await (self._stream() if self.req.stream else self._whole())

    def cancel(self) -> None:
        for run in self.runs:
            run.cancel()

    # -- events --------------------------------------------------------------------------------------
    async def events(self, run: Run) -> AsyncIterator[Any]:
        """The run's events until every row has finished: Started, Piece and Finished; None while idle;
        a 504 at the deadline. Tokens already waiting are joined into one Piece per row, so a client
        slower than the model gets fewer, larger chunks instead of falling behind."""
        left = self.req.n
        while left:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                run.cancel()
                raise APIError(504, f"the request took longer than the server's timeout ({self.settings.timeout:g} s; "
                                    "serve --timeout); ask for fewer tokens", type="timeout", code="timeout")
            batch = await run.take(min(remaining, 1.0))
            if not batch:
                yield None
                continue
            pieces: dict[int, list[Token]] = {}
            for ev in batch:
                if isinstance(ev, Failed):
                    raise as_api_error(ev.error)
                if isinstance(ev, Token):
                    pieces.setdefault(ev.index, []).append(ev)
                    continue
                if isinstance(ev, Finished):
                    if ev.index in pieces:
                        yield Piece(ev.index, pieces.pop(ev.index))
                    left -= 1
                yield ev
            for index, tokens in pieces.items():
                yield Piece(index, tokens)

    def count(self, ev: Any) -> None:
        if isinstance(ev, Started):
            self.usage["prompt_tokens"] += ev.prompt_tokens
        elif isinstance(ev, Finished):
            self.usage["completion_tokens"] += ev.tokens

    def totals(self) -> dict[str, int]:
        return {**self.usage, "total_tokens": self.usage["prompt_tokens"] + self.usage["completion_tokens"]}

    # -- OpenAI's objects ----------------------------------------------------------------------------
    def logprobs(self, items: list[Token]) -> Any:
        if self.runs[0].job.logprobs is None:
            return None
        piece = lambda t: self.tokenizer.decode([t], skip_special=False)  # noqa: E731
        if self.kind == "chat":
            entry = lambda t, lp: {"token": piece(t), "logprob": lp, "bytes": list(piece(t).encode())}  # noqa: E731
            return {"content": [{**entry(x.token, x.logprob), "top_logprobs": [entry(t, lp) for t, lp in x.top]}
                                for x in items]}
        offsets, at = [], 0
        for x in items:
            offsets.append(at)
            at += len(x.text)
        return {"tokens": [piece(x.token) for x in items], "token_logprobs": [x.logprob for x in items],
                "top_logprobs": [{piece(t): lp for t, lp in x.top} for x in items], "text_offset": offsets}

    def choice(self, index: int, text: str, finish: str | None, tokens: list[Token], delta: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index}
        if self.kind == "chat":
            out["delta" if delta else "message"] = {"content": text} if delta else {"role": "assistant", "content": text}
        else:
            out["text"] = text
        out["logprobs"] = self.logprobs(tokens)
        out["finish_reason"] = finish
        return out

    def envelope(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None, chunk: bool = False) -> dict:
        obj = ("chat.completion.chunk" if chunk else "chat.completion") if self.kind == "chat" else "text_completion"
        body: dict[str, Any] = {"id": self.id, "object": obj, "created": self.created, "model": self.served.name,
                                "system_fingerprint": self.served.fingerprint, "choices": choices}
        if usage is not None or not chunk:
            body["usage"] = usage
        return body

    # -- the two ways to answer ----------------------------------------------------------------------
    async def _whole(self) -> Response:
        n = self.req.n
        try:
            choices = []
            for r, run in enumerate(self.runs):
                texts: dict[int, list[str]] = {}
                toks: dict[int, list[Token]] = {}
                finish: dict[int, str] = {}
                async for ev in self.events(run):
                    if ev is None:
                        if await self.request.is_disconnected():
                            self.cancel()
                            return Response(status_code=499)
                        continue
                    self.count(ev)
                    if isinstance(ev, Piece):
                        texts.setdefault(ev.index, []).append(ev.text)
                        toks.setdefault(ev.index, []).extend(ev.tokens)
                    elif isinstance(ev, Finished):
                        texts.setdefault(ev.index, []).append(ev.text)
                        finish[ev.index] = ev.reason
                for i in range(n):
                    text = (self.echo[r] if self.echo else "") + "".join(texts.get(i, []))
                    choices.append(self.choice(r * n + i, text, finish[i], toks.get(i, []), False))
        except APIError:
            self.cancel()
            raise
        self.metrics.generated(self.served.name, self.kind, time.monotonic() - self.started, None, self.usage)
        return JSONResponse(self.envelope(choices, self.totals()))

    async def _stream(self) -> Response:
        # The first event decides between an error response and a 200 stream.
        first = self.events(self.runs[0])
        try:
            head = await anext(first)
            while head is None:
                head = await anext(first)
        except APIError:
            self.cancel()
            raise
        return StreamingResponse(self._sse(first, head), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def _sse(self, first: AsyncIterator[Any], head: Any) -> AsyncIterator[str]:
        n, ttft = self.req.n, None
        try:
            if self.kind == "chat":
                for i in range(n):
                    yield sse(self.envelope([{"index": i, "delta": {"role": "assistant", "content": ""},
                                               "logprobs": None, "finish_reason": None}], chunk=True))
            for r, run in enumerate(self.runs):
                stream = first if r == 0 else self.events(run)
                pending = [head] if r == 0 else []
                if self.echo:
                    for i in range(n):
                        yield sse(self.envelope([self.choice(r * n + i, self.echo[r], None, [], True)], chunk=True))
                while True:
                    if pending:
                        ev = pending.pop()
                    else:
                        try:
                            ev = await anext(stream)
                        except StopAsyncIteration:
                            break
                    if ev is None:
                        continue
                    self.count(ev)
                    if isinstance(ev, Piece):
                        if ttft is None:
                            ttft = time.monotonic() - self.started
                        if ev.text or self.runs[0].job.logprobs is not None:
                            yield sse(self.envelope([self.choice(r * n + ev.index, ev.text, None, ev.tokens, True)],
                                                     chunk=True))
                    elif isinstance(ev, Finished):
                        c = self.choice(r * n + ev.index, ev.text, ev.reason, [], True)
                        c["logprobs"] = None
                        yield sse(self.envelope([c], chunk=True))
            if self.req.include_usage:
                yield sse(self.envelope([], self.totals(), chunk=True))
        except APIError as e:  # after the 200 header: OpenAI's error object as an event
            yield sse(e.body())
        finally:  # also when the client went away (the task is cancelled): its generation stops
            self.cancel()
            self.metrics.generated(self.served.name, self.kind, time.monotonic() - self.started, ttft, self.usage)
        yield "data: [DONE]\n\n"


@dataclass
class Piece:
    """Tokens of one row that arrived together, sent as one chunk."""

    index: int
    tokens: list[Token]

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)


def sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def as_api_error(e: Exception) -> APIError:
    if isinstance(e, APIError):
        return e
    if isinstance(e, TextmillError):
        return APIError(400, str(e))
    return APIError(500, f"the model failed: {type(e).__name__}: {e}", type="server_error")
