"""Prometheus metrics: request counts and latency per route, store head, projection lag."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class LedgerCollector(Collector):
    """Read at scrape time, so the numbers are never stale and cost nothing between scrapes."""

    def __init__(
        self,
        head: Callable[[], int],
        positions: Callable[[], dict[str, int]],
        inbox_waiting: Callable[[], int],
    ) -> None:
        self._head = head
        self._positions = positions
        self._inbox_waiting = inbox_waiting

    def collect(self) -> Iterator[Any]:
        head = self._head()
        yield GaugeMetricFamily("ledger_head_position", "Position of the newest stored event", head)
        lag = GaugeMetricFamily(
            "ledger_projection_lag",
            "Positions a projection is behind the head",
            labels=["projection"],
        )
        for name, position in self._positions().items():
            lag.add_metric([name], max(head - position, 0))
        yield lag
        yield GaugeMetricFamily(
            "ledger_webhook_inbox_waiting",
            "Webhook deliveries stored and not applied yet (accepted or retrying)",
            self._inbox_waiting(),
        )


class Metrics:
    def __init__(self) -> None:
        # One registry per app: tests build many apps in one process.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )

    def watch_store(
        self,
        head: Callable[[], int],
        positions: Callable[[], dict[str, int]],
        inbox_waiting: Callable[[], int],
    ) -> None:
        self.registry.register(LedgerCollector(head, positions, inbox_waiting))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # template, not raw path
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
