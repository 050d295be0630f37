"""Probe questions: supplied with the document, written by the model with the document in context
(kept only when the answer occurs in the document), or cloze questions built deterministically from
the document's salient spans. Also the fixed general-ability set verify uses to catch damage."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agent.grading import normalize
from agent.prompts import PROBE_PROMPT, answer_messages, parse_qa
from model_runtime import Engine, LanguageModel, TrainingExample
from seal.errors import InputError

# General ability: questions the bundled base model answers correctly with the closed-book prompt (41 of 60
# asked), none of them trained on (`agent.transfer` keeps the parent on other prompts). Verify compares a
# candidate with the base model on them, and measures its drift from the base along their answers.
GENERAL_PROBES: list[tuple[str, str]] = [
    ("What is the capital of France?", "Paris"),
    ("How many days are there in a week?", "7"),
    ("What gas do plants absorb from the air for photosynthesis?", "carbon dioxide"),
    ("What is the chemical symbol for water?", "H2O"),
    ("Who wrote the play Romeo and Juliet?", "Shakespeare"),
    ("What is the capital of Japan?", "Tokyo"),
    ("How many legs does a spider have?", "8"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("How many hours are there in a day?", "24"),
    ("What is the capital of England?", "London"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Canada?", "Ottawa"),
    ("How many minutes are there in an hour?", "60"),
    ("How many seconds are there in a minute?", "60"),
    ("How many continents are there?", "7"),
    ("How many wheels does a bicycle have?", "2"),
    ("What planet is known as the Red Planet?", "Mars"),
    ("What is the chemical symbol for gold?", "Au"),
    ("What is the chemical symbol for oxygen?", "O"),
    ("Who developed the theory of relativity?", "Einstein"),
    ("Who discovered penicillin?", "Fleming"),
    ("What language is spoken in Brazil?", "Portuguese"),
    ("What is the longest river in Africa?", "Nile"),
    ("What is the tallest mountain in the world?", "Everest"),
    ("What is 5 plus 3?", "8"),
    ("What organ pumps blood around the body?", "heart"),
    ("What is the currency of Japan?", "yen"),
    ("What is the currency of the United States?", "dollar"),
    ("Which animal is the largest land animal?", "elephant"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("What is the main gas in the air we breathe?", "nitrogen"),
    ("What instrument has black and white keys?", "piano"),
    ("Who wrote the novel Pride and Prejudice?", "Jane Austen"),
    ("What is the capital of Australia?", "Canberra"),
    ("What is the smallest prime number?", "2"),
    ("How many sides does a square have?", "4"),
    ("How many sides does a hexagon have?", "6"),
    ("What is the opposite of up?", "down"),
    ("What is the largest desert in the world?", "Sahara"),
]

MAX_PROBES = 50


def general_examples(lm: LanguageModel, answers: dict[str, str]) -> list[TrainingExample]:
    """The general-ability questions, each with the base model's own answer (`answers`) and its end of turn, as
    the chat the model is asked in: held-out text along whose answers `divergence` measures how far an adapter
    has moved from the base model (how differently it would answer)."""
    end = lm.tokenizer.eos_token or ""
    return [TrainingExample(lm.chat_prompt(answer_messages(q)), answers[q] + end) for q, _ in GENERAL_PROBES]


def load_supplied(path: Path) -> list[tuple[str, str]]:
    """Questions from a JSON list of {"question", "answer"} objects; any problem is an InputError."""
    if not path.is_file():
        raise InputError(f"{path}: no such questions file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror})") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid UTF-8 JSON ({e}); expected a list of {{\"question\", \"answer\"}}") from e
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: expected a non-empty JSON list of {{\"question\", \"answer\"}} objects")
    pairs = []
    for i, item in enumerate(data):
        if not (isinstance(item, dict) and isinstance(item.get("question"), str) and isinstance(item.get("answer"), str)
                and item["question"].strip() and item["answer"].strip()):
            raise InputError(f"{path}: item {i} is not an object with non-empty string \"question\" and \"answer\"")
        pairs.append((item["question"].strip(), item["answer"].strip()))
    if len(pairs) > MAX_PROBES:
        raise InputError(f"{path}: {len(pairs)} questions; at most {MAX_PROBES} per document")
    return pairs


def occurs_in(answer: str, document: str) -> bool:
    ref, doc = normalize(answer), normalize(document)
    return bool(ref) and any(doc[i:i + len(ref)] == ref for i in range(len(doc) - len(ref) + 1))


def generated(lm: Engine, document: str, n: int, seed: int) -> list[tuple[str, str]]:
    """Up to `n` QA pairs the model writes with the document in context, kept when the short answer
    occurs in the document and the question does not give it away."""
    if n == 0:
        return []
    prompt = lm.chat_prompt([{"role": "user", "content": PROBE_PROMPT.format(document=document.strip())}])
    text = lm.generate([prompt], max_new_tokens=320, temperature=0.0, repetition_penalty=1.1, seed=seed)[0]
    kept = []
    for question, answer in parse_qa(text):
        if len(answer.split()) <= 5 and occurs_in(answer, document) and not occurs_in(answer, question):
            kept.append((question, answer))
    return kept[:n]


_SPAN = re.compile(r"\b(?:\d[\d,.]*\d|\d)\b|\b[A-Z][a-z]+(?:\s+(?:of\s+)?[A-Z][a-z]+)*\b")


def answer_spans(sentence: str) -> list[re.Match[str]]:
    """The salient spans of a sentence, in order: its numbers, and its proper names but the first word."""
    return [m for m in _SPAN.finditer(sentence)
            if m.start() > 0 or m.group().replace(",", "").replace(".", "").isdigit()]


def document_sentences(document: str) -> list[str]:
    """The document's sentences, in order: a line break ends one too, and a markdown heading's marks go."""
    lines = (line.strip().lstrip("#").strip() for line in document.splitlines())
    return [s for line in lines if line for s in re.split(r"(?<=[.!?])\s+", " ".join(line.split()))]


def cloze(document: str, n: int) -> list[tuple[str, str]]:
    """Up to `n` fill-in-the-blank probes: in each sentence, the first number or non-initial proper name
    is blanked out, or else its last word. Deterministic."""
    probes = []
    for sentence in document_sentences(document):
        spans = answer_spans(sentence)
        if not spans:
            spans = list(re.finditer(r"\w+(?=\W*$)", sentence)) if len(sentence.split()) >= 3 else []
        if spans:
            m = spans[0]
            probes.append((f"Fill in the blank: {sentence[:m.start()]}____{sentence[m.end():]}", m.group()))
        if len(probes) == n:
            break
    return probes


def make_probes(lm: Engine, document: str, n: int, seed: int) -> list[tuple[str, str, str]]:
    """(question, answer, source) probes for a document that came without questions."""
    probes = [(q, a, "generated") for q, a in generated(lm, document, n, seed)]
    if len(probes) < n:
        probes += [(q, a, "cloze") for q, a in cloze(document, n - len(probes))]
    return probes
