"""Learning a few-shot task, as a LangGraph graph: plan → train → score → (train the next plan | commit | end).

plan: the policy writes K training plans (the task's self-edits: JSON configurations, `agent/tasks.py`);
one that does not parse is sampled again, a bounded number of times. train: test-time-train a LoRA from the
base model on the demonstrations minus the held-out ones, as the plan says (an invalid or over-budget plan
trains nothing and scores zero). score: the held-out demonstrations answered in context, without and with
the plan's adapter (voting over the plan's geometric transforms); the reward is the adapted accuracy, and
every plan is a trial. commit: the best plan that reached `tasks.min_accuracy`, and did no worse than no adaptation,
is trained once more on all the demonstrations and committed as the next version of the task's own lineage,
`task/<id>`. Task self-edits feed the same ReST-EM policy update as documents' (`agent/policy.py`)."""

from __future__ import annotations

import dataclasses
import json
import operator
import shutil
import time
from pathlib import Path
from threading import Event
from typing import Annotated, Any, Literal, TypedDict

import torch
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent import tasks
from agent.adapt import candidate_adapter, lora_config
from agent.commit import ActiveMoved, commit_version
from agent.generate import document_seed
from agent.graph import after_verify
from agent.ingest import IngestResult, checkpointer, learning, outcome, stepped
from agent.tasks import Example, Task, TrainingPlan
from agent.workspace import Workspace
from memory import Document, SelfEdit, Trial
from model_runtime import TrainingExample, train_lora
from seal.errors import InputError

FORMAT = "task_plan"
GIVEN = -1  # the policy version recorded for a plan the user gave (never selected for a policy update)


class TaskState(TypedDict, total=False):
    document_id: int  # the task, stored as a document of kind "task"
    collect: bool  # score the plans, commit nothing (policy data)
    given_plan: str  # a plan the user chose: the only candidate, and no policy data
    candidates: list[int]  # self-edit ids (plans), tried in order
    current: int
    candidate_dir: str  # the current plan's adapter ("" when the plan trained nothing)
    train: dict[str, Any]  # the current plan's training: tokens, seconds, losses, or its error
    before: dict[str, str]  # held-out input -> the answer without adaptation, shared by every plan
    trials: Annotated[list[dict[str, Any]], operator.add]  # {"trial_id", "passed", "reward", "dir"}
    parent_version: int  # the task lineage's active version when planning began; a commit on any other is refused
    version: int


def lineage(task: Task) -> str:
    return f"task/{task.id}"


def thread(doc: Document) -> dict:
    """The checkpointer thread of a task's graph."""
    return {"configurable": {"thread_id": f"task-{doc.sha256}"}}


def task_of(ws: Workspace, document_id: int) -> Task:
    doc = ws.store.document(document_id)
    return tasks.parse_task(json.loads(doc.text), doc.title)


def split(task: Task, held_out: int) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """(demonstrations to train on, the held-out ones to score with): the last `held_out`, at least one kept."""
    n = min(held_out, len(task.train) - 1)
    return task.train[:len(task.train) - n], task.train[len(task.train) - n:]


def fit(ws: Workspace, demonstrations: tuple[Example, ...], plan: TrainingPlan, name: str, seed: int) -> dict:
    """Test-time-train adapter `name` (attached to the local model) from the base model as `plan` says;
    raises InputError when the plan is over the token budget."""
    lm, tc = ws.lm, ws.config.tasks
    end = lm.tokenizer.eos_token or ""
    examples = [TrainingExample(lm.chat_prompt(messages), answer + end)
                for messages, answer in tasks.training_set(demonstrations, plan, seed)]
    lengths = [len(lm.tokenizer(e.prompt + e.completion, add_special_tokens=False)["input_ids"]) for e in examples]
    tasks.check_budget(plan, lengths, tc.max_train_tokens)
    cfg = dataclasses.replace(ws.config.train, learning_rate=plan.learning_rate, epochs=plan.epochs, replay=0, modules="all",
                              loss_on="completion" if plan.loss == "outputs" else "all")
    torch.manual_seed(cfg.seed)
    lm.add_adapter(name, lora_config(cfg, lm.base))
    result = train_lora(lm, name, examples, cfg, max_tokens=max(lengths))
    return {"tokens": result.tokens, "seconds": result.seconds, "losses": result.losses, "sequences": len(examples)}


