"""The GPU check: does the runtime learn a document on an accelerator, with the CPU's results, and how long does
each stage take there? In one run, with no network, in a few minutes:

  parity  — the whole ingest cycle (generate → adapt → verify → commit, `agent.ingest.ingest` in a fresh home)
            with the tiny model built in code (benchmarks/tiny.py), on the CPU in fp32 (the reference) and on
            the device with bf16 training (fp32 weights, so both sample the same self-edit); on a CUDA GPU also
            with the weights in bf16 (`model.dtype = auto`). It holds when every run commits v1, every
            committed adapter's files load with plain PEFT on the CPU, change the model's logits and keep them
            finite, and the first training loss is within FIRST_LOSS_TOLERANCE (2 %) of the CPU's (5 % with bf16
            weights, judged only when they sampled the CPU's self-edit). The loss is a cross-entropy
            (`train.objective = ce`): the default objective's first loss is a KL that starts at 0.
  timings — seconds per stage of one ingest (examples/brannock_lighthouse.md with its supplied probes) of a
            ~100M-parameter Llama with random weights and the tiny tokenizer (speed only: it learns nothing) on
            the device, with the `gpu` profile's settings (self-edits capped at --max-new-tokens), then the same
            with `train.gradient_checkpointing = true`; with the peak device memory of each.

It prints a markdown report (the device, its memory, the torch/transformers/peft versions, the parity numbers,
the timings) and writes it, with the JSON, to --out as <device type>.md and <device type>.json. The exit status
is 1 when parity does not hold.

Run on a GPU box. The box needs torch, transformers and peft; the other packages the ingest path imports
(langgraph, SQLAlchemy, alembic, …) travel as wheels. Here, where pip reaches its registry:
  python -m benchmarks.device_check --wheels .device-wheels      # for the box's python3: --python 3.12 (default)
then copy the tree (with .device-wheels/, which git ignores) to the box and run there:
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/seal-site .device-wheels/*.whl \\
    && PYTHONPATH=/tmp/seal-site python3 -m benchmarks.device_check --device cuda
(On a box where `pip install -e .` worked, the last line alone: `python -m benchmarks.device_check`.)
With `--device cpu` it runs the same on the CPU, a self-check (`--quick` skips the 100M timings; the test runs
that); `--device cuda` on a machine without CUDA is a one-line error.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmarks.tiny import DOCUMENT, QUESTIONS, TINY_CONFIG, build_tiny_model
from seal.errors import InputError, SealError

if TYPE_CHECKING:
    from model_runtime import LanguageModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "device-check"
TIMED_DOCUMENT = ROOT / "examples" / "brannock_lighthouse.md"
FIRST_LOSS_TOLERANCE = 0.02  # relative: bf16 autocast against fp32, the same batch from the same LoRA start (B = 0)
BF16_WEIGHTS_TOLERANCE = 0.05  # the same with the frozen weights in bf16 too, when it sampled the same self-edit
STAGES = ("generate", "adapt", "verify", "commit")
# ~99M parameters: 12 blocks 768 wide (attention with 6 KV heads 1.8M, MLP 6.5M each), the tiny tokenizer's 320 tokens.
TIMED_MODEL = {"hidden_size": 768, "heads": 12, "layers": 12, "intermediate_size": 2816}
# What a GPU box with PyTorch, transformers and peft installed already has: they and what they need to import.
# The wheels never carry (nor shadow) these; they carry everything else the ingest path needs.
ON_THE_BOX = frozenset({"torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "huggingface-hub",
                        "hf-xet", "numpy", "triton", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock",
                        "fsspec", "packaging", "typing-extensions", "pyyaml", "regex", "tqdm", "psutil", "setuptools"})
BOX_PYTHON = "3.12"  # the GPU image's python3
MANYLINUX = [f"manylinux_2_{n}_x86_64" for n in range(17, 40)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
INSTALL = ("python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/seal-site {wheels}/*.whl "
           "&& PYTHONPATH=/tmp/seal-site python3 -m benchmarks.device_check --device cuda")


# ---- the parity cycles --------------------------------------------------------------------------------

def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra`'s settings over `base`'s, table by table (as config.toml goes over a profile)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def settings(model_dir: Path, device: str, dtype: str, bf16: bool) -> dict[str, Any]:
    """The tests' tiny config on `device`, training cross-entropy (whose first loss compares across devices)
    for 2 epochs, sampling at a temperature so low that the self-edit is the greedy one on every device."""
    return merged(tomllib.loads(TINY_CONFIG.format(model=model_dir.as_posix())),
                  {"model": {"device": device, "dtype": dtype}, "train": {"bf16": bf16, "objective": "ce"},
                   "self_edit": {"temperature": 1e-3}})


def ingest_once(data: dict[str, Any], home: Path, document: str, title: str,
                questions: list[dict[str, str]], lm: LanguageModel | None = None) -> dict[str, Any]:
    """One document through the whole ingest graph in a fresh home `home` (the model loaded for it unless `lm`
    is given): the outcome, the stage seconds the store recorded, the trial's losses and the committed files."""
    from agent.ingest import DocumentInput, ingest
    from agent.workspace import Workspace
    from model_runtime import LanguageModel, loading
    from seal import config as seal_config

    cfg = seal_config.from_dict(data)
    home.mkdir(parents=True)
    if lm is None:
        lm = LanguageModel(*loading.load(cfg.model, home / "models"))
    ws = Workspace.open(cfg, home=home, lm=lm)
    try:
        start = time.perf_counter()
        [result] = ingest(ws, [DocumentInput(f"{title}.md", title, document,
                                             tuple((q["question"], q["answer"]) for q in questions))])
        seconds = time.perf_counter() - start
        trials = ws.store.trials(result.document_id)
        best = next((t for t in trials if t.decision == "committed"), trials[0])
        committed = ws.store.versions()
        files = (ws.adapters.verified("knowledge", committed[-1].number, committed[-1].files)
                 if committed else None)
        # adapt and verify run once per candidate: a stage's seconds are the sum over its runs.
        stages: dict[str, float] = {}
        for event in ws.store.events("stage", result.document_id):
            stages[event.data["stage"]] = stages.get(event.data["stage"], 0.0) + event.data["seconds"]
        return {"status": result.status, "version": result.version, "reason": result.reason,
                "seconds": seconds, "stages": stages,
                "candidates": len(trials), "losses": best.losses, "tokens": best.tokens,
                "train_seconds": best.train_seconds, "self_edit": ws.store.self_edit(best.self_edit_id).text,
                "weights_dtype": str(lm.base.dtype).removeprefix("torch."),
                "weights_device": str(next(lm.base.parameters()).device), "adapter_dir": files}
    finally:
        for name in list(lm.adapters()):
            lm.delete_adapter(name)
        ws.close()


