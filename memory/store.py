"""`Store`: every read and write of the SQL store, each write one transaction."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, create_engine, event, func, select, update
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, defer, selectinload, sessionmaker

from memory.passages import PASSAGE_WORDS, split_passages
from memory.schema import Active, Base, ChatTurn, Document, Event, Job, Passage, Probe, SelfEdit, Tag, Trial, Version, now
from seal.errors import ConfigError, InputError, NotFoundError
from seal.failpoints import failpoint


@dataclass(frozen=True)
class Hit:
    """A passage found by `Store.search`, with its score (higher is better; comparable within one search)."""

    passage_id: int
    document_id: int
    title: str
    position: int
    text: str
    score: float


# Words a search ignores: they would match nearly every passage (PostgreSQL's English configuration drops them
# too; SQLite's FTS5 has no stop words of its own).
STOPWORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
    "now of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with would you your yours yourself yourselves".split())


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """The SQL store behind one database URL (SQLite file by default, any SQLAlchemy URL)."""

    def __init__(self, url: str, upgrade: bool = True):
        # A plain postgresql:// URL means the bundled driver (psycopg 3), not SQLAlchemy's default psycopg2.
        scheme, sep, rest = url.partition("://")
        self.url = url = f"postgresql+psycopg://{rest}" if sep and scheme in ("postgresql", "postgres") else url
        try:
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
            # The schema is brought to the newest revision on open; (from, to) when an existing one was upgraded.
            self.upgraded = self.upgrade() if upgrade else None
        except (ArgumentError, NoSuchModuleError, OperationalError, ImportError) as e:
            if isinstance(e, ImportError) and e.name == "psycopg":
                raise ConfigError(f"cannot open the database {url!r}: the PostgreSQL driver is not installed; "
                                  "pip install 'seal-runtime[postgres]'") from e
            raise ConfigError(f"cannot open the database {url!r}: {str(e).splitlines()[0]}; "
                              "check database_url / SEAL_DATABASE_URL") from e

    def revision(self) -> str | None:
        """The schema revision of the database (None: no schema yet)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head() -> str:
        """The newest schema revision this code knows."""
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def upgrade(self) -> tuple[str, str] | None:
        """Apply pending migrations in one transaction that holds off other upgraders (a crash or a second
        process mid-way leaves the old schema or the new, never half); returns (from, to) when an existing
        schema was upgraded."""
        head = self.head()
        if self.revision() == head:
            return None
        cfg = _alembic_config()
        with self.engine.connect() as connection:
            with self.snapshot(connection, write=True):
                current = MigrationContext.configure(connection).get_current_revision()  # again, now locked
                if current != head:
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, "head")
        return (current, head) if current not in (None, head) else None

    @staticmethod
    @contextmanager
    def snapshot(connection: Any, write: bool = False) -> Iterator[None]:
        """One real transaction on `connection`: every read sees the same moment, and DDL is transactional.
        Python's sqlite3 driver would otherwise begin only at the first write; so SQLite gets an explicit
        BEGIN (IMMEDIATE when `write`, taking the write lock at once), PostgreSQL a repeatable-read
        transaction (with `write`, an advisory lock that serialises upgraders)."""
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
        else:
            if not write:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                if write:
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(5344)")
                yield

    @classmethod
    def at_home(cls, home: Path, url: str = "", upgrade: bool = True) -> Store:
        """The store for a home directory: `url` when given, else SQLite at home/seal.db."""
        home.mkdir(parents=True, exist_ok=True)
        return cls(url or f"sqlite:///{home / 'seal.db'}", upgrade=upgrade)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # ---- documents and probes -------------------------------------------------------------------

    def add_document(self, text: str, source: str, title: str, kind: str = "document",
                     passage_words: int = PASSAGE_WORDS) -> tuple[Document, bool]:
        """The document (or task) with this content, and whether it was new. A new document's passages
        (`split_passages`, at most `passage_words` words each) are written, and indexed for search, in the
        same transaction."""
        sha = content_sha256(text)
        with self.session() as s:
            found = s.scalar(select(Document).where(Document.sha256 == sha))
            if found is not None:
                return found, False
            doc = Document(sha256=sha, kind=kind, source=source[:1024], title=title[:256], text=text)  # the columns' sizes
            s.add(doc)
            s.flush()
            if kind == "document":
                s.add_all(Passage(document_id=doc.id, position=i, text=p)
                          for i, p in enumerate(split_passages(text, passage_words)))
            return doc, True

    def passages(self, document_id: int) -> list[Passage]:
        with self.session() as s:
            return list(s.scalars(select(Passage).where(Passage.document_id == document_id).order_by(Passage.position)))

    def retrievable_documents(self, version: int) -> list[int]:
        """The documents retrieval answers from, for knowledge version `version`: those its lineage learned and
        those the gate rejected (read, though not learned). A rollback so drops the documents of the versions
        it leaves from both memories, until they are ingested again; pending, collected and task documents
        are never retrieved."""
        return sorted(set(self.learned_documents(self.lineage(version))) | set(self.rejected_documents()))

    def search(self, query: str, k: int, documents: list[int]) -> list[Hit]:
        """The `k` passages of `documents` that best match `query` by the database's own full-text search
        (SQLite: FTS5 with BM25; PostgreSQL: tsvector with ts_rank), best first. Any word of the query may
        match but the commonest English words (`STOPWORDS`, on both backends); none matching gives no hits."""
        words = [w for w in dict.fromkeys(w.lower() for w in re.findall(r"[^\W_]+", query)) if w not in STOPWORDS]
        if not words or not documents or k < 1:
            return []
        with self.session() as s:
            if s.bind.dialect.name == "sqlite":
                rows = s.execute(sql(
                    "SELECT p.id, p.document_id, p.position, p.text, -bm25(passages_fts) AS score "
                    "FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
                    "WHERE passages_fts MATCH :query AND p.document_id IN :documents "
                    "ORDER BY bm25(passages_fts), p.id LIMIT :k").bindparams(bindparam("documents", expanding=True)),
                    {"query": " OR ".join(f'"{w}"' for w in words), "documents": documents, "k": k})
            else:
                rows = s.execute(sql(
                    "SELECT p.id, p.document_id, p.position, p.text, ts_rank(p.search, q) AS score "
                    "FROM passages p, to_tsquery('english', :query) q "
                    "WHERE p.search @@ q AND p.document_id IN :documents "
                    "ORDER BY score DESC, p.id LIMIT :k").bindparams(bindparam("documents", expanding=True)),
                    {"query": " | ".join(words), "documents": documents, "k": k})
            found = rows.all()
            titles = dict(s.execute(select(Document.id, Document.title)
                                    .where(Document.id.in_({r.document_id for r in found}))).all()) if found else {}
            return [Hit(r.id, r.document_id, titles[r.document_id], r.position, r.text, float(r.score)) for r in found]

    def document(self, document_id: int) -> Document:
        with self.session() as s:
            doc = s.get(Document, document_id, options=[selectinload(Document.probes)])
            if doc is None:
                raise NotFoundError(f"document {document_id} does not exist; see `seal history`")
            return doc

    def titles(self, document_ids: list[int]) -> dict[int, str]:
        """Document id -> title, in one query."""
        with self.session() as s:
            return dict(s.execute(select(Document.id, Document.title).where(Document.id.in_(document_ids))).all())

    def find_document(self, text: str) -> Document | None:
        with self.session() as s:
            return s.scalar(select(Document).where(Document.sha256 == content_sha256(text)))

    def set_probes(self, document_id: int, probes: list[tuple[str, str, str]], passage: int | None = None) -> list[Probe]:
        """Replace the document's probes with (question, answer, source) triples; with `passage`, only those
        of that passage (its position)."""
        with self.session() as s:
            old = select(Probe).where(Probe.document_id == document_id)
            for row in s.scalars(old if passage is None else old.where(Probe.passage == passage)):
                s.delete(row)
            rows = [Probe(document_id=document_id, question=q, answer=a, source=src, passage=passage)
                    for q, a, src in probes]
            s.add_all(rows)
            s.flush()
            return rows

    def probes(self, document_id: int) -> list[Probe]:
        with self.session() as s:
            return list(s.scalars(select(Probe).where(Probe.document_id == document_id).order_by(Probe.id)))

    def probes_of(self, documents: list[int], exclude_document: int) -> list[Probe]:
        """Every probe of `documents` but one document's, by id (queried in chunks: SQLite allows at most
        32,766 parameters in one statement)."""
        ids = [d for d in documents if d != exclude_document]
        with self.session() as s:
            rows = [p for i in range(0, len(ids), 10_000)
                    for p in s.scalars(select(Probe).where(Probe.document_id.in_(ids[i:i + 10_000])))]
        return sorted(rows, key=lambda p: p.id)

    def retention_probes(self, exclude_document: int, documents: list[int], n: int, seed: int) -> list[Probe]:
        """A seeded sample of `n` probes from `documents` (earlier ones), excluding one document."""
        pool = self.probes_of(documents, exclude_document) if n else []
        return sorted(random.Random(seed).sample(pool, min(n, len(pool))), key=lambda p: p.id)

    # ---- self-edits and trials ------------------------------------------------------------------

    def add_self_edits(self, rows: list[SelfEdit]) -> list[SelfEdit]:
        with self.session() as s:
            s.add_all(rows)
            s.flush()
            return rows

    def self_edit(self, self_edit_id: int) -> SelfEdit:
        with self.session() as s:
            row = s.get(SelfEdit, self_edit_id)
            if row is None:
                raise NotFoundError(f"self-edit {self_edit_id} does not exist")
            return row

    def add_trial(self, trial: Trial, document_status: str | None = None) -> Trial:
        """Record a verified candidate; with `document_status` (its document's last candidate), also end
        the document's pending ingest as rejected or collected. A committed document stays committed."""
        with self.session() as s:
            s.add(trial)
            s.flush()
            if document_status is not None:
                s.execute(update(Document).where(Document.id == trial.document_id, Document.status == "pending")
                          .values(status=document_status))
            if document_status == "rejected":
                s.add(Event(kind="rejected", document_id=trial.document_id,
                            data={"trial": trial.id, "reason": trial.reason}))
            return trial

    def trial_of(self, self_edit_id: int, parent_version: int) -> Trial | None:
        """The trial already recorded for a candidate trained from `parent_version`, if any."""
        with self.session() as s:
            return s.scalar(select(Trial).where(Trial.self_edit_id == self_edit_id,
                                                Trial.parent_version == parent_version).order_by(Trial.id.desc()))

    def reject_trial(self, trial_id: int, document_id: int, reason: str) -> None:
        """A passing trial that may not be committed after all: it and its document become rejected."""
        with self.session() as s:
            s.execute(update(Trial).where(Trial.id == trial_id).values(decision="rejected", reason=reason))
            s.execute(update(Document).where(Document.id == document_id).values(status="rejected"))
            s.add(Event(kind="rejected", document_id=document_id, data={"trial": trial_id, "reason": reason}))

    def trial(self, trial_id: int) -> Trial:
        with self.session() as s:
            row = s.get(Trial, trial_id)
            if row is None:
                raise NotFoundError(f"trial {trial_id} does not exist")
            return row

    def trials(self, document_id: int | None = None) -> list[Trial]:
        query = select(Trial).order_by(Trial.id)
        if document_id is not None:
            query = query.where(Trial.document_id == document_id)
        with self.session() as s:
            return list(s.scalars(query))

    def trial_summaries(self, document_ids: list[int]) -> dict[int, list[Trial]]:
        """Document id -> its trials, oldest first, in one query and without the bulky per-probe scores,
        losses and config (what history pages show)."""
        query = (select(Trial).where(Trial.document_id.in_(document_ids)).order_by(Trial.id)
                 .options(defer(Trial.scores), defer(Trial.losses), defer(Trial.config)))
        found: dict[int, list[Trial]] = {d: [] for d in document_ids}
        with self.session() as s:
            for trial in s.scalars(query):
                found[trial.document_id].append(trial)
        return found

    def versions_learning(self, document_ids: list[int], kind: str = "knowledge") -> dict[int, Version]:
        """Document id -> the version whose committed trial learned it (newest if several), in one query."""
        query = (select(Trial.document_id, Version).join(Version, Version.trial_id == Trial.id)
                 .where(Trial.document_id.in_(document_ids), Version.kind == kind).order_by(Version.number))
        with self.session() as s:
            return {document_id: version for document_id, version in s.execute(query)}

    def recorded_answers(self, version: int) -> dict[str, str]:
        """Greedy answers knowledge version `version` (0: the base) already gave, question -> answer: the
        "before" answers of trials trained from it and the "after" answers of the trial that became it."""
        with self.session() as s:
            before = s.scalars(select(Trial.scores).where(Trial.parent_version == version).order_by(Trial.id))
            answers = {row["question"]: row["before"] for scores in before for rows in scores.values() for row in rows}
            if version:
                own = s.scalar(select(Trial.scores).join(Version, Version.trial_id == Trial.id)
                               .where(Version.kind == "knowledge", Version.number == version))
                answers |= {row["question"]: row["after"] for rows in (own or {}).values() for row in rows}
        return answers

    def replay_sequences(self, versions: list[int], n: int, seed: int) -> list[list[str]]:
        """A seeded sample of `n` training sequences from the self-edits committed in `versions`."""
        if not versions or n == 0:
            return []
        with self.session() as s:
            rows = s.scalars(select(SelfEdit.sequences).join(Trial, Trial.self_edit_id == SelfEdit.id)
                             .join(Version, Version.trial_id == Trial.id)
                             .where(Version.kind == "knowledge", Version.number.in_(versions)).order_by(Version.number))
            pool = [seq for sequences in rows for seq in sequences]
        return random.Random(seed).sample(pool, min(n, len(pool)))

    def policy_trials(self, policy_version: int) -> list[tuple[Trial, SelfEdit]]:
        """Every trial of a self-edit written by policy version `policy_version`, with that self-edit."""
        with self.session() as s:
            rows = s.execute(select(Trial, SelfEdit).join(SelfEdit, Trial.self_edit_id == SelfEdit.id)
                             .where(SelfEdit.policy_version == policy_version).order_by(Trial.id))
            return [(t, e) for t, e in rows]

    def documents_by_policy(self) -> dict[int, set[int]]:
        """Policy version -> the documents it wrote self-edits for."""
        with self.session() as s:
            out: dict[int, set[int]] = {}
            for policy, document in s.execute(select(SelfEdit.policy_version, SelfEdit.document_id).distinct()):
                out.setdefault(policy, set()).add(document)
            return out

    def versions_since(self, kind: str, after: datetime | None) -> int:
        """How many versions of a lineage were committed after `after` (all of them for None)."""
        query = select(func.count()).select_from(Version).where(Version.kind == kind)
        if after is not None:
            query = query.where(Version.created_at > after)
        with self.session() as s:
            return s.scalar(query) or 0

    # ---- versions -------------------------------------------------------------------------------

    def active(self, kind: str = "knowledge") -> int:
        """The active version number of a lineage; 0 means the bare base model."""
        with self.session() as s:
            return s.scalar(select(Active.number).where(Active.kind == kind)) or 0

    def kinds(self) -> list[str]:
        """The lineages that have versions or an active pointer."""
        with self.session() as s:
            return sorted(set(s.scalars(select(Version.kind).distinct())) | set(s.scalars(select(Active.kind))))

    def next_number(self, kind: str = "knowledge") -> int:
        with self.session() as s:
            return (s.scalar(select(func.max(Version.number)).where(Version.kind == kind)) or 0) + 1

    def version(self, number: int, kind: str = "knowledge") -> Version:
        with self.session() as s:
            row = s.scalar(select(Version).where(Version.kind == kind, Version.number == number))
        if row is None:
            raise NotFoundError(f"{kind} version v{number} does not exist; see `seal versions list`")
        return row

    def versions(self, kind: str = "knowledge") -> list[Version]:
        with self.session() as s:
            return list(s.scalars(select(Version).where(Version.kind == kind).order_by(Version.number)))

    def lineage(self, number: int, kind: str = "knowledge") -> list[int]:
        """`number` and its ancestors, oldest first (0, the base, excluded)."""
        parents = {v.number: v.parent for v in self.versions(kind)}
        chain = []
        while number:
            chain.append(number)
            number = parents.get(number, 0)
        return chain[::-1]

    def learned_documents(self, versions: list[int]) -> list[int]:
        """Ids of the documents the given knowledge versions learned."""
        if not versions:
            return []
        with self.session() as s:
            rows = s.scalars(select(Version.documents).where(Version.kind == "knowledge", Version.number.in_(versions)))
            return sorted({d for docs in rows for d in docs})

    def rejected_documents(self) -> list[int]:
        """Ids of the documents ingested and rejected: the model was shown them, so what it knew of them counts
        as earlier material too."""
        with self.session() as s:
            return list(s.scalars(select(Document.id).where(Document.status == "rejected").order_by(Document.id)))

    def version_of_document(self, document_id: int) -> int:
        """The newest knowledge version that learned a document (0 if none)."""
        with self.session() as s:
            rows = s.execute(select(Version.number, Version.documents).where(Version.kind == "knowledge"))
            return max((n for n, docs in rows if document_id in docs), default=0)

    def version_of_trial(self, trial_id: int) -> Version | None:
        with self.session() as s:
            return s.scalar(select(Version).where(Version.trial_id == trial_id))

    def pending_documents(self, kind: str = "document") -> list[Document]:
        """Documents (or tasks) whose learning started and neither committed nor was rejected (interrupted)."""
        with self.session() as s:
            return list(s.scalars(select(Document).where(Document.status == "pending", Document.kind == kind)
                                  .order_by(Document.id)))

    def reset_document(self, document_id: int) -> None:
        with self.session() as s:
            s.execute(update(Document).where(Document.id == document_id).values(status="pending"))

    def commit_version(self, version: Version, document_id: int | None) -> Version:
        """In one transaction: add the version, make it active, mark its trial and document committed."""
        with self.session() as s:
            s.add(version)
            self._set_active(s, version.kind, version.number)
            if version.trial_id is not None:
                s.execute(update(Trial).where(Trial.id == version.trial_id).values(decision="committed"))
            if document_id is not None:
                s.execute(update(Document).where(Document.id == document_id).values(status="committed"))
            s.add(Event(kind="commit", document_id=document_id,
                        data={"kind": version.kind, "version": version.number, "parent": version.parent}))
            s.flush()
            failpoint("store.commit.flushed")
            return version

    def rollback(self, number: int, kind: str = "knowledge") -> int:
        """Make `number` (0: the base model) the active version; returns the previous one. Deletes nothing."""
        if number:
            self.version(number, kind)
        with self.session() as s:
            previous = s.scalar(select(Active.number).where(Active.kind == kind)) or 0
            self._set_active(s, kind, number)
            s.add(Event(kind="rollback", data={"kind": kind, "from": previous, "to": number}))
        return previous

    def row_counts(self) -> dict[str, int]:
        """Rows per table (`seal restore` refuses a home that holds any)."""
        with self.session() as s:
            return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}

    # ---- tags and pruning -----------------------------------------------------------------------

    def tag(self, number: int, name: str, kind: str = "knowledge") -> None:
        """Name version `number`; a name already in use is refused."""
        self.version(number, kind)
        with self.session() as s:
            existing = s.get(Tag, (kind, name))
            if existing is not None:
                raise InputError(f"tag {name!r} already names {kind} version v{existing.number}; pick another name")
            s.add(Tag(kind=kind, name=name, number=number))

    def tags(self, kind: str = "knowledge") -> dict[int, list[str]]:
        """Version number -> its tags, sorted."""
        with self.session() as s:
            rows = s.execute(select(Tag.number, Tag.name).where(Tag.kind == kind).order_by(Tag.name))
            tags: dict[int, list[str]] = {}
            for number, name in rows:
                tags.setdefault(number, []).append(name)
            return tags

    def tagged(self, name: str, kind: str = "knowledge") -> int | None:
        with self.session() as s:
            row = s.get(Tag, (kind, name))
            return None if row is None else row.number

    def mark_pruned(self, numbers: list[int], kind: str = "knowledge") -> None:
        """Record that these versions' files are deleted (their rows, trials and history stay)."""
        with self.session() as s:
            s.execute(update(Version).where(Version.kind == kind, Version.number.in_(numbers)).values(pruned=True))
            s.add(Event(kind="prune", data={"kind": kind, "versions": numbers}))

    @staticmethod
    def _set_active(s: Session, kind: str, number: int) -> None:
        row = s.get(Active, kind)
        if row is None:
            s.add(Active(kind=kind, number=number))
        else:
            row.number = number

    # ---- the job queue of the long-running agent ------------------------------------------------

    def add_job(self, origin: str, source: str, title: str, text: str, questions: list[list[str]] | None = None,
                status: str = "queued", error: str = "", kind: str = "document") -> Job:
        """Queue a document (or a task: its JSON) for `seal run`; with status "failed", record one that could
        not be queued."""
        with self.session() as s:
            job = Job(origin=origin, kind=kind, source=source[:1024], title=title[:256], text=text,
                      questions=questions or [],
                      status=status, error=error, finished_at=now() if status == "failed" else None)
            s.add(job)
            s.flush()
            return job

    def job(self, job_id: int) -> Job:
        with self.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id}; `seal status` lists the queue")
            return job

    def jobs(self, statuses: tuple[str, ...] = (), limit: int = 20, newest: bool = False) -> list[Job]:
        """Jobs in queue order (oldest first), or the newest first; only the given statuses when any are given."""
        query = select(Job).options(defer(Job.text)).order_by(Job.id.desc() if newest else Job.id).limit(limit)
        if statuses:
            query = query.where(Job.status.in_(statuses))
        with self.session() as s:
            return list(s.scalars(query))

    def job_counts(self) -> dict[str, int]:
        with self.session() as s:
            return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())

    def next_job(self) -> Job | None:
        """The job to work on: one left running by an interrupted agent first, then the oldest queued."""
        with self.session() as s:
            for status in ("running", "queued"):
                job = s.scalar(select(Job).where(Job.status == status).order_by(Job.id).limit(1))
                if job is not None:
                    return job
            return None

    def start_job(self, job_id: int, document_id: int) -> None:
        with self.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(status="running", document_id=document_id,
                                                                 started_at=now(), attempts=Job.attempts + 1))

    def open_job_sources(self) -> set[str]:
        """The sources of queued and running jobs (inbox files already taken)."""
        with self.session() as s:
            return set(s.scalars(select(Job.source).where(Job.status.in_(("queued", "running")))))

    def finish_job(self, job_id: int, result: dict[str, Any] | None = None, error: str = "") -> None:
        """Done with `result`, or failed with `error`."""
        with self.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(
                status="failed" if error else "done", result=result or {}, error=error, finished_at=now()))

    # ---- events, history, chat ------------------------------------------------------------------

    def add_event(self, kind: str, document_id: int | None, data: dict[str, Any]) -> None:
        with self.session() as s:
            s.add(Event(kind=kind, document_id=document_id, data=data))

    def events(self, kind: str | None = None, document_id: int | None = None) -> list[Event]:
        query = select(Event).order_by(Event.id)
        if kind is not None:
            query = query.where(Event.kind == kind)
        if document_id is not None:
            query = query.where(Event.document_id == document_id)
        with self.session() as s:
            return list(s.scalars(query))

    def documents(self, limit: int = 50, offset: int = 0) -> list[Document]:
        """Newest first."""
        with self.session() as s:
            return list(s.scalars(select(Document).order_by(Document.id.desc()).limit(limit).offset(offset)))

    def add_chat_turn(self, prompt: str, answer: str, version: int) -> None:
        with self.session() as s:
            s.add(ChatTurn(prompt=prompt, answer=answer, version=version))

    def chat_turns(self, limit: int | None = None) -> list[ChatTurn]:
        """Oldest first; with `limit`, the last `limit` turns."""
        with self.session() as s:
            if limit is None:
                return list(s.scalars(select(ChatTurn).order_by(ChatTurn.id)))
            return list(s.scalars(select(ChatTurn).order_by(ChatTurn.id.desc()).limit(limit)))[::-1]
