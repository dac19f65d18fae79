"""`gptkit serve`: OpenAI's API over gptkit models, with continuous batching, and a chat page."""

from __future__ import annotations

from gptkit.model import GPT
from gptkit.serve.app import Limits, ServerConfig, create_app
from gptkit.serve.engine import EngineConfig
from gptkit.serve.metrics import Metrics
from gptkit.serve.models import ServedModel, serve_model
from gptkit.tokenizer import Tokenizer

__all__ = ["EngineConfig", "Limits", "ServerConfig", "build_app", "create_app"]


def build_app(loaded: dict[str, tuple[GPT, Tokenizer]], cfg: ServerConfig, engine: EngineConfig, template: str = "auto",
              backward: tuple[GPT, Tokenizer] | None = None, num_hypotheses: int = 8):
    """The app serving each (model, tokenizer) under its name; ``backward`` reranks the first one's chat replies."""
    models: dict[str, ServedModel] = {}
    metrics = Metrics(lambda: sum(m.engine.queue_depth() for m in models.values()),
                      lambda: sum(len(m.engine.running) for m in models.values()),
                      lambda: cache_stats([m.engine.decode for m in models.values()]))
    for i, (name, pair) in enumerate(loaded.items()):
        models[name] = serve_model(name, pair, template, engine, metrics, backward if i == 0 else None, num_hypotheses)
    return create_app(models, cfg, metrics)


def cache_stats(engines) -> tuple[float, float, float]:
    """Prefix-cache hit and queried tokens, and the share of KV cache blocks held, over all models."""
    blocks = [e.blocks for e in engines]
    held = sum(b.cache_size - len(b.free) - len(b.idle) for b in blocks)
    return (sum(b.hit_tokens for b in blocks), sum(b.looked_up_tokens for b in blocks),
            held / max(1, sum(b.cache_size for b in blocks)))
