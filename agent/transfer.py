"""Transfer text: what a candidate adapter learns one document from. Under `train.objective = "ce"` that is
the self-edit and the document by cross-entropy. Under "distill" the parent version reading the document is
the teacher and the candidate reading nothing is the student, on five parts, each with its weight:
  the document's own text (cross-entropy) · the self-edit · questions built by rule from the document's
  names, numbers and dates, asked in the chat format the model is asked in, answered with the sentence that
  states the fact · the document's sentences, each alone after its title · the whole document as the chat
  answer to "What do you know about <title>?" (the recital);
the teacher reads the document before each. And a retention part: the base model's own answers to 48 general
questions, on which the teacher is the base model (so that general ability stays anchored to it however many
versions follow), and replayed earlier material, on which the teacher is the parent; each reads the same text
as the student. No question is built on a sentence that holds the answer of a probe or of a benchmark's
question (`held_out`)."""

from __future__ import annotations

import re

from agent import prompts
from agent.answer import base_answers
from agent.generate import document_sequences, self_edit_items, training_sequences
from agent.probes import answer_spans, document_sentences, occurs_in
from model_runtime import Engine, LanguageModel, TrainingExample
from seal.config import Config

# Retention: general questions, none of them in verify's general-ability set. The candidate keeps its parent's
# distributions along the base model's own answers to them (`base_answers`), where its greedy answers are decided.
RETENTION_QUESTIONS: list[str] = [
    "What is the capital of Italy?", "What is the capital of Germany?", "What is the capital of Spain?",
    "What is the capital of India?", "What is the capital of Kenya?", "What is the capital of Mexico?",
    "How many months are there in a year?", "How many weeks are there in a year?", "How many legs does a dog have?",
    "How many sides does a triangle have?", "How many days are there in a leap year?", "How many planets are in the solar system?",
    "How many strings does a standard guitar have?", "How many players are on a football team?",
    "What is 7 plus 6?", "What is 9 times 3?", "What is 20 minus 4?", "What is half of 50?",
    "What colour is the sky on a clear day?", "What colour are bananas when they are ripe?",
    "Which planet do we live on?", "What is the largest planet in the solar system?", "What is the closest star to Earth?",
    "What do bees make?", "Which animal is known as the king of the jungle?", "What is the fastest land animal?",
    "Who painted the Mona Lisa?", "Who wrote the Odyssey?", "Who wrote Hamlet?", "Who composed the Fifth Symphony?",
    "Who was the first person to walk on the Moon?", "Who invented the telephone?",
    "What is the chemical symbol for iron?", "What is the boiling point of water in Celsius?",
    "What is the freezing point of water in Celsius?", "What force keeps us on the ground?",
    "What is the opposite of cold?", "What is the opposite of big?", "What is the plural of mouse?",
    "Which ocean lies between Europe and America?", "What is the longest river in South America?",
    "On which continent is Brazil?", "What language is spoken in Germany?", "What is the currency of the United Kingdom?",
    "In which year did the Second World War end?", "In which city is the Eiffel Tower?",
    "What do you call a baby cat?", "Write one sentence about the sea.",
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


def recital(lm: LanguageModel, title: str, passage: str) -> tuple[str, str]:
    """A passage as the chat answer to the question about its document's title: (prompt, completion)."""
    return (lm.chat_prompt(prompts.answer_messages(prompts.recital_question(title))),
            f"{passage.strip()}{lm.tokenizer.eos_token or ''}")


def training_examples(lm: LanguageModel, title: str, parts: list[tuple[str, str]], format: str,
                      held_out: list[str], replay: list[list[str]], cfg: Config,
                      engine: Engine | None = None) -> list[TrainingExample]:
    """What a candidate trains on for a document (see the module's docstring): `parts` are its passages, each
    with its self-edit (one for a document of one passage; the teacher reads a passage, never the whole of a
    long document), `held_out` the answers of its probes (and of a benchmark's questions), `replay` the
    [prompt, completion] sequences of earlier committed material; `engine` decodes the base model's answers
    for retention (default: `lm`)."""
    t = cfg.train
    if t.objective == "ce":
        return [TrainingExample(p, c) for passage, edit in parts
                for p, c in training_sequences(lm, format, edit, passage, cfg.self_edit)] + [
                TrainingExample(p, c) for p, c in replay]
    end = lm.tokenizer.eos_token or ""
    heading = f"{title}\n" if title else ""
    chat = lambda question, *context: lm.chat_prompt(
        prompts.open_book_messages(context[0], question) if context else prompts.answer_messages(question))
    document: list[list[TrainingExample]] = [[], [], [], [], []]
    for passage, edit in parts:
        sentences = document_sentences(passage)
        document[0] += [TrainingExample(p, c) for p, c in document_sequences(lm, passage, cfg.self_edit)]
        document[1] += [TrainingExample(p, c, teacher, ce=0.0, distill=t.self_edit)
                        for p, c, teacher in self_edit_items(lm, format, edit, passage, cfg.self_edit)]
        document[2] += [TrainingExample(chat(q), f"{a}{end}", chat(q, passage), ce=t.answer_ce, distill=t.questions)
                        for q, a in questions(passage, held_out, t.max_questions)]
        document[3] += [TrainingExample(heading, s, f"{heading}{passage.strip()}\n\n{heading}", ce=0.0,
                                        distill=t.sentences) for s in sentences]
        if title:
            asked, answer = recital(lm, title, passage)
            teacher = chat(prompts.recital_question(title), passage)
            document[4] += [TrainingExample(asked, answer, teacher, ce=t.answer_ce, distill=t.recital)]
    retained = [
        [TrainingExample(chat(q), f"{a}{end}", chat(q), ce=0.0, distill=t.retention, base_teacher=True)
         for q, a in zip(RETENTION_QUESTIONS, base_answers(engine or lm, RETENTION_QUESTIONS, cfg.verify.answer_tokens))],
        [TrainingExample(p, c, p, ce=0.0, distill=t.retention) for p, c in replay],
    ]
    weights = [t.passage, t.self_edit, t.questions or t.answer_ce, t.sentences, t.recital, t.retention, t.retention]
    return [ex for part, weight in zip(document + retained, weights) if weight for ex in part]
