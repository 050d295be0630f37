"""The `seal` command as a user runs it (a real subprocess) on the tiny model: bad input gets one
clear line on stderr and a non-zero exit and changes nothing; list commands speak JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DOCUMENT, QUESTIONS, snapshot

SEAL = [sys.executable, "-m", "cli"]


def seal(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*SEAL, *args], input=stdin, capture_output=True, env=env, timeout=300)


@pytest.fixture
def learned(home, tmp_path):
    """A home where one document is committed as v1."""
    doc = tmp_path / "lighthouse.md"
    doc.write_text(DOCUMENT)
    qa = tmp_path / "lighthouse.qa.json"
    qa.write_text(json.dumps(QUESTIONS))
    run = seal(home, "ingest", str(doc), "--qa", str(qa))
    assert run.returncode == 0, run.stderr.decode()
    return home


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "empty.md").write_text("  \n\n")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait in Br\xfcssel.".encode("latin-1"))
    (tmp_path / "big.txt").write_text("word " * 5000)
    (tmp_path / "qa.json").write_text('[{"question": "Who?"}]')
    (tmp_path / "ok.md").write_text(DOCUMENT)
    return {
        "empty file": (["ingest", str(tmp_path / "empty.md")], "empty"),
        "binary file": (["ingest", str(tmp_path / "binary.txt")], "binary"),
        "non-UTF-8 file": (["ingest", str(tmp_path / "latin1.txt")], "UTF-8"),
        "file over the size limit": (["ingest", str(tmp_path / "big.txt")], "limit"),
        "missing path": (["ingest", str(tmp_path / "nope.md")], "no such file"),
        "bad questions file": (["ingest", str(tmp_path / "ok.md"), "--qa", str(tmp_path / "qa.json")], "item 0"),
        "unknown version in rollback": (["versions", "rollback", "v7"], "v7 does not exist"),
        "version name that is a path": (["versions", "rollback", "../x"], "not a version name"),
        "invalid config value": (["--set", "train.epochs=0", "ingest", str(tmp_path / "ok.md")], "train.epochs = 0"),
        "invalid config file value": (["config", "validate"], "ingest.max_document_bytes = -5"),
    }


BAD_CASES = ["empty file", "binary file", "non-UTF-8 file", "file over the size limit", "missing path",
             "bad questions file", "unknown version in rollback", "version name that is a path",
             "invalid config value", "invalid config file value"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gets_one_clear_line_and_changes_nothing(learned, tmp_path, case):
    """Each bad input: exit status 1, exactly one line on stderr naming the problem, store unchanged."""
    args, needle = bad_inputs(tmp_path)[case]
    if case == "invalid config file value":
        with open(learned / "config.toml", "a") as f:
            f.write("\n[ingest]\nmax_document_bytes = -5\n")
    before = snapshot(learned)
    run = seal(learned, *args)
    err = run.stderr.decode().strip()
    assert run.returncode == 1, f"{case}: exit {run.returncode}, stderr {err!r}"
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and needle in err, f"{case}: {err!r}"
    assert snapshot(learned) == before, f"{case} changed the store"


def test_stdin_and_json_outputs(learned):
    """`ingest -` reads standard input; versions, history and ask speak JSON that matches the store."""
    run = seal(learned, "ingest", "-", stdin=b"Quellmoor has 2,314 residents and a violet beach.")
    assert run.returncode == 0, run.stderr.decode()
    listing = json.loads(seal(learned, "versions", "list", "--json").stdout)
    assert listing["active"] == 2 and [v["version"] for v in listing["versions"]] == [1, 2]
    assert listing["versions"][1]["parent"] == 1
    history = json.loads(seal(learned, "history", "--json").stdout)
    assert [h["version"] for h in history] == [2, 1] and history[0]["source"] == "-"
    answer = json.loads(seal(learned, "ask", "Who built the Brannock Lighthouse?", "--json").stdout)
    assert set(answer) == {"answer", "version"} and answer["version"] == 2
    shown = json.loads(seal(learned, "versions", "show", "v2", "--json").stdout)
    assert shown["lineage"] == [1, 2] and shown["metrics"] == listing["versions"][1]["metrics"]


def test_rollback_then_ingest_branches(learned, tmp_path):
    """Rollback to v0 moves the pointer and keeps v1's files; the next commit's parent is v0."""
    assert seal(learned, "versions", "rollback", "v0").returncode == 0
    assert (learned / "adapters" / "knowledge" / "v0001" / "adapter_model.safetensors").exists()
    other = tmp_path / "other.md"
    other.write_text("Skelling is played with four hoops on Harrowfield green.")
    assert seal(learned, "ingest", str(other)).returncode == 0
    listing = json.loads(seal(learned, "versions", "list", "--json").stdout)
    assert listing["active"] == 2 and listing["versions"][1]["parent"] == 0


def test_help_and_env(home):
    assert seal(home, "-h").returncode == 0
    env = json.loads(seal(home, "env", "--json").stdout)
    assert env["home"] == str(home) and env["packages"]["torch"].startswith("2.13.0")
    shown = seal(home, "config", "show").stdout.decode()
    assert "[train]" in shown and "epochs = 2" in shown
