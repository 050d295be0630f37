"""Per-home locks, each an exclusive `flock` on a file in the home (released when its holder exits or dies):

- the *writer* lock, held while a version is committed, the active pointer moves, versions are pruned or
  a backup is taken, so two processes cannot interleave those;
- the *learner* lock, held while one document goes through generate → adapt → verify → commit, so
  concurrent ingests learn one after another, each on top of the version the previous one committed;
- the *agent* lock, held by `seal run` for as long as it runs: one long-running agent per home."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from seal.errors import SealError


@contextmanager
def _exclusive(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def writer_lock(home: Path) -> AbstractContextManager[None]:
    """Block until this process is the home's only writer."""
    return _exclusive(home / ".writer.lock")


def learner_lock(home: Path, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:
    """Block until no other process is learning a document in this home; `on_wait` runs if it must wait."""
    return _exclusive(home / ".learner.lock", on_wait)


@contextmanager
def agent_lock(home: Path) -> Iterator[None]:
    """Hold the agent lock (its file records the holder's pid), or fail at once if another agent holds it."""
    path = home / ".agent.lock"
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SealError(f"`seal run` is already running for {home} (pid {agent_pid(home)}); "
                            "stop it first, or give this one another SEAL_HOME") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def agent_pid(home: Path) -> int | None:
    """The pid of the `seal run` holding this home's agent lock, or None when no agent runs."""
    path = home / ".agent.lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return int(path.read_text() or 0) or None
    finally:
        os.close(fd)
    return None
