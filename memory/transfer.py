"""Copy every row of one store into another (any backends): read in one consistent snapshot, written in
one transaction, ids kept. `seal backup` and `seal restore` are built on it."""

from __future__ import annotations

from sqlalchemy import func, insert, select, text

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
        if dst.dialect.name == "postgresql":
            # Rows came with their ids; move each id sequence past them so new rows do not collide.
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement in (True, "auto") and counts[table.name]:
                    top = dst.execute(select(func.max(table.c.id))).scalar()
                    dst.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :n)"),
                                {"t": table.name, "n": top})
    return counts
