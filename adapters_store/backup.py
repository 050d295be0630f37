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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters_store.versions import AdapterStore, lineages, sha256_file
from memory import Store
from memory.transfer import copy_rows
from seal.errors import InputError, IntegrityError
from seal.locking import writer_lock

MANIFEST = "manifest.json"
CONFIG = "config.toml"
FORMAT = 1


def backup(home: Path, store: Store, adapters: AdapterStore, destination: Path, model: str) -> dict[str, Any]:
    """Write a backup of the home to `destination` (which must not exist yet, nor be inside the home);
    `model` is the configured base model, recorded so a restore onto another model is refused."""
    if destination.exists():
        raise InputError(f"{destination} already exists; give a new path for the backup")
    if destination.is_relative_to(home.resolve()):
        raise InputError(f"{destination} is inside the home {home}; put the backup somewhere else")
    if not destination.parent.is_dir():
        raise InputError(f"{destination.parent} is not a folder; create it first")
    try:
        return _backup(home, store, adapters, destination, model)
    except OSError as e:
        raise InputError(f"cannot write the backup to {destination}: {e.strerror or e}") from None


def _backup(home: Path, store: Store, adapters: AdapterStore, destination: Path, model: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        with writer_lock(home):
            snapshot = Store(f"sqlite:///{work / 'seal.db'}")
            rows = copy_rows(store, snapshot)
            kinds = lineages(adapters.root, snapshot.kinds())
            versions = {kind: {v.number: v.files for v in snapshot.versions(kind) if not v.pruned} for kind in kinds}
            active = {kind: snapshot.active(kind) for kind in kinds}
            snapshot.close()
            copy = AdapterStore(work / "adapters")
            for kind, kept in versions.items():
                for number, files in kept.items():
                    problems = adapters.problems(kind, number, files)  # a damaged version is not copied silently
                    if problems:
                        raise IntegrityError(f"{problems[0]}; nothing was backed up: prune v{number} or restore it "
                                             "from an older backup first (`seal doctor` lists every problem)")
                    shutil.copytree(adapters.path(kind, number), copy.path(kind, number))
                if kept or active[kind]:
                    copy.set_pointer(kind, active[kind])
        if (home / CONFIG).is_file():
            shutil.copyfile(home / CONFIG, work / CONFIG)
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "schema": Store.head(), "model": model, "rows": rows, "active": active,
                    "versions": {k: sorted(v) for k, v in versions.items()},
                    "database_sha256": sha256_file(work / "seal.db")}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.rename(work, destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def restore(home: Path, store: Store, adapters: AdapterStore, source: Path, model: str | None) -> dict[str, Any]:
    """Fill this (empty) home from the backup at `source`; returns the backup's manifest. `model` is the
    base model this home's config.toml names, which must be the one the backup's adapters were trained on;
    None when the home has no config.toml, which then comes from the backup."""
    manifest = _checked_manifest(source)
    held = [f"{n} {table}" for table, n in store.row_counts().items() if n]
    held += [f"{kind} adapters" for kind in lineages(adapters.root, []) if (adapters.root / kind).is_dir() and any(
        (adapters.root / kind).iterdir())]
    if held:
        raise InputError(f"the home {home} already holds data ({', '.join(held)}); restore into an empty home "
                         "(point SEAL_HOME, and SEAL_DATABASE_URL if you use one, at new ones)")
    if model is not None and manifest.get("model") != model:
        raise InputError(f"the backup's adapters belong to the model {manifest.get('model')!r}, but this home is "
                         f"configured for {model!r}: use the backup's {CONFIG} (in {source})")
    with tempfile.TemporaryDirectory(prefix="seal-restore-") as scratch:
        shutil.copyfile(source / "seal.db", Path(scratch) / "seal.db")
        saved = Store(f"sqlite:///{Path(scratch) / 'seal.db'}")  # upgraded here if it is from an older release
        saved_adapters = AdapterStore(source / "adapters")
        with writer_lock(home):
            kinds = lineages(saved_adapters.root, saved.kinds())
            for kind in kinds:
                for v in saved.versions(kind):
                    if not v.pruned:
                        folder = saved_adapters.verified(kind, v.number, v.files)
                        target = adapters.path(kind, v.number)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copytree(folder, target)
            copy_rows(saved, store)
            if model is None and (source / CONFIG).is_file():
                shutil.copyfile(source / CONFIG, home / CONFIG)
            for kind in kinds:
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

