"""Maximum mutual information reranking (DialoGPT): sample N responses from the forward model and
keep the one from which a backward model best predicts the source, log P(source | hypothesis).
Bland answers ("I don't know.") fit any source, so they predict none of it well and rank low."""

from __future__ import annotations

from dataclasses import dataclass

from gptkit.chat.examples import joined_ids
from gptkit.errors import GptkitError
from gptkit.inference import score
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer

PROBE = "Hello, world! 你好，世界。 <|endoftext|> 123"


@dataclass
class Hypothesis:
    text: str
    forward: float  # log P(hypothesis | source) under the forward model (nats)
    backward: float  # log P(source | hypothesis) under the backward model (nats), the MMI score


def check_same_tokenizer(forward: Tokenizer, backward: Tokenizer) -> None:
    """The backward model must read the same token ids as the forward one, or its scores are noise."""
    same = (type(forward) is type(backward) and forward.vocab_size == backward.vocab_size
            and forward.encode(PROBE) == backward.encode(PROBE))
    if not same:
        raise GptkitError(f"the MMI model's tokenizer ({backward!r}) differs from the chat model's ({forward!r}); "
                          "train the backward model from the same base model or tokenizer")


def rerank(forward: GPT, backward: GPT, tokenizer: Tokenizer, source: list[str],
           hypotheses: list[list[int]]) -> list[Hypothesis]:
    """Score each distinct hypothesis both ways; best MMI score first.

    The backward model reads the hypothesis, then the source turns newest first (as it was
    trained), and only the source tokens are scored. Empty replies and echoes of a source turn are
    dropped first: an echo predicts its source best of all, and is the degenerate answer MMI
    would otherwise pick.
    """
    eot = tokenizer.eot_id
    distinct = list(dict.fromkeys(tuple(h) for h in hypotheses if h and tokenizer.decode(h).strip() not in source))
    if not distinct:
        return []
    prompt = joined_ids(tokenizer, source)
    reversed_source = joined_ids(tokenizer, source[::-1])[: backward.config.block_size // 2]
    fwd = score(forward, [(prompt, [*h, eot]) for h in distinct], eot)
    bwd = score(backward, [([*h, eot], reversed_source) for h in distinct], eot)
    ranked = [Hypothesis(tokenizer.decode(h).strip(), f.logprob, b.logprob) for h, f, b in zip(distinct, fwd, bwd)]
    return sorted(ranked, key=lambda h: h.backward, reverse=True)
