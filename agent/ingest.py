"""Ingest: read and check documents (before anything is written), then run each through the graph,
checkpointed under the home directory so an interrupted ingest resumes where it stopped; after each document,
the policy update runs when its schedule calls for one, whoever asked for the ingest."""

from __future__ import annotations

import glob
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph

from agent.formats import READERS, SUPPORTED, extract, plain_text
from agent.graph import build_graph
from agent.workspace import Workspace
from memory import Document, Trial
from seal.errors import InputError
from seal.locking import learner_lock


@dataclass(frozen=True)
class DocumentInput:
    source: str
    title: str
    text: str
    questions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IngestResult:
    document_id: int
    source: str
    title: str
    status: str  # committed | rejected | known (learned before)
    version: int  # committed version, else the active one
    new_before: float | None
    new_after: float | None
    reason: str
    seconds: float
    # A document learned passage by passage: (position, accuracy before, after) of each probed passage.
    passages: tuple[tuple[int, float, float], ...] = ()


def check_text(raw: bytes, source: str, max_bytes: int) -> str:
    """The text of UTF-8 content, or an InputError saying why it cannot be learned."""
    check_size(len(raw), source, max_bytes)
    return checked(plain_text(raw, source)[1], source)


def check_size(size: int, source: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(f"{source}: {size / 1e6:,.2f} MB is over the {max_bytes / 1e6:,.2f} MB limit "
                         "(split it, or raise ingest.max_document_mb)")


def checked(text: str, source: str) -> str:
    if not text.strip():
        raise InputError(f"{source}: the document is empty")
    return text.strip()


def read_document(path: str, max_bytes: int) -> DocumentInput:
    """A document from a file (text, Markdown, PDF, HTML or DOCX: `agent.formats`), or from standard input
    for '-' (text)."""
    if path == "-":
        title, text = None, check_text(sys.stdin.buffer.read(max_bytes + 1), "<stdin>", max_bytes)
    else:
        file = Path(path)
        if not file.exists():
            raise InputError(f"{path}: no such file")
        if not file.is_file():
            raise InputError(f"{path}: not a file; give text, Markdown, PDF, HTML or DOCX files, or a folder")
        check_size(file.stat().st_size, path, max_bytes)
        try:
            raw = file.read_bytes()
        except OSError as e:
            raise InputError(f"{path}: cannot be read ({e.strerror})") from e
        title, text = extract(raw, path, file.suffix.lower())
        text = checked(text, path)
    return DocumentInput(source=path, title=(title or "").strip()[:80] or title_of(text), text=text)


def expand(paths: list[str]) -> list[str]:
    """The files that paths name: a folder gives every supported file under it (sorted; hidden ones
    skipped), a quoted glob pattern the files it matches; '-' and plain files stay as they are."""
    files: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            found = sorted(str(f) for f in Path(path).rglob("*") if f.is_file() and f.suffix.lower() in READERS
                           and f.suffix and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not found:
                raise InputError(f"{path}: no {SUPPORTED} files in this folder")
            files += found
        elif not Path(path).exists() and glob.has_magic(path):
            found = sorted(f for f in glob.glob(path, recursive=True) if Path(f).is_file())
            if not found:
                raise InputError(f"{path}: matches no files")
            files += found
        else:
            files.append(path)
    return files


def title_of(text: str) -> str:
    """A document's title: its first line, without Markdown heading marks."""
    return text.splitlines()[0].lstrip("# ").strip()[:80]


@contextmanager
def checkpointer(ws: Workspace) -> Iterator[SqliteSaver]:
    connection = sqlite3.connect(ws.home / "checkpoints.sqlite", check_same_thread=False)
    try:
        yield SqliteSaver(connection)
    finally:
        connection.close()


def thread(doc: Document) -> dict:
    return {"configurable": {"thread_id": f"document-{doc.sha256}"}}


def run_graph(ws: Workspace, doc: Document, saver: SqliteSaver, resume: bool, collect: bool = False,
              stop: Event | None = None) -> IngestResult | None:
    """Run (or, with `resume`, finish) one document's graph; `collect` scores candidates without committing.
    When `stop` is set the run pauses after the stage in progress, checkpointed, and None is returned
    (`resume` continues it there)."""
    start = time.perf_counter()
    state = stepped(ws, build_graph(saver), thread(doc), {"document_id": doc.id, "collect": collect}, resume, stop)
    return None if state is None else outcome(ws, doc.id, state, time.perf_counter() - start)


def stepped(ws: Workspace, graph: CompiledStateGraph, config: dict, inputs: dict, resume: bool,
            stop: Event | None) -> dict | None:
    """Run a document's or a task's graph from `inputs` (with `resume`, on from its checkpoint when it has
    one), stage by stage: each stage's state is checkpointed (durability="sync") before the next begins. The
    final state, or None when `stop` was set: the run pauses after the stage in progress."""
    pending = graph.get_state(config).next if resume else ()
    if pending:
        ws.progress("resume", f"resuming at {', '.join(pending)}")
    else:
        graph.checkpointer.delete_thread(config["configurable"]["thread_id"])
    for _ in graph.stream(None if pending else inputs, config, context=ws, durability="sync", stream_mode="updates"):
        if stop is not None and stop.is_set() and graph.get_state(config).next:
            ws.progress("pause", f"stopping; resume continues at {', '.join(graph.get_state(config).next)}")
            return None
    return graph.get_state(config).values


def outcome(ws: Workspace, document_id: int, state: dict, seconds: float, kind: str = "knowledge") -> IngestResult:
    """What a finished graph run did to a document (or a task: `kind` is its lineage)."""
    doc = ws.store.document(document_id)
    # Shown: the committed candidate, else the best-rewarded one of this run.
    ran = {t["trial_id"] for t in state.get("trials", [])}
    trials = [t for t in ws.store.trials(doc.id) if t.id in ran]
    shown = next((t for t in trials if t.decision == "committed"), max(trials, key=lambda t: t.reward, default=None))
    return IngestResult(
        document_id=doc.id, source=doc.source, title=doc.title, status=doc.status,
        version=state.get("version") or ws.store.active(kind),
        new_before=shown.new_before if shown else None, new_after=shown.new_after if shown else None,
        reason=shown.reason if shown else "", seconds=seconds, passages=by_passage(shown) if shown else ())


def by_passage(trial: Trial) -> tuple[tuple[int, float, float], ...]:
    """Per probed passage of a long document: (position, accuracy before, accuracy after)."""
    rows: dict[int, list[dict]] = {}
    for row in (trial.scores or {}).get("new", []):
        if row.get("passage") is not None:
            rows.setdefault(row["passage"], []).append(row)
    return tuple((i, sum(r["correct_before"] for r in rs) / len(rs), sum(r["correct_after"] for r in rs) / len(rs))
                 for i, rs in sorted(rows.items()))


def interrupted_parents(ws: Workspace) -> set[int]:
    """The knowledge versions interrupted ingests train from (read from their checkpoints): a resume
    needs their files."""
    with checkpointer(ws) as saver:
        graph = build_graph(saver)
        states = [graph.get_state(thread(doc)).values for doc in ws.store.pending_documents()]
    return {state["parent_version"] for state in states if state.get("parent_version")}


def learning(ws: Workspace) -> AbstractContextManager[None]:
    """The home's learner lock: one document at a time learns, across processes."""
    return learner_lock(ws.home, lambda: ws.progress("wait", "another process is learning a document in this "
                                                             "home; waiting for it to finish"))


def learn(ws: Workspace, item: DocumentInput, saver: SqliteSaver, resume: bool = False,
          stop: Event | None = None) -> IngestResult | None:
    """Learn one document under the learner lock. One already in the active lineage is reported as known and
    not learned again; with `resume`, an interrupted run of it continues from its checkpoint. None: `stop`
    paused it between stages."""
    with learning(ws):
        doc, _ = ws.store.add_document(item.text, item.source, item.title,
                                       passage_words=ws.config.ingest.passage_words)
        version = ws.store.version_of_document(doc.id)
        if doc.status == "committed" and version in ws.store.lineage(ws.store.active("knowledge")):
            return IngestResult(doc.id, item.source, doc.title, "known", version, None, None,
                                f"already learned in v{version}", 0.0)
        if resume and doc.status == "pending":
            return run_graph(ws, doc, saver, resume=True, stop=stop)
        if item.questions:
            ws.store.set_probes(doc.id, [(q, a, "supplied") for q, a in item.questions])
        ws.store.reset_document(doc.id)
        return run_graph(ws, doc, saver, resume=False, stop=stop)


def ingest(ws: Workspace, documents: list[DocumentInput]) -> Iterator[IngestResult]:
    """Learn each document in turn (see `learn`); after each, the policy update runs if its schedule says so."""
    with checkpointer(ws) as saver:
        for item in documents:
            result = learn(ws, item, saver)
            assert result is not None  # nothing asks this run to stop
            scheduled_update(ws)
            yield result


def resume(ws: Workspace) -> Iterator[IngestResult]:
    """Finish every interrupted ingest from its last checkpoint, without repeating finished stages; after each,
    the policy update runs if its schedule says so."""
    with checkpointer(ws) as saver:
        for doc in ws.store.pending_documents():
            with learning(ws):
                if ws.store.document(doc.id).status != "pending":  # finished by the process we waited for
                    continue
                result = run_graph(ws, doc, saver, resume=True)
            assert result is not None
            scheduled_update(ws)
            yield result


def scheduled_update(ws: Workspace) -> None:
    """The policy schedule (policy.update_every_*), applied after a document is learned (`agent.policy.maybe_update`)."""
    from agent.policy import maybe_update  # imported here: the policy module builds on this one (collect runs its graph)

    maybe_update(ws)
