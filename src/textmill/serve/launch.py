"""What `textmill serve` loads and runs: model ids from sources, and uvicorn on the app."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..decoding import Generator
from ..errors import ConfigError
from .schema import LOOPBACK, ServeSettings

log = logging.getLogger(__name__)


def model_id(source: str) -> tuple[str, str]:
    """`ID=SOURCE`, or the id a source is served under: an embedded model's name, a run directory's
    or Hugging Face directory's name, a GGUF file's stem."""
    from ..loading import split_named

    name, source = split_named(source)
    if name is not None:
        return name, source
    if source.startswith("embedded:"):
        return source.split(":", 1)[1], source
    path = Path(source)
    return (path.stem if path.suffix == ".gguf" else path.resolve().name), source


def load_models(sources: list[str], quantize: str | None = None, compile: bool = False) -> dict[str, Generator]:
    from ..loading import load

    models: dict[str, Generator] = {}
    for spec in sources:
        name, source = model_id(spec)
        if name in models:
            raise ConfigError(f"two models would be served as {name!r}; name them apart with ID=SOURCE")
        gen = load(source, quantize=quantize, compile=compile)
        if not isinstance(gen, Generator):
            raise ConfigError(f"{source} is a grammar, which has no token model to serve; serve a run directory or a "
                              "pretrained source (sample grammars with `textmill generate GRAMMAR.yaml`)")
        models[name] = gen
    return models


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The Host names a server bound to `host` answers: a loopback address's loopback names, another
    address or name itself, and any for a wildcard address (0.0.0.0, ::) unless `extra` names them;
    always `extra` too."""
    if host in LOOPBACK:
        return (*LOOPBACK, *extra)
    if host in ("0.0.0.0", "::", ""):
        return (*LOOPBACK, *extra) if extra else ("*",)
    return (host, *extra)


def serve(sources: list[str], host: str = "127.0.0.1", port: int = 8000, quantize: str | None = None,
          compile: bool = False, study: str | Path | None = None, allowed_host: Sequence[str] = (),
          **settings: Any) -> None:
    """Load `sources` and serve them, and the rating pages of `study`, until interrupted (settings:
    `ServeSettings` fields; `allowed_host`: names the server answers besides the one it is bound to)."""
    import uvicorn

    from .app import create_app

    settings["allowed_hosts"] = allowed_hosts(host, allowed_host)
    app = create_app(load_models(sources, quantize, compile), ServeSettings(**settings), study)
    if host not in LOOPBACK and settings.get("api_key") is None:
        log.warning("serving on %s without an API key: anyone who reaches this address can use the models", host)
    uvicorn.run(app, host=host, port=port, log_level="info")
