"""Shared fixtures: tiny corpora and a tiny trained run, built in the test session (nothing downloaded)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import textmill

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

ENGLISH = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\n"
) * 30
CHINESE = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n" * 20


def tiny_config(corpus: Path, family: str = "gpt", **train: object) -> dict:
    model = ({"family": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "context": 32} if family == "gpt" else
             {"family": "rnn", "cell": family, "n_layer": 2, "n_embd": 16, "hidden": 32, "context": 32})
    return {"model": model, "tokenizer": {"kind": "char"}, "data": {"source": str(corpus)},
            "train": {"max_steps": 30, "batch_size": 8, "eval_every": 10, "eval_batches": 4, "log_every": 5,
                      "warmup_steps": 5, "lr": 3e-3, "threads": 1, **train}}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(ENGLISH, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, corpus) -> Path:
    run = tmp_path_factory.mktemp("runs") / "gpt"
    textmill.train(tiny_config(corpus), run)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live(models: dict, study: Path | None = None, **settings) -> Iterator[str]:
    """A uvicorn server with `models` (and a study's rating pages) on a loopback port, for the
    duration: yields its base URL."""
    import uvicorn

    from textmill.serve import ServeSettings, create_app

    app = create_app(models, ServeSettings(**settings), study)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def post(url: str, body: bytes | dict, key: str | None = None) -> tuple[int, dict]:
    """POST a JSON body (bytes as they are, to send what a client never would): (status, answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
