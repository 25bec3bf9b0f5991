"""The HTTP server: OpenAI's completions and chat completions API over textmill models, and a
playground page at `/` (static/playground.html: plain HTML and JavaScript on the same API).

`create_app({"id": generator, ...}, ServeSettings(...))` builds a FastAPI app; `textmill serve`
runs it with uvicorn. Each model has one `BatchEngine`, so concurrent requests to it share one
decoding loop. Requests are read by hand (UTF-8, JSON, then the schema) so that every bad body gets
a 400 in OpenAI's error schema that names the problem; bodies past `max_body_bytes` get a 413.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from ..errors import TextmillError
from ..generate import Generator, parse_options
from ..generate.batching import BatchEngine, Failed, Finished, Job, QueueFull, Started, Token
from ..models.base import ENCODER_DECODER
from ..safety.policy import SafetyError
from .metrics import Metrics
from .schema import APIError, AttentionRequest, ChatRequest, CompletionRequest, Message

PLAYGROUND = Path(__file__).parent / "static" / "playground.html"
KNOWN_PATHS = ("/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions",
               "/v1/textmill/attention", "/rate", "/humaneval/next", "/humaneval/rating", "/humaneval/preference")


@dataclass(frozen=True)
class ServeSettings:
    api_key: str | None = None  # clients send `Authorization: Bearer KEY`; None: no key needed
    max_tokens: int = 1024  # the most tokens a request may ask for (and chat's default)
    max_n: int = 8  # the most choices per request
    max_rows: int = 32  # rows one model decodes at once
    max_waiting: int = 256  # requests waiting per model; more get a 429
    timeout: float = 300.0  # seconds a request may take; then a 504 (or an error event when streaming)
    max_body_bytes: int = 1 << 20
    safety: Any = None  # a textmill.safety.Safety policy: refused prompts get a 400, outputs are masked or cut


class _Limits:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs every streamed chunk a trip through
    a memory stream): refuses a body whose Content-Length is over the limit with a 413, and counts
    each answer by path and status."""

    def __init__(self, app: Any, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        size = dict(scope["headers"]).get(b"content-length", b"").decode()
        if size and (not size.isdigit() or int(size) > self.max_body_bytes):
            e = APIError(413, f"the request body is {size} bytes; the limit is {self.max_body_bytes}", code="body_too_large")
            self.metrics.answered(path, 413)
            return await JSONResponse(e.body(), status_code=413)(scope, receive, send)

        async def counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.metrics.answered(path, message["status"])
            await send(message)

        await self.app(scope, receive, counted)


class _Served:
    def __init__(self, name: str, generator: Generator, settings: ServeSettings) -> None:
        self.name = name
        self.generator = generator
        self.engine = BatchEngine(generator, settings.max_rows, settings.max_waiting)
        self.safety = settings.safety
        self.created = int(time.time())

    @property
    def instruct(self) -> bool:
        return bool(self.generator.info.get("chat"))

    def card(self) -> dict[str, Any]:
        info = self.generator.info
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "textmill",
                "family": info.get("family"), "kind": self.generator.model.kind,
                "source": info.get("source") or info.get("run_dir"),
                "context": getattr(self.generator.model, "max_context", None), "chat_template": self.instruct,
                "labels": self.generator.labels}


def render_chat(served: _Served, messages: list[Message]) -> tuple[Any, list[str]]:
    """A conversation as the model's prompt, and the stop strings the rendering needs.

    Instruct models use their chat template. An encoder-decoder run reads the last user message as
    its source. Any other model continues a transcript, `System: ...`, `User: ...` and `Assistant: ...`
    lines ending in `Assistant:`, and stops before it would write the next `\\nUser:` line."""
    if served.instruct:
        return [{"role": m.role if m.role != "developer" else "system", "content": m.text()} for m in messages], []
    if served.generator.model.kind == ENCODER_DECODER:
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise APIError(400, "an encoder-decoder model reads the last user message as its source; none was sent",
                           param="messages")
        return users[-1].text(), []
    lines = [f"{'System' if m.role == 'developer' else m.role.capitalize()}: {m.text()}" for m in messages]
    return "\n".join(lines) + "\nAssistant:", ["\nUser:"]


