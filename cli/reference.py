"""Render the CLI reference (markdown) from the Typer app itself, so the docs cannot drift.
Run: `python -m cli.reference > docs/cli.md` (a test fails when that file differs from this output)."""

from __future__ import annotations

import typer

from cli.main import app


def _lines(command: typer.core.TyperCommand, path: str) -> list[str]:
    ctx = typer.Context(command, info_name=path)
    out = [f"### `{path}`", "", (command.help or "").strip().split("\n\n")[0], "", "```",
           command.get_usage(ctx).replace("Usage: ", ""), "```", ""]
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            out.append(f"- `{param.name.upper()}`: {getattr(param, 'help', '') or ''}")
        else:
            out.append(f"- `{', '.join(param.opts)}`: {param.help or ''}")
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            out += ["", *_lines(sub, f"{path} {name}")]
    return out


def reference() -> str:
    body = "\n".join(_lines(typer.main.get_command(app), "seal")).replace("\n\n\n", "\n\n").strip()
    return ("# CLI reference\n\nEvery `seal` command and option, generated from the app by "
            "`python -m cli.reference > docs/cli.md`.\n\n" + body.replace("### `", "## `") + "\n")


if __name__ == "__main__":
    print(reference(), end="")
