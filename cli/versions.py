"""`seal versions`: list, inspect, roll back, tag and prune the versions of a lineage (knowledge, policy or
a few-shot task's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.shared import KIND_HELP, console, lineage, pct, print_json, workspace

if TYPE_CHECKING:
    from agent.workspace import Workspace

app = typer.Typer(help="List, inspect, roll back, tag and prune versions.", no_args_is_help=True)


@app.command("list")
def versions(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
             kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Knowledge (or policy) versions, oldest first; v0 is the base model."""
    from agent.versions import list_versions

    ws = workspace()
    kind = lineage(kind)
    if as_json:
        print_json({"kind": kind, "active": ws.store.active(kind), "versions": list_versions(ws, kind)})
        return
    render_versions(ws, kind)


def render_versions(ws: Workspace, kind: str) -> None:
    """A lineage's versions as a table, the active one starred (`seal versions list`, chat's /versions)."""
    from agent.versions import list_versions

    records = list_versions(ws, kind)
    table = Table(title=f"{kind.capitalize()} versions")
    for column in ("", "version", "parent", "created", "documents", "before → after" if kind == "knowledge" else "learned from"):
        table.add_column(column)
    active = ws.store.active(kind)
    table.add_row("*" if active == 0 else "", "v0", "—", "—", "base model", "")
    for r in records:
        m = r["metrics"]
        outcome = (f"{pct(m['new_before'])} → {pct(m['new_after'])}" if kind == "knowledge"
                   else f"{m['examples']} self-edits, mean reward {m['mean_reward']:+.2f}")
        name = r["name"] + "".join(f" ({t})" for t in r["tags"]) + (" pruned" if r["pruned"] else "")
        table.add_row("*" if r["active"] else "", name, f"v{r['parent']}", r["created_at"],
                      "; ".join(t[:40] for t in r["titles"][:3]) + (" …" if len(r["titles"]) > 3 else ""), outcome)
    console.print(table)


@app.command("show")
def versions_show(version: Annotated[str, typer.Argument(help="Version or tag, e.g. v3.")],
                  kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge",
                  as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """One version's parent, lineage, documents, metrics and files."""
    from agent.versions import resolve, show_version

    ws = workspace()
    record = show_version(ws, resolve(ws, version, lineage(kind)), kind)
    if as_json:
        print_json(record)
        return
    for key in ("name", "parent", "active", "tags", "pruned", "created_at", "lineage", "titles", "trial", "path"):
        console.print(f"[bold]{key}[/]: {record[key]}")
    for key, value in record["metrics"].items():
        console.print(f"[bold]{key}[/]: {value}")


@app.command("rollback")
def versions_rollback(version: Annotated[str, typer.Argument(help="Version or tag to make active, e.g. v1 (v0: base model).")],
                      kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Make an earlier version active. Nothing is deleted; the next ingest branches from it."""
    from agent.versions import resolve, rollback

    ws = workspace()
    number = resolve(ws, version, lineage(kind))
    previous = rollback(ws, number, kind)
    console.print(f"active {kind} version: v{number} (was v{previous})")


@app.command("tag")
def versions_tag(version: Annotated[str, typer.Argument(help="Version to name, e.g. v3.")],
                 name: Annotated[str, typer.Argument(help="The tag, e.g. stable. Tagged versions are never pruned.")],
                 kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Name a version; the name works wherever a version does (show, rollback)."""
    from agent.versions import resolve, tag

    ws = workspace()
    number = resolve(ws, version, lineage(kind))
    tag(ws, number, name, kind)
    console.print(f"{kind} version v{number} tagged {name!r}")


@app.command("prune")
def versions_prune(keep: Annotated[int, typer.Option(help="Newest versions to keep.")] = 10,
                   keep_ancestors: Annotated[bool, typer.Option(help="Also keep every ancestor of the active version.")] = False,
                   apply: Annotated[bool, typer.Option("--apply", help="Delete; without it, only show what would go.")] = False,
                   kind: Annotated[str, typer.Option(help=KIND_HELP)] = "knowledge") -> None:
    """Delete old versions' adapter files (their history stays). Never the active version or a tagged one.
    A dry run unless --apply."""
    from agent.versions import prune, prune_plan

    ws = workspace()
    doomed, kept = prune_plan(ws, keep, keep_ancestors, lineage(kind))
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
