"""The agent: the LangGraph state machine that learns a document (generate → adapt → verify → commit),
its prompts, probes and grading, and the functions the faces call (ingest, answer)."""
