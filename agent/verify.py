"""Stage 3, verify: closed-book, greedy, before (parent version) vs after (candidate) on the document's
probes and a sample of earlier documents' probes (retention); general ability against the *base* model, so
that no chain of commits can lose more than the gate allows once: its answers to the general-ability set
and its drift from the base along them (`divergence`, a continuous measure where one flipped answer is not).
The reward is the new-knowledge gain; the gate decides whether the candidate may be committed."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from langgraph.runtime import Runtime

from agent.adapt import candidate_adapter
from agent.answer import closed_book
from agent.generate import document_seed
from agent.grading import accuracy, grade
from agent.probes import GENERAL_PROBES, general_examples
from agent.state import IngestState
from agent.workspace import Workspace
from memory import Document, Probe, Store, Trial
from model_runtime import divergence
from seal.config import VerifyConfig
from seal.failpoints import failpoint


def gate(gain: float, retention_drop: float | None, general_drop: float, drift: float,
         cfg: VerifyConfig) -> tuple[bool, str]:
    """Pass when the gain reaches min_gain, earlier documents did not drop more than allowed, and general
    ability stayed within bounds of the base model (answers and drift); the reason says which numbers decided."""
    # Accuracies are fractions of a few questions: compare at 1e-9 so that 0.8 - 0.6 counts as 0.2.
    gain, general_drop = round(gain, 9), round(general_drop, 9)
    retention_drop = None if retention_drop is None else round(retention_drop, 9)
    failures = []
    if gain < cfg.min_gain:
        failures.append(f"gain {gain:+.2f} < {cfg.min_gain:.2f}")
    if retention_drop is not None and retention_drop > cfg.max_retention_drop:
        failures.append(f"retention dropped {retention_drop:.2f} > {cfg.max_retention_drop:.2f}")
    if general_drop > cfg.max_general_drop:
        failures.append(f"general ability dropped {general_drop:.2f} below the base model > {cfg.max_general_drop:.2f}")
    if drift > cfg.max_drift:
        failures.append(f"drifted {drift:.3f} nats/token from the base model > {cfg.max_drift:.3f}")
    if failures:
        return False, "; ".join(failures)
    retained = "" if retention_drop is None else f", retention drop {retention_drop:.2f}"
    return True, f"gain {gain:+.2f}{retained}, general drop {general_drop:.2f}, drift {drift:.3f}"


def retention_sample(store: Store, doc: Document, parent: int, before: dict[str, str], n: int) -> list[Probe]:
    """Earlier material to guard: a seeded sample of `n` probes of the documents the parent learned, plus up
    to n/2 probes of rejected documents that the parent is known (`before`: its recorded answers) to
    answer right — what it knew of them from pre-training must not be lost either. Only those, so rejected
    documents cannot dilute the learned ones' sample."""
    seed = document_seed(doc.sha256, 0)
    learned = store.retention_probes(doc.id, store.learned_documents(store.lineage(parent)), n, seed)
    known = [p for p in store.probes_of(store.rejected_documents(), doc.id)
             if p.question in before and grade(before[p.question], p.answer).correct]
    return learned + random.Random(seed).sample(known, min(len(known), n // 2))


def general_drift(ws: Workspace, name: str, directory: Path, base: dict[str, str]) -> float:
    """The candidate's drift from the base model along the base's answers to the general-ability set
    (`divergence`), computed in this process (where training runs) whichever engine answers."""
    loaded = name not in ws.lm.adapters()  # already attached when generation runs in this process
    if loaded:
        ws.lm.load_adapter(name, directory)
    try:
        return divergence(ws.lm, general_examples(ws.lm, base), name)
    finally:
        if loaded:
            ws.lm.delete_adapter(name)


def verify(state: IngestState, runtime: Runtime[Workspace]) -> IngestState:
    ws = runtime.context
    cfg = ws.config.verify
    start = time.perf_counter()
    doc = ws.store.document(state["document_id"])
    parent, index = state["parent_version"], state["current"]
    self_edit_id = state["candidates"][index]
    ws.progress("verify", f"scoring candidate {index + 1}/{len(state['candidates'])}")
    # A verify that recorded its trial but was stopped before its checkpoint is not run twice.
    done = ws.store.trial_of(self_edit_id, parent)
    if done is not None:
        return {"current": index + 1, "trials": [{"trial_id": done.id, "passed": done.passed, "reward": done.reward,
                                                  "dir": state["candidate_dir"]}]}

    # Three groups of (question, gold answer): this document, earlier documents, general ability.
    # Before: the parent version's answers — those it already gave in earlier trials are reused, the rest
    # computed here once and shared by every candidate — and the base model's to the general set. After: the
    # candidate's answers (re-attached from scratch when resuming in a new process). All are decoded together
    # in mixed batches.
    before = dict(state.get("before") or ws.store.recorded_answers(parent))
    base = dict(state.get("base") or {})
    retention = retention_sample(ws.store, doc, parent, before, cfg.retention_probes)
    groups = {"new": [(p.question, p.answer) for p in doc.probes],
              "retention": [(p.question, p.answer) for p in retention],
              "general": GENERAL_PROBES}
    questions = [q for items in groups.values() for q, _ in items]
    missing = [q for q, _ in groups["new"] + groups["retention"] if q not in before]
    unasked = [q for q, _ in GENERAL_PROBES if q not in base]
    parent_adapter = ws.attach("knowledge", parent)
    name = candidate_adapter(self_edit_id)
    if name not in ws.engine.adapters():
        ws.engine.load_adapter(name, Path(state["candidate_dir"]))
    answers = closed_book(ws.engine, missing + unasked + questions,
                          [parent_adapter] * len(missing) + [None] * len(unasked) + [name] * len(questions),
                          cfg.answer_tokens)
    before |= dict(zip(missing, answers[:len(missing)]))
    base |= dict(zip(unasked, answers[len(missing):len(missing) + len(unasked)]))
    after = dict(zip(questions, answers[len(missing) + len(unasked):]))
    drift = general_drift(ws, name, Path(state["candidate_dir"]), base)
    ws.engine.delete_adapter(name)

    scores: dict[str, list] = {}
    acc: dict[str, tuple[float, float] | None] = {}
    for group, items in groups.items():
        earlier = base if group == "general" else before
        rows = []
        for q, gold in items:
            b, a = grade(earlier[q], gold), grade(after[q], gold)
            rows.append({"question": q, "answer": gold, "before": earlier[q], "after": after[q],
                         "correct_before": b.correct, "correct_after": a.correct, "exact_before": b.exact,
                         "exact_after": a.exact, "f1_before": b.f1, "f1_after": a.f1})
        scores[group] = rows
        acc[group] = (accuracy([grade(earlier[q], g) for q, g in items]),
                      accuracy([grade(after[q], g) for q, g in items])) if items else None

    for row, probe in zip(scores["new"], doc.probes):  # a long document's results, passage by passage
        row["passage"] = probe.passage

    # A document too short to probe cannot show a gain: it is rejected, saying how to fix that.
    gain = 0.0 if acc["new"] is None else acc["new"][1] - acc["new"][0]
    retention_drop = None if acc["retention"] is None else acc["retention"][0] - acc["retention"][1]
    general_drop = acc["general"][0] - acc["general"][1]
    passed, reason = gate(gain, retention_drop, general_drop, drift, cfg)
    if acc["new"] is None:
        passed, reason = False, "no probe questions could be made for this document; supply them with --qa"

    # Record the trial; a rejected candidate is data. The last candidate of a document none of whose
    # candidates passed also marks the document rejected (collecting: collected), in the same transaction.
    last = index + 1 == len(state["candidates"])
    none_passed = not passed and not any(t["passed"] for t in state.get("trials", []))
    collect = bool(state.get("collect"))
    status = ("collected" if collect else "rejected" if none_passed else None) if last else None
    train = state["train"]
    trial = ws.store.add_trial(Trial(
        document_id=doc.id, self_edit_id=self_edit_id, parent_version=parent, config=train["config"],
        losses=train["losses"], tokens=train["tokens"], train_seconds=train["seconds"], scores=scores,
        new_before=acc["new"][0] if acc["new"] else 0.0, new_after=acc["new"][1] if acc["new"] else 0.0,
        retention_before=None if acc["retention"] is None else acc["retention"][0],
        retention_after=None if acc["retention"] is None else acc["retention"][1],
        general_before=acc["general"][0], general_after=acc["general"][1], general_drift=drift, reward=gain, passed=passed,
        decision="passed" if passed else "rejected", reason=reason), document_status=status)
    failpoint("verify.recorded")
    if collect or not passed:
        shutil.rmtree(state["candidate_dir"], ignore_errors=True)

    ws.store.add_event("stage", doc.id, {"stage": "verify", "seconds": time.perf_counter() - start})
    return {"before": before, "base": base, "current": index + 1,
            "trials": [{"trial_id": trial.id, "passed": passed, "reward": gain, "dir": state["candidate_dir"]}]}
