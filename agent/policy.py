"""ReST-EM for the self-edit policy (the SEAL paper's outer loop):
  collect — E-step: the ingest graph in collect mode samples K self-edits per document with the
            active policy, trains and scores each exactly as verify does (from the active knowledge
            version, same probes, fixed seeds per document) and logs each as a trial; nothing commits.
            Ordinary ingests with K > 1 log their candidates the same way.
  select  — per document, the candidate with the highest reward (equal rewards: the larger token-F1 gain),
            if it exceeds `policy.min_reward` (0).
            With `self_edit.faithful_only`, a candidate is its faithful part, what it was trained on and
            earned its reward with; one with no faithful sentence added nothing to the passage, and is left out.
  update  — M-step: fine-tune the policy adapter (from the active policy version) on the selected
            (prompt → self-edit) pairs, loss on the self-edit tokens only; commit a policy version.
  due     — the schedule: every N committed documents, or N new positive-reward trials; `maybe_update`
            applies it after every ingest (`agent.ingest` and the agent call it), so no caller has to."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from agent.adapt import lora_config
from agent.commit import ActiveMoved, commit_version
from agent.generate import parts_of, pooled_self_edit
from agent.ingest import DocumentInput, IngestResult, checkpointer, learning, run_graph
from agent.workspace import Workspace
from memory import SelfEdit, Trial, Version
from model_runtime import TrainingExample, train_lora
from seal.config import SELF_EDIT_FORMATS
from seal.errors import InputError, SealError

POLICY_ADAPTER = "policy-update"


@dataclass(frozen=True)
class Example:
    """One selected self-edit: the prompt the policy saw and what it wrote, with the reward it earned."""

    trial_id: int
    document_id: int
    reward: float
    tokens: int
    prompt: str
    completion: str


def select(trials: list[tuple[Trial, SelfEdit]], min_reward: float = 0.0) -> list[Example]:
    """Per document, the candidate with the highest reward, kept only if that reward exceeds `min_reward`
    (0: any gain). Equal rewards are common (a passage has about five probes, so a reward moves in steps of
    0.2): they go to the larger token-F1 gain on the document's probes (answers that came closer without
    containing the gold answer), then to fewer trained tokens (the shorter self-edit), then the earlier trial."""
    def rank(trial: Trial) -> tuple[float, float, int, int]:
        return round(trial.reward, 9), round(f1_gain(trial), 9), -trial.tokens, -trial.id

    best: dict[int, tuple[Trial, SelfEdit]] = {}
    for trial, edit in trials:
        held = best.get(trial.document_id)
        if held is None or rank(trial) > rank(held[0]):
            best[trial.document_id] = (trial, edit)
    return [Example(t.id, t.document_id, t.reward, t.tokens, prompt, text)
            for t, e in sorted(best.values(), key=lambda pair: pair[0].id) if round(t.reward, 9) > min_reward
            for prompt, text in parts_of(e) if text]


def f1_gain(trial: Trial) -> float:
    """Mean token-F1 change of the document's probe answers from before to after training (0 for a trial
    without F1 scores, such as a few-shot task's)."""
    rows = [r for r in (trial.scores or {}).get("new", []) if "f1_after" in r]
    return sum(r["f1_after"] - r["f1_before"] for r in rows) / len(rows) if rows else 0.0


def collect(ws: Workspace, documents: list[DocumentInput], k: int | None = None) -> Iterator[IngestResult]:
    """Score `k` candidates per document (default: `self_edit.k`) with the active policy; log them, commit
    nothing."""
    if k is not None:  # the graph reads self_edit.k from the workspace: one that shares this one's store and model
        self_edit = dataclasses.replace(ws.config.self_edit, k=k)
        ws = dataclasses.replace(ws, config=dataclasses.replace(ws.config, self_edit=self_edit), _lm=ws.lm)
    with checkpointer(ws) as saver:
        for item in documents:
            with learning(ws):
                doc, _ = ws.store.add_document(item.text, item.source, item.title,
                                               passage_words=ws.config.ingest.passage_words)
                if item.questions and not ws.store.probes(doc.id):
                    ws.store.set_probes(doc.id, [(q, a, "supplied") for q, a in item.questions])
                if doc.status != "committed":
                    ws.store.reset_document(doc.id)
                result = run_graph(ws, doc, saver, resume=False, collect=True)
            yield result


def training_set(ws: Workspace) -> list[Example]:
    """The selected examples among the trials of self-edits the active policy version wrote."""
    trials = ws.store.policy_trials(ws.store.active("policy"))
    if ws.config.self_edit.faithful_only:  # documents' self-edits; a task's plan trains as written
        trials = [(t, e) for t, e in ((t, as_trained(ws, e) if e.format in SELF_EDIT_FORMATS else e) for t, e in trials)
                  if e.text]
    return select(trials, ws.config.policy.min_reward)


def as_trained(ws: Workspace, edit: SelfEdit) -> SelfEdit:
    """The self-edit cut to its faithful sentences (QA pairs for self_qa), one a line ('' when none is)."""
    document = ws.store.document(edit.document_id).text
    parts = [[prompt, pooled_self_edit(edit.format, [text], document)] for prompt, text in parts_of(edit)]
    return SelfEdit(id=edit.id, document_id=edit.document_id, policy_version=edit.policy_version, format=edit.format,
                    prompt=edit.prompt, text="\n\n".join(t for _, t in parts if t), parts=parts if edit.parts else [])


