"""The long-running agent (`seal run`) on the tiny model: inbox files are learned exactly once and a bad one
lands in failed/ with its reason while the agent keeps going; a crash between finishing a document and
filing it away is picked up at the right step; SIGTERM mid-ingest stops after the stage in progress and a
restart finishes the job without repeating finished stages; `seal submit`, `seal status` and `seal logs`."""

import json
import os
import signal
import subprocess
import sys
from threading import Event

import pytest

from agent import runtime
from agent.ingest import DocumentInput, checkpointer, learn
from agent.workspace import Workspace
from tests.conftest import DOCUMENT, QUESTIONS, seal


@pytest.fixture
def agent(home, monkeypatch):
    monkeypatch.setattr(runtime, "SETTLE_SECONDS", 0.0)
    ws = Workspace.open()
    folder = runtime.inbox(ws)
    folder.mkdir(parents=True)
    yield ws, folder
    ws.close()


def stages(ws: Workspace, document_id: int) -> list[str]:
    return [e.data["stage"] for e in ws.store.events("stage", document_id)]


def test_inbox_files_are_learned_once_and_a_bad_file_fails_with_its_reason(agent):
    ws, folder = agent
    (folder / "a-blob.bin").write_bytes(b"\x00\x01 not text")
    (folder / "lighthouse.md").write_text(DOCUMENT)
    (folder / ".being-written.md").write_text("half a document")
    runtime.run(ws, Event(), once=True)

    assert sorted(p.name for p in (folder / "failed").iterdir()) == ["a-blob.bin", "a-blob.bin.reason"]
    assert ".bin files are not supported" in (folder / "failed" / "a-blob.bin.reason").read_text()
    assert [p.name for p in (folder / "processed").iterdir()] == ["lighthouse.md"]
    assert (folder / ".being-written.md").exists(), "dot-files are still being written; the agent leaves them"
    failed, done = ws.store.jobs()
    assert (failed.status, done.status) == ("failed", "done") and ".bin files are not supported" in failed.error
    assert done.result["status"] == "committed" and done.result["version"] == 1, done.result
    assert [v.documents for v in ws.store.versions()] == [[done.document_id]]

    runtime.run(ws, Event(), once=True)  # nothing new: nothing queued, nothing learned
    assert len(ws.store.jobs()) == 2 and len(ws.store.versions()) == 1

    (folder / "again.md").write_text(DOCUMENT)  # the same content dropped again is known, not learned twice
    runtime.run(ws, Event(), once=True)
    assert ws.store.jobs()[-1].result["status"] == "known" and len(ws.store.versions()) == 1
    assert sorted(p.name for p in (folder / "processed").iterdir()) == ["again.md", "lighthouse.md"]
    assert stages(ws, done.document_id).count("generate") == 1


def test_a_crash_after_learning_and_before_filing_away_is_finished_without_learning_again(agent):
    """The agent died after the document was committed, before its file moved and its job was marked done."""
    ws, folder = agent
    (folder / "lighthouse.md").write_text(DOCUMENT)
    (job,) = runtime.scan_inbox(ws)
    doc, _ = ws.store.add_document(job.text, job.source, job.title)
    ws.store.start_job(job.id, doc.id)
    with checkpointer(ws) as saver:
        assert learn(ws, DocumentInput(job.source, job.title, job.text), saver).status == "committed"

    runtime.run(ws, Event(), once=True)
    (job,) = ws.store.jobs()
    assert job.status == "done" and job.result["status"] == "committed", job.result
    assert [p.name for p in (folder / "processed").iterdir()] == ["lighthouse.md"] and not (folder / "lighthouse.md").exists()
    assert len(ws.store.versions()) == 1 and stages(ws, doc.id).count("commit") == 1


