"""Deterministic grading of a closed-book answer against a gold answer: normalised containment
(the decision), with exact match and token F1 recorded beside it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"(?!(?<=\d)\.(?=\d))[^\w\s]")  # any punctuation but a decimal point
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
                                                       "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100"}


def normalize(text: str) -> list[str]:
    """SQuAD-style normalisation, as tokens: lower case, no punctuation, no articles; number words as
    digits ("eight" = "8") and thousands separators dropped ("2,314" = "2314")."""
    text = _PUNCT.sub(" ", _THOUSANDS.sub("", text.lower()))
    tokens = _ARTICLES.sub(" ", text).split()
    return [_NUMBER_WORDS.get(t, t) for t in tokens]


@dataclass(frozen=True)
class Grade:
    correct: bool  # the gold answer's tokens occur, in order and contiguous, in the prediction
    exact: bool
    f1: float


def grade(prediction: str, gold: str) -> Grade:
    pred, ref = normalize(prediction), normalize(gold)
    if not ref:
        return Grade(correct=False, exact=False, f1=0.0)
    contained = any(pred[i:i + len(ref)] == ref for i in range(len(pred) - len(ref) + 1))
    common = sum((Counter(pred) & Counter(ref)).values())
    f1 = 0.0 if common == 0 else 2 * common / (len(pred) + len(ref))
    return Grade(correct=contained, exact=pred == ref, f1=f1)


def accuracy(grades: list[Grade]) -> float:
    return sum(g.correct for g in grades) / len(grades) if grades else 0.0
