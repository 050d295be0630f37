"""`seal`: learn documents into the model's weights, ask and chat, and manage knowledge versions.

The root app, its --set and --profile options and the entry point. Each group of commands lives in its own module, which
parses, calls one library function and renders; they are wired in below in the order `seal --help` lists them:
  learn     ingest, ask, chat, submit
  run       run, status (the long-running agent)
  history   logs, history
  serve     serve (the HTTP API)
  store     doctor, backup, restore, env, config …, db …
  versions  versions …
  bench     bench …
  task      task …
  rl        rl …"""

from __future__ import annotations

from typing import Annotated

import typer

from cli import bench, history, learn, rl, run, serve, store, task, versions
from cli.shared import overrides
from seal import config as seal_config
from seal.errors import SealError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main_options(
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="SECTION.KEY=VALUE",
                                                      help="Override a setting for this run, e.g. --set train.epochs=5.")] = None,
    profile: Annotated[str | None, typer.Option(help=f"Defaults for the hardware: {' or '.join(seal_config.PROFILES)} "
                                                     "(the same as --set profile=NAME).")] = None,
) -> None:
    """Learn documents into the model's weights (SEAL), ask and chat, and manage knowledge versions."""
    overrides.clear()
    overrides.update(seal_config.parse_overrides(set_ or []))
    if profile is not None:
        overrides["profile"] = profile


for commands in (learn.app, run.app, history.app, serve.app, store.app):  # top-level commands
    app.add_typer(commands)
app.add_typer(versions.app, name="versions")
app.add_typer(store.config_app, name="config")
app.add_typer(store.db_app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(task.app, name="task")
app.add_typer(rl.app, name="rl")


def main() -> None:
    """Entry point: library errors become one line on stderr and exit status 1."""
    try:
        app()
    except SealError as e:
        typer.echo(f"Error: {e}", err=True)
        raise SystemExit(1) from None
