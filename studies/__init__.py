"""One-off research studies behind results in BENCHMARKS.md. Not part of the installed package: run
them from a checkout (`python -m studies.rehearsal`, `python -m studies.faithfulness`,
`python -m studies.matmul_shapes`, `SEAL_HOME=<home> python -m studies.rl_cost`), with the `[bench]`
extra installed. They write under benchmarks/results/ like the benchmarks do."""
