"""What every command module shares: the console, this run's configuration (defaults < config.toml < the
root's --set), the workspace it opens, and the small renderers several commands use."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from seal import config as seal_config

if TYPE_CHECKING:
    from agent.workspace import Workspace

console = Console()
notices = Console(stderr=True)
# Library deprecation notices are for developers, not for someone learning a document.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
overrides: dict[str, Any] = {}  # the root's --set, parsed; set once per run by its callback
KIND_HELP = ("Lineage: knowledge (what the model knows), policy (how it writes self-edits) or task/<id> "
             "(a few-shot task's adapters).")


def config() -> seal_config.Config:
    """The configuration of this run, with the root's --set applied."""
    return seal_config.load(overrides)


def workspace(progress: bool = False) -> Workspace:
    """Open the home with this run's configuration; `progress` prints each stage's messages."""
    from agent.workspace import Workspace

    cfg = config()
    if progress:
        ws = Workspace.open(cfg, progress=lambda stage, message: console.print(f"  [dim]{stage}:[/] {message}"))
    else:
        ws = Workspace.open(cfg)
    if ws.store.upgraded:
        notices.print(f"[dim]database schema upgraded from revision {ws.store.upgraded[0]} to {ws.store.upgraded[1]}[/]")
    return ws


def lineage(kind: str) -> str:
    """A --kind value checked: knowledge, policy or task/<id>."""
    from adapters_store.versions import check_kind

    return check_kind(kind)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))