def test_sigterm_during_adapt_stops_after_it_and_a_restart_finishes_without_repeating_stages(home, tmp_path):
    (tmp_path / "lighthouse.md").write_text(DOCUMENT)
    (tmp_path / "lighthouse.qa.json").write_text(json.dumps(QUESTIONS))
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    cli = [sys.executable, "-m", "cli", "--set", "train.epochs=400"]  # an adapt stage long enough to signal into
    queued = subprocess.run([*cli, "submit", str(tmp_path / "lighthouse.md"), "--qa", str(tmp_path / "lighthouse.qa.json")],
                            capture_output=True, text=True, env=env)
    assert queued.returncode == 0 and "job 1" in queued.stdout, queued.stderr

    agent = subprocess.Popen([*cli, "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = []
    for line in agent.stdout:
        seen.append(line)
        if line.strip().startswith("adapt:"):
            agent.send_signal(signal.SIGTERM)
            break
    rest, _ = agent.communicate(timeout=300)
    assert agent.returncode == 0 and "agent stopped" in rest, "".join(seen) + rest
    assert "resume continues at verify" in rest, rest

    ws = Workspace.open()
    (job,) = ws.store.jobs()
    assert job.status == "running" and ws.store.document(job.document_id).status == "pending"
    assert runtime.status(ws)["current"]["stage"] == "verify"
    assert stages(ws, job.document_id) == ["generate", "adapt"]

    again = subprocess.run([*cli, "run", "--once"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "resuming at verify" in again.stdout, again.stdout + again.stderr
    job = ws.store.job(job.id)
    assert job.status == "done" and job.result["status"] == "committed", job.result
    assert stages(ws, job.document_id) == ["generate", "adapt", "verify", "commit"], "a finished stage ran again"


def test_submit_status_and_logs(home, tmp_path, capsys, monkeypatch):
    run = lambda *a: seal(home, *a, capsys=capsys, monkeypatch=monkeypatch)  # noqa: E731
    (tmp_path / "doc.md").write_text(DOCUMENT)
    assert run("submit", str(tmp_path / "missing.md")).returncode == 1  # nothing queued for bad input
    assert run("submit", str(tmp_path / "doc.md")).returncode == 0
    info = json.loads(run("status", "--json").stdout)
    assert info["agent_pid"] is None and info["queue"] == {"queued": 1} and info["next"][0]["job"] == 1
    assert info["active"] == {"knowledge": 0, "policy": 0} and info["errors"] == []
    text = run("status").stdout.decode()
    assert "not running" in text and "1 queued" in text

    assert run("ask", "Who built the lighthouse?").returncode == 0
    turns = json.loads(run("logs", "--json").stdout)
    assert [(t["prompt"], t["version"]) for t in turns] == [("Who built the lighthouse?", 0)]
    assert run("logs", "-n", "0").returncode == 1


def test_one_agent_per_home(home):
    from seal.errors import SealError
    from seal.locking import agent_lock, agent_pid

    with agent_lock(home):
        assert agent_pid(home) == os.getpid()
        with pytest.raises(SealError, match="already running"):
            with agent_lock(home):
                pass
    assert agent_pid(home) is None


def test_a_job_the_agent_keeps_dying_on_is_given_up(agent):
    """A job left running by three agents that never finished it (each died on it) fails with its reason,
    its inbox file goes to failed/, and the agent goes on with the next job."""
    ws, folder = agent
    (folder / "a-poison.md").write_text("Poison: this document kills the agent.")
    (folder / "lighthouse.md").write_text(DOCUMENT)
    poison, good = runtime.scan_inbox(ws)
    doc, _ = ws.store.add_document(poison.text, poison.source, poison.title)
    for _ in range(runtime.MAX_ATTEMPTS):
        ws.store.start_job(poison.id, doc.id)
    runtime.run(ws, Event(), once=True)
    poison, good = ws.store.job(poison.id), ws.store.job(good.id)
    assert poison.status == "failed" and "started 3 times" in poison.error
    assert (folder / "failed" / "a-poison.md").exists() and good.status == "done"


def test_an_inbox_file_rewritten_while_queued_is_learned_again(agent):
    ws, folder = agent
    (folder / "notes.md").write_text(DOCUMENT)
    (first,) = runtime.scan_inbox(ws)
    (folder / "notes.md").write_text("Quellmoor has 2,314 residents and a violet beach.")
    os.utime(folder / "notes.md", (0, 0))  # settled
    runtime.run(ws, Event(), once=True)
    jobs = ws.store.jobs()
    assert [j.status for j in jobs] == ["done", "done"] and jobs[0].id == first.id
    assert "Quellmoor" in ws.store.job(jobs[1].id).text, "the new content was queued and learned"
    assert [p.name for p in (folder / "processed").iterdir()] == ["notes.md"]
