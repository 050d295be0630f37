"""Scale benchmark: fill a store like years of use — 10,000 documents (5 probes each), 100,000 self-edits
and trials (each trial's scores sized like a real one: 5 new, 8 retention and 10 general-ability probes),
1,000 knowledge versions — then time what people run most: the first page of `seal history`,
`seal versions list` and the active-version lookup. Median of repeated calls, in process (the function
the command calls), on SQLite and on a throwaway PostgreSQL server; plus the storage used per row.

Run: python -m benchmarks.scale            (both backends; ~10 min)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from adapters_store import AdapterStore
from agent.versions import history, list_versions
from agent.workspace import Workspace
from benchmarks import postgres, report
from memory import Store
from memory.schema import Active, Document, Probe, SelfEdit, Trial, Version, now
from memory.transfer import reset_sequences
from seal import config as seal_config

CHUNK = 2000
PROBES_PER_DOCUMENT = 5


def _probe_scores(rng: random.Random, n: int) -> list[dict[str, Any]]:
    words = "the lighthouse was built in by engineer island keeper green white year river city".split()
    sentence = lambda k: " ".join(rng.choice(words) for _ in range(k))
    return [{"question": sentence(10) + "?", "answer": sentence(3), "before": sentence(18), "after": sentence(18),
             "correct_before": False, "correct_after": True, "exact_before": False, "exact_after": False,
             "f1_before": 0.1, "f1_after": 0.5} for _ in range(n)]


def fill(store: Store, documents: int, trials: int, versions: int, seed: int = 0) -> dict[str, float]:
    """Insert the rows in bulk; returns seconds per table."""
    rng = random.Random(seed)
    seconds: dict[str, float] = {}
    scores = {"new": _probe_scores(rng, 5), "retention": _probe_scores(rng, 8), "general": _probe_scores(rng, 10)}
    config = {"rank": 16, "alpha": 32, "dropout": 0.0, "learning_rate": 0.003, "epochs": 6, "batch_size": 4,
              "max_length": 512, "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"]}
    body = " ".join(rng.choice("abcdefghij") * rng.randint(2, 9) for _ in range(120))

    def timed(name: str, table: Any, rows: Callable[[int], dict[str, Any]], count: int) -> None:
        start = time.perf_counter()
        with store.engine.begin() as connection:
            for lo in range(0, count, CHUNK):
                connection.execute(insert(table), [rows(i) for i in range(lo, min(count, lo + CHUNK))])
        seconds[name] = round(time.perf_counter() - start, 1)

    created = now()
    timed("documents", Document.__table__, lambda i: {
        "id": i + 1, "sha256": f"{i:064x}", "source": f"inbox/doc-{i}.md", "title": f"Document {i}",
        "text": body, "status": "committed" if i < versions else "rejected", "created_at": created}, documents)
    timed("probes", Probe.__table__, lambda i: {
        "document_id": i // PROBES_PER_DOCUMENT + 1, "question": f"Question {i} about the document?",
        "answer": f"answer {i}", "source": "supplied"}, documents * PROBES_PER_DOCUMENT)
    per_doc = trials // documents
    timed("self_edits", SelfEdit.__table__, lambda i: {
        "id": i + 1, "document_id": i // per_doc + 1, "policy_version": 0, "format": "rewrite",
        "prompt": "Rewrite the passage. " + body[:400], "text": body[:900],
        "sequences": [["", body], ["", body[:900]]], "created_at": created}, trials)
    timed("trials", Trial.__table__, lambda i: {
        "id": i + 1, "document_id": i // per_doc + 1, "self_edit_id": i + 1, "parent_version": 0,
        "config": config, "losses": [round(2.5 - 0.01 * k, 3) for k in range(30)], "tokens": 900,
        "train_seconds": 5.2, "scores": scores, "new_before": 0.0, "new_after": 0.4, "retention_before": 0.5,
        "retention_after": 0.5, "general_before": 0.8, "general_after": 0.8, "reward": 0.4, "passed": True,
        "decision": "committed" if i % per_doc == 0 and i // per_doc < versions else "rejected",
        "reason": "gain +0.40, retention drop 0.00, general drop 0.00", "created_at": created}, trials)
    files = {"adapter_config.json": "a" * 64, "adapter_model.safetensors": "b" * 64}
    timed("versions", Version.__table__, lambda i: {
        "kind": "knowledge", "number": i + 1, "parent": i, "files": files, "documents": [i + 1],
        "trial_id": i * per_doc + 1, "pruned": False, "created_at": created,
        "metrics": {"reward": 0.4, "new_before": 0.0, "new_after": 0.4, "retention_before": 0.5,
                    "retention_after": 0.5, "general_before": 0.8, "general_after": 0.8, "train_tokens": 900,
                    "train_seconds": 5.2}}, versions)
    with store.engine.begin() as connection:
        connection.execute(insert(Active.__table__), [{"kind": "knowledge", "number": versions}])
        reset_sequences(connection)
        if store.engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
    return seconds


def storage(store: Store, path: Path | None) -> dict[str, Any]:
    """Bytes per row of the big tables, and the whole database's size."""
    with store.engine.connect() as c:
        counts = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("trials", "self_edits", "versions")}
        if store.engine.dialect.name == "postgresql":
            size = {t: c.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar() for t in counts}
            total = c.execute(text("SELECT pg_database_size(current_database())")).scalar()
        else:
            size = {t: c.execute(text("SELECT sum(pgsize) FROM dbstat WHERE name = :t OR name LIKE :i"),
                                 {"t": t, "i": f"ix_{t}_%"}).scalar() for t in counts}
            total = path.stat().st_size
    return {"database_bytes": total, **{f"bytes_per_{t.rstrip('s')}": round(size[t] / counts[t]) for t in counts}}


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm the connection pool and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def measure(home: Path, url: str, repeats: int) -> dict[str, float]:
    cfg = seal_config.load({"database_url": url})
    ws = Workspace(home=home, config=cfg, store=Store(url), adapters=AdapterStore(home / "adapters"))
    result = {"history first page (50 documents)": median_ms(lambda: history(ws, 50), repeats),
              "versions list": median_ms(lambda: list_versions(ws), repeats),
              "active version lookup": median_ms(lambda: ws.store.version(ws.store.active()), repeats)}
    ws.close()
    return result


