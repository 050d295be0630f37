"""The model runtime: load the base model once, generate in batches, switch LoRA adapters by name,
and train a LoRA adapter with an explicit loop. Knows nothing about documents, agents or stores."""

from model_runtime.lm import LanguageModel
from model_runtime.training import TrainingExample, TrainResult, train_lora

__all__ = ["LanguageModel", "TrainingExample", "TrainResult", "train_lora"]
