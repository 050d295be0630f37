"""Stage 1, generate: make sure the document has probes, then sample K self-edits with the active
policy and parse each into training sequences (the document itself always appended)."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from agent import prompts
from agent.faithful import faithful, faithful_part, sentences
from agent.probes import document_sentences, make_probes
from agent.state import IngestState
from agent.workspace import Workspace
from memory import Document, SelfEdit
from model_runtime import Engine, LanguageModel
from seal.config import SelfEditConfig


def document_seed(sha256: str, seed: int) -> int:
    """A fixed seed per document, the same in every home directory."""
    return int(sha256[:8], 16) + seed


def chunks(lm: LanguageModel, text: str, max_tokens: int) -> list[str]:
    """Split text at sentence ends into pieces of at most `max_tokens` tokens (a sentence longer than
    that becomes a piece of its own and is truncated at training time)."""
    pieces, current = [], ""
    for sentence in document_sentences(text):
        candidate = f"{current} {sentence}".strip()
        if current and len(lm.tokenizer(candidate, add_special_tokens=False)["input_ids"]) > max_tokens:
            pieces.append(current)
            candidate = sentence
        current = candidate
    return pieces + ([current] if current else [])


def document_sequences(lm: LanguageModel, document: str, cfg: SelfEditConfig) -> list[list[str]]:
    """The document itself as [prompt, completion] pairs (no prompt), split to fit max_sequence_tokens."""
    return [["", piece] for piece in chunks(lm, document, cfg.max_sequence_tokens)]


def self_edit_items(lm: LanguageModel, format: str, self_edit: str, document: str,
                    cfg: SelfEditConfig) -> list[tuple[str, str, str]]:
    """The self-edit's training items (capped) as (prompt, completion, the same prompt with the document in
    context: what a distillation teacher reads). With `cfg.faithful_only`, only its faithful sentences and QA
    pairs are kept (`agent.faithful`)."""
    keep = (lambda text: faithful_part(text, document)) if cfg.faithful_only else (lambda text: text)
    if format == "self_qa":
        end = lm.tokenizer.eos_token or ""
        items = [(lm.chat_prompt(prompts.answer_messages(q)), f"{a}{end}",
                  lm.chat_prompt(prompts.open_book_messages(document, q))) for q, a in prompts.parse_qa(self_edit)
                 if not cfg.faithful_only or faithful(f"{q} {a}", document)]
    else:
        units = map(keep, prompts.parse_lines(self_edit) if format == "implications" else prompts.parse_paragraphs(self_edit))
        pieces = [u for u in units if u] if format == "implications" else [
            piece for u in units if u for piece in chunks(lm, u, cfg.max_sequence_tokens)]
        items = [("", piece, f"{document.strip()}\n\n") for piece in pieces]
    return items[:cfg.max_sequences]


def training_sequences(lm: LanguageModel, format: str, self_edit: str, document: str,
                       cfg: SelfEditConfig) -> list[list[str]]:
    """[prompt, completion] pairs: the self-edit's items (`self_edit_items`), then the document itself."""
    return ([[p, c] for p, c, _ in self_edit_items(lm, format, self_edit, document, cfg)]
            + document_sequences(lm, document, cfg))


def pooled_self_edit(format: str, self_edits: list[str], document: str) -> str:
    """One self-edit from several sampled for the same document: the faithful sentences of each (QA pairs
    for self_qa), found as `training_sequences` finds them, each kept once, in order, a line apiece, a blank
    line between self-edits ('' when none is)."""
    seen: set[str] = set()
    parts = []
    for text in self_edits:
        if format == "self_qa":
            items = [f"Q: {q}\nA: {a}" for q, a in prompts.parse_qa(text) if faithful(f"{q} {a}", document)]
        else:
            units = prompts.parse_lines(text) if format == "implications" else prompts.parse_paragraphs(text)
            items = [s for unit in units for s in sentences(unit) if faithful(s, document)]
        kept = []
        for item in items:
            if item.lower() not in seen:
                seen.add(item.lower())
                kept.append(item)
        if kept:
            parts.append("\n".join(kept))
    return "\n\n".join(parts)


