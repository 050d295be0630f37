"""`seal bench speed`: what learning one document costs on this machine, against this machine's limits,
all measured in the same run:
  machine — fp32 and bf16 matrix-multiply peaks (the best of 1024³ and 2048³, at the start and at the end
            of the run) and memory copy bandwidth;
  cycle   — wall time of one ingest by stage (generate, adapt, verify, commit), median of --runs,
            each in a fresh home with the model already loaded (as in a running agent); then the time to
            answer the document's questions from each memory (`seal ask --context none|retrieve|both`);
  adapt   — trained tokens/s, and the useful FLOP/s as a share of the measured peak (a LoRA on a
            frozen base costs forward + input-gradient backward = 2 × the forward FLOPs per token);
            then where that share goes: the same training again under torch.profiler, its time split
            into matrix multiplies (with their own GFLOP/s), attention, the optimiser step and the rest;
  decode  — greedy tokens/s at batch 1 and at the runtime's batch, against the roofline
            min(memory bandwidth / weight bytes × batch, compute peak / forward FLOPs per token);
            and verify's closed-book batch (the document's questions and the general probes) decoded the
            runtime's way, the prompts' shared prefix computed once, against left padding, alternated;
  paper   — the paper's inner loop re-implemented on the same self-edit (HF Trainer, every sequence
            padded to 2048 with the pads in the loss, LoRA r=32 α=64 on q/v only, 10 epochs, lr 1e-3,
            batch 1): wall-time ratio against the runtime's adapt, and closed-book accuracy of both.

Run: seal bench speed --runs 3
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig

from agent.adapt import lora_config
from agent.answer import CONTEXTS, ask, closed_book
from agent.generate import parts_of, passages_of
from agent.grading import accuracy, grade
from agent.ingest import DocumentInput, ingest
from agent.probes import GENERAL_PROBES
from agent.prompts import answer_messages
from agent.transfer import training_examples
from benchmarks import report
from benchmarks.homes import fresh_workspace
from model_runtime import LanguageModel, TrainingExample, train_lora
from model_runtime import lm as lm_module
from model_runtime.training import native_bf16
from seal.config import Config, TrainConfig

STAGES = ("generate", "adapt", "verify", "commit")
RUNTIME_BATCH = 32  # LanguageModel.generate's default batch
Step = Callable[[str], None]


def _median_time(fn: Callable[[], Any], repeats: int, warmup: Callable[[], Any] | None = None) -> float:
    (warmup or fn)()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int, repeats: int = 8) -> float:
    """GFLOP/s of an (m × k) @ (k × n) matrix multiply (2·m·k·n FLOPs), median of `repeats`."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    return 2 * m * k * n / _median_time(lambda: a @ b, repeats) / 1e9


PEAK_SIZES = (1024, 2048)


def matmul_peak(dtype: torch.dtype, sizes: tuple[int, ...] = PEAK_SIZES, repeats: int = 8) -> float:
    """The best GFLOP/s of square matrix multiplies of these sizes: the machine's peak as this benchmark
    measures it."""
    return max(matmul_gflops(dtype, size, size, size, repeats) for size in sizes)


def machine_peaks(native: bool) -> dict[str, float]:
    # Emulated bf16 (no AVX512-BF16/AMX) runs ~50x below fp32: a smaller matrix measures it in seconds.
    return {"fp32_gflop_s": matmul_peak(torch.float32),
            "bf16_gflop_s": matmul_peak(torch.bfloat16, sizes=PEAK_SIZES if native else (512,))}


def copy_bandwidth(mebibytes: int = 256, repeats: int = 8) -> float:
    """GB/s of a large tensor copy (bytes read + bytes written), median of `repeats`."""
    src = torch.ones(mebibytes * 2**20 // 4)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / _median_time(lambda: dst.copy_(src), repeats) / 1e9


def model_shape(lm: LanguageModel) -> dict[str, Any]:
    """Parameter counts the FLOP and byte estimates need (matmul weights include the output head)."""
    base = lm.base
    linear = sum(m.weight.numel() for m in base.modules() if isinstance(m, torch.nn.Linear))
    c = base.config
    return {"parameters": sum(p.numel() for p in base.parameters()), "matmul_parameters": linear,
            "weight_bytes": sum(p.numel() * p.element_size() for p in base.parameters()),
            "layers": c.num_hidden_layers, "hidden": c.hidden_size}


def forward_flops(shape: dict[str, Any], context: float) -> float:
    """Forward FLOPs per token: 2 per matmul weight, plus causal attention (QKᵀ and AV) over an
    average of context/2 earlier positions in every layer."""
    return 2 * shape["matmul_parameters"] + 4 * shape["layers"] * shape["hidden"] * context / 2


def decode_rate(lm: LanguageModel, batch: int, new_tokens: int, repeats: int) -> float:
    """Greedy decode tokens/s for `batch` short chat prompts, forced to exactly `new_tokens` tokens."""
    prompts = [lm.chat_prompt([{"role": "user", "content": GENERAL_PROBES[i % len(GENERAL_PROBES)][0]}])
               for i in range(batch)]
    enc = lm.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)

    def run(tokens: int) -> None:
        with torch.inference_mode():
            lm.base.generate(**enc, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                             pad_token_id=lm.tokenizer.pad_token_id)

    # A short warm-up runs the same kernels (the prefill and one-token steps) as the timed runs.
    return batch * new_tokens / _median_time(lambda: run(new_tokens), repeats, warmup=lambda: run(4))


