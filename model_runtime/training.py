"""The LoRA training loop, written out: tokenize → dynamic padding → forward → masked loss →
backward → AdamW step with linear decay. Pads (and, when configured, prompt tokens) carry no loss."""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from model_runtime.lm import LanguageModel
from seal.config import TrainConfig

IGNORE = -100


@dataclass(frozen=True)
class TrainingExample:
    """One training sequence: `prompt` is context (no loss when loss_on='completion'), `completion` is learned."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class TrainResult:
    losses: list[float] = field(default_factory=list)
    tokens: int = 0  # non-pad tokens run through the model, all epochs
    seconds: float = 0.0
    steps: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def encode(lm: LanguageModel, example: TrainingExample, loss_on: str, max_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids and labels for one example; labels are IGNORE where no loss is taken."""
    tok = lm.tokenizer
    prompt = tok(example.prompt, add_special_tokens=False)["input_ids"] if example.prompt else []
    completion = tok(example.completion, add_special_tokens=False)["input_ids"]
    ids = (prompt + completion)[:max_tokens]
    labels = ([IGNORE] * len(prompt) if loss_on == "completion" else list(prompt)) + list(completion)
    return ids, labels[:max_tokens]


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch to its longest row; pad positions get attention 0 and label IGNORE."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(lab)] = torch.tensor(lab)
        attention[i, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def masked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not IGNORE."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def train_lora(lm: LanguageModel, adapter: str, examples: list[TrainingExample], cfg: TrainConfig,
               max_tokens: int = 256) -> TrainResult:
    """Train LoRA adapter `adapter` (already attached to `lm`) on `examples`; other weights stay frozen."""
    model = lm.peft
    rows = [r for r in (encode(lm, ex, cfg.loss_on, max_tokens) for ex in examples)
            if any(label != IGNORE for label in r[1][1:])]
    if not rows:
        return TrainResult()

    # Only this adapter's LoRA matrices train; the base and every other adapter stay frozen.
    model.set_adapter(adapter)
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name and f".{adapter}." in name
        if param.requires_grad:
            trainable.append(param)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0)
    total = cfg.epochs * math.ceil(len(rows) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    generator = torch.Generator().manual_seed(cfg.seed)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else nullcontext()

    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    model.train()
    try:
        for _ in range(cfg.epochs):
            order = torch.randperm(len(rows), generator=generator).tolist()
            for i in range(0, len(order), cfg.batch_size):
                # Pad only to the longest row of this batch (dynamic padding).
                batch = collate([rows[j] for j in order[i:i + cfg.batch_size]], lm.tokenizer.pad_token_id)
                # Forward; the loss ignores pads and (for loss_on='completion') prompt tokens.
                with autocast:
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                loss = masked_loss(logits, batch["labels"])
                # Backward and one AdamW step on the LoRA weights, then decay the learning rate.
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                tokens += int(batch["attention_mask"].sum())
    finally:
        model.eval()
        for param in trainable:
            param.requires_grad = False
    return TrainResult(losses=losses, tokens=tokens, seconds=time.perf_counter() - start, steps=len(losses))
