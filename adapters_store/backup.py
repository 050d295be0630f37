"""`seal backup` / `seal restore`: a home as one folder — `seal.db` (SQLite, whatever the live database
is), the adapter folders of every kept version, and `manifest.json`, written last, that makes it a backup.

Backup runs while the runtime may be running: under the writer lock (no commit, rollback or prune moves a
version meanwhile) it copies the rows in one read snapshot, then the version folders those rows name,
checking every file against its recorded sha256. Restore fills an empty home in the commit protocol's
order — files, then one database transaction, then the pointer files — so a crash leaves nothing
`seal doctor --repair` cannot clean."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters_store.versions import KINDS, AdapterStore, sha256_file
from memory import Store
from memory.transfer import copy_rows
from seal.errors import InputError, IntegrityError
from seal.locking import writer_lock

MANIFEST = "manifest.json"
FORMAT = 1


def backup(home: Path, store: Store, adapters: AdapterStore, destination: Path) -> dict[str, Any]:
    """Write a backup of the home to `destination` (which must not exist yet); returns its manifest."""
    if destination.exists():
        raise InputError(f"{destination} already exists; give a new path for the backup")
    if not destination.parent.is_dir():
        raise InputError(f"{destination.parent} is not a folder; create it first")
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        with writer_lock(home):
            snapshot = Store(f"sqlite:///{work / 'seal.db'}")
            rows = copy_rows(store, snapshot)
            versions = {kind: {v.number: v.files for v in snapshot.versions(kind) if not v.pruned} for kind in KINDS}
            active = {kind: snapshot.active(kind) for kind in KINDS}
            snapshot.close()
            copy = AdapterStore(work / "adapters")
            for kind, kept in versions.items():
                for number, files in kept.items():
                    adapters.verified(kind, number, files)  # a damaged version is not backed up silently
                    shutil.copytree(adapters.path(kind, number), copy.path(kind, number))
                if kept or active[kind]:
                    copy.set_pointer(kind, active[kind])
        manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "schema": Store.head(), "rows": rows, "active": active,
                    "versions": {k: sorted(v) for k, v in versions.items()},
                    "database_sha256": sha256_file(work / "seal.db")}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.rename(work, destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def restore(home: Path, store: Store, adapters: AdapterStore, source: Path) -> dict[str, Any]:
    """Fill this (empty) home from the backup at `source`; returns the backup's manifest."""
    manifest = _checked_manifest(source)
    held = [f"{n} {table}" for table, n in store.row_counts().items() if n]
    held += [f"{kind} adapters" for kind in KINDS if (adapters.root / kind).exists()]
    if held:
        raise InputError(f"the home {home} already holds data ({', '.join(held)}); restore into an empty home "
                         "(point SEAL_HOME, and SEAL_DATABASE_URL if you use one, at new ones)")
    with tempfile.TemporaryDirectory(prefix="seal-restore-") as scratch:
        shutil.copyfile(source / "seal.db", Path(scratch) / "seal.db")
        saved = Store(f"sqlite:///{Path(scratch) / 'seal.db'}")  # upgraded here if it is from an older release
        saved_adapters = AdapterStore(source / "adapters")
        with writer_lock(home):
            for kind in KINDS:
                for v in saved.versions(kind):
                    if not v.pruned:
                        folder = saved_adapters.verified(kind, v.number, v.files)
                        target = adapters.path(kind, v.number)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copytree(folder, target)
            copy_rows(saved, store)
            for kind in KINDS:
                if saved.versions(kind) or saved.active(kind):
                    adapters.set_pointer(kind, saved.active(kind))
        saved.close()
    return manifest


def _checked_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{source} is not a seal backup (no {MANIFEST}; an unfinished backup has none)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{source / MANIFEST} cannot be read: {e}") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{source} is backup format {manifest.get('format')!r}; this seal reads format {FORMAT}")
    if str(manifest.get("schema")) > Store.head():
        raise InputError(f"{source} was made by a newer seal (schema {manifest.get('schema')}, this one knows up to "
                         f"{Store.head()}); upgrade seal to restore it")
    if not (source / "seal.db").is_file() or sha256_file(source / "seal.db") != manifest.get("database_sha256"):
        raise IntegrityError(f"{source / 'seal.db'} is missing or does not match the backup's manifest")
    return manifest

