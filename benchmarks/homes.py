"""Throwaway runtime homes for the benchmarks that run the real ingest path (continual, speed)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.workspace import Workspace
from model_runtime import LanguageModel
from seal.config import Config


@contextmanager
def fresh_workspace(lm: LanguageModel, cfg: Config, home: Path) -> Iterator[Workspace]:
    """An empty home sharing the loaded model, with its own SQLite file whatever database the user's
    config names; afterwards every adapter it attached is removed from the shared model."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    ws = Workspace.open(dataclasses.replace(cfg, database_url=""), home=home, lm=lm)
    try:
        yield ws
    finally:
        for name in list(lm.adapters()):
            lm.delete_adapter(name)
        ws.close()
