"""The server's Prometheus metrics (`GET /metrics`), in a registry of its own per app."""

from __future__ import annotations

import gc
from collections.abc import Callable

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ponder.types import Result


class Metrics:
    """Requests by route, strategy and status; their time and spend; the load right now; and
    the process's own (CPU, memory, garbage collections), as the default registry has them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, load: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "strategy")
        self._requests = Counter(
            "ponder_requests", "Requests answered", (*labels, "status"), registry=self.registry
        )
        self._rejected = Counter(
            "ponder_rejected",
            "Requests refused before solving",
            ("reason",),
            registry=self.registry,
        )
        self._seconds = Histogram(
            "ponder_request_seconds",
            "Time to solve a request",
            labels,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self._tokens = Counter(
            "ponder_generated_tokens", "Tokens the policy generated", labels, registry=self.registry
        )
        self._verifier_tokens = Counter(
            "ponder_verifier_tokens", "Tokens the verifier read", labels, registry=self.registry
        )
        self._samples = Counter(
            "ponder_samples", "Completions drawn from the policy", labels, registry=self.registry
        )
        self._flops = Counter(
            "ponder_flops", "Estimated FLOPs, verifier included", labels, registry=self.registry
        )
        self._upstream_calls = Counter(
            "ponder_upstream_calls",
            "Calls started to a route's generator or verifier (concurrent requests' merged)",
            ("model", "role"),
            registry=self.registry,
        )
        self._upstream_items = Counter(
            "ponder_upstream_items",
            "Prompts or solutions sent in those calls",
            ("model", "role"),
            registry=self.registry,
        )
        active = Gauge("ponder_active_requests", "Requests being solved", registry=self.registry)
        queued = Gauge("ponder_queued_requests", "Requests waiting", registry=self.registry)
        active.set_function(lambda: load()[0])
        queued.set_function(lambda: load()[1])
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        Gauge(
            "ponder_gc_frozen_objects",
            "Start-up objects kept out of garbage collection (gc.freeze)",
            registry=self.registry,
        ).set_function(gc.get_freeze_count)

    def upstream_call(self, model: str, role: str, items: int) -> None:
        self._upstream_calls.labels(model, role).inc()
        self._upstream_items.labels(model, role).inc(items)

    def rejected(self, reason: str) -> None:
        self._rejected.labels(reason).inc()

    def finished(
        self,
        model: str,
        strategy: str,
        status: int,
        result: Result | None = None,
        seconds: float | None = None,
    ) -> None:
        self._requests.labels(model, strategy, str(status)).inc()
        if result is None:
            return
        cost = result.cost
        self._tokens.labels(model, strategy).inc(cost.generated_tokens)
        self._verifier_tokens.labels(model, strategy).inc(cost.verifier_tokens)
        self._samples.labels(model, strategy).inc(cost.samples)
        self._flops.labels(model, strategy).inc(cost.flops)
        if seconds is not None:
            self._seconds.labels(model, strategy).observe(seconds)

    def render(self) -> str:
        return generate_latest(self.registry).decode()
