"""Stage 2, adapt: train a LoRA on the current candidate's transfer text (`agent.transfer`: its self-edit, the
document, and a replay sample of earlier committed self-edits and, under distillation, of earlier documents
recited in the chat format), starting from the parent knowledge version's weights, and save it to scratch."""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict

import torch
from langgraph.runtime import Runtime
from peft import LoraConfig
from transformers.pytorch_utils import Conv1D

from agent.generate import parts_of, passages_of
from agent.state import IngestState
from agent.transfer import recital, training_examples
from agent.workspace import Workspace
from model_runtime import train_lora
from seal.config import TrainConfig
from seal.errors import InputError


def mlp_modules(model: torch.nn.Module) -> list[str]:
    """The names of the blocks' feed-forward projections, whatever the family calls them (gate/up/down_proj,
    gate_up_proj, c_fc/c_proj, ...): the linear children of each block's `mlp` (or `feed_forward`) module."""
    found = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if re.search(r"\.(mlp|feed_forward)\.[^.]+$", name)
             and (isinstance(module, (torch.nn.Linear, Conv1D)) or hasattr(module, "base_layer"))}
    if not found:
        raise InputError("train.modules = 'mlp': this model has no linear layers under an mlp or feed_forward "
                         "module; set train.modules = 'all'")
    return sorted(found)


def lora_config(cfg: TrainConfig, model: torch.nn.Module) -> LoraConfig:
    """A LoRA on the blocks' feed-forward projections of `model` (`train.modules = "mlp"`) or on every linear
    projection of the blocks ("all"); never the output head."""
    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, task_type="CAUSAL_LM",
                      target_modules=mlp_modules(model) if cfg.modules == "mlp" else "all-linear")


def candidate_adapter(self_edit_id: int) -> str:
    return f"candidate-{self_edit_id}"


def adapt(state: IngestState, runtime: Runtime[Workspace]) -> IngestState:
    ws = runtime.context
    cfg = ws.config.train
    start = time.perf_counter()
    self_edit = ws.store.self_edit(state["candidates"][state["current"]])
    parent = state["parent_version"]
    ws.progress("adapt", f"training candidate {state['current'] + 1}/{len(state['candidates'])}")

    # The candidate starts from the parent version, so knowledge accumulates version after version.
    name = candidate_adapter(self_edit.id)
    lm = ws.lm
    torch.manual_seed(cfg.seed)
    if parent:
        lm.load_adapter(name, ws.adapters.verified("knowledge", parent, ws.store.version(parent).files))
    else:
        lm.add_adapter(name, lora_config(cfg, lm.base))

    # Its transfer text, and a replay sample of what earlier versions in this lineage learned; no question
    # is built on a probe's span.
    doc = ws.store.document(self_edit.document_id)
    replay = ws.store.replay_sequences(ws.store.lineage(parent), cfg.replay, cfg.seed + self_edit.id)
    if cfg.objective == "distill" and cfg.recital:  # and the recitals of earlier documents: their chat-form memory
        learned = ws.store.learned_documents(ws.store.lineage(parent))
        chosen = random.Random(cfg.seed + self_edit.id).sample(learned, min(cfg.replay, len(learned)))
        replay += [list(recital(lm, d.title, text)) for d in map(ws.store.document, chosen) if d.title
                   for text in passages_of(ws, d)][:cfg.replay]
    parts = list(zip(passages_of(ws, doc), [text for _, text in parts_of(self_edit)]))
    examples = training_examples(lm, doc.title, parts, self_edit.format, [p.answer for p in doc.probes], replay,
                                 ws.config, ws.engine)
    result = train_lora(lm, name, examples, cfg, max_tokens=ws.config.self_edit.max_sequence_tokens)

    # Saved for verify, which loads it into the generation engine (in process, or on the server).
    directory = ws.adapters.scratch(f"{name}-")
    lm.save_adapter(name, directory)
    lm.delete_adapter(name)
    seconds = time.perf_counter() - start
    ws.store.add_event("stage", self_edit.document_id, {"stage": "adapt", "seconds": seconds})
    return {"candidate_dir": str(directory),
            "train": {"config": asdict(cfg), "losses": result.losses, "tokens": result.tokens,
                      "seconds": result.seconds, "tokens_per_second": result.tokens_per_second,
                      "examples": len(examples), "replayed": len(replay)}}