def answer(ws: Workspace, shots: list[Example], query: tasks.Value, adapter: str | None, plan: TrainingPlan) -> str:
    """The output for `query` with `shots` in context, voting over the plan's geometric transforms."""
    engine = ws.engine

    def predict(context: list[Example], q: tasks.Value) -> str:
        prompt = engine.chat_prompt(tasks.prompt_messages(context, q))
        return engine.generate([prompt], adapter=adapter, max_new_tokens=ws.config.tasks.answer_tokens)[0]

    return tasks.vote(predict, shots, query, tasks.inference_transforms(plan))


# ---- the stages ------------------------------------------------------------------------------------

def sample_plans(ws: Workspace, task: Task, k: int, policy: int, seed: int) -> tuple[str, list[str]]:
    """The plan prompt and `k` plans sampled from policy version `policy`. A plan that does not parse is
    sampled again, at most `tasks.retries` times; the last try is kept either way (it then scores zero)."""
    tc, se = ws.config.tasks, ws.config.self_edit
    prompt = ws.engine.chat_prompt(tasks.plan_messages(task))
    adapter, texts = ws.attach("policy", policy), []
    for i in range(k):
        for attempt in range(tc.retries + 1):
            def complete(text: str, draw: int = seed + 1000 * attempt + i) -> str:
                return ws.engine.generate([prompt + text], adapter=adapter, max_new_tokens=tc.value_tokens,
                                          temperature=se.temperature, top_p=se.top_p, seed=draw + 7919 * len(text))[0]

            text = tasks.write_plan(complete, task.grids)
            try:
                tasks.parse_plan(text, task.grids)
                break
            except InputError:
                continue
        texts.append(text)
    return prompt, texts


def plan(state: TaskState, runtime: Runtime[Workspace]) -> TaskState:
    ws = runtime.context
    start = time.perf_counter()
    doc = ws.store.document(state["document_id"])
    task = task_of(ws, doc.id)
    policy = ws.store.active("policy")
    if state.get("given_plan"):
        prompt, texts, policy = ws.engine.chat_prompt(tasks.plan_messages(task)), [state["given_plan"]], GIVEN
    else:
        ws.progress("plan", f"sampling {ws.config.tasks.k} training plan(s)")
        prompt, texts = sample_plans(ws, task, ws.config.tasks.k, policy,
                                     document_seed(doc.sha256, ws.config.self_edit.seed))
    rows = ws.store.add_self_edits([SelfEdit(document_id=doc.id, policy_version=policy, format=FORMAT, prompt=prompt,
                                             text=text, sequences=[]) for text in texts])
    ws.store.add_event("stage", doc.id, {"stage": "plan", "seconds": time.perf_counter() - start})
    return {"candidates": [r.id for r in rows], "current": 0, "before": {},
            "parent_version": ws.store.active(lineage(task))}


def train(state: TaskState, runtime: Runtime[Workspace]) -> TaskState:
    ws = runtime.context
    start = time.perf_counter()
    self_edit = ws.store.self_edit(state["candidates"][state["current"]])
    task = task_of(ws, self_edit.document_id)
    ws.progress("train", f"plan {state['current'] + 1}/{len(state['candidates'])}")
    name = candidate_adapter(self_edit.id)
    try:
        training_plan = tasks.parse_plan(self_edit.text, task.grids)
        demonstrations, _ = split(task, ws.config.tasks.held_out)
        info = {**fit(ws, demonstrations, training_plan, name, seed=self_edit.id),
                "plan": dataclasses.asdict(training_plan)}
    except InputError as e:  # an invalid or over-budget plan is data: it scores zero
        info, directory = {"error": str(e)}, ""
    else:
        directory = str(ws.adapters.scratch(f"{name}-"))
        ws.lm.save_adapter(name, Path(directory))
        ws.lm.delete_adapter(name)
    ws.store.add_event("stage", self_edit.document_id, {"stage": "train", "seconds": time.perf_counter() - start})
    return {"candidate_dir": directory, "train": info}


