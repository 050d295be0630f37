"""The remote generation backend: a runtime whose self-edit sampling and probe answering go to an
OpenAI-compatible server that loads LoRA adapters at runtime — a real vLLM server (the CPU build, in its own
virtual environment, `make vllm`) and `seal serve`, each started here as its own process on loopback —
learns a document, and the committed version gives the same closed-book greedy answers whether they are
decoded on that server or in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agent.answer import closed_book
from agent.ingest import DocumentInput, ingest
from agent.probes import GENERAL_PROBES
from agent.workspace import Workspace
from benchmarks.serving import free_port
from model_runtime import LanguageModel
from seal import config as seal_config
from tests.conftest import DOCUMENT, QUESTIONS, TINY_CONFIG, build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("SEAL_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))


@pytest.fixture(scope="module")
def servable_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with 64-wide heads (vLLM's CPU attention needs that) and peaked logits."""
    return build_tiny_model(tmp_path_factory.mktemp("servable-model"), hidden_size=128, heads=2, init=0.5)


@contextmanager
def started(command: list[str], env: dict[str, str], health: str, log: Path, timeout: float = 300) -> Iterator[None]:
    """Run a server until the block ends; ready when `health` answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command[:4]} did not come up (exit {process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def seal_serve(home: Path, tmp_path: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "cli", "serve", "--port", url.rsplit(":", 1)[1]]
    with started(command, {**os.environ, "SEAL_HOME": str(home)}, url + "/v1/models", tmp_path / "serve.log"):
        yield url


@contextmanager
def vllm(model: Path, tmp_path: Path) -> Iterator[str]:
    if not VLLM_PYTHON.exists():
        message = f"vLLM is not installed at {VLLM_PYTHON}: run `make vllm` (its own virtual environment)"
        if os.environ.get("SEAL_REQUIRE_VLLM") == "1":
            pytest.fail(f"SEAL_REQUIRE_VLLM=1 but {message}")
        pytest.skip(message)
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", str(model),
               "--served-model-name", "seal@v0", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
               "--dtype", "float32", "--max-model-len", "2048", "--enable-lora", "--max-lora-rank", "16",
               "--max-loras", "2"]
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_CPU_KVCACHE_SPACE": "1",
           "HF_HUB_OFFLINE": "1"}
    with started(command, env, url + "/health", tmp_path / "vllm.log", timeout=600):
        yield url


def text(answers: list[str]) -> list[str]:
    """Answers without a trailing U+FFFD: the random tiny model emits arbitrary bytes, and where an answer
    stops inside a UTF-8 character, transformers renders the loose bytes as U+FFFD and vLLM's incremental
    detokenizer holds them back. Everything before that must match exactly."""
    return [a.rstrip("\ufffd").rstrip() for a in answers]


def forbidden(*_args, **_kwargs):
    raise AssertionError("generation ran in this process; remote.url should have sent it to the server")


@pytest.mark.parametrize("engine", ["seal serve", "vllm"])
def test_learning_with_generation_on_a_server_matches_local_decoding(engine, servable_model, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(TINY_CONFIG.format(model=servable_model))
    monkeypatch.setenv("SEAL_HOME", str(home))
    monkeypatch.delenv("SEAL_DATABASE_URL", raising=False)
    questions = [q["question"] for q in QUESTIONS] + [q for q, _ in GENERAL_PROBES]
    document = DocumentInput("lighthouse.md", "Lighthouse", DOCUMENT,
                             tuple((q["question"], q["answer"]) for q in QUESTIONS))

    with (seal_serve(home, tmp_path) if engine == "seal serve" else vllm(servable_model, tmp_path)) as url:
        ws = Workspace.open(seal_config.load({"remote": {"url": url, "model": "seal@v0"}}))
        tokens = ws.config.verify.answer_tokens
        with monkeypatch.context() as m:
            m.setattr(LanguageModel, "generate", forbidden)
            m.setattr(LanguageModel, "stream", forbidden)
            (result,) = ingest(ws, [document])
            assert result.status == "committed" and result.version == 1, result
            served = closed_book(ws.engine, questions, ws.attach("knowledge", 1), tokens)
            served_base = closed_book(ws.engine, questions, None, tokens)

    local = Workspace.open(seal_config.load())
    assert text(closed_book(local.lm, questions, local.attach("knowledge", 1), tokens)) == text(served), \
        f"v1 decodes differently on {engine} than in process"
    assert text(closed_book(local.lm, questions, None, tokens)) == text(served_base)
    # The answers verify recorded (decoded on the server, with the candidate that became v1) are v1's.
    (trial,) = ws.store.trials(result.document_id)
    recorded = {row["question"]: row["after"] for rows in trial.scores.values() for row in rows}
    assert [recorded[q] for q in questions] == served
    assert served != served_base, "the adapter changed nothing: the comparison would not see a lost adapter"
