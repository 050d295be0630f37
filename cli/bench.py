"""`seal bench`: the benchmarks against the SEAL paper's protocol (`benchmarks/`), results under
benchmarks/results/ as JSON, markdown and plots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.shared import config, console, workspace
from seal import config as seal_config
from seal.errors import SealError

app = typer.Typer(help="Benchmarks against the SEAL paper's protocol (results under benchmarks/results/).",
                  no_args_is_help=True)

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

    cfg = cfg or config()
    console.print("[dim]loading the model[/]")
    return cfg, load_model(cfg.model, seal_config.home() / "models")


def _print_markdown(path: Path) -> None:
    from rich.markdown import Markdown

    console.print(Markdown(path.read_text(encoding="utf-8")))


@app.command("knowledge")
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
            "comma-separated: passage, self_edit, questions, answer_ce, sentences, recital, retention, or all."))] = "",
    out: Annotated[Path, typer.Option(help="Directory for the JSON, markdown and PNG results.")] = DEFAULT_RESULTS,
    resume: Annotated[bool, typer.Option(help=("Carry on an interrupted run (same options) from its JSON under --out; its recorded "
            "self-edits are reused, so the policies need not exist here."))] = False,
) -> None:
    """Single-passage knowledge incorporation: no adaptation, in context, passage only, passage + self-edit per format."""
    knowledge_benchmark(data, n, split, offset, formats, policies, faithful, pool, select, ablate, out, resume)


def knowledge_benchmark(data: Path, n: int, split: str, offset: int, formats: str, policies: str, faithful: bool,
                        pool: int, select: int, ablate: str, out: Path, resume: bool) -> None:
    """Run `benchmarks.knowledge` on a split of `data` (`seal bench knowledge`, `seal rl eval`): each policy's
    self-edits per format, results written under `out` and printed."""
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
    cfg = config()
    provenance = report.provenance(cfg, args)
    previous = knowledge.resumable(out / f"{stem}.json", provenance) if resume else None
    cfg, lm = _bench_model(cfg)
    ws = None if numbers == [0] or previous else workspace()
    arms = [(v, ws.attach("policy", v) if ws else None) for v in numbers]
    with _bench_progress("knowledge") as progress:
        knowledge.run(lm, passages, chosen, cfg, out=out, stem=stem, provenance=provenance, policies=arms,
                      faithful=faithful, pool=pool, select=select, ablate=parts, progress=progress,
                      resume=previous)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md, .png[/]")


@app.command("continual")
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
    cfg = config()
    provenance = report.provenance(cfg, args)
    previous = report.resumable(out / f"{stem}.json", provenance) if resume else None
    cfg, lm = _bench_model(cfg)
    with _bench_progress("continual") as progress:
        continual.run(lm, [passages[i * length:(i + 1) * length] for i in range(sequences)], chosen, cfg,
                      homes=seal_config.home() / "bench" / stem, model_cache=seal_config.home() / "models", out=out,
                      stem=stem, provenance=provenance, progress=progress, resume=previous)
    _print_markdown(out / f"{stem}.md")
    console.print(f"[dim]results: {out / stem}.json, .md, .png[/]")


@app.command("speed")
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
    cfg = config()
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


@app.command("tasks")
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