def sample_self_edits(lm: Engine, document: str, cfg: SelfEditConfig, policy_adapter: str | None,
                      seed: int) -> tuple[str, list[str]]:
    """The self-edit prompt and K self-edits sampled from it with the policy adapter (None: the base model)."""
    prompt = lm.chat_prompt(prompts.self_edit_messages(cfg.format, document))
    return prompt, lm.generate([prompt] * cfg.k, adapter=policy_adapter, max_new_tokens=cfg.max_new_tokens,
                       temperature=cfg.temperature, top_p=cfg.top_p, repetition_penalty=cfg.repetition_penalty,
                       seed=seed)


def parts_of(edit: SelfEdit) -> list[tuple[str, str]]:
    """A self-edit passage by passage: (prompt, text) pairs (one for a document of one passage)."""
    return [(p, t) for p, t in edit.parts] if edit.parts else [(edit.prompt, edit.text)]


def passages_of(ws: Workspace, doc: Document) -> list[str]:
    """The passages a document is learned by (cut when it was stored); the whole text for one stored before."""
    return [p.text for p in ws.store.passages(doc.id)] or [doc.text]


def generate(state: IngestState, runtime: Runtime[Workspace]) -> IngestState:
    """One passage per step (the graph repeats the stage until every passage is done, checkpointed after
    each, so an interrupted ingest resumes at the passage where it stopped): make sure it has probes, then
    sample K self-edits of it with the active policy. After the last passage, the K candidates are stored,
    candidate j made of each passage's j-th self-edit."""
    ws = runtime.context
    cfg = ws.config.self_edit
    doc = ws.store.document(state["document_id"])
    passages = passages_of(ws, doc)
    drafts = state.get("drafts") or []
    i, n = len(drafts), len(passages)
    started = state.get("started") or time.time()
    seed = document_seed(doc.sha256, cfg.seed) + i
    policy = state.get("policy", ws.store.active("policy"))
    where = f"passage {i + 1}/{n}: " if n > 1 else ""
    if i:
        eta = (time.time() - started) / i * (n - i)
        where = f"passage {i + 1}/{n} (~{eta / 60:.0f} min left): "

    # Probes first, so they exist before any training; supplied ones were stored at intake, for the whole
    # document. A document without them gets them passage by passage.
    supplied = any(p.passage is None for p in doc.probes)
    if (not doc.probes) if n == 1 else (not supplied and not any(p.passage == i for p in doc.probes)):
        ws.progress("generate", f"{where}writing probe questions")
        ws.store.set_probes(doc.id, make_probes(ws.engine, passages[i], ws.config.verify.generated_probes, seed),
                            passage=i if n > 1 else None)

    # Sample K self-edits of this passage with the active policy version (the base model until a policy update).
    ws.progress("generate", f"{where}sampling {cfg.k} self-edit(s) ({cfg.format})")
    prompt, texts = sample_self_edits(ws.engine, passages[i], cfg, ws.attach("policy", policy), seed)
    step = {"drafts": [[prompt, texts]], "passages": n, "started": started, "policy": policy}
    if i + 1 < n:
        return step
    drafts = [*drafts, [prompt, texts]]
    rows = ws.store.add_self_edits([
        SelfEdit(document_id=doc.id, policy_version=policy, format=cfg.format,
                 prompt=prompt if n == 1 else "", text="\n\n".join(t[j] for _, t in drafts),
                 parts=[] if n == 1 else [[p, t[j]] for p, t in drafts],
                 sequences=[seq for passage, (_, t) in zip(passages, drafts)
                            for seq in training_sequences(ws.lm, cfg.format, t[j], passage, cfg)])
        for j in range(len(texts))])
    ws.store.add_event("stage", doc.id, {"stage": "generate", "seconds": time.time() - started, "passages": n})
    return {**step, "parent_version": ws.store.active("knowledge"), "candidates": [r.id for r in rows],
            "current": 0, "before": {}}
