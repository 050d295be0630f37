"""The store under attack and over time, through the `seal` command on the tiny model: `seal doctor` finds
and repairs crash leftovers; tampered adapter files are refused with one line and nothing else changes;
versions are tagged and pruned."""

import json
import shutil
from types import SimpleNamespace

import pytest

from tests.conftest import seal, snapshot

QUESTION = "Who built the Brannock Lighthouse?"


def doctor(learned, *args):
    run = learned.run("doctor", "--json", *args)
    return run.returncode, json.loads(run.stdout)


def test_doctor_finds_a_learned_home_consistent(learned):
    code, report = doctor(learned)
    assert code == 0 and report == {"consistent": True, "findings": []}


def test_doctor_repairs_crash_leftovers_and_nothing_else(learned):
    """A version folder the database never recorded, an unfinished write, a stale pointer and an orphan
    candidate folder are found, then removed or rewritten by --repair; v1 stays intact and active."""
    knowledge = learned.home / "adapters" / "knowledge"
    (knowledge / "v0002").mkdir()
    (knowledge / "v0002" / "adapter_model.safetensors").write_bytes(b"half")
    (knowledge / ".tmp-v0003-abcd").mkdir()
    (knowledge / "ACTIVE").write_text("v0002\n")
    (learned.home / "adapters" / ".scratch" / "candidate-x").mkdir(parents=True)

    code, report = doctor(learned)
    assert code == 1 and not report["consistent"]
    assert len(report["findings"]) == 4 and all(f["problem"] and f["repairable"] for f in report["findings"])
    code, report = doctor(learned, "--repair")
    assert code == 0 and report["consistent"] and all(f["repaired"] for f in report["findings"])
    assert sorted(p.name for p in knowledge.iterdir()) == ["ACTIVE", "v0001"]
    assert (knowledge / "ACTIVE").read_text() == "v0001\n"
    assert doctor(learned) == (0, {"consistent": True, "findings": []})
    assert learned.run("ask", QUESTION).returncode == 0


def _flip_a_byte(folder):
    path = folder / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_metadata(folder):
    meta = json.loads((folder / "seal.json").read_text())
    (folder / "seal.json").write_text(json.dumps({**meta, "version": 7}))