def shared_prefix(lm: LanguageModel, questions: list[str], tokens: int, repeats: int) -> dict[str, Any]:
    """Seconds to answer verify's closed-book batch with the prompts' shared prefix computed once (the runtime's
    way) and with every row left-padded, the two alternated `repeats` times (medians); whether they agree."""
    seconds: dict[str, list[float]] = {"shared": [], "left_padded": []}
    answers: dict[str, list[str]] = {}
    shortest = lm_module.MIN_SHARED_PREFIX
    closed_book(lm, questions, None, 4)  # warm-up
    try:
        for _ in range(repeats):
            for layout, threshold in (("shared", shortest), ("left_padded", 10**9)):
                lm_module.MIN_SHARED_PREFIX = threshold
                start = time.perf_counter()
                answers[layout] = closed_book(lm, questions, None, tokens)
                seconds[layout].append(time.perf_counter() - start)
    finally:
        lm_module.MIN_SHARED_PREFIX = shortest
    ids = [lm.tokenizer(lm.chat_prompt(answer_messages(q)), add_special_tokens=False)["input_ids"] for q in questions]
    common = next((i for i in range(min(map(len, ids))) if len({x[i] for x in ids}) > 1), min(map(len, ids)))
    return {"prompts": len(questions), "answer_tokens": tokens, "shared_tokens": common,
            "mean_prompt_tokens": statistics.fmean(map(len, ids)),
            **{f"{k}_seconds": statistics.median(v) for k, v in seconds.items()},
            "same_answers": sum(a == b for a, b in zip(answers["shared"], answers["left_padded"]))}


def cycle(lm: LanguageModel, document: DocumentInput, cfg: Config, home: Path) -> dict[str, Any]:
    """One ingest in a fresh home: stage seconds, the trial's training numbers, and its sequences."""
    with fresh_workspace(lm, cfg, home) as ws:
        start = time.perf_counter()
        result = next(ingest(ws, [document]))
        total = time.perf_counter() - start
        stages = {e.data["stage"]: e.data["seconds"] for e in ws.store.events("stage", result.document_id)}
        trial = ws.store.trials(result.document_id)[0]
        edit, doc = ws.store.self_edit(trial.self_edit_id), ws.store.document(result.document_id)
        # Answering the document's questions from each memory, once learned: seconds per question.
        answer_seconds = {mode: statistics.median(_timed(lambda: ask(ws, q, mode)) for q, _ in document.questions)
                          for mode in CONTEXTS}
        # What adapt trained on (a fresh home: nothing to replay).
        parts = list(zip(passages_of(ws, doc), [text for _, text in parts_of(edit)]))
        examples = training_examples(lm, doc.title, parts, edit.format, [p.answer for p in doc.probes], [], cfg)
    rows = [len(lm.tokenizer(e.prompt + e.completion, add_special_tokens=False)["input_ids"]) for e in examples]
    return {"total": total, "stages": stages, "decision": result.status, "accuracy": result.new_after,
            "train_tokens": trial.tokens, "train_seconds": trial.train_seconds, "sequences": edit.sequences,
            "examples": examples, "mean_sequence_tokens": statistics.fmean(rows), "answer_seconds": answer_seconds}


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


MATMULS = {"aten::mm", "aten::addmm", "aten::bmm"}


