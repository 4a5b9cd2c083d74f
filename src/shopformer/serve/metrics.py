"""Service metrics in the Prometheus text format: requests, latencies, events, batches, model version.

A handful of counters and histograms kept in plain dicts: the service is one process with one event
loop, so nothing here needs a lock, and no client library is needed to expose them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

__all__ = ["Metrics"]

#: Latency histogram buckets in seconds (the p99 targets of the service lie around 0.02 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        for bound, count in zip([*map(_number, self.buckets), "+Inf"], self.counts):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{"," if labels else ""}le="{bound}"}} {cumulative}')
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {self.total:.6f}")
        out.append(f"{name}_count{braces} {cumulative}")
        return out


def _number(value: float) -> str:
    return f"{value:g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """What `/metrics` reports."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.batch_sizes = _Histogram(BATCH_BUCKETS)
        self.events: dict[str, int] = defaultdict(int)
        self.reloads = 0
        #: Requests answered 503 by load shedding (they never reach the routes).
        self.shed = 0
        self.model_version = ""

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        key = (method, route)
        if key not in self.latency:
            self.latency[key] = _Histogram(LATENCY_BUCKETS)
        self.latency[key].observe(seconds)

    def render(self, extra_gauges: dict[str, float] | None = None) -> str:
        """The exposition text."""
        lines = ["# HELP shopformer_requests_total HTTP requests by method, route and status.",
                 "# TYPE shopformer_requests_total counter"]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(f'shopformer_requests_total{{method="{method}",route="{_escape(route)}",status="{status}"}} {count}')
        lines += ["# HELP shopformer_request_seconds Request latency by method and route.",
                  "# TYPE shopformer_request_seconds histogram"]
        for (method, route), histogram in sorted(self.latency.items()):
            lines += histogram.lines("shopformer_request_seconds", f'method="{method}",route="{_escape(route)}"')
        lines += ["# HELP shopformer_events_total Events received by outcome (stored, duplicate, rejected).",
                  "# TYPE shopformer_events_total counter"]
        lines += [f'shopformer_events_total{{outcome="{outcome}"}} {count}' for outcome, count in sorted(self.events.items())]
        lines += ["# HELP shopformer_recommend_batch_size Requests scored per model call.",
                  "# TYPE shopformer_recommend_batch_size histogram",
                  *self.batch_sizes.lines("shopformer_recommend_batch_size", ""),
                  "# HELP shopformer_reloads_total Bundles swapped in since start.",
                  "# TYPE shopformer_reloads_total counter", f"shopformer_reloads_total {self.reloads}",
                  "# HELP shopformer_shed_total Requests answered 503 because too many were in flight.",
                  "# TYPE shopformer_shed_total counter", f"shopformer_shed_total {self.shed}",
                  "# HELP shopformer_model_info The bundle being served.", "# TYPE shopformer_model_info gauge",
                  f'shopformer_model_info{{version="{_escape(self.model_version)}"}} 1']
        for name, value in (extra_gauges or {}).items():
            lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
