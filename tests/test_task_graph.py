"""Learning a few-shot task on the tiny model, end to end: plans sampled (one valid, one not JSON, one over
the training budget), each trained and scored on the held-out demonstration or scored zero with its reason,
the best committed in the task's own lineage (task/<id>), solved from it, known when learned again, and the
home still consistent for `seal doctor`."""

import json
import threading

import pytest

from agent import task_graph, tasks
from agent.versions import rollback
from agent.workspace import Workspace
from seal import config as seal_config

TASK = {"train": [{"input": "abc", "output": "ABC"}, {"input": "dog", "output": "DOG"},
                  {"input": "sun", "output": "SUN"}],
        "test": [{"input": "cat", "output": "CAT"}, {"input": "hat"}]}
VALID = '{"permutations": 1, "context": "leave_one_out", "loss": "outputs", "learning_rate": 0.003, "epochs": 2}'
HUGE = '{"permutations": 3, "epochs": 10}'


@pytest.fixture
def plans(monkeypatch):
    """The policy's plans, in order: the tiny model cannot choose sensible values, so the plan writer is
    scripted (`tasks.write_plan` is tested on its own); every other generation is real."""
    queue = []
    monkeypatch.setattr(tasks, "write_plan", lambda complete, grids: queue.pop(0))
    return queue


def test_the_policy_writes_plans_one_value_at_a_time(home):
    """The real tiny model writes the values (garbage, mostly): every plan is kept as text, parsed or not."""
    task = tasks.parse_task(TASK, "upper")
    ws = Workspace.open(seal_config.load({"tasks": {"retries": 0, "value_tokens": 8}}))
    prompt, texts = task_graph.sample_plans(ws, task, 3, 0, seed=1)
    assert "Choose how to train" in prompt and len(texts) == 3
    assert all(t.startswith('{"augmentations": [], "permutations": ') for t in texts), texts
    assert task_graph.sample_plans(ws, task, 3, 0, seed=1)[1] == texts, "seeded: the same plans again"


def test_a_task_is_learned_committed_in_its_lineage_and_solved(home, plans, tmp_path):
    (tmp_path / "upper.json").write_text(json.dumps(TASK))
    task = tasks.load_task(tmp_path / "upper.json")
    cfg = seal_config.load({"tasks": {"k": 3, "retries": 1, "min_accuracy": 0.0, "max_train_tokens": 5000}})
    ws = Workspace.open(cfg)
    plans += [VALID, "sure! here is my plan", "still no json", HUGE]  # plan 2 is retried once, then kept invalid

    result = task_graph.learn(ws, task, "upper.json")
    assert result.status == "committed" and result.version == 1, result
    by_plan = {ws.store.self_edit(t.self_edit_id).text: t for t in ws.store.trials(result.document_id)}
    assert set(by_plan) == {VALID, "still no json", HUGE}
    assert by_plan[VALID].decision == "committed" and by_plan[VALID].tokens > 0
    assert "no JSON object" in by_plan["still no json"].reason and by_plan["still no json"].reward == 0
    assert "over budget" in by_plan[HUGE].reason and by_plan[HUGE].tokens == 0
    held = by_plan[VALID].scores["held_out"]
    assert [r["input"] for r in held] == ["sun"], "the last demonstration is held out and not trained on"

    version = ws.store.version(1, "task/upper")
    assert version.metrics["plan"]["permutations"] == 1 and version.documents == [result.document_id]
    assert (home / "adapters" / "task" / "upper" / "v0001" / "adapter_model.safetensors").exists()
    assert ws.store.active("task/upper") == 1 and ws.store.active("knowledge") == 0

    answers, number = task_graph.solve(ws, task)
    assert number == 1 and len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert task_graph.learn(ws, task, "upper.json").status == "known"


