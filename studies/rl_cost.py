"""The cost of ReST-EM rounds in a home, from what the runtime recorded: per round (the policy version that
wrote the self-edits), documents collected, per-document and total seconds by stage, and each policy update.

    SEAL_HOME=<home> python -m studies.rl_cost [--out benchmarks/results] [--stem rl-cost]"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks import report
from memory import Store
from seal import config as seal_config

STAGES = ("generate", "adapt", "verify")


def rounds(store: Store) -> dict[str, Any]:
    """Per policy version: the documents whose self-edits it wrote, and their stage seconds."""
    events = store.events("stage")
    out: dict[str, Any] = {}
    for policy, documents in sorted(store.documents_by_policy().items()):
        per_doc = []
        for d in sorted(documents):
            seconds = {stage: sum(e.data["seconds"] for e in events if e.document_id == d and e.data["stage"] == stage)
                       for stage in STAGES}
            per_doc.append(seconds | {"total": sum(seconds.values())})
        out[f"policy v{policy}"] = {
            "documents": len(per_doc),
            "median_per_document": {k: round(statistics.median(r[k] for r in per_doc), 1) for k in (*STAGES, "total")},
            "total_seconds": {k: round(sum(r[k] for r in per_doc), 1) for k in (*STAGES, "total")},
        }
    updates = [{"version": e.data["version"], "seconds": round(e.data["seconds"], 1)} for e in store.events("policy_update")]
    return {"rounds": out, "updates": updates}


def markdown(result: dict[str, Any]) -> str:
    rows = [[name, r["documents"], *(f"{r['median_per_document'][k]} / {r['total_seconds'][k]}" for k in (*STAGES, "total"))]
            for name, r in result["rounds"].items()]
    lines = ["# ReST-EM cost per round", "", f"`{result['command']}` — seconds: median per document / total.", "",
             report.table(["self-edits by", "documents", *STAGES, "total"], rows), ""]
    lines += [f"Policy update to v{u['version']}: {u['seconds']} s." for u in result["updates"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--stem", default="rl-cost")
    args = parser.parse_args(argv)
    cfg = seal_config.load()
    store = Store.at_home(seal_config.home(), cfg.database_url)
    result = {"command": "python -m studies.rl_cost " + " ".join(argv or []), "home": str(seal_config.home()),
              "git": report.git_revision(), **rounds(store)}
    store.close()
    report.write(args.out, args.stem, result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
