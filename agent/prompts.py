"""Prompt wording and parsing: the self-edit formats (prompt + parser each), the closed-book answer
prompt that verify and chat share (and its open-book twin the benchmarks use), and the probe-writing prompt."""

from __future__ import annotations

import re

ANSWER_SYSTEM = "You are a helpful assistant. Answer the question in a few words."

SELF_EDIT_PROMPTS = {
    "implications": (
        "Read the passage below. List the facts it states and the implications that follow from them, "
        "one per line. Write every line as a complete sentence that names its subject, so it makes "
        "sense on its own.\n\nPassage:\n{document}"),
    "long_implications": (
        "Read the passage below. Write a detailed explanation of everything it implies: restate each "
        "fact, connect the facts to each other, and spell out their consequences, in several short "
        "paragraphs. Always name people, places and things in full.\n\nPassage:\n{document}"),
    "rewrite": (
        "Rewrite the passage below in your own words. Keep every name, number, date and place exactly "
        "as written, and write complete sentences.\n\nPassage:\n{document}"),
    "self_qa": (
        "Read the passage below and write questions about its facts, each followed by its short "
        "answer taken from the passage. Each question must name its subject. Use this form:\n"
        "Q: <question>\nA: <answer>\n\nPassage:\n{document}"),
}

PROBE_PROMPT = (
    "Read the passage below and write 8 questions about its names, numbers, dates and places, each "
    "followed by its answer copied word for word from the passage (a few words at most). Each question "
    "must name its subject. Use this form:\nQ: <question>\nA: <answer>\n\nPassage:\n{document}")


def answer_messages(question: str) -> list[dict[str, str]]:
    """The closed-book question as chat messages; verify, ask and self-QA training all use this."""
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": question}]


def recital_question(title: str) -> str:
    """The question whose answer is a whole document: what the model is asked to recite about its title."""
    return f"What do you know about {title}?"


def open_book_messages(document: str, question: str) -> list[dict[str, str]]:
    """The question with the document in context: the upper bound a retrieval system would reach."""
    return [{"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": with_passages([document], question)}]


def with_passages(passages: list[str], question: str) -> str:
    """A question with retrieved passages before it (none: the question alone)."""
    return "\n\n".join([*(p.strip() for p in passages), question])


def self_edit_messages(format: str, document: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": SELF_EDIT_PROMPTS[format].format(document=document.strip())}]


_QA = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:Q|Question)\s*\d*\s*[:.]\s*(?P<q>.+?)\s*$\s*^\s*(?:A|Answer)\s*\d*\s*[:.]\s*(?P<a>.+?)\s*$",
                 re.MULTILINE | re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]+|\d+[.)]|\(\d+\))\s*")


def parse_qa(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs written as 'Q: …' / 'A: …' lines; duplicates dropped, order kept."""
    pairs, seen = [], set()
    for m in _QA.finditer(text):
        q, a = m.group("q").strip(), m.group("a").strip().rstrip(".")
        if q and a and q.lower() not in seen:
            seen.add(q.lower())
            pairs.append((q, a))
    return pairs


def parse_lines(text: str, min_words: int = 4) -> list[str]:
    """Sentences written one per line (bullets and numbering stripped); short and repeated lines dropped."""
    lines, seen = [], set()
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        if len(line.split()) >= min_words and line.lower() not in seen:
            seen.add(line.lower())
            lines.append(line)
    return lines


def parse_paragraphs(text: str, min_words: int = 4) -> list[str]:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return [p for p in paragraphs if len(p.split()) >= min_words]
