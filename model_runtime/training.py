"""The LoRA training loop, written out: tokenize → teacher pass → pack → forward → masked loss → backward →
AdamW step with linear decay. A batch's sequences are packed into one row with a block-diagonal mask, so no
compute goes to padding; prompt tokens (when configured) carry no loss.

Two objectives share the loop, per example: cross-entropy on the completion's tokens, and distillation:
the completion's tokens also match the next-token distributions of a *teacher*, which is the model as
training starts (the parent version) reading another prompt before the same completion — the document
in context, say, while the student reads none. The teacher's top-k distributions are computed once, with
no gradient, before the first step."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from model_runtime.lm import LanguageModel
from seal.config import TrainConfig

IGNORE = -100


@dataclass(frozen=True)
class TrainingExample:
    """One training sequence: `prompt` is context (no loss when loss_on='completion'), `completion` is learned,
    by cross-entropy (weight `ce`) and, given a `teacher` prompt, by matching the teacher's next-token
    distributions along it (weight `distill`). A teacher prompt equal to `prompt` keeps the student close
    to the model it started from (a retention term); with `base_teacher`, the teacher is the base model (every
    adapter off) instead, so that a chain of adapters each trained from the last stays anchored to it."""

    prompt: str
    completion: str
    teacher: str | None = None
    ce: float = 1.0
    distill: float = 0.0
    base_teacher: bool = False


@dataclass(frozen=True)
class Row:
    """One encoded example: token ids and labels, and per target (each label that is not IGNORE, after the
    first token) its loss weights and, for distillation, the teacher's top-k token ids and log-probabilities."""

    ids: list[int]
    labels: list[int]
    prompt: int  # tokens of the prompt
    ce: torch.Tensor
    distill: torch.Tensor
    top_ids: torch.Tensor | None = None
    top_logp: torch.Tensor | None = None


@dataclass(frozen=True)
class TrainResult:
    losses: list[float] = field(default_factory=list)
    tokens: int = 0  # tokens trained on, all epochs (there are no pads)
    seconds: float = 0.0  # the teacher pass included
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


def pack(rows: list[tuple[list[int], list[int]]], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Concatenate a batch's rows into one row with no padding at all. Position ids restart at 0 for
    each row, which makes transformers build a block-diagonal causal mask (no row sees another), and
    each row's first label is IGNORE so no row is trained to predict the next row's start."""
    input_ids, labels, positions, row_of = [], [], [], []
    for row, (ids, lab) in enumerate(rows):
        input_ids += ids
        labels += [IGNORE] + lab[1:]
        positions += range(len(ids))
        row_of += [row] * len(ids)
    return {name: torch.tensor([values], device=device) for name, values in
            (("input_ids", input_ids), ("position_ids", positions), ("labels", labels), ("rows", row_of))}


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


def token_losses(logits: torch.Tensor, targets: torch.Tensor, ce: torch.Tensor | None = None,
                 distill: torch.Tensor | None = None, top_ids: torch.Tensor | None = None,
                 top_logp: torch.Tensor | None = None) -> torch.Tensor:
    """Each target's loss: its cross-entropy, or given weights, `ce` × cross-entropy + `distill` × the KL from
    the teacher's distribution to the student's over the teacher's top-k tokens (`top_ids`, `top_logp`) and one
    bucket for all other tokens: exactly 0 where the two distributions are the same."""
    if ce is None:
        return F.cross_entropy(logits.float(), targets, reduction="none")
    logp = torch.log_softmax(logits.float(), dim=-1)
    loss = ce * -logp.gather(1, targets[:, None]).squeeze(1)
    if top_ids is not None:
        student = logp.gather(1, top_ids)
        rest_teacher = (1 - top_logp.exp().sum(-1)).clamp_min(1e-6)
        rest_student = (1 - student.exp().sum(-1)).clamp_min(1e-6)
        kl = (top_logp.exp() * (top_logp - student)).sum(-1) + rest_teacher * (rest_teacher.log() - rest_student.log())
        loss = loss + distill * kl
    return loss


def masked_loss(per_token: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of the targets' losses. Given `rows` (each target's row in the packed batch), the mean of the
    rows' own means instead: a short row weighs as much as a long one."""
    if rows is None:
        return per_token.mean()
    sums = per_token.new_zeros(int(rows.max()) + 1).index_add(0, rows, per_token)
    counts = torch.bincount(rows, minlength=sums.numel())
    scored = counts > 0
    return (sums[scored] / counts[scored]).mean()


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX). Without it oneDNN
    emulates them: on an AVX2-only EPYC, `seal bench speed` measured 1.3 GFLOP/s in bf16 against 71 in fp32."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast_dtype(bf16: bool, device: torch.device = torch.device("cpu")) -> torch.dtype | None:
    """The dtype training computes in, when mixed precision is asked for: bfloat16 where the device has it
    natively (a CPU with AVX512-BF16 or AMX, a CUDA GPU that has it), float16 on a CUDA GPU without it (the loss
    is then scaled); None means no autocast: the weights' own dtype (never the slow emulated path)."""
    if not bf16:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and native_bf16() else None


