"""`python -m benchmarks.matmul_shapes`: matrix-multiply throughput at a training step's shapes against
a large square one, fp32 and bf16, on this machine. It shows where `seal bench speed`'s adapt share of
peak goes: if the step's own matmuls run near peak, the rest of the step is what is slow."""

from __future__ import annotations

import sys
import time

import torch

# (rows, inner, columns): a packed row of ~150 tokens through the MLP and a rank-16 LoRA factor,
# a batch 8× longer, and the large square matmul that stands for the peak.
SHAPES = {"2048 × 2048 × 2048 (peak)": (2048, 2048, 2048), "150 × 576 × 1536 (MLP up)": (150, 576, 1536),
          "150 × 1536 × 576 (MLP down)": (150, 1536, 576), "1200 × 576 × 1536 (8× the rows)": (1200, 576, 1536),
          "150 × 576 × 16 (LoRA A)": (150, 576, 16)}


def gflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float) -> float:
    """Throughput of `a @ b` for (m × k) @ (k × n) in `dtype`, timed over about `seconds`."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / elapsed / 1e9


def main(seconds: float = 1.0) -> list[str]:
    lines = ["| shape (rows × inner × columns) | fp32 GFLOP/s | bf16 GFLOP/s |", "|---|---|---|"]
    for name, shape in SHAPES.items():
        lines.append(f"| {name} | {gflops(*shape, torch.float32, seconds):.0f} | {gflops(*shape, torch.bfloat16, seconds):.0f} |")
    return lines


if __name__ == "__main__":
    print("\n".join(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)))
