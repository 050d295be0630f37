"""Alembic migrations of the store's schema: named, ordered revisions, never edited once released."""
