"""The models a server serves: each with its tokenizer, chat template, engine and, for a dialogue
model, an optional backward model that reranks replies (MMI, as ``gptkit chat`` does)."""

from __future__ import annotations

from dataclasses import dataclass

from gptkit.chat.mmi import check_same_tokenizer
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.serve.engine import Engine, EngineConfig
from gptkit.serve.metrics import Metrics
from gptkit.serve.template import pick_template
from gptkit.tokenizer import Tokenizer


@dataclass
class ServedModel:
    name: str  # as given to --model; the "model" field of requests
    model: GPT
    tokenizer: Tokenizer
    template: str  # "dialogue" or "plain" (gptkit.serve.template)
    engine: Engine
    backward: GPT | None = None  # the MMI model, for non-streamed chat replies
    num_hypotheses: int = 8  # replies sampled for MMI to choose from

    @property
    def context(self) -> int:
        return self.engine.context

    @property
    def reranks(self) -> bool:
        """Whether MMI chooses the non-streamed chat replies: it scores dialogue turns only."""
        return self.backward is not None and self.template == "dialogue"


def serve_model(name: str, loaded: tuple[GPT, Tokenizer], template: str, engine: EngineConfig, metrics: Metrics,
                backward: tuple[GPT, Tokenizer] | None = None, num_hypotheses: int = 8) -> ServedModel:
    model, tokenizer = loaded
    template = pick_template(name, template, tokenizer)
    if template == "dialogue" and tokenizer.eot_id is None:
        raise GptkitError(f"{name}: the dialogue template needs an end-of-text token, which this vocabulary lacks; "
                          "use --chat-template plain")
    if backward is not None:
        check_same_tokenizer(tokenizer, backward[1])
        if num_hypotheses > engine.max_queue:  # every reply it reranks would be refused
            raise GptkitError(f"--num-hypotheses {num_hypotheses} is more than --max-queue {engine.max_queue} sequences; "
                              "lower it or raise --max-queue")
    return ServedModel(name, model.eval(), tokenizer, template, Engine(model, tokenizer, engine, metrics),
                       backward[0].eval() if backward else None, num_hypotheses)
