"""Schema migrations: a new database is created by the migrations, which match the ORM models exactly;
an existing database at an older revision is upgraded in place and keeps its rows."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from memory import Store
from memory.schema import Base, described


def test_migrations_create_exactly_the_models_schema(database_url):
    """No drift: after `upgrade head`, autogenerate finds nothing to change against the models."""
    store = Store(database_url)
    assert store.revision() == Store.head()
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"include_object": described}),
                                Base.metadata)
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    store.close()


def test_first_released_schema_keeps_its_rows(database_url):
    """A database made by the first release (revision 0001) with rows in it opens, is upgraded to head, and
    keeps every row; the columns added later get their defaults."""
    from alembic import command
    from sqlalchemy import create_engine

    from memory.store import _alembic_config

    engine = create_engine(database_url)
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
        connection.execute(text(
            "INSERT INTO documents (id, sha256, source, title, text, status, created_at) "
            "VALUES (1, 'abc', 'q.md', 'Quellmoor', 'Quellmoor has violet sand.', 'committed', '2026-01-01')"))
        connection.execute(text("INSERT INTO probes (document_id, question, answer, source) "
                                "VALUES (1, 'What colour is the sand?', 'violet', 'supplied')"))
        connection.execute(text("INSERT INTO versions (kind, number, parent, files, metrics, documents, created_at) "
                                "VALUES ('knowledge', 1, 0, '{}', '{}', '[1]', '2026-01-01')"))
    engine.dispose()

    store = Store(database_url)
    assert store.upgraded == ("0001", Store.head()) and store.revision() == Store.head()
    assert store.document(1).text == "Quellmoor has violet sand."
    assert [p.answer for p in store.probes(1)] == ["violet"]
    [version] = store.versions()
    assert (version.number, version.documents, version.pruned) == (1, [1], False)
    assert store.tags() == {}
    # Revision 0006 cut the document into passages and indexed them for search.
    assert [p.text for p in store.passages(1)] == ["Quellmoor has violet sand."]
    assert [h.document_id for h in store.search("Which sand is violet?", 3, [1])] == [1]
    store.close()
