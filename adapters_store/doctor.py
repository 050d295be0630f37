"""`seal doctor`: check a home directory — the database against the adapter files — and, with `repair`,
fix what can be fixed without losing anything. The database is the source of truth: files it does not
know (a crash between writing a version and committing it) are leftovers; files it knows that are
missing or changed cannot be recreated and are reported with what to do."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from adapters_store.versions import POINTER, VERSION, AdapterStore, lineages, version_name
from memory import Store
from seal.locking import learner_lock, writer_lock


@dataclass
class Finding:
    problem: bool  # False: a notice (nothing is wrong, something is waiting for the user)
    what: str
    fix: Path | None = None  # a leftover `repair` deletes; None: repair cannot fix it, `what` says how
    pointer: tuple[str, int] | None = None  # (kind, version) `repair` writes into a wrong pointer file
    repaired: bool = False


def examine(store: Store, adapters: AdapterStore) -> list[Finding]:
    found: list[Finding] = []
    if store.revision() != store.head():
        found.append(Finding(True, f"the database schema is at revision {store.revision()}, this code needs "
                                   f"{store.head()}: run `seal db upgrade`"))
        return found  # the queries below assume the current schema
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            verdict = connection.execute(text("PRAGMA integrity_check")).scalar()
        if verdict != "ok":
            found.append(Finding(True, f"the SQLite file is damaged ({verdict}): restore a backup (`seal restore`)"))
    for kind in lineages(adapters.root, store.kinds()):
        found += _lineage(store, adapters, kind)
    pending = store.pending_documents()
    for doc in pending:
        found.append(Finding(False, f"document {doc.id} ({doc.title[:40]}) has an interrupted ingest: "
                                    "finish it with `seal ingest --resume`"))
    scratch = adapters.root / ".scratch"
    leftovers = sorted(scratch.iterdir()) if scratch.is_dir() else []
    if leftovers and not pending:
        found += [Finding(True, f"{p} is a candidate folder no ingest will resume", fix=p) for p in leftovers]
    return found


def _lineage(store: Store, adapters: AdapterStore, kind: str) -> list[Finding]:
    found: list[Finding] = []
    versions = {v.number: v for v in store.versions(kind)}
    active = store.active(kind)
    if active and active not in versions:
        found.append(Finding(True, f"the active {kind} version v{active} has no record: make a recorded version "
                                   f"active with `seal versions rollback --kind {kind}`"))
    for number, v in versions.items():
        folder = adapters.path(kind, number)
        if v.pruned:
            if number == active:
                found.append(Finding(True, f"the active {kind} version v{number} was pruned (its files are gone): "
                                           f"make another version active with `seal versions rollback --kind {kind}`"))
            if folder.exists():
                found.append(Finding(True, f"{folder} belongs to pruned {kind} version v{number}", fix=folder))
            continue
        advice = (f"roll back to an intact version (`seal versions rollback --kind {kind}`) or restore a backup"
                  if number == active else f"restore a backup, or prune v{number} if you do not need it")
        found += [Finding(True, f"{p}: {advice}") for p in adapters.problems(kind, number, v.files)]

    kind_dir = adapters.root / kind
    if kind_dir.is_dir():
        for entry in sorted(kind_dir.iterdir()):
            match = VERSION.match(entry.name)
            if entry.name == POINTER:
                continue
            if match and entry.name == version_name(int(match.group(1))) and int(match.group(1)) in versions:
                continue
            reason = ("was written by a commit that never reached the database" if match
                      else "is an unfinished write")
            found.append(Finding(True, f"{entry} {reason}", fix=entry))
    pointer = kind_dir / POINTER
    recorded = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None
    if (recorded is not None or versions) and recorded != version_name(active):
        found.append(Finding(True, f"{pointer} says {recorded or 'nothing'}, the database says "
                                   f"{version_name(active)}", pointer=(kind, active)))
    return found


def repair(home: Path, store: Store, adapters: AdapterStore,
           on_wait: Callable[[], None] | None = None) -> list[Finding]:
    """Upgrade an old schema, examine, then fix every leftover and pointer, holding the learner and writer
    locks (no ingest or commit runs meanwhile); returns every finding, the fixed ones marked."""
    with learner_lock(home, on_wait), writer_lock(home):  # no ingest, collect or policy update runs meanwhile
        if store.revision() != store.head():
            try:
                store.upgrade()
            except (SQLAlchemyError, CommandError) as e:  # reported like any other problem; schema left as it was
                return [Finding(True, f"the schema upgrade failed: {str(e).splitlines()[0]}; restore a backup")]
        found = examine(store, adapters)
        for f in found:
            if f.fix is not None:
                if f.fix.is_dir():
                    shutil.rmtree(f.fix)
                else:
                    f.fix.unlink(missing_ok=True)
                f.repaired = True
            elif f.pointer is not None:
                adapters.set_pointer(*f.pointer)
                f.repaired = True
    return found

