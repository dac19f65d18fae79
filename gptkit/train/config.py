"""TrainConfig, defined in gptkit.train_config: free of PyTorch, so the command line builds its flags
from it without loading the trainer."""

from gptkit.train_config import TrainConfig

__all__ = ["TrainConfig"]
