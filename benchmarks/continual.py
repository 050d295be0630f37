"""`seal bench continual`: the SEAL paper's forgetting experiment. Sequences of documents are learned
one after another; after each one, every document seen so far is asked its questions closed-book.
Row k of the matrix is the model after k documents (row 0: no adaptation, on every document), so
the diagonal is just-after-learning accuracy and the last row is what is left at the end.

Two arms see the same documents and the same self-edits (the base model writes them with the same
seeds in both):
  protected — the runtime itself: `seal ingest` with its retention gate, replay of earlier
              self-edits, and versions kept as adapters (a rejected document changes nothing);
  plain     — the paper's sequential recipe: a LoRA trained on each self-edit and merged into the
              weights, no gate, no replay.

After each document both arms are also asked the general-ability set (`agent.probes.GENERAL_PROBES`), and
the protected arm's active version is measured for drift from the base model on it (`divergence`): general
ability must stay within bounds of the base model however many versions follow.

Run: seal bench continual --data ../shared/data/squad_val.json --sequences 3 --length 8
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agent.adapt import lora_config
from agent.answer import base_general_answers, closed_book
from agent.generate import document_seed, sample_self_edits, training_sequences
from agent.grading import grade
from agent.ingest import DocumentInput, ingest
from agent.probes import GENERAL_PROBES, general_examples
from benchmarks import report
from benchmarks.homes import fresh_workspace
from benchmarks.squad import Passage
from memory.store import content_sha256
from model_runtime import LanguageModel, TrainingExample, divergence, loading, train_lora
from seal.config import Config
from seal.errors import InputError

ARMS = ("protected", "plain")
Progress = Callable[[int, int, str], None]
Matrix = list[list[float | None]]


GENERAL = Passage("general ability", "", tuple(GENERAL_PROBES))


def accuracies(lm: LanguageModel, passages: list[Passage], adapter: str | None, cfg: Config) -> list[float]:
    """Closed-book accuracy on each passage's questions, one batch for all of them."""
    questions = [q for p in passages for q, _ in p.questions]
    answers = iter(closed_book(lm, questions, adapter, cfg.verify.answer_tokens))
    return [sum(grade(next(answers), gold).correct for _, gold in p.questions) / len(p.questions) for p in passages]


def scored(lm: LanguageModel, passages: list[Passage], adapter: str | None, cfg: Config) -> tuple[list[float], float]:
    """`accuracies` on the passages, and on the general-ability set, in one batch."""
    *values, general = accuracies(lm, [*passages, GENERAL], adapter, cfg)
    return values, general


def matrix_row(values: list[float], length: int) -> list[float | None]:
    return values + [None] * (length - len(values))


def protected(lm: LanguageModel, passages: list[Passage], cfg: Config, home: Path,
              step: Callable[[str], None]) -> dict[str, Any]:
    """Learn the passages in order with the runtime (fresh home), scoring after each ingest."""
    along = general_examples(lm, base_general_answers(lm, cfg.verify.answer_tokens))
    rows: Matrix = []
    log = []
    with fresh_workspace(lm, cfg, home) as ws:
        for k, p in enumerate(passages):
            step(f"protected {k + 1}/{len(passages)}: {p.title}")
            result = next(ingest(ws, [DocumentInput(f"squad:{p.title}", p.title, p.context, p.questions)]))
            version = ws.store.active("knowledge")
            adapter = ws.attach("knowledge", version)
            values, general = scored(lm, passages[:k + 1], adapter, cfg)
            rows.append(matrix_row(values, len(passages)))
            edit = ws.store.self_edit(ws.store.trials(result.document_id)[-1].self_edit_id)
            log.append({"title": p.title, "decision": result.status, "version": version, "reason": result.reason,
                        "seconds": round(result.seconds, 1), "self_edit": edit.text, "general": general,
                        "drift": 0.0 if adapter is None else divergence(lm, along, adapter)})
    return {"rows": rows, "steps": log}