def test_a_stopped_task_goes_on_from_its_checkpoint(home, plans, tmp_path):
    """`stop` set while a plan trains: learning pauses after that stage; the next run (as `seal run` does after
    SIGTERM) continues at score, and no stage runs twice."""
    task = tasks.parse_task(TASK, "upper")
    stop = threading.Event()
    ws = Workspace.open(seal_config.load({"tasks": {"k": 1, "min_accuracy": 0.0}}),
                        progress=lambda stage, message: stop.set() if stage == "train" else None)
    plans.append(VALID)
    assert task_graph.learn(ws, task, "upper.json", stop=stop) is None
    doc = ws.store.pending_documents("task")[0]
    assert [e.data["stage"] for e in ws.store.events("stage", doc.id)] == ["plan", "train"]

    stop.clear()
    ws.progress = lambda stage, message: None
    result = task_graph.learn(ws, task, "upper.json", resume=True)
    assert result.status == "committed" and result.version == 1, result
    assert [e.data["stage"] for e in ws.store.events("stage", doc.id)] == ["plan", "train", "score", "commit"]
    assert len(ws.store.trials(doc.id)) == 1 and not plans, "the plan was sampled once"


def test_the_agent_pauses_a_task_job_and_the_next_agent_finishes_it(home, plans):
    from agent import runtime

    stop = threading.Event()
    ws = Workspace.open(seal_config.load({"tasks": {"k": 1, "min_accuracy": 0.0}}),
                        progress=lambda stage, message: stop.set() if stage == "score" else None)
    plans.append(VALID)
    job = runtime.submit(ws, tasks.parse_task(TASK, "upper"))
    assert runtime.work(ws, ws.store.next_job(), stop) is False, "paused after score, before commit"
    assert runtime.status(ws)["current"]["stage"] == "commit"
    stop.clear()
    assert runtime.work(ws, ws.store.next_job(), stop) is True
    done = ws.store.job(job.id)
    assert done.status == "done" and done.result["status"] == "committed" and done.result["version"] == 1, done
    assert [e.data["stage"] for e in ws.store.events("stage", done.document_id)] == ["plan", "train", "score", "commit"]


def test_doctor_and_versions_see_task_lineages(home, plans, tmp_path, capsys, monkeypatch):
    from tests.conftest import seal

    (tmp_path / "upper.json").write_text(json.dumps(TASK))
    ws = Workspace.open(seal_config.load({"tasks": {"k": 1, "min_accuracy": 0.0}}))
    plans.append(VALID)
    assert task_graph.learn(ws, tasks.load_task(tmp_path / "upper.json"), "upper.json").version == 1
    (home / "adapters" / "task" / "upper" / "v0007").mkdir()  # a write that never reached the database
    run = lambda *a: seal(home, *a, capsys=capsys, monkeypatch=monkeypatch)  # noqa: E731
    report = json.loads(run("doctor", "--json").stdout)
    assert [f for f in report["findings"] if f["problem"] and "v0007" in f["what"]], report
    assert run("doctor", "--repair").returncode == 0 and run("doctor").returncode == 0
    listing = json.loads(run("versions", "list", "--kind", "task/upper", "--json").stdout)
    assert [v["version"] for v in listing["versions"]] == [1] and listing["active"] == 1
    assert run("versions", "list", "--kind", "task/../etc").returncode == 1


