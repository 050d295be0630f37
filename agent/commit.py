"""Committing an adapter version, the one protocol every lineage (knowledge, policy, task/…) uses: under the
home's writer lock, refuse when the lineage's active version moved since training began (a commit or a
rollback would be silently overwritten), write the adapter files atomically, then one database transaction
(version, active pointer, trial, document), then the pointer file that mirrors it. Safe to re-run after a
crash: a trial is committed once. And stage 4 of the ingest graph, which commits the best passing candidate
as the next knowledge version."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from agent.state import IngestState
from agent.workspace import Workspace
from memory import Version
from seal.errors import SealError
from seal.failpoints import failpoint
from seal.locking import writer_lock


class ActiveMoved(SealError):
    """The lineage's active version is no longer the one the candidate was trained from."""

    def __init__(self, kind: str, parent: int, active: int):
        super().__init__(f"the {kind} lineage's active version moved from v{parent} to v{active} while this "
                         "update trained")


def commit_version(ws: Workspace, kind: str, directory: Path, parent: int, documents: list[int],
                   trial_id: int | None, metrics: dict[str, Any], metadata: dict[str, Any] = {}) -> Version:
    """Commit the adapter in `directory`, trained from version `parent`, as the next version of lineage `kind`
    (see the module's docstring); the version a crashed run already made for `trial_id` is returned as it is.
    Raises ActiveMoved, committing nothing, when the active version is no longer `parent`."""
    with writer_lock(ws.home):
        try:
            version = ws.store.version_of_trial(trial_id) if trial_id is not None else None
            if version is None:
                active = ws.store.active(kind)
                if active != parent:
                    raise ActiveMoved(kind, parent, active)
                number = ws.store.next_number(kind)
                files = ws.adapters.write(kind, number, directory, {
                    "parent": parent, "documents": documents, "trial": trial_id, "metrics": metrics,
                    "base_model": ws.lm.name, **metadata})
                version = ws.store.commit_version(Version(kind=kind, number=number, parent=parent, files=files,
                                                          metrics=metrics, documents=documents, trial_id=trial_id),
                                                  documents[0] if trial_id is not None and documents else None)
            failpoint("commit.recorded")
            return version
        finally:
            ws.adapters.set_pointer(kind, ws.store.active(kind))


def commit(state: IngestState, runtime: Runtime[Workspace]) -> IngestState:
    ws = runtime.context
    start = time.perf_counter()
    document_id = state["document_id"]
    # Highest reward wins; ties go to the earlier candidate.
    best = max((t for t in state["trials"] if t["passed"]), key=lambda t: (t["reward"], -t["trial_id"]))
    trial = ws.store.trial(best["trial_id"])
    metrics = {"reward": trial.reward, "new_before": trial.new_before, "new_after": trial.new_after,
               "retention_before": trial.retention_before, "retention_after": trial.retention_after,
               "general_before": trial.general_before, "general_after": trial.general_after,
               "general_drift": trial.general_drift, "train_tokens": trial.tokens, "train_seconds": trial.train_seconds}
    try:
        version = commit_version(ws, "knowledge", Path(best["dir"]), state["parent_version"], [document_id], trial.id,
                                 metrics, {"config": trial.config})
    except ActiveMoved as e:
        # Committing it would silently drop the new active version's knowledge from the active lineage.
        ws.store.reject_trial(trial.id, document_id, f"{e}; ingest the document again to learn it on top of it")
        version = None

    for t in state["trials"]:
        shutil.rmtree(t["dir"], ignore_errors=True)
    ws.store.add_event("stage", document_id, {"stage": "commit", "seconds": time.perf_counter() - start})
    return {"version": version.number if version else 0}
