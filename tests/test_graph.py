"""The ingest graph on the tiny model: wiring, routing, a full run, rejection, and resume."""

from langgraph.checkpoint.memory import InMemorySaver

from agent import adapt
from agent.graph import after_verify, build_graph
from agent.ingest import DocumentInput, ingest, resume
from agent.workspace import Workspace
from seal import config as seal_config
from tests.conftest import DOCUMENT, QUESTIONS

SUPPLIED = tuple((q["question"], q["answer"]) for q in QUESTIONS)


def test_graph_wiring():
    """Exactly the four stage nodes, and the router after verify."""
    graph = build_graph().get_graph()
    assert set(graph.nodes) == {"__start__", "generate", "adapt", "verify", "commit", "__end__"}
    assert after_verify({"current": 1, "candidates": [1, 2], "trials": []}) == "adapt"
    assert after_verify({"current": 2, "candidates": [1, 2], "trials": [{"passed": False}, {"passed": True}]}) == "commit"
    assert after_verify({"current": 1, "candidates": [1], "trials": [{"passed": False}]}) == "__end__"


def test_ingest_commits_a_version_with_its_records(home):
    """A passing candidate becomes v1: files on disk, version row, active pointer, trial and stage events."""
    ws = Workspace.open()
    [result] = ingest(ws, [DocumentInput("doc.md", "Lighthouse", DOCUMENT, SUPPLIED)])
    assert (result.status, result.version) == ("committed", 1)
    version = ws.store.version(1)
    assert version.parent == 0 and version.documents == [result.document_id]
    assert ws.adapters.verified("knowledge", 1, version.files) == home / "adapters" / "knowledge" / "v0001"
    assert (home / "adapters" / "knowledge" / "ACTIVE").read_text().strip() == "v0001"
    [trial] = ws.store.trials(result.document_id)
    assert trial.decision == "committed" and trial.tokens > 0 and len(trial.scores["new"]) == 2
    assert [e.data["stage"] for e in ws.store.events("stage")] == ["generate", "adapt", "verify", "commit"]
    assert not list((home / "adapters" / ".scratch").iterdir()), "candidate scratch folders must be cleaned up"
    # The same content again is known, not learned twice.
    [again] = ingest(ws, [DocumentInput("copy.md", "Lighthouse", DOCUMENT)])
    assert again.status == "known" and len(ws.store.versions()) == 1


def test_second_version_trains_from_the_first(home, monkeypatch):
    """Knowledge accumulates: v2's parent is v1 and its candidate replays v1's sequences and v1's document as
    recited in the chat format (its chat-form memory, with v1 as the teacher)."""
    replayed = []
    build = adapt.training_examples
    monkeypatch.setattr(adapt, "training_examples", lambda *a, **k: replayed.append(a[5]) or build(*a, **k))
    ws = Workspace.open()
    list(ingest(ws, [DocumentInput("a.md", "A", DOCUMENT, SUPPLIED)]))
    [b] = ingest(ws, [DocumentInput("b.md", "B", "Quellmoor has 2,314 residents and violet sand.")])
    assert b.version == 2 and ws.store.version(2).parent == 1
    trial = ws.store.trials(b.document_id)[0]
    assert trial.parent_version == 1 and trial.retention_before is not None
    assert replayed[0] == [] and any("What do you know about A?" in p and c.startswith(DOCUMENT.strip()[:40])
                                     for p, c in replayed[1]), replayed[1]
    assert ws.store.probes(b.document_id), "a document without questions gets generated or cloze probes"


def test_an_update_that_changes_nothing_is_never_rejected(home):
    """General ability is bounded against the base model, not the parent: a candidate with its parent's weights
    (every transfer part at weight 0, so nothing trains) drifts exactly as far from the base as its parent and
    answers as it does, so it passes a gate set as tight as the parent's own numbers (no gain needed)."""
    ws = Workspace.open()
    [a] = ingest(ws, [DocumentInput("a.md", "A", DOCUMENT, SUPPLIED)])
    parent = ws.store.trials(a.document_id)[-1]
    assert a.version == 1 and parent.general_drift > 0, "the parent was trained"
    parts = ("passage", "self_edit", "questions", "answer_ce", "sentences", "recital", "retention")
    tight = {"verify": {"min_gain": 0.0, "max_retention_drop": 0.0, "max_drift": parent.general_drift,
                        "max_general_drop": parent.general_before - parent.general_after},
             "train": {part: 0.0 for part in parts}}
    ws = Workspace.open(seal_config.load(tight))
    [b] = ingest(ws, [DocumentInput("b.md", "B", "Quellmoor has 2,314 residents and violet sand.")])
    trial = ws.store.trials(b.document_id)[-1]
    assert trial.tokens == 0 and trial.general_drift == parent.general_drift, (trial.tokens, trial.general_drift)
    assert (b.status, b.version) == ("committed", 2), trial.reason


