"""ReST-EM on the tiny model: the selection rule, collect (scores every candidate, commits nothing),
the policy update (loss on the self-edit only, a policy version with its trials), policy lineage and
rollback, and the schedule. The tiny model learns nothing measurable, so where an update needs
positive rewards the test writes them into the logged trials, as a real collect would have."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import update as sql_update

from adapters_store.versions import version_name
from agent import policy
from agent.ingest import DocumentInput, ingest
from agent.versions import rollback
from agent.workspace import Workspace
from memory import SelfEdit, Trial
from model_runtime import TrainingExample
from model_runtime.training import IGNORE, encode
from seal import config as seal_config
from seal.errors import InputError, SealError
from tests.conftest import DOCUMENT, QUESTIONS
from tests.test_bench import run_cli

SUPPLIED = tuple((q["question"], q["answer"]) for q in QUESTIONS)
OTHER = "Quellmoor is an island with 2,314 residents. Its beaches have violet sand."
FAITHFUL = "Morwen Hale built the Brannock Lighthouse in 1847."  # a self-edit sentence true to DOCUMENT


def trial(id: int, document: int, reward: float, tokens: int = 100, f1: tuple[float, ...] = ()) -> tuple[Trial, SelfEdit]:
    """A logged candidate; `f1` gives its probes' token F1 after training (0 before), as verify records it."""
    scores = {"new": [{"question": f"q{i}", "f1_before": 0.0, "f1_after": x} for i, x in enumerate(f1)]}
    return (Trial(id=id, document_id=document, reward=reward, tokens=tokens, scores=scores),
            SelfEdit(id=id, document_id=document, prompt=f"prompt {document}", text=f"edit {id}"))


def test_selection_keeps_the_best_positive_candidate_per_document():
    """Best reward per document; a document whose candidates all scored ≤ 0 is left out; ties go to
    fewer trained tokens, then to the earlier trial."""
    chosen = policy.select([trial(1, 1, 0.2), trial(2, 1, 0.4), trial(3, 1, 0.1),
                            trial(4, 2, 0.0), trial(5, 2, -0.2),
                            trial(6, 3, 0.4, tokens=300), trial(7, 3, 0.4, tokens=200), trial(8, 3, 0.4, tokens=200)])
    assert [(e.document_id, e.trial_id) for e in chosen] == [(1, 2), (3, 7)]
    assert policy.select([trial(1, 1, 0.0), trial(2, 1, -0.4)]) == []


def test_equal_rewards_go_to_the_larger_token_f1_gain():
    """Among candidates with the same reward, the one whose answers came closer to the gold answers wins,
    before the shorter one; F1 never outranks reward, and rewards equal up to float rounding tie."""
    chosen = policy.select([trial(1, 1, 0.2, tokens=100, f1=(1.0, 0.2)), trial(2, 1, 0.2, tokens=300, f1=(1.0, 0.6)),
                            trial(3, 2, 0.4, f1=(0.5,)), trial(4, 2, 0.2, f1=(1.0,)),
                            trial(5, 3, 0.2, f1=(0.5,)), trial(6, 3, 0.6 - 0.4, f1=(1.0,))])
    assert [e.trial_id for e in chosen] == [2, 3, 6]
    assert policy.f1_gain(trial(7, 4, 0.2, f1=(1.0, 0.5))[0]) == pytest.approx(0.75)
    assert policy.f1_gain(Trial(id=8, document_id=5, reward=0.0, tokens=1, scores={"held_out": []})) == 0.0


def test_selection_threshold_keeps_only_rewards_above_it():
    """With min_reward 0.25, a best self-edit of +0.25 (one more of four probes) is left out and +0.5 kept;
    a reward of 0.1 + 0.2 is not taken for more than 0.3 by float rounding."""
    trials = [trial(1, 1, 0.25), trial(2, 2, 0.5), trial(3, 2, 0.25), trial(4, 3, 0.75)]
    assert [e.trial_id for e in policy.select(trials, 0.25)] == [2, 4]
    assert [e.trial_id for e in policy.select(trials, 0.5)] == [4]
    assert policy.select([trial(5, 4, 0.1 + 0.2)], 0.3) == []


def test_policy_pairs_carry_loss_on_the_self_edit_only(home):
    """A (prompt → self-edit) pair trains on the self-edit's tokens; every prompt token is IGNORE."""
    ws = Workspace.open()
    prompt = ws.lm.chat_prompt([{"role": "user", "content": "Rewrite the passage."}])
    ids, labels = encode(ws.lm, TrainingExample(prompt, "Morwen Hale built it.<|im_end|>"), "completion", 256)
    n = len(ws.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE for label in labels[:n]) and labels[n:] == ids[n:] and len(ids) > n


def _collect(ws: Workspace, *docs: tuple[str, str, tuple]) -> list:
    return list(policy.collect(ws, [DocumentInput(f"{title}.md", title, text, qs) for title, text, qs in docs]))


def _reward(ws: Workspace, trial_ids: list[int], reward: float) -> None:
    with ws.store.session() as s:
        s.execute(sql_update(Trial).where(Trial.id.in_(trial_ids)).values(reward=reward))


