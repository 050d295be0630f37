"""Self-edit parsing into training sequences."""

from agent.faithful import faithful, sentences
from agent.generate import pooled_self_edit, training_sequences
from agent.prompts import parse_lines, parse_paragraphs, parse_qa
from model_runtime import LanguageModel
from model_runtime.loading import load
from seal.config import ModelConfig, SelfEditConfig


def test_parse_qa_pairs_and_variants():
    text = "Q: Who built it?\nA: Morwen Hale.\n\nQuestion 2: When?\nAnswer 2: 1847\nQ: Who built it?\nA: again\nnoise"
    assert parse_qa(text) == [("Who built it?", "Morwen Hale"), ("When?", "1847")]


def test_parse_lines_strips_bullets_and_drops_short_and_repeated():
    text = "1. The lighthouse is green and white.\n- The lighthouse is green and white.\n* Too short\n\nIt was built in 1847 by Hale."
    assert parse_lines(text) == ["The lighthouse is green and white.", "It was built in 1847 by Hale."]


def test_parse_paragraphs_joins_wrapped_lines():
    assert parse_paragraphs("First line\ncontinues here.\n\nok\n\nSecond paragraph has words.") == [
        "First line continues here.", "Second paragraph has words."]


def test_faithful_sentences_keep_the_documents_names_and_numbers():
    document = "The Brannock lighthouse was built in 1871 by Ada Quell on the north cape of Ostra."
    assert faithful("Ada Quell built the Brannock lighthouse in 1871.", document)
    assert not faithful("Ada Quell built the Brannock lighthouse in 1902.", document)  # a number not in it
    assert not faithful("It was built by Marcus Quell on the north cape.", document)  # a name not in it
    assert not faithful("Lighthouses inspire poets and sailors everywhere across oceans.", document)  # off the document
    assert sentences("One here. Two there!\n- three\n\n") == ["One here.", "Two there!", "- three"]


def test_faithful_only_drops_invented_sentences_and_pairs_before_training(tiny_model_dir):
    model, tokenizer, name = load(ModelConfig(path=str(tiny_model_dir)), tiny_model_dir)
    lm = LanguageModel(model, tokenizer, name)
    document = "The Brannock lighthouse was built in 1871 by Ada Quell on the north cape of Ostra."
    true, invented = "Ada Quell built the Brannock lighthouse in 1871.", "Marcus Quell painted it red in 1902."
    everything, faithful_only = SelfEditConfig(faithful_only=False), SelfEditConfig()
    rewrite = f"{true} {invented}\n\n{invented}"
    assert [c for _, c in training_sequences(lm, "rewrite", rewrite, document, everything)] == [
        f"{true} {invented}", invented, document]
    assert [c for _, c in training_sequences(lm, "rewrite", rewrite, document, faithful_only)] == [true, document]
    lines = f"- {true}\n- {invented}"
    assert [c for _, c in training_sequences(lm, "implications", lines, document, faithful_only)] == [true, document]
    qa = "Q: Who built the Brannock lighthouse?\nA: Ada Quell\nQ: Who painted the Brannock lighthouse?\nA: Marcus Quell"
    kept = training_sequences(lm, "self_qa", qa, document, faithful_only)
    assert len(training_sequences(lm, "self_qa", qa, document, everything)) == 3
    assert len(kept) == 2 and kept[0][1].startswith("Ada Quell") and kept[1] == ["", document]


def test_pooled_self_edit_keeps_each_faithful_item_of_several_once(tiny_model_dir):
    """Pooling several self-edits keeps every faithful sentence (QA pair for self_qa) of each, once, in order,
    and nothing invented; the pool trains as rewrite, implications or self-QA sequences like one self-edit."""
    model, tokenizer, name = load(ModelConfig(path=str(tiny_model_dir)), tiny_model_dir)
    lm = LanguageModel(model, tokenizer, name)
    document = "The Brannock lighthouse was built in 1871 by Ada Quell on the north cape of Ostra."
    built, cape = "Ada Quell built the Brannock lighthouse in 1871.", "The lighthouse stands on the north cape of Ostra."
    invented = "Marcus Quell painted it red in 1902."
    first, second = f"{built} {invented}\n\n{built}", f"{invented} {cape} {built}"
    assert pooled_self_edit("rewrite", [first, second], document) == f"{built}\n\n{cape}"
    assert pooled_self_edit("rewrite", [invented, invented], document) == ""
    pooled = pooled_self_edit("rewrite", [first, second], document)
    assert [c for _, c in training_sequences(lm, "rewrite", pooled, document, SelfEditConfig())] == [built, cape, document]
    assert [c for _, c in training_sequences(lm, "implications", pooled, document, SelfEditConfig())] == [built, cape, document]
    qa = ["Q: Who built the Brannock lighthouse?\nA: Ada Quell\nQ: Who painted it?\nA: Marcus Quell",
          "Q: Who built the Brannock lighthouse?\nA: Ada Quell\nQ: Where is the Brannock lighthouse?\nA: the north cape of Ostra"]
    pooled_qa = pooled_self_edit("self_qa", qa, document)
    assert parse_qa(pooled_qa) == [("Who built the Brannock lighthouse?", "Ada Quell"),
                                   ("Where is the Brannock lighthouse?", "the north cape of Ostra")]
