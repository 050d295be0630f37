"""Scratch: distill variants side by side on the fictional documents, reusing a run's recorded self-edits."""
import dataclasses
import json
import sys
import time
from pathlib import Path

from agent.answer import base_general_answers
from agent.probes import general_examples
from agent.workspace import load_model
from benchmarks import squad
from benchmarks.knowledge import Arm, score_passage
from seal import config as seal_config

# python variants.py N OUT.json OFFSET LETTERS (from a checkout of git 2a53940 with the options it names)
n, out, offset = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0
cfg = seal_config.load({})
lm = load_model(cfg.model, seal_config.home() / "models")
passages = squad.split(squad.load(Path("benchmarks/data/fictional.json")), "eval", n, offset)
rec = json.load(open("benchmarks/results/avx512-retrieval/fictional/knowledge-eval-n8.json"))
edits = rec["self_edits"]["LoRA: passage + rewrite"]
t = cfg.train
ALL = {
    "A distill (now)": t,
    "B sentences: teacher reads document": dataclasses.replace(t, sentence_teacher="document"),
    "C recital": dataclasses.replace(t, recital=1.0),
    "D B + C": dataclasses.replace(t, sentence_teacher="document", recital=1.0),
    "E D, retention 1.0": dataclasses.replace(t, sentence_teacher="document", recital=1.0, retention=1.0),
    "F D, retention 0.7": dataclasses.replace(t, sentence_teacher="document", recital=1.0, retention=0.7),
}
variants = {k: v for k, v in ALL.items() if k[0] in sys.argv[4]}
general = general_examples(lm, base_general_answers(lm, cfg.verify.answer_tokens))
results = []
for i, p in enumerate(passages):
    start = time.time()
    fmt, text = edits[offset + i] if offset + i < len(edits) else ("rewrite", "")
    arms = {label: Arm(fmt, text, cfg.self_edit.faithful_only, train) for label, train in variants.items()}
    r = score_passage(lm, p, arms, cfg, {}, general)
    results.append(r)
    out.write_text(json.dumps(results, indent=1))
    print(p.title, round(time.time() - start), {k: (v["accuracy"], v.get("general"), v.get("drift"))
                                                 for k, v in r["conditions"].items()}, flush=True)
labels = list(results[0]["conditions"])
for label in labels:
    accs = [r["conditions"][label]["accuracy"] for r in results]
    gens = [r["conditions"][label].get("general") for r in results]
    print(f"{label:45s} acc {100*sum(accs)/len(accs):5.1f}  general {gens if None in gens else round(100*sum(gens)/len(gens),1)}")
