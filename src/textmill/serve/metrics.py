"""Prometheus metrics of a server (`GET /metrics`): requests, tokens, latency, time to first token, queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..decoding.batching import BatchEngine

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, engines: dict[str, BatchEngine]) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("textmill_requests", "Requests answered, by path and HTTP status", ["path", "status"],
                                registry=r)
        self.tokens = Counter("textmill_tokens", "Tokens read (prompt) and written (completion)", ["model", "kind"],
                              registry=r)
        self.latency = Histogram("textmill_generation_seconds", "Time from a generation request to its last token",
                                 ["model", "endpoint"], buckets=_SECONDS, registry=r)
        self.ttft = Histogram("textmill_time_to_first_token_seconds", "Time from a streamed request to its first token",
                              ["model"], buckets=_SECONDS, registry=r)
        waiting = Gauge("textmill_queue_waiting", "Requests waiting to join their model's batch", ["model"], registry=r)
        running = Gauge("textmill_batch_rows", "Rows decoding now", ["model"], registry=r)
        for name, engine in engines.items():
            waiting.labels(name).set_function(lambda e=engine: e.waiting)
            running.labels(name).set_function(lambda e=engine: e.running)

    def answered(self, path: str, status: int) -> None:
        self.requests.labels(path, str(status)).inc()

    def generated(self, model: str, endpoint: str, seconds: float, ttft: float | None, usage: dict[str, int]) -> None:
        self.latency.labels(model, endpoint).observe(seconds)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        for kind in ("prompt", "completion"):
            if usage.get(f"{kind}_tokens"):
                self.tokens.labels(model, kind).inc(usage[f"{kind}_tokens"])

    def render(self) -> str:
        return generate_latest(self.registry).decode()
