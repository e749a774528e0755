"""Time whole transformer layers, forward and backward, on one GPU: the ground truth for the
training model's compute time of one tensor-parallel rank (no communication).

    OUT=/tmp/gpu python benchmarks/device/measure_layer.py

Each layer is a pre-norm decoder block in eager PyTorch (bf16 weights and activations, RMSNorm,
fused QKV, FlashAttention through ``scaled_dot_product_attention`` with causal masking,
SwiGLU or GELU MLP), sliced as one rank of ``tp``-way tensor parallelism sees it: heads, KV
heads and the MLP width divided by ``tp``. Four layers are stacked so that one timing covers
enough work. Two figures per configuration (data/measurements/README.md):

- ``median``: the median of CUDA-event timings of forward + backward (``do_bench``, L2 flushed),
- ``sustained``: forward + backward in a loop for 5 s, with board power from ``nvidia-smi``:
  the rate a training run gets once the card sits at its power limit.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from measure_gpu import PowerSampler
from torch import nn
from triton.testing import do_bench

OUT = Path(os.environ.get("OUT", "/tmp/gpu_measurements"))
COMPILE = os.environ.get("DSE_COMPILE") == "1"
"""With DSE_COMPILE=1 the blocks run through torch.compile, which fuses the memory-bound
operators (norms, SwiGLU, residual adds) as production stacks do; results go to
layer_step_compiled.csv."""
DEV, DTYPE, TERA = torch.device("cuda"), torch.bfloat16, 1e12
LAYERS = 4


class Block(nn.Module):
    def __init__(self, d: int, ffn: int, heads: int, kv: int, hd: int, swiglu: bool) -> None:
        super().__init__()
        self.heads, self.kv, self.hd, self.swiglu, self.ffn = heads, kv, hd, swiglu, ffn
        self.norm1 = nn.RMSNorm(d)
        self.norm2 = nn.RMSNorm(d)
        self.qkv = nn.Linear(d, (heads + 2 * kv) * hd, bias=False)
        self.out = nn.Linear(heads * hd, d, bias=False)
        self.up = nn.Linear(d, (2 if swiglu else 1) * ffn, bias=False)
        self.down = nn.Linear(ffn, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(
            [self.heads * self.hd, self.kv * self.hd, self.kv * self.hd], dim=-1
        )
        q = q.view(b, s, self.heads, self.hd).transpose(1, 2)
        k = k.view(b, s, self.kv, self.hd).transpose(1, 2)
        v = v.view(b, s, self.kv, self.hd).transpose(1, 2)
        a = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.kv != self.heads
        )
        x = x + self.out(a.transpose(1, 2).reshape(b, s, self.heads * self.hd))
        h = self.up(self.norm2(x))
        h = F.silu(h[..., : self.ffn]) * h[..., self.ffn :] if self.swiglu else F.gelu(h)
        return x + self.down(h)


MODELS = {  # d_model, ffn_dim, heads, kv_heads, head_dim, swiglu, seq_len (config.json)
    "llama3-8b": (4096, 14336, 32, 8, 128, True, 8192),
    "llama3-70b": (8192, 28672, 64, 8, 128, True, 8192),
    "llama3-405b": (16384, 53248, 128, 8, 128, True, 8192),
    "gpt3-175b": (12288, 49152, 96, 96, 128, False, 2048),
}
CONFIGS = [  # model, tp, micro-batch
    ("llama3-8b", 1, 1),
    ("llama3-8b", 2, 1),
    ("llama3-70b", 4, 1),
    ("llama3-70b", 8, 1),
    ("llama3-405b", 8, 1),
    ("gpt3-175b", 8, 1),
    ("gpt3-175b", 8, 4),
]


def model_flops(
    d: int, ffn: int, heads: int, kv: int, hd: int, swiglu: bool, seq: int, tp: int
) -> float:
    """Forward + backward FLOPs of one layer per token on one rank: 6 × matmul parameters plus
    causal attention (3 × 2 · 2 · s/2 · h · d per token)."""
    params = d * (heads + 2 * kv) * hd + heads * hd * d + (3 if swiglu else 2) * d * ffn
    attention = 3.0 * 2.0 * 2.0 * (seq / 2.0) * heads * hd
    return (6.0 * params + attention) / tp


def measure(name: str, tp: int, mb: int) -> dict[str, object]:
    d, ffn, heads, kv, hd, swiglu, seq = MODELS[name]
    blocks = nn.Sequential(
        *(Block(d, ffn // tp, heads // tp, max(kv // tp, 1), hd, swiglu) for _ in range(LAYERS))
    ).to(DEV, DTYPE)
    if COMPILE:
        blocks = torch.compile(blocks)
    x = torch.randn(mb, seq, d, device=DEV, dtype=DTYPE, requires_grad=True)
    grad = torch.randn_like(x)

    def step() -> None:
        torch.autograd.backward(blocks(x), grad)

    median_ms = float(do_bench(step, warmup=20, rep=200, return_mode="median"))
    torch.cuda.synchronize()
    with PowerSampler() as sampler:
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 5.0:
            step()
            calls += 1
            if calls % 5 == 0:
                torch.cuda.synchronize()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    steady = sampler.samples[len(sampler.samples) // 5 :]
    flops = model_flops(d, ffn, heads, kv, hd, swiglu, seq, tp) * mb * seq * LAYERS
    sustained_ms = elapsed / calls * 1e3
    row = {
        "model": name,
        "tp": tp,
        "microbatch": mb,
        "seq_len": seq,
        "layers": LAYERS,
        "model_flops": flops,
        "median_ms": median_ms,
        "sustained_ms": sustained_ms,
        "median_tflop_s": flops / (median_ms * 1e-3) / TERA,
        "sustained_tflop_s": flops / (sustained_ms * 1e-3) / TERA,
        "avg_power_w": sum(p for p, _ in steady) / max(len(steady), 1),
        "avg_sm_clock_mhz": sum(c for _, c in steady) / max(len(steady), 1),
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9,
        "mode": "torch.compile" if COMPILE else "eager",
    }
    return row


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    configs = CONFIGS[::2] if COMPILE else CONFIGS  # compiling takes a while: every other one
    name_out = "layer_step_compiled.csv" if COMPILE else "layer_step.csv"
    for name, tp, mb in configs:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            rows.append(measure(name, tp, mb))
        except Exception as exc:
            print(f"{name} tp{tp} mb{mb}: failed: {exc!r}", flush=True)
            continue
        print(rows[-1], flush=True)
        with (OUT / name_out).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
