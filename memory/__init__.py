"""The SQL store (SQLAlchemy 2.0): documents, probes, self-edits, trials, versions, events, jobs, chat turns.
All query code lives here; callers never build SQL."""

from memory.schema import ChatTurn, Document, Event, Job, Passage, Probe, SelfEdit, Tag, Trial, Version
from memory.store import Hit, Store

__all__ = ["ChatTurn", "Document", "Event", "Hit", "Job", "Passage", "Probe", "SelfEdit", "Store", "Tag", "Trial", "Version"]
