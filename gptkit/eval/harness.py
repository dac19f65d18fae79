"""An adapter that lets EleutherAI's lm-evaluation-harness evaluate a gptkit model.

Each of the harness's three request types maps onto a gptkit primitive: loglikelihood onto score(),
loglikelihood_rolling onto the sliding-window perplexity, generate_until onto generate().

    import lm_eval
    from gptkit.eval.harness import GptkitLM
    lm_eval.simple_evaluate(model=GptkitLM("runs/shakespeare"), tasks=["lambada_openai"])
"""

from __future__ import annotations

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from gptkit.eval.perplexity import perplexity
from gptkit.inference import SamplingConfig, cut_at_stops, generate_ids, score


@register_model("gptkit")
class GptkitLM(LM):
    def __init__(self, pretrained: str, device: str = "auto", batch_size: int | str = 16, max_gen_toks: int = 256,
                 progress: bool = True):
        super().__init__()
        import gptkit
        from gptkit.device import resolve_device

        self.model, self.tokenizer = gptkit.load(pretrained, device=resolve_device(device))
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 16
        self.max_gen_toks = int(max_gen_toks)
        self.progress = progress

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """(log P(continuation | context), whether greedy decoding would produce the continuation)."""
        pairs = [(self.tokenizer.encode(ctx), self.tokenizer.encode(cont)) for ctx, cont in (r.args for r in requests)]
        scores = score(self.model, pairs, self.tokenizer.eot_id, self.batch_size, progress=self.progress)
        return [(s.logprob, s.greedy) for s in scores]

    def loglikelihood_rolling(self, requests) -> list[float]:
        """Log-likelihood of whole documents, in disjoint windows of the full context (the harness's rule)."""
        block = self.model.config.block_size
        return [-perplexity(self.model, self.tokenizer, text, stride=block, batch_size=self.batch_size)["nll"]
                for (text,) in tqdm((r.args for r in requests), total=len(requests), desc="rolling", disable=not self.progress)]

    def generate_until(self, requests) -> list[str]:
        """Greedy (or sampled) continuations, cut at the first of the request's stop strings."""
        outputs = []
        for request in tqdm(requests, desc="generating", disable=not self.progress):
            context, kwargs = request.args
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else until
            cfg = SamplingConfig(max_new_tokens=int(kwargs.get("max_gen_toks", self.max_gen_toks)),
                                 temperature=float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0)
            ids = generate_ids(self.model, [self.tokenizer.encode(context)], cfg, self.tokenizer.eot_id)[0]
            outputs.append(cut_at_stops(self.tokenizer.decode(ids), until))
        return outputs
