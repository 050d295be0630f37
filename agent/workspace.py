"""`Workspace`: one home directory opened — configuration, SQL store, adapter store, and the model,
loaded on first use and kept for the process. The graph's nodes receive it as their runtime context."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters_store import AdapterStore
from memory import Store
from model_runtime import Engine, LanguageModel, RemoteEngine, loading
from seal import config as seal_config
from seal.config import Config, ModelConfig

_MODELS: dict[ModelConfig, LanguageModel] = {}
KEEP_ATTACHED = 4  # version adapters kept in memory per lineage (~20 MB each at r=16)


def load_model(cfg: ModelConfig, cache: Path) -> LanguageModel:
    """The process-wide model for `cfg`: loaded once, then reused."""
    if cfg not in _MODELS:
        model, tokenizer, name = loading.load(cfg, cache)
        _MODELS[cfg] = LanguageModel(model, tokenizer, name)
    return _MODELS[cfg]


def adapter_name(kind: str, number: int, digests: str) -> str:
    return f"{kind}-v{number}-{hashlib.sha256(digests.encode()).hexdigest()[:12]}"


@dataclass
class Workspace:
    home: Path
    config: Config
    store: Store
    adapters: AdapterStore
    progress: Callable[[str, str], None] = lambda stage, message: None
    _lm: LanguageModel | None = field(default=None, repr=False)
    _remote: RemoteEngine | None = field(default=None, repr=False)
    _used: dict[str, None] = field(default_factory=dict, repr=False)  # attached version adapters, least recent first

    @classmethod
    def open(cls, cfg: Config | None = None, progress: Callable[[str, str], None] | None = None,
             home: Path | None = None, lm: LanguageModel | None = None) -> Workspace:
        """Open `home` (default: SEAL_HOME); `lm` shares an already loaded model (the benchmarks'
        throwaway homes do this)."""
        root = home or seal_config.home()
        cfg = cfg or seal_config.load()
        ws = cls(home=root, config=cfg, store=Store.at_home(root, cfg.database_url),
                 adapters=AdapterStore(root / "adapters"), _lm=lm)
        if progress is not None:
            ws.progress = progress
        return ws

    @property
    def lm(self) -> LanguageModel:
        if self._lm is None:
            self.progress("load", "loading the model")
            self._lm = load_model(self.config.model, self.home / "models")
        return self._lm

    @property
    def engine(self) -> Engine:
        """Where generation runs: the model in this process, or the server at `remote.url` (training and
        the tokenizer stay here either way)."""
        remote = self.config.remote
        if not remote.url:
            return self.lm
        if self._remote is None:
            self._remote = RemoteEngine(remote.url, remote.model, self.lm.tokenizer, self.lm.stop_ids, remote.api_key)
        return self._remote

    def attach(self, kind: str, number: int) -> str | None:
        """The adapter name of version `number` of a lineage, attached to the generation engine after its
        files are verified against the database's checksums; None for version 0 (the bare base model). The
        name carries the weights' recorded sha256, so a process serving several homes never mistakes one's
        v1 for another's."""
        if number == 0:
            return None
        version = self.store.version(number, kind)
        name = adapter_name(kind, number, "".join(sorted(version.files.values())))
        engine = self.engine
        self._used.pop(name, None)
        self._used[name] = None
        if name not in engine.adapters():
            engine.load_adapter(name, self.adapters.verified(kind, number, version.files))
            # The least recently used go: a batch using up to KEEP_ATTACHED versions keeps all of them.
            attached = [a for a in self._used if a.startswith(f"{kind}-v") and a != name and a in engine.adapters()]
            for old in attached[:-KEEP_ATTACHED + 1]:
                engine.delete_adapter(old)
                del self._used[old]
        return name

    def close(self) -> None:
        self.store.close()
        if self._remote is not None:
            self._remote.client.close()