def step_profile(lm: LanguageModel, examples: list[TrainingExample], cfg: Config) -> dict[str, Any]:
    """The cycle's training again (its examples, a fresh adapter, the runtime's loop) under torch.profiler:
    wall seconds of the matrix multiplies (and the FLOPs the profiler counts for them), of attention, of
    the optimiser step, and of everything else. The profiler's own cost is in "everything else" here;
    `summarize` estimates it against the unprofiled cycles."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(cfg.train.seed)
    lm.add_adapter("profile", lora_config(cfg.train, lm.base))
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        result = train_lora(lm, "profile", examples, cfg.train, max_tokens=cfg.self_edit.max_sequence_tokens)
    lm.delete_adapter("profile")
    events = prof.key_averages()
    seconds = lambda keep: sum(e.self_cpu_time_total for e in events if keep(e.key)) / 1e6
    matmul = seconds(lambda key: key in MATMULS)
    # The optimiser's own ops run under its "Optimizer.step#AdamW.step" range: its total, not self, time.
    optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#")) / 1e6
    attention = seconds(lambda key: "scaled_dot_product" in key)
    return {"seconds": result.seconds, "steps": result.steps, "tokens": result.tokens, "matmul_seconds": matmul,
            "matmul_gflop_s": sum(e.flops for e in events if e.key in MATMULS) / matmul / 1e9 if matmul else 0.0,
            "attention_seconds": attention, "optimizer_seconds": optimizer,
            "other_seconds": result.seconds - matmul - attention - optimizer}


def paper_recipe(lm: LanguageModel, sequences: list[list[str]], questions: list[tuple[str, str]], cfg: Config,
                 pad: int, epochs: int) -> dict[str, Any]:
    """The paper's inner loop on `sequences`, from the base model, then closed-book on `questions`."""
    from transformers import Trainer, TrainingArguments

    lm.add_adapter("paper", LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                       task_type="CAUSAL_LM"))
    tokenizer = lm.tokenizer
    tokenizer.padding_side = "right"
    try:
        enc = tokenizer([p + c for p, c in sequences], padding="max_length", max_length=pad, truncation=True,
                        add_special_tokens=False)
    finally:
        tokenizer.padding_side = "left"
    # Labels are the input ids, pads included: the pads are in the loss, as in the paper's code.
    data = [{"input_ids": ids, "attention_mask": mask, "labels": list(ids)}
            for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, per_device_train_batch_size=1, num_train_epochs=epochs,
                                 learning_rate=1e-3, lr_scheduler_type="linear", weight_decay=0.0,
                                 logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
                                 bf16=cfg.train.bf16 and native_bf16(), seed=cfg.train.seed, disable_tqdm=True)
        start = time.perf_counter()
        Trainer(model=lm.peft, args=args, train_dataset=data).train()
        seconds = time.perf_counter() - start
    lm.peft.eval()
    answers = closed_book(lm, [q for q, _ in questions], "paper", cfg.verify.answer_tokens)
    lm.delete_adapter("paper")
    return {"seconds": seconds, "steps": epochs * len(data), "tokens": epochs * len(data) * pad,
            "accuracy": accuracy([grade(a, gold) for a, (_, gold) in zip(answers, questions)]), "answers": answers}


def summarize(machine: dict[str, float], shape: dict[str, Any], cycles: list[dict[str, Any]],
              profiled: dict[str, Any], decode: dict[int, float], prefix: dict[str, Any],
              paper: dict[str, Any] | None, matmul_peak: str) -> dict[str, Any]:
    stages = {s: statistics.median(c["stages"].get(s, 0.0) for c in cycles) for s in STAGES}
    tokens_per_second = statistics.median(c["train_tokens"] / c["train_seconds"] for c in cycles)
    train_seconds = statistics.median(c["train_seconds"] for c in cycles)
    context = statistics.median(c["mean_sequence_tokens"] for c in cycles)
    train_gflops = tokens_per_second * 2 * forward_flops(shape, context) / 1e9
    bandwidth_bound = machine["copy_gb_s"] * 1e9 / shape["weight_bytes"]
    compute_bound = machine["fp32_gflop_s"] * 1e9 / forward_flops(shape, 64)
    adapt_seconds = statistics.median(c["stages"]["adapt"] for c in cycles)
    ours = statistics.median(c["accuracy"] or 0.0 for c in cycles)
    summary = {
        "machine": machine, "model": shape,
        "cycle": {"median_total": statistics.median(c["total"] for c in cycles), "median_stages": stages,
                  "runs": len(cycles)},
        "adapt": {"tokens_per_second": tokens_per_second, "mean_sequence_tokens": context, "gflop_s": train_gflops,
                  "fraction_of_fp32_peak": train_gflops / machine["fp32_gflop_s"],
                  "fraction_of_bf16_peak": train_gflops / machine["bf16_gflop_s"]},
        # The profiler's own per-op cost lands outside the ops it times: estimated as the profiled training's
        # excess over the cycles' median (the same sequences, unprofiled), and taken out of "everything else".
        # Under bf16 autocast the step's matmuls run in bf16: their share is of the bf16 peak.
        "step_profile": {**profiled, "matmul_peak": matmul_peak,
                         "matmul_fraction_of_peak": profiled["matmul_gflop_s"] / machine[f"{matmul_peak}_gflop_s"],
                         "unprofiled_seconds": train_seconds, "profiler_seconds": profiled["seconds"] - train_seconds},
        "decode": {str(b): {"tokens_per_second": r, "bound": min(b * bandwidth_bound, compute_bound),
                            "fraction_of_bound": r / min(b * bandwidth_bound, compute_bound)} for b, r in decode.items()},
        "shared_prefix": {**prefix, "speedup": prefix["left_padded_seconds"] / prefix["shared_seconds"]},
        "answer_seconds": {mode: statistics.median(c["answer_seconds"][mode] for c in cycles) for mode in CONTEXTS},
    }
    if paper is not None:
        summary["paper"] = {**{k: v for k, v in paper.items() if k != "answers"}, "runtime_adapt_seconds": adapt_seconds,
                            "speedup": paper["seconds"] / adapt_seconds, "runtime_accuracy": ours}
    return summary