def score(state: TaskState, runtime: Runtime[Workspace]) -> TaskState:
    ws = runtime.context
    start = time.perf_counter()
    index, doc = state["current"], ws.store.document(state["document_id"])
    self_edit_id = state["candidates"][index]
    task = task_of(ws, doc.id)
    ws.progress("score", f"plan {index + 1}/{len(state['candidates'])}")
    shots, held = split(task, ws.config.tasks.held_out)
    info, before = state["train"], dict(state.get("before") or {})
    for e in held:  # without adaptation: computed once, shared by every plan
        key = tasks.render(e.input)
        if key not in before:
            before[key] = answer(ws, list(shots), e.input, None, tasks.DEFAULT_PLAN)
    rows = []
    if "error" not in info:
        training_plan = tasks.parse_plan(ws.store.self_edit(self_edit_id).text, task.grids)
        name = candidate_adapter(self_edit_id)
        ws.engine.load_adapter(name, Path(state["candidate_dir"]))
        after = {tasks.render(e.input): answer(ws, list(shots), e.input, name, training_plan) for e in held}
        ws.engine.delete_adapter(name)
    else:
        after = {tasks.render(e.input): "" for e in held}
    for e in held:
        key = tasks.render(e.input)
        rows.append({"input": key, "answer": tasks.render(e.output), "before": before[key], "after": after[key],
                     "correct_before": tasks.correct(before[key], e.output),
                     "correct_after": tasks.correct(after[key], e.output)})
    accuracy_before = sum(r["correct_before"] for r in rows) / len(rows)
    accuracy_after = sum(r["correct_after"] for r in rows) / len(rows)
    passed = ("error" not in info and accuracy_after >= accuracy_before
              and accuracy_after >= ws.config.tasks.min_accuracy)
    reason = (info["error"] if "error" in info else
              f"solved {accuracy_after:.0%} of the held-out demonstrations (without adaptation {accuracy_before:.0%})")
    last = index + 1 == len(state["candidates"])
    none_passed = not passed and not any(t["passed"] for t in state.get("trials", []))
    status = ("collected" if state.get("collect") else "rejected" if none_passed else None) if last else None
    trial = ws.store.add_trial(Trial(
        document_id=doc.id, self_edit_id=self_edit_id, parent_version=0, config=info.get("plan", {}),
        losses=info.get("losses", []), tokens=info.get("tokens", 0), train_seconds=info.get("seconds", 0.0),
        scores={"held_out": rows}, new_before=accuracy_before, new_after=accuracy_after, retention_before=None,
        retention_after=None, general_before=None, general_after=None, reward=accuracy_after, passed=passed,
        decision="passed" if passed else "rejected", reason=reason), document_status=status)
    if state["candidate_dir"] and (state.get("collect") or not passed):
        shutil.rmtree(state["candidate_dir"], ignore_errors=True)
    ws.store.add_event("stage", doc.id, {"stage": "score", "seconds": time.perf_counter() - start})
    return {"before": before, "current": index + 1,
            "trials": [{"trial_id": trial.id, "passed": passed, "reward": accuracy_after,
                        "dir": state["candidate_dir"]}]}


