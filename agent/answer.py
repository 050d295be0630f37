"""Answering: closed-book with a knowledge version (the batch form verify uses), and the single question
and streamed chat forms the faces use, which answer from either memory or both (`CONTEXTS`): the learned
weights, passages of ingested documents retrieved from the store, or the two together. Each face's turn is
logged with the version that answered."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from agent.probes import GENERAL_PROBES
from agent.prompts import answer_messages, with_passages
from agent.workspace import Workspace
from memory import Hit
from model_runtime import Engine
from seal.errors import InputError

# none: the learned weights alone (closed-book) · retrieve: retrieved passages in context, base model ·
# both: retrieved passages in context with the knowledge version.
CONTEXTS = ("none", "retrieve", "both")


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


@dataclass(frozen=True)
class Answer:
    text: str
    version: int  # the knowledge version that answered (0: the base model, as `retrieve` always is)
    passages: list[Hit] = field(default_factory=list)  # what was put in context


def cited(hits: list[Hit]) -> list[dict[str, object]]:
    """The passages an answer used, as the faces list them (`--json`, the API)."""
    return [{"document_id": h.document_id, "passage_id": h.passage_id, "title": h.title, "position": h.position,
             "score": round(h.score, 6)} for h in hits]


def context_of(ws: Workspace, context: str | None) -> str:
    """The context mode asked for (None: `answer.context`), checked."""
    context = context or ws.config.answer.context
    if context not in CONTEXTS:
        raise InputError(f"context {context!r}: use one of {', '.join(CONTEXTS)}")
    return context


def retrieve(ws: Workspace, query: str, version: int, k: int | None = None) -> list[Hit]:
    """The passages of the documents knowledge version `version` covers (`Store.retrievable_documents`) that
    best match `query`."""
    k = ws.config.answer.passages if k is None else k
    return ws.store.search(query, k, ws.store.retrievable_documents(version))


def prepared(ws: Workspace, messages: list[dict[str, str]], context: str | None,
             version: int | None = None) -> tuple[list[dict[str, str]], int, list[Hit]]:
    """A conversation made ready to answer in a context mode: (messages, with the passages retrieved for the
    last user turn put in it; the knowledge version to answer with; those passages). `version`: the one
    asked for (None: the active one); retrieval covers that version's documents."""
    context = context_of(ws, context)
    version = ws.store.active("knowledge") if version is None else version
    if context == "none":
        return messages, version, []
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    hits = retrieve(ws, messages[last]["content"], version)
    messages = [*messages[:last], {"role": "user", "content": with_passages([h.text for h in hits],
                                                                              messages[last]["content"])},
                *messages[last + 1:]]
    return messages, version if context == "both" else 0, hits


def ask(ws: Workspace, question: str, context: str | None = None, max_tokens: int = 64) -> Answer:
    """One greedy answer, from the memories `context` names (None: `answer.context`)."""
    messages, version, hits = prepared(ws, answer_messages(question), context)
    prompt = ws.engine.chat_prompt(messages)
    text = ws.engine.generate([prompt], adapter=ws.attach("knowledge", version), max_new_tokens=max_tokens,
                              temperature=0.0)[0]
    ws.store.add_chat_turn(question, text, version)
    return Answer(text, version, hits)


def chat(ws: Workspace, history: list[dict[str, str]], context: str | None = None,
         max_tokens: int = 256) -> tuple[Answer, Iterator[str]]:
    """The reply to a conversation (the last message is the user's), streamed from the memories `context`
    names: (the answer's version and passages, known before the reply; the reply's pieces). The turn is
    logged once the reply is complete."""
    messages, version, hits = prepared(ws, history, context)
    prompt = ws.engine.chat_prompt(messages)

    def pieces() -> Iterator[str]:
        said = []
        for piece in ws.engine.stream(prompt, adapter=ws.attach("knowledge", version), max_new_tokens=max_tokens):
            said.append(piece)
            yield piece
        ws.store.add_chat_turn(history[-1]["content"], "".join(said).strip(), version)

    return Answer("", version, hits), pieces()
