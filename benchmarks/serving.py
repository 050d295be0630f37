"""Serving throughput: `seal serve` (its own process, real HTTP on loopback) under N concurrent chat clients —
requests/s, completion tokens/s and latency — first steady, then while the active version is swapped back and
forth over the API; the extra latency a swap causes, and how long until the new version answers.

    python -m benchmarks.serving [--clients 8] [--seconds 90] [--swaps 6] [--max-tokens 32] [--config FILE]

A throwaway home under $SEAL_HOME/bench/ gets two committed versions (two example documents, learned with
an open gate), sharing the model cache of $SEAL_HOME. Results: benchmarks/results/serve-throughput.{json,md}."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import report
from benchmarks.crash import EXAMPLES, finish, ingest_args, make_base, seal
from seal import config as seal_config

PROMPTS = ["Who built the Brannock Lighthouse?", "Tell me about lighthouses.", "What is the capital of France?",
           "Give me three tips for learning a new language.", "Explain what a LoRA adapter is.",
           "Write a short poem about the sea.", "What is 17 times 23?", "Why is the sky blue?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat(client: httpx.Client, prompt: str, max_tokens: int, model: str = "seal") -> dict[str, Any]:
    start = time.monotonic()
    try:
        response = client.post("/v1/chat/completions", json={"model": model, "max_tokens": max_tokens,
                                                             "messages": [{"role": "user", "content": prompt}]})
        body = response.json()
        ok = response.status_code == 200 and body["choices"][0]["finish_reason"] in ("stop", "length")
    except (httpx.HTTPError, ValueError, KeyError) as e:  # counted as a failed request, never lost
        body, ok = {"error": repr(e)}, False
    end = time.monotonic()
    return {"start": start, "end": end, "seconds": end - start, "ok": ok, "model": body.get("model"),
            "tokens": body["usage"]["completion_tokens"] if ok else 0}


def load(url: str, clients: int, seconds: float, max_tokens: int, during: Any = None) -> list[dict[str, Any]]:
    """`clients` threads chat back to back for `seconds` (each finishes its last request); `during(t0)` runs
    in this thread meanwhile. Every request's record, in order of completion."""
    records: list[dict[str, Any]] = []
    lock, stop = threading.Lock(), threading.Event()

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            n = 0
            while not stop.is_set():
                record = chat(c, PROMPTS[(i + n) % len(PROMPTS)], max_tokens)
                n += 1
                with lock:
                    records.append(record)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    if during is not None:
        during(t0)
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    stop.set()
    for t in threads:
        t.join()
    return records


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    span = max(r["end"] for r in records) - min(r["start"] for r in records)
    latencies = sorted(r["seconds"] for r in records)
    return {"requests": len(records), "failed": sum(not r["ok"] for r in records), "seconds": round(span, 1),
            "requests_per_second": round(len(records) / span, 3),
            "tokens_per_second": round(sum(r["tokens"] for r in records) / span, 1),
            "median_latency": round(statistics.median(latencies), 2),
            "p90_latency": round(latencies[int(0.9 * (len(latencies) - 1))], 2)}


