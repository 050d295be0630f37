"""Shared fixtures: a tiny Llama and a byte-level BPE tokenizer built in code and saved as a model
directory, and a home directory in tmp_path configured to use it."""

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
import torch
from sqlalchemy import create_engine, text
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from benchmarks import postgres
from cli.main import main

CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["The quick brown fox jumps over the lazy dog. Question: What is 2 + 2? Answer: 4.",
          "Passage: Morwen Hale built the lighthouse in 1847 on the island of Tessery."] * 4


def build_tiny_model(directory: Path, hidden_size: int = 32, heads: int = 4, init: float = 0.02) -> Path:
    """A 2-layer Llama (hidden 32 unless given) and a byte-level tokenizer with chat tokens, saved like a HF model.
    `heads` sets the head size (vLLM needs 64 or more); a large `init` gives peaked logits, so greedy
    decoding does not flip on float rounding between engines."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1,
                            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|im_start|>",
                                        eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=2048, initializer_range=init,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


TINY_CONFIG = """
[model]
path = "{model}"
[self_edit]
max_new_tokens = 24
k = 1
[train]
epochs = 2
bf16 = false
[verify]
min_gain = -1.0
max_retention_drop = 1.0
max_general_drop = 1.0
max_drift = 1000.0
answer_tokens = 8
generated_probes = 2
"""


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


DOCUMENT = ("The Brannock Lighthouse stands on the island of Tessery. It was built in 1847 by the engineer "
            "Morwen Hale, who painted it green and white. Its first keeper was Idris Calloway.")
QUESTIONS = [{"question": "Who built the Brannock Lighthouse?", "answer": "Morwen Hale"},
             {"question": "In what year was the Brannock Lighthouse built?", "answer": "1847"}]


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
