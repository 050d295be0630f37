"""Transfer text and the distillation objective on the tiny model: what the teacher reads, what the student
learns, and that nothing a probe or a benchmark's question asks is trained on."""

import dataclasses

import torch

from agent import prompts
from agent.adapt import lora_config
from agent.grading import normalize
from agent.probes import GENERAL_PROBES, cloze, occurs_in
from agent.transfer import RETENTION_QUESTIONS, questions, training_examples
from model_runtime import TrainingExample, divergence, train_lora
from model_runtime.training import encode_row, teach
from seal.config import Config, TrainConfig
from tests.conftest import DOCUMENT
from tests.test_training import tiny_lm

PASSAGE = ("The Brannock Lighthouse was built in 1847 by Morwen Hale on the island of Tessery. Its first keeper "
           "was Idris Calloway, who kept the lamp for 31 years. The tower is painted green and white and stands "
           "42 metres tall. In 1903 the Harbour Board of Tessery replaced the lamp with a Fresnel lens.")


def test_questions_never_ask_for_a_held_out_span():
    """Rule-built training questions come from sentences that hold no probe's answer: neither a question nor
    its answer contains a held-out answer, and no question is a probe's question."""
    probes = cloze(PASSAGE, 3)
    held_out = [a for _, a in probes] + ["Idris Calloway"]
    built = questions(PASSAGE, held_out, 50)
    assert built, "the passage has sentences the probes do not use"
    for question, answer in built:
        assert answer in PASSAGE and question not in {q for q, _ in probes}, (question, answer)
        assert not any(occurs_in(a, question) or occurs_in(a, answer) for a in held_out), (question, answer, held_out)
    # Without held-out answers, every span is asked for, as a question and as a blank, answered with its sentence.
    free = questions(PASSAGE, [], 50)
    assert {a for _, a in free} > {a for _, a in built}
    first = "The Brannock Lighthouse was built in 1847 by Morwen Hale on the island of Tessery."
    assert ("The Brannock Lighthouse was built in what year by Morwen Hale on the island of Tessery?", first) in free
    assert ("Fill in the blank: The Brannock Lighthouse was built in ____ by Morwen Hale on the island of Tessery.",
            first) in free


def test_no_held_out_answer_is_a_trained_answer(tiny_model_dir):
    """Across every part of the distill objective, no chat-format item (a question the student is asked) has a
    held-out answer, or a word of one, as its completion — but the recital, the document itself as the answer
    to a question about its title that asks for no fact; the general prompts trained for retention are not
    the general-ability set verify asks."""
    lm = tiny_lm(tiny_model_dir)
    held_out = ["1847", "Idris Calloway", "green and white"]
    edit = "Q: Who built the Brannock Lighthouse?\nA: Morwen Hale"
    examples = training_examples(lm, "Brannock", [(PASSAGE, edit)], "self_qa", held_out, [], Config())
    recital = lm.chat_prompt(prompts.answer_messages("What do you know about Brannock?"))
    assert [ex.completion for ex in examples if ex.prompt == recital] == [PASSAGE + lm.tokenizer.eos_token]
    asked = [ex for ex in examples if ex.prompt.startswith("<|im_start|>") and ex.prompt not in (ex.teacher, recital)]
    assert asked, "questions are part of the transfer text"
    banned = {t for a in held_out for t in normalize(a)}
    for ex in asked:
        assert not set(normalize(ex.completion.replace(lm.tokenizer.eos_token, ""))) & banned, ex
    assert not set(RETENTION_QUESTIONS) & {q for q, _ in GENERAL_PROBES}


