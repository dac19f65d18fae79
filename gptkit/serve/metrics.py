"""What /metrics reports, in Prometheus' text format: requests, tokens in and out, the queue, and how
long the first token and each next one take."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """One registry per server, so two servers in one process (tests) count apart."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float], running: Callable[[], float],
                 cache: Callable[[], tuple[float, float, float]] = lambda: (0, 0, 0)):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("gptkit_requests", "HTTP requests by path and status", ["path", "status"], registry=r)
        self.prompt_tokens = Counter("gptkit_prompt_tokens", "Prompt tokens read", registry=r)
        self.completion_tokens = Counter("gptkit_completion_tokens", "Tokens generated", registry=r)
        Gauge("gptkit_queue_depth", "Sequences waiting for a cache row", registry=r).set_function(queue_depth)
        Gauge("gptkit_running_sequences", "Sequences being decoded", registry=r).set_function(running)
        Gauge("gptkit_prefix_cache_hit_tokens", "Prompt tokens whose keys came from the prefix cache",
              registry=r).set_function(lambda: cache()[0])
        Gauge("gptkit_prefix_cache_queried_tokens", "Prompt tokens looked up in the prefix cache",
              registry=r).set_function(lambda: cache()[1])
        Gauge("gptkit_kv_cache_usage", "Share of the KV cache's blocks that sequences hold",
              registry=r).set_function(lambda: cache()[2])
        self.ttft = Histogram("gptkit_time_to_first_token_seconds", "From a sequence's arrival to its first token",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.token_latency = Histogram("gptkit_time_per_output_token_seconds", "Between a sequence's tokens",
                                       buckets=LATENCY_BUCKETS, registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