def update(ws: Workspace, reason: str = "requested") -> Version:
    """Fine-tune the policy on its own best self-edits and commit the result as the next policy version,
    under the learner lock (one learner per home: no ingest trains and no other update runs meanwhile)."""
    with learning(ws):
        return _update(ws, reason)


def _update(ws: Workspace, reason: str) -> Version:
    start = time.perf_counter()
    parent = ws.store.active("policy")
    examples = training_set(ws)
    if not examples:
        faithful = " and a faithful sentence" if ws.config.self_edit.faithful_only else ""
        raise InputError(f"no document has a self-edit from policy v{parent} with reward above "
                         f"{ws.config.policy.min_reward:g}{faithful} yet; run `seal rl collect` (or ingest with "
                         "--set self_edit.k=4) first, or lower policy.min_reward")
    pc = ws.config.policy
    cfg = dataclasses.replace(ws.config.train, learning_rate=pc.learning_rate, epochs=pc.epochs,
                              batch_size=pc.batch_size, loss_on="completion", modules="all")
    lm = ws.lm
    ws.progress("update", f"training the policy on {len(examples)} self-edits (from policy v{parent})")
    torch.manual_seed(cfg.seed)
    if parent:
        lm.load_adapter(POLICY_ADAPTER, ws.adapters.verified("policy", parent, ws.store.version(parent, "policy").files))
    else:
        lm.add_adapter(POLICY_ADAPTER, lora_config(cfg, lm.base))
    end = lm.tokenizer.eos_token or ""
    result = train_lora(lm, POLICY_ADAPTER, [TrainingExample(e.prompt, e.completion + end) for e in examples], cfg,
                        max_tokens=pc.max_tokens)
    directory = ws.adapters.scratch("policy-")
    lm.save_adapter(POLICY_ADAPTER, directory)
    lm.delete_adapter(POLICY_ADAPTER)

    trials = [e.trial_id for e in examples]
    documents = [e.document_id for e in examples]
    metrics = {"examples": len(examples), "mean_reward": sum(e.reward for e in examples) / len(examples),
               "trials": trials, "train_tokens": result.tokens, "train_seconds": result.seconds,
               "final_loss": result.losses[-1] if result.losses else None}
    try:
        version = commit_version(ws, "policy", directory, parent, documents, None, metrics,
                                 {"trials": trials, "config": dataclasses.asdict(cfg)})
    except ActiveMoved as e:  # a rollback (or another update) happened while this one trained
        ws.store.add_event("policy_rejected", None, {"parent": parent, "reason": str(e)})
        raise SealError(f"policy update rejected: {e}; run `seal rl update` again to train on top of it") from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ws.store.add_event("policy_update", None, {"version": version.number, "reason": reason,
                                               "seconds": time.perf_counter() - start})
    return version


def status(ws: Workspace) -> dict[str, Any]:
    """What the next update would learn from, when the last one ran, and whether one is due."""
    active = ws.store.active("policy")
    trials = ws.store.policy_trials(active)
    examples = training_set(ws)
    last = ws.store.version(active, "policy") if active else None
    return {"active": active, "versions": len(ws.store.versions("policy")),
            "last_update": last.created_at.isoformat(timespec="seconds") if last else None,
            "trials": len(trials), "documents": len({t.document_id for t, _ in trials}),
            "positive_trials": sum(t.reward > 0 for t, _ in trials), "examples": len(examples),
            "mean_selected_reward": sum(e.reward for e in examples) / len(examples) if examples else None,
            "due": due(ws)}


def due(ws: Workspace) -> str | None:
    """Why a scheduled policy update should run now, or None."""
    pc = ws.config.policy
    active = ws.store.active("policy")
    since = ws.store.version(active, "policy").created_at if active else None
    if pc.update_every_documents:
        committed = ws.store.versions_since("knowledge", since)
        if committed >= pc.update_every_documents:
            return f"{committed} documents committed since policy v{active} (every {pc.update_every_documents})"
    if pc.update_every_positive:
        positive = sum(t.reward > 0 for t, _ in ws.store.policy_trials(active))
        if positive >= pc.update_every_positive:
            return f"{positive} positive-reward trials from policy v{active} (every {pc.update_every_positive})"
    return None


def maybe_update(ws: Workspace) -> Version | None:
    """The schedule's one entry point: run the update when it is due and there is something to learn from.
    It runs after every document `agent.ingest` learns (`seal ingest`, chat's /learn, Python callers) and
    after every job of the agent (`seal submit`, the inbox, the API's documents). Decided under the learner
    lock, so two processes finishing ingests at once do not both update from the same version."""
    if due(ws) is None:
        return None
    with learning(ws):
        reason = due(ws)
        if reason is None or not training_set(ws):
            return None
        ws.progress("update", f"policy update due: {reason}")
        version = _update(ws, reason)
    ws.progress("policy", f"scheduled update: policy v{version.number} learned from {version.metrics['examples']} "
                          "self-edits")
    return version
