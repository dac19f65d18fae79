"""Using a model: the decoding loop, the logits processors, streaming text, and the scorer."""

from gptkit.inference.generate import (
    cut_at_stops,
    generate,
    generate_ids,
    generate_stream,
    generate_tokens,
    stream_text,
)
from gptkit.inference.sampling import SamplingConfig, sample
from gptkit.inference.score import Score, score

__all__ = ["SamplingConfig", "Score", "cut_at_stops", "generate", "generate_ids", "generate_stream", "generate_tokens", "sample", "score",
           "stream_text"]
