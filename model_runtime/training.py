"""The LoRA training loop, written out: tokenize → pack → forward → masked loss → backward → AdamW
step with linear decay. A batch's sequences are packed into one row with a block-diagonal mask, so no
compute goes to padding; prompt tokens (when configured) carry no loss."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    tokens: int = 0  # tokens run through the model, all epochs (there are no pads)
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


def pack(rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    """Concatenate a batch's rows into one row with no padding at all. Position ids restart at 0 for
    each row, which makes transformers build a block-diagonal causal mask (no row sees another), and
    each row's first label is IGNORE so no row is trained to predict the next row's start."""
    input_ids, labels, positions, row_of = [], [], [], []
    for row, (ids, lab) in enumerate(rows):
        input_ids += ids
        labels += [IGNORE] + lab[1:]
        positions += range(len(ids))
        row_of += [row] * len(ids)
    return {"input_ids": torch.tensor([input_ids]), "position_ids": torch.tensor([positions]),
            "labels": torch.tensor([labels]), "rows": torch.tensor([row_of])}


def forward(model: torch.nn.Module, batch: dict[str, torch.Tensor], keep: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of a packed batch (no KV cache: with one, transformers would not see the packing); given
    `keep`, only at those positions: the output head (576 × 49,152 for the bundled model) runs nowhere else."""
    return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                 logits_to_keep=0 if keep is None else keep).logits


def targets(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions of a packed batch that predict a target (the next token's label is not IGNORE), and
    those targets."""
    following = batch["labels"][0, 1:]
    where = (following != IGNORE).nonzero().squeeze(1)
    return where, following[where]


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of `logits` (one row per target) against `targets`. Given `rows` (each target's
    row in the packed batch), the mean of the rows' own means instead: a short row weighs as much as a long one."""
    per_token = F.cross_entropy(logits.float(), targets, reduction="none")
    if rows is None:
        return per_token.mean()
    sums = per_token.new_zeros(int(rows.max()) + 1).index_add(0, rows, per_token)
    counts = torch.bincount(rows, minlength=sums.numel())
    scored = counts > 0
    return (sums[scored] / counts[scored]).mean()


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX). Without it oneDNN
    emulates them: on an AVX2-only EPYC, `seal bench speed` measured 1.3 GFLOP/s in bf16 against 71 in fp32."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast_dtype(bf16: bool) -> torch.dtype | None:
    """bfloat16 when asked for and native to this CPU; None means plain fp32 (never the slow emulated path)."""
    return torch.bfloat16 if bf16 and native_bf16() else None


def autocast(dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `dtype`, or off for None."""
    return torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None)


@contextmanager
def frozen_weights_in(model: torch.nn.Module, dtype: torch.dtype | None) -> Iterator[None]:
    """For the block, each frozen linear layer computes with a copy of its weight in `dtype` (None: as it is).
    Autocast caches its casts of trainable weights only, so it would cast every frozen fp32 weight again on
    every forward; here each is cast once per training. The copies take half the fp32 weights' memory, until
    the block ends and the layers have their own weights back."""
    frozen = [] if dtype is None else [
        (m, m.weight) for m in model.modules()
        if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad and m.weight.dtype != dtype]
    try:
        for module, weight in frozen:
            module.weight = torch.nn.Parameter(weight.detach().to(dtype), requires_grad=False)
        yield
    finally:
        for module, weight in frozen:
            module.weight = weight


def train_lora(lm: LanguageModel, adapter: str, examples: list[TrainingExample], cfg: TrainConfig,
               max_tokens: int = 256) -> TrainResult:
    """Train LoRA adapter `adapter` (already attached to `lm`) on `examples`; other weights stay frozen."""
    rows = [r for r in (encode(lm, ex, cfg.loss_on, max_tokens) for ex in examples)
            if any(label != IGNORE for label in r[1][1:])]
    if not rows:
        return TrainResult()

    with lm.using(adapter) as model:  # the lock: no generation sees the model mid-training
        trainable = []
        try:
            # Only this adapter's LoRA matrices train; the base and every other adapter stay frozen.
            for name, param in model.named_parameters():
                param.requires_grad = "lora_" in name and f".{adapter}." in name
                if param.requires_grad:
                    trainable.append(param)
            model.train()
            return _train(model, trainable, rows, cfg)
        finally:
            model.eval()
            for param in trainable:
                param.requires_grad = False


def _train(model: torch.nn.Module, trainable: list[torch.nn.Parameter], rows: list[tuple[list[int], list[int]]],
           cfg: TrainConfig) -> TrainResult:
    start = time.perf_counter()
    # Fused: one kernel over all the LoRA tensors (on CPU the default loops over them one by one).
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0, fused=True)
    total = cfg.epochs * math.ceil(len(rows) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    generator = torch.Generator().manual_seed(cfg.seed)
    dtype = autocast_dtype(cfg.bf16)
    amp = autocast(dtype)  # decided once, re-entered every step
    by_row = cfg.loss_weighting == "sequence"
    losses: list[float] = []
    tokens = 0
    with frozen_weights_in(model, dtype):
        for _ in range(cfg.epochs):
            order = torch.randperm(len(rows), generator=generator).tolist()
            for i in range(0, len(order), cfg.batch_size):
                # Pack the batch's rows into one (no pads, so no compute is spent on padding).
                batch = pack([rows[j] for j in order[i:i + cfg.batch_size]])
                # Forward to the positions that predict a target: not a row's last token, nor (for
                # loss_on='completion') a prompt token.
                where, target = targets(batch)
                with amp:
                    logits = forward(model, batch, keep=where)
                loss = masked_loss(logits[0], target, batch["rows"][0, 1:][where] if by_row else None)
                # Backward and one AdamW step on the LoRA weights, then decay the learning rate.
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                tokens += batch["input_ids"].shape[1]
    return TrainResult(losses=losses, tokens=tokens, seconds=time.perf_counter() - start, steps=len(losses))
