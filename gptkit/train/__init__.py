"""The training loop and what it needs: configs, optimizer, schedule, checkpoints, plots."""

from gptkit.train.pretrain import PretrainResult, pretrain
from gptkit.train.trainer import Trainer, language_model_loss
from gptkit.train_config import TrainConfig

__all__ = ["PretrainResult", "TrainConfig", "Trainer", "language_model_loss", "pretrain"]
