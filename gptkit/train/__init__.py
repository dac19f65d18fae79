"""The training loop and what it needs: configs, optimizer, schedule, checkpoints, plots."""

from gptkit.train.config import TrainConfig
from gptkit.train.pretrain import PretrainResult, pretrain
from gptkit.train.trainer import Trainer, language_model_loss

__all__ = ["PretrainResult", "TrainConfig", "Trainer", "language_model_loss", "pretrain"]
