"""Knowledge versions as the faces show them: listing, one version's details, rollback, and the
history of documents with their trials."""

from __future__ import annotations

import re
import shutil
from typing import Any

from adapters_store import parse_version, version_name
from adapters_store.versions import VERSION
from agent.ingest import interrupted_parents
from agent.workspace import Workspace
from memory import Trial, Version
from seal.errors import InputError
from seal.locking import writer_lock

TAG = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")


def version_record(ws: Workspace, v: Version, active: int, titles: dict[int, str],
                   tags: dict[int, list[str]]) -> dict[str, Any]:
    return {"version": v.number, "name": f"v{v.number}", "parent": v.parent, "active": v.number == active,
            "tags": tags.get(v.number, []), "pruned": v.pruned,
            "created_at": v.created_at.isoformat(timespec="seconds"), "documents": v.documents,
            "titles": [titles[d] for d in v.documents],
            "trial": v.trial_id, "metrics": v.metrics, "files": v.files,
            "path": str(ws.adapters.path(v.kind, v.number))}


def list_versions(ws: Workspace, kind: str = "knowledge") -> list[dict[str, Any]]:
    active, versions = ws.store.active(kind), ws.store.versions(kind)
    titles = ws.store.titles([d for v in versions for d in v.documents])
    tags = ws.store.tags(kind)
    return [version_record(ws, v, active, titles, tags) for v in versions]


def show_version(ws: Workspace, number: int, kind: str = "knowledge") -> dict[str, Any]:
    version = ws.store.version(number, kind)
    record = version_record(ws, version, ws.store.active(kind), ws.store.titles(version.documents),
                            ws.store.tags(kind))
    record["lineage"] = ws.store.lineage(number, kind)
    return record


def resolve(ws: Workspace, name: str, kind: str = "knowledge") -> int:
    """A version named as on the command line: v3, 3, or a tag."""
    tagged = ws.store.tagged(name.strip(), kind)
    if tagged is not None:
        return tagged
    try:
        return parse_version(name)
    except InputError:
        raise InputError(f"{name!r} is neither a version nor a tag; write a version like v3 (v0 is the base "
                         "model) or a tag from `seal versions list`") from None


def tag(ws: Workspace, number: int, name: str, kind: str = "knowledge") -> None:
    if not TAG.match(name) or VERSION.match(name):
        raise InputError(f"{name!r} is not a usable tag: start with a letter, then letters, digits, '.', '_' or "
                         "'-' (64 at most), and not a version name like v3")
    with writer_lock(ws.home):  # a prune cannot slip in between the check and the tag
        if number and ws.store.version(number, kind).pruned:
            raise InputError(f"{kind} version v{number} was pruned; tag a version that still has its files")
        ws.store.tag(number, name, kind)


def prune_plan(ws: Workspace, keep: int, keep_ancestors: bool, kind: str = "knowledge") -> tuple[list[int], dict[int, str]]:
    """Which versions' files `prune` would delete, and why each other version is kept. Kept: the `keep`
    newest, the active one, tagged ones, those an interrupted ingest trains from, and with `keep_ancestors`
    the active one's whole lineage."""
    if keep < 0:
        raise InputError(f"--keep {keep}: give the number of newest versions to keep (0 or more)")
    versions = [v for v in ws.store.versions(kind) if not v.pruned]
    active, tags = ws.store.active(kind), ws.store.tags(kind)
    reasons: dict[int, str] = {}
    for v in versions[::-1][:keep]:
        reasons[v.number] = f"one of the {keep} newest"
    if keep_ancestors:
        for n in ws.store.lineage(active, kind):
            reasons.setdefault(n, "an ancestor of the active version")
    for n in tags:
        reasons[n] = "tagged " + ", ".join(tags[n])
    if kind == "knowledge":
        for n in interrupted_parents(ws):
            reasons.setdefault(n, "an interrupted ingest trains from it (`seal ingest --resume`)")
    if active:
        reasons[active] = "active"
    return [v.number for v in versions if v.number not in reasons], reasons


def prune(ws: Workspace, numbers: list[int], kind: str = "knowledge") -> None:
    """Delete the files of these versions (history stays). Recorded first, then deleted, under the writer
    lock: a crash in between leaves folders `seal doctor --repair` removes."""
    with writer_lock(ws.home):
        still_prunable, _ = prune_plan(ws, 0, False, kind)
        refused = sorted(set(numbers) - set(still_prunable))
        if refused:
            raise InputError(f"{kind} versions {', '.join(f'v{n}' for n in refused)} are active, tagged or already "
                             "pruned; nothing was deleted")
        ws.store.mark_pruned(numbers, kind)
        for n in numbers:
            shutil.rmtree(ws.adapters.path(kind, n), ignore_errors=True)


def rollback(ws: Workspace, number: int, kind: str = "knowledge") -> int:
    """Make version `number` active (0: the base model) after checking its files; returns the previous
    active version. Nothing is deleted; the next commit branches from here."""
    with writer_lock(ws.home):  # checked under the lock, so a prune cannot delete it in between
        if number:
            version = ws.store.version(number, kind)
            if version.pruned:
                raise InputError(f"{kind} version v{number} was pruned (its files deleted); pick another version "
                                 "from `seal versions list`")
            ws.adapters.verified(kind, number, version.files)
        previous = ws.store.rollback(number, kind)
        ws.adapters.set_pointer(kind, number)
    return previous


def trial_record(t: Trial) -> dict[str, Any]:
    return {"trial": t.id, "self_edit": t.self_edit_id, "parent_version": t.parent_version, "reward": t.reward,
            "new_before": t.new_before, "new_after": t.new_after, "retention_before": t.retention_before,
            "retention_after": t.retention_after, "general_before": t.general_before,
            "general_after": t.general_after, "general_drift": t.general_drift, "decision": t.decision, "reason": t.reason,
            "tokens": t.tokens,
            "train_seconds": t.train_seconds, "created_at": t.created_at.isoformat(timespec="seconds")}


def history(ws: Workspace, limit: int = 50) -> list[dict[str, Any]]:
    """Documents, newest first, each with its trials and the version that learned it."""
    documents = ws.store.documents(limit=limit)
    ids = [d.id for d in documents]
    versions, trials = ws.store.versions_learning(ids), ws.store.trial_summaries(ids)
    records = []
    for doc in documents:
        v = versions.get(doc.id)
        records.append({"document": doc.id, "title": doc.title, "source": doc.source, "status": doc.status,
                        "sha256": doc.sha256, "created_at": doc.created_at.isoformat(timespec="seconds"),
                        "version": v.number if v else None, "version_name": version_name(v.number) if v else None,
                        "metrics": v.metrics if v else None,
                        "trials": [trial_record(t) for t in trials[doc.id]]})
    return records
