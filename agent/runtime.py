"""The long-running agent (`seal run`): learns queued jobs one at a time — documents and few-shot tasks submitted
with `seal submit` or `POST /v1/documents`, and files dropped into the inbox — and runs the policy update on its
schedule.

SIGTERM or SIGINT stops it between stages: the stage in progress finishes and is checkpointed, the job stays
`running`, and the next `seal run` resumes it where it stopped. Inbox files are learned exactly once: a file is
queued once (a queued or running job holds its path), and is moved to `processed/` (or `failed/`, next to a
`.reason` file) after its ingest finished and before its job is marked done, so a crash between any two of
those steps is picked up again at the right one."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from threading import Event

from agent import task_graph
from agent.graph import build_graph
from agent.ingest import DocumentInput, checkpointer, learn, read_document, thread
from agent.policy import maybe_update
from agent.tasks import Task, dump_task, load_task, parse_task
from agent.workspace import Workspace
from memory import Job
from seal.errors import SealError
from seal.locking import agent_lock, agent_pid

SETTLE_SECONDS = 1.0  # an inbox file modified more recently than this may still be being written
MAX_ATTEMPTS = 3  # a job the agent started this often without finishing (it kept dying on it) is given up


def inbox(ws: Workspace) -> Path:
    return Path(ws.config.run.inbox).expanduser() if ws.config.run.inbox else ws.home / "inbox"


def submit(ws: Workspace, item: DocumentInput | Task, origin: str = "submit", source: str = "") -> Job:
    """Queue a document, or a few-shot task (from `source`), for the agent."""
    if isinstance(item, Task):
        return ws.store.add_job(origin, source or item.id, item.id, dump_task(item), kind="task")
    return ws.store.add_job(origin, item.source, item.title, item.text, [list(qa) for qa in item.questions])


def read_item(path: str, max_bytes: int) -> DocumentInput | Task:
    """A file to learn: a few-shot task (.json) or a document."""
    return load_task(Path(path)) if path.endswith(".json") else read_document(path, max_bytes)


def scan_inbox(ws: Workspace) -> list[Job]:
    """Queue each new file in the inbox (.json: a few-shot task; else a document; names starting with '.' are
    ignored: write there, then rename); a file that cannot be learned moves to failed/ at once, with its
    reason, and is recorded as a failed job."""
    folder = inbox(ws)
    for sub in ("processed", "failed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    held = ws.store.open_job_sources()
    queued = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or str(path)[:1024] in held:  # the column's size
            continue
        try:
            if time.time() - path.stat().st_mtime < SETTLE_SECONDS:
                continue
        except FileNotFoundError:  # taken away meanwhile
            continue
        try:
            item = read_item(str(path), ws.config.ingest.max_bytes)
        except SealError as e:
            ws.store.add_job("inbox", str(path), path.name, "", status="failed", error=str(e))
            file_away(path, folder / "failed", str(e))
            ws.progress("inbox", f"{path.name} → failed/: {e}")
            continue
        queued.append(submit(ws, item, origin="inbox", source=str(path)))
        ws.progress("inbox", f"queued {path.name} as job {queued[-1].id}")
    return queued


def file_away(path: Path, folder: Path, reason: str = "") -> None:
    """Move an inbox file into processed/ or failed/ (next to NAME.reason when there is a reason); a name
    already taken there gets a numeric suffix. A file already gone was moved before a crash."""
    if not path.exists():
        return
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.stem}.{n}{path.suffix}", n + 1
    if reason:
        (folder / f"{target.name}.reason").write_text(reason + "\n", encoding="utf-8")
    path.replace(target)


def unchanged(ws: Workspace, job: Job) -> bool:
    """Whether an inbox job's file still holds what was queued."""
    try:
        item = read_item(job.source, ws.config.ingest.max_bytes)
    except SealError:
        return False
    return (dump_task(item) if isinstance(item, Task) else item.text) == job.text


def fail(ws: Workspace, job: Job, error: str) -> None:
    """Mark a job failed with its reason; an inbox job's file goes to failed/ with it."""
    if job.origin == "inbox":
        file_away(Path(job.source), inbox(ws) / "failed", error)
    ws.store.finish_job(job.id, error=error)
    ws.progress("job", f"job {job.id} failed: {error}")


