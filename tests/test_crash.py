"""The kill harness (benchmarks/crash.py) at smoke size on the tiny model: one SIGKILL at each failpoint
(inside the database transaction, between database and pointer, between files and database, half-way
through writing the files, between temporary and final pointer, between trial and checkpoint); each time
the store is found consistent (or repaired), answers, and the document is committed exactly once."""

import json
import os
import signal

import pytest

from benchmarks import crash
from tests.conftest import DOCUMENT, TINY_CONFIG


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


COMMIT_POINTS = [p for p in crash.POINTS if p != "verify.recorded"]


@pytest.mark.parametrize("lineage", ["policy", "task/upper"])
def test_kills_in_the_commit_protocol_of_policy_and_task_lineages(lineage, home, tmp_path):
    """The policy update (`seal rl update`) and a task learn (`seal task learn`) commit through the same protocol
    as a document: killed at each of its failpoints, the home is consistent (or repaired by `seal doctor`),
    and running the command again leaves exactly one version of the lineage, active."""
    import shutil
    import subprocess
    import sys

    from agent.workspace import Workspace
    from seal import config as seal_config
    from tests.test_policy import FAITHFUL, SUPPLIED, _collect, _reward, _text
    from tests.test_task_graph import TASK

    if lineage == "policy":  # trials of policy v0 with a positive reward: what an update learns from
        ws = Workspace.open(seal_config.load({"self_edit": {"k": 2}}))
        [result] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
        trials = ws.store.trials(result.document_id)
        _text(ws, trials, FAITHFUL)
        _reward(ws, [t.id for t in trials], 0.5)
        ws.store.close()
        command = ["rl", "update"]
    else:
        (tmp_path / "upper.json").write_text(json.dumps(TASK))
        command = ["--set", "tasks.min_accuracy=0", "task", "learn", str(tmp_path / "upper.json"), "--plan", "default"]

    def seal(where, *args, failpoint=None):
        env = {**os.environ, "SEAL_HOME": str(where), **({"SEAL_FAILPOINT": failpoint} if failpoint else {})}
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=600)

    for point in COMMIT_POINTS:
        where = tmp_path / point
        shutil.copytree(home, where, symlinks=True)
        killed = seal(where, *command, failpoint=point)
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.stdout}{killed.stderr}"
        if not json.loads(seal(where, "doctor", "--json").stdout)["consistent"]:
            seal(where, "doctor", "--repair", "--json")
        assert json.loads(seal(where, "doctor", "--json").stdout)["consistent"], point
        again = seal(where, *command)
        # Killed after its version reached the database, the update finds its data already learned.
        assert again.returncode == 0 or "policy v1" in again.stderr, f"{point}: {again.stderr}"
        listing = json.loads(seal(where, "versions", "list", "--kind", lineage, "--json").stdout)
        assert listing["active"] == 1 and [v["version"] for v in listing["versions"]] == [1], (point, listing)
        assert json.loads(seal(where, "doctor", "--json").stdout)["consistent"], point
