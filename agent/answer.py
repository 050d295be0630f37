"""Closed-book answering with a knowledge version: the batch form verify uses, and the single
question and streamed chat forms the faces use (each logged with the version that answered)."""

from __future__ import annotations

from collections.abc import Iterator

from agent.probes import GENERAL_PROBES
from agent.prompts import answer_messages
from agent.workspace import Workspace
from model_runtime import Engine


def closed_book(lm: Engine, questions: list[str], adapter: str | None | list[str | None],
                max_tokens: int) -> list[str]:
    """Greedy answers to `questions`, without any document in context (`adapter`: one, or one per question)."""
    prompts = [lm.chat_prompt(answer_messages(q)) for q in questions]
    return lm.generate(prompts, adapter=adapter, max_new_tokens=max_tokens, temperature=0.0)


def base_general_answers(lm: Engine, max_tokens: int) -> dict[str, str]:
    """The base model's answers to the general-ability set (what `general_examples` measures drift along)."""
    questions = [q for q, _ in GENERAL_PROBES]
    return dict(zip(questions, closed_book(lm, questions, None, max_tokens)))


def ask(ws: Workspace, question: str, max_tokens: int = 64) -> tuple[str, int]:
    """One greedy answer from the active knowledge version, and that version's number."""
    version = ws.store.active("knowledge")
    answer = closed_book(ws.engine, [question], ws.attach("knowledge", version), max_tokens)[0]
    ws.store.add_chat_turn(question, answer, version)
    return answer, version


def chat(ws: Workspace, history: list[dict[str, str]], max_tokens: int = 256) -> Iterator[str]:
    """Stream the reply to a conversation (the last message is the user's) from the active version;
    the turn is logged once the reply is complete."""
    version = ws.store.active("knowledge")
    prompt = ws.engine.chat_prompt(history)
    pieces = []
    for piece in ws.engine.stream(prompt, adapter=ws.attach("knowledge", version), max_new_tokens=max_tokens):
        pieces.append(piece)
        yield piece
    ws.store.add_chat_turn(history[-1]["content"], "".join(pieces).strip(), version)
