"""The ingest graph, wiring only: generate (once per passage) → adapt → verify → (adapt the next candidate |
commit | end).
The same graph collects policy data: with `collect` set, it ends after scoring every candidate."""

from __future__ import annotations

from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.adapt import adapt
from agent.commit import commit
from agent.generate import generate
from agent.state import IngestState
from agent.verify import verify
from agent.workspace import Workspace


def after_generate(state: IngestState) -> Literal["generate", "adapt"]:
    return "generate" if len(state["drafts"]) < state["passages"] else "adapt"


def after_verify(state: IngestState) -> Literal["adapt", "commit", "__end__"]:
    """Try every candidate; then commit the best passing one, or end (document rejected, or collected:
    collecting only logs every candidate's reward)."""
    if state["current"] < len(state["candidates"]):
        return "adapt"
    if not state.get("collect") and any(t["passed"] for t in state["trials"]):
        return "commit"
    return END


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    graph = StateGraph(IngestState, context_schema=Workspace)
    graph.add_node("generate", generate)
    graph.add_node("adapt", adapt)
    graph.add_node("verify", verify)
    graph.add_node("commit", commit)
    graph.add_edge(START, "generate")
    graph.add_conditional_edges("generate", after_generate, ["generate", "adapt"])
    graph.add_edge("adapt", "verify")
    graph.add_conditional_edges("verify", after_verify, ["adapt", "commit", END])
    graph.add_edge("commit", END)
    return graph.compile(checkpointer=checkpointer)
