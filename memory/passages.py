"""Passages: a document cut along its structure, the unit that retrieval finds and long documents learn.

Markdown headings start a new passage; paragraphs are packed into passages of at most `max_words` words; a
paragraph over the budget is cut between sentences, and a sentence over it between words. A passage that
continues a section begins with the section's heading, so that it still says what it is about."""

from __future__ import annotations

import re

PASSAGE_WORDS = 160  # the default budget (`ingest.passage_words`); about 200 tokens of English
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def _pieces(block: str, max_words: int) -> list[str]:
    """A block cut into pieces of at most `max_words` words: between sentences where it can be."""
    if len(block.split()) <= max_words:
        return [block]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE.split(block):
        words = sentence.split()
        while len(words) > max_words:  # one sentence over the budget: cut between words
            pieces.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            pieces.append(" ".join(current))
            current = []
        current += words
    if current:
        pieces.append(" ".join(current))
    return pieces


def split_passages(text: str, max_words: int = PASSAGE_WORDS) -> list[str]:
    """The passages of `text`, in order; every word of the text is in exactly one of them (headings repeated)."""
    passages: list[str] = []
    current: list[str] = []
    heading = ""

    def close() -> None:
        if current and any(not _HEADING.match(b) for b in current):
            passages.append("\n\n".join(current))
        elif current:  # headings alone: they lead the next passage
            return
        current.clear()

    for block in (b.strip() for b in re.split(r"\n\s*\n", text)):
        if not block:
            continue
        if _HEADING.match(block.splitlines()[0]):
            close()
            heading = block.splitlines()[0].strip()
            rest = block.splitlines()[1:]
            current.append(heading)
            block = "\n".join(rest).strip()
            if not block:
                continue
        for piece in _pieces(block, max(max_words - len(heading.split()), max_words // 2)):
            used = sum(len(b.split()) for b in current)
            if current and used + len(piece.split()) > max_words and any(not _HEADING.match(b) for b in current):
                close()
                if heading:
                    current.append(heading)
            current.append(piece)
    close()
    if current:  # a document of headings only
        passages.append("\n\n".join(current))
    return passages