def _text(ws: Workspace, trials: list[Trial], text: str) -> None:
    """Replace what the tiny model wrote (never faithful, so the default filter would keep nothing)."""
    with ws.store.session() as s:
        s.execute(sql_update(SelfEdit).where(SelfEdit.id.in_([t.self_edit_id for t in trials])).values(text=text))


def test_collect_scores_every_candidate_and_commits_nothing(home):
    """K candidates per document, each a trial with its reward, from the active knowledge version;
    no knowledge version, no adapter files, scratch cleaned, document marked collected."""
    ws = Workspace.open(seal_config.load({"self_edit": {"k": 3}}))
    [result] = _collect(ws, ("Lighthouse", DOCUMENT, SUPPLIED))
    trials = ws.store.trials(result.document_id)
    assert len(trials) == 3 and {t.parent_version for t in trials} == {0}
    assert len({ws.store.self_edit(t.self_edit_id).text for t in trials}) > 1, "K samples should differ"
    assert ws.store.versions() == [] and ws.store.document(result.document_id).status == "collected"
    assert not (home / "adapters" / "knowledge").exists()
    assert not list((home / "adapters" / ".scratch").iterdir())
    # A collected document can still be learned afterwards; learning it does not undo the log.
    [learned] = ingest(ws, [DocumentInput("Lighthouse.md", "Lighthouse", DOCUMENT)])
    assert learned.status == "committed" and len(ws.store.trials(result.document_id)) == 3 + 3


def test_with_the_filter_the_policy_learns_what_each_self_edit_trained_on(home):
    """With self_edit.faithful_only (the default) an example is its self-edit cut to the faithful sentences it
    trained on, and a candidate with none is not selected even at a higher reward: its reward was the
    passage's. With the filter off, the self-edit as written, and the best reward."""
    ws = Workspace.open(seal_config.load({"self_edit": {"k": 2}}))
    [a] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
    partly, invented = ws.store.trials(a.document_id)
    _text(ws, [partly], f"{FAITHFUL} Its keeper was Captain Zorbo of Mars.")
    _text(ws, [invented], "The moon over the lighthouse is made of cheese from Venus.")
    _reward(ws, [partly.id], 0.25)
    _reward(ws, [invented.id], 0.5)
    [example] = policy.training_set(ws)
    assert (example.trial_id, example.completion) == (partly.id, FAITHFUL)
    assert policy.status(ws)["examples"] == 1
    as_written = Workspace.open(seal_config.load({"self_edit": {"faithful_only": False}}), lm=ws.lm)
    assert [(e.trial_id, e.completion) for e in policy.training_set(as_written)] == [
        (invented.id, "The moon over the lighthouse is made of cheese from Venus.")]
    # A few-shot task's plan is not a document's self-edit: it trains, and is learned from, as written.
    with ws.store.session() as s:
        s.execute(sql_update(SelfEdit).where(SelfEdit.id == invented.self_edit_id).values(format="task_plan"))
    assert [e.trial_id for e in policy.training_set(ws)] == [invented.id]


def test_update_commits_policy_versions_in_a_lineage(home):
    """Round 1 learns from policy v0's best positive self-edits → policy v1 (parent v0) listing its
    trials; self-edits are then written by v1; round 2 → v2 (parent v1); rollback to v1 makes it active
    again, and the next self-edits are v1's."""
    ws = Workspace.open(seal_config.load({"self_edit": {"k": 2}}))
    with pytest.raises(InputError, match="no document has a self-edit from policy v0 with reward above 0"):
        policy.update(ws)
    [a, b] = _collect(ws, ("A", DOCUMENT, SUPPLIED), ("B", OTHER, ()))
    first_a = ws.store.trials(a.document_id)[0].id
    _text(ws, ws.store.trials(a.document_id)[:1], FAITHFUL)
    _reward(ws, [first_a], 0.5)
    strict = Workspace.open(seal_config.load({"policy": {"min_reward": 0.5}}), lm=ws.lm)
    assert policy.training_set(strict) == [] and policy.status(strict)["examples"] == 0
    v1 = policy.update(ws)
    assert (v1.kind, v1.number, v1.parent) == ("policy", 1, 0)
    assert v1.metrics["trials"] == [first_a] and v1.documents == [a.document_id]
    assert ws.store.active("policy") == 1
    assert json.loads((home / "adapters" / "policy" / "v0001" / "seal.json").read_text())["trials"] == [first_a]

    [c] = _collect(ws, ("C", DOCUMENT + " It is green.", ()))
    assert {ws.store.self_edit(t.self_edit_id).policy_version for t in ws.store.trials(c.document_id)} == {1}
    _text(ws, ws.store.trials(c.document_id), FAITHFUL)
    _reward(ws, [t.id for t in ws.store.trials(c.document_id)], 0.25)
    v2 = policy.update(ws)
    assert (v2.number, v2.parent) == (2, 1) and ws.store.lineage(2, "policy") == [1, 2]

    assert rollback(ws, 1, "policy") == 2 and ws.store.active("policy") == 1
    [d] = _collect(ws, ("D", OTHER + " It rains.", ()))
    assert {ws.store.self_edit(t.self_edit_id).policy_version for t in ws.store.trials(d.document_id)} == {1}


