"""Alembic environment: runs on the connection the Store hands over (no alembic.ini, no URL here)."""

from alembic import context

from memory.schema import Base, described

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  include_object=described)
with context.begin_transaction():
    context.run_migrations()
