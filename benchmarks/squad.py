"""SQuAD-shaped passages: a JSON list of {"title", "context", "questions": [{"question", "answer"}]}
(../shared/data/squad_val.json or any file of that shape), and the canonical splits every benchmark
uses so numbers are comparable across runs: shuffle with seed 42; eval = the first 200 records,
train = the records after them, in that order."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from seal.errors import InputError

EVAL_SIZE = 200
SPLITS = ("eval", "train")


@dataclass(frozen=True)
class Passage:
    title: str
    context: str
    questions: tuple[tuple[str, str], ...]  # (question, gold answer)


def load(path: Path) -> list[Passage]:
    """Every record of the file, in file order; a malformed file is an InputError naming the problem."""
    if not path.is_file():
        raise InputError(f"{path}: no such data file (the SQuAD set is ../shared/data/squad_val.json)")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable UTF-8 JSON ({e})") from e
    if not isinstance(records, list) or not records:
        raise InputError(f'{path}: expected a non-empty JSON list of {{"title", "context", "questions"}} records')
    passages = []
    for i, r in enumerate(records):
        ok = (isinstance(r, dict) and isinstance(r.get("context"), str) and r["context"].strip()
              and isinstance(r.get("questions"), list) and r["questions"]
              and all(isinstance(q, dict) and isinstance(q.get("question"), str) and isinstance(q.get("answer"), str)
                      and q["question"].strip() and q["answer"].strip() for q in r["questions"]))
        if not ok:
            raise InputError(f'{path}: record {i} needs a non-empty "context" and a non-empty list of '
                             '"questions", each {"question": str, "answer": str}')
        passages.append(Passage(str(r.get("title", f"record {i}")), r["context"].strip(),
                                tuple((q["question"].strip(), q["answer"].strip()) for q in r["questions"])))
    return passages


def split(passages: list[Passage], name: str, n: int, offset: int = 0) -> list[Passage]:
    """`n` passages of split `name`, starting `offset` records into it."""
    if name not in SPLITS:
        raise InputError(f"split {name!r}: use one of {', '.join(SPLITS)}")
    shuffled = list(passages)
    random.Random(42).shuffle(shuffled)
    part = shuffled[:EVAL_SIZE] if name == "eval" else shuffled[EVAL_SIZE:]
    if n < 1 or offset < 0 or offset + n > len(part):
        raise InputError(f"{name} split has {len(part)} passages; --n {n} from offset {offset} does not fit")
    return part[offset:offset + n]