def _check_key(request: Request, key: str | None) -> None:
    if key is None:
        return
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(token.encode(), key.encode()):
        raise APIError(401, "Incorrect or missing API key: send `Authorization: Bearer KEY` with the key the server was "
                            "started with (--api-key)", type="authentication_error", code="invalid_api_key")


async def _read(request: Request, schema: type[BaseModel], limit: int) -> Any:
    body = await request.body()
    if len(body) > limit:  # a body sent without Content-Length (chunked)
        raise APIError(413, f"the request body is {len(body)} bytes; the limit is {limit}", code="body_too_large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise APIError(400, f"the request body is not UTF-8 (byte {e.start}); send JSON encoded as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise APIError(400, f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(x) for x in err["loc"]) or None
        if err["type"] == "extra_forbidden":
            raise APIError(400, f"Unrecognized request argument supplied: {param}", param=param,
                           code="unrecognized_argument") from None
        if err["type"] == "missing":
            raise APIError(400, f"{param} is required", param=param, code="missing_required_parameter") from None
        raise APIError(400, f"{param}: {err['msg']} (got {err.get('input')!r})", param=param,
                       code="invalid_value") from None


class _Run:
    """One request's job on a model's engine. The engine's thread appends events to a deque and wakes
    the event loop only when no wake-up is pending: one cross-thread call per burst of tokens, not one
    per token (at 32 rows a step, those calls cost more than a small model's step)."""

    def __init__(self, served: _Served, prompt: Any, options: dict[str, Any], logprobs: int | None) -> None:
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


def _start(served: _Served, prompts: list[Any], options: dict[str, Any], logprobs: int | None) -> list[_Run]:
    """A run per prompt; if one is refused (a full queue), the ones already queued are cancelled."""
    runs: list[_Run] = []
    try:
        for prompt in prompts:
            runs.append(_Run(served, prompt, options, logprobs))
    except APIError:
        for run in runs:
            run.cancel()
        raise
    return runs


def create_app(models: dict[str, Generator], settings: ServeSettings | None = None,
               study: str | Path | None = None) -> FastAPI:
    """The app serving `models` (by id); with `study`, also its rating pages (serve/study.py)."""
    settings = settings or ServeSettings()
    if not models and study is None:
        raise TextmillError("serve needs at least one model, or a --study to collect ratings for")
    served = {name: _Served(name, gen, settings) for name, gen in models.items()}
    metrics = Metrics({name: s.engine for name, s in served.items()})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for s in served.values():
            s.engine.close()

    app = FastAPI(title="textmill", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.served = served
    if study is not None:
        from .study import study_router

        app.include_router(study_router(study, lambda request, schema: _read(request, schema, settings.max_body_bytes)))

    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    app.add_middleware(_Limits, max_body_bytes=settings.max_body_bytes, metrics=metrics)

    def model_of(name: str) -> _Served:
        if name not in served:
            raise APIError(404, f"The model {name!r} does not exist; this server has: {', '.join(served)}",
                           param="model", code="model_not_found")
        return served[name]

    def screened(prompts: list[Any], param: str) -> list[Any]:
        try:
            return Generator.screen_prompts(prompts, settings.safety)
        except SafetyError as e:
            raise APIError(400, str(e), param=param, code="content_filter") from None

    def budget(req: Any, asked: int | None, default: int) -> int:
        if asked is not None and asked > settings.max_tokens:
            raise APIError(400, f"max_tokens is {asked}; this server allows at most {settings.max_tokens} "
                                "(serve --max-tokens)", param="max_tokens")
        if req.n > settings.max_n:
            raise APIError(400, f"n is {req.n}; this server allows at most {settings.max_n} (serve --max-n)", param="n")
        return asked if asked is not None else default

    playground_html = PLAYGROUND.read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def playground() -> str:
        return playground_html

    @app.post("/v1/textmill/attention")
    async def attention(request: Request) -> dict[str, Any]:
        """An encoder-decoder model's attention over its source for each token of `target` (default:
        its greedy output), for the playground's heatmap."""
        _check_key(request, settings.api_key)
        req: AttentionRequest = await _read(request, AttentionRequest, settings.max_body_bytes)
        gen = model_of(req.model).generator
        if gen.model.kind != ENCODER_DECODER:
            raise APIError(400, f"{req.model} is a {gen.model.kind} model; attention maps are drawn for encoder-decoder "
                                "models (seq2seq, transformer runs)", param="model")
        try:
            amap = await run_in_threadpool(gen.attention, req.source, req.target)
        except TextmillError as e:
            raise APIError(400, str(e)) from None
        return {"source": amap.source, "target": amap.target, "weights": amap.weights.round(4).tolist()}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(served)}

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        _check_key(request, settings.api_key)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        _check_key(request, settings.api_key)
        return {"object": "list", "data": [s.card() for s in served.values()]}

    @app.get("/v1/models/{name:path}")
    async def one_model(name: str, request: Request) -> dict[str, Any]:
        _check_key(request, settings.api_key)
        return model_of(name).card()

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        _check_key(request, settings.api_key)
        req: CompletionRequest = await _read(request, CompletionRequest, settings.max_body_bytes)
        s = model_of(req.model)
        opts = req.options(budget(req, req.max_tokens, 16))
        prompts = screened(req.prompts, "prompt")
        return await _respond(request, "completions", s, req, _start(s, prompts, opts, req.logprobs),
                              prompts if req.echo else None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        _check_key(request, settings.api_key)
        req: ChatRequest = await _read(request, ChatRequest, settings.max_body_bytes)
        s = model_of(req.model)
        prompt, stops = render_chat(s, req.messages)
        prompt = screened([prompt], "messages")[0]
        opts = req.options(budget(req, req.limit, settings.max_tokens))
        opts["stop"] = opts["stop"] + [x for x in stops if x not in opts["stop"]]
        return await _respond(request, "chat", s, req, _start(s, [prompt], opts, req.logprob_count), None)

    async def _respond(request: Request, kind: str, s: _Served, req: Any, runs: list[_Run],
                       echo: list[str] | None) -> Response:
        started = time.monotonic()
        tokenizer = s.generator.tokenizer
        rid = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        deadline = started + settings.timeout

        async def events(run: _Run) -> AsyncIterator[Any]:
            """The run's events until every row has finished: Started, Piece and Finished; None while idle;
            a 504 at the deadline. Tokens already waiting are joined into one Piece per row, so a client
            slower than the model gets fewer, larger chunks instead of falling behind."""
            left = req.n
            while left:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    run.cancel()
                    raise APIError(504, f"the request took longer than the server's timeout ({settings.timeout:g} s; "
                                        "serve --timeout); ask for fewer tokens", type="timeout", code="timeout")
                batch = await run.take(min(remaining, 1.0))
                if not batch:
                    yield None
                    continue
                pieces: dict[int, list[Token]] = {}
                for ev in batch:
                    if isinstance(ev, Failed):
                        raise _as_api_error(ev.error)
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

        def fmt_logprobs(items: list[Token]) -> Any:
            if runs[0].job.logprobs is None:
                return None
            piece = lambda t: tokenizer.decode([t], skip_special=False)  # noqa: E731
            if kind == "chat":
                entry = lambda t, lp: {"token": piece(t), "logprob": lp, "bytes": list(piece(t).encode())}  # noqa: E731
                return {"content": [{**entry(x.token, x.logprob), "top_logprobs": [entry(t, lp) for t, lp in x.top]}
                                    for x in items]}
            offsets, at = [], 0
            for x in items:
                offsets.append(at)
                at += len(x.text)
            return {"tokens": [piece(x.token) for x in items], "token_logprobs": [x.logprob for x in items],
                    "top_logprobs": [{piece(t): lp for t, lp in x.top} for x in items], "text_offset": offsets}

        def choice(index: int, text: str, finish: str | None, tokens: list[Token], delta: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"index": index}
            if kind == "chat":
                out["delta" if delta else "message"] = ({"content": text} if delta else
                                                        {"role": "assistant", "content": text})
            else:
                out["text"] = text
            out["logprobs"] = fmt_logprobs(tokens)
            out["finish_reason"] = finish
            return out

        def envelope(choices: list[dict[str, Any]], usage: dict[str, int] | None = None, chunk: bool = False) -> dict:
            obj = ("chat.completion.chunk" if chunk else "chat.completion") if kind == "chat" else "text_completion"
            body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": s.name, "choices": choices}
            if usage is not None or not chunk:
                body["usage"] = usage
            return body

        usage = {"prompt_tokens": 0, "completion_tokens": 0}

        def count(ev: Any) -> None:
            if isinstance(ev, Started):
                usage["prompt_tokens"] += ev.prompt_tokens
            elif isinstance(ev, Finished):
                usage["completion_tokens"] += ev.tokens

        def totals() -> dict[str, int]:
            return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}

        if not req.stream:
            try:
                choices = []
                for r, run in enumerate(runs):
                    texts: dict[int, list[str]] = {}
                    toks: dict[int, list[Token]] = {}
                    finish: dict[int, str] = {}
                    async for ev in events(run):
                        if ev is None:
                            if await request.is_disconnected():
                                for x in runs:
                                    x.cancel()
                                return Response(status_code=499)
                            continue
                        count(ev)
                        if isinstance(ev, Piece):
                            texts.setdefault(ev.index, []).append(ev.text)
                            toks.setdefault(ev.index, []).extend(ev.tokens)
                        elif isinstance(ev, Finished):
                            texts.setdefault(ev.index, []).append(ev.text)
                            finish[ev.index] = ev.reason
                    for i in range(req.n):
                        text = "".join(texts.get(i, []))
                        choices.append(choice(r * req.n + i, (echo[r] if echo else "") + text, finish[i], toks.get(i, []),
                                              False))
            except APIError:
                for x in runs:
                    x.cancel()
                raise
            metrics.generated(s.name, kind, time.monotonic() - started, None, usage)
            return JSONResponse(envelope(choices, totals()))

        # Streaming: the first event decides between an error response and a 200 stream.
        first = events(runs[0])
        try:
            head = await anext(first)
            while head is None:
                head = await anext(first)
        except APIError:
            for x in runs:
                x.cancel()
            raise

        async def sse() -> AsyncIterator[str]:
            ttft = None
            try:
                if kind == "chat":
                    for i in range(req.n):
                        yield _sse(envelope([{"index": i, "delta": {"role": "assistant", "content": ""},
                                              "logprobs": None, "finish_reason": None}], chunk=True))
                for r, run in enumerate(runs):
                    stream = first if r == 0 else events(run)
                    pending = [head] if r == 0 else []
                    if echo:
                        for i in range(req.n):
                            yield _sse(envelope([choice(r * req.n + i, echo[r], None, [], True)], chunk=True))
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
                        count(ev)
                        if isinstance(ev, Piece):
                            if ttft is None:
                                ttft = time.monotonic() - started
                            if ev.text or runs[0].job.logprobs is not None:
                                yield _sse(envelope([choice(r * req.n + ev.index, ev.text, None, ev.tokens, True)], chunk=True))
                        elif isinstance(ev, Finished):
                            c = choice(r * req.n + ev.index, ev.text, ev.reason, [], True)
                            c["logprobs"] = None
                            yield _sse(envelope([c], chunk=True))
                if req.include_usage:
                    yield _sse(envelope([], totals(), chunk=True))
            except APIError as e:  # after the 200 header: OpenAI's error object as an event
                yield _sse(e.body())
            finally:  # also when the client went away (the task is cancelled): its generation stops
                for x in runs:
                    x.cancel()
                metrics.generated(s.name, kind, time.monotonic() - started, ttft, usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


@dataclass
class Piece:
    """Tokens of one row that arrived together, sent as one chunk."""

    index: int
    tokens: list[Token]

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _as_api_error(e: Exception) -> APIError:
    if isinstance(e, APIError):
        return e
    if isinstance(e, TextmillError):
        return APIError(400, str(e))
    return APIError(500, f"the model failed: {type(e).__name__}: {e}", type="server_error")
