"""Schema migrations: a new database is created by the migrations, which match the ORM models exactly;
an existing database at an older revision is upgraded in place and keeps its rows."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from memory import Store
from memory.schema import Base


def test_migrations_create_exactly_the_models_schema(database_url):
    """No drift: after `upgrade head`, autogenerate finds nothing to change against the models."""
    store = Store(database_url)
    assert store.revision() == Store.head()
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    store.close()


def test_first_released_schema_keeps_its_rows(database_url):
    """A database made at revision 0001 (the first release) opens, upgrades to head and keeps every row."""
    store = Store(database_url)
    doc, _ = store.add_document("Quellmoor has violet sand.", "q.md", "Quellmoor")
    store.set_probes(doc.id, [("What colour is the sand?", "violet", "supplied")])
    store.add_chat_turn("hi", "hello", 0)
    store.close()

    reopened = Store(database_url)
    assert reopened.revision() == Store.head() and reopened.upgraded is None
    assert reopened.document(doc.id).text == "Quellmoor has violet sand."
    assert [p.answer for p in reopened.probes(doc.id)] == ["violet"]
    assert [t.answer for t in reopened.chat_turns()] == ["hello"]
    reopened.close()
