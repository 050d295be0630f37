"""The CLI reference in docs/cli.md is the one the code renders, so documentation cannot drift."""

from pathlib import Path

from cli.reference import reference

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_current():
    assert CLI_DOC.read_text() == reference(), "docs/cli.md is stale: run `python -m cli.reference > docs/cli.md`"
