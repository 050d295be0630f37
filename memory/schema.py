"""Tables of the store, in SQLAlchemy 2.0 typed declarative style."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def described(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Whether these models describe a schema object (Alembic's include_object): all but the full-text index
    over passages, which migration 0006 builds in each database's own SQL (SQLite's FTS5 table and its shadow
    tables, PostgreSQL's generated tsvector column and its GIN index)."""
    return not (name or "").startswith("passages_fts") and name not in ("search", "ix_passages_search")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Document(Base):
    """A text the model was asked to learn, or a few-shot task (its JSON); deduplicated by the sha256 of its content."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="document", server_default="document")  # document | task
    source: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | committed | rejected | collected
    created_at: Mapped[datetime] = mapped_column(default=now)
    probes: Mapped[list[Probe]] = relationship(back_populates="document", order_by="Probe.id")


class Passage(Base):
    """A piece of a document cut along its structure (`memory.passages`), written with the document; the
    store's full-text index over them (SQLite FTS5, PostgreSQL tsvector) is what retrieval searches."""

    __tablename__ = "passages"
    __table_args__ = (UniqueConstraint("document_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # 0, 1, ... in the document
    text: Mapped[str] = mapped_column(Text)


class Probe(Base):
    """A closed-book question about a document, held out from self-edit generation."""

    __tablename__ = "probes"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # supplied | generated | cloze
    passage: Mapped[int | None]  # position of the passage it asks about (None: supplied for the whole document)
    document: Mapped[Document] = relationship(back_populates="probes")


class SelfEdit(Base):
    """Training data the policy wrote for a document, and the sequences parsed from it."""

    __tablename__ = "self_edits"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    policy_version: Mapped[int] = mapped_column(default=0)
    format: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    sequences: Mapped[list[Any]]  # [[prompt, completion], ...], the document included
    # A document of several passages: its self-edit passage by passage, [[prompt, text], ...] (`text` is
    # then their texts joined, `prompt` empty); [] for a document of one passage.
    parts: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Trial(Base):
    """One candidate self-edit trained and verified: its cost, scores, reward and the gate's decision."""

    __tablename__ = "trials"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    self_edit_id: Mapped[int] = mapped_column(ForeignKey("self_edits.id", ondelete="CASCADE"), index=True)
    parent_version: Mapped[int]  # knowledge version the candidate was trained from (0: base model)
    config: Mapped[dict[str, Any]]
    losses: Mapped[list[Any]]
    tokens: Mapped[int]
    train_seconds: Mapped[float]
    scores: Mapped[dict[str, Any]]  # per probe: question, answer, before/after predictions and grades
    new_before: Mapped[float]
    new_after: Mapped[float]
    retention_before: Mapped[float | None]
    retention_after: Mapped[float | None]
    general_before: Mapped[float | None]  # None for task trials: a task adapter only ever answers its task
    general_after: Mapped[float | None]
    general_drift: Mapped[float | None]  # mean KL(base ‖ candidate) per token on the general set; None before 0005
    reward: Mapped[float]
    passed: Mapped[bool]
    decision: Mapped[str] = mapped_column(String(16))  # committed | passed | rejected
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Version(Base):
    """An immutable adapter version of one lineage (knowledge or policy); files live in the adapter store."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("kind", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[int]
    parent: Mapped[int]  # 0: the bare base model
    files: Mapped[dict[str, Any]]  # file name -> sha256
    metrics: Mapped[dict[str, Any]]
    documents: Mapped[list[Any]]  # ids of the documents this version learned (itself, not its ancestors)
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("trials.id"))
    pruned: Mapped[bool] = mapped_column(default=False, server_default=false())  # files deleted, history kept
    created_at: Mapped[datetime] = mapped_column(default=now)


class Tag(Base):
    """A name a user gave a version (`seal versions tag v3 NAME`); tagged versions are never pruned."""

    __tablename__ = "tags"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)


class Active(Base):
    """The active version of each lineage; the source of truth the adapter store's pointer mirrors."""

    __tablename__ = "active"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int]


class Event(Base):
    """Something that happened: a stage finished, a rollback, a rejected document."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), index=True)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=now)


class Job(Base):
    """Work queued for the long-running agent (`seal run`): a document from `seal submit`, the API or the inbox."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))  # submit | api | inbox
    kind: Mapped[str] = mapped_column(String(16), default="document", server_default="document")  # document | task
    source: Mapped[str] = mapped_column(String(1024))  # for inbox jobs, the file's path in the inbox
    title: Mapped[str] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[Any]]  # supplied probes, [[question, answer], ...]
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # times an agent started it
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the ingest's outcome, once done
    error: Mapped[str] = mapped_column(Text, default="")  # why it failed
    created_at: Mapped[datetime] = mapped_column(default=now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ChatTurn(Base):
    """One exchange in chat or ask, with the knowledge version that answered."""

    __tablename__ = "chat_turns"
    id: Mapped[int] = mapped_column(primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)