def commit(state: TaskState, runtime: Runtime[Workspace]) -> TaskState:
    ws = runtime.context
    start = time.perf_counter()
    best = max((t for t in state["trials"] if t["passed"]), key=lambda t: (t["reward"], -t["trial_id"]))
    trial = ws.store.trial(best["trial_id"])
    task = task_of(ws, trial.document_id)
    kind = lineage(task)
    version = ws.store.version_of_trial(trial.id)
    if version is None:
        # The committed adapter learns from every demonstration, with the winning plan.
        self_edit = ws.store.self_edit(trial.self_edit_id)
        training_plan = tasks.parse_plan(self_edit.text, task.grids)
        name = f"task-final-{trial.id}"
        info = fit(ws, task.train, training_plan, name, seed=self_edit.id)
        directory = ws.adapters.scratch(f"{name}-")
        ws.lm.save_adapter(name, directory)
        ws.lm.delete_adapter(name)
        metrics = {"reward": trial.reward, "held_out_before": trial.new_before, "held_out_after": trial.new_after,
                   "plan": dataclasses.asdict(training_plan), "train_tokens": info["tokens"],
                   "train_seconds": info["seconds"]}
        try:
            version = commit_version(ws, kind, directory, state.get("parent_version", ws.store.active(kind)), [trial.document_id],
                                     trial.id,
                                     metrics)
        except ActiveMoved as e:  # a rollback (or another learn of this task) meanwhile: never overwritten
            ws.store.reject_trial(trial.id, trial.document_id, f"{e}; learn the task again on top of it")
            version = None
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    for t in state["trials"]:
        if t["dir"]:
            shutil.rmtree(t["dir"], ignore_errors=True)
    ws.store.add_event("stage", trial.document_id, {"stage": "commit", "seconds": time.perf_counter() - start})
    return {"version": version.number if version else 0}


# ---- entry points ----------------------------------------------------------------------------------

def learn(ws: Workspace, task: Task, source: str, collect: bool = False, plan_text: str = "", resume: bool = False,
          stop: Event | None = None) -> IngestResult | None:
    """Learn a task: its plans tried, the best committed as the next version of `task/<id>` (with `collect`,
    only scored, as policy data; with `plan_text`, that plan instead of the policy's). A task whose active
    version already learned these very demonstrations is reported as known. With `resume`, an interrupted
    run goes on from its checkpoint; None: `stop` paused it between stages."""
    start = time.perf_counter()
    with learning(ws), checkpointer(ws) as saver:
        doc, _ = ws.store.add_document(tasks.dump_task(task), source, task.id, kind="task")
        kind = lineage(task)
        active = ws.store.active(kind)
        if not collect and doc.status == "committed" and active and doc.id in ws.store.version(active, kind).documents:
            return IngestResult(doc.id, source, task.id, "known", active, None, None, f"already learned in v{active}", 0.0)
        if not (resume and doc.status == "pending"):
            ws.store.reset_document(doc.id)
        inputs = {"document_id": doc.id, "collect": collect, "given_plan": plan_text}
        state = stepped(ws, build_task_graph(saver), thread(doc), inputs, resume and doc.status == "pending", stop)
    return None if state is None else outcome(ws, doc.id, state, time.perf_counter() - start, lineage(task))


def solve(ws: Workspace, task: Task) -> tuple[list[str], int]:
    """Answers to the task's test inputs, with its demonstrations in context, from the active version of its
    lineage (v0: the base model, in context only), voting over the plan it was trained with; and the version."""
    kind = lineage(task)
    number = ws.store.active(kind)
    adapter = ws.attach(kind, number)
    training_plan = (tasks.parse_plan(json.dumps(ws.store.version(number, kind).metrics["plan"]), task.grids)
                     if number else tasks.DEFAULT_PLAN)
    return [answer(ws, list(task.train), e.input, adapter, training_plan) for e in task.test], number


# ---- wiring ----------------------------------------------------------------------------------------

def after_score(state: TaskState) -> Literal["train", "commit", "__end__"]:
    """The document graph's rule: try every plan; then commit the best passing one, or end."""
    route = after_verify(state)
    return "train" if route == "adapt" else route


def build_task_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    graph = StateGraph(TaskState, context_schema=Workspace)
    graph.add_node("plan", plan)
    graph.add_node("train", train)
    graph.add_node("score", score)
    graph.add_node("commit", commit)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "train")
    graph.add_edge("train", "score")
    graph.add_conditional_edges("score", after_score, ["train", "commit", END])
    graph.add_edge("commit", END)
    return graph.compile(checkpointer=checkpointer)
