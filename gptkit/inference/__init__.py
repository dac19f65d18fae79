"""Using a model: the decoding loop, the logits processors, streaming text, and the scorer."""

from gptkit.inference.generate import (
    generate,
    generate_ids,
    generate_tokens,
    stream_text,
)
from gptkit.inference.sampling import SamplingConfig, sample
from gptkit.inference.score import Score, score

__all__ = ["SamplingConfig", "Score", "generate", "generate_ids", "generate_tokens", "sample", "score", "stream_text"]