def test_schedule_runs_the_update_when_due(home):
    """update_every_positive=1: nothing is due before a positive trial exists; then one update runs."""
    ws = Workspace.open(seal_config.load({"policy": {"update_every_positive": 1}}))
    assert policy.due(ws) is None and policy.maybe_update(ws) is None
    [a] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
    _reward(ws, [t.id for t in ws.store.trials(a.document_id)], 0.2)
    assert "positive-reward" in policy.due(ws)
    assert policy.maybe_update(ws) is None, "due, but no self-edit has a faithful sentence to learn"
    _text(ws, ws.store.trials(a.document_id), FAITHFUL)
    version = policy.maybe_update(ws)
    assert version is not None and version.number == 1
    assert policy.due(ws) is None, "v1 has no trials yet, so no further update is due"
    assert [e.data["version"] for e in ws.store.events("policy_update")] == [1]


@pytest.mark.parametrize("path", ["library", "chat"])
def test_every_ingest_path_runs_the_scheduled_update(home, path, monkeypatch, capsys):
    """update_every_documents=1 with a positive self-edit to learn from: a document learned by the library's
    `ingest()`, or typed into chat's /learn, is followed by the policy update, as after `seal ingest` or a job
    of `seal run` — the schedule lives in the library, not in the callers that remember it."""
    every = {"policy": {"update_every_documents": 1}}
    ws = Workspace.open(seal_config.load({**every, "self_edit": {"k": 2}}))
    [a] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
    _text(ws, ws.store.trials(a.document_id)[:1], FAITHFUL)
    _reward(ws, [ws.store.trials(a.document_id)[0].id], 0.5)
    assert policy.due(ws) is None, "nothing committed yet, so no update is due before the ingest"
    if path == "library":
        [learned] = ingest(Workspace.open(seal_config.load(every), lm=ws.lm), [DocumentInput("B.md", "B", OTHER)])
        assert learned.status == "committed"
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(f"/learn {OTHER}\n/quit\n"))
        code, out, err = run_cli(["--set", "policy.update_every_documents=1", "chat"], capsys)
        assert code == 0 and "committed" in out, out + err
        assert "scheduled update: policy v1" in out, "chat reports the update the schedule ran"
    assert ws.store.active("knowledge") == 1 and ws.store.active("policy") == 1, \
        f"{path}: the committed document should have triggered the due policy update"
    [event] = ws.store.events("policy_update")
    assert "1 documents committed since policy v0" in event.data["reason"]


def test_rl_cli(home, capsys):
    """`seal rl update` without data is a one-line error; status and policy versions list in JSON."""
    code, _, err = run_cli(["rl", "update"], capsys)
    assert code == 1 and "seal rl collect" in err and len(err.strip().splitlines()) == 1, err
    code, out, _ = run_cli(["rl", "status", "--json"], capsys)
    assert code == 0 and json.loads(out)["active"] == 0 and json.loads(out)["examples"] == 0
    code, out, _ = run_cli(["versions", "list", "--kind", "policy", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"kind": "policy", "active": 0, "versions": []}
    code, _, err = run_cli(["rl", "collect"], capsys)
    assert code == 1 and "--data" in err


def test_a_rollback_during_a_policy_update_is_never_overwritten(home, monkeypatch):
    """A rollback made while an update trains (on top of v1) wins: the update is rejected with the reason, and
    no version, pointer or scratch folder is left from it (the knowledge commit's rule, one protocol)."""
    ws = Workspace.open(seal_config.load({"self_edit": {"k": 2}}))
    [a] = _collect(ws, ("A", DOCUMENT, SUPPLIED))
    _text(ws, ws.store.trials(a.document_id)[:1], FAITHFUL)
    _reward(ws, [ws.store.trials(a.document_id)[0].id], 0.5)
    assert policy.update(ws).number == 1
    [c] = _collect(ws, ("C", DOCUMENT + " It is green.", ()))
    _text(ws, ws.store.trials(c.document_id), FAITHFUL)
    _reward(ws, [t.id for t in ws.store.trials(c.document_id)], 0.5)

    trained = policy.train_lora

    def rolled_back_meanwhile(*args, **kwargs):
        result = trained(*args, **kwargs)
        rollback(ws, 0, "policy")
        return result

    monkeypatch.setattr(policy, "train_lora", rolled_back_meanwhile)
    with pytest.raises(SealError, match="policy update rejected: the policy lineage's active version moved from v1 "
                                        "to v0 while this update trained"):
        policy.update(ws)
    assert ws.store.active("policy") == 0 and [v.number for v in ws.store.versions("policy")] == [1]
    assert (home / "adapters" / "policy" / "ACTIVE").read_text().strip() == version_name(0)
    assert not list((home / "adapters" / ".scratch").iterdir())
    assert [e.data["parent"] for e in ws.store.events("policy_rejected")] == [1]
