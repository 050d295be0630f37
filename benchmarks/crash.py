"""Kill harness: SIGKILL `seal ingest` at many instants and check that the store survives each one.

Every kill runs in a fresh copy of a home that already holds v1, so the killed ingest is working towards
v2. Kills are spread over the stages by time (uniform instants inside generate, adapt and verify, from a
calibration run's stage timings) and placed exactly inside the file-writing and database steps with
failpoints (`seal/failpoints.py`), which a timed kill would almost never hit. After each kill:

1. `seal doctor` reports the home consistent, or `seal doctor --repair` makes it so;
2. `seal ask` loads and verifies the active version and answers;
3. `seal ingest --resume` finishes the interrupted ingest, and ingesting the document again reports it
   known: across it all the document is committed exactly once (one version lists it, one trial committed).

The gate is opened (`verify.min_gain=-1` …) so every run ends in a commit: this tests crash consistency,
not learning.

Run: python -m benchmarks.crash --kills 30        (the bundled model; ~20 min)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from memory import Store
from seal import config as seal_config
from seal.failpoints import POINTS

STAGES = ("generate", "adapt", "verify")
OPEN_GATE = ["--set", "verify.min_gain=-1", "--set", "verify.max_general_drop=1", "--set", "verify.max_drift=1000",
             "--set", "verify.max_retention_drop=1", "--set", "self_edit.k=1"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def seal(home: Path, *args: str, failpoint: str | None = None, stderr: int = subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "SEAL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("SEAL_FAILPOINT", None)
    if failpoint:
        env["SEAL_FAILPOINT"] = failpoint
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Exit status, standard output (JSON where the command was asked for it), standard error."""
    out, err = process.communicate(timeout=900)
    return process.returncode, out, err


def ingest_args(doc: Path) -> list[str]:
    qa = doc.with_suffix(".qa.json")
    return [*OPEN_GATE, "ingest", str(doc), *(["--qa", str(qa)] if qa.exists() else [])]


def make_base(root: Path, config: Path | None, first: Path) -> Path:
    """A home with v1 committed (from `first`), sharing the model cache of the user's SEAL_HOME."""
    base = root / "base"
    base.mkdir(parents=True)
    if config is not None:
        shutil.copyfile(config, base / "config.toml")
    (base / "models").symlink_to(seal_config.home() / "models", target_is_directory=True)
    code, out, err = finish(seal(base, *ingest_args(first)))
    if code != 0:
        raise SystemExit(f"setting up the base home failed:\n{out}{err}")
    return base


