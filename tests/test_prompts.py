"""Self-edit parsing into training sequences."""

from agent.prompts import parse_lines, parse_paragraphs, parse_qa


def test_parse_qa_pairs_and_variants():
    text = "Q: Who built it?\nA: Morwen Hale.\n\nQuestion 2: When?\nAnswer 2: 1847\nQ: Who built it?\nA: again\nnoise"
    assert parse_qa(text) == [("Who built it?", "Morwen Hale"), ("When?", "1847")]


def test_parse_lines_strips_bullets_and_drops_short_and_repeated():
    text = "1. The lighthouse is green and white.\n- The lighthouse is green and white.\n* Too short\n\nIt was built in 1847 by Hale."
    assert parse_lines(text) == ["The lighthouse is green and white.", "It was built in 1847 by Hale."]


def test_parse_paragraphs_joins_wrapped_lines():
    assert parse_paragraphs("First line\ncontinues here.\n\nok\n\nSecond paragraph has words.") == [
        "First line continues here.", "Second paragraph has words."]