def markdown(s: dict[str, Any], command: str, train: TrainConfig) -> str:
    m, c, a, step = s["machine"], s["cycle"], s["adapt"], s["step_profile"]
    share = lambda seconds: [f"{seconds:.2f}", f"{100 * seconds / step['unprofiled_seconds']:.0f} %"]
    native = m.get("native_bf16", True)  # results from before the field was recorded came from a native-bf16 CPU
    start_end = m.get("peaks_start_end", {}).get("fp32_gflop_s")  # older results lack it
    drift = f" (the better of the run's start and end: {start_end[0]:.0f} / {start_end[1]:.0f})" if start_end else ""
    parts = [f"### Speed: one document cycle on this machine (median of {c['runs']} runs)\n", f"`{command}`\n",
             report.table(["machine", "measured"], [["fp32 matmul peak", f"{m['fp32_gflop_s']:.0f} GFLOP/s" + drift],
                                                    ["bf16 matmul peak", f"{m['bf16_gflop_s']:.1f} GFLOP/s"
                                                     + ("" if native else " (emulated: training runs fp32)")],
                                                    ["memory copy bandwidth", f"{m['copy_gb_s']:.1f} GB/s"]]),
             "",
             report.table(["stage", "median seconds"],
                          [[st, f"{v:.2f}"] for st, v in c["median_stages"].items()]
                          + [["**one-document cycle** (target < 20 s)", f"**{c['median_total']:.1f}**"]]),
             "",
             report.table(["adapt", "measured"], [
                 ["trained tokens/s", f"{a['tokens_per_second']:.0f}"],
                 ["useful training GFLOP/s (2 × forward FLOPs/token)", f"{a['gflop_s']:.0f}"],
                 ["share of fp32 peak (target ≥ 60 %)", f"{100 * a['fraction_of_fp32_peak']:.0f} %"],
                 ["share of bf16 peak", f"{100 * a['fraction_of_bf16_peak']:.0f} %" if native else "— (bf16 emulated, not used)"]]),
             "",
             f"Where the training time goes: the same training again under torch.profiler ({step['steps']} steps, "
             f"{step['tokens']:,} tokens, {step['seconds']:.2f} s profiled, {step['unprofiled_seconds']:.2f} s unprofiled, "
             "the cycles' median):\n",
             report.table(["training time", "seconds", "share of the unprofiled time"], [
                 [f"matrix multiplies, at {step['matmul_gflop_s']:.0f} GFLOP/s "
                  f"({100 * step['matmul_fraction_of_peak']:.0f} % of {step['matmul_peak']} peak)", *share(step["matmul_seconds"])],
                 ["attention", *share(step["attention_seconds"])], ["optimiser step", *share(step["optimizer_seconds"])],
                 ["everything else (norms, activations, LoRA scaling and adds, loss, autograd)",
                  *share(step["other_seconds"] - step["profiler_seconds"])],
                 ["the profiler's own cost (profiled − unprofiled)", f"{step['profiler_seconds']:.2f}", "—"]]),
             "",
             report.table(["decode batch", "tokens/s", "roofline bound tokens/s", "share of bound"],
                          [[b, f"{d['tokens_per_second']:.0f}", f"{d['bound']:.0f}", f"{100 * d['fraction_of_bound']:.0f} %"]
                           for b, d in s["decode"].items()])]
    if "shared_prefix" in s:  # older results lack it
        x = s["shared_prefix"]
        parts += ["", f"Verify's closed-book batch ({x['prompts']} prompts of {x['mean_prompt_tokens']:.0f} tokens on average, "
                  f"{x['shared_tokens']} of them shared; {x['answer_tokens']}-token answers; median of alternated runs):\n",
                  report.table(["prompt layout", "seconds", "answers identical"], [
                      ["left-padded, every row prefilled in full", f"{x['left_padded_seconds']:.2f}", ""],
                      ["shared prefix computed once (the runtime)", f"{x['shared_seconds']:.2f}",
                       f"{x['same_answers']} of {x['prompts']}"],
                      ["**speed-up**", f"**{x['speedup']:.2f}×**", ""]])]
    if "answer_seconds" in s:  # older results lack it
        parts += ["", "Answering the document's questions after it was learned (`seal ask --context`; median seconds per "
                  "question, model loaded):\n",
                  report.table(["context", "seconds per answer"], [[m, f"{t:.2f}"] for m, t in s["answer_seconds"].items()])]
    if "paper" in s:
        p = s["paper"]
        parts += ["", report.table(["inner loop on the same self-edit", "wall seconds", "tokens processed", "closed-book accuracy"], [
            ["paper recipe (Trainer, pad 2048, pads in loss, q/v r=32, 10 epochs, lr 1e-3, batch 1)",
             f"{p['seconds']:.1f}", f"{p['tokens']:,}", report.pct(p["accuracy"])],
            [f"runtime (packed, all linear r={train.rank}, {train.epochs} epochs, lr {train.learning_rate:g}, "
             f"batch {train.batch_size}, {'bf16 autocast' if train.bf16 and native else 'fp32'})",
             f"{p['runtime_adapt_seconds']:.1f}", "", report.pct(p["runtime_accuracy"])],
            ["**speed-up** (target ≥ 10×)", f"**{p['speedup']:.1f}×**", "", ""]])]
    return "\n".join(parts)


