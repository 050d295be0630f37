"""One writer at a time per home directory: an exclusive `flock` on <home>/.writer.lock, held while a
version is committed or the active pointer moves, so two processes cannot interleave a commit."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def writer_lock(home: Path) -> Iterator[None]:
    """Block until this process is the home's only writer; released when the block ends (or the process dies)."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
