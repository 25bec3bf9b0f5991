"""Serving under load: a `textmill serve` process on loopback, `--requests` streamed completions from
`--clients` concurrent connections, against the same kind of requests sent one at a time.

The load comes from a minimal asyncio HTTP client in one thread, as vLLM's serving benchmark uses a
bare aiohttp client: the official openai client (what the tests use) parses every chunk into pydantic
objects, and 32 threads of it used 72 s of CPU time during the small model's run (the whole run took about
90 s of wall time on the 2 cores), time the server then lacked.

Models: a small one (the baby character GPT of `configs/gpt/shakespeare_char.yaml`, trained here for
`--char-steps` steps) and the embedded SmolLM2-135M-Instruct (bf16 weights, compiled blocks). Every
request is a different line of the embedded Shakespeare as its prompt, `--max-tokens` new tokens,
temperature 0.8, its own seed. Reported per model: errors, throughput (completion tokens per second of
wall time), p50 and p99 latency, p50 and p99 time to first token; one at a time, the first
`--sequential` requests (a rate, so fewer requests measure it). Both phases run after a warm-up
(compilation included), and the server is a separate process, so clients and server share the 2 cores.

    python benchmarks/serve_load.py [--requests 1000] [--clients 32] [--sequential 100] [--only char smollm2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import merge_rows, print_table, save  # noqa: E402

import textmill  # noqa: E402
from textmill.data.embedded import shakespeare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompts(n: int) -> list[str]:
    lines = [line.strip() for play in shakespeare() for line in play.splitlines() if len(line.strip()) > 20]
    return [lines[(i * 7919) % len(lines)] for i in range(n)]


def start_server(source: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "textmill", "serve", f"m={source}", "--port", str(port),
                             "--max-waiting", "4096", "--timeout", "3600", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"{url}/health").read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server for {source} did not start")
            time.sleep(0.5)


async def one(host: str, port: int, prompt: str, seed: int, max_tokens: int) -> dict:
    """One streamed completion over a raw HTTP/1.1 connection; its latency, time to first token and tokens."""
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    started = time.perf_counter()
    first, tokens = None, 0
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (host.encode(), len(body), body))
        status = int((await reader.readline()).split()[1])
        while (await reader.readline()).strip():  # the headers
            pass
        if status != 200:
            return {"error": f"HTTP {status}: {(await reader.read()).decode(errors='replace')[:200]}"}
        async for raw in reader:  # chunked transfer framing and SSE lines: only the data lines matter
            line = raw.strip()
            if not line.startswith(b"data: {"):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return {"error": event["error"]["message"]}
            if first is None and event["choices"] and event["choices"][0]["text"]:
                first = time.perf_counter() - started
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    finally:
        writer.close()
    return {"latency": time.perf_counter() - started, "ttft": first, "tokens": tokens}


def load(url: str, texts: list[str], clients: int, max_tokens: int) -> tuple[list[dict], float]:
    """Send `texts` from `clients` concurrent connections; (per-request results, wall seconds)."""
    host, port = url.removeprefix("http://").split(":")

    async def run() -> list[dict]:
        results: list[dict] = [{} for _ in texts]
        todo = iter(range(len(texts)))

        async def client() -> None:
            for i in todo:
                try:
                    results[i] = await one(host, int(port), texts[i], i, max_tokens)
                except OSError as e:
                    results[i] = {"error": repr(e)}

        await asyncio.gather(*(client() for _ in range(clients)))
        return results

    started = time.perf_counter()
    results = asyncio.run(run())
    return results, time.perf_counter() - started


def summary(results: list[dict], seconds: float) -> dict:
    ok = [r for r in results if "error" not in r]
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1] if len(xs) > 1 else (xs[0] if xs else None)  # noqa: E731
    lat, ttft = [r["latency"] for r in ok], [r["ttft"] for r in ok if r["ttft"] is not None]
    return {"requests": len(results), "errors": len(results) - len(ok), "tokens": sum(r["tokens"] for r in ok),
            "seconds": seconds, "tokens_per_sec": sum(r["tokens"] for r in ok) / seconds,
            "p50_latency": q(lat, 50), "p99_latency": q(lat, 99), "p50_ttft": q(ttft, 50), "p99_ttft": q(ttft, 99)}


def bench(name: str, source: str, extra: list[str], args, max_tokens: int) -> list[dict]:
    texts = prompts(args.requests)
    proc, url = start_server(source, extra)
    try:
        load(url, prompts(args.clients), args.clients, max_tokens)  # warm-up: compiles every batch size on the way
        load(url, prompts(3), 1, max_tokens)
        seq, seq_s = load(url, texts[:args.sequential], 1, max_tokens)
        par, par_s = load(url, texts, args.clients, max_tokens)
    finally:
        proc.terminate()
        proc.wait(60)
    one_at_a_time, concurrent = summary(seq, seq_s), summary(par, par_s)
    speedup = concurrent["tokens_per_sec"] / one_at_a_time["tokens_per_sec"]
    return [{"key": f"{name}/1", "model": name, "mode": "one at a time", "clients": 1, **one_at_a_time, "speedup": 1.0},
            {"key": f"{name}/n", "model": name, "mode": "concurrent", "clients": args.clients, **concurrent, "speedup": speedup}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--sequential", type=int, default=100)
    ap.add_argument("--char-steps", type=int, default=500)
    ap.add_argument("--only", nargs="+", default=["char", "smollm2"])
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "char" in args.only:
            run = Path(tmp) / "char"
            textmill.train(str(ROOT / "configs/gpt/shakespeare_char.yaml"), run,
                           overrides=["data.source=embedded:shakespeare", f"train.max_steps={args.char_steps}"])
            rows += bench("char GPT 0.8M", str(run), [], args, max_tokens=64)
        if "smollm2" in args.only:
            rows += bench("SmolLM2-135M (bf16, compiled)", "embedded:smollm2-135m-instruct", ["--quantize", "bf16", "--compile"],
                          args, max_tokens=32)
    rows = merge_rows("serve_load", rows, "key")  # a run with --only keeps the other model's rows
    print_table(rows, ["model", "mode", "clients", "requests", "errors", "tokens_per_sec", "speedup", "p50_latency",
                       "p99_latency", "p50_ttft", "p99_ttft"])
    save("serve_load", {"requests": args.requests, "clients": args.clients, "sequential": args.sequential, "rows": rows})


if __name__ == "__main__":
    main()
