"""Zero- and few-shot evaluation: perplexity, last word, multiple choice, prompted generation."""

from gptkit.eval.perplexity import perplexity
from gptkit.eval.runner import evaluate_task
from gptkit.eval.tasks import TaskSpec, bundled_tasks, load_task

__all__ = ["TaskSpec", "bundled_tasks", "evaluate_task", "load_task", "perplexity"]
