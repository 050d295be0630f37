"""`seal logs` and `seal history`: what the runtime has done — chat turns with the version that answered,
and documents with every trial's reward and decision."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.shared import console, print_json, workspace
from seal.errors import SealError

app = typer.Typer()


@app.command()
def logs(n: Annotated[int, typer.Option("-n", help="How many of the newest turns.")] = 20,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Chat turns (chat, ask, the API), oldest first, each with the knowledge version that answered."""
    if n < 1:
        raise SealError(f"-n {n}: show at least one turn")
    turns = workspace().store.chat_turns(limit=n)
    if as_json:
        print_json([{"id": t.id, "at": t.created_at, "version": t.version, "prompt": t.prompt, "answer": t.answer}
                    for t in turns])
        return
    for t in turns:
        console.print(f"[dim]{t.created_at:%Y-%m-%d %H:%M:%S} · v{t.version}[/]")
        console.print("[bold green]>[/] ", end="")
        console.print(t.prompt, highlight=False, markup=False)
        console.print(t.answer, highlight=False, markup=False)


@app.command("history")
def history_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
                    limit: Annotated[int, typer.Option(help="Most recent documents to show.")] = 50) -> None:
    """Documents learned or tried, with every trial's reward and decision."""
    from agent.versions import history

    records = history(workspace(), limit)
    if as_json:
        print_json(records)
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
