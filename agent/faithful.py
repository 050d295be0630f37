"""Faithfulness of a self-edit to its document. A self-edit that invents names, dates and places teaches
the model false statements that compete with the document's own. A sentence is faithful when every
number and every capitalised word after its first occurs in the document, and at least 70 % of its other
words (stop words aside) do."""

from __future__ import annotations

import re
from functools import lru_cache

STOP_WORDS = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being as that this these those "
    "it its their his her they he she which who whom what when where why how also not no than then there into over "
    "under after before about between during such can could would should may might will shall do does did has have "
    "had so if".split())
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


def sentences(text: str) -> list[str]:
    """Sentences and lines of a self-edit (a line break ends a sentence too), empty ones dropped."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


@lru_cache(maxsize=8)
def _vocabulary(document: str) -> frozenset[str]:
    """The document's words, lower-cased (read once per document, not once per sentence)."""
    return frozenset(w.lower() for w in _WORD.findall(document))


def faithful(sentence: str, document: str) -> bool:
    """Whether the sentence's numbers and names all occur in the document, and most of its other words do."""
    known = _vocabulary(document)
    words = _WORD.findall(sentence)
    named = [w for i, w in enumerate(words) if w[0].isdigit() or (i > 0 and w[0].isupper())]
    content = [w.lower() for w in words if w.lower() not in STOP_WORDS]
    return (len(words) >= 4 and all(w.lower() in known for w in named) and bool(content)
            and sum(w in known for w in content) >= 0.7 * len(content))


def faithful_part(text: str, document: str) -> str:
    """The text's faithful sentences, in order ('' when none is)."""
    return " ".join(s for s in sentences(text) if faithful(s, document))
