"""`seal ingest`, `ask`, `chat` and `submit`: learn documents now or queue them for the agent, and ask
the model what it knows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.shared import config, console, pct, print_json, workspace
from cli.versions import render_versions
from seal.errors import SealError

if TYPE_CHECKING:
    from memory import Hit

app = typer.Typer()

DOCUMENTS_HELP = "Documents (.txt, .md, .pdf, .html, .docx), folders of them or quoted globs; '-' reads standard input."
QA_HELP = "Probe questions for a single document: a JSON list of {question, answer}."
CONTEXT_HELP = ("Answer from: none (learned weights, closed-book), retrieve (retrieved passages, base model), both. "
                "Default: answer.context.")


def read_documents(paths: list[str], qa: Path | None) -> list[Any]:
    """Read and check every input before anything is written; `qa` supplies one document's probe questions."""
    from agent.ingest import DocumentInput, expand, read_document
    from agent.probes import load_supplied

    paths = expand(paths)
    if qa is not None and len(paths) != 1:
        raise SealError("--qa applies to exactly one document; give documents with their own questions one at a time")
    documents = [read_document(p, config().ingest.max_bytes) for p in paths]
    if qa is not None:
        documents[0] = DocumentInput(documents[0].source, documents[0].title, documents[0].text,
                                     tuple(load_supplied(qa)))
    return documents


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help=DOCUMENTS_HELP)] = None,
    qa: Annotated[Path | None, typer.Option(help=QA_HELP)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish interrupted ingests from their last checkpoint.")] = False,
) -> None:
    """Learn documents: generate a self-edit, train an adapter, verify it, commit a new version."""
    from agent.ingest import ingest as run_ingest
    from agent.ingest import resume as resume_ingests

    paths = paths or []
    if not paths and not resume:
        raise SealError("give at least one document path (or '-' for standard input), or --resume")
    documents = read_documents(paths, qa)
    ws = workspace(progress=True)
    results = list(resume_ingests(ws)) if resume else []
    for doc in documents:
        console.print(f"[bold]{doc.title}[/]  [dim]({doc.source})[/]")
        results += list(run_ingest(ws, [doc]))
    if resume and not results:
        console.print("nothing to resume")
        return
    table = Table(title="Ingest")
    for column in ("document", "decision", "before", "after", "version", "seconds", "reason"):
        table.add_column(column)
    for r in results:
        table.add_row(r.title[:40], r.status, pct(r.new_before), pct(r.new_after),
                      f"v{r.version}", f"{r.seconds:.1f}", r.reason)
    console.print(table)
    for r in results:
        if r.passages:
            console.print(f"[dim]{r.title[:40]}, probes passage by passage: "
                          + " · ".join(f"{i + 1}: {pct(b)}→{pct(a)}" for i, b, a in r.passages) + "[/]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    context: Annotated[str | None, typer.Option(help=CONTEXT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"answer", "version", "passages"}.')] = False,
) -> None:
    """Answer one question with the active knowledge version, retrieved passages, or both (greedy)."""
    from agent.answer import ask as ask_question
    from agent.answer import cited

    answer = ask_question(workspace(), question, context)
    if as_json:
        print_json({"answer": answer.text, "version": answer.version, "passages": cited(answer.passages)})
    else:
        console.print(answer.text)
        print_sources(answer.passages)


def print_sources(hits: list[Hit]) -> None:
    """The passages an answer drew on, one dim line."""
    if hits:
        console.print("[dim]from: " + "; ".join(f"{h.title} (document {h.document_id}, passage {h.position + 1})"
                                                for h in hits) + "[/]")


@app.command()
def chat(context: Annotated[str | None, typer.Option(help=CONTEXT_HELP)] = None) -> None:
    """Chat with the continually updated model. /versions, /rollback vN, /learn TEXT, /quit."""
    from agent.answer import chat as chat_reply
    from agent.answer import context_of
    from agent.ingest import DocumentInput, check_text
    from agent.ingest import ingest as run_ingest
    from agent.versions import resolve, rollback

    ws = workspace(progress=True)
    context = context_of(ws, context)
    console.print(f"[dim]knowledge v{ws.store.active('knowledge')} · context {context} · "
                  "/versions /rollback vN /learn TEXT /quit[/]")
    history: list[dict[str, str]] = []
    while True:
        try:
            line = console.input("[bold green]you>[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            continue
        command, _, rest = line.partition(" ")
        try:
            if command == "/quit":
                break
            elif command == "/versions":
                render_versions(ws, "knowledge")
            elif command == "/rollback":
                previous = rollback(ws, resolve(ws, rest))
                console.print(f"[dim]rolled back from v{previous} to v{ws.store.active('knowledge')}[/]")
            elif command == "/learn":
                text = check_text(rest.encode("utf-8"), "/learn", ws.config.ingest.max_bytes)
                for r in run_ingest(ws, [DocumentInput("chat", text[:80], text)]):
                    console.print(f"[dim]{r.status} · v{r.version} · {pct(r.new_before)} → {pct(r.new_after)} · {r.reason}[/]")
            elif command.startswith("/"):
                console.print("[dim]commands: /versions /rollback vN /learn TEXT /quit[/]")
            else:
                history.append({"role": "user", "content": line})
                console.print("[bold blue]seal>[/] ", end="")
                reply = []
                answer, pieces = chat_reply(ws, history, context)
                for piece in pieces:
                    reply.append(piece)
                    console.print(piece, end="", highlight=False, markup=False)
                console.print()
                print_sources(answer.passages)
                history.append({"role": "assistant", "content": "".join(reply).strip()})
                history = history[-8:]
        except SealError as e:
            console.print(f"[red]Error:[/] {e}")


@app.command()
def submit(
    paths: Annotated[list[str], typer.Argument(help=DOCUMENTS_HELP)],
    qa: Annotated[Path | None, typer.Option(help=QA_HELP)] = None,
) -> None:
    """Queue documents, and few-shot tasks (.json), for the long-running agent (`seal run`) to learn."""
    from agent.ingest import expand
    from agent.runtime import read_item
    from agent.runtime import submit as queue

    paths = expand(paths)
    if qa is not None:
        items = read_documents(paths, qa)
    else:  # read and check every input before anything is queued
        items = [read_item(p, config().ingest.max_bytes) for p in paths]
    ws = workspace()
    for path, item in zip(paths, items):
        job = queue(ws, item, source=path)
        console.print(f"job {job.id}: {getattr(item, 'title', None) or item.id}  [dim]({path}, {job.kind})[/]")