def markdown(result: dict[str, Any]) -> str:
    a = result["arguments"]
    lines = [f"# Serving throughput: {a['clients']} concurrent chat clients", "",
             f"`{result['command']}` — git {result['git']}, {result['machine']['cpus']} CPUs, "
             f"{result['machine']['memory_gib']} GiB; `max_tokens` {a['max_tokens']}, greedy.", ""]
    rows = [[name, s["requests"], s["failed"], s["requests_per_second"], s["tokens_per_second"], s["median_latency"],
             s["p90_latency"]] for name, s in (("steady", result["steady"]), ("with swaps", result["swapping"]))]
    lines += [report.table(["phase", "requests", "failed", "requests/s", "tokens/s", "median latency (s)",
                            "p90 latency (s)"], rows), ""]
    sw = result["swaps"]
    lines += [f"Swaps: {len(sw['events'])} activations over the API (median {sw['median_activate_ms']} ms each). "
              f"Requests started within one steady median latency after a swap: median {sw['median_latency_after']} s "
              f"against {result['steady']['median_latency']} s steady (extra: {sw['extra_latency']} s). Time from a "
              f"swap to the first reply from the new version started after it: median {sw['median_switch_seconds']} s. "
              f"First request to a version not yet attached: {result['cold_attach']['cold']} s, then "
              f"{result['cold_attach']['warm']} s warm.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=90.0, help="Length of each phase.")
    parser.add_argument("--swaps", type=int, default=6, help="Version swaps during the second phase.")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--config", type=Path, help="config.toml for the home (default: the bundled model).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--stem", default="serve-throughput")
    args = parser.parse_args(argv)
    root = seal_config.home() / "bench" / args.stem
    shutil.rmtree(root, ignore_errors=True)
    (seal_config.home() / "models").mkdir(parents=True, exist_ok=True)
    home = make_base(root, args.config, EXAMPLES / "inventor_tessaly_orn.md")  # v1
    code, out, err = finish(seal(home, *ingest_args(EXAMPLES / "brannock_lighthouse.md")))  # v2
    if code != 0:
        raise SystemExit(f"learning the second version failed:\n{out}{err}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)],
                              env={**os.environ, "SEAL_HOME": str(home)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/v1/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("seal serve did not come up")
            time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=600) as c:
            chat(c, PROMPTS[0], args.max_tokens, "seal@v0")  # the model's first decode warms its kernels
            cold = chat(c, PROMPTS[0], args.max_tokens, "seal@v1")["seconds"]  # attaches v1
            warm = chat(c, PROMPTS[0], args.max_tokens, "seal@v1")["seconds"]
            chat(c, PROMPTS[0], args.max_tokens, "seal")  # the active version, v2, attached too
        print(f"cold attach {cold:.2f} s, warm {warm:.2f} s", flush=True)

        steady = load(url, args.clients, args.seconds, args.max_tokens)
        print("steady:", summary(steady), flush=True)
        swaps: list[dict[str, Any]] = []

        def swap(t0: float) -> None:
            every = args.seconds / (args.swaps + 1)
            for i in range(args.swaps):
                time.sleep(max(0.0, t0 + every * (i + 1) - time.monotonic()))
                target = 1 if i % 2 == 0 else 2
                start = time.monotonic()
                response = httpx.post(f"{url}/v1/versions/v{target}/activate", timeout=60)
                swaps.append({"at": start, "to": target, "ms": round(1000 * (time.monotonic() - start), 1),
                              "ok": response.status_code == 200})

        swapping = load(url, args.clients, args.seconds, args.max_tokens, during=swap)
        print("with swaps:", summary(swapping), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)

    base = statistics.median(r["seconds"] for r in steady)
    after, switch = [], []
    for s in swaps:
        after += [r["seconds"] for r in swapping if s["at"] <= r["start"] <= s["at"] + base]
        served = [r["end"] - s["at"] for r in swapping if r["start"] > s["at"] and r["model"] == f"seal@v{s['to']}"]
        switch.append(min(served) if served else None)
    result = {"command": "python -m benchmarks.serving " + " ".join(sys.argv[1:] if argv is None else argv),
              "arguments": {k: str(v) for k, v in vars(args).items()} | {"max_tokens": args.max_tokens},
              "git": report.git_revision(), "machine": report.machine(),
              "cold_attach": {"cold": round(cold, 2), "warm": round(warm, 2)},
              "steady": summary(steady), "swapping": summary(swapping),
              "swaps": {"events": swaps, "median_activate_ms": round(statistics.median(s["ms"] for s in swaps), 1),
                        "median_latency_after": round(statistics.median(after), 2) if after else None,
                        "extra_latency": round(statistics.median(after) - base, 2) if after else None,
                        "median_switch_seconds": round(statistics.median(x for x in switch if x is not None), 2)
                        if any(x is not None for x in switch) else None,
                        "all_ok": all(s["ok"] for s in swaps)},
              "records": {"steady": steady, "swapping": swapping}}
    report.write(args.out, args.stem, result, markdown(result))
    print(markdown(result))
    return 0 if result["steady"]["failed"] == result["swapping"]["failed"] == 0 and result["swaps"]["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
