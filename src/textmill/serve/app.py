"""The HTTP server: OpenAI's completions and chat completions API over textmill models, and a
playground page at `/` (static/playground.html: plain HTML and JavaScript on the same API).

`create_app({"id": generator, ...}, ServeSettings(...))` builds a FastAPI app; `textmill serve`
runs it with uvicorn. Each model has one `BatchEngine`, so concurrent requests to it share one
decoding loop. Requests are read by hand (UTF-8, JSON, then the schema) so that every bad body gets
a 400 in OpenAI's error schema that names the problem; bodies past `max_body_bytes` get a 413.
"""

from __future__ import annotations

import hmac
import importlib.metadata
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ValidationError

from ..config import ENCODER_DECODER
from ..decoding import Generator
from ..decoding.batching import BatchEngine
from ..errors import TextmillError
from ..safety.policy import SafetyError
from .answer import Answer, start_runs
from .metrics import Metrics
from .schema import APIError, AttentionRequest, ChatRequest, CompletionRequest, Message, ServeSettings

PLAYGROUND = Path(__file__).parent / "static" / "playground.html"
_VERSION = importlib.metadata.version("textmill")
KNOWN_PATHS = ("/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions",
               "/v1/textmill/attention", "/rate", "/humaneval/next", "/humaneval/rating", "/humaneval/preference")


class _Guard:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs every streamed chunk a trip through
    a memory stream), in front of every route:

    - a `Host` header the server was not started for is a 400 (DNS rebinding: a web page whose name
      resolves to 127.0.0.1 would otherwise reach a loopback server with its visitor's browser);
    - a request a browser sends from another origin is a 403 unless `cors_origins` allows it, so no
      web page can start generation (a cross-site `text/plain` POST needs no preflight); an allowed
      origin gets CORS headers, and its preflight a 204;
    - a body whose Content-Length is over the limit is a 413;
    and it counts each answer by path and status."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    def host_allowed(self, host: str) -> bool:
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
        allowed = self.settings.allowed_hosts
        return "*" in allowed or name.lower() in {h.lower() for h in allowed}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1") or None
        cors = self.settings.cors_origins
        cross = origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}"
        refusal = None
        if not self.host_allowed(host):
            refusal = APIError(400, f"this server does not answer for host {host!r}; start it with --allowed-host "
                                    f"{host.rsplit(':', 1)[0] or 'NAME'} to serve that name", code="invalid_host")
        elif cross and "*" not in cors and origin not in cors:
            refusal = APIError(403, f"cross-origin request from {origin} refused; start the server with --cors-origin "
                                    f"{origin} to let that site's pages call it", type="permission_error", code="cross_origin")
        size = headers.get(b"content-length", b"").decode()
        if refusal is None and size and (not size.isdigit() or int(size) > self.settings.max_body_bytes):
            refusal = APIError(413, f"the request body is {size} bytes; the limit is {self.settings.max_body_bytes}",
                               code="body_too_large")
        if refusal is not None:
            self.metrics.answered(path, refusal.status)
            return await JSONResponse(refusal.body(), status_code=refusal.status)(scope, receive, send)
        allow = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")] if cross else []
        if cross and scope["method"] == "OPTIONS":  # an allowed origin's preflight
            self.metrics.answered(path, 204)
            return await Response(status_code=204, headers={
                "access-control-allow-origin": origin, "vary": "Origin", "access-control-allow-methods": "GET, POST, OPTIONS",
                "access-control-allow-headers": "authorization, content-type", "access-control-max-age": "600"})(
                scope, receive, send)

        async def counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.metrics.answered(path, message["status"])
                if allow:
                    message = {**message, "headers": [*message.get("headers", []), *allow]}
            await send(message)

        await self.app(scope, receive, counted)


class _Served:
    def __init__(self, name: str, generator: Generator, settings: ServeSettings) -> None:
        self.name = name
        self.generator = generator
        self.engine = BatchEngine(generator, settings.max_rows, settings.max_waiting)
        self.safety = settings.safety
        self.created = int(time.time())
        inference = generator.info.get("inference") or {}
        weights = inference.get("quantize") or "fp32"
        self.format = weights + ("-compiled" if inference.get("compile") else "")
        # float32 eager is the format a prompt's text is the same alone and in any batch; bf16's kernels
        # choose their blocking by the batch's size (docs/pretrained.md), and the others are not measured
        self.batch_invariant = self.format == "fp32"
        self.fingerprint = f"textmill-{_VERSION}-{self.format}"

    @property
    def instruct(self) -> bool:
        return bool(self.generator.info.get("chat"))

    def card(self) -> dict[str, Any]:
        info = self.generator.info
        source = str(info.get("source") or info.get("run_dir") or "")
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "textmill",
                "family": info.get("family"), "kind": self.generator.model.kind,
                "source": source if source.startswith(("embedded:", "openai:")) else Path(source).name,  # never a local path
                "context": getattr(self.generator.model, "max_context", None), "chat_template": self.instruct,
                "format": self.format, "batch_invariant": self.batch_invariant,
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

    app.add_middleware(_Guard, settings=settings, metrics=metrics)

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
        return await Answer(request, "completions", s, req, start_runs(s, prompts, opts, req.logprobs),
                             prompts if req.echo else None, settings, metrics).respond()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        _check_key(request, settings.api_key)
        req: ChatRequest = await _read(request, ChatRequest, settings.max_body_bytes)
        s = model_of(req.model)
        prompt, stops = render_chat(s, req.messages)
        prompt = screened([prompt], "messages")[0]
        opts = req.options(budget(req, req.limit, settings.max_tokens))
        opts["stop"] = opts["stop"] + [x for x in stops if x not in opts["stop"]]
        return await Answer(request, "chat", s, req, start_runs(s, [prompt], opts, req.logprob_count), None, settings,
                             metrics).respond()

    return app
