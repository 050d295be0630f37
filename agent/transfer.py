"""Transfer text: what a candidate adapter learns one document from. Under `train.objective = "ce"` that is
the self-edit and the document by cross-entropy. Under "distill" the parent version reading the document is
the teacher and the candidate reading nothing is the student, on four parts, each with its weight:
  the document's own text (cross-entropy) · the self-edit (the teacher reads the document first) ·
  questions built by rule from the document's names, numbers and dates, asked in the chat format the model
  is asked in, answered with the sentence that states the fact (the teacher reads the document first) ·
  the document's sentences, each alone (the teacher reads the sentences before it);
and a retention part: fixed general prompts and replayed earlier material, on which the teacher is the
parent reading the same text. No question is built on a sentence that holds the answer of a probe or of a
benchmark's question (`held_out`)."""

from __future__ import annotations

import re

from agent import prompts
from agent.generate import document_sequences, self_edit_items
from agent.probes import answer_spans, document_sentences, occurs_in
from model_runtime import LanguageModel, TrainingExample
from seal.config import Config

# Retention: general questions and requests, none of them in verify's general-ability set, each with an
# answer in the way the model answers; the candidate keeps its parent's distributions along these answers.
GENERAL_PROMPTS: list[tuple[str, str]] = [
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("How many months are there in a year?", "There are 12 months in a year."),
    ("What colour is the sky on a clear day?", "On a clear day the sky is blue."),
    ("Which planet do we live on?", "We live on the planet Earth."),
    ("What do bees make?", "Bees make honey."),
    ("How many sides does a triangle have?", "A triangle has 3 sides."),
    ("Which animal is known as the king of the jungle?", "The lion is known as the king of the jungle."),
    ("What is the largest planet in the solar system?", "The largest planet in the solar system is Jupiter."),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by Leonardo da Vinci."),
    ("What is the capital of India?", "The capital of India is New Delhi."),
    ("How many weeks are there in a year?", "There are 52 weeks in a year."),
    ("What is the opposite of cold?", "The opposite of cold is hot."),
    ("Who wrote the Odyssey?", "The Odyssey was written by Homer."),
    ("What is the chemical symbol for iron?", "The chemical symbol for iron is Fe."),
    ("How many legs does a dog have?", "A dog has 4 legs."),
    ("Write one sentence about the sea.", "The sea is vast, deep and full of life."),
]

_YEAR = re.compile(r"^(1[0-9]|20)\d\d$")


def questions(document: str, held_out: list[str], n: int) -> list[tuple[str, str]]:
    """Up to `n` (question, answer) pairs built by rule from the sentences that contain no held-out answer:
    for each salient span (the first span of every sentence before any second one), a question that echoes
    the sentence with the span asked for ("… was built in what year?") and a fill-in-the-blank one, each
    answered with the whole sentence, the way the model answers (a bare span taught it to answer general
    questions with the document's numbers)."""
    per_sentence = [[(s, m) for m in answer_spans(s)] for s in document_sentences(document)
                    if not any(occurs_in(answer, s) for answer in held_out)]
    pairs: list[tuple[str, str]] = []
    for rank in range(max(map(len, per_sentence), default=0)):
        for spans in per_sentence:
            if rank < len(spans):
                sentence, m = spans[rank]
                span = m.group()
                wh = "what year" if _YEAR.match(span) else "how many" if span[0].isdigit() else "what"
                ask = f"{sentence[:m.start()]}{wh}{sentence[m.end():]}".rstrip(" .!?")
                pairs += [(ask[0].upper() + ask[1:] + "?", sentence),
                          (f"Fill in the blank: {sentence[:m.start()]}____{sentence[m.end():]}", sentence)]
    return pairs[:n]


def training_examples(lm: LanguageModel, title: str, document: str, format: str, self_edit: str,
                      held_out: list[str], replay: list[list[str]], cfg: Config) -> list[TrainingExample]:
    """What a candidate trains on for `document` (see the module's docstring): `held_out` are the answers of
    its probes (and of a benchmark's questions), `replay` the [prompt, completion] sequences of earlier
    committed material."""
    t = cfg.train
    passage = document_sequences(lm, document, cfg.self_edit)
    items = self_edit_items(lm, format, self_edit, document, cfg.self_edit)
    if t.objective == "ce":
        return [TrainingExample(p, c) for p, c in [[p, c] for p, c, _ in items] + passage + replay]
    end = lm.tokenizer.eos_token or ""
    heading = f"{title}\n" if title else ""
    sentences = document_sentences(document)
    chat = lambda question, *context: lm.chat_prompt(
        prompts.open_book_messages(context[0], question) if context else prompts.answer_messages(question))
    parts = [
        [TrainingExample(p, c) for p, c in passage],
        [TrainingExample(p, c, teacher, ce=0.0, distill=t.self_edit) for p, c, teacher in items],
        [TrainingExample(chat(q), f"{a}{end}", chat(q, document), ce=t.answer_ce, distill=t.questions)
         for q, a in questions(document, held_out, t.max_questions)],
        [TrainingExample(heading, s, heading + "\n".join(sentences[:i]) + "\n", ce=0.0, distill=t.sentences)
         for i, s in enumerate(sentences) if i],
        [TrainingExample(chat(q), f"{a}{end}", chat(q), ce=0.0, distill=t.retention) for q, a in GENERAL_PROMPTS],
        [TrainingExample(p, c, p, ce=0.0, distill=t.retention) for p, c in replay],
    ]
    weights = [t.passage, t.self_edit, t.questions or t.answer_ce, t.sentences, t.retention, t.retention]
    return [ex for part, weight in zip(parts, weights) if weight for ex in part]