def adapter_loads(model_dir: Path, adapter_dir: Path | None) -> dict[str, Any]:
    """The committed adapter's files loaded with plain PEFT onto the base model on the CPU (whichever device
    trained it): whether they load, keep the logits finite, and how far they move them."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if adapter_dir is None:
        return {"loads": False, "finite": False, "max_logit_change": 0.0}
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = AutoTokenizer.from_pretrained(model_dir)(DOCUMENT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, adapter_dir)(ids).logits
    return {"loads": True, "finite": bool(torch.isfinite(after).all()),
            "max_logit_change": float((after - before).abs().max())}


def parity(device: torch.device, root: Path, say) -> dict[str, Any]:
    """The tiny model's ingest on the CPU in fp32 and on `device` with bf16 training (and, on a CUDA GPU, with
    bf16 weights too), compared; `holds` with the `problems` that break it."""
    model_dir = build_tiny_model(root / "tiny-model", init=0.5)  # peaked logits: no near-ties to flip the self-edit
    # name: (device, model.dtype, train.bf16, first-loss tolerance)
    runs = {"cpu fp32 (reference)": ("cpu", "float32", False, 0.0),
            f"{device} fp32 weights, bf16 training": (str(device), "float32", True, FIRST_LOSS_TOLERANCE)}
    if device.type == "cuda":
        runs[f"{device} bf16 weights, bf16 training"] = (str(device), "auto", True, BF16_WEIGHTS_TOLERANCE)
    results: dict[str, dict[str, Any]] = {}
    for i, (name, (where, dtype, bf16, tolerance)) in enumerate(runs.items()):
        say(f"parity: ingest on {name}")
        run = ingest_once(settings(model_dir, where, dtype, bf16), root / f"parity-{i}", DOCUMENT, "Lighthouse",
                          QUESTIONS)
        run["adapter"] = adapter_loads(model_dir, run.pop("adapter_dir"))
        results[name] = run | {"tolerance": tolerance}
    reference = results["cpu fp32 (reference)"]
    problems = []
    for name, run in results.items():
        run["first_loss_rel_diff"] = abs(run["losses"][0] - reference["losses"][0]) / abs(reference["losses"][0])
        run["same_self_edit"] = run["self_edit"] == reference["self_edit"]
        if run["status"] != "committed" or run["version"] != 1:
            problems.append(f"{name}: {run['status']} (version {run['version']}: {run['reason']}), not committed as v1")
        # bf16 weights may sample another self-edit (every logit rounded): then the first batches differ and
        # only the fp32-weights run speaks for the loss.
        judged = run["same_self_edit"] or runs[name][1] == "float32"
        if judged and run["first_loss_rel_diff"] > run["tolerance"]:
            problems.append(f"{name}: first loss {run['losses'][0]:.4f} is {run['first_loss_rel_diff']:.2%} from the "
                            f"CPU's {reference['losses'][0]:.4f} (tolerance {run['tolerance']:.0%}; same self-edit: "
                            f"{run['same_self_edit']})")
        adapter = run["adapter"]
        if not (adapter["loads"] and adapter["finite"] and adapter["max_logit_change"] > 0):
            problems.append(f"{name}: the committed adapter does not load into a working model ({adapter})")
    return {"tolerance": FIRST_LOSS_TOLERANCE, "runs": results, "holds": not problems, "problems": problems}


# ---- the timed cycles ---------------------------------------------------------------------------------

def timings(device: torch.device, root: Path, max_new_tokens: int, say) -> dict[str, Any]:
    """One ingest of the timed document by a ~100M random Llama on `device` (the gpu profile, self-edits capped,
    a gate that passes), then again with gradient checkpointing, the model loaded once; seconds per stage and
    peak device memory. The first cycle also pays one-time costs (kernel selection, allocator growth)."""
    from model_runtime import LanguageModel, loading
    from seal import config as seal_config

    model_dir = build_tiny_model(root / "timed-model", **TIMED_MODEL)
    # The gpu profile under the tiny config's gate (every candidate passes, so commit runs too).
    tiny = tomllib.loads(TINY_CONFIG.format(model=model_dir.as_posix()))
    data = merged(seal_config.PROFILES["gpu"], {"profile": "gpu", "model": tiny["model"] | {"device": str(device)},
                                                "verify": {k: v for k, v in tiny["verify"].items() if k.startswith(("min_", "max_"))},
                                                "self_edit": {"max_new_tokens": max_new_tokens}})
    cfg = seal_config.from_dict(data)
    say(f"timings: loading the {loading.parameters(model_dir) / 1e6:.3g}M-parameter model on {device}")
    lm = LanguageModel(*loading.load(cfg.model, root / "models"))
    questions = json.loads(TIMED_DOCUMENT.with_suffix(".qa.json").read_text())
    cycles = {}
    for checkpointing in (False, True):
        name = "gradient checkpointing" if checkpointing else "default"
        say(f"timings: ingest ({name})")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        run = ingest_once(merged(data, {"train": {"gradient_checkpointing": checkpointing}}), root / f"timed-{name}",
                          TIMED_DOCUMENT.read_text(), TIMED_DOCUMENT.stem, questions, lm=lm)
        run["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        run.pop("adapter_dir")
        run.pop("self_edit")
        cycles[name] = run
    return {"model": {"parameters": loading.parameters(model_dir), **TIMED_MODEL,
                      "weights_dtype": cycles["default"]["weights_dtype"]},
            "settings": {"profile": "gpu", "self_edit.k": cfg.self_edit.k, "self_edit.max_new_tokens": max_new_tokens,
                         "train.epochs": cfg.train.epochs, "train.batch_size": cfg.train.batch_size,
                         "train.objective": cfg.train.objective, "verify.answer_tokens": cfg.verify.answer_tokens},
            "document": {"path": TIMED_DOCUMENT.relative_to(ROOT).as_posix(), "probes": len(questions)},
            "cycles": cycles}


# ---- the report ---------------------------------------------------------------------------------------

def machine(device: torch.device) -> dict[str, Any]:
    """The device and the versions that ran: what a reader needs to compare two reports."""
    info: dict[str, Any] = {"device": str(device), "python": platform.python_version(),
                            "platform": platform.platform(), "cpus": os.cpu_count(),
                            "torch": torch.__version__, "transformers": md.version("transformers"),
                            "peft": md.version("peft"), "cuda": torch.version.cuda}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                 "bf16": torch.cuda.is_bf16_supported(), "capability": f"{props.major}.{props.minor}"}
    else:
        info |= {"name": cpu_name(), "memory_gib": None, "bf16": None}
    return info


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def markdown(result: dict[str, Any]) -> str:
    m, p = result["machine"], result["parity"]
    memory = f", {m['memory_gib']} GiB" if m["memory_gib"] else ""
    lines = [f"# Device check: {m['name']} ({m['device']}{memory})", "",
             f"torch {m['torch']} (CUDA {m['cuda']}), transformers {m['transformers']}, peft {m['peft']}, "
             f"python {m['python']}; {result['seconds']:.0f} s in all.", "",
             f"## Parity: {'holds' if p['holds'] else 'FAILS'} (first loss within {p['tolerance']:.0%} of the CPU's)",
             "", "| run | decision | first loss | Δ vs CPU (tolerance) | last loss | same self-edit | adapter loads | "
             "max logit change | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for name, run in p["runs"].items():
        a = run["adapter"]
        lines.append(f"| {name} | {run['status']} v{run['version']} | {run['losses'][0]:.4f} | "
                     f"{run['first_loss_rel_diff']:.2%} ({run['tolerance']:.0%}) | {run['losses'][-1]:.4f} | {run['same_self_edit']} | "
                     f"{a['loads'] and a['finite']} | {a['max_logit_change']:.3g} | {run['seconds']:.1f} |")
    lines += [f"- {problem}" for problem in p["problems"]]
    t = result.get("timings")
    if t:
        s = t["settings"]
        lines += ["", f"## Timings: {t['model']['parameters'] / 1e6:.3g}M-parameter Llama, random weights "
                  f"({t['model']['weights_dtype']}), {t['document']['path']} with {t['document']['probes']} probes",
                  "", f"gpu profile, K = {s['self_edit.k']} self-edits of at most {s['self_edit.max_new_tokens']} "
                  f"tokens, {s['train.epochs']} epochs of batch {s['train.batch_size']} ({s['train.objective']}).", "",
                  "| run | candidates | " + " s | ".join(STAGES) + " s | total s | tokens trained per candidate | "
                  "peak memory GiB |", "|---|" + "---|" * (len(STAGES) + 4)]
        for name, run in t["cycles"].items():
            stages = " | ".join(f"{run['stages'].get(stage, float('nan')):.1f}" for stage in STAGES)
            peak = f"{run['peak_memory_gib']:.2f}" if run["peak_memory_gib"] is not None else "–"
            lines.append(f"| {name} | {run['candidates']} | {stages} | {run['seconds']:.1f} | {run['tokens']} | {peak} |")
    return "\n".join(lines) + "\n"


def check(device_name: str, out: Path, quick: bool, max_new_tokens: int) -> dict[str, Any]:
    """Run the check on `device_name`; write <type>.json and <type>.md under `out`; return the result."""
    from transformers.utils import logging as hf_logging

    from model_runtime import loading

    try:
        device = loading.device(device_name)
    except InputError as e:
        raise InputError(f"--device {device_name}: {e}") from e
    hf_logging.disable_progress_bar()  # save_pretrained's bars: the check prints its own progress
    say = lambda message: print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(device)}
    with tempfile.TemporaryDirectory(prefix="seal-device-check-") as tmp:
        result["parity"] = parity(device, Path(tmp), say)
        if not quick:
            result["timings"] = timings(device, Path(tmp), max_new_tokens, say)
    result["seconds"] = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    report = markdown(result)
    (out / f"{device.type}.md").write_text(report)
    (out / f"{device.type}.json").write_text(json.dumps(result, indent=2, default=str))
    print(report)
    return result


# ---- the wheels for a bare GPU box ----------------------------------------------------------------------

def imported_distributions() -> set[str]:
    """Distributions a fresh interpreter imports for this check (the ingest path and the store), by name."""
    probe = ("import importlib.metadata as md, json, sys\n"
             "import agent.ingest, agent.workspace, benchmarks.device_check, benchmarks.homes, memory, seal.config\n"
             "dists = md.packages_distributions()\n"
             "print(json.dumps(sorted({d for m in sys.modules for d in dists.get(m.split('.')[0], [])})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return {canonical(name) for name in json.loads(out.stdout)}


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirements(name: str, extras: frozenset[str] = frozenset(), python: str = BOX_PYTHON) -> list[tuple[str, frozenset[str]]]:
    """What distribution `name` (installed here) requires on the GPU box (Linux x86_64, CPython `python`), with the
    extras asked for."""
    from packaging.requirements import Requirement

    box = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    try:
        declared = md.requires(name) or []
    except md.PackageNotFoundError:
        return []
    needed = []
    for line in declared:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate(box | {"extra": e}) for e in extras | {""}):
            needed.append((canonical(req.name), frozenset(req.extras)))
    return needed


def closure(roots: list[tuple[str, frozenset[str]]], stop: frozenset[str], python: str = BOX_PYTHON) -> set[str]:
    """`roots` and everything they require, transitively, not entering the distributions in `stop`."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        if name not in seen and name not in stop:
            seen.add(name)
            todo += requirements(name, extras, python)
    return seen