def run(lm: LanguageModel, document: DocumentInput, cfg: Config, *, runs: int, homes: Path, out: Path, stem: str,
        provenance: dict[str, Any], paper_pad: int = 2048, paper_epochs: int = 10,
        decode_repeats: int = 3, progress: Callable[[int, int, str], None] = lambda done, total, message: None) -> dict[str, Any]:
    total = runs + 5
    progress(0, total, "machine peaks")
    native = native_bf16()
    before = machine_peaks(native)
    cycles = []
    for i in range(runs):
        progress(1 + i, total, f"cycle {i + 1}/{runs}")
        cycles.append(cycle(lm, document, cfg, homes / f"run-{i + 1}"))
    progress(1 + runs, total, "training step profile")
    examples = [c.pop("examples") for c in cycles][0]
    profiled = step_profile(lm, examples, cfg)
    progress(2 + runs, total, "decode")
    decode = {b: decode_rate(lm, b, 32, decode_repeats) for b in (1, RUNTIME_BATCH)}
    questions = [q for q, _ in document.questions] + [q for q, _ in GENERAL_PROBES]
    prefix = shared_prefix(lm, questions, cfg.verify.answer_tokens, decode_repeats)
    paper = None
    if paper_epochs > 0:
        progress(3 + runs, total, f"paper recipe ({paper_epochs} epochs at {paper_pad} tokens)")
        paper = paper_recipe(lm, cycles[0]["sequences"], list(document.questions), cfg, paper_pad, paper_epochs)
    # A shared CPU's throughput drifts during a run: the peak is the better of its start and its end.
    progress(4 + runs, total, "machine peaks again")
    after = machine_peaks(native)
    machine = {"native_bf16": native, **{k: max(before[k], after[k]) for k in before},
               "peaks_start_end": {k: [before[k], after[k]] for k in before}, "copy_gb_s": copy_bandwidth()}
    summary = summarize(machine, model_shape(lm), cycles, profiled, decode, prefix, paper,
                        "bf16" if cfg.train.bf16 and native else "fp32")
    result = {**provenance, "benchmark": "speed", "summary": summary,
              "cycles": [{k: v for k, v in c.items() if k != "sequences"} for c in cycles],
              "self_edit_sequences": cycles[0]["sequences"], "paper_answers": paper and paper["answers"]}
    report.write(out, stem, result, markdown(summary, provenance["command"], cfg.train))
    progress(total, total, "done")
    return summary
