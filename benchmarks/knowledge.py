"""`seal bench knowledge`: single-passage knowledge incorporation, the SEAL paper's SQuAD protocol.

For each passage, every condition starts from the same base model and is asked the passage's questions
closed-book (greedy, the runtime's answer prompt and grader):
  no adaptation · passage in context (the retrieval upper bound) · retrieval: the passages the store's
  full-text search finds for the question among all the benchmark's passages (never handed the gold one), in
  context of the base model, and of the adapter the runtime's configuration trains (retrieval + adapter) ·
  LoRA on the passage only ·
  LoRA on passage + self-edit, for each prompt format, trained as `self_edit.faithful_only` says (with
  --faithful: both as written and with only their faithful sentences kept) · with --pool K, passage + the
  faithful sentences of K self-edits sampled from the same prompt, pooled into one · with --select K, passage +
  the one of K such self-edits whose adapter answers the runtime's own probe questions best (what verify
  measures; the gold questions are never used to choose) · and, with --policies, passage + self-edit
  written by each policy version.
Training is the runtime's own adapt recipe (config `train.*`, no replay: one passage from the base).
Reported: the mean over passages of per-passage accuracy (the paper's number) and question-level
accuracy, each with a 95 % interval, and the share of the in-context gap each condition closes; and
retrieval's recall@k (how often the gold passage is among those retrieved) and the paired differences of
retrieval + adapter from retrieval alone and from the adapter alone.

Run: seal bench knowledge --data ../shared/data/squad_val.json --n 50
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agent import prompts
from agent.adapt import lora_config
from agent.answer import base_general_answers
from agent.generate import document_seed, pooled_self_edit
from agent.grading import accuracy, grade
from agent.probes import GENERAL_PROBES, general_examples, make_probes
from agent.transfer import training_examples
from benchmarks import report
from benchmarks.squad import Passage
from memory import Store
from memory.store import content_sha256
from model_runtime import LanguageModel, TrainingExample, divergence, train_lora
from seal.config import SELF_EDIT_FORMATS, Config, TrainConfig
from seal.errors import InputError

NONE, IN_CONTEXT, PASSAGE = "no adaptation", "passage in context", "LoRA: passage only"
RETRIEVAL, BOTH = "retrieval, base model", "retrieval + adapter"
FAITHFUL = ", faithful sentences only"
DISTILL = "distill"
# The parts of the distill objective that --ablate turns off one at a time (train.* weights).
PARTS = ("passage", "self_edit", "questions", "answer_ce", "sentences", "recital", "retention")
Progress = Callable[[int, int, str], None]


@dataclasses.dataclass(frozen=True)
class Arm:
    """A trained condition: the self-edit it learns from (format None: none, the document alone), whether
    only its faithful sentences are kept, and the training recipe (objective and weights)."""

    format: str | None
    self_edit: str
    faithful: bool
    train: TrainConfig


def distill_label(label: str, without: str | None = None) -> str:
    """The distill arm of a self-edit arm's label ("LoRA: passage + rewrite" → "distill: passage + rewrite")."""
    return DISTILL + label.removeprefix("LoRA") + ("" if without is None else f", without {without}")


def self_edit_label(format: str, policy: int | None = None) -> str:
    return f"LoRA: passage + {format}" + ("" if policy is None else f" (policy v{policy})")


def batch_self_edits(lm: LanguageModel, passages: list[Passage], formats: list[str], cfg: Config,
                      policy_adapter: str | None) -> list[dict[str, str]]:
    """One self-edit per passage and format, sampled with the given policy adapter (None: the base
    model), in batches ordered by prompt length so little time goes to padding."""
    jobs = [(i, f, lm.chat_prompt(prompts.self_edit_messages(f, p.context)))
            for i, p in enumerate(passages) for f in formats]
    jobs.sort(key=lambda job: len(job[2]))
    s = cfg.self_edit
    texts = lm.generate([prompt for _, _, prompt in jobs], adapter=policy_adapter, max_new_tokens=s.max_new_tokens,
                        temperature=s.temperature, top_p=s.top_p, repetition_penalty=s.repetition_penalty, seed=s.seed)
    edits: list[dict[str, str]] = [{} for _ in passages]
    for (i, f, _), text in zip(jobs, texts):
        edits[i][f] = text
    return edits


