"""Stage 4, commit: the best passing candidate becomes the next knowledge version — adapter files
written atomically first, then one database transaction (version, active pointer, trial, document),
then the pointer file that mirrors it, all under the home's writer lock. Safe to re-run after a crash:
a trial is committed once."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from langgraph.runtime import Runtime

from agent.state import IngestState
from agent.workspace import Workspace
from memory import Version
from seal.failpoints import failpoint
from seal.locking import writer_lock


def commit(state: IngestState, runtime: Runtime[Workspace]) -> IngestState:
    ws = runtime.context
    start = time.perf_counter()
    document_id = state["document_id"]
    # Highest reward wins; ties go to the earlier candidate.
    best = max((t for t in state["trials"] if t["passed"]), key=lambda t: (t["reward"], -t["trial_id"]))

    with writer_lock(ws.home):
        version = ws.store.version_of_trial(best["trial_id"])  # made already by a commit stopped midway
        active = ws.store.active("knowledge")
        if version is None and active != state["parent_version"]:
            # Another commit or a rollback moved the active version while this candidate trained from the
            # old one; committing it would silently drop that version's knowledge from the active lineage.
            ws.store.reject_trial(best["trial_id"], document_id,
                                  f"the active version moved from v{state['parent_version']} to v{active} during "
                                  "this ingest; ingest the document again to learn it on top of the new version")
        else:
            version = version or _commit_trial(ws, best, document_id)
            failpoint("commit.recorded")
        ws.adapters.set_pointer("knowledge", ws.store.active("knowledge"))

    for t in state["trials"]:
        shutil.rmtree(t["dir"], ignore_errors=True)
    ws.store.add_event("stage", document_id, {"stage": "commit", "seconds": time.perf_counter() - start})
    return {"version": version.number if version else 0}


def _commit_trial(ws: Workspace, best: dict, document_id: int) -> Version:
    """Write trial `best`'s adapter as the next version and commit it in one transaction."""
    trial = ws.store.trial(best["trial_id"])
    number = ws.store.next_number("knowledge")
    metrics = {"reward": trial.reward, "new_before": trial.new_before, "new_after": trial.new_after,
               "retention_before": trial.retention_before, "retention_after": trial.retention_after,
               "general_before": trial.general_before, "general_after": trial.general_after,
               "general_drift": trial.general_drift, "train_tokens": trial.tokens, "train_seconds": trial.train_seconds}
    metadata = {"parent": trial.parent_version, "documents": [document_id], "trial": trial.id,
                "config": trial.config, "metrics": metrics, "base_model": ws.lm.name}
    files = ws.adapters.write("knowledge", number, Path(best["dir"]), metadata)
    return ws.store.commit_version(Version(kind="knowledge", number=number, parent=trial.parent_version, files=files,
                                           metrics=metrics, documents=[document_id], trial_id=trial.id), document_id)