def plain(policy: LanguageModel, passages: list[Passage], cfg: Config, model_cache: Path,
          step: Callable[[str], None]) -> dict[str, Any]:
    """Learn the passages in order the paper's way: self-edit → fresh LoRA → merge into the weights."""
    model, tokenizer, name = loading.load(cfg.model, model_cache)  # a private copy: merging changes it for good
    lm = LanguageModel(model, tokenizer, name)
    rows: Matrix = []
    log = []
    for k, p in enumerate(passages):
        step(f"plain {k + 1}/{len(passages)}: {p.title}")
        seed = document_seed(content_sha256(p.context), cfg.self_edit.seed)
        _, [text] = sample_self_edits(policy, p.context, cfg.self_edit, None, seed)
        sequences = training_sequences(lm, cfg.self_edit.format, text, p.context, cfg.self_edit)
        torch.manual_seed(cfg.train.seed)
        lm.add_adapter("edit", lora_config(cfg.train, lm.base))
        start = time.perf_counter()
        train_lora(lm, "edit", [TrainingExample(a, b) for a, b in sequences], cfg.train,
                   max_tokens=cfg.self_edit.max_sequence_tokens)
        lm.merge("edit")
        values, general = scored(lm, passages[:k + 1], None, cfg)
        rows.append(matrix_row(values, len(passages)))
        log.append({"title": p.title, "decision": "merged", "seconds": round(time.perf_counter() - start, 1),
                    "self_edit": text, "general": general})
    return {"rows": rows, "steps": log}


def mean_matrix(matrices: list[Matrix]) -> Matrix:
    return [[None if cells[0] is None else statistics.fmean(cells) for cells in zip(*rows)] for rows in zip(*matrices)]


def measures(m: Matrix) -> dict[str, Any]:
    """The targets' numbers on a (k+1)×k matrix: just-after-learning mean (diagonal), final-row mean,
    their ratio, and which documents end below their no-adaptation accuracy."""
    k = len(m[0])
    diagonal = statistics.fmean(m[j + 1][j] for j in range(k))
    final = statistics.fmean(m[k][j] for j in range(k))
    baseline = statistics.fmean(m[0])
    below = [j + 1 for j in range(k) if m[k][j] < m[0][j] - 1e-9]
    return {"no_adaptation": baseline, "just_after": diagonal, "final": final,
            "retained": final / diagonal if diagonal else float("nan"), "below_baseline": below}