def fresh(base: Path, home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(base, home, symlinks=True)
    return home


def calibrate(base: Path, root: Path, doc: Path) -> dict[str, tuple[float, float]]:
    """Seconds after process start at which each stage begins and ends, from a clean run's progress lines."""
    process = seal(fresh(base, root / "calibration"), *ingest_args(doc), stderr=subprocess.DEVNULL)
    start, seen = time.perf_counter(), {}
    for line in process.stdout:
        stage = line.strip().split(":")[0]
        if stage in STAGES and stage not in seen:
            seen[stage] = time.perf_counter() - start
    process.wait()
    end = time.perf_counter() - start
    bounds = [seen["generate"], seen["adapt"], seen["verify"], end]
    return {s: (bounds[i], bounds[i + 1]) for i, s in enumerate(STAGES)}


def plan(kills: int, windows: dict[str, tuple[float, float]] | None, seed: int) -> list[dict[str, Any]]:
    """40 % of the kills at failpoints (taken in turn; 30 kills hit each twice), the rest timed: a uniform
    instant 5–90 % into the calibrated length of each stage in turn, counted from when the killed process
    announces that stage (so a faster or slower machine still kills inside it). Without `windows`, only
    failpoints."""
    rng = random.Random(seed)
    points = kills if windows is None else min(2 * len(POINTS), round(0.4 * kills))
    placed = [{"how": "failpoint", "at": list(POINTS)[i % len(POINTS)]} for i in range(points)]
    timed = []
    for i in range(kills - len(placed)):
        stage = STAGES[i % len(STAGES)]
        lo, hi = windows[stage]
        timed.append({"how": "timed", "at": stage, "after": round(rng.uniform(0.05, 0.9) * (hi - lo), 2)})
    order = placed + timed
    rng.shuffle(order)
    return order


def landed(home: Path, doc_id: int | None) -> str:
    """The stage the process was in when it died: the one after the last stage it recorded."""
    if doc_id is None:
        return "load"
    store = Store.at_home(home, upgrade=False)
    done = [e.data["stage"] for e in store.events("stage", doc_id)]
    store.close()
    order = ["generate", "adapt", "verify", "commit"]
    return order[order.index(done[-1]) + 1] if done and done[-1] != "commit" else (
        "after commit" if done else "generate")


def document_id(home: Path, doc: Path) -> int | None:
    store = Store.at_home(home, upgrade=False)
    found = [d.id for d in store.documents(limit=1000) if d.source == str(doc)]
    store.close()
    return found[0] if found else None


def one_kill(base: Path, home: Path, doc: Path, question: str, kill: dict[str, Any]) -> dict[str, Any]:
    fresh(base, home)
    start = time.perf_counter()
    process = seal(home, *ingest_args(doc), failpoint=kill["at"] if kill["how"] == "failpoint" else None,
                   stderr=subprocess.DEVNULL)
    timers = []
    for line in process.stdout:  # progress lines, e.g. "  adapt: training candidate 1/1"
        if kill["how"] == "timed" and not timers and line.strip().startswith(kill["at"] + ":"):
            timers.append(threading.Timer(kill["after"], lambda: process.poll() is None and process.kill()))
            timers[0].start()
    code = process.wait()
    for timer in timers:
        timer.cancel()
    record = {**kill, "killed": code == -signal.SIGKILL, "died_after": round(time.perf_counter() - start, 2)}
    doc_id = document_id(home, doc)
    record["stage"] = landed(home, doc_id) if record["killed"] else "finished first"

    code, out, _ = finish(seal(home, "doctor", "--json"))
    report_ = json.loads(out)
    record["doctor"] = [f["what"] for f in report_["findings"] if f["problem"]]
    if not report_["consistent"]:
        code, out, _ = finish(seal(home, "doctor", "--repair", "--json"))
        record["repaired"] = [f["what"] for f in json.loads(out)["findings"] if f["repaired"]]
    code, out, _ = finish(seal(home, "doctor", "--json"))
    record["consistent"] = code == 0 and json.loads(out)["consistent"]

    code, out, _ = finish(seal(home, "ask", question, "--json"))
    record["ask_ok"] = code == 0
    record["active_after_kill"] = json.loads(out)["version"] if code == 0 else None

    code_resume, out_resume, err_resume = finish(seal(home, *OPEN_GATE, "ingest", "--resume"))
    code_again, out_again, err_again = finish(seal(home, *ingest_args(doc)))
    record["rerun_ok"] = code_resume == 0 and code_again == 0
    doc_id = document_id(home, doc)
    store = Store.at_home(home, upgrade=False)
    record["versions_with_document"] = [v.number for v in store.versions() if doc_id in v.documents]
    record["committed_trials"] = sum(t.decision == "committed" for t in store.trials(doc_id))
    record["active"] = store.active()
    store.close()
    code, _, _ = finish(seal(home, "doctor", "--json"))
    record["consistent_at_end"] = code == 0
    record["ok"] = bool(record["killed"] and record["consistent"] and record["ask_ok"] and record["rerun_ok"]
                        and record["versions_with_document"] == [2] and record["committed_trials"] == 1
                        and record["active"] == 2 and record["consistent_at_end"])
    if not record["ok"]:
        record["output"] = (out_resume + err_resume + out_again + err_again)[-3000:]
    shutil.rmtree(home, ignore_errors=True)
    return record


def markdown(result: dict[str, Any]) -> str:
    rows = result["kills"]
    lines = [f"### Kill harness: {len(rows)} SIGKILLs of `seal ingest`", "", f"`{result['command']}`", "",
             "| # | how | where | stage when killed | doctor found | repaired | consistent | ask | committed once |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        where = r["at"] if r["how"] == "failpoint" else f"{r['after']} s into {r['at']}"
        lines.append(f"| {i} | {r['how']} | {where} | {r['stage']} | {len(r['doctor'])} | {len(r.get('repaired', []))} "
                     f"| {'yes' if r['consistent'] else 'NO'} | {'yes' if r['ask_ok'] else 'NO'} "
                     f"| {'yes' if r['versions_with_document'] == [2] and r['committed_trials'] == 1 else 'NO'} |")
    s = result["summary"]
    lines += ["", f"**{s['ok']} of {s['kills']} kills recovered** (killed by signal: {s['killed']}; "
              f"stages hit: {', '.join(f'{k} {v}' for k, v in s['stages'].items())}); "
              f"median kill-to-recovered cycle {s['median_cycle_seconds']} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--doc", type=Path, default=EXAMPLES / "brannock_lighthouse.md")
    parser.add_argument("--first", type=Path, default=EXAMPLES / "inventor_tessaly_orn.md",
                        help="Document committed as v1 in the base home.")
    parser.add_argument("--config", type=Path, help="config.toml for the homes (default: the bundled model).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-failpoints", action="store_true",
                        help="No timed kills (for a model too fast to kill by the clock, as in the smoke test).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--stem", default="crash-kills")
    args = parser.parse_args(argv)
    root = seal_config.home() / "bench" / args.stem
    shutil.rmtree(root, ignore_errors=True)
    question = json.loads(args.doc.with_suffix(".qa.json").read_text())[0]["question"] \
        if args.doc.with_suffix(".qa.json").exists() else "What is this document about?"
    (seal_config.home() / "models").mkdir(parents=True, exist_ok=True)
    base = make_base(root, args.config, args.first)
    windows = None if args.only_failpoints else calibrate(base, root, args.doc)
    if windows:
        print("stage windows (s after start):", {k: (round(a, 1), round(b, 1)) for k, (a, b) in windows.items()})
    result: dict[str, Any] = {"command": "python -m benchmarks.crash " + " ".join(sys.argv[1:] if argv is None else argv),
                              "arguments": {k: str(v) for k, v in vars(args).items()}, "git": report.git_revision(),
                              "machine": report.machine(), "windows": windows, "kills": []}
    for i, kill in enumerate(plan(args.kills, windows, args.seed)):
        start = time.perf_counter()
        record = one_kill(base, root / f"kill-{i + 1}", args.doc, question, kill)
        record["cycle_seconds"] = round(time.perf_counter() - start, 1)
        result["kills"].append(record)
        print(f"kill {i + 1}: {kill['how']} {kill['at']} -> {record['stage']}: {'ok' if record['ok'] else 'FAILED'}",
              flush=True)
        rows = result["kills"]
        stages: dict[str, int] = {}
        for r in rows:
            stages[r["stage"]] = stages.get(r["stage"], 0) + 1
        result["summary"] = {"kills": len(rows), "ok": sum(r["ok"] for r in rows),
                             "killed": sum(r["killed"] for r in rows), "stages": stages,
                             "median_cycle_seconds": statistics.median(r["cycle_seconds"] for r in rows)}
        report.write(args.out, args.stem, result, markdown(result))
    s = result["summary"]
    print(f"{s['ok']} of {s['kills']} kills recovered")
    return 0 if s["ok"] == s["kills"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
