"""The kill harness (benchmarks/crash.py) at smoke size on the tiny model: one SIGKILL at each failpoint
(inside the database transaction, between database and pointer, between files and database, half-way
through writing the files, between temporary and final pointer, between trial and checkpoint); each time
the store is found consistent (or repaired), answers, and the document is committed exactly once."""

import json

from benchmarks import crash
from tests.conftest import TINY_CONFIG


def test_kill_harness_recovers_from_kills_in_the_commit_protocol(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("SEAL_HOME", str(tmp_path / "seal"))
    config = tmp_path / "config.toml"
    config.write_text(TINY_CONFIG.format(model=tiny_model_dir))
    code = crash.main(["--kills", "6", "--only-failpoints", "--config", str(config), "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "crash-kills.json").read_text())
    assert sorted(k["at"] for k in result["kills"]) == sorted(crash.POINTS)
    stages = {k["at"]: k["stage"] for k in result["kills"] if k["killed"]}
    assert stages == {p: "verify" if p == "verify.recorded" else "commit" for p in crash.POINTS}, result["kills"]
    # What each kill left behind, and that doctor saw it.
    found = {k["at"]: k["doctor"] for k in result["kills"]}
    assert any("ACTIVE" in f for f in found["commit.recorded"])
    assert any("never reached the database" in f for f in found["adapters.write.renamed"])
    assert code == 0 and result["summary"]["ok"] == 6, result["kills"]
