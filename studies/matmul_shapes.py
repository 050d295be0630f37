"""`python -m studies.matmul_shapes`: matrix-multiply throughput at a training step's shapes against
the square 2048³ one that `seal bench speed` takes its peak from (with 1024³), fp32 and bf16, on this
machine. It shows where that benchmark's adapt share of peak goes: if the step's own matmuls run near
peak, the rest of the step is what is slow."""

from __future__ import annotations

import torch

from benchmarks.report import table
from benchmarks.speed import matmul_gflops

# (rows, inner, columns): a packed row of ~150 tokens through the MLP and a rank-16 LoRA factor,
# a batch 8× longer, and the square matmul of `seal bench speed`'s peak.
SHAPES = {"2048 × 2048 × 2048 (peak)": (2048, 2048, 2048), "150 × 576 × 1536 (MLP up)": (150, 576, 1536),
          "150 × 1536 × 576 (MLP down)": (150, 1536, 576), "1200 × 576 × 1536 (8× the rows)": (1200, 576, 1536),
          "150 × 576 × 16 (LoRA A)": (150, 576, 16)}


def main(repeats: int = 50, shapes: dict[str, tuple[int, int, int]] = SHAPES) -> str:
    # Three significant figures: emulated bf16 (AVX2-only CPUs) runs at about 1 GFLOP/s.
    return table(["shape (rows × inner × columns)", "fp32 GFLOP/s", "bf16 GFLOP/s"],
                 [[name, *(f"{matmul_gflops(dtype, *shape, repeats):.3g}" for dtype in (torch.float32, torch.bfloat16))]
                  for name, shape in shapes.items()])


if __name__ == "__main__":
    print(main())
