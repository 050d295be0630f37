"""Closed-book answering with a knowledge version: the batch form verify uses, and the single
question and streamed chat forms the faces use (each logged with the version that answered)."""

from __future__ import annotations

import weakref
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


# The base model's greedy answers, per model and (question, length): they never change within a process.
_BASE_ANSWERS: weakref.WeakKeyDictionary[Engine, dict[tuple[str, int], str]] = weakref.WeakKeyDictionary()


def base_answers(lm: Engine, questions: list[str], max_tokens: int) -> list[str]:
    """The base model's greedy closed-book answers to `questions`, decoded once per process."""
    known = _BASE_ANSWERS.setdefault(lm, {})
    missing = [q for q in dict.fromkeys(questions) if (q, max_tokens) not in known]
    for q, answer in zip(missing, closed_book(lm, missing, None, max_tokens) if missing else []):
        known[q, max_tokens] = answer
    return [known[q, max_tokens] for q in questions]


def base_general_answers(lm: Engine, max_tokens: int) -> dict[str, str]:
    """The base model's answers to the general-ability set (what `general_examples` measures drift along)."""
    questions = [q for q, _ in GENERAL_PROBES]
    return dict(zip(questions, base_answers(lm, questions, max_tokens)))


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