def candidate_label(label: str, j: int) -> str:
    return f"{label} #{j + 1}"


def retrieval_corpus(passages: list[Passage], cfg: Config) -> Callable[[str], list[tuple[int, str]]]:
    """The benchmark's passages as the corpus of a throwaway store (cut as ingest cuts documents), and a
    search over all of it: question → [(index of the passage it came from, retrieved text), ...], best first."""
    store = Store.at_home(Path(tempfile.mkdtemp(prefix="seal-bench-corpus-")))
    ids = [store.add_document(p.context, f"bench:{i}", p.title, passage_words=cfg.ingest.passage_words)[0].id
           for i, p in enumerate(passages)]
    index = {doc_id: i for i, doc_id in reversed(list(enumerate(ids)))}  # a repeated passage: its first index
    return lambda question: [(index[h.document_id], h.text)
                             for h in store.search(question, cfg.answer.passages, sorted(index))]


def score_passage(lm: LanguageModel, passage: Passage, arms: dict[str, Arm], cfg: Config,
                  selections: dict[str, list[tuple[str, str]]] = {},
                  general: list[TrainingExample] = [],
                  retrieved: list[list[tuple[int, str]]] | None = None, own: int = 0,
                  adapter_arm: str = PASSAGE) -> dict[str, Any]:
    """Train one fresh adapter per arm (`Arm`), measure how far each moved from the base along `general`
    (`divergence`; the general-ability set with the base model's answers), then answer the questions under
    every condition, and the general-ability set under every arm, in one mixed batch and grade them.
    `retrieved`: per question, what retrieval found ((passage index, text), best first; `own` is this
    passage's index), answered in context by the base model and by `adapter_arm`'s adapter. No
    training question is built on a sentence holding a gold answer. Each selection (label → candidate self-edits, trained
    by cross-entropy as `self_edit.faithful_only` says) trains every candidate, asks each the passage's probe
    questions (made as ingest makes them), and reports the candidate that answers them best (accuracy, then
    token F1, then the earlier one)."""
    questions = [q for q, _ in passage.questions]
    sha = content_sha256(passage.context)
    ce = dataclasses.replace(cfg.train, objective="ce")
    candidates = {candidate_label(label, j): Arm(*edit, cfg.self_edit.faithful_only, ce)
                  for label, edits in selections.items() for j, edit in enumerate(edits)}
    seed = document_seed(sha, cfg.self_edit.seed)
    probes = ([(q, a) for q, a, _ in make_probes(lm, passage.context, cfg.verify.generated_probes, seed)]
              if selections else [])
    held_out = [a for _, a in passage.questions + tuple(probes)]
    trained: dict[str, dict[str, Any]] = {}
    by_examples: dict[str, str] = {}  # an arm with the same training as an earlier one reuses its adapter
    for n, (label, arm) in enumerate((arms | candidates).items()):
        run = dataclasses.replace(cfg, train=arm.train,
                                  self_edit=dataclasses.replace(cfg.self_edit, faithful_only=arm.faithful))
        examples = training_examples(lm, passage.title, [(passage.context, arm.self_edit if arm.format else "")],
                                     arm.format or "rewrite", held_out, [], run)
        if (same := by_examples.setdefault(repr((examples, arm.train)), label)) != label:
            trained[label] = {**trained[same], "self_edit": arm.self_edit if arm.format else None}
            continue
        name = f"bench-{n}"
        torch.manual_seed(cfg.train.seed)  # every arm starts from the same initial LoRA
        lm.add_adapter(name, lora_config(arm.train, lm.base))
        result = train_lora(lm, name, examples, arm.train, max_tokens=cfg.self_edit.max_sequence_tokens)
        trained[label] = {"adapter": name, "sequences": len(examples), "train_tokens": result.tokens,
                          "train_seconds": round(result.seconds, 2), "final_loss": result.losses[-1] if result.losses else None,
                          "drift": round(divergence(lm, general, name), 6) if general else None,
                          "self_edit": arm.self_edit if arm.format else None}

    # Closed-book under the base and every adapter, open-book under the base, the probes under every
    # candidate, and the general-ability set under every arm: one mixed batch.
    closed = [NONE, *trained]
    chat = [lm.chat_prompt(prompts.answer_messages(q)) for q in questions]
    asked = [lm.chat_prompt(prompts.answer_messages(q)) for q, _ in probes]
    general_asked = [lm.chat_prompt(prompts.answer_messages(q)) for q, _ in GENERAL_PROBES] if general else []
    models = [None, *dict.fromkeys(trained[label]["adapter"] for label in trained if label in arms)]
    found = retrieved or [[] for _ in questions]
    looked_up = [lm.chat_prompt([{"role": "system", "content": prompts.ANSWER_SYSTEM},
                                 {"role": "user", "content": prompts.with_passages([t for _, t in hits], q)}])
                 for q, hits in zip(questions, found)]
    opened = [IN_CONTEXT, *((RETRIEVAL, BOTH) if retrieved is not None else ())]
    batch = (chat * len(closed) + [lm.chat_prompt(prompts.open_book_messages(passage.context, q)) for q in questions]
             + asked * len(candidates) + general_asked * len(models))
    adapters = ([trained[c]["adapter"] if c in trained else None for c in closed for _ in questions] + [None] * len(questions)
                + [trained[c]["adapter"] for c in candidates for _ in probes] + [m for m in models for _ in general_asked])
    answers = lm.generate(batch, adapter=adapters, max_new_tokens=cfg.verify.answer_tokens, temperature=0.0)
    if retrieved is not None:  # long prompts: their own batches, so the short ones above are not padded to them
        found_answers = lm.generate(looked_up * 2, adapter=[None] * len(questions) + [trained[adapter_arm]["adapter"]]
                                    * len(questions), max_new_tokens=cfg.verify.answer_tokens, temperature=0.0)
        at = (len(closed) + 1) * len(questions)
        answers = answers[:at] + found_answers + answers[at:]
    said = iter(answers[len(answers) - len(general_asked) * len(models):])
    ability = {m: accuracy([grade(next(said), gold) for _, gold in GENERAL_PROBES]) for m in models} if general else {}
    for info in trained.values():
        if info["adapter"] in ability:
            info["general"] = ability[info["adapter"]]
    for name in {info.pop("adapter") for info in trained.values()}:
        lm.delete_adapter(name)

    conditions = {}
    for k, label in enumerate([*closed, *opened]):
        given = answers[k * len(questions):(k + 1) * len(questions)]
        grades = [grade(a, gold) for a, (_, gold) in zip(given, passage.questions)]
        conditions[label] = {"answers": given, "correct": [g.correct for g in grades], "f1": [round(g.f1, 3) for g in grades],
                             "accuracy": accuracy(grades), **({"general": ability[None]} if label == NONE and ability else {}),
                             **trained.get(label, {})}
        if label in (RETRIEVAL, BOTH):
            conditions[label] |= {"recalled": [own in {i for i, _ in hits} for hits in found],
                                  **({"adapter": adapter_arm} if label == BOTH else {})}
    probed = iter(answers[(len(closed) + len(opened)) * len(questions):len(answers) - len(general_asked) * len(models)])
    for label, edits in selections.items():
        scored = []
        for j in range(len(edits)):
            grades = [grade(next(probed), gold) for _, gold in probes]
            own = conditions.pop(candidate_label(label, j))
            scored.append({"probe_accuracy": accuracy(grades),
                           "probe_f1": round(sum(g.f1 for g in grades) / len(grades), 3) if grades else 0.0,
                           "accuracy": own["accuracy"], "correct": own["correct"], "train_tokens": own["train_tokens"],
                           "condition": own})
        best = max(range(len(scored)), key=lambda j: (round(scored[j]["probe_accuracy"], 9), scored[j]["probe_f1"], -j))
        conditions[label] = {**scored[best]["condition"], "chosen": best,
                             "candidates": [{k: v for k, v in c.items() if k != "condition"} for c in scored]}
    return {"title": passage.title, "sha256": sha[:16],
            "questions": [{"question": q, "answer": a} for q, a in passage.questions],
            **({"probes": [{"question": q, "answer": a} for q, a in probes]} if probes else {}), "conditions": conditions}


