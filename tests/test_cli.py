"""The `seal` command on the tiny model, through `cli.main.main` (what the console script runs): bad
input gets one clear line on stderr and a non-zero exit and changes nothing; list commands speak JSON.
One test runs the installed entry point in a real subprocess."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import DOCUMENT, snapshot


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
        "file over the size limit": (["--set", "ingest.max_document_mb=0.02", "ingest", str(tmp_path / "big.txt")],
                                     "over the 0.02 MB limit"),
        "missing path": (["ingest", str(tmp_path / "nope.md")], "no such file"),
        "bad questions file": (["ingest", str(tmp_path / "ok.md"), "--qa", str(tmp_path / "qa.json")], "item 0"),
        "unknown version in rollback": (["versions", "rollback", "v7"], "v7 does not exist"),
        "version name that is a path": (["versions", "rollback", "../x"], "neither a version nor a tag"),
        "invalid config value": (["--set", "train.epochs=0", "ingest", str(tmp_path / "ok.md")], "train.epochs = 0"),
        "invalid config file value": (["config", "validate"], "ingest.max_document_mb = -5"),
    }


BAD_CASES = ["empty file", "binary file", "non-UTF-8 file", "file over the size limit", "missing path",
             "bad questions file", "unknown version in rollback", "version name that is a path",
             "invalid config value", "invalid config file value"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gets_one_clear_line_and_changes_nothing(learned, tmp_path, case):
    """Each bad input: exit status 1, exactly one line on stderr naming the problem, store unchanged."""
    args, needle = bad_inputs(tmp_path)[case]
    if case == "invalid config file value":
        with open(learned.home / "config.toml", "a") as f:
            f.write("\n[ingest]\nmax_document_mb = -5\n")
    before = snapshot(learned.home)
    run = learned.run(*args)
    err = run.stderr.decode().strip()
    assert run.returncode == 1, f"{case}: exit {run.returncode}, stderr {err!r}"
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and needle in err, f"{case}: {err!r}"
    assert snapshot(learned.home) == before, f"{case} changed the store"


def test_stdin_and_json_outputs(learned):
    """`ingest -` reads standard input; versions, history and ask speak JSON that matches the store."""
    run = learned.run("ingest", "-", stdin=b"Quellmoor has 2,314 residents and a violet beach.")
    assert run.returncode == 0, run.stderr.decode()
    listing = json.loads(learned.run("versions", "list", "--json").stdout)
    assert listing["active"] == 2 and [v["version"] for v in listing["versions"]] == [1, 2]
    assert listing["versions"][1]["parent"] == 1
    history = json.loads(learned.run("history", "--json").stdout)
    assert [h["version"] for h in history] == [2, 1] and history[0]["source"] == "-"
    answer = json.loads(learned.run("ask", "Who built the Brannock Lighthouse?", "--json").stdout)
    assert set(answer) == {"answer", "version", "passages"} and answer["version"] == 2 and answer["passages"] == []
    shown = json.loads(learned.run("versions", "show", "v2", "--json").stdout)
    assert shown["lineage"] == [1, 2] and shown["metrics"] == listing["versions"][1]["metrics"]


def test_rollback_then_ingest_branches(learned, tmp_path):
    """Rollback to v0 moves the pointer and keeps v1's files; the next commit's parent is v0."""
    assert learned.run("versions", "rollback", "v0").returncode == 0
    assert (learned.home / "adapters" / "knowledge" / "v0001" / "adapter_model.safetensors").exists()
    other = tmp_path / "other.md"
    other.write_text("Skelling is played with four hoops on Harrowfield green.")
    assert learned.run("ingest", str(other)).returncode == 0
    listing = json.loads(learned.run("versions", "list", "--json").stdout)
    assert listing["active"] == 2 and listing["versions"][1]["parent"] == 0


def test_installed_entry_point(home):
    """The `seal` console script: -h, env and config show; a bad command is one line and exit 1."""
    seal_bin = Path(sys.executable).parent / "seal"
    env = {**os.environ, "SEAL_HOME": str(home)}
    assert subprocess.run([seal_bin, "-h"], capture_output=True, env=env).returncode == 0
    info = json.loads(subprocess.run([seal_bin, "env", "--json"], capture_output=True, env=env).stdout)
    assert info["home"] == str(home) and info["packages"]["torch"].startswith("2.13.0")
    shown = subprocess.run([seal_bin, "config", "show"], capture_output=True, env=env).stdout.decode()
    assert "[train]" in shown and "epochs = 2" in shown
    bad = subprocess.run([seal_bin, "ingest", str(home / "missing.md")], capture_output=True, env=env)
    assert bad.returncode == 1 and bad.stderr.decode().strip().splitlines() == [f"Error: {home / 'missing.md'}: no such file"]


def test_chat_streams_switches_versions_and_learns(learned, monkeypatch, capsys):
    """The chat REPL answers (logged with the version that answered), lists versions, rolls back,
    learns a typed fact as a new version, reports a bad command inline, and quits."""
    script = "Who built it?\n/versions\n/rollback v0\nAnd now?\n/rollback nine\n/learn Skelling uses four hoops.\n/quit\n"
    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    monkeypatch.setattr(sys, "argv", ["seal", "chat"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Knowledge versions" in out and "rolled back from v1 to v0" in out
    assert "Error:" in out and "neither a version nor a tag" in out, "a bad command is reported and the chat goes on"
    from memory import Store

    store = Store.at_home(learned.home)
    turns = store.chat_turns()
    assert [(t.prompt, t.version) for t in turns] == [("Who built it?", 1), ("And now?", 0)]
    assert store.active() == 2 and store.version(2).parent == 0, "/learn committed v2 on top of v0"
    store.close()


def test_db_commands(learned):
    assert "revision 0006 (newest: 0006)" in learned.run("db", "current").stdout.decode()
    assert learned.run("db", "upgrade").returncode == 0
