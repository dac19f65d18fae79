"""Inference on new examples: probabilities per class or choice, or a score."""

from __future__ import annotations

from gptkit.finetune.data import Example, Transform, parse_example
from gptkit.finetune.model import TaskModel
from gptkit.finetune.train import predict_encoded
from gptkit.tokenizer import Tokenizer


def predict(model: TaskModel, tokenizer: Tokenizer, examples: list[Example | dict], batch_size: int = 32) -> list[dict]:
    """One result per example: {"prediction", "probabilities"} ({label: p} for classes, [p_k] for
    choices) or {"score"} for regression. Dicts use the task's column names (no label needed)."""
    labels = model.labels
    examples = [ex if isinstance(ex, Example) else parse_example(ex, labels.task, f"example {i}", labelled=False)
                for i, ex in enumerate(examples)]
    items = Transform(labels.task, tokenizer, model.gpt.config.block_size).encode(examples)
    outputs = predict_encoded(model, items, batch_size)
    if labels.regression:
        return [{"score": float(s)} for s in outputs]
    if labels.task == "choice":
        return [{"prediction": int(p.argmax()), "probabilities": [float(x) for x in p]} for p in outputs]
    return [{"prediction": labels.names[int(p.argmax())], "probabilities": dict(zip(labels.names, map(float, p)))}
            for p in outputs]
