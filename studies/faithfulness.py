"""How faithful are the self-edits to their passage, by repetition penalty? A self-edit that invents
names, dates and places teaches the model false statements that compete with the passage's own. HF's
repetition penalty (and vLLM's) counts the prompt's tokens too, and the self-edit prompt holds the whole
passage: a penalty above 1 pushes every sampled token away from the passage's own words.

For N passages of a split, one self-edit per format and penalty, sampled exactly as `seal bench
knowledge` samples them (the base model, the config's temperature, top-p and seed). A sentence is
faithful as `agent.faithful` defines it: its numbers and names all occur in the passage, and most of
its other words do (`self_edit.faithful_only` trains on only those). Reported per format and penalty:
faithful sentences of all sentences, and the training sequences the runtime parses from the self-edits.

    python -m studies.faithfulness [--n 20] [--split eval] [--penalties 1.15,1.0] [--out benchmarks/results]"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from agent.faithful import faithful, sentences
from agent.generate import document_sequences, training_sequences
from agent.workspace import load_model
from benchmarks import knowledge, report, squad
from model_runtime import LanguageModel
from seal import config as seal_config
from seal.config import SELF_EDIT_FORMATS, Config
from seal.errors import SealError


def run(lm: LanguageModel, passages: list[squad.Passage], formats: list[str], penalties: list[float],
        cfg: Config) -> list[dict[str, Any]]:
    rows = []
    for penalty in penalties:
        sampled = knowledge.batch_self_edits(
            lm, passages, formats, dataclasses.replace(cfg, self_edit=dataclasses.replace(cfg.self_edit, repetition_penalty=penalty)), None)
        for f in formats:
            edits = [(p, e[f]) for p, e in zip(passages, sampled)]
            split = [[faithful(s, p.context) for s in sentences(text)] for p, text in edits]
            parsed = [len(training_sequences(lm, f, text, p.context, cfg.self_edit))
                      - len(document_sequences(lm, p.context, cfg.self_edit)) for p, text in edits]
            rows.append({"format": f, "repetition_penalty": penalty, "sentences": sum(map(len, split)),
                         "faithful": sum(map(sum, split)), "sequences": sum(parsed),
                         "self_edits": [text for _, text in edits]})
    return rows


def markdown(rows: list[dict[str, Any]], passages: int, command: str) -> str:
    return "\n".join([
        f"### Self-edit faithfulness by repetition penalty ({passages} passages)\n", f"`{command}`\n",
        report.table(["format", "repetition penalty", "sentences", "faithful sentences", "faithful %",
                      "training sequences parsed"],
                     [[r["format"], r["repetition_penalty"], r["sentences"], r["faithful"],
                       report.pct(r["faithful"] / r["sentences"] if r["sentences"] else float("nan")), r["sequences"]]
                      for r in rows])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/squad_val.json"))
    parser.add_argument("--n", type=int, default=20, help="passages")
    parser.add_argument("--split", default="eval", help="eval or train")
    parser.add_argument("--offset", type=int, default=0, help="skip this many passages of the split first")
    parser.add_argument("--formats", default=",".join(SELF_EDIT_FORMATS))
    parser.add_argument("--penalties", default="1.15,1.0", help="repetition penalties to compare, comma-separated")
    parser.add_argument("--out", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        penalties = [float(p) for p in args.penalties.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--penalties {args.penalties!r}: give numbers of at least 1.0, comma-separated (e.g. 1.15,1.0)")
    if not penalties or min(penalties) < 1 or not formats or set(formats) - set(SELF_EDIT_FORMATS):
        parser.error(f"--penalties must be numbers of at least 1.0 and --formats any of {', '.join(SELF_EDIT_FORMATS)}")
    try:
        cfg = seal_config.load()
        passages = squad.split(squad.load(args.data), args.split, args.n, args.offset)
        lm = load_model(cfg.model, seal_config.home() / "models")
        provenance = report.provenance(cfg, {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
        rows = run(lm, passages, formats, penalties, cfg)
    except SealError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    stem = f"faithfulness-{args.split}-n{args.n}" + (f"-from{args.offset}" if args.offset else "")
    report.write(args.out, stem, {**provenance, "benchmark": "faithfulness", "rows": rows},
                 markdown(rows, len(passages), provenance["command"]))
    print((args.out / f"{stem}.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
