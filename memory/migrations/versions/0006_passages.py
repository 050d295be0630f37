"""Documents are cut into passages, indexed for full-text search in the database itself: an FTS5 table kept
by triggers on SQLite, a generated tsvector column with a GIN index on PostgreSQL. Existing documents are cut
here, at the default passage budget. A long document is learned passage by passage: probes name the passage
they ask about, and a self-edit keeps its passages' parts.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from memory.passages import split_passages

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    passages = op.create_table(
        "passages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("document_id", "position"),
    )
    op.create_index("ix_passages_document_id", "passages", ["document_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(text, content='passages', content_rowid='id', "
                   "tokenize='porter unicode61')")
        op.execute("CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN "
                   "INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text); END")
        op.execute("CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN "
                   "INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text); END")
    else:
        op.execute("ALTER TABLE passages ADD COLUMN search tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED")
        op.execute("CREATE INDEX ix_passages_search ON passages USING gin (search)")
    with op.batch_alter_table("probes") as batch:
        batch.add_column(sa.Column("passage", sa.Integer(), nullable=True))
    with op.batch_alter_table("self_edits") as batch:
        batch.add_column(sa.Column("parts", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    documents = sa.table("documents", sa.column("id", sa.Integer()), sa.column("kind", sa.String()),
                         sa.column("text", sa.Text()))
    rows = op.get_bind().execute(sa.select(documents.c.id, documents.c.text).where(documents.c.kind == "document"))
    op.bulk_insert(passages, [{"document_id": doc_id, "position": i, "text": passage}
                              for doc_id, text in rows for i, passage in enumerate(split_passages(text))])


def downgrade() -> None:
    with op.batch_alter_table("self_edits") as batch:
        batch.drop_column("parts")
    with op.batch_alter_table("probes") as batch:
        batch.drop_column("passage")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER passages_fts_delete")
        op.execute("DROP TRIGGER passages_fts_insert")
        op.execute("DROP TABLE passages_fts")
    op.drop_index("ix_passages_document_id", "passages")
    op.drop_table("passages")
