"""Sampling from a model: the decoding loop, the logits processors, streaming text."""

from gptkit.inference.generate import (
    generate,
    generate_ids,
    generate_tokens,
    stream_text,
)
from gptkit.inference.sampling import SamplingConfig, sample

__all__ = ["SamplingConfig", "generate", "generate_ids", "generate_tokens", "sample", "stream_text"]