def autocast(dtype: torch.dtype | None, device: torch.device = torch.device("cpu")) -> torch.autocast:
    """Autocast to `dtype` on the device, or off for None."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


@contextmanager
def frozen_weights_in(model: torch.nn.Module, dtype: torch.dtype | None) -> Iterator[None]:
    """For the block, each frozen linear layer computes with a copy of its weight in `dtype` (None: as it is).
    Autocast caches its casts of trainable weights only, so it would cast every frozen fp32 weight again on
    every forward; here each is cast once per training. The copies take half the fp32 weights' memory, until
    the block ends and the layers have their own weights back."""
    frozen = [] if dtype is None else [
        (m, m.weight) for m in model.modules()
        if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad and m.weight.dtype.is_floating_point
        and m.weight.dtype != dtype]  # a 4-bit layer (QLoRA) computes in its own compute dtype
    try:
        for module, weight in frozen:
            module.weight = torch.nn.Parameter(weight.detach().to(dtype), requires_grad=False)
        yield
    finally:
        for module, weight in frozen:
            module.weight = weight


def encode_row(lm: LanguageModel, example: TrainingExample, cfg: TrainConfig, max_tokens: int) -> Row:
    """The example's ids and labels, and its targets' loss weights (a prompt token, with loss_on='all', is
    learned by cross-entropy alone: only the completion has a teacher)."""
    ids, labels = encode(lm, example, cfg.loss_on, max_tokens)
    prompt = len(lm.tokenizer(example.prompt, add_special_tokens=False)["input_ids"]) if example.prompt else 0
    scored = [u for u in range(1, len(ids)) if labels[u] != IGNORE]
    weight = example.distill if example.teacher is not None else 0.0
    return Row(ids, labels, prompt, torch.full((len(scored),), float(example.ce)),
               torch.tensor([weight if u >= prompt else 0.0 for u in scored]))


@torch.no_grad()
def teach(model: torch.nn.Module, lm: LanguageModel, examples: list[TrainingExample], rows: list[Row],
          cfg: TrainConfig, dtype: torch.dtype | None) -> list[Row]:
    """The rows with their teacher's top-k distributions along the completion: the model as it is (training
    has not started; the base model for `base_teacher` examples) reads each example's teacher prompt, then its
    completion; packed like training rows."""
    taught = list(rows)
    todo = [i for i, (ex, row) in enumerate(zip(examples, rows)) if ex.teacher is not None and row.distill.any()]
    groups = {base: [i for i in todo if examples[i].base_teacher == base] for base in (False, True)}
    for base, chosen in ((base, group[start:start + cfg.batch_size]) for base, group in groups.items()
                         for start in range(0, len(group), cfg.batch_size)):
        batch = pack([encode(lm, TrainingExample(examples[i].teacher, examples[i].completion), "completion", 1 << 16)
                      for i in chosen], device_of(model))
        where, _ = targets(batch)
        with autocast(dtype, device_of(model)), (model.disable_adapter() if base else nullcontext()):
            logp = torch.log_softmax(forward(model, batch, keep=where)[0].float(), dim=-1)
        # Kept in host memory until their batch trains: a long document's distributions can be large.
        top_logp, top_ids = (t.cpu() for t in logp.topk(cfg.top_k, dim=-1))
        owner = batch["rows"][0, 1:][where].cpu()
        for j, i in enumerate(chosen):
            row, mine = rows[i], owner == j
            ids, lps = top_ids[mine], top_logp[mine]
            # The teacher's targets are the completion's tokens (all but the first when its prompt is empty:
            # that one has no predecessor); the student's are the completion tokens after its own prompt.
            first = 0 if examples[i].teacher else 1
            scored = torch.tensor([u for u in range(1, len(row.ids)) if row.labels[u] != IGNORE])
            index = scored - row.prompt - first
            known = (index >= 0) & (index < len(ids)) & (scored >= row.prompt)
            index = index.clamp(0, len(ids) - 1)
            taught[i] = dataclasses.replace(row, distill=row.distill * known, top_ids=ids[index], top_logp=lps[index])
    return taught


def train_lora(lm: LanguageModel, adapter: str, examples: list[TrainingExample], cfg: TrainConfig,
               max_tokens: int = 256) -> TrainResult:
    """Train LoRA adapter `adapter` (already attached to `lm`) on `examples`; other weights stay frozen."""
    kept = [(ex, r) for ex in examples for r in [encode_row(lm, ex, cfg, max_tokens)] if len(r.ce)]
    if not kept:
        return TrainResult()
    examples, rows = [ex for ex, _ in kept], [r for _, r in kept]

    with lm.using(adapter) as model:  # the lock: no generation sees the model mid-training
        trainable = []
        start = time.perf_counter()
        if cfg.gradient_checkpointing:  # recompute each block's activations in backward: less memory, more time
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        try:
            # The teacher is the model before any step: its distributions are computed first.
            rows = teach(model, lm, examples, rows, cfg, autocast_dtype(cfg.bf16, device_of(model)))
            # Only this adapter's LoRA matrices train; the base and every other adapter stay frozen.
            for name, param in model.named_parameters():
                param.requires_grad = "lora_" in name and f".{adapter}." in name
                if param.requires_grad:
                    trainable.append(param)
            model.train()
            return dataclasses.replace(_train(model, trainable, rows, cfg), seconds=time.perf_counter() - start)
        finally:
            model.eval()
            if cfg.gradient_checkpointing:
                model.gradient_checkpointing_disable()
            for param in trainable:
                param.requires_grad = False


def _train(model: torch.nn.Module, trainable: list[torch.nn.Parameter], rows: list[Row], cfg: TrainConfig) -> TrainResult:
    # Fused: one kernel over all the LoRA tensors (on CPU the default loops over them one by one).
    device = device_of(model)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0,
                                  fused=device.type in ("cpu", "cuda"))
    total = cfg.epochs * math.ceil(len(rows) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    generator = torch.Generator().manual_seed(cfg.seed)
    dtype = autocast_dtype(cfg.bf16, device)
    amp = autocast(dtype, device)  # decided once, re-entered every step
    # float16 gradients underflow: the loss is scaled up before backward and the step skipped on overflow.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    by_row = cfg.loss_weighting == "sequence"
    plain = all(r.top_ids is None and bool((r.ce == 1).all()) for r in rows)  # cross-entropy alone, unweighted
    losses: list[float] = []
    tokens = 0
    with frozen_weights_in(model, dtype):
        for _ in range(cfg.epochs):
            order = torch.randperm(len(rows), generator=generator).tolist()
            for i in range(0, len(order), cfg.batch_size):
                # Pack the batch's rows into one (no pads, so no compute is spent on padding).
                chosen = [rows[j] for j in order[i:i + cfg.batch_size]]
                batch = pack([(r.ids, r.labels) for r in chosen], device)
                # Forward to the positions that predict a target: not a row's last token, nor (for
                # loss_on='completion') a prompt token.
                where, target = targets(batch)
                with amp:
                    logits = forward(model, batch, keep=where)
                # Each target's loss (cross-entropy and, where a teacher is, the KL from its distribution),
                # averaged over the batch's targets (or its rows).
                per_token = token_losses(logits[0], target) if plain else token_losses(
                    logits[0], target, *(None if t is None else t.to(device) for t in (
                        torch.cat([r.ce for r in chosen]), torch.cat([r.distill for r in chosen]),
                        *_teacher(chosen, cfg.top_k))))
                loss = masked_loss(per_token, batch["rows"][0, 1:][where] if by_row else None)
                # Backward and one AdamW step on the LoRA weights, then decay the learning rate.
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                tokens += batch["input_ids"].shape[1]
    return TrainResult(losses=losses, tokens=tokens, steps=len(losses))


def _teacher(rows: list[Row], k: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The batch's teacher top-k ids and log-probabilities, target by target (zeros where a row has none)."""
    if all(r.top_ids is None for r in rows):
        return None, None
    ids = torch.cat([r.top_ids if r.top_ids is not None else torch.zeros(len(r.ce), k, dtype=torch.long) for r in rows])
    logp = torch.cat([r.top_logp if r.top_logp is not None else torch.zeros(len(r.ce), k) for r in rows])
    return ids, logp


@torch.no_grad()
def divergence(lm: LanguageModel, examples: list[TrainingExample], adapter: str | None,
               reference: str | None = None) -> float:
    """How far `adapter` has moved from `reference` (None: the base model) along the examples' completions
    (their prompts are read, not scored): the mean over those tokens of KL(reference ‖ adapter) between the
    next-token distributions, in nats (0 for the same weights)."""
    batch = pack([encode(lm, example, "completion", 1 << 16) for example in examples], lm.device)
    where, _ = targets(batch)
    logp = []
    for name in (reference, adapter):
        with lm.using(name) as model:
            logp.append(torch.log_softmax(forward(model, batch, keep=where)[0].float(), dim=-1))
    return float((logp[0].exp() * (logp[0] - logp[1])).sum(-1).mean())
