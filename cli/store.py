"""`seal doctor`, `backup`, `restore`, `env`, `config` and `db`: look after the home — its consistency,
snapshots, where things are, the configuration and the database schema. None of them loads the model."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.shared import config, console, notices, print_json
from seal import config as seal_config
from seal.errors import SealError

app = typer.Typer()
config_app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema: current revision and upgrades.", no_args_is_help=True)


def _home_stores(upgrade: bool = True) -> tuple[Path, Any, Any]:
    """The home, its SQL store and its adapter store, without loading the model."""
    from adapters_store import AdapterStore
    from memory import Store

    home = seal_config.home()
    return home, Store.at_home(home, config().database_url, upgrade=upgrade), AdapterStore(home / "adapters")


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
        print_json({"consistent": not remaining, "findings": [
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

    manifest = run_backup(*_home_stores(), path.resolve(), model_name(config().model))
    rows = manifest["rows"]
    console.print(f"backed up {rows['documents']} documents, {rows['trials']} trials, "
                  f"{sum(len(v) for v in manifest['versions'].values())} adapter versions to {path}")


@app.command()
def restore(path: Annotated[Path, typer.Argument(help="A folder written by `seal backup`.")]) -> None:
    """Fill an empty home (SEAL_HOME, and its database) from a backup."""
    from adapters_store.backup import restore as run_restore
    from model_runtime.loading import model_name

    home, store, adapters = _home_stores()
    configured = model_name(config().model) if (home / "config.toml").is_file() else None
    manifest = run_restore(home, store, adapters, path.resolve(), configured)
    console.print(f"restored the backup of {manifest['created_at']} into {home}: active knowledge version "
                  f"v{manifest['active']['knowledge']}")


@app.command()
def env(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Where things are and which versions of what are installed."""
    import importlib.metadata as md

    from model_runtime.loading import BUNDLED_NAME, bundled_gguf, device, dtype

    cfg = config()
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
        print_json(info)
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


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration as TOML (defaults < config.toml < --set)."""
    typer.echo(f"# {seal_config.config_path()}")
    typer.echo(seal_config.to_toml(config()))


@config_app.command("validate")
def config_validate() -> None:
    """Check the configuration; every problem is reported at once."""
    config()
    console.print(f"configuration OK ({seal_config.config_path()})")


@db_app.command("current")
def db_current() -> None:
    """The database's schema revision and the newest one this version of seal knows (changes nothing)."""
    from memory import Store

    store = Store.at_home(seal_config.home(), config().database_url, upgrade=False)
    console.print(f"revision {store.revision()} (newest: {store.head()}) · {store.url}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest revision (also done automatically on start)."""
    from memory import Store

    store = Store.at_home(seal_config.home(), config().database_url, upgrade=False)
    before, after = store.revision(), store.upgrade()
    console.print(f"upgraded from revision {after[0]} to {after[1]}" if after else
                  f"database created at revision {store.revision()}" if before is None else
                  f"database at revision {before}, the newest")