def markdown(result: dict[str, Any]) -> str:
    n = result["arguments"]
    lines = [f"### Store at scale: {n['documents']:,} documents, {n['trials']:,} trials, {n['versions']:,} versions",
             "", f"`{result['command']}`", "", "| operation | " + " | ".join(result["backends"]) + " | target |",
             "|---|" + "---|" * len(result["backends"]) + "---|"]
    ops = next(iter(result["backends"].values()))["median_ms"]
    for op in ops:
        cells = [f"{b['median_ms'][op]:.1f} ms" for b in result["backends"].values()]
        lines.append(f"| {op} | " + " | ".join(cells) + " | < 200 ms |")
    lines += ["", "| storage | " + " | ".join(result["backends"]) + " |", "|---|" + "---|" * len(result["backends"])]
    for key in ("database_bytes", "bytes_per_trial", "bytes_per_self_edit", "bytes_per_version"):
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(f"{b['storage'][key]:,}" for b in result["backends"].values()) + " |")
    if result["adapter_bytes_per_version"]:
        lines += ["", f"Adapter files per knowledge version on disk: {result['adapter_bytes_per_version']:,} bytes "
                  "(the default LoRA on the default model, safetensors)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--adapter-dir", type=Path, help="A real knowledge version folder, whose size is reported.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"command": "python -m benchmarks.scale " + " ".join(sys.argv[1:] if argv is None else argv),
                              "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "git": report.git_revision(),
                              "machine": report.machine(), "backends": {},
                              "adapter_bytes_per_version": sum(p.stat().st_size for p in args.adapter_dir.iterdir())
                              if args.adapter_dir else None}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="seal-scale-") as tmp, ExitStack() as stack:
            home = Path(tmp)
            url = (f"sqlite:///{home / 'seal.db'}" if backend == "sqlite"
                   else stack.enter_context(postgres.server(Path(tempfile.mkdtemp(prefix="seal-pg-")))))
            store = Store(url)
            print(f"{backend}: filling …", flush=True)
            seconds = fill(store, args.documents, args.trials, args.versions)
            sizes = storage(store, home / "seal.db" if backend == "sqlite" else None)
            store.close()
            timings = measure(home, url, args.repeats)
            result["backends"][backend] = {"fill_seconds": seconds, "storage": sizes, "median_ms": timings}
            print(backend, json.dumps(result["backends"][backend]), flush=True)
    report.write(args.out, "scale", result, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
