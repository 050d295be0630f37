"""The model runtime: load the base model once, generate in batches (in process, or on an OpenAI-compatible
server), switch LoRA adapters by name, and train a LoRA adapter with an explicit loop. Knows nothing about
documents, agents or stores."""

from model_runtime.lm import LanguageModel
from model_runtime.remote import RemoteEngine
from model_runtime.training import TrainingExample, TrainResult, divergence, train_lora

Engine = LanguageModel | RemoteEngine  # where generation runs; both answer the same generation calls

__all__ = ["Engine", "LanguageModel", "RemoteEngine", "TrainingExample", "TrainResult", "divergence", "train_lora"]
