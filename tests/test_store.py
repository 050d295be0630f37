"""The SQL store: deduplication, versions, active pointer, lineage, replay sampling, transactions."""

import pytest
from sqlalchemy.exc import IntegrityError

from memory import SelfEdit, Store, Trial, Version
from seal.errors import NotFoundError


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.close()


def trial_for(store, doc_id, sequences, reward=0.5):
    se = store.add_self_edits([SelfEdit(document_id=doc_id, format="rewrite", prompt="p", text="t",
                                        sequences=sequences)])[0]
    return store.add_trial(Trial(document_id=doc_id, self_edit_id=se.id, parent_version=0, config={}, losses=[],
                                 tokens=1, train_seconds=0.1, scores={}, new_before=0.0, new_after=reward,
                                 retention_before=None, retention_after=None, general_before=1.0,
                                 general_after=1.0, reward=reward, passed=True, decision="passed", reason="ok"))


def commit(store, doc_id, number, parent, sequences):
    trial = trial_for(store, doc_id, sequences)
    return store.commit_version(Version(kind="knowledge", number=number, parent=parent, files={}, metrics={},
                                        documents=[doc_id], trial_id=trial.id), doc_id)


def test_documents_are_deduplicated_by_content(store):
    a, new_a = store.add_document("Some text.", "a.md", "A")
    b, new_b = store.add_document("Some text.", "b.md", "B")
    assert new_a and not new_b and a.id == b.id


def test_commit_rollback_and_lineage(store):
    """Commit moves the active pointer and marks trial and document; rollback moves it back and deletes
    nothing; lineage follows parents."""
    d1, _ = store.add_document("one", "1", "1")
    d2, _ = store.add_document("two", "2", "2")
    d3, _ = store.add_document("three", "3", "3")
    assert store.active() == 0 and store.next_number() == 1
    commit(store, d1.id, 1, 0, [["", "one"]])
    commit(store, d2.id, 2, 1, [["", "two"]])
    assert store.active() == 2 and store.document(d2.id).status == "committed"
    assert store.trials(d2.id)[0].decision == "committed"
    assert store.rollback(1) == 2 and store.active() == 1
    commit(store, d3.id, 3, 1, [["", "three"]])
    assert store.lineage(3) == [1, 3] and store.lineage(2) == [1, 2]
    assert [v.number for v in store.versions()] == [1, 2, 3]
    assert store.learned_documents([1, 3]) == [d1.id, d3.id]
    assert store.version_of_document(d2.id) == 2
    assert [e.kind for e in store.events()] == ["commit", "commit", "rollback", "commit"]
    with pytest.raises(NotFoundError, match="v9"):
        store.rollback(9)
    assert store.active() == 3


def test_replay_samples_only_the_given_lineage(store):
    d1, _ = store.add_document("one", "1", "1")
    d2, _ = store.add_document("two", "2", "2")
    commit(store, d1.id, 1, 0, [["", "a1"], ["", "a2"]])
    commit(store, d2.id, 2, 0, [["", "b1"]])
    assert sorted(map(tuple, store.replay_sequences([1], 10, seed=0))) == [("", "a1"), ("", "a2")]
    assert store.replay_sequences([1, 2], 2, seed=3) == store.replay_sequences([1, 2], 2, seed=3)
    assert store.replay_sequences([], 5, seed=0) == []


def test_failed_transaction_leaves_nothing(store):
    """A commit whose version number already exists fails whole: no pointer move, no status change."""
    d1, _ = store.add_document("one", "1", "1")
    d2, _ = store.add_document("two", "2", "2")
    commit(store, d1.id, 1, 0, [])
    with pytest.raises(IntegrityError):
        commit(store, d2.id, 1, 0, [])
    assert store.active() == 1 and store.document(d2.id).status == "pending"
    assert len(store.versions()) == 1


def test_retention_probes_sample_only_earlier_documents(store):
    d1, _ = store.add_document("one", "1", "1")
    d2, _ = store.add_document("two", "2", "2")
    store.set_probes(d1.id, [("q1", "a1", "supplied"), ("q2", "a2", "supplied")])
    store.set_probes(d2.id, [("q3", "a3", "supplied")])
    sample = store.retention_probes(d2.id, [d1.id, d2.id], 5, seed=0)
    assert [p.question for p in sample] == ["q1", "q2"]
    assert store.retention_probes(d2.id, [d2.id], 5, seed=0) == []


def test_bad_database_url_is_a_config_error(tmp_path):
    from seal.errors import ConfigError

    for url in ("nonsense://x", "sqlite:////nonexistent-dir/x/seal.db"):
        with pytest.raises(ConfigError, match="cannot open the database"):
            Store(url)


def test_opening_without_upgrade_changes_nothing(tmp_path):
    store = Store.at_home(tmp_path, upgrade=False)
    assert store.revision() is None and store.upgrade() is None and store.revision() == Store.head()


def test_plain_postgresql_url_uses_the_bundled_driver(postgres_url):
    """`postgresql://…` (what users paste) opens with psycopg 3, which is installed, not psycopg2."""
    store = Store(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    assert store.engine.dialect.driver == "psycopg" and store.revision() == Store.head()
    store.close()


def test_snapshot_reads_one_moment(database_url):
    """Inside `Store.snapshot` every read sees the same moment although another connection commits
    meanwhile (backups rely on it; SQLite's driver would otherwise not begin until the first write)."""
    from sqlalchemy import text

    store = Store(database_url)
    store.add_document("a", "a", "a")
    with store.engine.connect() as connection, Store.snapshot(connection):
        first = connection.execute(text("SELECT count(*) FROM documents")).scalar()
        store.add_document("b", "b", "b")
        assert connection.execute(text("SELECT count(*) FROM documents")).scalar() == first == 1
    assert len(store.documents()) == 2
    store.close()


def test_probes_of_any_number_of_documents(store):
    """Retention reads the probes of every earlier document; 70,000 ids pass the parameter limits
    (SQLite: 32,766 as built by default; PostgreSQL: 65,535)."""
    a, _ = store.add_document("Alpha text.", "a.md", "A")
    b, _ = store.add_document("Beta text.", "b.md", "B")
    store.set_probes(a.id, [("qa", "x", "supplied")])
    store.set_probes(b.id, [("qb1", "y", "supplied"), ("qb2", "z", "supplied")])
    probes = store.probes_of(list(range(1, 70_001)), exclude_document=a.id)
    assert [p.question for p in probes] == ["qb1", "qb2"]
