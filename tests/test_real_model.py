"""What a user runs, on the real bundled SmolLM2-135M-Instruct (fixed seeds): learning a fictional
document, rollback that restores answers token for token, and resume after a killed ingest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from memory import Store

pytestmark = pytest.mark.real_model
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEAL = [sys.executable, "-m", "cli"]
# Cheap training for the tests of machinery (rollback, resume): what they check does not depend on
# how much the model learns (cross-entropy, no teacher pass), and the gate is opened so every candidate commits.
CHEAP = ["--set", "train.epochs=2", "--set", "self_edit.max_new_tokens=32", "--set", "train.objective=ce",
         "--set", "verify.min_gain=-1",
         "--set", "verify.max_general_drop=1", "--set", "verify.max_retention_drop=1",
         "--set", "verify.max_drift=1000"]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """The bundled model converted once for the module; each test home links to it."""
    from model_runtime.loading import converted_dir

    cache = tmp_path_factory.mktemp("models")
    converted_dir(cache)
    return cache


@pytest.fixture
def real_home(tmp_path, model_cache, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("SEAL_HOME", str(home))
    return home


def seal(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    run = subprocess.run([*SEAL, *args], capture_output=True, env=env, timeout=900)
    assert run.returncode == 0, f"seal {' '.join(args)} failed: {run.stderr.decode()[-2000:]}"
    return run


def test_ingest_raises_closed_book_accuracy(real_home):
    """Default settings: after ingesting a fictional document, closed-book accuracy on its supplied
    questions is strictly higher than before, and the version's metrics in the database are exactly
    what `seal history --json` prints."""
    doc = EXAMPLES / "brannock_lighthouse.md"
    seal(real_home, "ingest", str(doc), "--qa", str(doc.with_suffix(".qa.json")))
    [record] = json.loads(seal(real_home, "history", "--json").stdout)
    [trial] = record["trials"]
    assert record["status"] == "committed" and record["version"] == 1, record
    assert trial["new_after"] > trial["new_before"], f"no gain: {trial}"
    store = Store.at_home(real_home)
    version = store.version(1)
    assert version.metrics == record["metrics"]
    assert version.metrics["new_after"] == trial["new_after"] and version.trial_id == trial["trial"]
    store.close()


def _answers(home: Path, questions: list[str]) -> list[dict]:
    return [json.loads(seal(home, "ask", q, "--json").stdout) for q in questions]


def test_rollback_restores_answers_token_for_token(real_home):
    """Commit A (v1), B (v2); roll back to v1: greedy answers equal those recorded while v1 was active
    (the adapter reloaded from its files in a new process). The next ingest's parent is v1."""
    questions = [q["question"] for q in json.loads((EXAMPLES / "island_of_quellmoor.qa.json").read_text())][:3]
    seal(real_home, *CHEAP, "ingest", str(EXAMPLES / "island_of_quellmoor.md"))
    at_v1 = _answers(real_home, questions)
    assert {a["version"] for a in at_v1} == {1}
    seal(real_home, *CHEAP, "ingest", str(EXAMPLES / "zelmark_company.md"))
    at_v2 = _answers(real_home, questions)
    assert {a["version"] for a in at_v2} == {2}
    seal(real_home, "versions", "rollback", "v1")
    assert _answers(real_home, questions) == at_v1
    seal(real_home, *CHEAP, "ingest", str(EXAMPLES / "sport_of_skelling.md"))
    listing = json.loads(seal(real_home, "versions", "list", "--json").stdout)
    assert listing["active"] == 3 and listing["versions"][2]["parent"] == 1


def test_resume_after_kill_during_verify(real_home):
    """A process killed after adapt finished (while verifying) resumes with --resume at verify: the
    self-edit is not generated again, and the document is committed exactly once."""
    doc = EXAMPLES / "inventor_tessaly_orn.md"
    env = {**os.environ, "SEAL_HOME": str(real_home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*SEAL, *CHEAP, "ingest", str(doc)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.decode())
        if "verify:" in seen[-1]:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    store = Store.at_home(real_home)
    assert store.versions() == [] and [d.status for d in store.documents()] == ["pending"]

    seal(real_home, *CHEAP, "ingest", "--resume")
    [document] = store.documents()
    stages = [e.data["stage"] for e in store.events("stage")]
    assert stages == ["generate", "adapt", "verify", "commit"], stages
    assert document.status == "committed" and len(store.versions()) == 1
    assert len(store.trials(document.id)) == 1
    assert not list((real_home / "adapters" / ".scratch").iterdir())
    store.close()
    # Resuming again finds nothing to do.
    assert "nothing to resume" in seal(real_home, "ingest", "--resume").stdout.decode()


# The benchmarks run on the tiny model in tests/test_bench.py (so none of them rots); the ReST-EM E-step, which a
# user runs, runs here on the real model.
SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad_val.json"


@pytest.fixture
def squad() -> Path:
    if not SQUAD.is_file():
        pytest.skip(f"{SQUAD} not found: the SQuAD data lives in ../shared/data beside the project")
    return SQUAD


def test_rl_collect_smoke(real_home, squad):
    """ReST-EM E-step on one SQuAD train passage, K=2: two scored trials, no knowledge version."""
    seal(real_home, *CHEAP, "rl", "collect", "--data", str(squad), "--n", "1", "--k", "2")
    status = json.loads(seal(real_home, "rl", "status", "--json").stdout)
    assert (status["trials"], status["documents"], status["active"]) == (2, 1, 0), status
    store = Store.at_home(real_home)
    assert store.versions() == [] and [d.status for d in store.documents()] == ["collected"]
    store.close()
