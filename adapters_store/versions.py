"""`AdapterStore`: <home>/adapters/<kind>/v0001/ (kind: knowledge, policy, or task/<id>) holds
adapter_model.safetensors, adapter_config.json and seal.json (parent, documents, config, metrics, sha256 of each
file). A version is written to a temporary folder and renamed into place, so a reader never sees half of one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from seal.errors import InputError, IntegrityError
from seal.failpoints import failpoint

METADATA = "seal.json"
POINTER = "ACTIVE"
KINDS = ("knowledge", "policy")  # the runtime's two lineages; each few-shot task adds its own, task/<id>
TASK_LINEAGE = re.compile(r"^task/[A-Za-z0-9][A-Za-z0-9_.-]{0,26}$")  # fits the database's 32-character kind
VERSION = re.compile(r"^v?(\d{1,6})$")


def parse_version(name: str) -> int:
    """'v3', 'v0003' or '3' -> 3; anything else (paths included) is refused."""
    match = VERSION.match(name.strip())
    if match is None:
        raise InputError(f"{name!r} is not a version name; write it like v3 (v0 is the base model)")
    return int(match.group(1))


def check_kind(kind: str) -> str:
    """A lineage name, checked: knowledge, policy, or task/<id> (so no path ever leaves the adapter store)."""
    if kind not in KINDS and not TASK_LINEAGE.match(kind):
        raise InputError(f"unknown adapter lineage {kind!r}; use knowledge, policy, or task/<task id>")
    return kind


def lineages(root: Path, recorded: list[str]) -> list[str]:
    """Every lineage a home has: the runtime's two, then each task's, from the database and from disk."""
    on_disk = [f"task/{p.name}" for p in (root / "task").iterdir()] if (root / "task").is_dir() else []
    tasks = sorted({k for k in [*recorded, *on_disk] if TASK_LINEAGE.match(k)})
    return [*KINDS, *tasks]


def version_name(number: int) -> str:
    return f"v{number:04d}"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AdapterStore:
    def __init__(self, root: Path):
        self.root = root

    def _kind_dir(self, kind: str) -> Path:
        return self.root / check_kind(kind)

    def path(self, kind: str, number: int) -> Path:
        return self._kind_dir(kind) / version_name(number)

    def scratch(self, prefix: str) -> Path:
        """A fresh folder for work in progress (candidate adapters), under the store."""
        base = self.root / ".scratch"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def write(self, kind: str, number: int, source: Path, metadata: dict[str, Any]) -> dict[str, str]:
        """Copy the adapter in `source` into version `number`, atomically; returns file name -> sha256.

        The caller picks `number` as one past the database's highest, so a folder already there is
        a leftover of a crash between rename and database commit and is replaced."""
        files = sorted(p for p in source.iterdir() if p.is_file() and p.name != METADATA)
        if not any(p.suffix == ".safetensors" for p in files):
            raise IntegrityError(f"{source} holds no .safetensors adapter weights")
        kind_dir = self._kind_dir(kind)
        kind_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version_name(number)}-", dir=kind_dir))
        try:
            sums = {}
            for p in files:
                shutil.copyfile(p, tmp / p.name)
                sums[p.name] = sha256_file(tmp / p.name)
                failpoint("adapters.write.partial")
            sidecar = {**metadata, "kind": kind, "version": number, "sha256": sums}
            (tmp / METADATA).write_text(json.dumps(sidecar, indent=2, sort_keys=True), encoding="utf-8")
            for p in tmp.iterdir():
                with open(p, "rb+") as f:
                    os.fsync(f.fileno())
            final = self.path(kind, number)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(kind_dir)
            failpoint("adapters.write.renamed")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return sums

    def problems(self, kind: str, number: int, expected: dict[str, str]) -> list[str]:
        """What is wrong with a version's folder against the sha256 the database recorded: missing or changed
        files, and a metadata file that no longer describes this version. Empty when intact."""
        folder, found = self.path(kind, number), []
        for name, digest in expected.items():
            file = folder / name
            if not file.is_file():
                found.append(f"{kind} version v{number}: {file} is missing")
            elif sha256_file(file) != digest:
                found.append(f"{kind} version v{number}: {file} does not match its recorded sha256 (modified or "
                             "truncated)")
        try:
            meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
            intact = (meta.get("kind"), meta.get("version"), meta.get("sha256")) == (kind, number, expected)
        except (OSError, ValueError):
            intact = False
        if not intact:
            found.append(f"{kind} version v{number}: {folder / METADATA} is missing or does not describe this version")
        return found

    def verified(self, kind: str, number: int, expected: dict[str, str]) -> Path:
        """The version's folder, after checking every file against the sha256 the database recorded."""
        problems = self.problems(kind, number, expected)
        if problems:
            raise IntegrityError(f"{problems[0]}; roll back to another version or restore a backup "
                                 "(`seal doctor` lists every problem)")
        return self.path(kind, number)

    def set_pointer(self, kind: str, number: int) -> None:
        """Mirror the database's active version in <kind>/ACTIVE (written atomically)."""
        kind_dir = self._kind_dir(kind)
        kind_dir.mkdir(parents=True, exist_ok=True)
        tmp = kind_dir / f".{POINTER}.tmp"
        tmp.write_text(version_name(number) + "\n", encoding="utf-8")
        failpoint("adapters.pointer.temporary")
        os.replace(tmp, kind_dir / POINTER)