def summarize(records: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """Per condition: passage-mean and question-level accuracy with 95 % intervals, the paired
    per-passage differences from no adaptation (the reward) and from passage-only training, F1, gap closed."""
    rows = []
    for label in labels:
        per_passage = [r["conditions"][label]["accuracy"] for r in records]
        correct = [c for r in records for c in r["conditions"][label]["correct"]]
        f1 = [x for r in records for x in r["conditions"][label]["f1"]]
        tokens = [r["conditions"][label].get("train_tokens", 0) for r in records]
        gain = lambda base: report.mean_interval(
            [r["conditions"][label]["accuracy"] - r["conditions"][base]["accuracy"] for r in records], bounds=(-1.0, 1.0))
        rows.append({"condition": label, "passage_mean": report.mean_interval(per_passage),
                     "question_level": report.wilson(sum(correct), len(correct)), "questions": len(correct),
                     "reward": gain(NONE), "vs_passage": gain(PASSAGE),
                     "f1": sum(f1) / len(f1) if f1 else math.nan,
                     "train_tokens": sum(tokens) / len(tokens) if tokens else 0,
                     "drift": statistics.fmean(r["conditions"][label].get("drift") or 0.0 for r in records),
                     "general": mean_of([r["conditions"][label].get("general") for r in records])})
    for r in rows:
        if r["condition"] == RETRIEVAL:
            recalled = [c for rec in records for c in rec["conditions"][RETRIEVAL]["recalled"]]
            r["recall"] = report.wilson(sum(recalled), len(recalled))
        if r["condition"] == BOTH:
            arm = records[0]["conditions"][BOTH]["adapter"]
            paired = lambda other: report.mean_interval(
                [rec["conditions"][BOTH]["accuracy"] - rec["conditions"][other]["accuracy"] for rec in records],
                bounds=(-1.0, 1.0))
            r["adapter"], r["vs_retrieval"], r["vs_adapter"] = arm, paired(RETRIEVAL), paired(arm)
    none = next(r["passage_mean"][0] for r in rows if r["condition"] == NONE)
    ceiling = next(r["passage_mean"][0] for r in rows if r["condition"] == IN_CONTEXT)
    for r in rows:
        r["gap_closed"] = (r["passage_mean"][0] - none) / (ceiling - none) if ceiling > none else math.nan
    return rows


def mean_of(values: list[float | None]) -> float | None:
    """The mean of the values measured (None where none was)."""
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def chosen_on_the_other_half(arm: dict[str, Any]) -> float:
    """Accuracy when each gold question is scored under the candidate that answers the other half of the
    gold questions best (even-numbered against odd-numbered, ties averaged): a selector as good as the gold
    questions themselves, but not fitted to the ones it is scored on."""
    correct = [c["correct"] for c in arm["candidates"]]
    score = 0.0
    for half in (0, 1):
        fit = [sum(c[1 - half::2]) for c in correct]
        best = [c for c, f in zip(correct, fit) if f == max(fit)]
        score += sum(sum(c[half::2]) for c in best) / len(best)
    return score / len(correct[0])


CHOICES = {"the first sample (the ordinary arm)": lambda c: c["candidates"][0]["accuracy"],
           "chosen by probes": lambda c: c["accuracy"],
           "a random one (mean of the K)": lambda c: sum(x["accuracy"] for x in c["candidates"]) / len(c["candidates"]),
           "chosen on the other half of the gold questions": chosen_on_the_other_half,
           "best by the gold questions (an oracle, for scale)": lambda c: max(x["accuracy"] for x in c["candidates"])}


def selection(records: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """How a --select arm's choice among its K candidates compares with the alternatives (CHOICES), each
    as the paired per-passage difference from passage-only training; and how often the probes could
    tell the candidates apart, and chose one of the best by the gold questions where those differ."""
    arms = [(r["conditions"][label], r["conditions"][PASSAGE]["accuracy"]) for r in records]
    spread = [c for c, _ in arms if len({x["accuracy"] for x in c["candidates"]}) > 1]
    return {"condition": label, "k": len(arms[0][0]["candidates"]),
            "vs_passage": {name: report.mean_interval([pick(c) - base for c, base in arms], bounds=(-1.0, 1.0))
                           for name, pick in CHOICES.items()},
            "probes_tied": sum(len({(x["probe_accuracy"], x["probe_f1"]) for x in c["candidates"]}) == 1 for c, _ in arms),
            "gold_differs": len(spread),
            "chose_a_gold_best": sum(c["accuracy"] == max(x["accuracy"] for x in c["candidates"]) for c in spread)}


def selection_markdown(chosen: dict[str, Any], passages: int) -> str:
    rows = [[name, report.with_interval(*interval)] for name, interval in chosen["vs_passage"].items()]
    return (f"#### {chosen['condition']}: which of the {chosen['k']} candidates\n\n"
            + report.table(["candidate scored", "vs passage only, points [95% CI]"], rows)
            + f"\n\nThe candidates' probe scores all tie on {chosen['probes_tied']} of {passages} passages (the first"
            f" is then chosen). Their gold accuracies differ on {chosen['gold_differs']}; on"
            f" {chosen['chose_a_gold_best']} of those the probes chose one of the best.\n")


def markdown(summary: list[dict[str, Any]], passages: int, command: str, selections: list[dict[str, Any]] = []) -> str:
    rows = [[s["condition"], report.with_interval(*s["passage_mean"]), report.with_interval(*s["question_level"]),
             report.with_interval(*s["reward"]),
             "—" if s["condition"] == PASSAGE else report.with_interval(*s["vs_passage"]),
             f"{100 * s['f1']:.1f}", "—" if s["condition"] in (NONE, IN_CONTEXT) else f"{100 * s['gap_closed']:.0f} %",
             f"{s['train_tokens']:.0f}", report.pct(s.get("general")), f"{1000 * s.get('drift', 0.0):.1f}"] for s in summary]
    return (f"### Knowledge incorporation: {passages} passages, {summary[0]['questions']} questions\n\n"
            f"`{command}`\n\n"
            + report.table(["condition", "passage-mean accuracy % [95% CI]", "question-level accuracy % [95% CI]",
                            "reward: gain over no adaptation, points [95% CI]",
                            "vs passage only, points [95% CI]",
                            "token F1 %", "in-context gap closed", "trained tokens / passage",
                            "general ability %", "general drift, millinats / token"], rows)
            + retrieval_markdown(summary)
            + "".join("\n\n" + selection_markdown(chosen, passages) for chosen in selections))


def retrieval_markdown(summary: list[dict[str, Any]]) -> str:
    found = {s["condition"]: s for s in summary}
    if RETRIEVAL not in found:
        return ""
    both = found[BOTH]
    return (f"\n\nRetrieval recall@k (the gold passage among those in context): "
            f"{report.with_interval(*found[RETRIEVAL]['recall'])} %. Retrieval + adapter ({both['adapter']}) vs "
            f"retrieval alone: {report.with_interval(*both['vs_retrieval'])} points; vs the adapter alone: "
            f"{report.with_interval(*both['vs_adapter'])} points (paired, per passage, 95 % CI).\n")


def plot(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    plt = report.pyplot()
    means = [100 * s["passage_mean"][0] for s in summary]
    errors = [[100 * (s["passage_mean"][0] - s["passage_mean"][1]) for s in summary],
              [100 * (s["passage_mean"][2] - s["passage_mean"][0]) for s in summary]]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(summary) + 1.2))
    ax.barh(range(len(summary)), means, xerr=errors, color=["#999", "#6a9", *["#47a"] * (len(summary) - 2)], capsize=3)
    ax.set_yticks(range(len(summary)), [s["condition"] for s in summary])
    ax.invert_yaxis()
    ax.set_xlabel("closed-book accuracy, mean over passages (%), 95% CI")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # long condition labels widen the image, not clip it
    plt.close(fig)


def resumable(path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """The interrupted run at `path` (see `report.resumable`), which must have recorded its self-edits
    and each candidate's answers to the gold questions."""
    result = report.resumable(path, provenance)
    candidates = [c for r in result.get("records", []) for arm in r["conditions"].values() for c in arm.get("candidates", [])]
    if "self_edits" not in result or any("correct" not in c for c in candidates):
        raise InputError(f"{path} records no self-edits or candidate answers (written by an older version); "
                         "run without --resume")
    return result


def run(lm: LanguageModel, passages: list[Passage], formats: list[str], cfg: Config, *, out: Path, stem: str,
        provenance: dict[str, Any], policies: list[tuple[int, str | None]] = [(0, None)], faithful: bool = False,
        pool: int = 1, select: int = 1, ablate: list[str] = [],
        progress: Progress = lambda done, total, message: None, resume: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score every condition on every passage; the JSON and table are rewritten after each passage, the
    plot at the end. `policies` are (policy version, its attached adapter name; None for v0, the base):
    each writes one self-edit per passage and format, from the same seeds. With `faithful`, each
    self-edit is scored twice: as written and with only its faithful sentences kept. With `pool` above 1,
    each also writes pool - 1 more self-edits per passage and format (seeds self_edit.seed + 1, ...), and
    the faithful sentences of all `pool` are scored as one self-edit. With `select` above 1, the first
    `select` of those self-edits are candidates, and the one whose adapter answers the passage's probes
    best is scored (see `score_passage`). Every self-edit is trained both by cross-entropy (the "LoRA" arms)
    and by the distill objective (`train.*` weights), and once more by it with each part named in `ablate`
    (of PARTS) turned off. The self-edits are recorded
    before any passage is scored, so `resume` (an interrupted run's result, see `resumable`) carries on
    from its next passage with them, and needs none of the policies' adapters."""
    if any(part not in PARTS for part in ablate):
        raise InputError(f"--ablate {','.join(ablate)}: name parts among {', '.join(PARTS)}, or 'all'")
    unknown = [f for f in formats if f not in SELF_EDIT_FORMATS]
    if unknown or not formats:
        raise InputError(f"formats {unknown or '(none)'}: use any of {', '.join(SELF_EDIT_FORMATS)}")
    report.pyplot()  # now, not after hours of training: the plot at the end needs matplotlib
    start = time.perf_counter()
    edits: dict[str, list[tuple[str, str]]] = {}
    pooled: dict[str, list[tuple[str, str]]] = {}
    selected: dict[str, list[list[tuple[str, str]]]] = {}
    records: list[dict[str, Any]] = []
    earlier = 0.0
    if resume is not None:
        edits, records, earlier = resume["self_edits"], resume["records"], resume["seconds"]
        pooled, selected = resume.get("pooled_self_edits", {}), resume.get("selected_self_edits", {})
        provenance = report.resumed(resume, provenance, from_passage=len(records))
    named = len(policies) > 1 or policies[0][0] != 0
    for number, adapter in policies if resume is None else []:
        count = len(passages) * len(formats) * max(pool, select)
        progress(0, len(passages), f"policy v{number}: sampling {count} self-edits")
        # Sample j is drawn with seed self_edit.seed + j; the first is the ordinary arm's.
        samples = [batch_self_edits(lm, passages, formats, dataclasses.replace(
                       cfg, self_edit=dataclasses.replace(cfg.self_edit, seed=cfg.self_edit.seed + j)), adapter)
                   for j in range(max(pool, select))]
        for f in formats:
            label = self_edit_label(f, number if named else None)
            edits[label] = [(f, e[f]) for e in samples[0]]
            if pool > 1:
                pooled[f"{label}, faithful sentences pooled from {pool}"] = [
                    (f, pooled_self_edit(f, [s[i][f] for s in samples[:pool]], p.context)) for i, p in enumerate(passages)]
            if select > 1:
                selected[f"{label}{FAITHFUL if cfg.self_edit.faithful_only else ''}, best of {select} by probes"] = [
                    [(f, s[i][f]) for s in samples[:select]] for i in range(len(passages))]
    # Each self-edit as the configuration trains on it (`self_edit.faithful_only`); with --faithful, both
    # as written and with its faithful sentences only.
    tags = ["", FAITHFUL] if faithful else [FAITHFUL if cfg.self_edit.faithful_only else ""]
    ce = dataclasses.replace(cfg.train, objective="ce")
    distilled = dataclasses.replace(cfg.train, objective="distill")
    variants = {None: distilled} | {part: dataclasses.replace(distilled, **{part: 0.0}) for part in ablate}
    first = next(iter(edits))
    adapter_arm = distill_label(first) if cfg.train.objective == "distill" else first + tags[0]
    labels = [NONE, IN_CONTEXT, RETRIEVAL, BOTH, PASSAGE, *(label + tag for tag in tags for label in edits),
              *(distill_label(label, part) for label in edits for part in variants), *pooled, *selected]

    def snapshot() -> list[dict[str, Any]]:
        summary = summarize(records, labels) if records else []
        choices = [selection(records, label) for label in selected] if records else []
        result = {**provenance, "benchmark": "knowledge", "passages_done": len(records), "passages": len(passages),
                  "complete": len(records) == len(passages), "seconds": round(earlier + time.perf_counter() - start, 1),
                  "summary": summary, "selections": choices, "self_edits": edits, "pooled_self_edits": pooled,
                  "selected_self_edits": selected, "records": records}
        table = (markdown(summary, len(records), provenance["command"], choices) if records else
                 f"### Knowledge incorporation: self-edits sampled, no passage scored yet\n\n`{provenance['command']}`")
        report.write(out, stem, result, table)
        return summary

    summary = snapshot()
    general = general_examples(lm, base_general_answers(lm, cfg.verify.answer_tokens))
    search = retrieval_corpus(passages, cfg)
    for i in range(len(records), len(passages)):
        progress(i, len(passages), passages[i].title)
        arms = {PASSAGE: Arm(None, "", False, ce)} | {
            label + tag: Arm(*e[i], tag == FAITHFUL, ce) for tag in tags for label, e in edits.items()} | {
            distill_label(label, part): Arm(*e[i], cfg.self_edit.faithful_only, train)
            for label, e in edits.items() for part, train in variants.items()} | {
            label: Arm(*e[i], True, ce) for label, e in pooled.items()}
        records.append(score_passage(lm, passages[i], arms, cfg, {label: e[i] for label, e in selected.items()},
                                     general, [search(q) for q, _ in passages[i].questions],
                                     next(j for j, p in enumerate(passages) if p.context == passages[i].context),
                                     adapter_arm))
        summary = snapshot()
    progress(len(passages), len(passages), "done")
    plot(summary, out / f"{stem}.png", f"SQuAD knowledge incorporation, {len(passages)} passages")
    return summary
