"""Per-home locks, each an exclusive `flock` on a file in the home (released when its holder exits or dies):

- the *writer* lock, held while a version is committed, the active pointer moves, versions are pruned or
  a backup is taken, so two processes cannot interleave those;
- the *learner* lock, held while one document goes through generate → adapt → verify → commit, so
  concurrent ingests learn one after another, each on top of the version the previous one committed."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


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
