"""`seal serve` on loopback (tiny model, real HTTP): the official `openai` client for models, chat (whole
and streamed) and completions; plain HTTP for versions, activation and every kind of bad request; live
version swaps while a client keeps chatting."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest
import uvicorn

from agent.workspace import Workspace
from api import create_app
from seal import config as seal_config


@contextmanager
def serving(app) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(learned, monkeypatch):
    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    ws = Workspace.open(seal_config.load({"ingest": {"max_document_mb": 0.02}}))  # 20 kB: a document over it fits a body
    with serving(create_app(ws, max_tokens_limit=64)) as url:
        yield url, ws


def test_openai_client_models_chat_stream_and_completions(server):
    url, ws = server
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["seal", "seal@v0", "seal@v1"]

    reply = client.chat.completions.create(model="seal", max_tokens=8,
                                           messages=[{"role": "user", "content": "Who built the lighthouse?"}])
    assert reply.model == "seal@v1" and reply.choices[0].message.role == "assistant"
    text = reply.choices[0].message.content
    assert reply.usage.completion_tokens == len(ws.lm.tokenizer(text)["input_ids"]) and reply.usage.prompt_tokens > 0
    assert reply.choices[0].finish_reason == ("length" if reply.usage.completion_tokens >= 8 else "stop")
    # The same question streamed: the pieces join to the whole answer (greedy, same seed).
    chunks = list(client.chat.completions.create(model="seal", max_tokens=8, stream=True,
                                                 messages=[{"role": "user", "content": "Who built the lighthouse?"}]))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason is not None
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip() == reply.choices[0].message.content
    assert ws.store.chat_turns()[-1].version == 1

    pinned = client.completions.create(model="seal@v0", prompt="The lighthouse", max_tokens=5)
    assert pinned.model == "seal@v0" and pinned.object == "text_completion" and pinned.usage.prompt_tokens > 0


BAD = [
    ("wrong model", "post", "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404),
    ("unknown version", "post", "/v1/chat/completions", {"model": "seal@v9", "messages": [{"role": "user", "content": "hi"}]}, 404),
    ("version path", "post", "/v1/chat/completions", {"model": "seal@../x", "messages": [{"role": "user", "content": "hi"}]}, 404),
    ("no messages", "post", "/v1/chat/completions", {"model": "seal", "messages": []}, 400),
    ("bad role", "post", "/v1/chat/completions", {"model": "seal", "messages": [{"role": "god", "content": "hi"}]}, 400),
    ("max_tokens over the limit", "post", "/v1/completions", {"model": "seal", "prompt": "x", "max_tokens": 65}, 400),
    ("negative temperature", "post", "/v1/completions", {"model": "seal", "prompt": "x", "temperature": -1}, 400),
    ("activate unknown version", "post", "/v1/versions/v9/activate", None, 404),
    ("activate a path", "post", "/v1/versions/..%2Fx/activate", None, 404),
    ("activate a bad name", "post", "/v1/versions/v1;rm/activate", None, 400),
    ("unknown route", "get", "/v1/nothing", None, 404),
    ("empty document", "post", "/v1/documents", {"text": "  "}, 400),
    ("document with NUL", "post", "/v1/documents", {"text": "a\u0000b"}, 400),
    ("document over the size limit", "post", "/v1/documents", {"text": "x" * 20_001}, 400),
    ("document with an unknown field", "post", "/v1/documents", {"text": "x", "priority": 1}, 400),
    ("question without an answer", "post", "/v1/documents", {"text": "x", "questions": [{"question": "q"}]}, 400),
    ("unknown job", "get", "/v1/jobs/999", None, 404),
    ("job id not a number", "get", "/v1/jobs/abc", None, 400),
    ("job id too large", "get", "/v1/jobs/99999999999999999999999", None, 400),
    ("adapter outside the home", "post", "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": "/etc"}, 400),
    ("adapter name shadows seal", "post", "/v1/load_lora_adapter", {"lora_name": "seal", "lora_path": "."}, 400),
    ("adapter name with a slash", "post", "/v1/load_lora_adapter", {"lora_name": "a/b", "lora_path": "."}, 400),
    ("unload an adapter never loaded", "post", "/v1/unload_lora_adapter", {"lora_name": "nope"}, 404),
]


@pytest.mark.parametrize("case", [b[0] for b in BAD])
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, case):
    url, _ = server
    _, method, path, body, status = next(b for b in BAD if b[0] == case)
    response = getattr(httpx, method)(url + path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert httpx.get(url + "/v1/models").status_code == 200


def test_documents_are_queued_as_jobs_for_the_agent(server):
    """POST /v1/documents queues a job (202) that `seal run` learns; GET /v1/jobs/{id} follows it."""
    from agent.runtime import run

    url, ws = server
    queued = httpx.post(url + "/v1/documents", json={"text": "# Quellmoor\nQuellmoor has 2,314 residents.",
                                                     "questions": [{"question": "How many live in Quellmoor?",
                                                                    "answer": "2,314"}]})
    assert queued.status_code == 202 and queued.json()["status"] == "queued", queued.text
    job = queued.json()
    assert job["title"] == "Quellmoor" and job["origin"] == "api" and job["result"] == {}
    run(ws, threading.Event(), once=True)
    done = httpx.get(url + f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "done" and done["result"]["status"] == "committed" and done["result"]["version"] == 2
    assert [p.question for p in ws.store.probes(done["document_id"])] == ["How many live in Quellmoor?"]
    assert httpx.get(url + "/v1/versions").json()["active"] == 2


def test_adapters_load_by_path_and_answer_by_name(server):
    """vLLM's runtime adapter API: a version folder loaded under a name answers as that name, exactly as the
    version does; a folder that is not an adapter is refused; unloading removes the name."""
    url, ws = server
    folder = ws.adapters.verified("knowledge", 1, ws.store.version(1).files)
    ask = {"prompt": ws.engine.chat_prompt([{"role": "user", "content": "Who built the lighthouse?"}]), "max_tokens": 8}
    loaded = httpx.post(url + "/v1/load_lora_adapter", json={"lora_name": "mine", "lora_path": str(folder)})
    assert loaded.status_code == 200, loaded.text
    as_name = httpx.post(url + "/v1/completions", json={**ask, "model": "mine"}).json()
    as_version = httpx.post(url + "/v1/completions", json={**ask, "model": "seal@v1"}).json()
    assert as_name["model"] == "mine" and as_name["choices"][0]["text"] == as_version["choices"][0]["text"]
    again = httpx.post(url + "/v1/load_lora_adapter", json={"lora_name": "mine", "lora_path": str(folder)})
    assert again.status_code == 400 and "load_inplace" in again.json()["error"]["message"]
    not_adapter = httpx.post(url + "/v1/load_lora_adapter", json={"lora_name": "bad", "lora_path": str(ws.home)})
    assert not_adapter.status_code == 400, not_adapter.text
    half = ws.home / "half-adapter"
    half.mkdir()
    (half / "adapter_config.json").write_bytes((folder / "adapter_config.json").read_bytes())
    attached = ws.engine.adapters()
    missing = httpx.post(url + "/v1/load_lora_adapter", json={"lora_name": "half", "lora_path": str(half)})
    assert missing.status_code == 400 and ws.engine.adapters() == attached, "a folder without weights attaches nothing"
    assert httpx.post(url + "/v1/unload_lora_adapter", json={"lora_name": "mine"}).status_code == 200
    assert httpx.post(url + "/v1/completions", json={**ask, "model": "mine"}).status_code == 404


def test_concurrent_greedy_requests_decode_together_and_answer_as_alone(server, monkeypatch):
    """Six clients at once, on two versions and with different max_tokens: the server decodes them in shared
    batches, and each gets exactly the reply it gets when it asks alone."""
    from concurrent.futures import ThreadPoolExecutor

    from model_runtime import LanguageModel

    url, _ = server
    asks = [{"model": m, "max_tokens": n, "messages": [{"role": "user", "content": q}]}
            for m, n, q in [("seal@v0", 6, "Who built it?"), ("seal@v1", 8, "Who built it?"), ("seal@v1", 4, "When?"),
                            ("seal@v0", 8, "Tell me more."), ("seal", 5, "Where?"), ("seal@v1", 7, "Why?")]]
    alone = [httpx.post(url + "/v1/chat/completions", json=a).json()["choices"][0]["message"]["content"] for a in asks]
    batches, real = [], LanguageModel.stream_rows

    def counted(self, prompts, **kwargs):
        batches.append(len(prompts))
        yield from real(self, prompts, **kwargs)

    monkeypatch.setattr(LanguageModel, "stream_rows", counted)
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda a: httpx.post(url + "/v1/chat/completions", json=a, timeout=60).json(), asks))
    assert [r["choices"][0]["message"]["content"] for r in together] == alone
    assert batches and max(batches) > 1, f"no batch was shared: {batches}"


def test_a_client_that_goes_away_stops_its_decoding(learned, monkeypatch):
    """A streamed reply whose client hangs up after two chunks, and a whole reply whose client times out:
    each request's decoding stops within moments, far short of its max_tokens, and the server serves on."""
    from model_runtime import LanguageModel

    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    decoded, real = [], LanguageModel.stream

    def counted(self, prompt, **kwargs):
        decoded.append(0)
        for piece in real(self, prompt, **kwargs):
            decoded[-1] += 1
            yield piece
        decoded.append("done")

    monkeypatch.setattr(LanguageModel, "stream", counted)
    ask = {"model": "seal@v1", "max_tokens": 1500, "temperature": 0.8, "repetition_penalty": 1.0,
           "messages": [{"role": "user", "content": "Tell me everything."}]}
    with serving(create_app(Workspace.open(), max_tokens_limit=1500)) as url:
        with httpx.stream("POST", url + "/v1/chat/completions", json={**ask, "stream": True}) as response:
            lines = response.iter_lines()
            assert [next(lines) for _ in range(6)]  # the role chunk and a few pieces arrive, then the client leaves
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", json=ask, timeout=1.0)
        deadline = time.monotonic() + 30
        while decoded.count("done") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert decoded.count("done") == 2, f"decoding went on after the clients left: {decoded}"
        assert all(n < 1000 for n in decoded if n != "done"), decoded
        short = httpx.post(url + "/v1/chat/completions", json={**ask, "max_tokens": 4}, timeout=30)
        assert short.status_code == 200 and decoded[-1] == "done"


