"""What every benchmark result carries and how it is written: the run's provenance (command, config,
seeds, machine, package versions, git revision), the statistics the tables quote (means and
proportions with 95 % intervals), and the JSON + markdown files under the results directory."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata as md
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from seal.config import Config
from seal.errors import InputError

RESULTS = Path("benchmarks/results")
Z95 = 1.959964


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to files only; a one-line error naming the extra when it is missing."""
    try:
        import matplotlib
    except ImportError as e:
        raise InputError("the benchmark plots need matplotlib, which is not installed; "
                         "pip install 'seal-runtime[bench]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def git_revision() -> str:
    """The commit the code ran at, with '+dirty' when the working tree had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "memory_gib": round(memory / 2**30, 1),
            "python": platform.python_version(),
            "packages": {p: md.version(p) for p in ("seal-runtime", "torch", "transformers", "peft")}}


def provenance(cfg: Config, args: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rerun and compare a result: the command, its arguments, the full config."""
    return {"command": "seal " + " ".join(sys.argv[1:]) if Path(sys.argv[0]).name == "seal" else " ".join(sys.argv),
            "arguments": args, "config": dataclasses.asdict(cfg), "git": git_revision(), "machine": machine(),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def resumable(path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """The interrupted run at `path`, checked to have the same arguments and configuration as this one."""
    if not path.exists():
        raise InputError(f"nothing to resume: {path} does not exist; run without --resume")
    result = json.loads(path.read_text(encoding="utf-8"))
    now = json.loads(json.dumps({"arguments": provenance["arguments"], "config": provenance["config"]}))
    changed = [d for key in ("arguments", "config") for d in _differences(result.get(key), now[key], key)]
    if changed:
        raise InputError(f"{path} was run with other settings ({', '.join(changed)}); resume with the same "
                         "options and configuration, or run without --resume")
    return result


def _differences(a: Any, b: Any, prefix: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys()) for d in _differences(a.get(k), b.get(k), f"{prefix}.{k}")]
    return [] if a == b else [prefix]


def resumed(previous: dict[str, Any], provenance: dict[str, Any], **position: int) -> dict[str, Any]:
    """The interrupted run's provenance, with this run (command, git, machine, start, and `position`: where
    it took up) appended under `resumed`."""
    segment = {k: provenance[k] for k in ("command", "git", "machine", "started")} | position
    return {k: previous[k] for k in provenance} | {"resumed": [*previous.get("resumed", []), segment]}


def mean_interval(values: list[float], bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """Mean and its 95 % normal-approximation interval, clipped to the values' possible range
    (accuracies by default); zero width for fewer than two values."""
    if not values:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(values)
    half = Z95 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def wilson(successes: int, n: int) -> tuple[float, float, float]:
    """A proportion and its 95 % Wilson score interval."""
    if n == 0:
        return math.nan, math.nan, math.nan
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def pct(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def with_interval(mean: float, low: float, high: float) -> str:
    return f"{pct(mean)} [{pct(low)}, {pct(high)}]"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write(out: Path, stem: str, result: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """`stem`.json and `stem`.md under `out`, each replaced atomically (a partial run leaves its last
    complete snapshot, never half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"{stem}.json", out / f"{stem}.md"
    for path, text in zip(paths, (json.dumps(result, indent=1, default=str), markdown)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    return paths
