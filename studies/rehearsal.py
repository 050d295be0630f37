"""Does rehearsing a rejected document's own text keep what the base model knew of it? The continual
benchmark's retention gate guards the answers the model knew of rejected documents; when every later
candidate loses such an answer, that one answer vetoes every later commit. This measures whether
replaying the document's text during adapt would save it.

For one continual sequence (the eval split's passages OFFSET.. OFFSET+DOCUMENTS): the first passage's
questions that the base model answers right, then, for each later passage, the candidate the runtime's
adapt trains from v0 (that passage's rewrite self-edit with the same seed, the passage itself), once
as is and once with the first passage's text added to its sequences. Each is scored closed-book on the
first passage's known questions, on its own passage's questions, and on the general-ability set.

    python -m studies.rehearsal [--offset 8] [--documents 6] [--out benchmarks/results]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from agent.adapt import lora_config
from agent.answer import closed_book
from agent.generate import document_seed, document_sequences, sample_self_edits, training_sequences
from agent.grading import grade
from agent.probes import GENERAL_PROBES
from agent.workspace import load_model
from benchmarks import report, squad
from memory.store import content_sha256
from model_runtime import LanguageModel, TrainingExample, train_lora
from seal import config as seal_config
from seal.config import Config
from seal.errors import InputError, SealError

ARMS = ("as is", "first passage rehearsed")


def accuracy(lm: LanguageModel, adapter: str | None, items: list[tuple[str, str]], cfg: Config) -> float:
    answers = closed_book(lm, [q for q, _ in items], adapter, cfg.verify.answer_tokens)
    return sum(grade(a, gold).correct for a, (_, gold) in zip(answers, items)) / len(items)


def run(lm: LanguageModel, passages: list[squad.Passage], cfg: Config) -> dict[str, Any]:
    first, later = passages[0], passages[1:]
    answers = closed_book(lm, [q for q, _ in first.questions], None, cfg.verify.answer_tokens)
    known = [(q, gold) for a, (q, gold) in zip(answers, first.questions) if grade(a, gold).correct]
    if not known:
        raise InputError(f"the base model knows none of {first.title!r}'s answers; choose another --offset")
    rehearsed = document_sequences(lm, first.context, cfg.self_edit)
    rows = []
    for p in later:
        seed = document_seed(content_sha256(p.context), cfg.self_edit.seed)
        _, [text] = sample_self_edits(lm, p.context, cfg.self_edit, None, seed)
        sequences = training_sequences(lm, cfg.self_edit.format, text, p.context, cfg.self_edit)
        for arm, extra in zip(ARMS, ([], rehearsed)):
            torch.manual_seed(cfg.train.seed)
            lm.add_adapter("candidate", lora_config(cfg.train, lm.base))
            train_lora(lm, "candidate", [TrainingExample(a, b) for a, b in sequences + extra], cfg.train,
                       max_tokens=cfg.self_edit.max_sequence_tokens)
            rows.append({"document": p.title, "arm": arm, "known_kept": accuracy(lm, "candidate", known, cfg),
                         "own": accuracy(lm, "candidate", p.questions, cfg),
                         "general": accuracy(lm, "candidate", GENERAL_PROBES, cfg)})
            lm.delete_adapter("candidate")
    return {"first": first.title, "known": [q for q, _ in known],
            "base": {"own": [accuracy(lm, None, p.questions, cfg) for p in later],
                     "general": accuracy(lm, None, GENERAL_PROBES, cfg)}, "rows": rows}


def markdown(result: dict[str, Any], command: str) -> str:
    kept = {arm: sum(r["known_kept"] == 1.0 for r in result["rows"] if r["arm"] == arm) for arm in ARMS}
    n = len(result["rows"]) // len(ARMS)
    lines = [f"### Rehearsing a rejected document: does {result['first']!r} keep its known answers?\n", f"`{command}`\n",
             f"Known to the base model: {'; '.join(result['known'])} (general ability "
             f"{report.pct(result['base']['general'])} %).\n",
             report.table(["later document's candidate", "arm", "first document's known answers kept %",
                           "own questions %", "general ability %"],
                          [[r["document"], r["arm"], report.pct(r["known_kept"]), report.pct(r["own"]),
                            report.pct(r["general"])] for r in result["rows"]]),
             "\n" + "; ".join(f"{arm}: all kept by {kept[arm]} of {n} candidates" for arm in ARMS)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/squad_val.json"))
    parser.add_argument("--offset", type=int, default=8, help="first passage of the eval split (8: continual sequence 2)")
    parser.add_argument("--documents", type=int, default=6, help="passages, the first one included")
    parser.add_argument("--out", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    if args.documents < 2:
        parser.error("--documents must be at least 2")
    try:
        cfg = seal_config.load()
        passages = squad.split(squad.load(args.data), "eval", args.documents, args.offset)
        lm = load_model(cfg.model, seal_config.home() / "models")
        provenance = report.provenance(cfg, {"data": str(args.data), "offset": args.offset, "documents": args.documents})
        result = run(lm, passages, cfg)
    except SealError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    stem = f"rehearsal-from{args.offset}"
    report.write(args.out, stem, {**provenance, "benchmark": "rehearsal", **result}, markdown(result, provenance["command"]))
    print((args.out / f"{stem}.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
