"""`seal rl`: ReST-EM for the self-edit policy — collect rewarded self-edits, update the policy, see its
state, and compare policies on held-out documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.bench import DEFAULT_DATA, DEFAULT_RESULTS, knowledge_benchmark
from cli.shared import config, console, pct, print_json, workspace
from seal.errors import SealError

app = typer.Typer(help="ReST-EM: collect rewarded self-edits, update the self-edit policy, evaluate policies.",
                  no_args_is_help=True)


def _rl_documents(paths: list[str], data: Path | None, split: str, n: int, offset: int) -> list[Any]:
    """Documents from files (probes written by the model) or from SQuAD-shaped records (their questions)."""
    from agent.ingest import DocumentInput, read_document
    from benchmarks import squad

    if bool(paths) == (data is not None):
        raise SealError("give document paths or --data FILE (SQuAD-shaped JSON), not both and not neither")
    if data is None:
        return [read_document(p, config().ingest.max_bytes) for p in paths]
    return [DocumentInput(f"squad:{p.title}", p.title, p.context, p.questions)
            for p in squad.split(squad.load(data), split, n, offset)]


@app.command("collect")
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
    ws = workspace(progress=True)
    table = Table(title=f"Collected with policy v{ws.store.active('policy')}")
    for column in ("document", "best reward", "before", "best after", "seconds"):
        table.add_column(column)
    for doc in documents:
        console.print(f"[bold]{doc.title}[/]")
        for r in collect(ws, [doc], k=k):
            reward = None if r.new_after is None else r.new_after - r.new_before
            table.add_row(r.title[:40], "—" if reward is None else f"{reward:+.2f}", pct(r.new_before),
                          pct(r.new_after), f"{r.seconds:.1f}")
    console.print(table)


@app.command("update")
def rl_update() -> None:
    """M-step: fine-tune the policy on each document's best positive-reward self-edit; commit a policy version."""
    from agent.policy import update

    version = update(workspace(progress=True))
    m = version.metrics
    console.print(f"policy v{version.number} (parent v{version.parent}): learned from {m['examples']} self-edits, "
                  f"mean reward {m['mean_reward']:+.2f}, {m['train_tokens']} tokens in {m['train_seconds']:.1f} s")


@app.command("status")
def rl_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The active policy, the data available for the next update, the last update, and whether one is due."""
    from agent.policy import status

    info = status(workspace())
    if as_json:
        print_json(info)
        return
    console.print(f"active policy v{info['active']} ({info['versions']} policy versions; last update "
                  f"{info['last_update'] or 'never'})")
    console.print(f"trials of its self-edits: {info['trials']} on {info['documents']} documents, "
                  f"{info['positive_trials']} with positive reward")
    mean = info["mean_selected_reward"]
    console.print(f"next update would learn from {info['examples']} self-edits"
                  + ("" if mean is None else f" (mean reward {mean:+.2f})"))
    console.print(f"scheduled update: {info['due'] or 'not due'}")


@app.command("eval")
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
    knowledge_benchmark(data, n, split, offset, formats, policies, faithful=False, pool=1, select=1, ablate="",
                        out=out, resume=resume)