def work(ws: Workspace, job: Job, stop: Event) -> bool:
    """Learn one job's document, or finish one an earlier agent left running; False when `stop` paused it."""
    interrupted = job.status == "running"
    if interrupted and job.attempts >= MAX_ATTEMPTS:
        fail(ws, job, f"started {job.attempts} times without finishing (the agent stopped or died each time); "
                      "submit it again to retry")
        return True
    ws.progress("job", f"{'resuming' if interrupted else 'starting'} job {job.id}: {job.title}")
    try:
        if (interrupted and job.document_id is not None and job.kind == "document"
                and ws.store.document(job.document_id).status != "pending"):
            # Its ingest finished (in the agent that stopped, or in `seal ingest --resume`); record it.
            doc = ws.store.document(job.document_id)
            result = {"document_id": doc.id, "status": doc.status, "version": ws.store.version_of_document(doc.id)}
        elif job.kind == "task":
            doc, _ = ws.store.add_document(job.text, job.source, job.title, kind="task")  # job.text: dump_task's
            ws.store.start_job(job.id, doc.id)
            task = parse_task(json.loads(job.text), job.title)
            if interrupted and doc.status != "pending":  # finished by the agent that stopped
                result = {"document_id": doc.id, "status": doc.status,
                          "version": ws.store.active(task_graph.lineage(task))}
            else:
                learned = task_graph.learn(ws, task, job.source, resume=interrupted, stop=stop)
                if learned is None:
                    return False
                result = asdict(learned)
        else:
            item = DocumentInput(job.source, job.title, job.text, tuple(tuple(qa) for qa in job.questions))
            doc, _ = ws.store.add_document(item.text, item.source, item.title,
                                           passage_words=ws.config.ingest.passage_words)
            ws.store.start_job(job.id, doc.id)
            with checkpointer(ws) as saver:
                outcome = learn(ws, item, saver, resume=interrupted, stop=stop)
            if outcome is None:
                return False
            result = asdict(outcome)
    except SealError as e:
        fail(ws, job, str(e))
        return True
    if job.origin == "inbox" and unchanged(ws, job):  # a file rewritten meanwhile stays, to be learned anew
        file_away(Path(job.source), inbox(ws) / "processed")
    ws.store.finish_job(job.id, result)
    ws.progress("job", f"job {job.id} done: {result['status']}")
    return True


def run(ws: Workspace, stop: Event, once: bool = False) -> None:
    """Work until `stop` is set: scan the inbox, learn the next job, run a scheduled policy update; sleep
    `run.poll_seconds` when there is nothing to do. `once`: return when the queue is empty instead."""
    with agent_lock(ws.home):
        while not stop.is_set():
            scan_inbox(ws)
            job = ws.store.next_job()
            if job is None:
                if once:
                    return
                stop.wait(ws.config.run.poll_seconds)
                continue
            if work(ws, job, stop) and not stop.is_set():
                maybe_update(ws)


def status(ws: Workspace) -> dict:
    """The agent (its pid, or None), the queue, the job in progress and its stage, active versions, recent failures."""
    current = None
    for job in ws.store.jobs(("running",), limit=1):
        doc = ws.store.document(job.document_id)
        with checkpointer(ws) as saver:
            if job.kind == "task":
                graph, config = task_graph.build_task_graph(saver), task_graph.thread(doc)
            else:
                graph, config = build_graph(saver), thread(doc)
            stage = graph.get_state(config).next
        current = {"job": job.id, "title": job.title, "document_id": job.document_id,
                   "stage": ", ".join(stage) or "starting", "started_at": job.started_at}
    return {
        "agent_pid": agent_pid(ws.home),
        "inbox": str(inbox(ws)),
        "queue": ws.store.job_counts(),
        "current": current,
        "next": [{"job": j.id, "title": j.title, "origin": j.origin} for j in ws.store.jobs(("queued",), limit=5)],
        "active": {kind: ws.store.active(kind) for kind in ("knowledge", "policy")},
        "errors": [{"job": j.id, "title": j.title, "error": j.error, "at": j.finished_at}
                   for j in ws.store.jobs(("failed",), limit=5, newest=True)],
    }
