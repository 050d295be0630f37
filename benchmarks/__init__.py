"""`seal bench`: the runtime measured against the SEAL paper's protocol — knowledge incorporation on
SQuAD, continual forgetting, and the cost of one document cycle. Each benchmark writes a JSON result
and a markdown table under benchmarks/results/ (and a PNG where a picture says it better)."""