TAMPERING = {
    "flipped byte": (_flip_a_byte, "adapter_model.safetensors does not match its recorded sha256"),
    "deleted file": (lambda folder: (folder / "adapter_config.json").unlink(), "adapter_config.json is missing"),
    "metadata edited to point elsewhere": (_edit_metadata, "seal.json is missing or does not describe this version"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_version_is_refused_with_one_line(learned, case):
    """Loading a tampered version fails with one line naming the version and the file; the database and
    every other file are untouched; `seal doctor` reports it and --repair does not pretend to fix it."""
    tamper, needle = TAMPERING[case]
    tamper(learned.home / "adapters" / "knowledge" / "v0001")
    before = snapshot(learned.home)
    run = learned.run("ask", QUESTION)
    err = run.stderr.decode().strip()
    assert run.returncode == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("Error: knowledge version v1: ") and needle in err, err
    assert snapshot(learned.home) == before
    code, report = doctor(learned, "--repair")
    assert code == 1 and [f["what"] for f in report["findings"] if not f["repaired"]][0].count(needle) == 1
    assert snapshot(learned.home) == before


def test_bad_tag_and_version_names_are_refused(learned):
    before = snapshot(learned.home)
    for args, needle in ((["versions", "tag", "v1", "../x"], "not a usable tag"),
                         (["versions", "tag", "v1", "v2"], "not a usable tag"),
                         (["versions", "show", "../x"], "neither a version nor a tag"),
                         (["versions", "prune", "--keep", "-1"], "--keep -1")):
        run = learned.run(*args)
        err = run.stderr.decode().strip()
        assert run.returncode == 1 and len(err.splitlines()) == 1 and needle in err, (args, err)
    assert snapshot(learned.home) == before


def test_tag_and_prune(learned, tmp_path):
    """Prune is a dry run until --apply; it never deletes the active version or a tagged one; a pruned
    version keeps its history, cannot be rolled back to, and a tag works wherever a version does."""
    for i, text in enumerate(["Quellmoor has 2,314 residents.", "Skelling uses four hoops."]):
        (tmp_path / f"{i}.md").write_text(text)
        assert learned.run("ingest", str(tmp_path / f"{i}.md")).returncode == 0
    assert learned.run("versions", "tag", "v1", "first-light").returncode == 0
    assert "already names" in learned.run("versions", "tag", "v3", "first-light").stderr.decode()

    dry = learned.run("versions", "prune", "--keep", "1").stdout.decode()
    assert "would delete v2" in dry and "v1" not in dry.split("would delete")[1]
    knowledge = learned.home / "adapters" / "knowledge"
    assert (knowledge / "v0002").exists()
    assert learned.run("versions", "prune", "--keep", "1", "--apply").returncode == 0
    assert sorted(p.name for p in knowledge.iterdir()) == ["ACTIVE", "v0001", "v0003"]

    listing = json.loads(learned.run("versions", "list", "--json").stdout)
    assert [(v["version"], v["pruned"], v["tags"]) for v in listing["versions"]] == [
        (1, False, ["first-light"]), (2, True, []), (3, False, [])]
    err = learned.run("versions", "rollback", "v2").stderr.decode()
    assert "was pruned" in err
    assert learned.run("versions", "rollback", "first-light").returncode == 0
    assert json.loads(learned.run("versions", "list", "--json").stdout)["active"] == 1
    assert doctor(learned) == (0, {"consistent": True, "findings": []})


def test_prune_keeps_the_version_an_interrupted_ingest_trains_from(learned, tmp_path):
    """An ingest stopped after generate, on top of v2, then a rollback to v1: v2 is neither active nor among
    the newest kept, yet prune keeps it, because the resumed ingest trains from it (and then, the active
    version having moved, declines to commit, as any stale candidate does)."""
    from agent.graph import build_graph
    from agent.ingest import checkpointer, resume, thread
    from agent.workspace import Workspace

    (tmp_path / "q.md").write_text("Quellmoor has 2,314 residents.")
    assert learned.run("ingest", str(tmp_path / "q.md")).returncode == 0
    ws = Workspace.open()
    text = "Skelling is played by Orrin Vale's club in Tessery. Each team uses four hoops and 1,200 marbles."
    doc, _ = ws.store.add_document(text, "s.md", "Skelling")
    with checkpointer(ws) as saver:
        build_graph(saver).invoke({"document_id": doc.id}, thread(doc), context=ws, interrupt_after=["generate"])
    assert learned.run("versions", "rollback", "v1").returncode == 0

    dry = learned.run("versions", "prune", "--keep", "0").stdout.decode()
    assert "keep   v2: an interrupted ingest trains from it" in dry and "would delete" not in dry, dry
    [result] = resume(Workspace.open())
    (trial,) = ws.store.trials(doc.id)
    assert trial.parent_version == 2 and "moved from v2 to v1" in result.reason, result.reason


def _state(learned):
    """What a user sees of a home: versions (paths aside), history, and the answer to a question."""
    listing = json.loads(learned.run("versions", "list", "--json").stdout)
    for v in listing["versions"]:
        v.pop("path")
    return listing, json.loads(learned.run("history", "--json").stdout), \
        json.loads(learned.run("ask", QUESTION, "--json").stdout)


def test_backup_restore_round_trip(learned, tmp_path, database_url, monkeypatch, capsys):
    """Restore into an empty home (on SQLite or PostgreSQL) reproduces the active version, the answers and
    the history; the restored home keeps learning (new ids do not collide with restored ones)."""
    (tmp_path / "q.md").write_text("Quellmoor has 2,314 residents.")
    assert learned.run("ingest", str(tmp_path / "q.md")).returncode == 0
    assert learned.run("versions", "tag", "v1", "first-light").returncode == 0
    before = _state(learned)
    assert learned.run("backup", str(tmp_path / "bk")).returncode == 0
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == ["adapters", "config.toml", "manifest.json", "seal.db"]

    from agent import workspace

    workspace._MODELS.clear()
    home = tmp_path / "restored"
    home.mkdir()
    monkeypatch.setenv("SEAL_DATABASE_URL", database_url)
    restored = SimpleNamespace(home=home, run=lambda *a: seal(home, *a, capsys=capsys, monkeypatch=monkeypatch))
    run = restored.run("restore", str(tmp_path / "bk"))
    assert run.returncode == 0, run.stderr.decode()
    assert (home / "config.toml").read_text() == (learned.home / "config.toml").read_text()
    assert _state(restored) == before
    assert doctor(restored) == (0, {"consistent": True, "findings": []})
    (tmp_path / "s.md").write_text("Skelling uses four hoops.")
    assert restored.run("ingest", str(tmp_path / "s.md")).returncode == 0
    assert json.loads(restored.run("versions", "list", "--json").stdout)["active"] == 3


def test_backup_and_restore_refuse_bad_input(learned, tmp_path, capsys, monkeypatch):
    """An existing destination, a folder that is not a backup, a damaged backup, and a home that is not
    empty: one line each, nothing changed."""
    assert learned.run("backup", str(tmp_path / "bk")).returncode == 0
    (tmp_path / "taken").mkdir()
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "bk", damaged)
    with open(damaged / "seal.db", "ab") as f:
        f.write(b"x")
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.toml").write_text('[model]\npath = "/models/Some-Other-Model"\n')
    before = snapshot(learned.home)
    for args, needle in ((["backup", str(learned.home / "inside")], "inside the home"),
                         (["backup", str(tmp_path / "taken")], "already exists"),
                         (["restore", str(tmp_path / "taken")], "not a seal backup"),
                         (["restore", str(damaged)], "does not match the backup's manifest"),
                         (["restore", str(tmp_path / "bk")], "already holds data")):
        run = learned.run(*args)
        err = run.stderr.decode().strip()
        assert run.returncode == 1 and len(err.splitlines()) == 1 and needle in err, (args, err)
    assert snapshot(learned.home) == before
    onto_other = seal(other, "restore", str(tmp_path / "bk"), capsys=capsys, monkeypatch=monkeypatch)
    err = onto_other.stderr.decode().strip()
    assert onto_other.returncode == 1 and "belong to the model" in err and len(err.splitlines()) == 1, err
    from memory import Store

    assert not (other / "adapters").exists() and not any(Store.at_home(other).row_counts().values())