def test_task_commands_and_the_queue(home, plans, tmp_path, capsys, monkeypatch):
    """`seal task learn` / `seal task solve`; a task file submitted (or dropped in the inbox) is learned by
    `seal run`; bad input is one line and exit 1."""
    from tests.conftest import seal

    run = lambda *a: seal(home, *a, capsys=capsys, monkeypatch=monkeypatch)  # noqa: E731
    (tmp_path / "upper.json").write_text(json.dumps(TASK))
    (tmp_path / "broken.json").write_text('{"train": [')
    plans += [VALID, VALID]
    learned = run("--set", "tasks.k=1", "--set", "tasks.min_accuracy=0", "task", "learn", str(tmp_path / "upper.json"))
    assert learned.returncode == 0 and "committed · task/upper v1" in learned.stdout.decode(), learned.stdout
    solved = json.loads(run("task", "solve", str(tmp_path / "upper.json"), "--json").stdout)
    assert solved["version"] == 1 and [r["input"] for r in solved["answers"]] == ["cat", "hat"]
    assert solved["answers"][1]["correct"] is None and isinstance(solved["answers"][0]["correct"], bool)
    new = json.loads(run("task", "solve", str(tmp_path / "upper.json"), "-i", "pen", "-i", "ink", "--json").stdout)
    assert [(r["input"], r["correct"]) for r in new["answers"]] == [("pen", None), ("ink", None)]
    assert new["answers"][0]["answer"] == task_graph.solve(Workspace.open(), tasks.with_inputs(
        tasks.load_task(tmp_path / "upper.json"), ["pen"]))[0][0], "new inputs are answered as test inputs are"

    for args, problem in [(("task", "learn"), "one of them"), (("task", "solve", str(tmp_path / "nope.json")), "no such file"),
                          (("task", "learn", str(tmp_path / "broken.json")), "not a readable JSON"),
                          (("task", "learn", "--arc", "zzzzzzzz"), "no ARC task"),
                          (("task", "solve", "--arc", "007bbfb7", "-i", "[[1,2],[3]]"), "rectangular"),
                          (("task", "solve", "--arc", "007bbfb7", "-i", "12"), "grid"),
                          (("task", "learn", str(tmp_path / "upper.json"), "--plan", '{"epochs": 99}'), "epochs")]:
        bad = run(*args)
        assert bad.returncode == 1 and problem in bad.stderr.decode() and len(bad.stderr.decode().splitlines()) == 1

    (tmp_path / "title.json").write_text(json.dumps({**TASK, "train": [{"input": "ab cd", "output": "Ab Cd"},
                                                                       {"input": "ef", "output": "Ef"}]}))
    given = run("--set", "tasks.min_accuracy=0", "task", "learn", str(tmp_path / "title.json"), "--plan", "default")
    assert given.returncode == 0 and "committed · task/title v1" in given.stdout.decode(), given.stdout
    store = Workspace.open().store
    (trial,) = store.trials(store.version(1, "task/title").documents[0])
    assert store.self_edit(trial.self_edit_id).policy_version == task_graph.GIVEN, "a given plan is no policy data"

    (tmp_path / "lower.json").write_text(json.dumps({**TASK, "train": [{"input": "ABC", "output": "abc"},
                                                                       {"input": "XY", "output": "xy"}]}))
    assert run("submit", str(tmp_path / "lower.json")).returncode == 0
    assert run("--set", "tasks.k=1", "--set", "tasks.min_accuracy=0", "run", "--once").returncode == 0
    info = json.loads(run("status", "--json").stdout)
    assert info["queue"] == {"done": 1} and info["errors"] == [], info
    assert Workspace.open().store.active("task/lower") == 1


def test_a_rollback_during_a_task_learn_is_never_overwritten(home, plans, tmp_path, monkeypatch):
    """A task learned again (more demonstrations, same lineage) while its lineage is rolled back: the new plan
    is rejected with the reason, and the rollback stands (the knowledge commit's rule, one protocol)."""
    (tmp_path / "upper.json").write_text(json.dumps(TASK))
    cfg = seal_config.load({"tasks": {"k": 1, "retries": 0, "min_accuracy": 0.0}})
    ws = Workspace.open(cfg)
    plans += [VALID, VALID]
    assert task_graph.learn(ws, tasks.load_task(tmp_path / "upper.json"), "upper.json").version == 1
    more = {**TASK, "train": [*TASK["train"], {"input": "map", "output": "MAP"}]}
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "upper.json").write_text(json.dumps(more))

    fitted = task_graph.fit

    def rolled_back_meanwhile(*args, **kwargs):
        result = fitted(*args, **kwargs)
        if ws.store.active("task/upper") == 1:
            rollback(ws, 0, "task/upper")
        return result

    monkeypatch.setattr(task_graph, "fit", rolled_back_meanwhile)
    result = task_graph.learn(ws, tasks.load_task(tmp_path / "again" / "upper.json"), "again/upper.json")
    assert result.status == "rejected" and "active version moved from v1 to v0" in result.reason, result
    assert ws.store.active("task/upper") == 0 and [v.number for v in ws.store.versions("task/upper")] == [1]
