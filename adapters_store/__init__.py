"""Versioned adapter files on disk: immutable zero-padded version folders in PEFT's format plus a
metadata sidecar, written atomically, checksummed, with an active pointer that mirrors the database."""

from adapters_store.versions import AdapterStore, parse_version, version_name

__all__ = ["AdapterStore", "parse_version", "version_name"]
