"""`seal run` and `seal status`: the long-running agent that learns queued documents and tasks, and what it
is doing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.shared import console, notices, print_json, workspace

app = typer.Typer()


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
    ws = workspace(progress=True)
    console.print(f"[dim]agent for {ws.home}: inbox {inbox(ws)}, knowledge v{ws.store.active('knowledge')}, "
                  f"policy v{ws.store.active('policy')}[/]")
    run_agent(ws, stop, once=once)
    console.print("[dim]agent stopped[/]")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The agent: whether it runs, the queue, the current job and stage, active versions, recent failures."""
    from agent.runtime import status as agent_status

    info = agent_status(workspace())
    if as_json:
        print_json(info)
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