def test_malformed_and_oversized_bodies(server):
    url, _ = server
    broken = httpx.post(url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["message"]
    huge = httpx.post(url + "/v1/completions", content=b"x" * 1_000_001, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"


def test_api_key_is_required_when_set(learned, monkeypatch):
    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    with serving(create_app(Workspace.open(), api_key="s3cret")) as url:
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == \
            "invalid_api_key"
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_binding_beyond_loopback_needs_a_key(learned):
    run = learned.run("serve", "--host", "0.0.0.0")
    err = run.stderr.decode().strip()
    assert run.returncode == 1 and len(err.splitlines()) == 1 and "--api-key" in err


def test_without_the_serve_extra_serve_names_it(home, capsys, monkeypatch):
    """Without FastAPI or uvicorn installed, `seal serve` is one line naming the extra, exit 1."""
    from tests.conftest import seal

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` then fails as if it were not installed
    run = seal(home, "serve", capsys=capsys, monkeypatch=monkeypatch)
    err = run.stderr.decode().strip()
    assert run.returncode == 1 and len(err.splitlines()) == 1 and "pip install 'seal-runtime[serve]'" in err, err


def test_live_swaps_while_a_client_chats(server, learned, tmp_path):
    """A client chats without pause while a document is committed by another process and then the
    version is rolled back over the API: every reply is whole, and the serving version follows."""
    url, _ = server
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
    served, errors, stop = [], [], threading.Event()

    def chat() -> None:
        while not stop.is_set():
            start = time.monotonic()
            try:
                r = client.chat.completions.create(model="seal", max_tokens=4,
                                                   messages=[{"role": "user", "content": "Hello?"}])
                assert r.choices[0].finish_reason in ("stop", "length")
                served.append((start, time.monotonic(), r.model))
            except (openai.APIError, AssertionError) as e:  # reported below; anything else fails the thread
                errors.append(repr(e))

    def started_after(moment: float, count: int = 3) -> None:
        """Wait (however slow the machine) until `count` replies have started a second after `moment`."""
        deadline = time.monotonic() + 120
        while sum(s > moment + 1.0 for s, _, _ in served) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    thread = threading.Thread(target=chat)
    thread.start()
    (tmp_path / "q.md").write_text("Quellmoor has 2,314 residents and a violet beach.")
    ingest = subprocess.run([sys.executable, "-m", "cli", "ingest", str(tmp_path / "q.md")],
                            env={**os.environ, "SEAL_HOME": str(learned.home)}, capture_output=True)
    assert ingest.returncode == 0, ingest.stderr.decode()[-500:]
    committed = time.monotonic()
    started_after(committed)
    activated = httpx.post(url + "/v1/versions/v1/activate")
    rolled_back = time.monotonic()
    started_after(rolled_back)
    stop.set()
    thread.join(timeout=60)

    assert activated.json() == {"active": 1, "previous": 2} and not errors, errors
    # Every reply that started a second after the commit (and ended before the rollback) came from v2;
    # every reply that started a second after the rollback, from v1.
    after_commit = {m for s, e, m in served if s > committed + 1.0 and e < rolled_back}
    after_rollback = {m for s, _, m in served if s > rolled_back + 1.0}
    assert after_commit == {"seal@v2"} and after_rollback == {"seal@v1"}, served
    assert {m for _, _, m in served} <= {"seal@v1", "seal@v2"}
    assert json.loads(httpx.get(url + "/v1/versions").text)["active"] == 1
