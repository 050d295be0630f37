"""Shared fixtures: a tiny Llama and a byte-level BPE tokenizer built in code and saved as a model directory, and
a home directory in tmp_path configured to use it. The model, its config and the lighthouse document live in
benchmarks/tiny.py (the device check uses them too); tests import them from here."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text

from benchmarks import postgres
from benchmarks.tiny import CHAT_TEMPLATE, CORPUS, DOCUMENT, QUESTIONS, TINY_CONFIG, build_tiny_model  # noqa: F401
from cli.main import main


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def home(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SEAL_HOME whose config uses the tiny model and a gate that passes every candidate
    (the tiny model learns nothing measurable; these tests check the machinery, not learning)."""
    root = tmp_path / "home"
    root.mkdir()
    (root / "config.toml").write_text(TINY_CONFIG.format(model=tiny_model_dir))
    monkeypatch.setenv("SEAL_HOME", str(root))
    monkeypatch.delenv("SEAL_DATABASE_URL", raising=False)
    return root


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A real PostgreSQL server for the session (see benchmarks/postgres.py). Where its binaries are missing
    the PostgreSQL tests are skipped, except when SEAL_REQUIRE_POSTGRES=1 (CI), where that is a failure."""
    if postgres.binaries() is None:
        if os.environ.get("SEAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SEAL_REQUIRE_POSTGRES=1 but no PostgreSQL binaries were found: {postgres.INSTALL_HINT}")
        pytest.skip(postgres.INSTALL_HINT)
    # Not under pytest's tmp folder: that one is private to this user, and the server runs as `postgres`.
    directory = Path(tempfile.mkdtemp(prefix="seal-pg-"))
    with postgres.server(directory) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"seal_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_server.replace("/postgres?", f"/{name}?")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends: a SQLite file, and a database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seal.db'}"
    return request.getfixturevalue("postgres_url")


def snapshot(home: Path) -> dict:
    """Everything a bad command must not change: every table's rows and the adapter files."""
    state: dict = {"files": sorted(str(p.relative_to(home)) for p in (home / "adapters").rglob("*"))
                   if (home / "adapters").exists() else []}
    db = home / "seal.db"
    if db.exists():
        with sqlite3.connect(db) as c:
            for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
                state[table] = c.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    return state


def seal(home: Path, *args: str, stdin: bytes | None = None, capsys=None, monkeypatch=None) -> SimpleNamespace:
    """Run `seal ARGS` in this process; returns returncode, stdout and stderr (bytes)."""
    monkeypatch.setenv("SEAL_HOME", str(home))
    monkeypatch.setattr(sys, "argv", ["seal", *args])
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(stdin or b"")))
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.encode(), stderr=err.encode())


@pytest.fixture(scope="module")
def learned_template(tmp_path_factory, tiny_model_dir):
    """A home where one document is committed as v1, built once for the module."""
    root = tmp_path_factory.mktemp("learned")
    home = root / "home"
    home.mkdir()
    (home / "config.toml").write_text(TINY_CONFIG.format(model=tiny_model_dir))
    (root / "lighthouse.md").write_text(DOCUMENT)
    (root / "lighthouse.qa.json").write_text(json.dumps(QUESTIONS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEAL_HOME", str(home))
        run = subprocess.run([sys.executable, "-m", "cli", "ingest", str(root / "lighthouse.md"), "--qa",
                              str(root / "lighthouse.qa.json")], capture_output=True, env={**os.environ})
    assert run.returncode == 0, run.stderr.decode()
    return home


@pytest.fixture
def learned(learned_template, tmp_path, monkeypatch, capsys):
    """A private copy of the learned home, and `run(*args)` to call seal on it."""
    from agent import workspace

    workspace._MODELS.clear()  # each test starts like a new `seal` process: no adapter attached yet
    home = tmp_path / "home"
    shutil.copytree(learned_template, home)
    return SimpleNamespace(home=home, run=lambda *a, stdin=None: seal(home, *a, stdin=stdin, capsys=capsys,
                                                                       monkeypatch=monkeypatch))
