"""The README's CLI reference is the one the code renders, so documentation cannot drift."""

from pathlib import Path

from cli.reference import reference

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- cli-reference:start -->\n", "<!-- cli-reference:end -->"


def test_readme_cli_reference_is_current():
    text = README.read_text()
    current = text[text.index(START) + len(START):text.index(END)]
    assert current == reference(), "README CLI reference is stale: run `python -m cli.reference` and paste it"