def wheel_list(python: str = BOX_PYTHON) -> tuple[list[str], list[str]]:
    """(name==version for each wheel the box needs, imported distributions left out). The box needs the
    project's requirements that this check imports and what they require, less what is on the box already;
    each at the version installed here (the tested one). What is imported here and left out is imported only
    because it is installed here (transformers uses kernels if present, say), or is on the box already."""
    imported = imported_distributions()
    project = [r for r in requirements("seal-runtime", python=python) if r[0] in imported]
    needed = sorted(closure(project, ON_THE_BOX | {"seal-runtime"}, python))
    specs = []
    for name in needed:
        try:
            specs.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:  # required only on the box's python: pip picks the version
            specs.append(name)
    left_out = sorted(imported - set(needed) - ON_THE_BOX - {"seal-runtime"}
                      - {n for n in imported if n.startswith(("nvidia-", "cuda-"))})
    return specs, left_out


def tree_bytes() -> int | None:
    """Bytes of what would travel to the box without the wheels: tracked and untracked, not ignored, files."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               capture_output=True, check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def download_wheels(folder: Path, python: str = BOX_PYTHON) -> int:
    """`pip download` the wheels the GPU box lacks into `folder` (emptied of wheels first: two versions of one
    package stop the install); print each, their total size and the command to run there."""
    specs, left_out = wheel_list(python)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    platforms = [arg for p in MANYLINUX for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
               "--python-version", python, "--implementation", "cp", *platforms,
               "-c", str(ROOT / "constraints.txt"), "-d", str(folder), *specs]
    print(f"pip download of {len(specs)} wheels for CPython {python} on manylinux x86_64 "
          f"(none of what PyTorch, transformers and peft bring) into {folder}", file=sys.stderr)
    download = subprocess.run(command, capture_output=True, text=True)
    if download.returncode:
        sys.stderr.write(download.stdout + download.stderr)
        raise SealError(f"pip download exited with {download.returncode} (its output is above); "
                        f"pip needs its package index, and each wheel for CPython {python} on manylinux x86_64")
    wheels = sorted(folder.glob("*.whl"), key=lambda w: -w.stat().st_size)
    total = sum(w.stat().st_size for w in wheels)
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    tree = tree_bytes()
    print(f"{total / 2**20:7.2f} MiB in {len(wheels)} wheels"
          + (f"; with the tree that travels, {(total + tree) / 2**20:.1f} MiB (limit 64 MiB)" if tree else ""))
    if left_out:
        print(f"imported here, but required by nothing the ingest path brings (so not carried): {', '.join(left_out)}")
    print("On the GPU box, from the repository root:\n  " + INSTALL.format(wheels=_shown(folder)))
    return total


def _shown(folder: Path) -> str:
    try:
        return folder.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.device_check", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device to check against the CPU: cuda, cuda:N, "
                        "mps or cpu (a self-check) (default: cuda)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the JSON and markdown (default: {OUT})")
    parser.add_argument("--quick", action="store_true", help="parity only: skip the ~100M-parameter timings")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest self-edit of the timed cycles")
    parser.add_argument("--wheels", type=Path, metavar="DIR",
                        help="download the wheels a bare GPU box lacks into DIR instead, and print the command")
    parser.add_argument("--python", default=BOX_PYTHON, help=f"the GPU box's Python, for --wheels (default: {BOX_PYTHON})")
    args = parser.parse_args(argv)
    try:
        if args.wheels:
            download_wheels(args.wheels, args.python)
            return 0
        result = check(args.device, args.out, args.quick, args.max_new_tokens)
    except SealError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0 if result["parity"]["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
