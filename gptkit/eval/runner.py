"""Zero- and few-shot evaluation of a task: prompts of a description, K seeded examples and the
query, scored with score() (choice, last word) or answered with generate() (generation tasks)."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

from tqdm import tqdm

from gptkit.errors import GptkitError
from gptkit.eval.metrics import generation_scores
from gptkit.eval.tasks import TaskSpec, read_examples
from gptkit.inference import SamplingConfig, cut_at_stops, generate_ids, score
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer

log = logging.getLogger("gptkit")


@dataclass
class Prompt:
    ids: list[int]
    shots: int  # how many examples fitted in front of the query


class PromptBuilder:
    """Renders examples with the task's template and packs as many demonstrations as fit."""

    def __init__(self, spec: TaskSpec, tokenizer: Tokenizer, context: int):
        self.spec, self.tokenizer, self.context = spec, tokenizer, context

    def query(self, example: dict) -> str:
        return self.spec.prompt.format(**example)

    def answers(self, example: dict) -> list[str]:
        """The continuations to score (choice) or the reference answer (last word, generation)."""
        if self.spec.type == "choice":
            return [self.spec.answer_prefix + str(c) for c in example[self.spec.choices]]
        return [self.spec.answer_prefix + str(example[self.spec.answer])]

    def gold(self, example: dict) -> str:
        answers = self.answers(example)
        return answers[int(example[self.spec.answer])] if self.spec.type == "choice" else answers[0]

    def build(self, demos: list[dict], example: dict, reserve: int) -> Prompt:
        """Description, demonstrations and query, dropping demonstrations until ``reserve`` tokens fit."""
        spec = self.spec
        head = spec.description + spec.separator if spec.description else ""
        for n in range(len(demos), -1, -1):
            shown = [self.query(d) + self.gold(d) for d in demos[:n]]
            ids = self.tokenizer.encode(head + "".join(s + spec.separator for s in shown) + self.query(example))
            if len(ids) + reserve <= self.context + 1 or n == 0:
                return Prompt(ids, n)
        raise AssertionError("unreachable")


def draw_demos(pool: list[dict], k: int, seed: int, exclude: dict | None) -> list[dict]:
    candidates = [ex for ex in pool if ex is not exclude]
    return random.Random(seed).sample(candidates, k)


def evaluate_task(model: GPT, tokenizer: Tokenizer, spec: TaskSpec, shots: list[int], seed: int = 0,
                  limit: int | None = None, batch_size: int = 16, progress: bool = False) -> dict:
    examples = read_examples(spec, spec.data)[:limit]
    pool = read_examples(spec, spec.train, scored=False) if spec.train else examples
    pool_file = spec.train or spec.data
    available = len(pool) - (0 if spec.train else 1)
    if max(shots) > available:
        raise GptkitError(f"task {spec.source}: {pool_file} has {available} examples to draw from, fewer than "
                          f"K={max(shots)}; lower --shots or add examples")
    builder = PromptBuilder(spec, tokenizer, model.config.block_size)
    reserve = spec.max_new_tokens if spec.type == "generate" else max(  # room the answers need
        len(tokenizer.encode(a)) for ex in examples for a in builder.answers(ex))
    results = {}
    for k in shots:
        prompts = [builder.build(draw_demos(pool, k, seed * 1_000_003 + i, None if spec.train else ex), ex, reserve)
                   for i, ex in enumerate(examples)]
        if k and all(p.shots == 0 for p in prompts):
            raise GptkitError(f"task {spec.source}: the context of {model.config.block_size} tokens cannot fit even "
                              f"one example beside the query; use K=0 or a model with a longer context")
        mean_shots = sum(p.shots for p in prompts) / len(prompts)
        if mean_shots < k:
            log.info("%s K=%d: %.1f examples fitted on average in the context of %d tokens",
                     spec.name, k, mean_shots, model.config.block_size)
        scorer = {"choice": _choice, "last_word": _last_word, "generate": _generate}[spec.type]
        label = f"{spec.name} K={k}" if progress else None  # the progress bar's name, or no bar
        metrics = scorer(model, tokenizer, builder, examples, prompts, batch_size, label)
        results[str(k)] = {"metrics": {m: metrics[m] for m in spec.metrics}, "mean_shots": mean_shots}
    return {"task": spec.name, "type": spec.type, "source": str(spec.source), "examples": len(examples),
            "settings": {"shots": shots, "seed": seed, "limit": limit, "context": model.config.block_size,
                         "description": spec.description, "prompt": spec.prompt},
            "results": results}


def _choice(model, tokenizer, builder, examples, prompts, batch_size, label) -> dict:
    requests, owners = [], []
    for i, (ex, prompt) in enumerate(zip(examples, prompts)):
        for answer in builder.answers(ex):
            requests.append((prompt.ids, tokenizer.encode(answer)))
            owners.append((i, len(answer.encode("utf-8"))))
    scores = score(model, requests, tokenizer.eot_id, batch_size, label is not None, label)
    per_example: list[list[tuple[float, float]]] = [[] for _ in examples]
    for (i, n_bytes), s in zip(owners, scores):
        per_example[i].append((s.logprob, s.logprob / n_bytes))
    gold = [int(ex[builder.spec.answer]) for ex in examples]
    acc = [max(range(len(c)), key=lambda j: c[j][0]) == g for c, g in zip(per_example, gold)]
    acc_norm = [max(range(len(c)), key=lambda j: c[j][1]) == g for c, g in zip(per_example, gold)]
    return {"acc": sum(acc) / len(acc), "acc_norm": sum(acc_norm) / len(acc_norm)}


def _last_word(model, tokenizer, builder, examples, prompts, batch_size, label) -> dict:
    requests = [(p.ids, tokenizer.encode(builder.answers(ex)[0])) for ex, p in zip(examples, prompts)]
    scores = score(model, requests, tokenizer.eot_id, batch_size, label is not None, label)
    nll, n_tokens = -sum(s.logprob for s in scores), sum(s.n_tokens for s in scores)
    # Greedy decoding reproduces the whole word exactly when each of its tokens is the argmax.
    return {"acc": sum(s.greedy for s in scores) / len(scores), "ppl": math.exp(nll / n_tokens)}


def _generate(model, tokenizer, builder, examples, prompts, batch_size, label) -> dict:
    spec = builder.spec
    cfg = SamplingConfig(max_new_tokens=spec.max_new_tokens, temperature=0)
    totals: dict[str, float] = {}
    for start in tqdm(range(0, len(examples), batch_size), desc=label, unit="batch", disable=label is None):
        batch = prompts[start: start + batch_size]
        for ex, ids in zip(examples[start: start + batch_size], generate_ids(model, [p.ids for p in batch], cfg,
                                                                              tokenizer.eot_id)):
            text = cut_at_stops(tokenizer.decode(ids), spec.stop)
            for name, value in generation_scores(text.strip(), str(ex[spec.answer])).items():
                totals[name] = totals.get(name, 0.0) + value
    return {name: value / len(examples) for name, value in totals.items()}
