"""Knowledge versions as the faces show them: listing, one version's details, rollback, and the
history of documents with their trials."""

from __future__ import annotations

from typing import Any

from adapters_store import version_name
from agent.workspace import Workspace
from memory import Trial, Version
from seal.locking import writer_lock


def version_record(ws: Workspace, v: Version, active: int, titles: dict[int, str]) -> dict[str, Any]:
    return {"version": v.number, "name": f"v{v.number}", "parent": v.parent, "active": v.number == active,
            "created_at": v.created_at.isoformat(timespec="seconds"), "documents": v.documents,
            "titles": [titles[d] for d in v.documents],
            "trial": v.trial_id, "metrics": v.metrics, "files": v.files,
            "path": str(ws.adapters.path(v.kind, v.number))}


def list_versions(ws: Workspace, kind: str = "knowledge") -> list[dict[str, Any]]:
    active, versions = ws.store.active(kind), ws.store.versions(kind)
    titles = ws.store.titles([d for v in versions for d in v.documents])
    return [version_record(ws, v, active, titles) for v in versions]


def show_version(ws: Workspace, number: int, kind: str = "knowledge") -> dict[str, Any]:
    version = ws.store.version(number, kind)
    record = version_record(ws, version, ws.store.active(kind), ws.store.titles(version.documents))
    record["lineage"] = ws.store.lineage(number, kind)
    return record


def rollback(ws: Workspace, number: int, kind: str = "knowledge") -> int:
    """Make version `number` active (0: the base model) after checking its files; returns the previous
    active version. Nothing is deleted; the next commit branches from here."""
    if number:
        version = ws.store.version(number, kind)
        ws.adapters.verified(kind, number, version.files)
    with writer_lock(ws.home):
        previous = ws.store.rollback(number, kind)
        ws.adapters.set_pointer(kind, number)
    return previous


def trial_record(t: Trial) -> dict[str, Any]:
    return {"trial": t.id, "self_edit": t.self_edit_id, "parent_version": t.parent_version, "reward": t.reward,
            "new_before": t.new_before, "new_after": t.new_after, "retention_before": t.retention_before,
            "retention_after": t.retention_after, "general_before": t.general_before,
            "general_after": t.general_after, "decision": t.decision, "reason": t.reason, "tokens": t.tokens,
            "train_seconds": t.train_seconds, "created_at": t.created_at.isoformat(timespec="seconds")}


def history(ws: Workspace, limit: int = 50) -> list[dict[str, Any]]:
    """Documents, newest first, each with its trials and the version that learned it."""
    versions = {d: v for v in ws.store.versions("knowledge") for d in v.documents}
    records = []
    for doc in ws.store.documents(limit=limit):
        v = versions.get(doc.id)
        records.append({"document": doc.id, "title": doc.title, "source": doc.source, "status": doc.status,
                        "sha256": doc.sha256, "created_at": doc.created_at.isoformat(timespec="seconds"),
                        "version": v.number if v else None, "version_name": version_name(v.number) if v else None,
                        "metrics": v.metrics if v else None,
                        "trials": [trial_record(t) for t in ws.store.trials(doc.id)]})
    return records