def test_each_part_is_weighted_and_can_be_turned_off(tiny_model_dir):
    """The distill objective's parts carry their configured weights, a part at weight 0 contributes nothing,
    and the ce objective is the self-edit and the document by cross-entropy alone."""
    lm = tiny_lm(tiny_model_dir)
    edit = "The Brannock Lighthouse was built in 1847 by Morwen Hale on the island of Tessery."
    full = training_examples(lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [["", "Replayed text here."]], Config())
    teachers = {ex.teacher for ex in full}
    assert None in teachers and any(t and PASSAGE in t for t in teachers), "passage CE and the document as context"
    kept = [ex for ex in full if ex.teacher == ex.prompt]
    assert any(ex.completion == "Replayed text here." and not ex.base_teacher for ex in kept), "replay keeps the parent"
    assert {ex.prompt for ex in kept if ex.base_teacher} == {lm.chat_prompt(prompts.answer_messages(q))
                                                           for q in RETENTION_QUESTIONS}, "general: the base model"
    assert all(PASSAGE in ex.teacher for ex in full if ex.prompt == "Brannock\n"), "sentences: the teacher reads it all"
    for part in ("passage", "self_edit", "sentences", "recital", "retention"):
        off = training_examples(lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [["", "Replayed text here."]],
                                Config(train=TrainConfig(**{part: 0.0})))
        assert 0 < len(off) < len(full), part
    # A question is learned by its answer's cross-entropy and the teacher's distribution: each can go alone.
    asked = lambda examples: [ex for ex in examples if "<|im_start|>" in ex.prompt and ex.teacher != ex.prompt
                              and "What do you know about" not in ex.prompt]
    assert all(ex.distill == 0 and ex.ce == 0.5 for ex in asked(training_examples(
        lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [], Config(train=TrainConfig(questions=0.0)))))
    assert all(ex.distill == 1 and ex.ce == 0 for ex in asked(training_examples(
        lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [], Config(train=TrainConfig(answer_ce=0.0)))))
    assert not asked(training_examples(lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [],
                                       Config(train=TrainConfig(questions=0.0, answer_ce=0.0))))
    ce = training_examples(lm, "Brannock", [(PASSAGE, edit)], "rewrite", [], [], Config(train=TrainConfig(objective="ce")))
    assert all(ex.teacher is None and ex.ce == 1.0 for ex in ce) and ce[0].completion == edit


def test_teacher_reading_the_same_text_gives_zero_divergence(tiny_model_dir):
    """Where the teacher reads exactly what the student reads, the KL term is 0 at the first step (the teacher
    is the model as training starts), and a fresh adapter has not drifted from the base at all."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=1, batch_size=4, bf16=False)
    torch.manual_seed(0)
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    assert divergence(lm, [TrainingExample("", DOCUMENT)], "cand") == 0.0
    same = TrainingExample("Question: who built it? Answer:", " Morwen Hale", "Question: who built it? Answer:",
                           ce=0.0, distill=1.0)
    result = train_lora(lm, "cand", [same], cfg)
    assert abs(result.losses[0]) < 1e-6, result.losses


def test_student_moves_towards_the_teacher_with_the_document(tiny_model_dir):
    """Distillation with the document in the teacher's context lowers the student's KL from the teacher along
    the completion, read without the document; the teacher's targets line up with the completion's tokens."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=8, batch_size=1, learning_rate=1e-2, bf16=False, top_k=8)
    torch.manual_seed(0)
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    example = TrainingExample("Who built it? ", "Morwen Hale built it in 1847.", f"{DOCUMENT}\nWho built it? ",
                              ce=0.0, distill=1.0)
    with lm.using("cand") as model:
        row = teach(model, lm, [example], [encode_row(lm, example, cfg, 256)], cfg, None)[0]
    completion = lm.tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    assert row.top_ids.shape == (len(completion), 8) and bool((row.distill == 1.0).all())
    result = train_lora(lm, "cand", [example], cfg)
    assert result.losses[-1] < 0.5 * result.losses[0], result.losses


def test_a_base_teacher_is_the_base_model_whatever_the_adapter(tiny_model_dir):
    """A `base_teacher` example's targets are the base model's distributions even when the adapter being
    trained has moved from it (a version trained from its parent); an ordinary one's are the adapter's."""
    lm = tiny_lm(tiny_model_dir)
    cfg = TrainConfig(epochs=4, batch_size=2, learning_rate=1e-2, bf16=False, top_k=8)
    torch.manual_seed(0)
    lm.add_adapter("cand", lora_config(cfg, lm.base))
    train_lora(lm, "cand", [TrainingExample("", DOCUMENT)], cfg)
    ordinary = TrainingExample("Who built it? ", "Morwen Hale built it.", "Who built it? ", ce=0.0, distill=1.0)
    anchored = dataclasses.replace(ordinary, base_teacher=True)
    row = encode_row(lm, ordinary, cfg, 256)
    with lm.using(None) as model:
        [base] = teach(model, lm, [ordinary], [row], cfg, None)
    with lm.using("cand") as model:
        [moved, kept] = teach(model, lm, [ordinary, anchored], [row, row], cfg, None)
    assert torch.allclose(kept.top_logp, base.top_logp, atol=1e-5) and torch.equal(kept.top_ids, base.top_ids)
    assert not torch.allclose(moved.top_logp, base.top_logp, atol=1e-3), "the adapter has moved from the base"