def test_rejected_candidate_is_data(home):
    """A gate that cannot pass rejects the document: a trial with a reason, no version, no files."""
    ws = Workspace.open(seal_config.load({"verify": {"min_gain": 1.0}}))
    [result] = ingest(ws, [DocumentInput("doc.md", "Lighthouse", DOCUMENT, SUPPLIED)])
    assert result.status == "rejected" and result.version == 0
    assert "gain" in ws.store.trials(result.document_id)[0].reason
    assert ws.store.versions() == [] and not (home / "adapters" / "knowledge").exists()
    assert [e.kind for e in ws.store.events() if e.kind != "stage"] == ["rejected"]


def test_retention_guards_learned_documents_and_what_was_known_of_rejected_ones(tmp_path):
    """The learned documents' sample keeps its full size however many documents were rejected; rejected
    documents add only the probes the parent is known to answer right."""
    from agent.verify import retention_sample
    from memory import Store
    from tests.test_store import commit

    store = Store.at_home(tmp_path)
    learned, _ = store.add_document("Skelling uses four hoops.", "s.md", "S")
    store.set_probes(learned.id, [(f"learned q{i}?", "hoops", "supplied") for i in range(10)])
    commit(store, learned.id, 1, 0, [])
    for i in range(20):
        doc, _ = store.add_document(f"rejected {i}", f"r{i}.md", f"R{i}")
        store.set_probes(doc.id, [(f"rejected q{i}?", "Morwen Hale", "supplied")])
        store.add_trial(trial_for_rejection(store, doc.id), document_status="rejected")
    new, _ = store.add_document("Quellmoor has violet sand.", "q.md", "Q")
    before = {"rejected q3?": "It was Morwen Hale.", "rejected q4?": "Nobody knows."}
    sample = retention_sample(store, store.document(new.id), 1, before, 8)
    questions = [p.question for p in sample]
    assert len([q for q in questions if q.startswith("learned")]) == 8
    assert [q for q in questions if q.startswith("rejected")] == ["rejected q3?"]
    store.close()


def trial_for_rejection(store, doc_id):
    from memory import SelfEdit, Trial

    se = store.add_self_edits([SelfEdit(document_id=doc_id, format="rewrite", prompt="p", text="t", sequences=[])])[0]
    return Trial(document_id=doc_id, self_edit_id=se.id, parent_version=1, config={}, losses=[], tokens=1,
                 train_seconds=0.1, scores={}, new_before=0.0, new_after=0.0, retention_before=None,
                 retention_after=None, general_before=1.0, general_after=1.0, reward=0.0, passed=False,
                 decision="rejected", reason="gain +0.00 < 0.01")


def test_k_candidates_commit_the_best(home):
    """With K=3, all three are adapted and verified; one version is committed, from the best trial."""
    ws = Workspace.open(seal_config.load({"self_edit": {"k": 3}}))
    [result] = ingest(ws, [DocumentInput("doc.md", "Lighthouse", DOCUMENT, SUPPLIED)])
    trials = ws.store.trials(result.document_id)
    assert len(trials) == 3 and [t.decision for t in trials].count("committed") == 1
    best = max(trials, key=lambda t: (t.reward, -t.id))
    assert ws.store.version(1).trial_id == best.id


def test_resume_after_adapt_does_not_repeat_generate(home):
    """An ingest stopped after adapt resumes at verify: one self-edit, one generate, one commit."""
    ws = Workspace.open()
    doc, _ = ws.store.add_document(DOCUMENT, "doc.md", "Lighthouse")
    from agent.ingest import checkpointer, thread

    with checkpointer(ws) as saver:
        graph = build_graph(saver)
        graph.invoke({"document_id": doc.id}, thread(doc), context=ws, interrupt_after=["adapt"])
        assert graph.get_state(thread(doc)).next == ("verify",)
    ws2 = Workspace.open()  # as a new process would
    [result] = resume(ws2)
    assert result.status == "committed" and result.version == 1
    stages = [e.data["stage"] for e in ws2.store.events("stage")]
    assert stages == ["generate", "adapt", "verify", "commit"], stages
    assert len(ws2.store.trials(doc.id)) == 1 and len(ws2.store.versions()) == 1
    assert list(resume(ws2)) == [], "nothing is left to resume"


def test_in_memory_checkpointer_runs_nodes(home):
    """The graph compiles with any checkpointer; dependencies come in as the runtime context."""
    ws = Workspace.open()
    doc, _ = ws.store.add_document(DOCUMENT, "doc.md", "Lighthouse")
    graph = build_graph(InMemorySaver())
    state = graph.invoke({"document_id": doc.id}, {"configurable": {"thread_id": "t"}}, context=ws)
    assert state["version"] == 1 and state["current"] == 1 and len(state["trials"]) == 1


