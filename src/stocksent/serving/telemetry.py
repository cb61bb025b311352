"""Prometheus metrics of the scoring service: requests, latency, messages scored, batch sizes, model.

One process keeps its samples in its own registry. Several uvicorn workers are several processes:
there each writes its samples to files in $PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode, chosen when prometheus_client is first imported) and /metrics sums the files of
all of them; `stocksent serve --workers N` points that variable at a fresh folder.
"""
from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER_ROUTE = "other"  # any path the app has no route for: label values stay a fixed, small set
# Messages per model call: one request alone up to two full requests joined (Batcher.run).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Telemetry:
    """The service's metrics, registered in a registry of their own (so two apps in one process,
    as in tests, count apart), and their exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("stocksent_requests", "HTTP requests by route template and status code",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("stocksent_request_seconds", "time to answer a request, by route template",
                                 ["route"], registry=self.registry)
        self.scored = Counter("stocksent_messages_scored", "messages scored by the model", registry=self.registry)
        self.batch_size = Histogram("stocksent_batch_size", "messages per model call formed by the request batcher",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        # An Info metric, but as a gauge: multiprocess mode has no Info.
        self.model = Gauge("stocksent_model_info", "the model served (1 for its name, version and backend)",
                           ["name", "version", "backend"], multiprocess_mode="livemostrecent", registry=self.registry)

    def model_loaded(self, name: str, version: str, backend: str) -> None:
        self.model.labels(name, version, backend).set(1)

    def batch_scored(self, size: int) -> None:
        self.scored.inc(size)
        self.batch_size.observe(size)

    def request_done(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format: this process's, or every worker's summed."""
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged)


class RequestMetrics:
    """ASGI middleware: counts each HTTP request by route template and status code, and times it.
    The template (`/v1/predict`) rather than the raw path keeps the label values few."""

    def __init__(self, app: Any, telemetry: Telemetry, routes: set[str]):
        self.app, self.telemetry, self.routes = app, telemetry, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500  # no response started: the server failed

        async def noted_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted_send)
        finally:
            self.telemetry.request_done(self._route(scope), status, time.perf_counter() - start)

    def _route(self, scope: dict) -> str:
        # The router leaves the route it matched in the scope; a request refused before routing
        # (BodyLimit) is labelled by its path when that is one of the app's.
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return route.path
        return scope["path"] if scope["path"] in self.routes else OTHER_ROUTE
