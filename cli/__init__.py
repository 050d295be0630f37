"""The `seal` command line: thin Typer commands that parse options, call one library function each,
and render the result with rich."""