def test_parent_answers_are_reused_not_recomputed(home):
    """Verify reuses the answers a version already gave (the probes' answers are recorded per version), and
    compares general ability with the base model: both documents' 'before' answers on the general set are
    the base model's."""
    ws = Workspace.open()
    [a] = ingest(ws, [DocumentInput("a.md", "A", DOCUMENT, SUPPLIED)])
    [b] = ingest(ws, [DocumentInput("b.md", "B", "Quellmoor has 2,314 residents and violet sand.")])
    first, second = ws.store.trials(a.document_id)[0], ws.store.trials(b.document_id)[0]
    after_v1 = {r["question"]: r["after"] for r in first.scores["general"]}
    base = {r["question"]: r["before"] for r in first.scores["general"]}
    assert {r["question"]: r["before"] for r in second.scores["general"]} == base
    assert ws.store.recorded_answers(1) | after_v1 == ws.store.recorded_answers(1)
    assert set(ws.store.recorded_answers(0)) >= {r["question"] for r in first.scores["new"]}


def test_gate_thresholds_are_inclusive_despite_float_error():
    """A drop of exactly the tolerance passes (0.8 - 0.6 is 0.20000000000000007 in floats)."""
    from agent.verify import gate
    from seal.config import VerifyConfig

    cfg = VerifyConfig(min_gain=0.2, max_general_drop=0.2, max_retention_drop=0.2)
    assert gate(0.6 - 0.4, 0.8 - 0.6, 0.8 - 0.6, cfg.max_drift, cfg)[0]
    passed, reason = gate(0.1, None, 0.3, cfg.max_drift + 0.01, cfg)
    assert not passed and reason == ("gain +0.10 < 0.20; general ability dropped 0.30 below the base model > 0.20; "
                                     f"drifted {cfg.max_drift + 0.01:.3f} nats/token from the base model > {cfg.max_drift:.3f}")


def test_verify_stopped_after_recording_is_not_repeated(home):
    """A verify that recorded its trial but died before its checkpoint reuses that trial on resume."""
    from types import SimpleNamespace

    from agent.ingest import checkpointer, thread
    from agent.verify import verify

    ws = Workspace.open()
    doc, _ = ws.store.add_document(DOCUMENT, "doc.md", "Lighthouse")
    with checkpointer(ws) as saver:
        graph = build_graph(saver)
        graph.invoke({"document_id": doc.id}, thread(doc), context=ws, interrupt_after=["adapt"])
        verify(graph.get_state(thread(doc)).values, SimpleNamespace(context=ws))  # recorded, then "killed"
    [result] = resume(Workspace.open())
    assert result.status == "committed" and len(ws.store.trials(doc.id)) == 1


def test_commit_refuses_a_candidate_whose_parent_is_no_longer_active(home):
    """If another ingest commits while this candidate trains, the candidate is rejected with a reason
    instead of silently dropping the other version from the active lineage."""
    from agent.ingest import checkpointer, thread

    ws = Workspace.open()
    doc, _ = ws.store.add_document(DOCUMENT, "doc.md", "Lighthouse")
    with checkpointer(ws) as saver:
        build_graph(saver).invoke({"document_id": doc.id}, thread(doc), context=ws, interrupt_after=["adapt"])
    [other] = ingest(ws, [DocumentInput("b.md", "B", "Quellmoor has 2,314 residents and violet sand.")])
    assert other.version == 1
    [result] = resume(ws)
    assert result.status == "rejected" and ws.store.active() == 1 and len(ws.store.versions()) == 1
    assert "active version moved from v0 to v1" in ws.store.trials(doc.id)[0].reason
    assert (home / "adapters" / "knowledge" / "ACTIVE").read_text().strip() == "v0001"


def test_learn_and_roll_back_on_either_store(home, database_url, monkeypatch):
    """The runtime end to end on SQLite and on the real PostgreSQL server: two commits, the second's
    parent the first, a rollback, and the next version's parent the rolled-back-to one."""
    from agent.versions import rollback

    monkeypatch.setenv("SEAL_DATABASE_URL", database_url)
    ws = Workspace.open()
    assert ws.store.engine.dialect.name == database_url.split(":")[0].split("+")[0]
    [a] = ingest(ws, [DocumentInput("a.md", "A", DOCUMENT, SUPPLIED)])
    [b] = ingest(ws, [DocumentInput("b.md", "B", "Quellmoor has 2,314 residents and violet sand.")])
    assert (a.version, b.version) == (1, 2) and ws.store.version(2).parent == 1
    rollback(ws, 1)
    [c] = ingest(ws, [DocumentInput("c.md", "C", "Zelmark Instruments makes brass barometers in Oslo.")])
    assert ws.store.version(c.version).parent == 1 and ws.store.active() == c.version
    assert [t.decision for t in ws.store.trials(c.document_id)] == ["committed"]
    ws.close()
