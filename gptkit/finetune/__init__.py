"""Supervised fine-tuning as in GPT-1: input transformations, task heads, the auxiliary LM objective."""

from gptkit.finetune.data import TASKS, Example, Labels, read_examples
from gptkit.finetune.model import TaskModel, load_task_model
from gptkit.finetune.predict import predict
from gptkit.finetune.tasks import bundled_task
from gptkit.finetune.train import FinetuneConfig, finetune

__all__ = ["TASKS", "Example", "FinetuneConfig", "Labels", "TaskModel", "bundled_task", "finetune",
           "load_task_model", "predict", "read_examples"]
