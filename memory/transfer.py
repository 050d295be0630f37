"""Copy every row of one store into another (any backends): read in one consistent snapshot, written in
one transaction, ids kept. `seal backup` and `seal restore` are built on it."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, text

from memory.schema import Base
from memory.store import Store

CHUNK = 1000


def copy_rows(source: Store, target: Store) -> dict[str, int]:
    """All rows of `source` into the empty `target`, parents before children; returns rows per table."""
    counts: dict[str, int] = {}
    with source.engine.connect() as src, target.engine.begin() as dst:
        with Store.snapshot(src):
            for table in Base.metadata.sorted_tables:
                counts[table.name] = 0
                for rows in src.execution_options(yield_per=CHUNK).execute(select(table)).mappings().partitions():
                    dst.execute(insert(table), [dict(r) for r in rows])
                    counts[table.name] += len(rows)
        reset_sequences(dst)
    return counts


def reset_sequences(connection: Connection) -> None:
    """After rows were inserted with their ids, move each PostgreSQL id sequence past them so new rows do
    not collide (SQLite needs nothing)."""
    if connection.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.autoincrement in (True, "auto"):
            top = connection.execute(select(func.max(table.c.id))).scalar()
            if top is not None:
                connection.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :n)"),
                                   {"t": table.name, "n": top})
