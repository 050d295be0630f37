"""Probes: supplied questions are checked strictly; cloze probes are deterministic and always found
for a sentence of three words or more."""

import json

import pytest

from agent.probes import cloze, load_supplied, occurs_in
from seal.errors import InputError


def test_cloze_blanks_numbers_and_names_not_first_words():
    doc = "Quellmoor has 2,314 residents. The lighthouse was painted by Idony Varnholt. Skelling uses four hoops."
    assert cloze(doc, 5) == [("Fill in the blank: Quellmoor has ____ residents.", "2,314"),
                             ("Fill in the blank: The lighthouse was painted by ____.", "Idony Varnholt"),
                             ("Fill in the blank: Skelling uses four ____.", "hoops")]
    assert cloze(doc, 1) == cloze(doc, 5)[:1]
    assert cloze("Hello there.", 3) == []


def test_occurs_in_is_normalised_whole_tokens():
    assert occurs_in("the Tallow Spire", "called the tallow spire, painted")
    assert not occurs_in("Spire", "Spires everywhere")


@pytest.mark.parametrize("content, needle", [
    ("not json", "not valid UTF-8 JSON"), ("[]", "non-empty JSON list"), ('{"question": "q"}', "non-empty JSON list"),
    ('[{"question": "q", "answer": ""}]', "item 0"), ('[{"question": 1, "answer": "a"}]', "item 0"),
])
def test_supplied_questions_are_checked(tmp_path, content, needle):
    path = tmp_path / "qa.json"
    path.write_text(content)
    with pytest.raises(InputError, match=needle):
        load_supplied(path)


def test_supplied_questions_load(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"question": " Who? ", "answer": "Hale "}]))
    assert load_supplied(path) == [("Who?", "Hale")]
    with pytest.raises(InputError, match="no such questions file"):
        load_supplied(tmp_path / "missing.json")