def summarize(runs: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    """The finished sequences' mean matrix per arm, its measures, the documents below baseline per
    sequence, and the protected arm's commits."""
    matrices = {arm: mean_matrix([r[arm]["matrix"] for r in runs]) for arm in arms}
    return {"sequences": len(runs), "length": len(runs[0]["titles"]), "mean_matrix": matrices,
            "measures": {arm: measures(m) for arm, m in matrices.items()},
            # Per sequence: a loss in one sequence can hide behind a gain in another in the mean matrix.
            "below_baseline": {arm: [measures(r[arm]["matrix"])["below_baseline"] for r in runs] for arm in arms},
            "commits": {"protected": sum(st["decision"] == "committed" for r in runs for st in r["protected"]["steps"])}
            if "protected" in arms else {},
            "general": {arm: general_ability(runs, arm) for arm in arms}}


def general_ability(runs: list[dict[str, Any]], arm: str) -> dict[str, Any]:
    """The general-ability set's accuracy, mean over sequences: the base model's, after the first document and
    after the last; the largest drop below the base at any step of any sequence; and (protected) the drift
    from the base after the last document."""
    steps = [r[arm]["steps"] for r in runs]
    drifts = [s[-1]["drift"] for s in steps if "drift" in s[-1]]
    return {"base": statistics.fmean(r["general_base"] for r in runs),
            "after_first": statistics.fmean(s[0]["general"] for s in steps),
            "after_last": statistics.fmean(s[-1]["general"] for s in steps),
            "largest_drop": max(r["general_base"] - st["general"] for r, s in zip(runs, steps) for st in s),
            "drift_after_last": statistics.fmean(drifts) if drifts else None}


def below(per_sequence: list[list[int]]) -> str:
    """'2: #1, #5; 3: #4' — the documents of each sequence that end below their no-adaptation accuracy."""
    return "; ".join(f"{s}: " + ", ".join(f"#{j}" for j in js) for s, js in enumerate(per_sequence, 1) if js) or "none"


def markdown(summary: dict[str, Any], command: str) -> str:
    parts = [f"### Continual learning: {summary['sequences']} sequences of {summary['length']} documents\n",
             f"`{command}`\n"]
    rows = []
    for arm, m in summary["measures"].items():
        g = summary["general"][arm]
        rows.append([arm, report.pct(m["no_adaptation"]), report.pct(m["just_after"]), report.pct(m["final"]),
                     f"{m['retained']:.2f} ×", below(summary["below_baseline"][arm]), summary["commits"].get(arm, "—"),
                     f"{report.pct(g['base'])} → {report.pct(g['after_first'])} → {report.pct(g['after_last'])}",
                     report.pct(g["largest_drop"]),
                     "—" if g["drift_after_last"] is None else f"{1000 * g['drift_after_last']:.0f}"])
    parts.append(report.table(["arm", "no adaptation %", "just after learning % (diagonal)", "after the last document %",
                               "final / just-after", "documents below no-adaptation (sequence: documents)",
                               "documents committed", "general ability %: base → after 1 → after all",
                               "largest general drop below base, points", "drift from base after all, millinats/token"],
                              rows))
    for arm, m in summary["mean_matrix"].items():
        header = ["after ↓ / document →", *[str(j + 1) for j in range(len(m[0]))]]
        body = [[f"{k} docs" if k else "none", *["" if v is None else report.pct(v) for v in row]] for k, row in enumerate(m)]
        parts.append(f"\n**{arm}**: accuracy % averaged over sequences\n\n" + report.table(header, body))
    return "\n".join(parts)


def plot(summary: dict[str, Any], path: Path) -> None:
    import numpy as np

    plt = report.pyplot()

    arms = list(summary["mean_matrix"])
    fig, axes = plt.subplots(1, len(arms), figsize=(5.2 * len(arms), 4.6), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        m = np.array([[np.nan if v is None else 100 * v for v in row] for row in summary["mean_matrix"][arm]])
        image = ax.imshow(m, cmap="viridis", vmin=0, vmax=max(1.0, np.nanmax(m)), aspect="auto")
        for (r, c), v in np.ndenumerate(m):
            if not np.isnan(v):
                ax.text(c, r, f"{v:.0f}", ha="center", va="center", color="w" if v < 0.6 * np.nanmax(m) else "k", fontsize=8)
        ax.set_xticks(range(m.shape[1]), [str(j + 1) for j in range(m.shape[1])])
        ax.set_yticks(range(m.shape[0]), ["none", *[str(k) for k in range(1, m.shape[0])]])
        ax.set_xlabel("document")
        ax.set_ylabel("after this many documents")
        ax.set_title(f"{arm}: retained {summary['measures'][arm]['retained']:.2f}×")
        fig.colorbar(image, ax=ax, label="closed-book accuracy (%)")
    fig.suptitle(f"Continual learning, mean of {summary['sequences']} sequences of {summary['length']} documents")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def run(lm: LanguageModel, sequences: list[list[Passage]], arms: list[str], cfg: Config, *, homes: Path,
        model_cache: Path, out: Path, stem: str, provenance: dict[str, Any],
        progress: Progress = lambda done, total, message: None, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Both arms on every sequence; the JSON and table are rewritten after each sequence. `resume` (an
    interrupted run's result, see `report.resumable`) keeps its finished sequences and runs the rest."""
    if not arms or any(a not in ARMS for a in arms):
        raise InputError(f"arms {arms}: use any of {', '.join(ARMS)}")
    report.pyplot()  # now, not after hours of training: the plot at the end needs matplotlib
    length = len(sequences[0])
    total = len(sequences) * len(arms) * length
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    earlier = 0.0
    if resume is not None:
        runs, earlier = resume["runs"], resume["seconds"]
        provenance = report.resumed(resume, provenance, from_sequence=len(runs))
    done = len(runs) * len(arms) * length

    def step(message: str) -> None:
        nonlocal done
        progress(done, total, message)
        done += 1

    def snapshot() -> dict[str, Any]:
        summary = summarize(runs, arms)
        result_json = {**provenance, "benchmark": "continual", "complete": len(runs) == len(sequences),
                       "seconds": round(earlier + time.perf_counter() - start, 1), "summary": summary, "runs": runs}
        report.write(out, stem, result_json, markdown(summary, provenance["command"]))
        return summary

    for s, passages in enumerate(sequences[len(runs):], start=len(runs)):
        baseline, general = scored(lm, passages, None, cfg)
        record: dict[str, Any] = {"titles": [p.title for p in passages], "no_adaptation": baseline,
                                  "general_base": general}
        for arm in arms:
            result = (protected(lm, passages, cfg, homes / f"sequence-{s + 1}", step) if arm == "protected"
                      else plain(lm, passages, cfg, model_cache, step))
            record[arm] = {"matrix": [baseline, *result["rows"]], "steps": result["steps"]}
        runs.append(record)
        snapshot()
    summary = snapshot()
    progress(total, total, "done")
    plot(summary, out / f"{stem}.png")
    return summary
