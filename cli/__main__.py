"""`python -m cli` runs the `seal` command."""

from cli.main import main

main()
