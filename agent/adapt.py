"""Stage 2, adapt: train a LoRA on the current candidate's transfer text (`agent.transfer`: its self-edit, the
document, and a replay sample of earlier committed self-edits), starting from the parent knowledge version's
weights, and save it to scratch."""

from __future__ import annotations

import time
from dataclasses import asdict

import torch
from langgraph.runtime import Runtime
from peft import LoraConfig

from agent.state import IngestState
from agent.transfer import training_examples
from agent.workspace import Workspace
from model_runtime import train_lora
from seal.config import TrainConfig


def lora_config(cfg: TrainConfig) -> LoraConfig:
    """A LoRA on every linear projection of the transformer blocks (not the tied output head)."""
    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules="all-linear",
                      task_type="CAUSAL_LM")


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
        lm.add_adapter(name, lora_config(cfg))

    # Its transfer text, and a replay sample of what earlier versions in this lineage learned; no question
    # is built on a probe's span.
    doc = ws.store.document(self_edit.document_id)
    replay = ws.store.replay_sequences(ws.store.lineage(parent), cfg.replay, cfg.seed + self_edit.id)
    examples = training_examples(lm, doc.title, doc.text, self_edit.format, self_edit.text,
                                 [p.answer for p in doc.probes], replay, ws.config)
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
