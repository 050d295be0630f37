"""Grading: normalised containment decides; exact match and token F1 are recorded."""

from agent.grading import accuracy, grade, normalize


def test_normalize_drops_case_punctuation_and_articles():
    assert normalize("The  Green, and WHITE!") == ["green", "and", "white"]


def test_containment_is_on_whole_tokens():
    """'1847' is in 'built in 1847.' but '184' is not, and '1' is not in '1847'."""
    assert grade("It was built in 1847.", "1847").correct
    assert not grade("It was built in 1847.", "184").correct
    assert not grade("1847", "1").correct


def test_exact_and_f1():
    g = grade("Morwen Hale", "morwen hale.")
    assert g.correct and g.exact and g.f1 == 1.0
    g = grade("the engineer Morwen", "Morwen Hale")
    assert not g.correct and not g.exact and 0 < g.f1 < 1


def test_empty_gold_is_never_correct():
    assert not grade("anything", "the").correct
    assert accuracy([]) == 0.0


def test_numbers_match_in_words_or_digits():
    """'eight' and '8' are the same answer; so are '2,314' and '2314'; '1.5' stays one token."""
    assert grade("A spider has eight legs.", "8").correct
    assert grade("It has 11 strings", "eleven").correct
    assert grade("exactly 2314 residents", "2,314").correct
    assert normalize("It costs 1.5 crowns, or 2,000.") == ["it", "costs", "1.5", "crowns", "or", "2000"]
