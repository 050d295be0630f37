"""Wall time of one document ingest with one self-edit on the configured (default: bundled) model,
by stage, median of N runs. Each run learns the same example document in a fresh home (the
converted model is shared, so the one-time GGUF conversion is not counted; model load is reported
on its own line).

Run: .venv/bin/python -m benchmarks.ingest_timing [--runs 3] [--doc examples/brannock_lighthouse.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

STAGES = ("generate", "adapt", "verify", "commit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--doc", default="examples/brannock_lighthouse.md")
    parser.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "seal-bench-models"),
                        help="shared converted-model cache")
    args = parser.parse_args()

    doc = Path(args.doc)
    rows = []
    load_seconds = None
    for run in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="seal-bench-"))
        Path(args.models).mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(Path(args.models).resolve(), target_is_directory=True)
        os.environ["SEAL_HOME"] = str(home)
        from agent.ingest import DocumentInput, ingest, read_document
        from agent.probes import load_supplied
        from agent.workspace import Workspace

        ws = Workspace.open()
        if load_seconds is None:
            start = time.perf_counter()
            ws.lm  # loaded once per process, as in `seal run`; not part of an ingest
            load_seconds = time.perf_counter() - start
        item = read_document(str(doc), ws.config.ingest.max_document_bytes)
        qa = doc.with_suffix(".qa.json")
        questions = tuple(load_supplied(qa)) if qa.exists() else ()
        start = time.perf_counter()
        [result] = ingest(ws, [DocumentInput(item.source, item.title, item.text, questions)])
        total = time.perf_counter() - start
        stages = {e.data["stage"]: e.data["seconds"] for e in ws.store.events("stage", result.document_id)}
        trial = ws.store.trials(result.document_id)[-1]
        rows.append({"total": total, **stages, "train_tokens": trial.tokens,
                     "tokens_per_second": trial.tokens / trial.train_seconds, "decision": result.status,
                     "new_before": trial.new_before, "new_after": trial.new_after})
        print(json.dumps({"run": run, **{k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}}),
              flush=True)
        ws.close()

    print(f"\nmodel load (once per process, not counted): {load_seconds:.1f} s")
    print(f"median of {args.runs} runs, {doc.name}:")
    print("| stage | seconds |\n|---|---|")
    for key in (*STAGES, "total"):
        print(f"| {key} | {statistics.median(r.get(key, 0.0) for r in rows):.1f} |")
    print(f"| adapt throughput | {statistics.median(r['tokens_per_second'] for r in rows):.0f} trained tokens/s |")


if __name__ == "__main__":
    main()
