"""Retrieval: documents cut into passages, the store's own full-text search on both backends, the rule for
which documents it covers (rollback included), and answers from either memory or both in `seal ask` and
the API."""

import json
import re

import httpx
import pytest

from memory import SelfEdit, Store, Trial, Version
from memory.passages import split_passages
from tests.test_serve import serving


def test_passages_keep_every_word_in_order_within_the_budget():
    section = " ".join(f"Sentence number {i} is here." for i in range(60))
    text = f"# Title\n\nIntro paragraph.\n\n## Part one\n\n{section}\n\n## Part two\n\nShort.\n\n{'word ' * 130}"
    passages = split_passages(text, 50)
    assert all(len(p.split()) <= 50 for p in passages)
    headings = re.compile(r"^#+ .*$", re.MULTILINE)
    words = lambda s: headings.sub("", s).split()
    assert [w for p in passages for w in words(p)] == words(text)
    # A section's passages each begin with its heading; sentences are not cut where a paragraph need not be.
    part_one = [p for p in passages if "Sentence number" in p]
    assert len(part_one) > 1 and all(p.startswith("## Part one\n\n") for p in part_one)
    assert all(p.rstrip().endswith(".") for p in part_one)
    assert split_passages("One short document.") == ["One short document."]


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.close()


def decide(store, doc_id, passed):
    edit = store.add_self_edits([SelfEdit(document_id=doc_id, format="rewrite", prompt="p", text="t", sequences=[])])[0]
    return store.add_trial(Trial(document_id=doc_id, self_edit_id=edit.id, parent_version=0, config={}, losses=[],
                                 tokens=1, train_seconds=0.1, scores={}, new_before=0.0, new_after=0.0,
                                 retention_before=None, retention_after=None, general_before=1.0, general_after=1.0,
                                 reward=0.0, passed=passed, decision="passed" if passed else "rejected", reason="r"),
                           document_status=None if passed else "rejected")


def test_coverage_follows_the_lineage_and_a_rollback(store):
    """Retrieval covers what the version's lineage learned and what the gate rejected; never pending
    documents or tasks; a rollback drops the documents of the versions it leaves."""
    docs = {name: store.add_document(f"The {name} tower is made of {stone} stone.", f"{name}.md", name)[0].id
            for name, stone in (("north", "granite"), ("south", "marble"), ("east", "basalt"), ("west", "slate"))}
    task, _ = store.add_document('{"train": []}', "t.json", "granite task", kind="task")
    assert store.passages(task.id) == []
    for number, name in ((1, "north"), (2, "south")):
        trial = decide(store, docs[name], passed=True)
        store.commit_version(Version(kind="knowledge", number=number, parent=number - 1, files={}, metrics={},
                                     documents=[docs[name]], trial_id=trial.id), docs[name])
    decide(store, docs["east"], passed=False)  # rejected; "west" stays pending

    assert store.retrievable_documents(2) == sorted([docs["north"], docs["south"], docs["east"]])
    found = lambda query: [h.document_id for h in store.search(query, 5, store.retrievable_documents(store.active()))]
    assert found("Which tower is marble?")[0] == docs["south"]
    assert found("basalt") == [docs["east"]] and found("slate") == [] and found("the of") == []
    hit = store.search("granite", 1, [docs["north"]])[0]
    assert (hit.title, hit.position, hit.text) == ("north", 0, "The north tower is made of granite stone.")

    store.rollback(1)
    assert store.retrievable_documents(store.active()) == sorted([docs["north"], docs["east"]])
    assert found("marble") == []
    assert store.search("marble", 5, []) == [] and store.search("?!", 5, list(docs.values())) == []


def test_ask_answers_from_either_memory_or_both(learned):
    """`seal ask --context`: none answers closed-book with v1, retrieve puts the passage in context for the
    base model, both for v1; after a rollback to v0 the document is in neither memory."""
    question = "Who built the Brannock Lighthouse?"
    ask = lambda context: json.loads(learned.run("ask", question, "--context", context, "--json").stdout)
    none, retrieve, both = ask("none"), ask("retrieve"), ask("both")
    assert (none["version"], none["passages"]) == (1, [])
    assert retrieve["version"] == 0 and both["version"] == 1
    for answer in (retrieve, both):
        [passage] = answer["passages"]
        assert passage["document_id"] == 1 and passage["position"] == 0
    bad = learned.run("ask", question, "--context", "web")
    assert bad.returncode != 0 and b"context 'web': use one of none, retrieve, both" in bad.stderr

    assert learned.run("versions", "rollback", "v0").returncode == 0
    assert ask("retrieve")["passages"] == [] and ask("both")["version"] == 0


def test_api_chat_takes_a_context(learned, monkeypatch):
    from agent.workspace import Workspace
    from api import create_app

    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    ws = Workspace.open()
    with serving(create_app(ws, max_tokens_limit=64)) as url:
        ask = {"model": "seal", "max_tokens": 8, "messages": [{"role": "user", "content": "Who built the lighthouse?"}]}
        plain = httpx.post(url + "/v1/chat/completions", json=ask).json()
        assert plain["model"] == "seal@v1" and "passages" not in plain
        for context, model in (("retrieve", "seal@v0"), ("both", "seal@v1")):
            reply = httpx.post(url + "/v1/chat/completions", json={**ask, "context": context}).json()
            assert reply["model"] == model
            assert [(p["document_id"], p["position"]) for p in reply["passages"]] == [(1, 0)]
        with httpx.stream("POST", url + "/v1/chat/completions", json={**ask, "context": "both", "stream": True}) as r:
            first = json.loads(next(line for line in r.iter_lines() if line.startswith("data: "))[6:])
        assert first["passages"][0]["document_id"] == 1
        bad = httpx.post(url + "/v1/chat/completions", json={**ask, "context": "web"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "context"


def test_the_configured_context_applies_where_it_can(learned, monkeypatch):
    """With answer.context = both, a request that names no context answers from both memories; one to a loaded
    adapter answers closed-book (the default does not make it an error); asking that adapter for a context is."""
    from agent.workspace import Workspace
    from api import create_app
    from seal import config as seal_config

    monkeypatch.setenv("SEAL_HOME", str(learned.home))
    ws = Workspace.open(seal_config.load({"answer": {"context": "both"}}))
    folder = ws.adapters.verified("knowledge", 1, ws.store.version(1).files)
    with serving(create_app(ws, max_tokens_limit=64)) as url:
        ask = {"model": "seal", "max_tokens": 8, "messages": [{"role": "user", "content": "Who built the lighthouse?"}]}
        reply = httpx.post(url + "/v1/chat/completions", json=ask).json()
        assert reply["model"] == "seal@v1" and [p["document_id"] for p in reply["passages"]] == [1]
        assert httpx.post(url + "/v1/load_lora_adapter", json={"lora_name": "mine", "lora_path": str(folder)}).status_code == 200
        plain = httpx.post(url + "/v1/chat/completions", json={**ask, "model": "mine"})
        assert plain.status_code == 200 and "passages" not in plain.json(), plain.text
        asked = httpx.post(url + "/v1/chat/completions", json={**ask, "model": "mine", "context": "both"})
        assert asked.status_code == 400 and asked.json()["error"]["param"] == "context"
