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


# One commit protocol for every lineage: the knowledge harness above covers its file writes; here a kill before
# and after the version reaches the database, and inside its transaction, for the other two lineages.
COMMIT_POINTS = ["adapters.write.renamed", "store.commit.flushed", "commit.recorded"]


@pytest.mark.parametrize("lineage", ["policy", "task/upper"])
def test_kills_in_the_commit_protocol_of_policy_and_task_lineages(lineage, home, tmp_path, monkeypatch):
    """The policy update (`seal rl update`) and a task learn (`seal task learn`) commit through the same protocol
    as a document: killed at its failpoints, the home is consistent (or repaired, as `seal doctor --repair`
    does), and doing it again leaves exactly one version of the lineage, active."""
    import dataclasses
    import shutil
    import subprocess
    import sys

    from adapters_store import AdapterStore
    from adapters_store import doctor as checks
    from agent import policy, task_graph, tasks
    from agent.workspace import Workspace
    from memory import Store
    from seal import config as seal_config
    from seal.errors import InputError
    from tests.test_policy import FAITHFUL, SUPPLIED, _collect, _reward, _text
    from tests.test_task_graph import TASK

    (tmp_path / "upper.json").write_text(json.dumps(TASK))
    plan = json.dumps(dataclasses.asdict(tasks.DEFAULT_PLAN))
    if lineage == "policy":  # trials of policy v0 with a positive reward: what an update learns from
        ws = Workspace.open(seal_config.load({"self_edit": {"k": 2}}))
        [result] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
        trials = ws.store.trials(result.document_id)
        _text(ws, trials, FAITHFUL)
        _reward(ws, [t.id for t in trials], 0.5)
        ws.store.close()
        command = ["rl", "update"]
    else:
        command = ["--set", "tasks.min_accuracy=0", "task", "learn", str(tmp_path / "upper.json"), "--plan", plan]

    for point in COMMIT_POINTS:
        where = tmp_path / point
        shutil.copytree(home, where, symlinks=True)
        env = {**os.environ, "SEAL_HOME": str(where), "SEAL_FAILPOINT": point}
        killed = subprocess.run([sys.executable, "-m", "cli", *command], env=env, capture_output=True, text=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.stdout}{killed.stderr}"
        monkeypatch.setenv("SEAL_HOME", str(where))
        store, adapters = Store.at_home(where), AdapterStore(where / "adapters")
        checks.repair(where, store, adapters, lambda: None)
        assert not [f.what for f in checks.examine(store, adapters) if f.problem], point
        ws = Workspace.open(seal_config.load({"tasks": {"min_accuracy": 0.0}}), home=where)
        if lineage == "policy":
            try:
                policy.update(ws)
            except InputError as e:  # killed after its version reached the database: its data is learned
                assert "policy v1" in str(e), (point, e)
        else:
            task_graph.learn(ws, tasks.load_task(tmp_path / "upper.json"), str(tmp_path / "upper.json"), plan_text=plan)
        assert [v.number for v in ws.store.versions(lineage)] == [1] and ws.store.active(lineage) == 1, point
        assert not [f.what for f in checks.examine(ws.store, adapters) if f.problem], point
        ws.store.close()
        store.close()
