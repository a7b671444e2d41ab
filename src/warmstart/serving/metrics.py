"""What ``GET /metrics`` reports, in Prometheus' text format (version 0.0.4).

Request counts and latency by route (the route's template, so random URLs cannot grow the
table), texts and batches per model, the sizes of the batches the micro-batcher formed, the
texts waiting, and requests in flight. Each worker process counts its own (run one worker
per scrape target, or add the workers' figures up).

Everything is updated on the event loop's thread, so no locks are needed.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Labels = tuple[tuple[str, str], ...]
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Histogram:
    """Cumulative-bucket histogram of one series."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one: above every bucket
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: Labels) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            out.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {running}")
        out.append(f"{name}_sum{_labels(labels)} {self.total!r}")  # every digit: it only grows
        out.append(f"{name}_count{_labels(labels)} {self.n}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


class Metrics:
    """The server's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.requests: dict[Labels, int] = defaultdict(int)
        self.latency: dict[Labels, Histogram] = {}
        self.in_flight: dict[Labels, int] = defaultdict(int)
        self.texts: dict[Labels, int] = defaultdict(int)
        self.truncated: dict[Labels, int] = defaultdict(int)
        self.batch_texts: dict[Labels, Histogram] = {}
        self.batch_requests: dict[Labels, Histogram] = {}
        self.batch_seconds: dict[Labels, Histogram] = {}
        self.rejected: dict[Labels, int] = defaultdict(int)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"  # a client may send any token
        self.requests[(("route", route), ("method", method), ("status", str(status)))] += 1
        key = (("route", route),)
        self.latency.setdefault(key, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, model: str, op: str, texts: int, requests: int, seconds: float) -> None:
        key = (("model", model), ("op", op))
        self.batch_texts.setdefault(key, Histogram(SIZE_BUCKETS)).observe(texts)
        self.batch_requests.setdefault(key, Histogram(SIZE_BUCKETS)).observe(requests)
        self.batch_seconds.setdefault(key, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def served(self, model: str, op: str, texts: int, truncated: int) -> None:
        key = (("model", model), ("op", op))
        self.texts[key] += texts
        self.truncated[key] += truncated

    def render(self, queues: dict[Labels, int], info: Callable[[], list[str]] | None = None) -> str:
        """The exposition text; ``queues``: texts waiting per (model, op)."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        def scalars(name: str, kind: str, help_: str, values: dict[Labels, int]) -> None:
            family(name, kind, help_)
            out.extend(f"{name}{_labels(k)} {v}" for k, v in sorted(values.items()))

        def histograms(name: str, help_: str, values: dict[Labels, Histogram]) -> None:
            family(name, "histogram", help_)
            for k, h in sorted(values.items()):
                out.extend(h.lines(name, k))

        scalars("warmstart_requests_total", "counter", "HTTP requests answered, by route, "
                "method and status", self.requests)
        histograms("warmstart_request_duration_seconds", "time to answer a request, by route",
                   self.latency)
        scalars("warmstart_requests_in_flight", "gauge", "requests being answered, by route",
                self.in_flight)
        scalars("warmstart_texts_total", "counter", "texts classified or embedded", self.texts)
        scalars("warmstart_texts_truncated_total", "counter",
                "texts cut (too many characters or pieces)", self.truncated)
        histograms("warmstart_batch_texts", "texts in one forward pass", self.batch_texts)
        histograms("warmstart_batch_requests", "requests merged into one forward pass",
                   self.batch_requests)
        histograms("warmstart_batch_duration_seconds", "time of one forward pass",
                   self.batch_seconds)
        scalars("warmstart_queue_texts", "gauge", "texts waiting for a forward pass", queues)
        scalars("warmstart_rejected_total", "counter", "requests refused with 503 (queue full)",
                self.rejected)
        if info is not None:
            out.extend(info())
        return "\n".join(out) + "\n"
