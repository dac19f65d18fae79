"""A `dialogue train` step against a `pretrain` step of the same model and batch shape (32 x 128),
measured in one process, the kinds of step taking turns so that a busy machine slows them alike.

The dialogue batches are the bundled Shakespeare sessions as `dialogue train` builds them (every
response with its history, padded to the context); "dialogue, ragged" pads each batch only to its
longest row, as before, so each step has a new shape. The pretraining batches are windows of the
same tokens. One JSON object on stdout (benchmarks/results/dialogue_step_cpu.jsonl holds a run).

    python benchmarks/dialogue_step.py --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from gptkit.chat.data import read_dialogues
from gptkit.chat.examples import build_examples, dialogue_batches
from gptkit.chat.filters import filter_config, filter_sessions
from gptkit.chat.train import dialogue_tokenizer, example_config
from gptkit.train.pretrain import build_model
from gptkit.train.trainer import Trainer
from gptkit.train_config import DialogueTrainConfig


class Windows:
    """Pretraining batches: random 129-token windows of one long token stream."""

    def __init__(self, tokens: torch.Tensor, batch: int, block: int, seed: int = 0):
        self.tokens, self.batch, self.block = tokens, batch, block
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(self.tokens) - self.block - 1, (self.batch,), generator=self.generator)
        rows = torch.stack([self.tokens[s: s + self.block + 1] for s in starts.tolist()])
        return rows[:, :-1], rows[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="Timed steps of each kind (after 3 warm-up steps).")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = tempfile.mkdtemp()
    cfg = DialogueTrainConfig(out=out, batch_size=32, max_steps=10**6, warmup_steps=1)
    dialogues = read_dialogues(cfg.data)
    tokenizer = dialogue_tokenizer(cfg, dialogues)
    model = build_model(cfg, tokenizer, torch.device("cpu"))
    block = model.config.block_size
    started = time.perf_counter()
    sessions, _ = filter_sessions(dialogues, filter_config(cfg))
    examples, _ = build_examples(sessions, tokenizer, example_config(cfg), block)
    data_seconds = time.perf_counter() - started
    stream = torch.tensor([t for ids, _ in examples for t in ids])
    sources = {"pretrain": Windows(stream, 32, block),
               "dialogue": dialogue_batches(examples, 32, tokenizer.eot_id, width=block),
               "dialogue, ragged": dialogue_batches(examples, 32, tokenizer.eot_id)}
    trainers = {name: Trainer(cfg, model, tokenizer, source, progress=False) for name, source in sources.items()}
    times: dict[str, list[float]] = {name: [] for name in trainers}
    names = list(trainers)
    for step in range(3 + args.steps):
        for name in names[step % 3:] + names[: step % 3]:  # each kind first in turn: no kind always follows another
            trainer = trainers[name]
            begin = time.perf_counter()
            trainer.train_step()
            if step >= 3:
                times[name].append(time.perf_counter() - begin)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(json.dumps({
        "what": "one optimizer step, batch 32 x 128, preset shakespeare-char (4 layers, 128 wide), fp32",
        "threads": args.threads, "steps": args.steps, "load_average": os.getloadavg()[0],
        "median_step_s": {k: round(v, 4) for k, v in median.items()},
        "dialogue_over_pretrain": round(median["dialogue"] / median["pretrain"], 3),
        "ragged_dialogue_over_pretrain": round(median["dialogue, ragged"] / median["pretrain"], 3),
        "dialogue_examples": len(examples), "mean_example_tokens": round(sum(len(i) for i, _ in examples) / len(examples), 1),
        "scored_share": round(sum(sum(la != -100 for la in labels) for _, labels in examples)
                              / sum(len(i) for i, _ in examples), 3),
        "data_build_s": round(data_seconds, 2)}))


if __name__ == "__main__":
    main()
