"""The decoder-only Transformer and its pieces."""

from gptkit.model.gpt import GPT, count_parameters, flops_per_token
from gptkit.model.kv_cache import KVCache
from gptkit.model.loss import lm_loss

__all__ = ["GPT", "KVCache", "count_parameters", "flops_per_token", "lm_loss"]
